// lib/task/queue.ts and the detached worker: real worker processes started by
// pushes from this process and from forked pusher processes, one handler
// module (fixtures/task-handler.ts) that records every attempt to a file.
// Every worker ever started is killed (by pid) and every directory removed
// when its test ends.

import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';
import { Queue, QueueError, taskQueue, type DeadLetter, type PushResult, type TaskQueue, type TaskQueueOptions } from '../lib/index.js';
import { WaitingKeys, keyOfString } from '../lib/task/keys.js';
import { taskPaths } from '../lib/task/layout.js';
import { WorkerLock } from '../lib/task/worker-lock.js';
import { TaskLog } from '../lib/task/log.js';
import type { WorkerConfig } from '../lib/task/options.js';
import { TaskRunner, type TaskEnvelope } from '../lib/task/runner.js';
import { alive, exited, running, forkFixture, tempDirAfter, waitFor, sleep } from './helpers.js';
import { runsFile, type Run, type TestWork } from './fixtures/task-handler.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const HANDLER = path.join(here, 'fixtures', 'task-handler.js');
const WORKER_ENTRY = path.join(here, '..', 'lib', 'task', 'worker.js');

interface Fixture {
  dir: string;
  /** Pids of every worker started for the test: killed when it ends. */
  pids: Set<number>;
  /** Run when the test ends, before the workers are killed and the directory removed. */
  cleanups: Array<() => unknown>;
}

/**
 * A task queue directory in a fresh temp dir. When the test ends: the
 * cleanups run (closing task queues, killing pushers), every worker is
 * killed, then the temp dir is removed, in that order (one hook, because
 * node:test runs after-hooks in the order they were added, and tempDirAfter
 * removes the directory after its teardown).
 */
function fixture(t: TestContext): Fixture {
  const pids = new Set<number>();
  const cleanups: Array<() => unknown> = [];
  const root = tempDirAfter(t, 'perq-tasks-', async () => {
    for (const cleanup of cleanups) await cleanup();
    const current = readPid(dir);
    if (current !== undefined) pids.add(current);
    for (const pid of pids) {
      // Only a live process that is one of our workers (a pid may have been reused).
      if (alive(pid) && isWorker(pid)) process.kill(pid, 'SIGKILL');
    }
    await waitFor(() => [...pids].every((pid) => !alive(pid)), 'the workers to be gone');
  });
  const dir = path.join(root, 'tasks');
  return { dir, pids, cleanups };
}

/** Opens a task queue that is closed when the test ends; workers its pushes start are recorded. */
function open(
  f: Fixture,
  options: TaskQueueOptions<TestWork> = {},
): TaskQueue<TestWork> & { pushed(...work: TestWork[]): Promise<PushResult> } {
  const tasks = taskQueue<TestWork>(f.dir, HANDLER, options);
  f.cleanups.push(() => tasks.close());
  return Object.assign(tasks, {
    async pushed(...work: TestWork[]): Promise<PushResult> {
      const result = await tasks.push(...work);
      if (result.pid !== undefined) f.pids.add(result.pid);
      return result;
    },
  });
}

/** Linux tells a worker from a reused pid; elsewhere we trust kill(pid, 0). */
const HAVE_PROC = fs.existsSync('/proc/self/stat');

function isWorker(pid: number): boolean {
  if (!HAVE_PROC) return true;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join('task', 'worker.js'));
  } catch {
    return false;
  }
}

function readPid(dir: string): number | undefined {
  try {
    return Number(fs.readFileSync(taskPaths(dir).pidFile, 'utf8'));
  } catch {
    return undefined;
  }
}

