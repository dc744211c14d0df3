import { describe, expect, it } from "vitest";
import { onEscape } from "./keys";

/** Presses `name` on a handler; answers what it did: whether `run` ran and the key was stopped. */
function press(name: string, busy = false): { ran: boolean; stopped: boolean } {
  let ran = false;
  let stopped = false;
  const handler = onEscape(
    () => (ran = true),
    () => !busy,
  );
  handler({ key: name, stopPropagation: () => (stopped = true) } as unknown as KeyboardEvent);
  return { ran, stopped };
}

describe("onEscape", () => {
  it("runs on Escape and keeps the key from the window's handler", () => {
    expect(press("Escape")).toEqual({ ran: true, stopped: true });
  });

  it("ignores other keys and lets them through", () => {
    expect(press("Enter")).toEqual({ ran: false, stopped: false });
    expect(press("Esc")).toEqual({ ran: false, stopped: false });
  });

  it("stops Escape but does nothing while the pane is busy", () => {
    expect(press("Escape", true)).toEqual({ ran: false, stopped: true });
  });

  it("runs whenever nothing says it may not", () => {
    let runs = 0;
    const handler = onEscape(() => (runs += 1));
    const esc = { key: "Escape", stopPropagation: () => {} } as unknown as KeyboardEvent;
    handler(esc);
    handler(esc);
    expect(runs).toBe(2);
  });
});
