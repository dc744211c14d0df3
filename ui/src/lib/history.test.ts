import { describe, expect, it } from "vitest";
import type { Event, Outcome } from "../ipc";
import { newestFirst, succeeded } from "./history";

describe("newestFirst", () => {
  it("orders events newest first without touching the given list", () => {
    const events: Event[] = [
      { at_ms: 1, kind: "added", outcome: "ok", detail: "" },
      { at_ms: 3, kind: "renewed", outcome: "ok", detail: "" },
      { at_ms: 2, kind: "sign-in", outcome: "refused", detail: "bad password" },
    ];
    expect(newestFirst(events).map((e) => e.at_ms)).toEqual([3, 2, 1]);
    expect(events.map((e) => e.at_ms)).toEqual([1, 3, 2]);
  });
});

describe("succeeded", () => {
  it("marks only the ok outcome as success", () => {
    expect(succeeded("ok")).toBe(true);
    const others: Outcome[] = ["started", "cancelled", "invalid", "failed", "refused", "raised", "needs-sign-in"];
    for (const o of others) expect(succeeded(o)).toBe(false);
  });

  it("treats an outcome this build does not know as no success", () => {
    expect(succeeded("renewed-by-a-newer-version" as Outcome)).toBe(false);
  });
});
