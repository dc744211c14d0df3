// Turns whatever a call threw into a ShellError, so every message box reads `.message` and `.code`.
import { ShellError } from "../ipc";

export function asShellError(e: unknown): ShellError {
  if (e instanceof ShellError) return e;
  if (e instanceof Error) return new ShellError({ code: null, message: e.message });
  return new ShellError({ code: null, message: String(e) });
}
