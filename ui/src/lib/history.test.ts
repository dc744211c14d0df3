import { describe, expect, it } from "vitest";
import { newestFirst, succeeded } from "./history";

describe("newestFirst", () => {
  it("orders events newest first without touching the given list", () => {
    const events = [
      { at_ms: 1, kind: "added", outcome: "ok", detail: "" },
      { at_ms: 3, kind: "renewed", outcome: "ok", detail: "" },
      { at_ms: 2, kind: "sign-in", outcome: "refused", detail: "bad password" },
    ];
    expect(newestFirst(events).map((e) => e.at_ms)).toEqual([3, 2, 1]);
    expect(events.map((e) => e.at_ms)).toEqual([1, 3, 2]);
  });
});

describe("succeeded", () => {
  it("knows the words of success, in any case, and nothing that merely contains them", () => {
    for (const word of ["ok", "OK", "success", "Succeeded", "done"]) expect(succeeded(word)).toBe(true);
    for (const word of ["failed", "refused", "not ok", "done?", ""]) expect(succeeded(word)).toBe(false);
  });
});
