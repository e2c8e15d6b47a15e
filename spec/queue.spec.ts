// The drop-in FIFO API of SPEC's Queue table, end to end against real files.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { Empty, Full, Queue, QueueError } from '../lib/index.js';
import { chunkFiles, tempQueueDir, waitFor, sleep } from './helpers.js';

describe('put and get', () => {
  test('hands items out in FIFO order and counts them', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    assert.equal(q.size, 0);
    assert.equal(q.empty(), true);
    for (const item of ['a', { b: 1 }, [3], null, 5]) await q.put(item);
    assert.equal(q.size, 5);
    assert.equal(q.qsize(), 5);
    assert.equal(q.empty(), false);
    assert.deepEqual([await q.get(), await q.get(), await q.get(), await q.get(), await q.get()], ['a', { b: 1 }, [3], null, 5]);
    assert.equal(q.size, 0);
    await q.close();
  });

  test('creates the directory recursively', async (t) => {
    const dir = `${tempQueueDir(t)}/deeper/still`;
    const q = await Queue.open(dir);
    assert.ok(fs.statSync(dir).isDirectory());
    assert.ok(fs.existsSync(`${dir}/info`));
    await q.close();
  });

  test('spans many chunks and deletes each once acknowledged', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open(dir, { chunkSize: 3 });
    for (let i = 0; i < 10; i++) await q.put(i);
    assert.equal(chunkFiles(dir).length, 4);
    for (let i = 0; i < 4; i++) assert.equal(await q.get(), i);
    assert.equal(chunkFiles(dir).length, 4, 'handed out but unacknowledged items keep their chunk');
    for (let i = 0; i < 4; i++) await q.taskDone();
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000001', 'chunk-0000000000000002', 'chunk-0000000000000003']);
    for (let i = 4; i < 10; i++) {
      assert.equal(await q.get(), i);
      await q.taskDone();
    }
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000003'], 'only the chunk still being written to remains');
    await q.put(10);
    assert.equal(await q.get(), 10);
    await q.taskDone();
    await q.close();
  });

  test('get waits for a put', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    const pending = q.get();
    await sleep(20);
    await q.put('late');
    assert.equal(await pending, 'late');
    await q.close();
  });

  test('waiting getters are served in the order they started waiting', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    const first = q.get();
    const second = q.get();
    await q.putMany(['one', 'two']);
    assert.deepEqual([await first, await second], ['one', 'two']);
    await q.close();
  });

  test('getNowait and get({ block: false }) reject Empty on an empty queue', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    await assert.rejects(q.getNowait(), (error: unknown) => {
      assert.ok(error instanceof Empty);
      assert.ok(error instanceof QueueError);
      assert.equal(error.code, 'ERR_EMPTY');
      assert.match(error.message, new RegExp(q.dir.replace(/[/\\]/g, '.')));
      return true;
    });
    await assert.rejects(q.get({ block: false }), { code: 'ERR_EMPTY' });
    await q.close();
  });

  test('get with a timeout rejects Empty once it passes', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    const started = performance.now();
    await assert.rejects(q.get({ timeout: 50 }), Empty);
    assert.ok(performance.now() - started >= 45);
    await assert.rejects(q.get({ timeout: 0 }), Empty);
    await q.close();
  });

  test('get rejects with the signal reason on abort, and an item put later is not lost', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    const controller = new AbortController();
    const pending = q.get({ signal: controller.signal });
    const reason = new Error('stop waiting');
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    await assert.rejects(q.get({ signal: AbortSignal.abort(reason) }), (error) => error === reason);
    await q.put('kept');
    assert.equal(await q.get(), 'kept');
    await q.close();
  });
});

