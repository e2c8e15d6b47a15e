// Callers waiting for something to change (an item to arrive, room to free
// up), woken in the order they started waiting. A waiter may give up at a
// deadline or when its AbortSignal fires; every timer and abort listener is
// removed as soon as the waiter is settled, so nothing keeps the process alive.
// A caller that looked (and found nothing) and then waits may miss a wake that
// came in between, with no one waiting yet: it passes the `wakes` count it saw
// when it looked, and a wait that has missed one resolves at once.

interface Waiter {
  wake(): void;
  fail(error: unknown): void;
}

export class WaitList {
  #waiters = new Set<Waiter>();
  #wakes = 0;

  /** How many wakes were sent so far (to every waiter or some). */
  get wakes(): number {
    return this.#wakes;
  }

  get length(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves when woken; rejects with `onTimeout()` once `deadline`
   * (a `performance.now()` time) passes, or with the signal's reason on abort.
   * Resolves at once if a wake was sent since `wakes` read `seen`.
   */
  wait(deadline: number | undefined, signal: AbortSignal | undefined, onTimeout: () => Error, seen = this.#wakes): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      if (seen !== this.#wakes) return resolve();
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => waiter.fail(signal?.reason);
      const stopWaiting = (): void => {
        this.#waiters.delete(waiter);
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        wake: () => {
          stopWaiting();
          resolve();
        },
        fail: (error) => {
          stopWaiting();
          reject(error);
        },
      };
      this.#waiters.add(waiter);
      if (deadline !== undefined) {
        timer = setTimeout(() => waiter.fail(onTimeout()), Math.max(0, deadline - performance.now()));
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Wakes up to `count` of the longest waiting. */
  wake(count = 1): void {
    this.#wakes++;
    for (const waiter of this.#waiters) {
      if (count-- <= 0) break;
      waiter.wake();
    }
  }

  wakeAll(): void {
    this.#wakes++;
    for (const waiter of [...this.#waiters]) waiter.wake();
  }

  failAll(error: unknown): void {
    for (const waiter of [...this.#waiters]) waiter.fail(error);
  }
}
