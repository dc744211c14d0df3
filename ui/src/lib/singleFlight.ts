// "One load at a time" for anything the window reloads (the account list, one account's
// details): reloads asked for while one runs are folded into a single run after it.

/**
 * Wraps `run` so that only one runs at a time. A call made while one runs marks it to run
 * once more when it ends, however many calls came meanwhile; every call's promise settles
 * when the run that covers it has ended (and rejects if that run threw).
 */
export function singleFlight(run: () => Promise<void>): () => Promise<void> {
  let current: Promise<void> | null = null;
  let again = false;
  return () => {
    if (current) {
      again = true;
      return current;
    }
    current = (async () => {
      try {
        do {
          again = false;
          await run();
        } while (again);
      } finally {
        current = null;
      }
    })();
    return current;
  };
}