describe('maxSize', () => {
  test('full() and putNowait reject Full at maxSize', async (t) => {
    const q = await Queue.open(tempQueueDir(t), { maxSize: 2 });
    await q.put(1);
    assert.equal(q.full(), false);
    await q.put(2);
    assert.equal(q.full(), true);
    await assert.rejects(q.putNowait(3), (error: unknown) => error instanceof Full && error.code === 'ERR_FULL');
    await assert.rejects(q.put(3, { block: false }), Full);
    await assert.rejects(q.put(3, { timeout: 30 }), Full);
    assert.throws(() => q.putSync(3), Full);
    assert.equal(q.size, 2);
    await q.close();
  });

  test('a blocked put goes in once a get frees room', async (t) => {
    const q = await Queue.open(tempQueueDir(t), { maxSize: 1 });
    await q.put('a');
    let putDone = false;
    const blocked = q.put('b').then(() => {
      putDone = true;
    });
    await sleep(20);
    assert.equal(putDone, false);
    assert.equal(await q.get(), 'a');
    await blocked;
    assert.equal(await q.get(), 'b');
    await q.close();
  });

  test('putMany larger than maxSize goes in as a consumer drains', async (t) => {
    const q = await Queue.open(tempQueueDir(t), { maxSize: 3 });
    const items = Array.from({ length: 10 }, (_, i) => i);
    const putting = q.putMany(items);
    const got: number[] = [];
    while (got.length < items.length) {
      got.push((await q.get()) as number);
      assert.ok(q.size <= 3);
    }
    await putting;
    assert.deepEqual(got, items);
    await q.close();
  });

  test('0 or less means unbounded', async (t) => {
    const q = await Queue.open(tempQueueDir(t), { maxSize: -1 });
    await q.putMany(Array.from({ length: 500 }, (_, i) => i));
    assert.equal(q.full(), false);
    await q.close();
  });
});

describe('putMany and getMany', () => {
  test('putMany appends in order; getMany returns up to max in order', async (t) => {
    const q = await Queue.open(tempQueueDir(t), { chunkSize: 7 });
    const items = Array.from({ length: 50 }, (_, i) => ({ i }));
    await q.putMany(items);
    assert.equal(q.size, 50);
    const first = await q.getMany(20);
    assert.deepEqual(first, items.slice(0, 20));
    const rest = await q.getMany(100);
    assert.deepEqual(rest, items.slice(20));
    assert.equal(q.size, 0);
    await q.close();
  });

  test('putMany takes any iterable and an empty one is a no-op', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    await q.putMany(new Set(['x', 'y']));
    await q.putMany([]);
    assert.deepEqual(await q.getMany(5), ['x', 'y']);
    await q.close();
  });

  test('getMany waits for the first item, then takes what is waiting', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    const pending = q.getMany(10);
    await sleep(10);
    await q.putMany([1, 2, 3]);
    assert.deepEqual(await pending, [1, 2, 3]);
    await assert.rejects(q.getMany(10, { timeout: 20 }), Empty);
    await q.close();
  });

  test('every item of getMany counts for taskDone and join', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    await q.putMany([1, 2, 3]);
    const batch = await q.getMany(3);
    let joined = false;
    const joining = q.join().then(() => {
      joined = true;
    });
    for (let i = 0; i < batch.length; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(joined, false);
      await q.taskDone();
    }
    await joining;
    await assert.rejects(q.taskDone(), { code: 'ERR_TASK_DONE' });
    await q.close();
  });

  test('taskDone(count) acknowledges the count oldest items in one call; the rest come back after a restart', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir, { chunkSize: 2 });
    await q.putMany([0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(await q.getMany(5), [0, 1, 2, 3, 4]);
    await q.taskDone(3);
    q.taskDoneSync(1);
    assert.equal(q.size, 2, 'items 5 and 6 wait');
    await q.close();
    const reopened = await Queue.open<number>(dir);
    // close handed item 4 back: it comes first, then the two that waited.
    assert.deepEqual(await reopened.getMany(10), [4, 5, 6]);
    assert.equal(fs.existsSync(`${dir}/chunk-0000000000000000`), false, 'the chunk of items 0 and 1 was deleted');
    let joined = false;
    const joining = reopened.join().then(() => (joined = true));
    await reopened.taskDone(2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(joined, false, 'one item is still out');
    await reopened.taskDone(1);
    await joining;
    await reopened.close();
  });

  test('taskDone(count) with a count that is not a whole number >= 1, or more than is out, acknowledges nothing', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir);
    await q.putMany([0, 1, 2]);
    await q.getMany(2);
    for (const count of [0, -1, 1.5, Number.NaN, '2' as unknown as number]) {
      await assert.rejects(q.taskDone(count), { code: 'ERR_INVALID_ARG' }, String(count));
      assert.throws(() => q.taskDoneSync(count), { code: 'ERR_INVALID_ARG' }, String(count));
    }
    await assert.rejects(q.taskDone(3), (error: QueueError) => error.code === 'ERR_TASK_DONE' && error.message.includes(q.dir));
    assert.throws(() => q.taskDoneSync(3), { code: 'ERR_TASK_DONE' });
    await q.taskDone(2);
    await q.close();
    const reopened = await Queue.open<number>(dir);
    assert.deepEqual(await reopened.getMany(10), [2], 'exactly the two items were acknowledged');
    await reopened.close();
  });

  test('getMany rejects a max that is not a whole number >= 1', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    for (const max of [0, -1, 1.5, Number.NaN]) await assert.rejects(q.getMany(max), { code: 'ERR_INVALID_ARG' });
    await q.close();
  });
});

