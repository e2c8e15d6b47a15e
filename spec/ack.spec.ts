// The ack queue: entries with ids (get/getMany/peek/getSync with raw: true),
// ack and nack by id in any order, ERR_NOT_HELD, deliveries; across reopens
// and a SIGKILLed consumer.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Queue, QueueError, type Entry } from '../lib/index.js';
import { exited, forkFixture, tempQueueDir } from './helpers.js';

const isNotHeld = (error: unknown): boolean => error instanceof QueueError && error.code === 'ERR_NOT_HELD';
const isInvalidArg = (error: unknown): boolean => error instanceof QueueError && error.code === 'ERR_INVALID_ARG';

/** Every item left, taken with getNowait until Empty. */
async function drain<T>(q: Queue<T>): Promise<T[]> {
  const items: T[] = [];
  while (!q.empty()) items.push(await q.getNowait());
  return items;
}

describe('entries', () => {
  test('get({ raw: true }) gives id, data, put time and deliveries; ids follow put order', async (t) => {
    const q = await Queue.open<string>(tempQueueDir(t));
    const before = Date.now();
    await q.putMany(['a', 'b', 'c']);
    const after = Date.now();
    const first = await q.get({ raw: true });
    assert.deepEqual(Object.keys(first).sort(), ['data', 'deliveries', 'id', 'timestamp']);
    assert.equal(first.data, 'a');
    assert.equal(first.deliveries, 1);
    assert.ok(first.timestamp >= before && first.timestamp <= after, `timestamp ${first.timestamp} outside ${before}..${after}`);
    const rest = await q.getMany(5, { raw: true });
    assert.deepEqual(
      rest.map((entry) => [entry.id, entry.data]),
      [
        [first.id + 1, 'b'],
        [first.id + 2, 'c'],
      ],
    );
    await q.put('d');
    const sync = q.getSync({ raw: true });
    assert.deepEqual([sync.id, sync.data, sync.deliveries], [first.id + 3, 'd', 1]);
    assert.equal(typeof (await q.get({ raw: false, block: false }).catch((error: unknown) => error)), 'object');
    await q.close();
  });

  test('peek({ raw: true }) shows the hand-outs so far without counting one', async (t) => {
    const q = await Queue.open<string>(tempQueueDir(t));
    await q.put('x');
    const peeked = await q.peek({ raw: true });
    assert.deepEqual([peeked?.data, peeked?.deliveries], ['x', 0]);
    const entry = await q.get({ raw: true });
    await q.nack(entry);
    assert.equal(q.peekSync({ raw: true })?.deliveries, 1);
    assert.equal((await q.get({ raw: true })).deliveries, 2);
    assert.equal(await q.peek({ raw: true }), undefined);
    await q.close();
  });

  test('ids are never given again: after a clear and a reopen the numbers go on', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 4 });
    await q.putMany([1, 2, 3]);
    const ids = (await q.getMany(3, { raw: true })).map((entry) => entry.id);
    await q.clear();
    await q.put(4);
    const after = await q.get({ raw: true });
    assert.ok(after.id > Math.max(...ids), `id ${after.id} after ${ids.join(',')}`);
    await q.ack(after);
    await q.close();
    const again = await Queue.open<number>(dir);
    await again.put(5);
    assert.ok((await again.get({ raw: true })).id > after.id);
    await again.close();
  });
});

