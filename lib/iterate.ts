// `for await (const item of queue)`: items forever, waiting when empty. An
// item is acknowledged when the loop asks for the next one, so an item whose
// loop body throws or breaks out stays unacknowledged. The loop ends when the
// queue is closed.

import { QueueError } from './errors.js';
import type { HandOutCount } from './hand-outs.js';

export interface IteratedQueue<T> {
  /** Takes one item, waiting while there is none. */
  take(): Promise<T>;
  /** Acknowledges the oldest item handed out (taskDone). */
  acknowledge(): Promise<void>;
  /** The queue's hand-out counts, to tell whether the loop body acknowledged already. */
  counts: HandOutCount;
}

export function iterate<T>(queue: IteratedQueue<T>): AsyncIterator<T> {
  /** The hand-out count that the item last yielded brought the queue to. */
  let yielded = 0;
  return {
    next: async (): Promise<IteratorResult<T>> => {
      try {
        // The body may already have called taskDone for the item (before a break, say).
        if (yielded > 0 && queue.counts.acknowledged < yielded) await queue.acknowledge();
        const value = await queue.take();
        yielded = queue.counts.handedOut;
        return { value, done: false };
      } catch (error) {
        if (error instanceof QueueError && error.code === 'ERR_QUEUE_CLOSED') return { value: undefined, done: true };
        throw error;
      }
    },
    return: async (): Promise<IteratorResult<T>> => ({ value: undefined, done: true }),
  };
}