describe('peek, taskDone, join, clear', () => {
  test('peek shows the next item without taking it', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    assert.equal(await q.peek(), undefined);
    await q.putMany(['first', 'second']);
    assert.equal(await q.peek(), 'first');
    assert.equal(q.peekSync(), 'first');
    assert.equal(q.size, 2);
    assert.equal(await q.get(), 'first');
    assert.equal(await q.peek(), 'second');
    await q.close();
  });

  test('taskDone more often than items handed out is ERR_TASK_DONE', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    await assert.rejects(q.taskDone(), { code: 'ERR_TASK_DONE' });
    await q.put(1);
    await assert.rejects(q.taskDone(), { code: 'ERR_TASK_DONE' }, 'an item put but not handed out cannot be acknowledged');
    await q.get();
    await q.taskDone();
    assert.throws(() => q.taskDoneSync(), { code: 'ERR_TASK_DONE' });
    await q.close();
  });

  test('join resolves at once when nothing is outstanding, else after the last taskDone', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    await q.join();
    await q.putMany(['a', 'b']);
    let joined = false;
    const joining = q.join().then(() => {
      joined = true;
    });
    await q.get();
    await q.taskDone();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(joined, false);
    await q.get();
    await q.taskDone();
    await joining;
    assert.equal(joined, true);
    await q.close();
  });

  test('clear removes every item and its files, and the queue keeps working', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open(dir, { chunkSize: 4 });
    await q.putMany(Array.from({ length: 10 }, (_, i) => i));
    await q.get();
    const joining = q.join();
    await q.clear();
    await joining;
    assert.equal(q.size, 0);
    assert.deepEqual(chunkFiles(dir), []);
    await q.put('after');
    assert.equal(await q.get(), 'after');
    await q.taskDone();
    await q.close();
    const reopened = await Queue.open(dir);
    assert.equal(reopened.size, 0);
    await reopened.close();
  });
});

describe('a wait woken at once by a call of the same process', () => {
  // Polling is slowed right down: only the wake itself can end these waits in time.
  const slow = { pollInterval: 60_000 };

  test('a get waiting on an empty queue gets the item a put of the same queue makes right after', async (t) => {
    const q = await Queue.open(tempQueueDir(t), slow);
    const waiting = q.get({ timeout: 2000 }); // its look at the queue and its wait are not one step
    await q.put('now');
    assert.equal(await waiting, 'now');
    const many = q.getMany(5, { timeout: 2000 });
    await q.putMany(['a', 'b']);
    assert.deepEqual(await many, ['a', 'b']);
    await q.close();
  });

  test('a get waiting on one queue gets the item a put of a sibling queue (same directory, same process) makes', async (t) => {
    const dir = tempQueueDir(t);
    const consumer = await Queue.open(dir, slow);
    const producer = await Queue.open(dir, slow);
    const waiting = consumer.get({ timeout: 2000 });
    await producer.put('from a sibling');
    assert.equal(await waiting, 'from a sibling');
    await producer.close();
    await consumer.close();
  });

  test('a put waiting on a full queue goes in when a get of the same queue frees room right after', async (t) => {
    const q = await Queue.open(tempQueueDir(t), { ...slow, maxSize: 1 });
    await q.put(1);
    const waiting = q.put(2, { timeout: 2000 });
    assert.equal(await q.get(), 1);
    await waiting;
    assert.equal(await q.get({ timeout: 0 }), 2);
    await q.close();
  });
});

