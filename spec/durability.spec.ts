// lib/store/durability.ts: when written data is fsync'd and when work that needs it
// durable may run. Real files and real fsync calls; the assertions are about
// what callers observe (what has resolved, which callbacks ran, which
// descriptors are open), never about how long anything took.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextMacrotask, setTimeout as sleep } from 'node:timers/promises';
import { describe, test, type TestContext } from 'node:test';
import { Durability } from '../lib/store/durability.js';
import type { FsyncMode } from '../lib/options.js';
import { tempDir, waitFor } from './helpers.js';

/** Polled often enough to see each periodic round on its own. */
const FAST_POLL = { timeoutMs: 5000, pollMs: 5 };

class SyncFailed extends Error {}

function wrap(error: unknown): Error {
  return new SyncFailed('fsync failed', { cause: error });
}

/** A Durability for a fresh temporary directory, closed when the test ends (if the test did not). */
function open(t: TestContext, mode: FsyncMode): { durability: Durability; dir: string } {
  const dir = tempDir(t);
  const durability = new Durability(mode, dir, wrap);
  let closed = false;
  const close = durability.close.bind(durability);
  durability.close = () => {
    closed = true;
    return close();
  };
  t.after(async () => {
    if (!closed) await durability.close();
  });
  return { durability, dir };
}

/** Opens `name` in `dir` for appending, writes `text`; the test closes it unless released. */
function writeFile(dir: string, name: string, text: string): number {
  const fd = fs.openSync(path.join(dir, name), 'a');
  fs.writeSync(fd, text);
  return fd;
}

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'EBADF');
    return false;
  }
}

