// What `stats()` reports of a queue directory: counts from the shared state
// (under the lock, so they are the current ones) and the chunk files' disk use.

import { chunksOnDisk } from './chunk.js';
import type { Consumers } from './consumers.js';
import { countDue } from './delays.js';
import { heldIn, type SharedState } from './state.js';

export interface StoreStats {
  /** Items that may be handed out now (size), counting those of consumers now gone. */
  waiting: number;
  /** Handed out and not acknowledged, by every process. */
  held: number;
  /** Given back with a delay that has not passed. */
  delayed: number;
  /** The chunk files and the bytes they hold. */
  chunks: number;
  bytes: number;
  /** When a consumer last took, acknowledged or gave back an item, ms since the epoch; null when not since the state was made. */
  lastSeen: number | null;
}

export function statsOf(dir: string, state: SharedState, consumers: Consumers): StoreStats {
  const { chunks, bytes } = chunksOnDisk(dir);
  return {
    waiting: consumers.waitingCountingGone(state),
    held: heldIn(state),
    delayed: state.delayed.length - countDue(state.delayed, Date.now()),
    chunks,
    bytes,
    lastSeen: state.lastSeen > 0 ? state.lastSeen : null,
  };
}
