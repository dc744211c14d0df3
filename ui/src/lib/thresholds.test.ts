import { describe, expect, it } from "vitest";
import { formatThreshold, formatThresholds, parseThresholds } from "./thresholds";

describe("parseThresholds", () => {
  it("reads commas or spaces, any case, largest first, without repeats", () => {
    expect(parseThresholds("1h, 7d,1d")).toEqual({ ok: true, seconds: [604800, 86400, 3600] });
    expect(parseThresholds("90m 90M 30s")).toEqual({ ok: true, seconds: [5400, 30] });
    expect(parseThresholds("24h, 1d")).toEqual({ ok: true, seconds: [86400] });
  });

  it("joins a number written apart from its unit", () => {
    expect(parseThresholds("7 d, 1 h")).toEqual({ ok: true, seconds: [604800, 3600] });
  });

  it("accepts nothing as no thresholds", () => {
    expect(parseThresholds("  ")).toEqual({ ok: true, seconds: [] });
  });

  it("refuses what is not a duration, naming it", () => {
    const r = parseThresholds("7d, every day");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain('"every"');
    const bare = parseThresholds("12");
    expect(bare.ok).toBe(false);
    if (!bare.ok) expect(bare.message).toContain('"12"');
  });

  it("refuses zero and durations too large to count exactly", () => {
    const zero = parseThresholds("0h");
    expect(zero.ok).toBe(false);
    if (!zero.ok) expect(zero.message).toBe('"0h" must be more than zero.');
    expect(parseThresholds("99999999999999999d").ok).toBe(false);
  });
});

describe("formatThreshold", () => {
  it("uses the largest unit that divides exactly", () => {
    expect(formatThreshold(86400)).toBe("1d");
    expect(formatThreshold(5400)).toBe("90m");
    expect(formatThreshold(7200)).toBe("2h");
    expect(formatThreshold(61)).toBe("61s");
    expect(formatThreshold(0)).toBe("0s");
  });

  it("lists thresholds largest first and reads back as it was", () => {
    const text = formatThresholds([3600, 604800, 86400]);
    expect(text).toBe("7d, 1d, 1h");
    expect(parseThresholds(text)).toEqual({ ok: true, seconds: [604800, 86400, 3600] });
  });
});
