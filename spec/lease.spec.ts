// Consumer leases (lib/coordination/lease.ts) against real processes: a lease
// is alive while its owner lives and dead once it is SIGKILLed (flock: at
// once; lockfile: after the stale time), the reserve lease is reused by
// rename, and only files perq wrote count as leases.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  CONSUMERS_DIR,
  Lease,
  RESERVE_LEASE,
  isLeaseFile,
  leaseAlive,
  leasePath,
  prepareLeases,
  removeLease,
} from '../lib/coordination/lease.js';
import type { LockingMode } from '../lib/coordination/lock.js';
import { exited, forkFixture, sleep, tempDir, waitFor } from './helpers.js';

const STALE_MS = 300;

/** Forks a child that takes lease `id` and resolves once it holds it. */
async function leaseInChild(dir: string, id: number, mode: LockingMode): Promise<ChildProcess> {
  const child = forkFixture('unit-lease-holder', [dir, String(id), mode, String(STALE_MS)]);
  const reply = await new Promise<{ leased?: boolean; error?: string }>((resolve) => child.once('message', resolve));
  assert.deepEqual(reply, { leased: true });
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  assert.equal((await exited(child)).signal, 'SIGKILL');
}

test("'flock': a lease is alive while its owner lives and dead as soon as the owner is SIGKILLed", async (t) => {
  const dir = tempDir(t);
  const child = await leaseInChild(dir, 7, 'flock');
  t.after(() => child.kill('SIGKILL'));
  assert.equal(leaseAlive(dir, 7, 'flock', STALE_MS), true);
  // A probe takes the flock only to see whether it can: the owner keeps its lease.
  assert.equal(leaseAlive(dir, 7, 'flock', STALE_MS), true);
  await killed(child);
  assert.equal(leaseAlive(dir, 7, 'flock', STALE_MS), false);
  assert.equal(fs.existsSync(leasePath(dir, 7)), true, 'a probe never removes the file');
});

test("'lockfile': a live owner touches its lease; once it is SIGKILLed the lease goes stale after staleMs", async (t) => {
  const dir = tempDir(t);
  const child = await leaseInChild(dir, 3, 'lockfile');
  t.after(() => child.kill('SIGKILL'));
  // Well past the stale time: only the owner's touches keep it alive.
  await sleep(STALE_MS * 3);
  assert.equal(leaseAlive(dir, 3, 'lockfile', STALE_MS), true);
  await killed(child);
  await waitFor(() => !leaseAlive(dir, 3, 'lockfile', STALE_MS), 'the lease of a killed owner to go stale', { timeoutMs: STALE_MS * 10 });
  // A lease that does not exist is dead in both modes.
  assert.equal(leaseAlive(dir, 99, 'lockfile', STALE_MS), false);
  assert.equal(leaseAlive(dir, 99, 'flock', STALE_MS), false);
});

test('a lease is made from the reserve by rename, a new reserve is left for the next consumer, and end() gives the inode back', (t) => {
  const dir = tempDir(t);
  prepareLeases(dir, false);
  const reserve = path.join(dir, CONSUMERS_DIR, RESERVE_LEASE);
  const reserveInode = fs.statSync(reserve).ino;

  const first = Lease.take(dir, 1, 'flock', STALE_MS, false);
  assert.equal(fs.statSync(leasePath(dir, 1)).ino, reserveInode, 'the reserve became lease 1');
  assert.notEqual(fs.statSync(reserve).ino, reserveInode, 'a new reserve is there');
  assert.equal(isLeaseFile(leasePath(dir, 1)), true);
  const content = JSON.parse(fs.readFileSync(leasePath(dir, 1), 'utf8')) as { pid: number };
  assert.equal(content.pid, process.pid);

  // With a reserve there, an ended lease is removed...
  first.end();
  assert.equal(fs.existsSync(leasePath(dir, 1)), false);
  // ...and without one, it becomes the reserve.
  const second = Lease.take(dir, 2, 'flock', STALE_MS, false);
  fs.rmSync(reserve);
  const secondInode = fs.statSync(leasePath(dir, 2)).ino;
  second.end();
  assert.equal(fs.existsSync(leasePath(dir, 2)), false);
  assert.equal(fs.statSync(reserve).ino, secondInode);
});

test('without consumers/ or a reserve, take() creates both, and a second take of a live id fails with ERR_IO naming the file', (t) => {
  const dir = tempDir(t);
  const lease = Lease.take(dir, 5, 'flock', STALE_MS, false);
  t.after(() => lease.end());
  assert.equal(fs.existsSync(path.join(dir, CONSUMERS_DIR, RESERVE_LEASE)), true);
  fs.rmSync(path.join(dir, CONSUMERS_DIR, RESERVE_LEASE));
  assert.throws(
    () => Lease.take(dir, 5, 'flock', STALE_MS, false),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_IO');
      assert.match(error.message, /taking a consumer lease/);
      assert.ok(error.message.includes(dir), error.message);
      return true;
    },
  );
  assert.equal(leaseAlive(dir, 5, 'flock', STALE_MS), true, 'the failed take left the live lease alone');
});

test('isLeaseFile: only an empty file or the JSON line perq writes is a lease; removeLease removes one', (t) => {
  const dir = tempDir(t);
  const file = (name: string, content: string | Buffer): string => {
    const at = path.join(dir, name);
    fs.writeFileSync(at, content);
    return at;
  };
  assert.equal(isLeaseFile(file('empty', '')), true);
  assert.equal(isLeaseFile(file('ours', `${JSON.stringify({ pid: 1, host: 'h', since: 'now' })}\n`)), true);
  assert.equal(isLeaseFile(file('other-json', '{"name":"notes"}\n')), false);
  assert.equal(isLeaseFile(file('text', 'my notes\n')), false);
  assert.equal(isLeaseFile(file('large', Buffer.alloc(8192, 0x20))), false);
  assert.equal(isLeaseFile(path.join(dir, 'missing')), false);

  fs.mkdirSync(path.join(dir, CONSUMERS_DIR));
  fs.writeFileSync(leasePath(dir, 4), '');
  removeLease(dir, 4);
  assert.equal(fs.existsSync(leasePath(dir, 4)), false);
  removeLease(dir, 4); // already gone: no error
});
