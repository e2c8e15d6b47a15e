// lib/lock.ts: one holder per queue directory, in both locking modes, within
// one process and across real processes; a holder's death frees a flock at
// once (the kernel drops it), and a lockfile once it has gone stale.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { QueueError } from '../lib/errors.js';
import { Queue } from '../lib/index.js';
import { FLOCK_FILE, LOCKFILE_DIR, acquireDirectoryLock, type DirectoryLock } from '../lib/lock.js';
import type { LockingMode } from '../lib/options.js';
import { exited, forkFixture, tempDir, tempQueueDir } from './helpers.js';

/** Longer than the lockfile stale time (10 s): how far back a dead holder's lock is dated. */
const LONG_AGO_MS = 60_000;

/**
 * The ERR_LOCKED check. Both modes take the flock first, so on one host a
 * 'lockfile' holder is usually met at the flock; `only` names the one file expected.
 */
function lockedError(dir: string, mode: LockingMode, only?: string) {
  const files = only !== undefined ? [only] : mode === 'flock' ? [FLOCK_FILE] : [FLOCK_FILE, LOCKFILE_DIR];
  return (error: unknown): boolean => {
    assert.ok(error instanceof QueueError, String(error));
    assert.equal(error.code, 'ERR_LOCKED');
    assert.equal(error.dir, dir);
    assert.ok(files.map((name) => path.join(dir, name)).includes(error.file as string), `file ${String(error.file)}`);
    assert.ok(error.message.includes(dir), error.message);
    return true;
  };
}

/** Takes the lock and releases it when the test ends (unless released before). */
function acquire(t: TestContext, dir: string, mode: LockingMode): DirectoryLock {
  const lock = acquireDirectoryLock(dir, mode);
  let released = false;
  t.after(() => {
    if (!released) lock.release();
  });
  return {
    release() {
      released = true;
      lock.release();
    },
  };
}

/** Forks the lock holder fixture and resolves once it holds the lock; it is killed when the test ends. */
async function holderProcess(t: TestContext, dir: string, mode: LockingMode, how: 'lock' | 'queue'): Promise<ChildProcess> {
  const child = forkFixture('unit-lock-holder', [dir, mode, how]);
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
  });
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
  describe(`locking: '${mode}' within one process`, () => {
    test('a second acquire on the same directory is ERR_LOCKED naming the directory and lock file', (t) => {
      const dir = tempDir(t);
      acquire(t, dir, mode);
      assert.throws(() => acquireDirectoryLock(dir, mode), lockedError(dir, mode));
      // Still refused on a second try: a refusal does not disturb the holder.
      assert.throws(() => acquireDirectoryLock(dir, mode), lockedError(dir, mode));
    });

    test('release lets the next acquire in, again and again', (t) => {
      const dir = tempDir(t);
      for (let round = 0; round < 3; round++) {
        const lock = acquire(t, dir, mode);
        assert.throws(() => acquireDirectoryLock(dir, mode), lockedError(dir, mode));
        lock.release();
      }
      acquire(t, dir, mode);
    });

    test('locks on different directories do not interfere', (t) => {
      const a = tempDir(t);
      const b = tempDir(t);
      acquire(t, a, mode);
      acquire(t, b, mode);
      assert.throws(() => acquireDirectoryLock(a, mode), lockedError(a, mode));
    });

    test('a second Queue on an open directory is ERR_LOCKED, and opens once the first is closed', async (t) => {
      const dir = tempQueueDir(t);
      const first = await Queue.open(dir, { locking: mode });
      await assert.rejects(Queue.open(dir, { locking: mode }), lockedError(dir, mode));
      await first.close();
      const second = await Queue.open(dir, { locking: mode });
      await second.close();
    });

    test('a refused Queue.open leaves the holder\'s queue working', async (t) => {
      const dir = tempQueueDir(t);
      const first = await Queue.open<number>(dir, { locking: mode });
      try {
        await first.put(1);
        assert.throws(() => Queue.openSync(dir, { locking: mode }), lockedError(dir, mode));
        await first.put(2);
        assert.deepEqual(await first.getMany(2), [1, 2]);
      } finally {
        await first.close();
      }
    });
  });
}

