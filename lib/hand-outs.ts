// How many items one Queue handed out and how many of those taskDone
// acknowledged (oldest first): taskDone(count) may acknowledge only what is
// out, and join under autosave waits until the two counts meet.

import { QueueError } from './errors.js';
import { assertCount } from './arguments.js';

export class HandOutCount {
  handedOut = 0;
  acknowledged = 0;
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  get allAcknowledged(): boolean {
    return this.acknowledged === this.handedOut;
  }

  handOut(count: number): void {
    this.handedOut += count;
  }

  /** Counts `count` more acknowledged, or throws (counting nothing) when fewer are out. */
  acknowledge(count: number): void {
    assertCount(this.#dir, count, 'taskDone(count)');
    const outstanding = this.handedOut - this.acknowledged;
    if (count > outstanding) {
      const what =
        count === 1
          ? 'taskDone() was called more times than items were handed out'
          : `taskDone(${count}) asks for more items than the ${outstanding} handed out and not acknowledged`;
      throw new QueueError('ERR_TASK_DONE', this.#dir, `${what}; nothing was acknowledged`);
    }
    this.acknowledged += count;
  }

  /** `count` items handed out are this queue's no longer: acknowledged or given back by id (the store checked them). */
  release(count: number): void {
    this.acknowledged = Math.min(this.handedOut, this.acknowledged + count);
  }

  /** clear() removed whatever was out. */
  acknowledgeAll(): void {
    this.acknowledged = this.handedOut;
  }
}
