// Alert thresholds as people type them ("7d, 1d, 1h") <-> the seconds the preferences store.

const UNIT: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };

export type Parsed = { ok: true; seconds: number[] } | { ok: false; message: string };

/** Accepts "7d, 1d, 1h", "7d 1d 1h", "90m"; answers the seconds largest first, without repeats. */
export function parseThresholds(text: string): Parsed {
  const seconds: number[] = [];
  const tokens = text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter(Boolean);
  // "7 d" is one threshold written with a space: join a bare number with the unit after it.
  for (let i = 0; i < tokens.length; i++) {
    let t = tokens[i];
    if (/^\d+$/.test(t) && i + 1 < tokens.length && /^[dhms]$/i.test(tokens[i + 1])) {
      t += tokens[++i];
    }
    const m = /^(\d+)([dhms])$/i.exec(t);
    if (!m) {
      return {
        ok: false,
        message: `"${t}" is not a duration. Write a number followed by d, h, m or s, for example 7d, 1d, 1h.`,
      };
    }
    const s = Number(m[1]) * UNIT[m[2].toLowerCase()];
    if (!Number.isSafeInteger(s) || s <= 0) {
      return { ok: false, message: `"${t}" must be more than zero.` };
    }
    if (!seconds.includes(s)) seconds.push(s);
  }
  seconds.sort((a, b) => b - a);
  return { ok: true, seconds };
}

/** One threshold in the largest unit that divides it exactly: 86400 -> "1d", 5400 -> "90m". */
export function formatThreshold(s: number): string {
  for (const u of ["d", "h", "m"]) {
    if (s > 0 && s % UNIT[u] === 0) return `${s / UNIT[u]}${u}`;
  }
  return `${s}s`;
}

export function formatThresholds(seconds: readonly number[]): string {
  return [...seconds].sort((a, b) => b - a).map(formatThreshold).join(", ");
}
