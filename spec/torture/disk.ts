// The file system in the way (root only: real mounts, cleaned up after):
// - a full disk: a small tmpfs filled by puts (and one with few inodes);
//   put rejects ERR_IO naming ENOSPC, nothing resolved before is lost, the
//   queue can still be drained on the full disk (get, taskDone, close, also
//   after a reopen), failed calls leak no descriptor or lease file, and puts
//   succeed again once space is freed;
// - a read-only file system: ext4 on a loop device mounted errors=remount-ro,
//   turned read-only under a running queue (the kernel does this on an I/O
//   error); every call fails with a clear ERR_IO, none hangs or crashes the
//   process, and after a fsck and a mount everything resolved is there;
// - the queue directory removed under a running queue: clear errors, never
//   a crash, never a put that resolves into a directory nobody can read.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Queue, QueueError, type QueueOptions } from '../../lib/index.js';
import { zeroCounts, type Counts } from './check.js';
import type { CaseResult } from './report.js';
import { errorText, withoutWarnings } from '../support/reporting.js';

interface Item {
  id: number;
  body: string;
}

function item(id: number, bytes = 900): Item {
  return { id, body: `${id}:`.padEnd(bytes, String.fromCharCode(97 + (id % 26))) };
}

function isItem(value: unknown): value is Item {
  const v = value as Item;
  return typeof v === 'object' && v !== null && typeof v.id === 'number' && v.body === item(v.id, v.body.length).body;
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether this process may mount file systems (root, and a kernel that lets it). */
export function canMount(tmp: string): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = fs.mkdtempSync(path.join(tmp, 'perq-torture-mount-'));
  try {
    run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
    run('umount', [probe]);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

function unmount(dir: string): void {
  try {
    run('umount', [dir]);
  } catch {
    // Descriptors still open on it (a leak is reported by its case): detach it anyway.
    try {
      run('umount', ['-l', dir]);
    } catch {
      // not mounted
    }
  }
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

async function settle<T>(promise: Promise<T>, ms = 5000): Promise<{ value?: T; error?: unknown; hung?: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ hung: boolean }>((resolve) => {
    timer = setTimeout(() => resolve({ hung: true }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects the case's checks: each failed one is a line; counts for the summary. */
class Checks {
  readonly problems: string[] = [];
  readonly counts: Counts = zeroCounts();
  fail(kind: keyof Counts, text: string): void {
    this.counts[kind]++;
    this.problems.push(text);
  }
  result(name: string, seed: string): CaseResult {
    return { name, passed: this.problems.length === 0, counts: this.counts, kills: 0, seed, details: this.problems.slice(0, 12) };
  }
}

/** Catches what a broken queue would let escape (a crash of the process) while `fn` runs and shortly after. */
async function guarded(checks: Checks, fn: () => Promise<void>): Promise<void> {
  const escaped: unknown[] = [];
  const onError = (error: unknown): void => {
    escaped.push(error);
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  try {
    await fn();
    await new Promise((resolve) => setTimeout(resolve, 300));
  } catch (error) {
    checks.fail('errors', `the check itself failed: ${errorText(error)}`);
  } finally {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  }
  for (const error of escaped) checks.fail('errors', `escaped as an uncaught error (a crash outside a test): ${errorText(error)}`);
}

function expectEnospc(checks: Checks, what: string, error: unknown): void {
  if (!(error instanceof QueueError) || error.code !== 'ERR_IO' || !error.message.includes('ENOSPC')) {
    checks.fail('errors', `${what}: rejected with ${errorText(error)}, not ERR_IO naming ENOSPC`);
  }
}

/** Fills a queue on a small tmpfs by puts, then checks everything a full disk must allow. */
async function fullDisk(
  tmp: string,
  variant: { name: string; mount: string; options: QueueOptions; filler?: number; itemBytes: number },
): Promise<CaseResult[]> {
  const mountPoint = fs.mkdtempSync(path.join(tmp, 'perq-torture-full-'));
  const results: CaseResult[] = [];
  const label = (what: string): string => `full disk (${variant.name}): ${what}`;
  run('mount', ['-t', 'tmpfs', '-o', variant.mount, 'tmpfs', mountPoint]);
  try {
    const dir = path.join(mountPoint, 'q');
    const filler = path.join(mountPoint, 'filler');
    if (variant.filler !== undefined) fs.writeFileSync(filler, Buffer.alloc(variant.filler, 1));
    const options = { ...variant.options, chunkSize: 8 };
    const resolved: number[] = [];

    // 1. Fill it: put rejects ERR_IO naming ENOSPC; the queue stays as it was.
    const fill = new Checks();
    let q: Queue<Item> | null = null;
    const fdsAtStart = openFds();
    await guarded(fill, async () => {
      q = await Queue.open<Item>(dir, options);
      let failure: unknown;
      for (let id = 0; id < 100_000; id++) {
        const outcome = await settle(q.put(item(id, variant.itemBytes)));
        if (outcome.hung) return fill.fail('errors', `put ${id} hung on the full disk`);
        if (outcome.error !== undefined) {
          failure = outcome.error;
          break;
        }
        resolved.push(id);
      }
      if (failure === undefined) return fill.fail('errors', 'the disk never filled');
      expectEnospc(fill, `put ${resolved.length}`, failure);
      const sizeBefore = q.size;
      const many = await settle(
        q.putMany([item(900_000, variant.itemBytes), item(900_001, variant.itemBytes), item(900_002, variant.itemBytes)]),
      );
      if (many.error === undefined) fill.fail('errors', 'putMany on the full disk resolved');
      else expectEnospc(fill, 'putMany', many.error);
      if (q.size !== sizeBefore) fill.fail('errors', `a failed putMany changed size from ${sizeBefore} to ${q.size}`);
    });
    results.push(fill.result(label(`put rejects ERR_IO naming ENOSPC (${resolved.length} puts resolved first)`), variant.name));

    // 2. Drain on the full disk, in this process: get, taskDone, close.
    const drainHere = new Checks();
    const got: number[] = [];
    await guarded(drainHere, async () => {
      if (q === null) return drainHere.fail('errors', 'no queue to drain');
      const queue: Queue<Item> = q;
      for (let attempt = 0; attempt < 3 && got.length < 3; attempt++) {
        const outcome = await settle(queue.get({ timeout: 0 }));
        if (outcome.hung) return drainHere.fail('errors', 'get hung on the full disk');
        if (outcome.error !== undefined) drainHere.fail('errors', `get on the full disk failed: ${errorText(outcome.error)}`);
        else if (isItem(outcome.value)) got.push(outcome.value.id);
      }
      if (got.length > 0) {
        const done = await settle(queue.taskDone(got.length));
        if (done.error !== undefined) drainHere.fail('errors', `taskDone on the full disk failed: ${errorText(done.error)}`);
      }
      const leases = fs.existsSync(path.join(dir, 'consumers'))
        ? fs.readdirSync(path.join(dir, 'consumers')).filter((name) => name !== 'reserve')
        : [];
      if (leases.length > 1) drainHere.fail('errors', `failed gets left ${leases.length} lease files in consumers/ (${leases.join(', ')})`);
      const closed = await settle(queue.close());
      if (closed.error !== undefined) drainHere.fail('errors', `close on the full disk rejected: ${errorText(closed.error)}`);
      const fdsAfter = openFds();
      if (fdsAfter > fdsAtStart)
        drainHere.fail('errors', `descriptors leaked: ${fdsAfter - fdsAtStart} still open after close (of the queue that filled the disk)`);
    });
    results.push(drainHere.result(label('get, taskDone and close work on the full disk, no descriptor or lease file leaks'), variant.name));

    // 3. Reopen on the still full disk (filled again if the taskDone freed a chunk): get must work.
    const reopened = new Checks();
    const drained: number[] = [...got];
    await guarded(reopened, async () => {
      const reopenedTop = await settle(withoutWarnings(() => Queue.open<Item>(dir, options)));
      if (reopenedTop.error !== undefined || reopenedTop.hung)
        return reopened.fail('errors', `open on the full disk failed: ${errorText(reopenedTop.error ?? 'hung')}`);
      const top = reopenedTop.value!;
      // Make sure it is full again.
      for (let id = 500_000; id < 600_000; id++) {
        const outcome = await settle(top.put(item(id, variant.itemBytes)));
        if (outcome.error !== undefined || outcome.hung) break;
        resolved.push(id);
      }
      const closed = await settle(top.close());
      if (closed.error !== undefined) reopened.fail('errors', `close of the refilled queue rejected: ${errorText(closed.error)}`);
      const fdsBefore = openFds();
      const opened = await settle(withoutWarnings(() => Queue.open<Item>(dir, options)));
      if (opened.error !== undefined || opened.hung)
        return reopened.fail('errors', `open on the full disk failed: ${errorText(opened.error ?? 'hung')}`);
      const queue = opened.value!;
      for (let attempt = 0; attempt < 3; attempt++) {
        const outcome = await settle(queue.get({ timeout: 0 }));
        if (outcome.hung) return reopened.fail('errors', 'the first get after a reopen hung');
        if (outcome.error === undefined) {
          if (isItem(outcome.value)) drained.push(outcome.value.id);
          break;
        }
        reopened.fail('errors', `get ${attempt + 1} after a reopen on the full disk failed: ${errorText(outcome.error)}`);
      }
      const leases = fs.existsSync(path.join(dir, 'consumers'))
        ? fs.readdirSync(path.join(dir, 'consumers')).filter((name) => name !== 'reserve')
        : [];
      if (leases.length > 1) reopened.fail('errors', `lease files left in consumers/: ${leases.join(', ')}`);
      if (drained.length > got.length) await settle(queue.taskDone());
      const closed2 = await settle(queue.close());
      if (closed2.error !== undefined) reopened.fail('errors', `close rejected: ${errorText(closed2.error)}`);
      const fdsAfter = openFds();
      if (fdsAfter > fdsBefore)
        reopened.fail('errors', `descriptors leaked: ${fdsAfter - fdsBefore} more open after the failed calls and close`);
    });
    results.push(reopened.result(label('after close and reopen the first get works (and frees space)'), variant.name));

    // 4. Nothing resolved is lost: drain everything (freeing space as chunks empty), then puts work again.
    const kept = new Checks();
    await guarded(kept, async () => {
      let enlarged = false;
      const makeRoom = (): boolean => {
        if (fs.existsSync(filler)) {
          fs.rmSync(filler);
          return true;
        }
        if (enlarged) return false;
        // No other way to free space: give the file system more.
        run('mount', ['-o', `remount,${variant.mount.includes('nr_inodes') ? 'nr_inodes=4000' : 'size=4m'}`, mountPoint]);
        enlarged = true;
        return true;
      };
      // If the disk is too full to drain, make room (the filler, else a larger file system) and report it.
      let queue: Queue<Item>;
      const opened = await settle(withoutWarnings(() => Queue.open<Item>(dir, options)));
      if (opened.error !== undefined) {
        kept.fail('errors', `open on the full disk failed: ${errorText(opened.error)}`);
        makeRoom();
        queue = await withoutWarnings(() => Queue.open<Item>(dir, options));
      } else queue = opened.value!;
      const seen = new Set(drained);
      for (;;) {
        const outcome = await settle(queue.getMany(5, { timeout: 0 }));
        if (outcome.hung) {
          kept.fail('errors', 'getMany hung');
          break;
        }
        if (outcome.error !== undefined) {
          if (outcome.error instanceof QueueError && outcome.error.code === 'ERR_EMPTY') break;
          kept.fail('errors', `draining the full disk: ${errorText(outcome.error)}`);
          if (makeRoom()) continue;
          break;
        }
        for (const value of outcome.value!) {
          if (!isItem(value)) kept.fail('wrong', `not an item put: ${JSON.stringify(value).slice(0, 80)}`);
          else if (seen.has(value.id)) kept.fail('duplicate', `item ${value.id} came out twice`);
          else seen.add(value.id);
        }
        const done = await settle(queue.taskDone(outcome.value!.length));
        if (done.error !== undefined) kept.fail('errors', `taskDone while draining: ${errorText(done.error)}`);
      }
      const lost = resolved.filter((id) => !seen.has(id));
      if (lost.length > 0) kept.fail('lost', `${lost.length} resolved puts lost: ${lost.slice(0, 10).join(',')}`);
      for (const id of seen) if (!resolved.includes(id)) kept.fail('phantom', `item ${id} came out, its put had failed`);
      // Space is free again (drained chunks, the filler): puts succeed.
      fs.rmSync(filler, { force: true });
      for (let i = 0; i < 20; i++) {
        const outcome = await settle(queue.put(item(700_000 + i, variant.itemBytes)));
        if (outcome.error !== undefined) {
          kept.fail('errors', `put after space was freed failed: ${errorText(outcome.error)}`);
          break;
        }
      }
      await settle(queue.close());
    });
    results.push(kept.result(label('nothing resolved is lost; once space is freed puts succeed again'), variant.name));
  } finally {
    unmount(mountPoint);
    fs.rmSync(mountPoint, { recursive: true, force: true });
  }
  return results;
}

/** ext4 on a loop device, made read-only under a running queue by an error (errors=remount-ro). */
async function readOnly(tmp: string): Promise<CaseResult[]> {
  const root = fs.mkdtempSync(path.join(tmp, 'perq-torture-ro-'));
  const image = path.join(root, 'fs.img');
  const mountPoint = path.join(root, 'mnt');
  fs.mkdirSync(mountPoint);
  const results: CaseResult[] = [];
  let mounted = false;
  const mount = (): void => {
    run('mount', ['-o', 'loop,errors=remount-ro', image, mountPoint]);
    mounted = true;
  };
  try {
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 16 * 1024 * 1024);
    run('mkfs.ext4', ['-q', '-F', image]);
    mount();
    const device = path.basename(run('findmnt', ['-n', '-o', 'SOURCE', mountPoint]).trim());
    const dir = path.join(mountPoint, 'q');
    const checks = new Checks();
    const resolved: number[] = [];
    let acked = 0;
    await guarded(checks, async () => {
      const q = await Queue.open<Item>(dir, { chunkSize: 8 });
      const other = await Queue.open<Item>(dir);
      for (let id = 0; id < 40; id++) {
        await q.put(item(id, 200));
        resolved.push(id);
      }
      await q.getMany(5);
      await q.taskDone(3);
      acked = 3;
      run('sync', ['-f', dir]);
      fs.writeFileSync(`/sys/fs/ext4/${device}/trigger_fs_error`, 'perq torture: read-only from here');
      // The running queues meet a read-only file system.
      const steps: Array<[string, () => Promise<unknown>]> = [
        ['put', () => q.put(item(1000, 200))],
        ['putMany', () => q.putMany([item(1001, 200), item(1002, 200)])],
        ['get', () => other.get({ timeout: 0 })],
        ['taskDone', () => q.taskDone(1)],
        ['clear', () => other.clear()],
        ['close', () => q.close()],
        ['close', () => other.close()],
      ];
      for (const [name, step] of steps) {
        const outcome = await settle(step());
        if (outcome.hung) checks.fail('errors', `${name} hung on the read-only file system`);
        else if (outcome.error === undefined) {
          if (name === 'put' || name === 'putMany' || name === 'clear') checks.fail('lost', `${name} resolved on a read-only file system`);
        } else if (
          !(outcome.error instanceof QueueError) ||
          !/EROFS|ERR_QUEUE_CLOSED/.test(`${outcome.error.code} ${outcome.error.message}`)
        ) {
          checks.fail('errors', `${name} rejected with ${errorText(outcome.error)}, not an ERR_IO naming EROFS`);
        } else if (outcome.error.code === 'ERR_IO' && !outcome.error.message.includes(dir)) {
          checks.fail('errors', `${name}: the error does not name the queue directory: ${outcome.error.message}`);
        }
      }
      // Opening on the read-only file system: a clear error (or a queue that can at least be looked at).
      for (const [name, target] of [
        ['an existing queue', dir],
        ['a new queue', path.join(mountPoint, 'new')],
      ] as const) {
        const outcome = await settle(withoutWarnings(() => Queue.open(target)));
        if (outcome.hung) checks.fail('errors', `open of ${name} on a read-only file system hung`);
        else if (outcome.error === undefined) {
          if (name === 'a new queue') checks.fail('errors', 'a new queue opened on a read-only file system');
          await settle((outcome.value as Queue).close());
        } else if (
          !(outcome.error instanceof QueueError) ||
          outcome.error.code !== 'ERR_IO' ||
          !/EROFS|ENOENT/.test(outcome.error.message)
        ) {
          // (Node's recursive mkdir says ENOENT where the file system is read-only.)
          checks.fail('errors', `open of ${name} rejected with ${errorText(outcome.error)}, not ERR_IO naming EROFS`);
        }
      }
    });
    results.push(
      checks.result('read-only file system under running queues: every call fails with ERR_IO naming EROFS, none hangs or crashes', 'ro'),
    );

    const after = new Checks();
    await guarded(after, async () => {
      unmount(mountPoint);
      mounted = false;
      try {
        run('e2fsck', ['-fy', image]);
      } catch {
        // exit 1: errors corrected
      }
      mount();
      const q = await withoutWarnings(() => Queue.open<Item>(dir));
      const ids: number[] = [];
      for (;;) {
        const outcome = await settle(q.getMany(10, { timeout: 0 }));
        if (outcome.error !== undefined) {
          if (!(outcome.error instanceof QueueError && outcome.error.code === 'ERR_EMPTY'))
            after.fail('errors', `drain after the remount: ${errorText(outcome.error)}`);
          break;
        }
        for (const value of outcome.value!) if (isItem(value)) ids.push(value.id);
        await q.taskDone(outcome.value!.length);
      }
      await q.close();
      const missing = resolved.filter((id) => id >= acked && !ids.includes(id));
      if (missing.length > 0) after.fail('lost', `${missing.length} resolved puts lost: ${missing.slice(0, 10).join(',')}`);
      const extra = ids.filter((id) => !resolved.includes(id) || id < acked);
      if (extra.length > 0) after.fail('phantom', `items that should not be there: ${extra.join(',')}`);
    });
    results.push(after.result('read-only file system: after fsck and mount, every resolved put drains', 'ro'));
  } finally {
    if (mounted) unmount(mountPoint);
    fs.rmSync(root, { recursive: true, force: true });
  }
  return results;
}

/** The directory removed (and then created anew by another queue) under a running queue. */
async function removedDirectory(tmp: string): Promise<CaseResult[]> {
  const root = fs.mkdtempSync(path.join(tmp, 'perq-torture-rmdir-'));
  const results: CaseResult[] = [];
  try {
    for (const recreate of [false, true]) {
      const dir = path.join(root, recreate ? 'recreated' : 'removed');
      const checks = new Checks();
      await guarded(checks, async () => {
        const q = await Queue.open<Item>(dir, { chunkSize: 4 });
        await q.putMany([item(0, 50), item(1, 50), item(2, 50), item(3, 50), item(4, 50)]);
        await q.get();
        await new Promise((resolve) => setImmediate(resolve)); // the hold ends: the next call takes the lock anew
        fs.rmSync(dir, { recursive: true, force: true });
        let fresh: Queue<Item> | null = null;
        if (recreate) {
          fresh = await Queue.open<Item>(dir, { chunkSize: 4 });
          await fresh.putMany([item(100, 50), item(101, 50)]);
        }
        const resolvedPuts: number[] = [];
        const steps: Array<[string, () => Promise<unknown>]> = [
          ['put', () => q.put(item(10, 50)).then(() => resolvedPuts.push(10))],
          ['putMany', () => q.putMany([item(11, 50), item(12, 50)]).then(() => resolvedPuts.push(11, 12))],
          ['get', () => q.get({ timeout: 0 })],
          ['taskDone', () => q.taskDone()],
          ['peek', () => q.peek()],
          ['clear', () => q.clear()],
          ['close', () => q.close()],
        ].filter(([name]) => !(recreate && name === 'clear')) as Array<[string, () => Promise<unknown>]>;
        for (const [name, step] of steps) {
          const outcome = await settle(step());
          if (outcome.hung) checks.fail('errors', `${name} hung after the directory was removed`);
          else if (outcome.error !== undefined && !(outcome.error instanceof QueueError)) {
            checks.fail('errors', `${name} rejected with a ${errorText(outcome.error)}, not a QueueError`);
          } else if (outcome.error instanceof QueueError && !outcome.error.message.includes(dir)) {
            checks.fail('errors', `${name}: the error does not name the directory: ${outcome.error.message}`);
          }
        }
        if (!recreate) {
          if (resolvedPuts.length > 0)
            checks.fail(
              'lost',
              `put resolved into the removed directory (no one can ever get ${resolvedPuts.join(',')}): it should reject with a clear error`,
            );
          if (fs.existsSync(dir)) checks.fail('errors', `the removed directory came back (${fs.readdirSync(dir).join(', ')})`);
        } else {
          // The old queue must not damage the new one; what it says it put must be found.
          await fresh!.close();
          const check = await withoutWarnings(() => Queue.open<Item>(dir));
          const ids: number[] = [];
          for (;;) {
            const outcome = await settle(check.get({ timeout: 0 }));
            if (outcome.error !== undefined) {
              if (!(outcome.error instanceof QueueError && outcome.error.code === 'ERR_EMPTY'))
                checks.fail('errors', `the new queue: ${errorText(outcome.error)}`);
              break;
            }
            if (isItem(outcome.value)) ids.push(outcome.value.id);
            else checks.fail('wrong', `the new queue hands out ${JSON.stringify(outcome.value).slice(0, 80)}`);
          }
          await check.close();
          for (const id of [100, 101])
            if (!ids.includes(id)) checks.fail('lost', `the new queue lost its item ${id} (got ${ids.join(',') || 'nothing'})`);
          for (const id of resolvedPuts)
            if (!ids.includes(id))
              checks.fail('lost', `the old queue's put of ${id} resolved, but the item is nowhere (the new queue has ${ids.join(',')})`);
        }
      });
      results.push(
        checks.result(
          `directory ${recreate ? 'removed and created anew by another queue' : 'removed'} under a running queue: clear errors, no crash, no put resolved into nowhere`,
          'rmdir',
        ),
      );
    }
    // Removed while the queue still holds the lock from a call that just resolved (within the same turn of
    // the event loop, or MAX_HOLD_MS): a put in that same hold may still resolve (it is ordered before the
    // removal, as any write into a directory someone then deletes), but once the hold has ended every put
    // must reject with a QueueError. Tried 20 times: when the hold ends depends on timing.
    const checks = new Checks();
    await guarded(checks, async () => {
      let resolvedPuts = 0;
      for (let i = 0; i < 20; i++) {
        const dir = path.join(root, `held-${i}`);
        const q = await Queue.open<Item>(dir);
        await q.put(item(0, 50));
        fs.rmSync(dir, { recursive: true, force: true });
        const inHold = await settle(q.put(item(1, 50)));
        if (inHold.hung) checks.fail('errors', 'put hung after the directory was removed');
        await new Promise((resolve) => setImmediate(resolve));
        await new Promise((resolve) => setTimeout(resolve, 30));
        const outcome = await settle(q.put(item(2, 50)));
        if (outcome.hung) checks.fail('errors', 'put hung after the directory was removed');
        else if (outcome.error === undefined) resolvedPuts++;
        else if (!(outcome.error instanceof QueueError))
          checks.fail('errors', `put rejected with ${errorText(outcome.error)}, not a QueueError`);
        await settle(q.close());
      }
      if (resolvedPuts > 0)
        checks.fail(
          'lost',
          `${resolvedPuts} of 20 puts made after the hold that saw the directory removed resolved (into files no one can open again)`,
        );
    });
    results.push(
      checks.result('directory removed right after a put, while the queue still holds the lock: once that hold ends, puts reject', 'rmdir'),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return results;
}

export async function diskSuite(tmp: string, log: (result: CaseResult) => void): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const add = (list: CaseResult[]): void => {
    for (const r of list) {
      results.push(r);
      log(r);
    }
  };
  add(await removedDirectory(tmp));
  if (!canMount(tmp)) {
    const skipped: CaseResult = {
      name: 'full disk and read-only file system: skipped (needs root and mount)',
      passed: true,
      counts: zeroCounts(),
      kills: 0,
      seed: '-',
      details: [],
    };
    add([skipped]);
    return results;
  }
  add(await fullDisk(tmp, { name: 'tmpfs of 512 KiB, fsync never', mount: 'size=512k', options: { fsync: 'never' }, itemBytes: 900 }));
  add(
    await fullDisk(tmp, {
      name: 'tmpfs of 512 KiB, fsync always, a filler file',
      mount: 'size=512k',
      options: { fsync: 'always' },
      filler: 256 * 1024,
      itemBytes: 900,
    }),
  );
  add(await fullDisk(tmp, { name: 'tmpfs with 40 inodes', mount: 'size=8m,nr_inodes=40', options: { fsync: 'never' }, itemBytes: 100 }));
  add(await readOnly(tmp));
  return results;
}
