// The accounts the window shows, kept in one place: reloaded as soon as the shell says something
// changed (an engine event, including the engine's vault-changed when another process such as
// the command line wrote the vault, a sign-in's outcome, the tray's "Renew now"), and polled
// slowly only as a fallback.
import type { AccountSummary, ShellError, events as shellEvents, shell as shellCalls } from "../ipc";
import { mergeListing } from "./accounts";
import { asShellError } from "./errors";
import { listenerGroup } from "./listeners";
import { singleFlight } from "./singleFlight";

/** What the store needs from the shell: in the window `shell` and `events` from ../ipc. */
export type AccountsSource = {
  shell: Pick<typeof shellCalls, "listAccounts">;
  events: Pick<typeof shellEvents, "onEngineEvent" | "onAccountsChanged" | "onSignInFinished">;
};

/** Without events, a vault this big is polled less often: each listing of it costs the shell more. */
export const BIG_VAULT = 2000;

/**
 * How long a quiet list waits before asking the shell again. While the events arrive they announce
 * every change, other processes' writes included (the engine's `vault-changed`), so polling is a
 * slow fallback. Without the events it is the only way to see changes.
 */
export function pollInterval(count: number, listening: boolean): number {
  if (listening) return 30_000;
  return count > BIG_VAULT ? 10_000 : 2_000;
}

export class AccountsStore {
  /** Sorted by urgency. Raw: 10,000 rows are replaced as a whole, never edited in place. */
  list: AccountSummary[] = $state.raw([]);
  /** Why the last listing failed, or null when it worked. */
  error: ShellError | null = $state(null);
  /** Whether a listing has been answered yet, well or not. */
  loaded = $state(false);
  /** Whether every event listener is set up (until then, and without them, polling is faster). */
  listening = $state(false);

  /** Lists again; a call during a listing runs one more after it. */
  readonly reload: () => Promise<void>;

  private readonly source: AccountsSource;
  private poll: ReturnType<typeof setTimeout> | undefined;
  private running = false;

  constructor(source: AccountsSource) {
    this.source = source;
    this.reload = singleFlight(() => this.listOnce());
  }

  /** Lists now and keeps the list current until the answered function is called. */
  start(): () => void {
    this.running = true;
    const group = listenerGroup();
    const reload = () => void this.reload();
    const { events } = this.source;
    void Promise.all([
      group.keep(events.onEngineEvent(reload)),
      group.keep(events.onAccountsChanged(reload)),
      group.keep(events.onSignInFinished(reload)),
    ]).then((set) => {
      if (!this.running) return;
      this.listening = set.every(Boolean);
      this.schedule();
    });
    void this.reload();
    return () => {
      this.running = false;
      group.end();
      clearTimeout(this.poll);
    };
  }

  private async listOnce() {
    try {
      const fresh = await this.source.shell.listAccounts();
      this.error = null;
      const next = mergeListing(this.list, fresh);
      // An unchanged listing (most polls) leaves the list and its rows alone.
      if (next !== this.list) this.list = next;
    } catch (e) {
      this.error = asShellError(e);
    } finally {
      this.loaded = true;
      this.schedule();
    }
  }

  /** The next poll, counted from the last listing: events keep a busy list from being polled at all. */
  private schedule() {
    clearTimeout(this.poll);
    if (!this.running) return;
    this.poll = setTimeout(() => void this.reload(), pollInterval(this.list.length, this.listening));
  }
}
