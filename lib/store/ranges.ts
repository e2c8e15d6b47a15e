// Sets of sequence numbers as lists of ranges: what a consumer holds, what was
// handed back, what was acknowledged above the prefix. Sorted lists are kept
// merged; a consumer's held list is in hand-out order instead.

/** Items [start, start + count). */
export interface Range {
  start: number;
  count: number;
}

/** The lowest item in `ranges`, or Infinity. */
export function lowestOf(ranges: readonly Range[]): number {
  let lowest = Infinity;
  for (const range of ranges) if (range.count > 0 && range.start < lowest) lowest = range.start;
  return lowest;
}

/**
 * Adds `range` to sorted, merged `ranges`, merging the ranges it touches or
 * overlaps, in place: found by bisection, so that acknowledging items one by
 * one (each at or near the end) costs no copy of the list.
 */
export function insertRange(ranges: Range[], range: Range): void {
  if (range.count <= 0) return;
  let start = range.start;
  let end = range.start + range.count;
  // The first range that ends at or after `start` (touching counts as overlapping).
  let first = 0;
  for (let hi = ranges.length; first < hi;) {
    const mid = (first + hi) >>> 1;
    if (ranges[mid].start + ranges[mid].count < start) first = mid + 1;
    else hi = mid;
  }
  let past = first;
  for (; past < ranges.length && ranges[past].start <= end; past++) {
    start = Math.min(start, ranges[past].start);
    end = Math.max(end, ranges[past].start + ranges[past].count);
  }
  if (past === first) {
    ranges.splice(first, 0, { start, count: end - start });
    return;
  }
  ranges[first].start = start;
  ranges[first].count = end - start;
  if (past - first > 1) ranges.splice(first + 1, past - first - 1);
}

/** Appends `seq` to hand-out-ordered `ranges`, extending the last range when it follows on. */
export function appendHeld(ranges: Range[], start: number, count: number): void {
  const last = ranges[ranges.length - 1];
  if (last !== undefined && last.start + last.count === start) last.count += count;
  else ranges.push({ start, count });
}

/** Removes and returns the first item of hand-out-ordered `ranges`. */
export function shiftHeld(ranges: Range[]): number | undefined {
  const first = ranges[0];
  if (first === undefined) return undefined;
  const seq = first.start;
  first.start++;
  if (--first.count === 0) ranges.shift();
  return seq;
}

/** Drops every item below `floor` from `ranges`. */
export function dropBelow(ranges: Range[], floor: number): void {
  for (let i = ranges.length - 1; i >= 0; i--) {
    const range = ranges[i];
    if (range.start + range.count <= floor) ranges.splice(i, 1);
    else if (range.start < floor) {
      range.count -= floor - range.start;
      range.start = floor;
    }
  }
}

export function countOf(ranges: readonly Range[]): number {
  let count = 0;
  for (const range of ranges) count += range.count;
  return count;
}

/** How many of the items in `ranges` are at or above `floor` (below it they are acknowledged). */
export function countFrom(ranges: readonly Range[], floor: number): number {
  let count = 0;
  for (const { start, count: length } of ranges) count += Math.max(0, start + length - Math.max(start, floor));
  return count;
}

/** Removes every item of sorted, merged `remove` from `ranges` (any order), keeping the order of what is left. */
export function subtractRanges(ranges: Range[], remove: readonly Range[]): void {
  if (remove.length === 0 || ranges.length === 0) return;
  const kept: Range[] = [];
  for (const range of ranges) {
    let start = range.start;
    const end = range.start + range.count;
    for (const cut of remove) {
      const cutEnd = cut.start + cut.count;
      if (cutEnd <= start || cut.start >= end) continue;
      if (cut.start > start) kept.push({ start, count: cut.start - start });
      start = Math.max(start, cutEnd);
      if (start >= end) break;
    }
    if (start < end) kept.push({ start, count: end - start });
  }
  ranges.length = 0;
  ranges.push(...kept);
}

/** The items of [from, to) that are not in sorted, merged `ranges`, as sorted ranges. */
export function gapsBetween(from: number, to: number, ranges: readonly Range[]): Range[] {
  const gaps: Range[] = [{ start: from, count: Math.max(0, to - from) }];
  subtractRanges(gaps, ranges);
  return gaps.filter((gap) => gap.count > 0);
}

/** One past the highest item in `ranges`, or -Infinity. */
export function endOf(ranges: readonly Range[]): number {
  let end = -Infinity;
  for (const range of ranges) if (range.count > 0 && range.start + range.count > end) end = range.start + range.count;
  return end;
}

/** The items of `seqs` that `ranges` (any order) does not hold; all of them when there are no ranges. */
export function missingFrom(ranges: readonly Range[] | undefined, seqs: readonly number[]): number[] {
  if (ranges === undefined) return [...seqs];
  return seqs.filter((seq) => !containsSeq(ranges, seq));
}

/** Whether `seq` lies in one of `ranges` (any order). */
export function containsSeq(ranges: readonly Range[], seq: number): boolean {
  return ranges.some((range) => seq >= range.start && seq < range.start + range.count);
}

/**
 * Drops from `list` (entries about single items, in place) those below the
 * prefix `floor` or in the acknowledged `acked`: they are done.
 */
export function forgetDone<E extends { seq: number }>(list: E[], floor: number, acked: readonly Range[]): void {
  if (list.length === 0) return;
  let kept = 0;
  for (const entry of list) {
    if (entry.seq < floor || containsSeq(acked, entry.seq)) continue;
    list[kept++] = entry;
  }
  list.length = kept;
}

/** Moves sorted, merged `moved` (all of it in `from`) out of `from` into sorted `into`. */
export function moveRanges(from: Range[], into: Range[], moved: readonly Range[]): void {
  subtractRanges(from, moved);
  for (const range of moved) insertRange(into, range);
}

/** `seqs` as sorted, merged ranges. */
export function rangesOf(seqs: number[]): Range[] {
  if (seqs.length === 0) return [];
  if (seqs.length > 1) seqs.sort((a, b) => a - b);
  const ranges: Range[] = [{ start: seqs[0], count: 1 }];
  for (let i = 1; i < seqs.length; i++) {
    const last = ranges[ranges.length - 1];
    if (seqs[i] === last.start + last.count) last.count++;
    else if (seqs[i] >= last.start + last.count) ranges.push({ start: seqs[i], count: 1 });
  }
  return ranges;
}
