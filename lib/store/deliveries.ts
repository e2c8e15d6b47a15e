// How many times each item has been handed out, for `Entry.deliveries` (and,
// later, maxDeliveries). Kept only for items handed out more than once and
// not yet acknowledged, sorted by seq: an item handed out for the first time
// has 1 without an entry, and an item waiting in the returned list without
// one was handed out once. In the usual run (no item handed out twice) the
// list stays empty and costs `state` nothing. It lives in `state` alone: a
// lost state starts the counts again (see docs/format.md).

export interface Delivery {
  seq: number;
  /** Times handed out so far (2 or more). */
  deliveries: number;
}

/** The index of the first entry at or after `seq`. */
function firstAtOrAfter(list: readonly Delivery[], seq: number): number {
  let lo = 0;
  for (let hi = list.length; lo < hi;) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Times item `seq` has been handed out so far; `handedOutBefore`: it comes from the returned list. */
export function deliveriesOf(list: readonly Delivery[], seq: number, handedOutBefore: boolean): number {
  if (!handedOutBefore) return 0;
  const at = firstAtOrAfter(list, seq);
  return at < list.length && list[at].seq === seq ? list[at].deliveries : 1;
}

/** Counts one more hand-out of `seq` and returns the new count (1 for an item never handed out: no entry). */
export function countHandOut(list: Delivery[], seq: number, handedOutBefore: boolean): number {
  if (!handedOutBefore) return 1;
  const at = firstAtOrAfter(list, seq);
  if (at < list.length && list[at].seq === seq) return ++list[at].deliveries;
  list.splice(at, 0, { seq, deliveries: 2 });
  return 2;
}
