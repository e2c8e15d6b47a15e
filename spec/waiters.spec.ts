// lib/wakeup/waiters.ts: callers waiting for a change are woken first come, first
// served; a deadline or an abort rejects them; and once settled, a waiter
// leaves no timer or abort listener behind (the process must be free to exit).

import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { WaitList } from '../lib/wakeup/waiters.js';

class TimedOut extends Error {}

const never = (): Error => new TimedOut('should not time out');

/** Timers currently keeping the event loop alive. */
function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

/** Records the order in which promises settle. */
function track(order: string[], name: string, promise: Promise<void>): Promise<void> {
  return promise.then(
    () => {
      order.push(`${name} woke`);
    },
    (error: unknown) => {
      order.push(`${name} failed: ${(error as Error).message}`);
    },
  );
}

describe('waking', () => {
  test('wake() wakes the longest waiting first, one at a time', async () => {
    const list = new WaitList();
    const order: string[] = [];
    const all = ['a', 'b', 'c'].map((name) => track(order, name, list.wait(undefined, undefined, never)));
    assert.equal(list.length, 3);
    list.wake();
    await nextMacrotask();
    assert.deepEqual(order, ['a woke']);
    assert.equal(list.length, 2);
    list.wake();
    list.wake();
    await Promise.all(all);
    assert.deepEqual(order, ['a woke', 'b woke', 'c woke']);
    assert.equal(list.length, 0);
  });

  test('wake(n) wakes the n longest waiting, in order', async () => {
    const list = new WaitList();
    const order: string[] = [];
    const all = ['a', 'b', 'c', 'd'].map((name) => track(order, name, list.wait(undefined, undefined, never)));
    list.wake(2);
    await nextMacrotask();
    assert.deepEqual(order, ['a woke', 'b woke']);
    assert.equal(list.length, 2);
    list.wake(10);
    await Promise.all(all);
    assert.deepEqual(order, ['a woke', 'b woke', 'c woke', 'd woke']);
  });

  test('wake(0) and wake on an empty list do nothing', async () => {
    const list = new WaitList();
    list.wake();
    list.wakeAll();
    const order: string[] = [];
    const waiting = track(order, 'a', list.wait(undefined, undefined, never));
    list.wake(0);
    await nextMacrotask();
    assert.deepEqual(order, []);
    list.wake();
    await waiting;
    assert.deepEqual(order, ['a woke']);
  });

  test('a waiter that arrives after a wake waits for the next one', async () => {
    const list = new WaitList();
    const order: string[] = [];
    const a = track(order, 'a', list.wait(undefined, undefined, never));
    list.wake();
    const b = track(order, 'b', list.wait(undefined, undefined, never));
    await a;
    await nextMacrotask();
    assert.deepEqual(order, ['a woke']);
    list.wake();
    await b;
    assert.deepEqual(order, ['a woke', 'b woke']);
  });

  test('wakeAll wakes everyone, in order', async () => {
    const list = new WaitList();
    const order: string[] = [];
    const all = ['a', 'b', 'c'].map((name) => track(order, name, list.wait(undefined, undefined, never)));
    list.wakeAll();
    await Promise.all(all);
    assert.deepEqual(order, ['a woke', 'b woke', 'c woke']);
    assert.equal(list.length, 0);
  });

  test('waking skips waiters that already gave up', async () => {
    const list = new WaitList();
    const order: string[] = [];
    const controller = new AbortController();
    const a = track(order, 'a', list.wait(undefined, controller.signal, never));
    const b = track(order, 'b', list.wait(undefined, undefined, never));
    controller.abort(new Error('gave up'));
    await a;
    list.wake();
    await b;
    assert.deepEqual(order, ['a failed: gave up', 'b woke']);
  });
});

describe('deadlines', () => {
  test('a waiter past its deadline rejects with the error onTimeout builds', async () => {
    const list = new WaitList();
    const made = new TimedOut('no item within 20 ms');
    const started = performance.now();
    await assert.rejects(
      list.wait(performance.now() + 20, undefined, () => made),
      (error: unknown) => error === made,
    );
    assert.ok(performance.now() - started >= 15, 'rejected well before its deadline');
    assert.equal(list.length, 0);
  });

  test('a deadline already past rejects without waiting to be woken', async () => {
    const list = new WaitList();
    await assert.rejects(
      list.wait(performance.now() - 1000, undefined, () => new TimedOut('late')),
      TimedOut,
    );
    assert.equal(list.length, 0);
  });

  test('a timed-out waiter does not take a later wake from the others', async () => {
    const list = new WaitList();
    const order: string[] = [];
    const a = track(
      order,
      'a',
      list.wait(performance.now() + 5, undefined, () => new TimedOut('timeout')),
    );
    const b = track(order, 'b', list.wait(undefined, undefined, never));
    await a;
    list.wake();
    await b;
    assert.deepEqual(order, ['a failed: timeout', 'b woke']);
  });

  test('a waiter woken before its deadline resolves and its timer is gone', async () => {
    const list = new WaitList();
    const before = activeTimers();
    const waiting = list.wait(performance.now() + 60_000, undefined, never);
    assert.equal(activeTimers(), before + 1);
    list.wake();
    await waiting;
    assert.equal(activeTimers(), before);
  });

  test('failing waiters clears their timers too', async () => {
    const list = new WaitList();
    const before = activeTimers();
    const waiting = [1, 2, 3].map(() => list.wait(performance.now() + 60_000, undefined, never));
    assert.equal(activeTimers(), before + 3);
    list.failAll(new Error('closed'));
    await Promise.allSettled(waiting);
    assert.equal(activeTimers(), before);
  });

  test('a waiter without a deadline creates no timer', async () => {
    const list = new WaitList();
    const before = activeTimers();
    const waiting = list.wait(undefined, undefined, never);
    assert.equal(activeTimers(), before);
    list.wake();
    await waiting;
  });
});

