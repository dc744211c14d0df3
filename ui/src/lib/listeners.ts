// Listening to the shell's events for as long as a component lives: the listeners are set up
// asynchronously, so one whose set-up ends after the component went away must end at once.
import { onDestroy } from "svelte";

export type Unlisten = () => void;

export type ListenerGroup = {
  /** Adds a listener being set up; answers whether it listens (false: it failed, or the group ended first). */
  keep(subscription: Promise<Unlisten>): Promise<boolean>;
  /** Ends every listener of the group, and each one still being set up as soon as it is. */
  end(): void;
  readonly ended: boolean;
};

export function listenerGroup(): ListenerGroup {
  let ended = false;
  const offs: Unlisten[] = [];
  return {
    keep(subscription) {
      return subscription.then(
        (off) => {
          if (ended) {
            off();
            return false;
          }
          offs.push(off);
          return true;
        },
        () => false,
      );
    },
    end() {
      ended = true;
      for (const off of offs.splice(0)) off();
    },
    get ended() {
      return ended;
    },
  };
}

/**
 * Keeps `subscriptions` until the calling component is destroyed (call it while the component
 * starts). Resolves once each is set up or has failed: to true while the component lives, to
 * false when it went away meanwhile (so what comes after listening is not started for nothing).
 */
export function listenUntilDestroyed(...subscriptions: Promise<Unlisten>[]): Promise<boolean> {
  const group = listenerGroup();
  onDestroy(() => group.end());
  return Promise.all(subscriptions.map((s) => group.keep(s))).then(() => !group.ended);
}
