// lib/coordination/lock.ts: one holder of a queue directory's lock at a time, in both
// locking modes, within one process (two descriptors) and across real
// processes; a holder's death frees a flock at once (the kernel drops it) and
// a lockfile once it has gone stale. Also how Queues of one process share it.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { QueueError } from '../lib/errors.js';
import { LOCKFILE_MAX_HOLD_MS, LockSession, MAX_HOLD_MS } from '../lib/coordination/session.js';
import { Queue } from '../lib/index.js';
import { LOCKFILE_DIR, openDirectoryLock, type DirectoryLock } from '../lib/coordination/lock.js';
import type { LockingMode } from '../lib/options.js';
import { exited, killIfRunning, forkFixture, tempDir, tempQueueDir, sleep } from './helpers.js';

const STALE_MS = 10_000;
/** Longer than the stale time: how far back a dead holder's lock is dated. */
const LONG_AGO_MS = 60_000;

/** Opens a lock that is closed when the test ends. */
function openLock(t: TestContext, dir: string, mode: LockingMode): DirectoryLock {
  const lock = openDirectoryLock(dir, mode, STALE_MS);
  t.after(() => lock.close());
  return lock;
}

/** Forks the lock holder fixture and resolves once it holds the lock; it is killed when the test ends. */
async function holderProcess(t: TestContext, dir: string, mode: LockingMode): Promise<ChildProcess> {
  const child = forkFixture('unit-lock-holder', [dir, mode]);
  t.after(() => killIfRunning(child));
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  const message = await new Promise<unknown>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code, signal) => reject(new Error(`lock holder exited (${code ?? signal}) before reporting: ${stderr}`)));
  });
  assert.deepEqual(message, { locked: true });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  const { signal } = await exited(child);
  assert.equal(signal, 'SIGKILL');
}

for (const mode of ['flock', 'lockfile'] as const) {
  describe(`locking: '${mode}'`, () => {
    test('while one holds the lock, another cannot take it; after release it can, again and again', (t) => {
      const dir = tempDir(t);
      const first = openLock(t, dir, mode);
      const second = openLock(t, dir, mode);
      for (let round = 0; round < 3; round++) {
        assert.equal(first.tryAcquire(), true);
        assert.equal(second.tryAcquire(), false);
        assert.equal(second.tryAcquire(), false, 'a refusal does not disturb the holder');
        first.release();
        assert.equal(second.tryAcquire(), true);
        assert.equal(first.tryAcquire(), false);
        second.release();
      }
    });

    test('taking a lock already held by the same lock object succeeds (it is one holder)', (t) => {
      const dir = tempDir(t);
      const lock = openLock(t, dir, mode);
      lock.acquireSync();
      assert.equal(lock.tryAcquire(), true);
      lock.release();
      assert.equal(openLock(t, dir, mode).tryAcquire(), true);
    });

    test('acquire() waits without blocking the event loop and resolves once the holder releases', async (t) => {
      const dir = tempDir(t);
      const holder = openLock(t, dir, mode);
      const waiter = openLock(t, dir, mode);
      holder.acquireSync();
      let got = false;
      const waiting = waiter.acquire().then(() => (got = true));
      await sleep(30);
      assert.equal(got, false, 'acquired while still held');
      holder.release();
      await waiting;
      assert.equal(holder.tryAcquire(), false);
      waiter.release();
    });

    test('locks on different directories do not interfere', (t) => {
      const a = openLock(t, tempDir(t), mode);
      const b = openLock(t, tempDir(t), mode);
      assert.equal(a.tryAcquire(), true);
      assert.equal(b.tryAcquire(), true);
    });

    test('a holder in another process keeps us out; killed with SIGKILL, it stops doing so', async (t) => {
      const dir = tempDir(t);
      const child = await holderProcess(t, dir, mode);
      const lock = openLock(t, dir, mode);
      assert.equal(lock.tryAcquire(), false);
      await kill(child);
      if (mode === 'lockfile') {
        // The kernel dropped the child's flock, but the lock.d it left (as a
        // host that vanished would) is respected until stale...
        assert.equal(lock.tryAcquire(), false);
        // ...which we bring forward instead of waiting the stale time out.
        const longAgo = new Date(Date.now() - LONG_AGO_MS);
        fs.utimesSync(path.join(dir, LOCKFILE_DIR), longAgo, longAgo);
      }
      assert.equal(lock.tryAcquire(), true);
    });

    test("a queue's put waits while another process holds the lock and completes once the holder dies", async (t) => {
      const dir = tempQueueDir(t);
      const q = await Queue.open<number>(dir, { locking: mode, staleAfter: STALE_MS });
      try {
        await q.put(1);
        await sleep(5); // let this process release the lock
        const child = await holderProcess(t, dir, mode);
        let done = false;
        const putting = q.put(2).then(() => (done = true));
        await sleep(50);
        assert.equal(done, false, 'put went ahead while another process held the lock');
        await kill(child);
        if (mode === 'lockfile') {
          const longAgo = new Date(Date.now() - LONG_AGO_MS);
          fs.utimesSync(path.join(dir, LOCKFILE_DIR), longAgo, longAgo);
        }
        await putting;
        assert.deepEqual(await q.getMany(2), [1, 2]);
      } finally {
        await q.close();
      }
    });
  });
}