function runs(dir: string): Run[] {
  let text: string;
  try {
    text = fs.readFileSync(runsFile(dir), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Run);
}

/** Ids done, sorted. */
function doneIds(dir: string): string[] {
  return runs(dir)
    .filter((run) => run.event === 'done')
    .map((run) => run.id)
    .sort();
}

async function waitDone(dir: string, ids: string[]): Promise<void> {
  const expected = [...ids].sort();
  await waitFor(() => doneIds(dir).length >= expected.length, `${expected.length} items done (done: ${doneIds(dir).join(',')})`);
  assert.deepEqual(doneIds(dir), expected);
}

function workerLockFree(dir: string): boolean {
  const lock = WorkerLock.open(taskPaths(dir));
  try {
    return lock.tryAcquire();
  } finally {
    lock.close();
  }
}

function logLines(dir: string): string[] {
  try {
    return fs.readFileSync(taskPaths(dir).logFile, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function deadLetters(tasks: TaskQueue<TestWork>): Promise<DeadLetter<TestWork>[]> {
  const dead = await tasks.openDeadLetters();
  try {
    const letters: DeadLetter<TestWork>[] = [];
    while (dead.size > 0) letters.push(await dead.getNowait());
    return letters;
  } finally {
    await dead.close();
  }
}

interface PusherReport {
  result: PushResult;
  pid: number;
}

/** Forks the pusher fixture (pushing one item at a time, 0..gap ms apart, if gap is given); resolves once its task queue is open. */
async function pusher(
  f: Fixture,
  options: object,
  work: TestWork[],
  wait = false,
  gap?: number,
): Promise<{ child: ChildProcess; report: Promise<PusherReport> }> {
  const args = [f.dir, HANDLER, JSON.stringify(options), JSON.stringify(work), wait ? 'wait' : 'now'];
  const child = forkFixture('task-pusher', gap === undefined ? args : [...args, String(gap)]);
  child.on('message', (m: { started?: number[] }) => m.started?.forEach((pid) => f.pids.add(pid)));
  f.cleanups.push(() => {
    if (running(child)) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  const failed = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`pusher exited (${code}) before reporting: ${stderr}`))),
  );
  failed.catch(() => undefined);
  const message = (kind: string) =>
    Promise.race([
      new Promise<Record<string, unknown>>((resolve) => {
        const listen = (m: Record<string, unknown>) => {
          if (kind in m) {
            child.off('message', listen);
            resolve(m);
          }
        };
        child.on('message', listen);
      }),
      failed,
    ]);
  const report = message('result').then((m) => {
    const reported = m as unknown as PusherReport;
    if (reported.result.pid !== undefined) f.pids.add(reported.result.pid);
    return reported;
  });
  report.catch(() => undefined);
  await message('ready');
  return { child, report };
}

describe('taskQueue: the worker', () => {
  test('a push starts one detached worker, which does the work in order, then exits and frees the lock', async (t) => {
    const f = fixture(t);
    const tasks = open(f, { logLevel: 'info' });
    const first = await tasks.pushed({ id: 'a', ms: 150 }, { id: 'b' }, { id: 'c' });
    assert.equal(first.worker, 'started');
    assert.equal(first.queued, 3);
    const pid = first.pid as number;
    assert.ok(alive(pid));
    // The worker holds the lock from its start (handed over), so a second push starts none.
    const second = await tasks.pushed({ id: 'd' });
    assert.deepEqual(second, { queued: 1, skipped: 0, worker: 'running' });
    await waitDone(f.dir, ['a', 'b', 'c', 'd']);
    const done = runs(f.dir).filter((run) => run.event === 'done');
    assert.deepEqual(
      done.map((run) => run.id),
      ['a', 'b', 'c', 'd'],
      'FIFO',
    );
    assert.ok(done.every((run) => run.pid === pid && run.attempt === 1));
    assert.notEqual(pid, process.pid);
    await waitFor(() => !alive(pid), 'the worker to exit');
    assert.equal(workerLockFree(f.dir), true, 'the worker lock is free once the worker left');
    assert.equal(tasks.workerPid, undefined, 'worker.pid is removed');
    assert.equal(tasks.size, 0);
    assert.ok(logLines(f.dir).some((line) => line.includes(`[pid ${pid}] queue empty; worker leaves`)));
  });

  test('the pushing process exits at once while the worker goes on', async (t) => {
    const f = fixture(t);
    const work = ['a', 'b', 'c', 'd'].map((id) => ({ id, ms: 200 }));
    const { child, report } = await pusher(f, {}, work);
    const { result } = await report;
    const reportedAt = performance.now();
    const { code } = await exited(child);
    const exitedAfter = performance.now() - reportedAt;
    assert.equal(code, 0);
    assert.equal(result.worker, 'started');
    const pid = result.pid as number;
    assert.ok(exitedAfter < 1000, `the pusher took ${Math.round(exitedAfter)} ms to exit after its push`);
    assert.ok(alive(pid), 'the worker outlives the pusher');
    assert.ok(doneIds(f.dir).length < 4, 'the pusher did not wait for the work');
    await waitDone(f.dir, ['a', 'b', 'c', 'd']);
    await waitFor(() => !alive(pid), 'the worker to exit');
  });

  test('two processes pushing at once start one worker; every item is done exactly once', async (t) => {
    const f = fixture(t);
    const options = { logLevel: 'info' };
    const batch = (p: string) => Array.from({ length: 5 }, (_, i) => ({ id: `${p}-${i}`, ms: 30 }));
    const one = await pusher(f, options, batch('p1'), true);
    const two = await pusher(f, options, batch('p2'), true);
    one.child.send({ go: true });
    two.child.send({ go: true });
    const results = [(await one.report).result, (await two.report).result];
    const started = results.filter((result) => result.worker === 'started');
    assert.equal(started.length, 1, `workers started: ${JSON.stringify(results)}`);
    assert.equal(results.filter((result) => result.worker === 'running').length, 1);
    const pid = started[0].pid as number;
    const all = [...batch('p1'), ...batch('p2')].map((work) => work.id);
    await waitDone(f.dir, all);
    assert.equal(runs(f.dir).filter((run) => run.event === 'start').length, 10, 'no item started twice');
    assert.deepEqual(new Set(runs(f.dir).map((run) => run.pid)), new Set([pid]));
    await waitFor(() => !alive(pid), 'the worker to exit');
    assert.equal(logLines(f.dir).filter((line) => line.includes('worker started')).length, 1);
  });

  test('a worker started while another holds the lock exits at once without working', async (t) => {
    const f = fixture(t);
    const tasks = open(f, { logLevel: 'info' });
    const held = WorkerLock.open(taskPaths(f.dir));
    f.cleanups.push(() => held.close());
    assert.equal(held.tryAcquire(), true);
    assert.equal((await tasks.pushed({ id: 'a' })).worker, 'running');
    // As a second racing push would start it, but with no lock handed over.
    const config = { dir: f.dir, handler: pathToFileURL(HANDLER).href, export: 'default', retries: 3, logLevel: 'info', queue: {} };
    const worker = fork(WORKER_ENTRY, [JSON.stringify(config)], { stdio: 'ignore' });
    if (worker.pid !== undefined) f.pids.add(worker.pid);
    assert.deepEqual(await exited(worker), { code: 0, signal: null });
    assert.deepEqual(runs(f.dir), []);
    assert.equal(tasks.size, 1);
    assert.ok(logLines(f.dir).some((line) => line.includes(`[pid ${worker.pid}] another worker holds the worker lock`)));
  });
});

describe('taskQueue: a push as the worker leaves', () => {
  test('work put just as the worker finds the queue empty, by a push that finds the lock still held, is done', async (t) => {
    const f = fixture(t);
    const paths = taskPaths(f.dir);
    const config: WorkerConfig = { dir: f.dir, handler: '', export: 'default', retries: 0, logLevel: 'silent', queue: {} };
    const envelope = (work: string): TaskEnvelope => ({ id: randomUUID(), key: keyOfString(work), work });
    const queue = await Queue.open<TaskEnvelope>(paths.queue);
    const pushers = await Queue.open<TaskEnvelope>(paths.queue);
    const keys = WaitingKeys.open(paths.keys, {});
    const lock = WorkerLock.open(paths);
    f.cleanups.push(
      () => queue.close(),
      () => pushers.close(),
      () => keys.close(),
      () => lock.close(),
    );
    assert.equal(lock.tryAcquire(), true);
    await pushers.put(envelope('first'));
    let pushFoundLockFree: boolean | undefined;
    // The worst moment: the worker has found the queue empty and is about to let
    // the lock go; a push puts, then tries the lock (held: it starts no worker).
    const racingLock = {
      tryAcquire: () => lock.tryAcquire(),
      release: () => {
        if (pushFoundLockFree === undefined) {
          pushers.putSync(envelope('late'));
          const probe = WorkerLock.open(paths);
          pushFoundLockFree = probe.tryAcquire();
          probe.close();
        }
        lock.release();
      },
    };
    const done: unknown[] = [];
    const log = new TaskLog(paths.logFile, 'silent');
    await new TaskRunner({ paths, config, queue, keys, workerLock: racingLock, log, handler: (work) => done.push(work) }).run();
    assert.equal(pushFoundLockFree, false, 'the push saw a worker running');
    assert.deepEqual(done, ['first', 'late'], 'the leaving worker looked again and did the late work');
    assert.equal(workerLockFree(f.dir), true);
    assert.equal(queue.size, 0);
  });

  test('pushes trickling in from two processes while workers come and go: every item is done exactly once', async (t) => {
    const f = fixture(t);
    const items = (p: string) => Array.from({ length: 20 }, (_, i) => ({ id: `${p}-${i}` }));
    const one = await pusher(f, {}, items('p1'), true, 40);
    const two = await pusher(f, {}, items('p2'), true, 40);
    one.child.send({ go: true });
    two.child.send({ go: true });
    await Promise.all([one.report, two.report, exited(one.child), exited(two.child)]);
    // Both pushers are gone: whatever is still to do rests on the workers they left.
    await waitDone(
      f.dir,
      [...items('p1'), ...items('p2')].map((item) => item.id),
    );
    assert.equal(runs(f.dir).filter((run) => run.event === 'start').length, 40);
    await waitFor(() => [...f.pids].every((pid) => !alive(pid)), 'the workers to exit');
    const workers = new Set(runs(f.dir).map((run) => run.pid));
    assert.ok(workers.size >= 2, `workers came and went (${workers.size} did work)`);
  });
});

describe('taskQueue: failures', () => {
  test('a worker SIGKILLed mid-handler loses nothing: the next push starts a worker that does it all', async (t) => {
    const f = fixture(t);
    const tasks = open(f);
    const first = await tasks.pushed({ id: 'a', hang: true }, { id: 'b' }, { id: 'c' });
    const pid = first.pid as number;
    await waitFor(() => runs(f.dir).some((run) => run.id === 'a'), 'the handler to start on a');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid), 'the killed worker to be gone');
    await waitFor(() => workerLockFree(f.dir), "the kernel to drop the dead worker's lock");
    const next = await tasks.pushed({ id: 'd' });
    assert.equal(next.worker, 'started');
    await waitDone(f.dir, ['a', 'b', 'c', 'd']);
    const a = runs(f.dir).filter((run) => run.id === 'a');
    assert.deepEqual(
      a.map((run) => [run.event, run.attempt]),
      [
        ['start', 1],
        ['start', 2],
        ['done', 2],
      ],
    );
    assert.ok(
      runs(f.dir)
        .filter((run) => run.event === 'done')
        .every((run) => run.pid === next.pid),
    );
    await waitFor(() => !alive(next.pid as number), 'the second worker to exit');
    assert.deepEqual(await deadLetters(tasks), []);
  });

  test('an attempt whose worker died counts: with retries 0 the item becomes a dead letter', async (t) => {
    const f = fixture(t);
    const tasks = open(f, { retries: 0 });
    const first = await tasks.pushed({ id: 'a', hang: true });
    await waitFor(() => runs(f.dir).length === 1, 'the handler to start');
    process.kill(first.pid as number, 'SIGKILL');
    await waitFor(() => !alive(first.pid as number) && workerLockFree(f.dir), 'the killed worker to be gone');
    // push() with no work only makes sure a worker runs.
    const kick = await tasks.pushed();
    assert.deepEqual({ ...kick, pid: undefined }, { queued: 0, skipped: 0, worker: 'started', pid: undefined });
    await waitFor(() => !alive(kick.pid as number), 'the second worker to exit');
    assert.equal(runs(f.dir).length, 1, 'not run again');
    const letters = await deadLetters(tasks);
    assert.equal(letters.length, 1);
    assert.deepEqual(letters[0].work, { id: 'a', hang: true });
    assert.equal(letters[0].attempts, 1);
    assert.equal(letters[0].error, 'the worker process died during attempt 1');
    assert.equal(tasks.size, 0);
  });

  test('a handler that keeps failing is tried 1 + retries times, then its item is a dead letter; the rest goes on', async (t) => {
    const f = fixture(t);
    const tasks = open(f, { retries: 2 });
    const { pid } = await tasks.pushed({ id: 'bad', fail: 'always' }, { id: 'flaky', fail: 1 }, { id: 'ok' });
    await waitFor(() => !alive(pid as number), 'the worker to exit');
    const starts = (id: string) =>
      runs(f.dir)
        .filter((run) => run.id === id && run.event === 'start')
        .map((run) => run.attempt);
    assert.deepEqual(starts('bad'), [1, 2, 3]);
    assert.deepEqual(starts('flaky'), [1, 2]);
    assert.deepEqual(starts('ok'), [1]);
    assert.deepEqual(doneIds(f.dir), ['flaky', 'ok']);
    const letters = await deadLetters(tasks);
    assert.equal(letters.length, 1);
    const [letter] = letters;
    assert.deepEqual(letter.work, { id: 'bad', fail: 'always' });
    assert.equal(letter.attempts, 3);
    assert.deepEqual(
      letter.errors,
      [1, 2, 3].map((n) => `bad failed on attempt ${n}`),
    );
    assert.equal(letter.error, 'bad failed on attempt 3');
    assert.match(letter.id, /^[0-9a-f-]{36}$/);
    assert.ok(!Number.isNaN(Date.parse(letter.failedAt)));
    assert.deepEqual(fs.readdirSync(taskPaths(f.dir).attempts), [], 'attempt records go with their items');
  });

  test('a handler module without the export asked for: the worker logs it and exits, the work stays', async (t) => {
    const f = fixture(t);
    const tasks = open(f, { export: 'missing' });
    const { pid } = await tasks.pushed({ id: 'a' });
    await waitFor(() => !alive(pid as number), 'the worker to exit');
    assert.deepEqual(runs(f.dir), []);
    assert.equal(tasks.size, 1);
    assert.ok(logLines(f.dir).some((line) => line.includes('ERROR') && line.includes("no function export 'missing'")));
    assert.equal(workerLockFree(f.dir), true);
  });
});

