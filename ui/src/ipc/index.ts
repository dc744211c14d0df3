// The one module that talks to the desktop shell. Everything else imports from here,
// so the rest of the UI never touches @tauri-apps/* and stays testable in a browser.
import { invoke } from "@tauri-apps/api/core";
import type { AccountSummary, AppInfo, IpcError } from "./generated/ipc";

export type * from "./generated/ipc";

/** An error from the shell: `code` is set only where the UI acts on it. */
export class ShellError extends Error {
  code: string | null;
  constructor(e: IpcError) {
    super(e.message);
    this.code = e.code;
  }
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    if (e && typeof e === "object" && "message" in e) {
      throw new ShellError(e as IpcError);
    }
    throw new ShellError({ code: null, message: String(e) });
  }
}

export const shell = {
  appInfo: () => call<AppInfo>("app_info"),
  listAccounts: () => call<AccountSummary[]>("list_accounts"),
};