describe("locking: 'lockfile' files", () => {
  test('the lock is a lock.d directory while held, gone after release; releasing twice is harmless', (t) => {
    const dir = tempDir(t);
    const lock = openLock(t, dir, 'lockfile');
    lock.acquireSync();
    assert.ok(fs.statSync(path.join(dir, LOCKFILE_DIR)).isDirectory());
    lock.release();
    assert.equal(fs.existsSync(path.join(dir, LOCKFILE_DIR)), false);
    lock.release();
    assert.equal(openLock(t, dir, 'lockfile').tryAcquire(), true);
  });

  test('a lock.d left behind long ago (its holder gone) is taken over; a fresh one is respected', (t) => {
    const dir = tempDir(t);
    const stale = path.join(dir, LOCKFILE_DIR);
    fs.mkdirSync(stale);
    const lock = openLock(t, dir, 'lockfile');
    assert.equal(lock.tryAcquire(), false);
    const longAgo = new Date(Date.now() - LONG_AGO_MS);
    fs.utimesSync(stale, longAgo, longAgo);
    assert.equal(lock.tryAcquire(), true);
  });

  test('a flock holder keeps a lockfile holder out on the same host, and the other way round', (t) => {
    const dir = tempDir(t);
    const flock = openLock(t, dir, 'flock');
    const lockfile = openLock(t, dir, 'lockfile');
    assert.equal(flock.tryAcquire(), true);
    assert.equal(lockfile.tryAcquire(), false);
    assert.equal(fs.existsSync(path.join(dir, LOCKFILE_DIR)), false, 'a refused lockfile holder left its lock.d');
    flock.release();
    assert.equal(lockfile.tryAcquire(), true);
    assert.equal(flock.tryAcquire(), false);
  });
});

describe('queues of one process on one directory', () => {
  test('share the lock: both put and get, interleaved, with no deadlock, and both close', async (t) => {
    const dir = tempQueueDir(t);
    const first = await Queue.open<number>(dir);
    const second = await Queue.open<number>(dir);
    const puts: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) puts.push((i % 2 === 0 ? first : second).put(i));
    await Promise.all(puts);
    const got = [...(await first.getMany(100)), ...(await second.getMany(100))];
    assert.deepEqual(
      got.sort((a, b) => a - b),
      Array.from({ length: 200 }, (_, i) => i),
    );
    for (let i = 0; i < 100; i++) await Promise.all([first.taskDone(), second.taskDone()]);
    await Promise.all([first.close(), second.close()]);
    const again = await Queue.open<number>(dir);
    assert.equal(again.size, 0);
    await again.close();
  });

  test('a second open with another locking mode is ERR_INVALID_ARG naming the directory', async (t) => {
    const dir = tempQueueDir(t);
    const first = await Queue.open(dir, { locking: 'flock' });
    try {
      assert.throws(
        () => Queue.openSync(dir, { locking: 'lockfile' }),
        (error: unknown) => error instanceof QueueError && error.code === 'ERR_INVALID_ARG' && error.message.includes(fs.realpathSync(dir)),
      );
      await first.put(1);
      assert.equal(await first.get(), 1);
    } finally {
      await first.close();
    }
  });
});

describe('holding the lock across calls', () => {
  test("under 'lockfile' a hold lasts LOCKFILE_MAX_HOLD_MS, not MAX_HOLD_MS", async (t) => {
    const dir = tempDir(t);
    const hold = new LockSession(dir, 'lockfile', () => openDirectoryLock(dir, 'lockfile', STALE_MS));
    t.after(() => hold.close());
    const busyUntil = (ms: number) => {
      while (performance.now() < ms);
    };
    await hold.run(() => undefined);
    const start = performance.now();
    busyUntil(start + MAX_HOLD_MS + 1);
    let ran = false;
    const within = hold.run(() => (ran = true));
    assert.ok(ran && hold.held, 'past MAX_HOLD_MS the hold goes on');
    await within;
    busyUntil(start + LOCKFILE_MAX_HOLD_MS + 1);
    ran = false;
    const past = hold.run(() => (ran = true));
    assert.ok(!ran && !hold.held, 'past LOCKFILE_MAX_HOLD_MS the call steps aside');
    await past;
    assert.ok(ran);
  });

  test('a call that finishes started work runs in a hold past its time; any other call steps aside first', async (t) => {
    const dir = tempDir(t);
    const hold = new LockSession(dir, 'flock', () => openDirectoryLock(dir, 'flock', STALE_MS));
    t.after(() => hold.close());
    await hold.run(() => undefined);
    assert.ok(hold.held);
    const until = performance.now() + MAX_HOLD_MS + 1;
    while (performance.now() < until);
    let finished = false;
    const finishing = hold.run(() => (finished = true), { finishing: true });
    assert.ok(finished, 'the finishing call ran at once, in the hold');
    assert.ok(hold.held);
    await finishing;
    let ran = false;
    const stepping = hold.run(() => (ran = true));
    assert.ok(!ran, 'an ordinary call past the hold time waits for its turn');
    assert.ok(!hold.held, 'and the lock was let go meanwhile');
    await stepping;
    assert.ok(ran);
  });

  test('calls made without awaiting keep their order even when the hold runs over its time and steps aside', async (t) => {
    const dir = tempQueueDir(t);
    // Every 50th item takes over 2 ms to encode, so the hold (5 ms) runs out again and again.
    const slow = {
      name: 'slow',
      encode: (v: unknown) => {
        if ((v as number) % 50 === 0) {
          const until = performance.now() + 2;
          while (performance.now() < until);
        }
        return Buffer.from(String(v));
      },
      decode: (b: Uint8Array) => Number(Buffer.from(b).toString()),
    };
    const q = await Queue.open<number>(dir, { serializer: slow });
    try {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => q.put(i)));
      const got = await Promise.all(Array.from({ length: 10 }, () => q.getMany(100)));
      assert.deepEqual(
        got.flat(),
        Array.from({ length: 1000 }, (_, i) => i),
      );
    } finally {
      await q.close();
    }
  });
});