/** Whether `promise` has settled by the time pending I/O callbacks and microtasks have run. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await nextMacrotask();
  return settled;
}

function openDescriptors(): number {
  const listing = fs.existsSync('/proc/self/fd') ? '/proc/self/fd' : '/dev/fd';
  return fs.readdirSync(listing).length;
}

describe("fsync: 'never'", () => {
  test('settle resolves at once', async (t) => {
    const { durability, dir } = open(t, 'never');
    const fd = writeFile(dir, 'data', 'hello');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    assert.equal(await settledSoon(durability.settle()), true);
  });

  test('afterDurable runs its callback at once, synchronously', (t) => {
    const { durability } = open(t, 'never');
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    assert.equal(ran, true);
  });

  test('release closes the descriptor at once', (t) => {
    const { durability, dir } = open(t, 'never');
    const fd = writeFile(dir, 'data', 'x');
    durability.touch(fd);
    durability.release(fd);
    assert.equal(isOpen(fd), false);
  });

  test('opens nothing: a directory that does not exist is fine, and no descriptor is left open', async (t) => {
    const before = openDescriptors();
    const durability = new Durability('never', path.join(tempDir(t), 'absent'), wrap);
    durability.settleSync();
    await durability.settle();
    await durability.close();
    assert.equal(openDescriptors(), before);
  });
});

describe("fsync: 'always'", () => {
  test('the constructor opens the directory, and close closes it', async (t) => {
    const dir = tempDir(t);
    const before = openDescriptors();
    const durability = new Durability('always', dir, wrap);
    assert.equal(openDescriptors(), before + 1);
    await durability.close();
    assert.equal(openDescriptors(), before);
  });

  test('afterDurable waits for a sync: not run until settle() completes a round', async (t) => {
    const { durability, dir } = open(t, 'always');
    const fd = writeFile(dir, 'data', 'hello');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    assert.equal(ran, false);
    await sleep(20);
    assert.equal(ran, false, 'ran without any sync being asked for');
    await durability.settle();
    assert.equal(ran, true);
  });

  test('settle with nothing written resolves', async (t) => {
    const { durability } = open(t, 'always');
    await durability.settle();
    await durability.settle();
  });

  test('concurrent settle() calls all resolve and share rounds', async (t) => {
    const { durability, dir } = open(t, 'always');
    const fd = writeFile(dir, 'data', 'first');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    const ran: string[] = [];
    durability.afterDurable(() => ran.push('first'));
    const first = durability.settle();

    // While the first round runs, 50 more writers arrive: they share one next round.
    const later: Array<Promise<void>> = [];
    for (let i = 0; i < 50; i++) {
      fs.writeSync(fd, `write ${i}\n`);
      durability.touch(fd);
      later.push(durability.settle());
    }
    durability.afterDurable(() => ran.push('later'));
    const released = later.map(() => false);
    for (const [i, promise] of later.entries()) void promise.then(() => (released[i] = true));

    await first;
    assert.deepEqual(ran, ['first']);
    // Their writes came after the first round began, so it must not release them.
    assert.ok(
      released.every((r) => !r),
      'a caller was released by a round that began before its write',
    );
    await Promise.race(later);
    // Microtasks only from here: no further fsync can complete, so whoever is
    // not released yet would need a round of their own.
    for (let i = 0; i < 10; i++) await Promise.resolve();
    assert.ok(released.every(Boolean), 'callers that arrived during one round did not share the next');
    await Promise.all(later);
    assert.deepEqual(ran, ['first', 'later']);
    assert.ok(fs.readFileSync(path.join(dir, 'data'), 'utf8').endsWith('write 49\n'));
  });

  test('many writers on many files, each awaiting its own settle, all resolve with their data in place', async (t) => {
    const { durability, dir } = open(t, 'always');
    const writers = Array.from({ length: 20 }, async (_, w) => {
      const fd = writeFile(dir, `file-${w}`, '');
      try {
        for (let i = 0; i < 5; i++) {
          fs.writeSync(fd, `${w}:${i}\n`);
          durability.touch(fd);
          await durability.settle();
        }
      } finally {
        fs.closeSync(fd);
      }
    });
    await Promise.all(writers);
    for (let w = 0; w < 20; w++) {
      assert.equal(fs.readFileSync(path.join(dir, `file-${w}`), 'utf8'), [0, 1, 2, 3, 4].map((i) => `${w}:${i}\n`).join(''));
    }
  });

  test('a callback registered during a round waits for the next round', async (t) => {
    const { durability, dir } = open(t, 'always');
    const fd = writeFile(dir, 'data', 'x');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    const first = durability.settle();
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    await first;
    assert.equal(ran, false, 'a callback registered after the round began ran with that round');
    await durability.settle();
    assert.equal(ran, true);
  });

  test('directory changes alone are synced too', async (t) => {
    const { durability, dir } = open(t, 'always');
    fs.writeFileSync(path.join(dir, 'new-file'), '');
    durability.touchDirectory();
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    await durability.settle();
    assert.equal(ran, true);
  });

  test('settleSync syncs and runs the callbacks before it returns', (t) => {
    const { durability, dir } = open(t, 'always');
    const fd = writeFile(dir, 'data', 'sync');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    durability.touchDirectory();
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    durability.settleSync();
    assert.equal(ran, true);
  });

  test('a released descriptor written since the last sync stays open until a round has synced it', async (t) => {
    const { durability, dir } = open(t, 'always');
    const fd = writeFile(dir, 'data', 'x');
    durability.touch(fd);
    durability.release(fd);
    assert.equal(isOpen(fd), true, 'closed before its data was synced');
    await durability.settle();
    assert.equal(isOpen(fd), false, 'still open after the sync');
  });

  test('a released descriptor with nothing to sync is closed at once', async (t) => {
    const { durability, dir } = open(t, 'always');
    const fd = writeFile(dir, 'data', 'x');
    durability.touch(fd);
    await durability.settle();
    durability.release(fd);
    assert.equal(isOpen(fd), false);
  });

  test('a failed fsync rejects settle with the wrapped error; the next round works again', async (t) => {
    const { durability, dir } = open(t, 'always');
    // A descriptor closed behind Durability's back makes fdatasync fail with EBADF.
    const stale = writeFile(dir, 'stale', 'x');
    fs.closeSync(stale);
    durability.touch(stale);
    await assert.rejects(durability.settle(), (error: unknown) => {
      assert.ok(error instanceof SyncFailed);
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'EBADF');
      return true;
    });
    const fd = writeFile(dir, 'data', 'y');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    await durability.settle();
    assert.equal(ran, true);
  });

  test('close() completes pending work: runs callbacks, closes released descriptors and the directory', async (t) => {
    const dir = tempDir(t);
    const before = openDescriptors();
    const durability = new Durability('always', dir, wrap);
    const fd = writeFile(dir, 'data', 'x');
    durability.touch(fd);
    durability.release(fd);
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    await durability.close();
    assert.equal(ran, true);
    assert.equal(isOpen(fd), false);
    assert.equal(openDescriptors(), before);
  });

  test('close() waits for a round already running, and for the round queued behind it', async (t) => {
    const dir = tempDir(t);
    const durability = new Durability('always', dir, wrap);
    const fd = writeFile(dir, 'data', 'x');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    const ran: string[] = [];
    durability.afterDurable(() => ran.push('first'));
    const first = durability.settle();
    durability.touch(fd);
    const second = durability.settle();
    durability.afterDurable(() => ran.push('second'));
    await durability.close();
    assert.deepEqual(ran, ['first', 'second']);
    assert.equal(await settledSoon(Promise.all([first, second])), true);
  });

  test('close() releases the directory descriptor even when the last sync fails', async (t) => {
    const dir = tempDir(t);
    const before = openDescriptors();
    const durability = new Durability('always', dir, wrap);
    const stale = writeFile(dir, 'stale', 'x');
    fs.closeSync(stale);
    durability.touch(stale);
    await assert.rejects(durability.close(), SyncFailed);
    assert.equal(openDescriptors(), before, 'a descriptor was left open after close()');
  });
});

describe('fsync: a number of milliseconds', () => {
  test('settle resolves at once, without waiting for the timer', async (t) => {
    const { durability, dir } = open(t, 60_000);
    const fd = writeFile(dir, 'data', 'x');
    t.after(() => fs.closeSync(fd));
    durability.touch(fd);
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    assert.equal(await settledSoon(durability.settle()), true);
    assert.equal(ran, false, 'a 60 s period synced on settle()');
  });

  test('the timer syncs on its own: afterDurable callbacks run with no settle() or close()', async (t) => {
    const { durability, dir } = open(t, 20);
    const fd = writeFile(dir, 'data', 'x');
    durability.touch(fd);
    durability.release(fd);
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    assert.equal(ran, false);
    await waitFor(() => ran, 'the periodic sync to run the callback', FAST_POLL);
    // The released descriptor was closed by the same round.
    await waitFor(() => !isOpen(fd), 'the periodic sync to close the released descriptor', FAST_POLL);
  });

  test('the timer keeps syncing: a second write after the first round is synced too', async (t) => {
    const { durability, dir } = open(t, 20);
    const fd = writeFile(dir, 'data', 'x');
    t.after(() => fs.closeSync(fd));
    let rounds = 0;
    for (let i = 0; i < 2; i++) {
      fs.writeSync(fd, 'more');
      durability.touch(fd);
      durability.afterDurable(() => rounds++);
      await waitFor(() => rounds === i + 1, `periodic round ${i + 1}`, FAST_POLL);
    }
  });

  test('close() syncs what the timer had not yet reached', async (t) => {
    const dir = tempDir(t);
    const durability = new Durability(60_000, dir, wrap);
    const fd = writeFile(dir, 'data', 'x');
    durability.touch(fd);
    durability.release(fd);
    let ran = false;
    durability.afterDurable(() => {
      ran = true;
    });
    await durability.close();
    assert.equal(ran, true);
    assert.equal(isOpen(fd), false);
  });
});
