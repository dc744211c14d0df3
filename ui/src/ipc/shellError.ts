// The error every shell call throws, kept apart from the module that calls the shell so that
// code which only reads errors (ui/src/lib and its tests) never loads the Tauri API.
import type { IpcCode, IpcError, Remedy } from "./generated/ipc";

/** An error as the UI builds one itself: no remedy unless it has one. */
type Given = Omit<IpcError, "remedy"> & { remedy?: Remedy | null };

/**
 * An error from the shell: `code` is set only where the UI acts on it (see lib/errors.ts);
 * `message` already says what to do in the window's words; `remedy` is that advice as data.
 */
export class ShellError extends Error {
  code: IpcCode | null;
  remedy: Remedy | null;
  constructor(e: Given) {
    super(e.message);
    this.code = e.code;
    this.remedy = e.remedy ?? null;
  }
}
