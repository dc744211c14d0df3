import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AccountSummary, EngineEvent, SignInOutcome } from "../ipc";
import { ShellError } from "../ipc/shellError";
import { IPC_CODE } from "../ipc/generated/ipc";
import { summary } from "../test/fixtures";
import { AccountsStore, BIG_VAULT, pollInterval, type AccountsSource } from "./accountsStore.svelte";

type Listener = "engine" | "changed" | "signIn";

/** A stand-in shell: answers listings from a queue and hands its events to the test. */
class FakeShell {
  answers: (AccountSummary[] | Error)[] = [];
  current: AccountSummary[] = [];
  listings = 0;
  /** While set, listings wait for `release()`. */
  held: (() => void)[] | null = null;
  handlers: Record<Listener, ((payload: never) => void)[]> = { engine: [], changed: [], signIn: [] };
  unlistened: Listener[] = [];
  failing = new Set<Listener>();
  /** Listeners answered only when the test resolves them. */
  late: (() => void)[] | null = null;

  source(): AccountsSource {
    const listen =
      (kind: Listener) =>
      (f: (payload: never) => void): Promise<() => void> => {
        if (this.failing.has(kind)) return Promise.reject(new Error("no event system"));
        this.handlers[kind].push(f);
        const off = () => {
          this.unlistened.push(kind);
        };
        if (this.late) {
          const late = this.late;
          return new Promise((resolve) => late.push(() => resolve(off)));
        }
        return Promise.resolve(off);
      };
    return {
      shell: {
        listAccounts: async () => {
          this.listings += 1;
          if (this.held) await new Promise<void>((r) => this.held!.push(r));
          const next = this.answers.shift() ?? this.current;
          if (next instanceof Error) throw next;
          this.current = next;
          return next.map((a) => ({ ...a, labels: [...a.labels] }));
        },
      },
      events: {
        onEngineEvent: listen("engine") as AccountsSource["events"]["onEngineEvent"],
        onAccountsChanged: listen("changed") as AccountsSource["events"]["onAccountsChanged"],
        onSignInFinished: listen("signIn") as AccountsSource["events"]["onSignInFinished"],
      },
    };
  }

  emit(kind: Listener, payload?: EngineEvent | SignInOutcome) {
    for (const f of this.handlers[kind]) (f as (p: unknown) => void)(payload);
  }

  release() {
    const waiting = this.held ?? [];
    this.held = null;
    waiting.forEach((r) => r());
  }
}

const settle = () => vi.advanceTimersByTimeAsync(0);

/** How many listings the shell had answered after each of `steps` more milliseconds. */
async function listingsAfter(fake: FakeShell, ...steps: number[]): Promise<number[]> {
  const seen: number[] = [];
  for (const ms of steps) {
    await vi.advanceTimersByTimeAsync(ms);
    seen.push(fake.listings);
  }
  return seen;
}