describe('close', () => {
  test('later calls reject ERR_QUEUE_CLOSED and pending waits are rejected', async (t) => {
    const q = await Queue.open(tempQueueDir(t), { maxSize: 1 });
    const waitingGet = q.getMany(2, { timeout: 10_000 });
    await q.put(1);
    await waitingGet;
    await q.put(2);
    const waitingPut = q.put(3);
    const waitingJoin = q.join();
    // Handlers go on before close(): it rejects the waits at once, then does I/O.
    const rejections = [waitingPut, waitingJoin].map((pending) => assert.rejects(pending, { code: 'ERR_QUEUE_CLOSED' }));
    await q.close();
    await Promise.all(rejections);
    const calls: Array<() => Promise<unknown>> = [
      () => q.put(1),
      () => q.putMany([1]),
      () => q.get(),
      () => q.getMany(1),
      () => q.getNowait(),
      () => q.putNowait(1),
      () => q.peek(),
      () => q.taskDone(),
      () => q.join(),
      () => q.clear(),
    ];
    for (const call of calls) await assert.rejects(call(), { code: 'ERR_QUEUE_CLOSED' });
    assert.throws(() => q.putSync(1), { code: 'ERR_QUEUE_CLOSED' });
    assert.throws(() => q.getSync(), { code: 'ERR_QUEUE_CLOSED' });
    await q.close(); // closing twice is harmless
  });

  test('a get waiting when the queue closes is rejected', async (t) => {
    const q = await Queue.open(tempQueueDir(t));
    const rejected = assert.rejects(q.get(), { code: 'ERR_QUEUE_CLOSED' });
    await q.close();
    await rejected;
  });

  test('await using closes the queue', async (t) => {
    const dir = tempQueueDir(t);
    let used: Queue | undefined;
    {
      await using q = await Queue.open(dir);
      used = q;
      await q.put('x');
      assert.equal(q.closed, false);
    }
    assert.equal(used.closed, true, 'closed when the block was left');
    await assert.rejects(used.put('y'), { code: 'ERR_QUEUE_CLOSED' });
    const again = await Queue.open(dir);
    assert.equal(await again.get(), 'x', 'what it put was persisted by the close');
    await again.close();
  });
});

describe('async iteration', () => {
  test('acknowledges an item when the loop asks for the next one', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir);
    await q.putMany([1, 2, 3]);
    const seen: number[] = [];
    for await (const item of q) {
      seen.push(item);
      if (item === 3) break; // 3 stays unacknowledged
    }
    assert.deepEqual(seen, [1, 2, 3]);
    await q.close();
    const reopened = await Queue.open<number>(dir);
    assert.equal(await reopened.get(), 3, 'the item the loop broke out on is handed out again');
    await reopened.close();
  });

  test('taskDone before break acknowledges the item, once', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<number>(dir);
    await q.putMany([1, 2, 3]);
    for await (const item of q) {
      if (item === 2) {
        await q.taskDone();
        break;
      }
    }
    await q.close();
    const reopened = await Queue.open<number>(dir);
    assert.equal(await reopened.get(), 3);
    await reopened.close();
  });

  test('an item whose loop body throws stays unacknowledged', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open<string>(dir);
    await q.putMany(['ok', 'boom']);
    await assert.rejects(async () => {
      for await (const item of q) if (item === 'boom') throw new Error('handler failed');
    }, /handler failed/);
    await q.close();
    const reopened = await Queue.open<string>(dir);
    assert.equal(await reopened.get(), 'boom');
    await reopened.close();
  });

  test('waits while empty and ends when the queue is closed', async (t) => {
    const q = await Queue.open<number>(tempQueueDir(t));
    const seen: number[] = [];
    const loop = (async () => {
      for await (const item of q) seen.push(item);
    })();
    await q.put(1);
    await sleep(10);
    await q.put(2);
    await sleep(10);
    await q.close();
    await loop;
    assert.deepEqual(seen, [1, 2]);
  });
});

describe('sync forms', () => {
  test('openSync, putSync, getSync, taskDoneSync', (t) => {
    const dir = tempQueueDir(t);
    const q = Queue.openSync(dir, { chunkSize: 2 });
    q.putSync('a');
    q.putSync('b');
    q.putSync('c');
    assert.equal(q.getSync(), 'a');
    q.taskDoneSync();
    assert.equal(q.getSync(), 'b');
    assert.equal(q.getSync(), 'c');
    assert.throws(() => q.getSync(), Empty);
    q.taskDoneSync();
    q.clearSync();
    assert.equal(q.size, 0);
  });
});