describe('ack by id', () => {
  test('acknowledges in any order; none comes back after a reopen', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir, { chunkSize: 2 });
    await q.putMany(['a', 'b', 'c', 'd', 'e']);
    const [a, b, c, d] = await q.getMany(4, { raw: true });
    await q.ack(c);
    await q.ack(a.id);
    await q.ack([d, b]);
    await q.close();
    const again = await Queue.open<string>(dir);
    assert.deepEqual(await drain(again), ['e']);
    await again.close();
  });

  test('an acknowledgement above the prefix holds while a lower item is out; the lower one comes back after a reopen', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir);
    await q.putMany(['a', 'b', 'c']);
    const [, b, c] = await q.getMany(3, { raw: true });
    await q.ack([c, b]);
    await q.close(); // 'a' is handed back
    const again = await Queue.open<string>(dir);
    assert.deepEqual(await drain(again), ['a']);
    await again.close();
  });

  test('ERR_NOT_HELD for an id this queue does not hold; an array with one such id acknowledges none', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir);
    const other = await Queue.open<string>(dir);
    await q.putMany(['a', 'b', 'c']);
    const a = await q.get({ raw: true });
    const b = await other.get({ raw: true });
    await assert.rejects(q.ack(a.id + 2), isNotHeld, 'never handed out');
    await assert.rejects(q.ack(b), isNotHeld, "another queue's item");
    await assert.rejects(q.ack([a, b]), (error: unknown) => isNotHeld(error) && (error as Error).message.includes(String(b.id)));
    await q.ack(a);
    await assert.rejects(q.ack(a), isNotHeld, 'acknowledged already');
    await assert.rejects(q.nack(a), isNotHeld, 'nack after ack');
    await other.close(); // b is handed back, not acknowledged
    await q.close();
    const again = await Queue.open<string>(dir);
    assert.deepEqual(await drain(again), ['b', 'c']);
    await again.close();
  });

  test('taskDone(count) acknowledges the oldest items still held, beside acks by id', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir);
    await q.putMany(['a', 'b', 'c', 'd']);
    const [, b] = await q.getMany(3, { raw: true });
    await q.ack(b);
    await q.taskDone(2); // a and c
    await assert.rejects(q.taskDone(), { code: 'ERR_TASK_DONE' });
    await q.close();
    const again = await Queue.open<string>(dir);
    assert.deepEqual(await drain(again), ['d']);
    await again.close();
  });

  test('under autosave there is nothing to acknowledge: ERR_NOT_HELD saying why', async (t) => {
    const q = await Queue.open<string>(tempQueueDir(t), { autosave: true });
    await q.put('a');
    const a = await q.get({ raw: true });
    await assert.rejects(q.ack(a), (error: unknown) => isNotHeld(error) && /autosave/.test((error as Error).message));
    await q.close();
  });

  test('bad ids are ERR_INVALID_ARG and acknowledge nothing', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir);
    await q.putMany(['a', 'b']);
    const a = await q.get({ raw: true });
    for (const bad of ['1', -1, 1.5, Number.NaN, null, undefined, {}, { id: '0' }, [a, 'x'], [[a.id]]]) {
      await assert.rejects(q.ack(bad as never), isInvalidArg, `ack(${JSON.stringify(bad)})`);
      await assert.rejects(q.nack(bad as never), isInvalidArg, `nack(${JSON.stringify(bad)})`);
    }
    for (const raw of ['yes', 1, null]) {
      await assert.rejects(q.get({ raw: raw as never, block: false }), isInvalidArg);
      await assert.rejects(q.peek({ raw: raw as never }), isInvalidArg);
      assert.throws(() => q.getSync({ raw: raw as never }), isInvalidArg);
    }
    await q.ack([]); // nothing named: nothing done
    await q.close();
    const again = await Queue.open<string>(dir);
    assert.deepEqual(await drain(again), ['a', 'b']);
    await again.close();
  });

  for (const when of ['published', 'now'] as const) {
    test(`a consumer SIGKILLed after acking ids out of order (${when === 'now' ? 'before it published: only the cursor log knows' : 'after it published'}): those never come back, the rest do`, async (t) => {
      const dir = tempQueueDir(t);
      const q = await Queue.open<string>(dir, { chunkSize: 3 });
      await q.putMany(['i0', 'i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7']);
      await q.close();
      const child = forkFixture('ack-by-id-and-die', [dir, '6', '4,1,5', '2', when]);
      assert.equal((await exited(child)).signal, 'SIGKILL');
      const again = await Queue.open<string>(dir);
      const left = await drain(again);
      // 1, 4, 5 acknowledged; 2 given back; 0, 3 held by the dead consumer, handed out again; 6, 7 never taken.
      assert.deepEqual([...left].sort(), ['i0', 'i2', 'i3', 'i6', 'i7']);
      await again.close();
    });
  }
});

describe('nack', () => {
  test('the item is handed out again before newer items, with deliveries counted', async (t) => {
    const q = await Queue.open<string>(tempQueueDir(t));
    await q.putMany(['a', 'b', 'c']);
    const a = await q.get({ raw: true });
    const b = await q.get({ raw: true });
    await q.nack(b);
    await q.nack(a);
    const again: Array<Entry<string>> = await q.getMany(3, { raw: true });
    assert.deepEqual(
      again.map((entry) => [entry.data, entry.deliveries]),
      [
        ['a', 2],
        ['b', 2],
        ['c', 1],
      ],
    );
    await q.nack(again[0]);
    assert.equal((await q.get({ raw: true })).deliveries, 3);
    await q.close();
  });

  for (const delay of [0, 200]) {
    test(`a nacked item goes to another waiting consumer${delay > 0 ? ', at its time' : ''}`, async (t) => {
      const dir = tempQueueDir(t);
      const q = await Queue.open<string>(dir);
      const other = await Queue.open<string>(dir);
      await q.put('a');
      const a = await q.get({ raw: true });
      const waiting = other.get({ raw: true, timeout: 5000 });
      const given = Date.now();
      await q.nack(a, { delay });
      const got = await waiting;
      assert.deepEqual([got.id, got.data, got.deliveries], [a.id, 'a', 2]);
      assert.ok(Date.now() - given >= delay, `handed out after ${Date.now() - given} ms, delay ${delay}`);
      await other.ack(got);
      await q.close();
      await other.close();
    });
  }

  test('deliveries count across processes: an item a dead consumer held comes back as its second delivery', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir);
    await q.putMany(['a', 'b']);
    await q.close();
    const child = forkFixture('ack-by-id-and-die', [dir, '1', '', '', 'published']);
    await exited(child);
    const again = await Queue.open<string>(dir);
    const entry = await again.get({ raw: true });
    assert.deepEqual([entry.data, entry.deliveries], ['a', 2]);
    assert.equal((await again.get({ raw: true })).deliveries, 1);
    await again.close();
  });
});

