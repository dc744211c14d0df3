import { describe, expect, it } from "vitest";
import { singleFlight } from "./singleFlight";

/** A run that waits until the test lets it end, counting how often it started. */
function gatedRun() {
  const gates: (() => void)[] = [];
  let runs = 0;
  const run = () => {
    runs += 1;
    return new Promise<void>((resolve) => gates.push(resolve));
  };
  const open = async () => {
    gates.shift()?.();
    // Let the finished run's continuation start the next one, if any.
    await new Promise((r) => setTimeout(r, 0));
  };
  return { run, open, runs: () => runs, waiting: () => gates.length };
}

describe("singleFlight", () => {
  it("runs once at a time and folds every call made meanwhile into one more run", async () => {
    const g = gatedRun();
    const load = singleFlight(g.run);
    const first = load();
    const second = load();
    const third = load();
    expect(g.runs()).toBe(1);
    expect(second).toBe(first);
    expect(third).toBe(first);
    await g.open();
    expect(g.runs()).toBe(2);
    await g.open();
    expect(g.runs()).toBe(2);
    await first;
    expect(g.waiting()).toBe(0);
  });

  it("settles a caller's promise only after the run that covers its call", async () => {
    const g = gatedRun();
    const load = singleFlight(g.run);
    let done = false;
    void load();
    const late = load().then(() => (done = true));
    await g.open();
    expect(done).toBe(false);
    await g.open();
    await late;
    expect(done).toBe(true);
  });

  it("starts afresh after a run, and after a run that threw", async () => {
    let runs = 0;
    const load = singleFlight(async () => {
      runs += 1;
      if (runs === 1) throw new Error("first fails");
    });
    await expect(load()).rejects.toThrow("first fails");
    await load();
    await load();
    expect(runs).toBe(3);
  });
});
