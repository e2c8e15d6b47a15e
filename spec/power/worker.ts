// A power-loss worker: streams random queue calls (put, putMany, get,
// getMany, taskDone(n), ack and nack by id in any order, clear, close and
// reopen) at one directory until the
// runner SIGKILLs it. Before each call it writes the intent to its journal
// (synchronously: a kill cannot lose it); once the call has resolved it
// reports over IPC what the call did and when it resolved.
// Usage: worker <JSON WorkerConfig>

import fs from 'node:fs';
import { Queue, QueueError, type Entry, type QueueOptions } from '../../lib/index.js';
import { checkItem, keyOf, powerItem, type PowerItem } from './items.js';
import { now, type WorkerConfig, type WorkerReport } from './protocol.js';
import { random as seeded } from './random.js';

const config = JSON.parse(process.argv[2]) as WorkerConfig;
const random = seeded(config.seed);
const journal = fs.openSync(config.journal, 'a');
/** A consumer that finds nothing waits this long (polling the directory) before it tries something else. */
const GET_TIMEOUT_MS = 20;
/** Another process's put is seen within this many ms (no notify channel between the workers). */
const POLL_MS = 10;

type Op = 'put' | 'putMany' | 'get' | 'getMany' | 'taskDone' | 'ack' | 'nack' | 'clear' | 'close' | 'pause';

const WEIGHTS: Record<WorkerConfig['role'], Partial<Record<Op, number>>> = {
  mixed: { put: 25, putMany: 15, get: 20, getMany: 10, taskDone: 15, ack: 10, nack: 2, clear: 0.4, close: 0.8, pause: 3 },
  producer: { put: 50, putMany: 40, clear: 0.4, close: 0.8, pause: 8 },
  consumer: { get: 35, getMany: 20, taskDone: 25, ack: 15, nack: 3, clear: 0.4, close: 0.8, pause: 3 },
};

const options: QueueOptions = { fsync: config.fsync, pollInterval: POLL_MS };
if (config.chunkSize !== undefined) options.chunkSize = config.chunkSize;
let queue = await Queue.open<PowerItem>(config.dir, options);
let next = 0;
/** Items this queue instance handed out and did not acknowledge, oldest first (what taskDone(n) acknowledges). */
let held: Array<{ key: string; id: number }> = [];