describe('taskQueue: unique', () => {
  test('work equal to work waiting is not queued again, across task queues and processes; once handed out, it is', async (t) => {
    const f = fixture(t);
    const tasks = open(f, { unique: true });
    // Hold the worker lock, so that the work waits: pushes take it for a running worker.
    const held = WorkerLock.open(taskPaths(f.dir));
    f.cleanups.push(() => held.close());
    assert.equal(held.tryAcquire(), true);
    assert.deepEqual(await tasks.pushed({ id: 'a' }), { queued: 1, skipped: 0, worker: 'running' });
    assert.deepEqual(await tasks.pushed({ id: 'a' }, { id: 'b' }, { id: 'b' }), { queued: 1, skipped: 2, worker: 'running' });
    // A task queue without unique adds regardless, and a unique one counts what it added.
    const plain = open(f);
    assert.equal((await plain.pushed({ id: 'c' }, { id: 'c' })).queued, 2);
    assert.deepEqual(await tasks.pushed({ id: 'c' }), { queued: 0, skipped: 1, worker: 'running' });
    // Equality is by serialized bytes: the same fields in another order are other work.
    assert.equal((await tasks.pushed({ ms: 0, id: 'd' }, { id: 'd', ms: 0 })).queued, 2);
    const other = await pusher(f, { unique: true }, [{ id: 'a' }, { id: 'e' }]);
    assert.deepEqual((await other.report).result, { queued: 1, skipped: 1, worker: 'running' });
    // A key function decides equality instead (only among pushers that use it).
    const byId = open(f, { unique: true, key: (work) => work.id });
    assert.deepEqual(await byId.pushed({ id: 'k', ms: 1 }, { id: 'k', ms: 2 }), { queued: 1, skipped: 1, worker: 'running' });
    // size reads the shared state without the lock: the other process's put shows once it has published.
    await waitFor(() => tasks.size === 8, `8 items waiting (size ${tasks.size})`);
    held.close();
    const kick = await tasks.pushed({ id: 'b' });
    assert.deepEqual({ ...kick, pid: undefined }, { queued: 0, skipped: 1, worker: 'started', pid: undefined });
    await waitDone(f.dir, ['a', 'b', 'c', 'c', 'd', 'd', 'e', 'k']);
    await waitFor(() => !alive(kick.pid as number), 'the worker to exit');
    assert.deepEqual(fs.readdirSync(taskPaths(f.dir).keys).sort(), ['lock'], 'no count is left once nothing waits');
    assert.equal((await tasks.pushed({ id: 'a' })).queued, 1, 'work done is not waiting any more');
    await waitDone(f.dir, ['a', 'a', 'b', 'c', 'c', 'd', 'd', 'e', 'k']);
  });
});