describe("AccountsStore", () => {
  let fake: FakeShell;
  let store: AccountsStore;
  let stop: () => void;

  beforeEach(() => {
    vi.useFakeTimers();
    fake = new FakeShell();
    store = new AccountsStore(fake.source());
  });

  afterEach(() => {
    stop?.();
    vi.useRealTimers();
  });

  it("lists at start, most urgent first, and says when it has answered", async () => {
    fake.current = [summary({ name: "b" }), summary({ name: "a", state: "needs-sign-in" })];
    expect(store.loaded).toBe(false);
    stop = store.start();
    await settle();
    expect(store.loaded).toBe(true);
    expect(store.list.map((a) => a.name)).toEqual(["a", "b"]);
    expect(store.listening).toBe(true);
  });

  it("reloads at once on an engine event, an accounts-changed event and a sign-in outcome", async () => {
    fake.current = [summary({ name: "a" })];
    stop = store.start();
    await settle();
    expect(fake.listings).toBe(1);

    fake.answers.push([summary({ name: "a", state: "renew-soon" })]);
    fake.emit("engine", { type: "renewed", account: "a" });
    await settle();
    expect(fake.listings).toBe(2);
    expect(store.list[0].state).toBe("renew-soon");

    fake.emit("changed");
    await settle();
    expect(fake.listings).toBe(3);

    fake.answers.push([summary({ name: "a" }), summary({ name: "b" })]);
    fake.emit("signIn", { account: "b", ok: true, message: "Signed in", code: null });
    await settle();
    expect(fake.listings).toBe(4);
    expect(store.list.map((a) => a.name)).toEqual(["a", "b"]);
  });

  it("keeps the list and its unchanged rows when a listing says the same", async () => {
    fake.current = [summary({ name: "a", labels: ["prod"] }), summary({ name: "b" })];
    stop = store.start();
    await settle();
    const first = store.list;
    const b = first.find((x) => x.name === "b");

    fake.emit("changed");
    await settle();
    expect(store.list).toBe(first);

    fake.answers.push([summary({ name: "a", labels: ["prod", "eu"] }), summary({ name: "b" })]);
    fake.emit("changed");
    await settle();
    expect(store.list).not.toBe(first);
    expect(store.list.find((x) => x.name === "b")).toBe(b);
    expect(store.list.find((x) => x.name === "a")?.labels).toEqual(["prod", "eu"]);
  });

  it("folds events that come during a listing into one more listing", async () => {
    fake.current = [summary()];
    stop = store.start();
    await settle();
    fake.held = [];
    fake.emit("engine", { type: "renewed", account: "acct" });
    fake.emit("engine", { type: "renewed", account: "acct" });
    fake.emit("changed");
    await settle();
    expect(fake.listings).toBe(2);
    fake.release();
    await settle();
    fake.release();
    await settle();
    expect(fake.listings).toBe(3);
  });

  it("polls a quiet list slowly while the events arrive, counted from the last listing", async () => {
    fake.current = [summary()];
    stop = store.start();
    await settle();
    expect(await listingsAfter(fake, 29_900, 100)).toEqual([1, 2]);

    // An event-driven listing 3 s later moves the next poll to 30 s after it.
    await vi.advanceTimersByTimeAsync(3_000);
    fake.emit("engine", { type: "renewed", account: "acct" });
    expect(await listingsAfter(fake, 0, 29_900, 100)).toEqual([3, 3, 4]);
  });

  it("polls as often as before the events when a listener cannot be set up", async () => {
    fake.failing.add("changed");
    fake.current = [summary()];
    stop = store.start();
    await settle();
    expect(store.listening).toBe(false);
    expect(await listingsAfter(fake, 1_900, 100, 2_000)).toEqual([1, 2, 3]);
    // The listeners that were set up still reload at once.
    fake.emit("engine", { type: "renewed", account: "acct" });
    await settle();
    expect(fake.listings).toBe(4);
  });

  it("reloads at once when the engine says another process changed the vault", async () => {
    fake.current = [summary()];
    stop = store.start();
    await settle();
    fake.current = [summary(), summary({ name: "added-by-the-cli" })];
    fake.emit("engine", { type: "vault-changed" });
    await settle();
    expect(fake.listings).toBe(2);
    expect(store.list.map((a) => a.name)).toContain("added-by-the-cli");
  });

  it("without events, polls a big vault every 10 s", async () => {
    fake.failing.add("changed");
    fake.current = Array.from({ length: BIG_VAULT + 1 }, (_, i) => summary({ name: `a${i}` }));
    stop = store.start();
    await settle();
    expect(await listingsAfter(fake, 9_900, 100)).toEqual([1, 2]);
  });

  it("keeps the last list when a listing fails, says why, and clears that once one works", async () => {
    fake.current = [summary()];
    stop = store.start();
    await settle();
    fake.answers.push(new ShellError({ code: IPC_CODE.keyringUnavailable, message: "The keyring is locked." }));
    fake.emit("changed");
    await settle();
    expect(store.error?.message).toBe("The keyring is locked.");
    expect(store.error?.code).toBe(IPC_CODE.keyringUnavailable);
    expect(store.list.map((a) => a.name)).toEqual(["acct"]);

    fake.emit("changed");
    await settle();
    expect(store.error).toBeNull();
  });

  it("a failed first listing still counts as answered", async () => {
    fake.answers.push(new Error("boom"));
    stop = store.start();
    await settle();
    expect(store.loaded).toBe(true);
    expect(store.error?.message).toBe("boom");
    expect(store.list).toEqual([]);
  });

  it("stops listening and polling when stopped, even for a listener set up afterwards", async () => {
    fake.late = [];
    fake.current = [summary()];
    stop = store.start();
    await settle();
    const [first, ...rest] = fake.late;
    first();
    await settle();
    stop();
    rest.forEach((resolve) => resolve());
    await settle();
    expect(fake.unlistened.sort()).toEqual(["changed", "engine", "signIn"]);
    const listed = fake.listings;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.listings).toBe(listed);
  });
});

describe("pollInterval", () => {
  it("is a slow fallback with events, as fast as before without them, slower for a big vault", () => {
    expect(pollInterval(10, true)).toBe(30_000);
    expect(pollInterval(10, false)).toBe(2_000);
    expect(pollInterval(BIG_VAULT, false)).toBe(2_000);
    expect(pollInterval(BIG_VAULT + 1, true)).toBe(30_000);
    expect(pollInterval(BIG_VAULT + 1, false)).toBe(10_000);
  });
});