describe('autosave', () => {
  test('get persists the cursor itself; taskDone only counts for join', async (t) => {
    const dir = tempQueueDir(t);
    const q = await Queue.open(dir, { autosave: true, chunkSize: 2 });
    await q.putMany(['a', 'b', 'c']);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.deepEqual(chunkFiles(dir), ['chunk-0000000000000001'], 'a chunk whose items were all got is deleted');
    let joined = false;
    const joining = q.join().then(() => {
      joined = true;
    });
    await q.taskDone();
    await q.taskDone();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(joined, false, 'c is not yet done');
    // Expect the rejection before close makes it, so it is never unhandled for a moment.
    const joinRejected = assert.rejects(joining, { code: 'ERR_QUEUE_CLOSED' });
    await q.close();
    await joinRejected;
    const reopened = await Queue.open(dir, { autosave: true });
    assert.equal(await reopened.get(), 'c', 'a and b are not handed out again');
    await reopened.close();
  });
});

/**
 * Records, for the test's length, each fdatasync and fsync that completes
 * (the real call still does the work) with the file it synced.
 */
function recordSyncs(t: TestContext): Array<{ file: string; at: number }> {
  const synced: Array<{ file: string; at: number }> = [];
  const fileOf = (fd: number): string => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '?';
    }
  };
  const wrapAsync = (name: 'fdatasync' | 'fsync'): void => {
    const real = fs[name];
    const traced = (fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void => {
      const file = fileOf(fd);
      real(fd, (error) => {
        if (!error) synced.push({ file, at: performance.now() });
        callback(error);
      });
    };
    fs[name] = traced as typeof real;
    t.after(() => {
      fs[name] = real;
    });
  };
  const wrapSync = (name: 'fdatasyncSync' | 'fsyncSync'): void => {
    const real = fs[name];
    fs[name] = (fd: number) => {
      const file = fileOf(fd);
      real(fd);
      synced.push({ file, at: performance.now() });
    };
    t.after(() => {
      fs[name] = real;
    });
  };
  wrapAsync('fdatasync');
  wrapAsync('fsync');
  wrapSync('fdatasyncSync');
  wrapSync('fsyncSync');
  return synced;
}

describe('fsync modes', () => {
  for (const fsync of ['always', 25, 'never'] as const) {
    const promise =
      fsync === 'always'
        ? 'resolves only after its chunk was synced'
        : fsync === 25
          ? 'is synced within the period after it resolved'
          : 'syncs nothing';
    test(`fsync ${fsync}: an awaited put ${promise}`, async (t) => {
      const dir = tempQueueDir(t);
      const q = await Queue.open<number>(dir, { fsync, chunkSize: 1000 });
      const synced = recordSyncs(t);
      const chunkSynced = (from: number, to: number): boolean =>
        synced.some((s) => s.file.includes('/chunk-') && s.at >= from && s.at <= to);
      for (let i = 0; i < 5; i++) {
        const issued = performance.now();
        await q.put(i);
        const resolved = performance.now();
        if (fsync === 'always') assert.ok(chunkSynced(issued, resolved), `put ${i} resolved without a sync of its chunk in between`);
        if (fsync === 25) {
          // The period's timer may start late on a busy machine: a generous bound, but a bound.
          await waitFor(() => chunkSynced(issued, Infinity), `a sync of the chunk after put ${i}`, { timeoutMs: 2000, pollMs: 5 });
        }
      }
      if (fsync === 'never') {
        await sleep(50);
        assert.deepEqual(synced, [], 'fsync never syncs nothing');
      }
      await q.close();
    });
  }

  for (const fsync of ['always', 25] as const) {
    test(`fsync ${fsync}: concurrent puts and taskDones all resolve and persist`, async (t) => {
      const dir = tempQueueDir(t);
      const q = await Queue.open<number>(dir, { fsync, chunkSize: 10 });
      await Promise.all(Array.from({ length: 64 }, (_, i) => q.put(i)));
      const got = await q.getMany(30);
      await Promise.all(got.map(() => q.taskDone()));
      q.putSync(64);
      await q.close();
      const reopened = await Queue.open<number>(dir);
      assert.equal(reopened.size, 35);
      const rest = await reopened.getMany(100);
      assert.deepEqual(
        [...rest].sort((a, b) => a - b),
        Array.from({ length: 35 }, (_, i) => i + 30),
      );
      await reopened.close();
    });
  }
});