describe('taskQueue: logging', () => {
  test('logLevel decides which lines reach worker.log; silent writes none', async (t) => {
    const levels = ['info', 'warn', 'error', 'silent'] as const;
    const logs = await Promise.all(
      levels.map(async (logLevel) => {
        const f = fixture(t);
        const tasks = open(f, { logLevel, retries: 1 });
        const { pid } = await tasks.pushed({ id: 'ok' }, { id: 'bad', fail: 'always' });
        await waitFor(() => !alive(pid as number), `the ${logLevel} worker to exit`);
        assert.deepEqual(doneIds(f.dir), ['ok']);
        return { logLevel, exists: fs.existsSync(tasks.logFile), lines: logLines(f.dir) };
      }),
    );
    const count = (lines: string[], level: string) => lines.filter((line) => line.includes(` ${level} `)).length;
    const [info, warn, error, silent] = logs;
    assert.ok(count(info.lines, 'INFO ') >= 4, info.lines.join('\n')); // started process, worker started, ok done, leaves
    assert.ok(info.lines.some((line) => line.includes('INFO ') && / done \(attempt 1, \d+ ms\)/.test(line)));
    for (const { lines } of [info, warn]) {
      assert.equal(count(lines, 'WARN '), 1);
      assert.ok(lines.some((line) => line.includes('WARN ') && line.includes('attempt 1 of 2 failed: bad failed on attempt 1')));
    }
    for (const { lines } of [info, warn, error]) {
      assert.equal(count(lines, 'ERROR'), 1);
      assert.ok(lines.some((line) => line.includes('ERROR') && line.includes('moved to the dead-letter queue')));
    }
    assert.equal(count(warn.lines, 'INFO '), 0);
    assert.equal(count(error.lines, 'INFO ') + count(error.lines, 'WARN '), 0);
    assert.equal(silent.exists, false);
  });
});