describe('abort signals', () => {
  test("an abort rejects with the signal's reason", async () => {
    const list = new WaitList();
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const waiting = list.wait(undefined, controller.signal, never);
    controller.abort(reason);
    await assert.rejects(waiting, (error: unknown) => error === reason);
    assert.equal(list.length, 0);
  });

  test('an abort without a reason rejects with the AbortError the signal carries', async () => {
    const list = new WaitList();
    const controller = new AbortController();
    const waiting = list.wait(undefined, controller.signal, never);
    controller.abort();
    await assert.rejects(waiting, (error: unknown) => error === controller.signal.reason && (error as Error).name === 'AbortError');
  });

  test('an already aborted signal rejects at once and never joins the list', async () => {
    const list = new WaitList();
    const reason = new Error('too late');
    const waiting = list.wait(undefined, AbortSignal.abort(reason), never);
    assert.equal(list.length, 0);
    await assert.rejects(waiting, (error: unknown) => error === reason);
  });

  test('AbortSignal.timeout works as a deadline', async () => {
    const list = new WaitList();
    // AbortSignal.timeout's timer does not keep the process alive; this one does, for the test.
    const keepAlive = setTimeout(() => undefined, 5_000);
    try {
      await assert.rejects(
        list.wait(undefined, AbortSignal.timeout(10), never),
        (error: unknown) => (error as Error).name === 'TimeoutError',
      );
    } finally {
      clearTimeout(keepAlive);
    }
  });

  test("an abort beats a later deadline, and clears the deadline's timer", async () => {
    const list = new WaitList();
    const before = activeTimers();
    const controller = new AbortController();
    const waiting = list.wait(performance.now() + 60_000, controller.signal, never);
    controller.abort(new Error('stop'));
    await assert.rejects(waiting, /stop/);
    assert.equal(activeTimers(), before);
  });

  test('the abort listener is removed once the waiter is woken, timed out or failed', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const list = new WaitList();

    const woken = list.wait(undefined, signal, never);
    assert.equal(getEventListeners(signal, 'abort').length, 1);
    list.wake();
    await woken;
    assert.equal(getEventListeners(signal, 'abort').length, 0);

    await assert.rejects(
      list.wait(performance.now() + 1, signal, () => new TimedOut('t')),
      TimedOut,
    );
    assert.equal(getEventListeners(signal, 'abort').length, 0);

    const failed = list.wait(undefined, signal, never);
    list.failAll(new Error('closed'));
    await assert.rejects(failed, /closed/);
    assert.equal(getEventListeners(signal, 'abort').length, 0);
  });

  test('aborting after a waiter was woken changes nothing', async () => {
    const list = new WaitList();
    const controller = new AbortController();
    const waiting = list.wait(undefined, controller.signal, never);
    list.wake();
    controller.abort(new Error('after the fact'));
    await waiting;
  });

  test('one signal shared by many waiters rejects them all', async () => {
    const list = new WaitList();
    const controller = new AbortController();
    const waiting = [1, 2, 3].map(() => list.wait(undefined, controller.signal, never));
    controller.abort(new Error('all of you'));
    const results = await Promise.allSettled(waiting);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(list.length, 0);
  });
});

describe('a wake sent before the wait', () => {
  test('a wait given the wakes count seen before a wake resolves at once; one given the current count waits', async () => {
    const list = new WaitList();
    const seen = list.wakes;
    list.wake(); // no one waits yet: this wake would be lost
    assert.equal(list.wakes, seen + 1);
    const order: string[] = [];
    const missed = track(order, 'missed', list.wait(undefined, undefined, never, seen));
    const current = track(order, 'current', list.wait(undefined, undefined, never));
    await nextMacrotask();
    assert.deepEqual(order, ['missed woke']);
    assert.equal(list.length, 1, 'only the up-to-date wait is listed');
    list.wakeAll();
    await Promise.all([missed, current]);
    assert.deepEqual(order, ['missed woke', 'current woke']);
    assert.equal(activeTimers(), 0);
  });
});

describe('failAll', () => {
  test('rejects every waiter with the given error and empties the list', async () => {
    const list = new WaitList();
    const closed = new Error('queue closed');
    const waiting = [1, 2, 3].map(() => list.wait(undefined, undefined, never));
    list.failAll(closed);
    assert.equal(list.length, 0);
    const results = await Promise.allSettled(waiting);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.equal(result.reason, closed);
    }
  });

  test('a wake after failAll affects only waiters that arrive later', async () => {
    const list = new WaitList();
    const order: string[] = [];
    const a = track(order, 'a', list.wait(undefined, undefined, never));
    list.failAll(new Error('closed'));
    const b = track(order, 'b', list.wait(undefined, undefined, never));
    list.wake();
    await Promise.all([a, b]);
    assert.deepEqual(order, ['a failed: closed', 'b woke']);
  });
});
