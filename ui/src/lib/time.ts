// Time left, as the list shows it: "59m 12s", "2d 3h", or "expired 3m ago".

export function span(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${s}s`;
}

export function timeLeft(at: number | null, now: number): string {
  if (at === null) return "no expiry";
  const d = at - now;
  return d >= 0 ? span(d) : `expired ${span(d)} ago`;
}

/** An instant in the user's local time, or a dash when there is none. */
export function localTime(ms: number | null): string {
  if (ms === null) return "—";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Time left until a person has to act: "2d 3h", "passed 5m ago", or a dash when there is no deadline. */
export function deadlineLeft(at: number | null, now: number): string {
  if (at === null) return "—";
  const d = at - now;
  return d >= 0 ? span(d) : `passed ${span(d)} ago`;
}