describe('taskQueue: handlers and options', () => {
  test('a named export is called when `export` names it', async (t) => {
    const f = fixture(t);
    const tasks = open(f, { export: 'named' });
    const { pid } = await tasks.pushed({ id: 'a' });
    await waitDone(f.dir, ['a']);
    assert.equal(runs(f.dir)[0].via, 'named');
    await waitFor(() => !alive(pid as number), 'the worker to exit');
  });

  test('a function handler runs only in this process, with inProcess: true; close waits for the current item', async (t) => {
    const f = fixture(t);
    assert.throws(
      () => taskQueue(f.dir, () => undefined),
      (error: unknown) =>
        error instanceof QueueError && error.code === 'ERR_INVALID_ARG' && /cannot cross into a worker process/.test(error.message),
    );
    const seen: Array<[string, number]> = [];
    const tasks = taskQueue<TestWork>(
      f.dir,
      async (work, context) => {
        await sleep(20);
        seen.push([work.id, context.attempt]);
      },
      { inProcess: true },
    );
    f.cleanups.push(() => tasks.close());
    assert.equal((await tasks.push({ id: 'a' }, { id: 'b' })).worker, 'in-process');
    assert.equal((await tasks.push({ id: 'c' })).worker, 'running');
    assert.equal(tasks.workerPid, process.pid);
    await waitFor(() => seen.length === 3, 'the in-process loop to do the work');
    assert.deepEqual(seen, [
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    await waitFor(() => workerLockFree(f.dir), 'the loop to leave');
    await tasks.push({ id: 'd' }, { id: 'e' });
    await tasks.close();
    const afterClose = seen.length;
    assert.ok(afterClose >= 4 && afterClose <= 5, `close waited for the current item only (${afterClose})`);
    assert.equal(workerLockFree(f.dir), true);
    await assert.rejects(tasks.push({ id: 'f' }), (error: unknown) => error instanceof QueueError && error.code === 'ERR_QUEUE_CLOSED');
  });

  test('bad handlers and options are refused before anything is queued', (t) => {
    const f = fixture(t);
    const refused = (code: string, pattern: RegExp) => (error: unknown) =>
      error instanceof QueueError && error.code === code && pattern.test(error.message);
    assert.throws(() => taskQueue(f.dir, path.join(f.dir, 'nope.js')), refused('ERR_INVALID_ARG', /does not exist/));
    assert.throws(() => taskQueue(f.dir, 42 as unknown as string), refused('ERR_INVALID_ARG', /path or file: URL/));
    assert.throws(() => taskQueue(f.dir, HANDLER, { retries: -1 }), refused('ERR_INVALID_OPTION', /retries/));
    assert.throws(() => taskQueue(f.dir, HANDLER, { logLevel: 'debug' as 'info' }), refused('ERR_INVALID_OPTION', /logLevel/));
    assert.throws(() => taskQueue(f.dir, HANDLER, { queue: { maxSize: 5 } as object }), refused('ERR_INVALID_OPTION', /queue\.maxSize/));
    assert.throws(
      () =>
        taskQueue(f.dir, HANDLER, {
          queue: { serializer: { name: 'x', encode: () => new Uint8Array(), decode: () => 0 } as unknown as 'json' },
        }),
      refused('ERR_INVALID_OPTION', /queue\.serializer/),
    );
    assert.equal(fs.existsSync(f.dir), false, 'nothing was created');
  });

  test('work that cannot be serialized is refused and nothing is queued', async (t) => {
    const f = fixture(t);
    const tasks = open(f);
    await assert.rejects(
      tasks.push({ id: 'a' }, { id: 'b', fn: () => 1 } as unknown as TestWork),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_SERIALIZE',
    );
    assert.equal(tasks.size, 0);
    assert.equal(tasks.workerPid, undefined);
  });
});
