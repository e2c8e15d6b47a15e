// One body per queue call. Each call (peek, clear, taskDone, a take, a put
// that does not wait) is written once as an Operation, and its async and sync
// forms hand that one Operation to `run` or `runSync`: what differs between
// `clear` and `clearSync`, say, is only how the lock is taken and how
// durability is waited for.

import type { LockSession, RunOptions } from './coordination/session.js';
import type { Durability } from './store/durability.js';

export interface Operation<R> {
  /** The call's work; it runs with the lock held when `locked`. */
  body: () => R;
  /** Take the directory lock for the body (taskDone under autosave touches no file). */
  locked: boolean;
  /** Wait, after the body, until what it wrote is durable per the fsync option. */
  settles: boolean;
  /** The body finishes work this process began under the lock (see RunOptions.finishing). */
  finishing?: RunOptions['finishing'];
}

export class OperationRunner {
  readonly #hold: LockSession;
  readonly #durability: Durability;
  readonly #assertOpen: () => void;

  constructor(hold: LockSession, durability: Durability, assertOpen: () => void) {
    this.#hold = hold;
    this.#durability = durability;
    this.#assertOpen = assertOpen;
  }

  /** Runs `operation` without blocking the event loop: waits for the lock, then for durability. */
  async run<R>(operation: Operation<R>): Promise<R> {
    this.#assertOpen();
    const { body, finishing } = operation;
    const result = operation.locked
      ? await this.#hold.run(
          () => {
            // The queue may have closed while this call waited for the lock.
            this.#assertOpen();
            return body();
          },
          { finishing },
        )
      : body();
    if (operation.settles) await this.#durability.settle();
    return result;
  }

  /** Runs `operation` blocking the thread: for the lock (while another process has it) and for fsyncs. */
  runSync<R>(operation: Operation<R>): R {
    this.#assertOpen();
    if (operation.locked) this.#hold.enterSync();
    const result = operation.body();
    if (operation.settles) this.#durability.settleSync();
    return result;
  }
}
