// The shapes the store hands its callers (re-exported by store.ts).

/** A lock-free look at the shared counters. */
export interface StoreSnapshot {
  waiting: number;
  headSeq: number;
  ackSeq: number;
  readSeq: number;
}

/** An item as `take` and `peekEntry` give it with its bookkeeping. */
export interface StoreEntry {
  seq: number;
  value: unknown;
  /** When it was put, ms since the epoch. */
  timestamp: number;
  /** Times handed out, this hand-out included (peekEntry: so far). */
  deliveries: number;
}

/** How take hands items out: held until acknowledged, or acknowledged at once (autosave). */
export type TakeMode = 'hold' | 'acknowledge';
