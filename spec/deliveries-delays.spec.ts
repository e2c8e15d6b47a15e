// The pure bookkeeping of the ack queue in `state`: how many times items were
// handed out (store/deliveries.ts) and the items given back with a delay
// (store/delays.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { countHandOut, deliveriesOf, type Delivery } from '../lib/store/deliveries.js';
import { addDelayed, countDue, delayRanges, lowestDelayed, returnDue, takeDue, type Delayed } from '../lib/store/delays.js';
import { forgetDone, type Range } from '../lib/store/ranges.js';

describe('deliveries', () => {
  test('a first hand-out counts 1 and keeps no entry; a returned item counts on from 1', () => {
    const list: Delivery[] = [];
    assert.equal(countHandOut(list, 5, false), 1);
    assert.equal(list.length, 0);
    assert.equal(deliveriesOf(list, 5, false), 0, 'never handed out');
    assert.equal(deliveriesOf(list, 5, true), 1, 'returned without an entry: handed out once');
    assert.equal(countHandOut(list, 5, true), 2);
    assert.equal(countHandOut(list, 5, true), 3);
    assert.equal(countHandOut(list, 2, true), 2);
    assert.equal(countHandOut(list, 9, true), 2);
    assert.deepEqual(
      list.map((entry) => [entry.seq, entry.deliveries]),
      [
        [2, 2],
        [5, 3],
        [9, 2],
      ],
      'sorted by seq',
    );
    assert.equal(deliveriesOf(list, 5, true), 3);
  });

  test('forgetDone (ranges.ts) drops what lies below the prefix or in the acknowledged ranges', () => {
    const list: Delivery[] = [2, 5, 9, 12].map((seq) => ({ seq, deliveries: 2 }));
    const acked: Range[] = [{ start: 9, count: 2 }];
    forgetDone(list, 4, acked);
    assert.deepEqual(
      list.map((entry) => entry.seq),
      [5, 12],
    );
  });
});

describe('delays', () => {
  test('addDelayed keeps due-time order, and seq order among items due together', () => {
    const list: Delayed[] = [];
    addDelayed(list, 7, 300);
    addDelayed(list, 3, 100);
    addDelayed(list, 9, 300);
    addDelayed(list, 1, 300);
    assert.deepEqual(
      list.map((entry) => [entry.seq, entry.due]),
      [
        [3, 100],
        [1, 300],
        [7, 300],
        [9, 300],
      ],
    );
    assert.equal(lowestDelayed(list), 1);
    assert.equal(lowestDelayed([]), Infinity);
    assert.equal(countDue(list, 99), 0);
    assert.equal(countDue(list, 100), 1);
    assert.deepEqual(takeDue(list, 300), [3, 1, 7, 9]);
    assert.equal(list.length, 0);
  });

  test('delayRanges takes the items out of the held list; returnDue moves those due into the returned list', () => {
    const held: Range[] = [{ start: 10, count: 5 }];
    const list: Delayed[] = [];
    const past = Date.now() - 1;
    delayRanges(held, list, [{ start: 11, count: 2 }], past);
    delayRanges(held, list, [{ start: 14, count: 1 }], Date.now() + 60_000);
    assert.deepEqual(held, [
      { start: 10, count: 1 },
      { start: 13, count: 1 },
    ]);
    const returned: Range[] = [{ start: 2, count: 1 }];
    assert.equal(returnDue(list, returned), true);
    assert.deepEqual(returned, [
      { start: 2, count: 1 },
      { start: 11, count: 2 },
    ]);
    assert.equal(returnDue(list, returned), false, 'the other is not due yet');
    assert.deepEqual(
      list.map((entry) => entry.seq),
      [14],
    );
  });

  test('forgetDone (ranges.ts) works on the delayed list too', () => {
    const list: Delayed[] = [4, 8, 20].map((seq) => ({ seq, due: 1 }));
    forgetDone(list, 5, [{ start: 20, count: 1 }]);
    assert.deepEqual(
      list.map((entry) => entry.seq),
      [8],
    );
  });
});
