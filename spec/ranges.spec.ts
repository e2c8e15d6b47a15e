// lib/store/ranges.ts: sets of sequence numbers as sorted, merged range lists,
// checked against a plain Set of numbers. Randomized with fast-check; the
// seed is printed, and PERQ_RANGES_SEED=<seed> replays a run.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { dropBelow, insertRange, type Range } from '../lib/store/ranges.js';

const SEED = Number(process.env.PERQ_RANGES_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** The numbers in `ranges`, in order. */
function members(ranges: readonly Range[]): number[] {
  return ranges.flatMap((range) => Array.from({ length: range.count }, (_, i) => range.start + i));
}

/** Sorted, merged: each range non-empty and separated from the next by at least one number. */
function assertCanonical(ranges: readonly Range[]): void {
  for (const [i, range] of ranges.entries()) {
    assert.ok(range.count > 0, `range ${i} is empty`);
    if (i > 0) assert.ok(ranges[i - 1].start + ranges[i - 1].count < range.start, `ranges ${i - 1} and ${i} touch or overlap`);
  }
}

const range = fc.record({ start: fc.integer({ min: 0, max: 200 }), count: fc.integer({ min: 0, max: 12 }) });

describe('insertRange', () => {
  test(`any sequence of inserts keeps the list sorted and merged and holds exactly their union (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.array(range, { maxLength: 60 }), (inserts) => {
        const ranges: Range[] = [];
        const model = new Set<number>();
        for (const added of inserts) {
          const given = [added.start, added.count];
          insertRange(ranges, added);
          assert.deepEqual([added.start, added.count], given, 'the range passed in is not changed');
          for (let i = 0; i < added.count; i++) model.add(added.start + i);
          assertCanonical(ranges);
          assert.deepEqual(
            members(ranges),
            [...model].sort((a, b) => a - b),
          );
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('merges with the neighbour it touches on either side, bridges a gap, and inserts between without merging', () => {
    const ranges: Range[] = [
      { start: 10, count: 5 },
      { start: 20, count: 5 },
    ];
    insertRange(ranges, { start: 15, count: 1 });
    assert.deepEqual(ranges, [
      { start: 10, count: 6 },
      { start: 20, count: 5 },
    ]);
    insertRange(ranges, { start: 17, count: 1 });
    assert.deepEqual(ranges, [
      { start: 10, count: 6 },
      { start: 17, count: 1 },
      { start: 20, count: 5 },
    ]);
    insertRange(ranges, { start: 16, count: 4 });
    assert.deepEqual(ranges, [{ start: 10, count: 15 }]);
    insertRange(ranges, { start: 0, count: 0 });
    assert.deepEqual(ranges, [{ start: 10, count: 15 }]);
    insertRange(ranges, { start: 25, count: 1 });
    assert.deepEqual(ranges, [{ start: 10, count: 16 }]);
  });
});

describe('dropBelow', () => {
  test(`leaves exactly the members at or above the floor (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.array(range, { maxLength: 30 }), fc.integer({ min: 0, max: 220 }), (inserts, floor) => {
        const ranges: Range[] = [];
        for (const added of inserts) insertRange(ranges, added);
        const expected = members(ranges).filter((seq) => seq >= floor);
        dropBelow(ranges, floor);
        assertCanonical(ranges);
        assert.deepEqual(members(ranges), expected);
      }),
      { seed: SEED + 1, numRuns: 300 },
    );
  });
});
