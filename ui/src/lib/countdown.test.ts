import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { countdown } from "./countdown";

describe("countdown", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("shows the rounded seconds at once, then one less each second, and stops at zero", () => {
    const shown: number[] = [];
    countdown(2.6, (left) => shown.push(left));
    expect(shown).toEqual([3]);
    vi.advanceTimersByTime(999);
    expect(shown).toEqual([3]);
    vi.advanceTimersByTime(1);
    expect(shown).toEqual([3, 2]);
    vi.advanceTimersByTime(5_000);
    expect(shown).toEqual([3, 2, 1, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops where it is when told", () => {
    const shown: number[] = [];
    const stop = countdown(5, (left) => shown.push(left));
    vi.advanceTimersByTime(2_000);
    stop();
    vi.advanceTimersByTime(10_000);
    expect(shown).toEqual([5, 4, 3]);
  });

  it("shows zero and sets no timer for nothing left, or a negative answer", () => {
    const shown: number[] = [];
    countdown(-3, (left) => shown.push(left));
    expect(shown).toEqual([0]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
