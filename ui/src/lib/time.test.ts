import { describe, expect, it } from "vitest";
import { deadlineLeft, localTime, span, timeLeft } from "./time";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("span", () => {
  it("shows the two largest units, seconds below a minute", () => {
    expect(span(0)).toBe("0s");
    expect(span(59 * S + 999)).toBe("59s");
    expect(span(M)).toBe("1m 0s");
    expect(span(59 * M + 12 * S)).toBe("59m 12s");
    expect(span(H)).toBe("1h 0m");
    expect(span(23 * H + 59 * M + 59 * S)).toBe("23h 59m");
    expect(span(2 * D + 3 * H + 4 * M)).toBe("2d 3h");
  });

  it("reads a negative span as its size", () => {
    expect(span(-(3 * M + 5 * S))).toBe("3m 5s");
  });
});

describe("timeLeft", () => {
  const now = 1_700_000_000_000;
  it("counts down to the expiry, and says how long ago it passed", () => {
    expect(timeLeft(now + 90 * S, now)).toBe("1m 30s");
    expect(timeLeft(now, now)).toBe("0s");
    expect(timeLeft(now - 3 * M, now)).toBe("expired 3m 0s ago");
  });

  it("says when there is no expiry", () => {
    expect(timeLeft(null, now)).toBe("no expiry");
  });
});

describe("deadlineLeft", () => {
  const now = 1_700_000_000_000;
  it("counts down to a human deadline, says when it passed, and shows a dash for none", () => {
    expect(deadlineLeft(now + 2 * D + 3 * H, now)).toBe("2d 3h");
    expect(deadlineLeft(now - 5 * M, now)).toBe("passed 5m 0s ago");
    expect(deadlineLeft(null, now)).toBe("—");
  });
});

describe("localTime", () => {
  it("shows a dash for no time, and a date with its year for a time", () => {
    expect(localTime(null)).toBe("—");
    const shown = localTime(Date.UTC(2031, 5, 15, 12, 0));
    expect(shown).toContain("2031");
    expect(localTime(Date.UTC(2032, 5, 15, 12, 0))).not.toBe(shown);
  });
});
