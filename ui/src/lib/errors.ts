// Turns whatever a call threw into a ShellError, and is the one place that reads error codes:
// every message box reads `.message`, and each code the window acts on is compared here only,
// through the generated IPC_CODE (no code is spelled here).
import { IPC_CODE } from "../ipc/generated/ipc";
import { ShellError } from "../ipc/shellError";

export function asShellError(e: unknown): ShellError {
  if (e instanceof ShellError) return e;
  if (e instanceof Error) return new ShellError({ code: null, message: e.message });
  return new ShellError({ code: null, message: String(e) });
}

/** The headline over a listing that failed. */
export function listFailureTitle(e: ShellError): string {
  return e.code === IPC_CODE.keyringUnavailable ? "The keyring is unavailable" : "Something went wrong";
}

/** How an action on an account failed, as the details pane says it. */
export type ActionFailure = { needsSignIn: boolean; text: string };

/**
 * A refused action: one that needs a sign-in points at "Sign in"; others say what the shell said.
 * A shell error with a remedy already ends with the window's advice; one without gets the pointer here.
 */
export function actionFailure(e: unknown): ActionFailure {
  const err = asShellError(e);
  const signIn = err.remedy?.kind === "sign_in";
  if (err.code === IPC_CODE.needsSignIn || signIn) {
    const said = err.message.replace(/\.?\s*$/, ".");
    const advice = err.remedy ? "" : " Use “Sign in” to continue.";
    return { needsSignIn: true, text: `This account needs a sign-in: ${said}${advice}` };
  }
  return { needsSignIn: false, text: err.message };
}
