// An account's history as the details pane lists it: newest first, with the outcomes that
// mean success picked out (the one place that reads outcome words).
import type { Event } from "../ipc";

const SUCCESS = /^(ok|success|succeeded|done)$/i;

export function newestFirst(events: readonly Event[]): Event[] {
  return events.slice().sort((a, b) => b.at_ms - a.at_ms);
}

/** Whether an event's outcome says it went well (shown in the "good" colour). */
export function succeeded(outcome: string): boolean {
  return SUCCESS.test(outcome);
}