describe('nack with a delay', () => {
  test('the item stays out of the hand-out (and out of size) until its time, then comes first', async (t) => {
    const q = await Queue.open<string>(tempQueueDir(t));
    await q.putMany(['a', 'b']);
    const a = await q.get({ raw: true });
    const given = Date.now();
    await q.nack(a, { delay: 300 });
    assert.equal(q.size, 1, 'only b waits');
    assert.equal((await q.get({ raw: true })).data, 'b');
    await assert.rejects(q.get({ block: false }), { code: 'ERR_EMPTY' });
    // A waiting get is woken when the item comes due.
    const again = await q.get({ raw: true, timeout: 5000 });
    const waited = Date.now() - given;
    assert.deepEqual([again.data, again.deliveries], ['a', 2]);
    assert.ok(waited >= 300, `handed out after ${waited} ms, before its delay of 300`);
    assert.ok(waited < 2000, `handed out only after ${waited} ms`);
    await q.close();
  });

  test('delayed items come back in due-time order; delay 0 is at once', async (t) => {
    const q = await Queue.open<string>(tempQueueDir(t));
    await q.putMany(['a', 'b', 'c']);
    const [a, b, c] = await q.getMany(3, { raw: true });
    await q.nack(a, { delay: 250 });
    await q.nack(b, { delay: 100 });
    await q.nack(c, { delay: 0 });
    assert.equal((await q.get({ block: false })).valueOf(), 'c');
    const order = [await q.get({ timeout: 5000 }), await q.get({ timeout: 5000 })];
    assert.deepEqual(order, ['b', 'a']);
    await q.close();
  });

  test('the delay holds across a close and a reopen', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir);
    await q.put('a');
    await q.nack(await q.get({ raw: true }), { delay: 400 });
    await q.close();
    const again = await Queue.open<string>(dir);
    await assert.rejects(again.get({ block: false }), { code: 'ERR_EMPTY' });
    assert.equal(await again.get({ timeout: 5000 }), 'a');
    await again.close();
  });

  test('a delayed item holds the acknowledged prefix back: its chunk stays, after a reopen too', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir, { chunkSize: 2 });
    await q.putMany(['a', 'b', 'c']);
    const [a, b] = await q.getMany(2, { raw: true });
    await q.nack(a, { delay: 300 });
    await q.ack(b); // the only item out or waiting below c is the delayed a
    await q.close();
    const again = await Queue.open<string>(dir);
    assert.equal(await again.get({ block: false }), 'c');
    assert.equal(await again.get({ timeout: 5000 }), 'a');
    await again.taskDone(2);
    await again.close();
  });

  test('a bad delay is ERR_INVALID_ARG and gives nothing back', async (t) => {
    const q = await Queue.open<string>(tempQueueDir(t));
    await q.put('a');
    const a = await q.get({ raw: true });
    for (const delay of [-1, '5', Number.NaN, Infinity, null]) {
      await assert.rejects(q.nack(a, { delay: delay as never }), isInvalidArg, `delay ${String(delay)}`);
    }
    await assert.rejects(q.nack(a, null as never), isInvalidArg);
    await q.ack(a); // still held: nothing was given back
    await q.close();
  });
});

describe('stats()', () => {
  test('counts waiting, held and delayed items of every process, the chunk files and their bytes', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir, { chunkSize: 2 });
    const other = await Queue.open<string>(dir);
    const fresh = await q.stats();
    assert.deepEqual(fresh, {
      waiting: 0,
      held: 0,
      delayed: 0,
      deadLetters: 0,
      bytes: 0,
      chunks: 0,
      consumers: [{ name: 'default', waiting: 0, held: 0, lastSeen: null }],
    });
    await q.putMany(['a', 'b', 'c', 'd', 'e']);
    const before = Date.now();
    const [a] = await q.getMany(2, { raw: true });
    await other.get();
    await q.nack(a, { delay: 60_000 });
    const stats = await other.stats();
    assert.equal(stats.waiting, 2);
    assert.equal(stats.held, 2, 'b by q, c by the other queue');
    assert.equal(stats.delayed, 1);
    assert.equal(stats.chunks, 3);
    assert.ok(stats.bytes > 5 * 28, `${stats.bytes} bytes for 5 records`);
    assert.equal(stats.consumers.length, 1);
    const [consumer] = stats.consumers;
    assert.deepEqual([consumer.name, consumer.waiting, consumer.held], ['default', 2, 2]);
    assert.ok(consumer.lastSeen !== null && consumer.lastSeen >= before, `lastSeen ${consumer.lastSeen}`);
    await other.close();
    await q.close();
  });
});