describe("locking: 'lockfile' files", () => {
  test('the lock is a lock.d directory while held, gone after release', (t) => {
    const dir = tempDir(t);
    const lock = acquire(t, dir, 'lockfile');
    assert.ok(fs.statSync(path.join(dir, LOCKFILE_DIR)).isDirectory());
    lock.release();
    assert.equal(fs.existsSync(path.join(dir, LOCKFILE_DIR)), false);
  });

  test('releasing twice is harmless', (t) => {
    const dir = tempDir(t);
    const lock = acquireDirectoryLock(dir, 'lockfile');
    lock.release();
    lock.release();
    acquire(t, dir, 'lockfile');
  });

  test('a lock.d left behind long ago (its holder gone) is taken over', (t) => {
    const dir = tempDir(t);
    const stale = path.join(dir, LOCKFILE_DIR);
    fs.mkdirSync(stale);
    const longAgo = new Date(Date.now() - LONG_AGO_MS);
    fs.utimesSync(stale, longAgo, longAgo);
    acquire(t, dir, 'lockfile');
  });

  test('a fresh lock.d left by someone else (another host) is respected, in both modes', (t) => {
    const dir = tempDir(t);
    fs.mkdirSync(path.join(dir, LOCKFILE_DIR));
    assert.throws(() => acquireDirectoryLock(dir, 'lockfile'), lockedError(dir, 'lockfile', LOCKFILE_DIR));
    assert.throws(() => acquireDirectoryLock(dir, 'flock'), lockedError(dir, 'flock', LOCKFILE_DIR));
  });

  test('a flock holder keeps a lockfile opener out on the same host, and the other way round', (t) => {
    const dir = tempDir(t);
    const held = acquire(t, dir, 'flock');
    assert.throws(() => acquireDirectoryLock(dir, 'lockfile'), lockedError(dir, 'lockfile', FLOCK_FILE));
    held.release();
    const lockfileHeld = acquire(t, dir, 'lockfile');
    assert.throws(() => acquireDirectoryLock(dir, 'flock'), lockedError(dir, 'flock', FLOCK_FILE));
    lockfileHeld.release();
  });
});

describe('a lock held by another process', () => {
  for (const how of ['lock', 'queue'] as const) {
    test(`flock (${how === 'lock' ? 'taken directly' : 'taken by Queue.open'}): refused while the holder lives, free as soon as it is SIGKILLed`, async (t) => {
      const dir = how === 'queue' ? tempQueueDir(t) : tempDir(t);
      const child = await holderProcess(t, dir, 'flock', how);
      assert.throws(() => acquireDirectoryLock(dir, 'flock'), lockedError(dir, 'flock'));
      await assert.rejects(Queue.open(dir), lockedError(dir, 'flock'));
      await kill(child);
      // No clean-up ran in the child: the kernel dropped the flock when it died.
      acquire(t, dir, 'flock').release();
      const q = await Queue.open<number>(dir);
      await q.put(1);
      await q.close();
    });
  }

  test('flock: while a child holds the lock, the child sees the parent\'s lock too (both directions)', async (t) => {
    const dir = tempDir(t);
    const lock = acquire(t, dir, 'flock');
    const child = forkFixture('unit-lock-holder', [dir, 'flock', 'lock']);
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
    });
    const message = await new Promise<unknown>((resolve) => child.once('message', resolve));
    assert.deepEqual(message, { error: 'ERR_LOCKED' });
    lock.release();
  });

  test('lockfile: refused while the holder lives; after it is SIGKILLed, taken over once the lock is stale', async (t) => {
    const dir = tempDir(t);
    const child = await holderProcess(t, dir, 'lockfile', 'lock');
    assert.throws(() => acquireDirectoryLock(dir, 'lockfile'), lockedError(dir, 'lockfile'));
    await kill(child);
    // The kernel dropped its flock, but the lock.d it leaves (as a host that
    // vanished would) is still respected until stale...
    assert.throws(() => acquireDirectoryLock(dir, 'lockfile'), lockedError(dir, 'lockfile', LOCKFILE_DIR));
    // ...which we bring forward instead of waiting the stale time out.
    const longAgo = new Date(Date.now() - LONG_AGO_MS);
    fs.utimesSync(path.join(dir, LOCKFILE_DIR), longAgo, longAgo);
    acquire(t, dir, 'lockfile');
  });
});
