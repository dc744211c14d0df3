// The error every shell call throws, kept apart from the module that calls the shell so that
// code which only reads errors (ui/src/lib and its tests) never loads @tauri-apps/*.
import type { IpcError } from "./generated/ipc";

/** An error from the shell: `code` is set only where the UI acts on it (see lib/errors.ts). */
export class ShellError extends Error {
  code: string | null;
  constructor(e: IpcError) {
    super(e.message);
    this.code = e.code;
  }
}
