// The timers that run while calls of a queue wait, for what no message
// announces: a poll every pollInterval ms (puts by processes without a notify
// channel, or on other hosts), and while getters wait, a look every few ms for
// consumers that died holding items (their items come back at once). Each
// timer stops by itself once nobody waits, so nothing keeps the process alive.

export interface WaitTimerHooks {
  /** Whether any call waits (items, room, join). */
  anyWaiting(): boolean;
  /** Whether a getter waits. */
  gettersWaiting(): boolean;
  /** The poll's tick: let every waiting call look. */
  poll(): void;
  /** Without the lock: whether another consumer holds items and looks dead. */
  deadHolderSuspected(): boolean;
  /** One does: wake the getters. */
  deadHolderFound(): void;
}

export class WaitTimers {
  readonly #pollInterval: number;
  readonly #deadCheckMs: number;
  readonly #hooks: WaitTimerHooks;
  #pollTimer: NodeJS.Timeout | undefined;
  #deadWatchTimer: NodeJS.Timeout | undefined;
  #dueTimer: NodeJS.Timeout | undefined;
  /** When #dueTimer fires (ms since the epoch). */
  #dueAt = Infinity;

  constructor(pollInterval: number, deadCheckMs: number, hooks: WaitTimerHooks) {
    this.#pollInterval = pollInterval;
    this.#deadCheckMs = deadCheckMs;
    this.#hooks = hooks;
  }

  /** Polls every pollInterval ms while any call waits. */
  pollWhileWaiting(): void {
    if (this.#pollTimer !== undefined) return;
    this.#pollTimer = setInterval(() => {
      if (!this.#hooks.anyWaiting()) return this.stop();
      this.#hooks.poll();
    }, this.#pollInterval);
  }

  /** While a getter waits, looks for consumers that died holding items. */
  watchForDeadConsumers(): void {
    if (this.#deadWatchTimer !== undefined) return;
    this.#deadWatchTimer = setInterval(() => {
      if (!this.#hooks.gettersWaiting()) {
        clearInterval(this.#deadWatchTimer);
        this.#deadWatchTimer = undefined;
        return;
      }
      let suspected = false;
      try {
        suspected = this.#hooks.deadHolderSuspected();
      } catch {
        // The next look, or the getter's own take, reports a real problem.
      }
      if (suspected) this.#hooks.deadHolderFound();
    }, this.#deadCheckMs);
  }

  /**
   * While getters wait: lets them look at `time` (ms since the epoch), when a
   * delayed item comes due. One timer, for the earliest time asked.
   */
  wakeAt(time: number): void {
    if (time >= this.#dueAt) return;
    clearTimeout(this.#dueTimer);
    this.#dueAt = time;
    // A millisecond late rather than early: the item is due at `time`, not before.
    this.#dueTimer = setTimeout(
      () => {
        this.#dueTimer = undefined;
        this.#dueAt = Infinity;
        if (this.#hooks.gettersWaiting()) this.#hooks.poll();
      },
      Math.max(0, time - Date.now() + 1),
    );
  }

  stop(): void {
    clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
    this.#dueAt = Infinity;
    clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
    clearInterval(this.#deadWatchTimer);
    this.#deadWatchTimer = undefined;
  }
}
