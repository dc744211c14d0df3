import { describe, expect, it } from "vitest";
import { IPC_CODE } from "../ipc/generated/ipc";
import { ShellError } from "../ipc/shellError";
import { actionFailure, asShellError, listFailureTitle } from "./errors";

describe("asShellError", () => {
  it("keeps a ShellError as it is", () => {
    const e = new ShellError({ code: IPC_CODE.needsSignIn, message: "Sign in again." });
    expect(asShellError(e)).toBe(e);
  });

  it("wraps any other error or value, without a code or remedy", () => {
    const fromError = asShellError(new TypeError("bad input"));
    expect(fromError).toBeInstanceOf(ShellError);
    expect(fromError.message).toBe("bad input");
    expect(fromError.code).toBeNull();
    expect(fromError.remedy).toBeNull();
    expect(asShellError("plain text").message).toBe("plain text");
    expect(asShellError(42).message).toBe("42");
  });
});

describe("listFailureTitle", () => {
  it("names a locked keyring, and says little about anything else", () => {
    expect(listFailureTitle(new ShellError({ code: IPC_CODE.keyringUnavailable, message: "x" }))).toBe(
      "The keyring is unavailable",
    );
    expect(listFailureTitle(new ShellError({ code: null, message: "x" }))).toBe("Something went wrong");
    expect(listFailureTitle(new ShellError({ code: IPC_CODE.needsSignIn, message: "x" }))).toBe(
      "Something went wrong",
    );
  });
});

describe("actionFailure", () => {
  it("points an action that needs a sign-in at the Sign in button, ending the shell's words with one stop", () => {
    const refused = new ShellError({ code: IPC_CODE.needsSignIn, message: "The password was refused " });
    expect(actionFailure(refused)).toEqual({
      needsSignIn: true,
      text: "This account needs a sign-in: The password was refused. Use “Sign in” to continue.",
    });
    const stopped = new ShellError({ code: IPC_CODE.needsSignIn, message: "The password was refused." });
    expect(actionFailure(stopped).text).toBe(
      "This account needs a sign-in: The password was refused. Use “Sign in” to continue.",
    );
  });

  it("does not repeat the advice the shell's remedy already gave, and acts on a sign-in remedy of any code", () => {
    const advised = new ShellError({
      code: IPC_CODE.refused,
      message: "BigID refused the password. Use “Sign in” to continue.",
      remedy: { kind: "sign_in", account: "bigid", with_secret: true },
    });
    expect(actionFailure(advised)).toEqual({
      needsSignIn: true,
      text: "This account needs a sign-in: BigID refused the password. Use “Sign in” to continue.",
    });
  });

  it("says what the shell said for any other failure", () => {
    expect(actionFailure(new ShellError({ code: null, message: "The server did not answer." }))).toEqual({
      needsSignIn: false,
      text: "The server did not answer.",
    });
    const untrusted = new ShellError({
      code: null,
      message: "The server's certificate is not trusted. Give it under “Certificate trust”.",
      remedy: { kind: "trust_certificate", account: "bf", sha256: null },
    });
    expect(actionFailure(untrusted)).toEqual({ needsSignIn: false, text: untrusted.message });
    expect(actionFailure(new Error("offline"))).toEqual({ needsSignIn: false, text: "offline" });
  });
});
