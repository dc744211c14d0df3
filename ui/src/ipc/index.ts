// The one module that talks to the desktop shell. Everything else imports from here,
// so the rest of the UI never touches @tauri-apps/* and stays testable in a browser;
// code that takes `shell` or `events` as a parameter is tested with stand-ins for them.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  AccountDetail,
  AccountEdit,
  AccountForm,
  AccountSummary,
  AppInfo,
  BigFixToken,
  DeviceSignIn,
  EngineEvent,
  IpcError,
  Preferences,
  SignInOutcome,
  VendorForm,
} from "./generated/ipc";
import { IPC_CODE, SHELL_EVENT } from "./generated/ipc";
import { ShellError } from "./shellError";

export type * from "./generated/ipc";
export { IPC_CODE, SHELL_EVENT, ShellError };

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    if (e && typeof e === "object" && "message" in e) {
      throw new ShellError(e as IpcError);
    }
    throw new ShellError({ code: null, message: String(e), remedy: null });
  }
}

export const shell = {
  appInfo: () => call<AppInfo>("app_info"),
  listAccounts: () => call<AccountSummary[]>("list_accounts"),
  vendorForms: () => call<VendorForm[]>("vendor_forms"),
  accountDetail: (name: string) => call<AccountDetail>("account_detail", { name }),
  /** The secret goes straight to the keyring; null for a browser sign-in. */
  addAccount: (form: AccountForm, secret: string | null) =>
    call<AccountSummary>("add_account", { form, secret }),
  editAccount: (name: string, edit: AccountEdit) => call<AccountSummary>("edit_account", { name, edit }),
  setTrust: (name: string, caCertPem: string | null, pinSha256: string | null) =>
    call<void>("set_trust", { name, caCertPem, pinSha256 }),
  /** Signs in again with a new secret, or the stored one when null. */
  signIn: (name: string, secret: string | null) => call<AccountSummary>("sign_in", { name, secret }),
  /** Starts a browser sign-in; how it ends arrives through `onSignInFinished`. */
  startDeviceSignIn: (name: string) => call<DeviceSignIn>("start_device_sign_in", { name }),
  /** The browser sign-in the agent still awaits for the account, if any. */
  deviceSignInInProgress: (name: string) => call<DeviceSignIn | null>("device_sign_in_in_progress", { name }),
  cancelSignIn: (name: string) => call<void>("cancel_sign_in", { name }),
  renewNow: (name: string) => call<AccountSummary>("renew_now", { name }),
  /** Puts a fresh token on the clipboard; answers the seconds until it is cleared. */
  copyToken: (name: string) => call<number>("copy_token", { name }),
  /** The one call that returns a secret: only on an explicit "Reveal". */
  revealToken: (name: string) => call<string>("reveal_token", { name }),
  /** Answers what happened at the vendor (session ended, token revoked, or why not). */
  removeAccount: (name: string, signOut: boolean) => call<string>("remove_account", { name, signOut }),
  bigfixTokens: (name: string, user: number | null) => call<BigFixToken[]>("bigfix_tokens", { name, user }),
  bigfixRename: (name: string, id: number, newName: string) =>
    call<BigFixToken>("bigfix_rename", { name, id, newName }),
  bigfixExtend: (name: string, id: number, days: number) => call<BigFixToken>("bigfix_extend", { name, id, days }),
  bigfixRevoke: (name: string, id: number) => call<void>("bigfix_revoke", { name, id }),
  bigfixRotate: (name: string) => call<AccountSummary>("bigfix_rotate", { name }),
  preferences: () => call<Preferences>("preferences"),
  setPreferences: (preferences: Preferences) => call<Preferences>("set_preferences", { preferences }),
  /** The account a notification or the tray asked to open before the window was up. */
  takePendingAccount: () => call<string | null>("take_pending_account"),
};

export const events = {
  onEngineEvent: (f: (e: EngineEvent) => void): Promise<UnlistenFn> =>
    listen<EngineEvent>(SHELL_EVENT.engineEvent, (e) => f(e.payload)),
  onSignInFinished: (f: (e: SignInOutcome) => void): Promise<UnlistenFn> =>
    listen<SignInOutcome>(SHELL_EVENT.signInFinished, (e) => f(e.payload)),
  onOpenAccount: (f: (name: string) => void): Promise<UnlistenFn> =>
    listen<string>(SHELL_EVENT.openAccount, (e) => f(e.payload)),
  onAccountsChanged: (f: () => void): Promise<UnlistenFn> => listen(SHELL_EVENT.accountsChanged, () => f()),
  onNotificationFailed: (f: (message: string) => void): Promise<UnlistenFn> =>
    listen<string>(SHELL_EVENT.notificationFailed, (e) => f(e.payload)),
};
