// Turns whatever a call threw into a ShellError, and is the one place that reads error codes:
// every message box reads `.message`, and each code the window acts on is compared here only.
import { ShellError } from "../ipc/shellError";

/** The codes the window acts on; the shell sets no code where the UI only shows the message. */
const CODE = {
  needsSignIn: "needs_sign_in",
  keyringUnavailable: "keyring_unavailable",
} as const;

export function asShellError(e: unknown): ShellError {
  if (e instanceof ShellError) return e;
  if (e instanceof Error) return new ShellError({ code: null, message: e.message });
  return new ShellError({ code: null, message: String(e) });
}

/** The headline over a listing that failed. */
export function listFailureTitle(e: ShellError): string {
  return e.code === CODE.keyringUnavailable ? "The keyring is unavailable" : "Something went wrong";
}

/** How an action on an account failed, as the details pane says it. */
export type ActionFailure = { needsSignIn: boolean; text: string };

/** A refused action: one that needs a sign-in points at "Sign in"; others say what the shell said. */
export function actionFailure(e: unknown): ActionFailure {
  const err = asShellError(e);
  if (err.code === CODE.needsSignIn) {
    const said = err.message.replace(/\.?\s*$/, ".");
    return { needsSignIn: true, text: `This account needs a sign-in: ${said} Use “Sign in” to continue.` };
  }
  return { needsSignIn: false, text: err.message };
}