const report = (message: WorkerReport): void => {
  process.send?.(message);
};
const intend = (line: string): void => {
  fs.writeSync(journal, `${line}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function pick(): Op {
  const weights = Object.entries(WEIGHTS[config.role]) as Array<[Op, number]>;
  let roll = random() * weights.reduce((sum, [, w]) => sum + w, 0);
  for (const [op, weight] of weights) {
    if (op === 'clear' && !config.clears) continue;
    roll -= weight;
    if (roll < 0) return op;
  }
  return 'pause';
}

async function putItems(count: number): Promise<void> {
  // Enough waiting: let the consumers (or this worker's own gets) catch up.
  if (queue.size > config.backlog) return sleep(2);
  const items = Array.from({ length: count }, () => powerItem(config.tag, next++));
  const keys = items.map((item) => keyOf(item.p, item.k));
  const t0 = now();
  intend(`P ${t0} ${keys.join(' ')}`);
  if (count === 1 && random() < 0.8) await queue.put(items[0]);
  else await queue.putMany(items);
  report({ kind: 'put', keys, t0, t1: now() });
}

async function getItems(max: number): Promise<void> {
  if (config.ackAll && held.length > 0) return acknowledge(held.length);
  const t0 = now();
  let entries: Array<Entry<PowerItem>>;
  try {
    entries =
      max === 1
        ? [await queue.get({ timeout: GET_TIMEOUT_MS, raw: true })]
        : await queue.getMany(max, { timeout: GET_TIMEOUT_MS, raw: true });
  } catch (error) {
    if (error instanceof QueueError && error.code === 'ERR_EMPTY') return;
    throw error;
  }
  const t1 = now();
  const keys: string[] = [];
  for (const entry of entries) {
    const checked = checkItem(entry.data);
    if ('wrong' in checked) {
      report({ kind: 'bad', what: checked.wrong, t: t1 });
      // Still held by the queue: count it so later taskDones line up.
      keys.push(`?bad-${t1}-${keys.length}`);
    } else keys.push(checked.key);
    held.push({ key: keys[keys.length - 1], id: entry.id });
  }
  report({ kind: 'got', keys, t0, t1 });
}

async function acknowledge(count: number): Promise<void> {
  const keys = held.slice(0, count).map((item) => item.key);
  const t0 = now();
  intend(`A ${t0} ${keys.join(' ')}`);
  await queue.taskDone(count);
  held = held.slice(count);
  report({ kind: 'acked', keys, t0, t1: now() });
}

/** Up to `count` held items picked at random (any position), taken out of `held`. */
function pickHeld(count: number): Array<{ key: string; id: number }> {
  const picked: Array<{ key: string; id: number }> = [];
  while (picked.length < count && held.length > 0) picked.push(...held.splice(Math.floor(random() * held.length), 1));
  return picked;
}

/** ack by id: a few held items in any order, in one call. */
async function acknowledgeById(): Promise<void> {
  const picked = pickHeld(1 + Math.floor(random() * 4));
  const keys = picked.map((item) => item.key);
  const t0 = now();
  intend(`A ${t0} ${keys.join(' ')}`);
  if (await notHeldAfterClear(queue.ack(picked.map((item) => (random() < 0.5 ? item.id : item))))) return;
  report({ kind: 'acked', keys, t0, t1: now() });
}

/**
 * Whether `call` failed with ERR_NOT_HELD where that is right: another
 * worker's clear() removed the items this one held. Without clears it is a
 * finding (thrown on).
 */
async function notHeldAfterClear(call: Promise<void>): Promise<boolean> {
  try {
    await call;
    return false;
  } catch (error) {
    if (config.clears && error instanceof QueueError && error.code === 'ERR_NOT_HELD') return true;
    throw error;
  }
}

/** nack: one held item given back, to be handed out again. */
async function giveBack(): Promise<void> {
  const picked = pickHeld(1);
  const t0 = now();
  if (await notHeldAfterClear(queue.nack(picked.map((item) => item.id)))) return;
  report({ kind: 'gaveBack', keys: picked.map((item) => item.key), t0, t1: now() });
}

async function step(op: Op): Promise<void> {
  switch (op) {
    case 'put':
      return putItems(1);
    case 'putMany':
      return putItems(random() < 0.1 ? 20 + Math.floor(random() * 40) : 2 + Math.floor(random() * 11));
    case 'get':
      return getItems(1);
    case 'getMany':
      return getItems(2 + Math.floor(random() * 24));
    case 'taskDone':
      if (held.length > 0) await acknowledge(1 + Math.floor(random() * held.length));
      return;
    case 'ack':
      if (held.length > 0) await acknowledgeById();
      return;
    case 'nack':
      if (held.length > 0) await giveBack();
      return;
    case 'clear': {
      const t0 = now();
      intend(`C ${t0}`);
      await queue.clear();
      held = [];
      report({ kind: 'cleared', t0, t1: now() });
      return;
    }
    case 'close': {
      const t0 = now();
      await queue.close();
      const keys = held.map((item) => item.key);
      held = [];
      report({ kind: 'closed', keys, t0, t1: now() });
      delete options.chunkSize;
      queue = await Queue.open<PowerItem>(config.dir, options);
      return;
    }
    case 'pause':
      return sleep(random() * 3);
  }
}

function fail(error: unknown): void {
  const code = error instanceof QueueError ? error.code : ((error as { code?: string })?.code ?? 'ERROR');
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.send?.({ kind: 'error', code, message, t: now() } satisfies WorkerReport, () => process.exit(1));
  setTimeout(() => process.exit(1), 1000);
}

/**
 * Under a period, report every fdatasync perq's timer makes (perq calls it
 * through the shared fs module), so that a loss just outside the period can
 * be told apart: the timer ran late, or a sync that should have covered it did not.
 */
function traceSyncs(): void {
  const fdatasync = fs.fdatasync;
  const traced = (fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void => {
    const t0 = now();
    fdatasync(fd, (error) => {
      if (!error) report({ kind: 'synced', t0, t1: now() });
      callback(error);
    });
  };
  fs.fdatasync = traced as typeof fs.fdatasync;
}

if (typeof config.fsync === 'number') traceSyncs();
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
report({ kind: 'ready', t: now() });
try {
  for (;;) await step(pick());
} catch (error) {
  fail(error);
}
