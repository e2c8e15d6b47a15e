// lib/wakeup/watch.ts and the `watch` option: local processes with no channel
// between them wake each other through fs.watch on the queue directory;
// without it (and with polling slowed right down) they do not; where the
// watch is blind (an sshfs mount, changes made on the other side) polling
// still finds the item.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Queue } from '../lib/index.js';
import type { LockingMode } from '../lib/options.js';
import { StateWatcher } from '../lib/wakeup/watch.js';
import type { ChildProcess } from 'node:child_process';
import { exited, killIfRunning, forkFixture, tempDir, tempDirAfter, sleep } from './helpers.js';
import { mountOverSsh, type SshfsMount } from './support/sshfs.js';

/** Puts one item { p: 'w', n: 0 } from another process (no channel to us); resolves once its put has resolved. */
async function putFromAnotherProcess(t: TestContext, dir: string, locking: LockingMode = 'flock'): Promise<void> {
  const children: ChildProcess[] = [];
  const log = path.join(
    tempDirAfter(t, 'perq-watch-log-', () => Promise.all(children.map((child) => killIfRunning(child)))),
    'producer.log',
  );
  const child = forkFixture('mp-producer', [dir, 'w', '1', locking, '2000', log, '0']);
  children.push(child);
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code, signal) => reject(new Error(`producer exited (${code ?? signal})`)));
  });
  assert.equal(fs.readFileSync(log, 'utf8'), '0\n');
  // Let it close and exit before the test goes on (and removes the directory).
  child.send('stop');
  assert.equal((await exited(child)).code, 0);
}

describe('watch: true', () => {
  test('a get waiting in one process is woken by a put in an unrelated process, with polling slowed right down', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    const q = await Queue.open(dir, { watch: true, pollInterval: 60_000 });
    try {
      const waiting = q.get({ timeout: 20_000 });
      await putFromAnotherProcess(t, dir);
      const putAt = performance.now();
      assert.deepEqual(await waiting, { p: 'w', n: 0 });
      assert.ok(performance.now() - putAt < 2000, `woken after ${Math.round(performance.now() - putAt)} ms`);
    } finally {
      await q.close();
    }
  });

  test('without it, the same get is not woken before the next poll', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    const q = await Queue.open(dir, { pollInterval: 60_000 });
    try {
      // Settled into a string at once: the wait outlasts the put however slow the fork.
      const waiting = q.get().then(
        () => 'woken',
        (error: { code?: string }) => error.code,
      );
      await putFromAnotherProcess(t, dir);
      const afterPut = await Promise.race([waiting, new Promise((resolve) => setTimeout(resolve, 1500, 'still waiting'))]);
      assert.equal(afterPut, 'still waiting', 'not woken in the 1.5 s after the put resolved');
      assert.deepEqual(await q.get({ block: false }), { p: 'w', n: 0 }, 'the item was there all along');
      await q.close();
      assert.equal(await waiting, 'ERR_QUEUE_CLOSED');
    } finally {
      await q.close();
    }
  });

  test('through an sshfs mount the watch is blind to changes made on the other side, and polling finds the item', async (t) => {
    const mounts: SshfsMount[] = [];
    const root = tempDirAfter(t, 'perq-watch-', () => Promise.all(mounts.map((each) => each.unmount())));
    const mount = await mountOverSsh(root);
    mounts.push(mount);
    const local = path.join(root, 'q');
    await (await Queue.open(local, { locking: 'lockfile' })).close();
    const q = await Queue.open(path.join(mount.mountPoint, 'q'), { locking: 'lockfile', watch: true, pollInterval: 300 });
    try {
      const waiting = q.get({ timeout: 10_000 });
      await putFromAnotherProcess(t, local, 'lockfile');
      assert.deepEqual(await waiting, { p: 'w', n: 0 });
    } finally {
      await q.close();
    }
  });
});

describe('StateWatcher', () => {
  test('reports writes to the state file and not to other files; stops when closed', async (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(path.join(dir, 'state'), 'x');
    let changes = 0;
    const watcher = new StateWatcher(dir, 'state', () => changes++);
    try {
      assert.equal(watcher.watching, true);
      fs.writeFileSync(path.join(dir, 'chunk-0000000000000000'), 'y');
      await sleep(100);
      assert.equal(changes, 0, 'a chunk write counted as a state change');
      fs.writeFileSync(path.join(dir, 'state'), 'z');
      await sleep(100);
      assert.ok(changes > 0, 'the state write was not reported');
    } finally {
      watcher.close();
    }
    const before = changes;
    fs.writeFileSync(path.join(dir, 'state'), 'w');
    await sleep(100);
    assert.equal(changes, before);
    assert.equal(watcher.watching, false);
  });

  test('a directory that cannot be watched leaves it to polling, without an error', (t) => {
    const watcher = new StateWatcher(path.join(tempDir(t), 'missing'), 'state', () => undefined);
    assert.equal(watcher.watching, false);
    watcher.close();
  });
});
