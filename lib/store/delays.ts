// Items given back with a delay (`nack(id, { delay })`): kept out of the hand-out
// until their due time, then handed out again before newer items (moved to
// the returned list). Sorted by due time, then by seq, so that the earliest
// comes first and items due together go in queue order. They live in `state`
// alone: a lost state forgets the delay, and the item comes back at once
// (see docs/format.md).

import { insertRange, rangesOf, subtractRanges, type Range } from './ranges.js';

export interface Delayed {
  seq: number;
  /** When it may be handed out again, ms since the epoch. */
  due: number;
}

/** Adds `seq`, due at `due`, in its place. */
export function addDelayed(list: Delayed[], seq: number, due: number): void {
  let at = list.length;
  while (at > 0 && (list[at - 1].due > due || (list[at - 1].due === due && list[at - 1].seq > seq))) at--;
  list.splice(at, 0, { seq, due });
}

/** Moves `ranges` (all in `held`) out of `held` into `list`, due at `due`. */
export function delayRanges(held: Range[], list: Delayed[], ranges: readonly Range[], due: number): void {
  subtractRanges(held, ranges);
  for (const { start, count } of ranges) for (let seq = start; seq < start + count; seq++) addDelayed(list, seq, due);
}

/** Moves the items due now into sorted `returned` (handed out before newer items); whether any came due. */
export function returnDue(list: Delayed[], returned: Range[]): boolean {
  if (list.length === 0 || list[0].due > Date.now()) return false;
  for (const range of rangesOf(takeDue(list, Date.now()))) insertRange(returned, range);
  return true;
}

/** How many are due at `now`. */
export function countDue(list: readonly Delayed[], now: number): number {
  let count = 0;
  while (count < list.length && list[count].due <= now) count++;
  return count;
}

/** Takes out and returns the seqs due at `now`, earliest first. */
export function takeDue(list: Delayed[], now: number): number[] {
  const due = countDue(list, now);
  return due === 0 ? [] : list.splice(0, due).map((entry) => entry.seq);
}

/** The lowest seq delayed (Infinity when none): the prefix may not pass it. */
export function lowestDelayed(list: readonly Delayed[]): number {
  let lowest = Infinity;
  for (const entry of list) if (entry.seq < lowest) lowest = entry.seq;
  return lowest;
}
