// An account's history as the details pane lists it: newest first, with the outcomes that
// mean success picked out. The outcomes are the Rust `Outcome` enum: a new one fails to
// compile here until it is given its colour.
import type { Event, Outcome } from "../ipc";

const GOOD: Record<Outcome, boolean> = {
  ok: true,
  started: false,
  cancelled: false,
  invalid: false,
  failed: false,
  refused: false,
  raised: false,
  "needs-sign-in": false,
};

export function newestFirst(events: readonly Event[]): Event[] {
  return events.slice().sort((a, b) => b.at_ms - a.at_ms);
}

/** Whether an event's outcome says it went well (shown in the "good" colour). */
export function succeeded(outcome: Outcome): boolean {
  return GOOD[outcome] === true;
}
