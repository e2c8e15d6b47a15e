// One body per queue call. Each call (peek, clear, taskDone, a take, a put)
// is written once, as an Operation the queue makes when it opens, and its
// async and sync forms hand that one Operation (and the call's argument) to
// `run` or `runSync`: what differs between `clear` and `clearSync`, say, is
// only how the lock is taken and how durability is waited for. Operations
// are made once, not per call: a get or a taskDone allocates nothing here
// beyond the lock session's callback (a closure and an object per call cost
// a taskDone ~10%).

import type { LockSession, RunOptions } from './coordination/session.js';

export interface Operation<In, R, A = In> {
  /**
   * Runs first, before any lock is taken: argument checks and the queue's own
   * bookkeeping (a throw rejects the call); gives what the body works on.
   */
  prepare?: (input: In) => A;
  /** The call's work; it runs with the lock held when `locked`. */
  body: (arg: A) => R;
  /** Take the directory lock for the body (taskDone under autosave touches no file). */
  locked: boolean;
  /** Wait, after the body, until what it wrote is durable per the fsync option. */
  settles: boolean;
  /** How the lock session runs the body (`finishing`: work this process began under the lock). */
  runOptions?: RunOptions;
}

const NO_RUN_OPTIONS: RunOptions = {};

/** What waits for durability (the store, per the fsync option). */
export interface Settles {
  settle(): Promise<void>;
  settleSync(): void;
}

export class OperationRunner {
  readonly #hold: LockSession;
  readonly #durability: Settles;
  readonly #assertOpen: () => void;

  constructor(hold: LockSession, durability: Settles, assertOpen: () => void) {
    this.#hold = hold;
    this.#durability = durability;
    this.#assertOpen = assertOpen;
  }

  /**
   * Runs `operation` on `arg` without blocking the event loop: waits for the
   * lock, then for durability. Not async itself: one async step per call, as
   * a call written out by hand would take.
   */
  run<In, R, A>(operation: Operation<In, R, A>, input: In): Promise<R> {
    let ran: Promise<R>;
    try {
      this.#assertOpen();
      const arg = prepared(operation, input);
      if (!operation.locked) ran = Promise.resolve(operation.body(arg));
      else {
        ran = this.#hold.run(() => {
          // The queue may have closed while this call waited for the lock.
          this.#assertOpen();
          return operation.body(arg);
        }, operation.runOptions ?? NO_RUN_OPTIONS);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return operation.settles ? this.#settleAfter(ran) : ran;
  }

  async #settleAfter<R>(ran: Promise<R>): Promise<R> {
    const result = await ran;
    await this.#durability.settle();
    return result;
  }

  /** Runs `operation` on `arg` blocking the thread: for the lock (while another process has it) and for fsyncs. */
  runSync<In, R, A>(operation: Operation<In, R, A>, input: In): R {
    this.#assertOpen();
    const arg = prepared(operation, input);
    if (operation.locked) this.#hold.enterSync();
    const result = operation.body(arg);
    if (operation.settles) this.#durability.settleSync();
    return result;
  }
}

/** What the body of `operation` works on: `prepare`'s result, or the input itself. */
function prepared<In, R, A>(operation: Operation<In, R, A>, input: In): A {
  return operation.prepare === undefined ? (input as unknown as A) : operation.prepare(input);
}
