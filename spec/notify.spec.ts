// Wake-ups between processes and threads (lib/wakeup/notify.ts, Queue.useNotify),
// with real forked children and real worker threads on one real directory: a
// put on one side wakes a get waiting on the other at once, over the IPC
// channel of fork, a MessagePort or a BroadcastChannel; the items travel
// through the directory, so a restarted child loses nothing; messages that are
// not perq's are left alone; a channel whose other end is gone is dropped
// quietly. Without a channel, polling finds the items.
// The queues poll only once a minute where a test is about notify, and never
// watch the directory (watch: false), so a get that resolves within
// WAKE_WITHIN_MS was woken by a message.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type Serializable } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel, MessageChannel, Worker, type TransferListItem } from 'node:worker_threads';
import { Queue, QueueError } from '../lib/index.js';
import { Notifier, type NotifyChannel } from '../lib/wakeup/notify.js';
import type { StoreEvents } from '../lib/store/events.js';
import { WAIT_SETTLE_MS, isPerqWake, type PeerCommand, type PeerReply, type PeerReport } from './fixtures/notify-messages.js';
import type { NotifyWorkerData } from './fixtures/notify-worker.js';
import { exited, killIfRunning, forkFixture, tempQueueDir, sleep } from './helpers.js';
import { inspect } from 'node:util';

/** So long that no test about notify can be passed by polling. */
const SLOW_POLL_MS = 60_000;
/**
 * A woken get resolves in about a millisecond (see benchmarks/wakeups.ts);
 * this bound only has to tell a wake-up from none on a loaded 2-core machine.
 */
const WAKE_WITHIN_MS = 500;
/** The poll interval of the polling tests, and what a polled get may take beyond it on a loaded machine. */
const POLL_MS = 200;
const POLL_MARGIN_MS = 500;
/** A forked child or worker starting up and opening the queue, on a loaded machine. */
const REPLY_TIMEOUT_MS = 15_000;
/** Enough for a put's wake-up to go out (when the loop turns) and for any error of it to surface. */
const SETTLE_MS = 50;
const TEST_OPTIONS = { timeout: 60_000 };

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

type KeysOf<T> = T extends unknown ? keyof T : never;
type ReplyKey = KeysOf<PeerReply>;
type ReplyOf<K extends ReplyKey> = Extract<PeerReply, Record<K, unknown>>;
const REPLY_KEYS: readonly string[] = ['ready', 'waiting', 'got', 'put', 'sentForeign', 'report', 'failed'] satisfies ReplyKey[];

function isReply(message: unknown): message is PeerReply {
  return (
    typeof message === 'object' &&
    message !== null &&
    !Array.isArray(message) &&
    Object.keys(message).some((key) => REPLY_KEYS.includes(key))
  );
}

/** The other side of a test: a forked child (notify-peer) or a worker thread (notify-worker), and its replies. */
class Peer {
  readonly name: string;
  readonly endpoint: ChildProcess | Worker;
  stdout = '';
  stderr = '';
  #inbox: PeerReply[] = [];
  #changed = new EventEmitter();
  #gone: string | undefined;

  constructor(name: string, endpoint: ChildProcess | Worker) {
    this.name = name;
    this.endpoint = endpoint;
    endpoint.on('message', (message: unknown) => {
      if (!isReply(message)) return;
      this.#inbox.push(message);
      this.#changed.emit('change');
    });
    endpoint.on('exit', (code: number | null, signal?: NodeJS.Signals | null) => {
      this.#gone = `exited (${signal ?? code})`;
      this.#changed.emit('change');
    });
    endpoint.on('error', (error: Error) => {
      this.#gone = `failed: ${error.message}`;
      this.#changed.emit('change');
    });
    if (endpoint instanceof Worker) return;
    endpoint.stdout?.on('data', (data: Buffer) => (this.stdout += data.toString()));
    endpoint.stderr?.on('data', (data: Buffer) => (this.stderr += data.toString()));
  }

  get child(): ChildProcess {
    assert.ok(!(this.endpoint instanceof Worker), `${this.name} is a worker thread`);
    return this.endpoint;
  }

  send(command: PeerCommand): void {
    if (this.endpoint instanceof Worker) this.endpoint.postMessage(command);
    else this.endpoint.send(command);
  }

  /** The next reply that has `key`, taken from the inbox; rejects after `within` ms, on a failure or if the peer ended. */
  async next<K extends ReplyKey>(key: K, within = REPLY_TIMEOUT_MS): Promise<ReplyOf<K>> {
    const deadline = performance.now() + within;
    for (;;) {
      const failed = this.#inbox.find((reply) => 'failed' in reply);
      if (failed !== undefined) throw new Error(`${this.name}: ${failed.failed}\n${this.stderr}`);
      const index = this.#inbox.findIndex((reply) => key in reply);
      if (index >= 0) return this.#inbox.splice(index, 1)[0] as ReplyOf<K>;
      if (this.#gone !== undefined) throw new Error(`${this.name} ${this.#gone} before it sent '${key}'\n${this.stderr}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${this.name} sent no '${key}' within ${within} ms`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#changed.off('change', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#changed.on('change', done);
      });
    }
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    const { signal } = await exited(this.child);
    assert.equal(signal, 'SIGKILL');
  }
}

interface Scope {
  /** A queue directory that does not exist yet; removed after the test, once children and queues are gone. */
  dir: string;
  open(options?: { pollInterval?: number; dir?: string }): Promise<Queue<string>>;
  fork(mode: 'notify' | 'poll', options?: { pollInterval?: number; dir?: string }): Promise<Peer>;
  /** A worker thread with a queue on each of `queues` (directories and channels); at most one per test file, see lockFreeForWorker. */
  worker(queues: NotifyWorkerData['queues'], transfer: TransferListItem[]): Promise<Peer>;
  /** Called when the test ends, before the queues close (channels to close, say). */
  defer(fn: () => void): void;
}

/** What a test needs, cleaned up when it ends: children killed, workers terminated, queues closed, then the directory removed. */
function scope(t: TestContext): Scope {
  const peers: Peer[] = [];
  const queues: Queue<string>[] = [];
  const deferred: (() => void)[] = [];
  // Registered before tempQueueDir's removal, so it runs first (after hooks run in order).
  t.after(async () => {
    for (const peer of peers) {
      if (peer.endpoint instanceof Worker) await peer.endpoint.terminate();
      else await killIfRunning(peer.child);
    }
    for (const fn of deferred) fn();
    for (const q of queues) await q.close();
  });
  const dir = tempQueueDir(t);
  return {
    dir,
    async open(options = {}) {
      const q = await Queue.open<string>(options.dir ?? dir, { pollInterval: options.pollInterval ?? SLOW_POLL_MS, watch: false });
      queues.push(q);
      return q;
    },
    async fork(mode, options = {}) {
      const child = forkFixture('notify-peer', [options.dir ?? dir, String(options.pollInterval ?? SLOW_POLL_MS), mode]);
      const peer = new Peer(`child ${child.pid}`, child);
      peers.push(peer);
      await peer.next('ready');
      return peer;
    },
    async worker(queues, transfer) {
      const workerData: NotifyWorkerData = { pollInterval: SLOW_POLL_MS, queues };
      const worker = new Worker(path.join(fixtures, 'notify-worker.js'), { workerData, transferList: transfer });
      const peer = new Peer(`worker ${worker.threadId}`, worker);
      peers.push(peer);
      await peer.next('ready');
      return peer;
    },
    defer(fn) {
      deferred.push(fn);
    },
  };
}

/** Rejects with `message` if `promise` does not settle within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Before a worker thread touches the queue, lets this thread's queue publish
 * and release the directory lock (it keeps it until the loop turns), so the
 * worker finds it free. fs-ext 2.1.1, which lib/coordination/lock.ts uses, is not safe in
 * worker threads, and that is not what these tests are about:
 * - its asynchronous flock runs on the main thread's loop and calls back into
 *   the worker's isolate: a worker that waits for the lock crashes the process;
 * - its init keeps V8 handles in statics: a second worker that loads it (after
 *   the first ended) crashes the process, hence one worker per test file.
 */
async function lockFreeForWorker(peer: Peer): Promise<void> {
  if (peer.endpoint instanceof Worker) await new Promise((resolve) => setImmediate(resolve));
}

interface WakeOptions {
  /** The bound on the wake-up, in ms. @default WAKE_WITHIN_MS */
  within?: number;
  /** Which of a worker's queues is the other side. */
  queue?: number;
}

/** The peer's get sleeps on an empty queue; a put here must reach it within `within` ms. */
async function putHereGetThere(
  q: Queue<string>,
  peer: Peer,
  item: string,
  { within: ms = WAKE_WITHIN_MS, queue }: WakeOptions = {},
): Promise<void> {
  await lockFreeForWorker(peer);
  peer.send({ cmd: 'get', ack: true, queue });
  await peer.next('waiting');
  const start = performance.now();
  await q.put(item);
  const { got } = await peer.next('got', ms);
  assert.equal(got, item);
  const elapsed = performance.now() - start;
  assert.ok(elapsed < ms, `${peer.name} got ${item} after ${elapsed.toFixed(1)} ms`);
}

/** A get here sleeps on an empty queue; a put by the peer must reach it within `within` ms. */
async function putThereGetHere(
  q: Queue<string>,
  peer: Peer,
  item: string,
  { within: ms = WAKE_WITHIN_MS, queue }: WakeOptions = {},
): Promise<void> {
  const getting = q.get();
  await sleep(WAIT_SETTLE_MS);
  const start = performance.now();
  peer.send({ cmd: 'put', item, queue });
  const got = await within(getting, ms, `a get here was not woken within ${ms} ms by ${peer.name}'s put of ${item}`);
  assert.equal(got, item);
  const elapsed = performance.now() - start;
  assert.ok(elapsed < ms, `got ${item} from ${peer.name} after ${elapsed.toFixed(1)} ms`);
  await q.taskDone();
  await peer.next('put');
}

/** Uncaught exceptions, unhandled rejections, perq's warnings and listener-leak warnings in this process while the test runs. */
function processErrors(t: TestContext): string[] {
  const errors: string[] = [];
  const onError = (error: unknown): void => void errors.push(`uncaught: ${String(error)}`);
  const onRejection = (reason: unknown): void => void errors.push(`unhandled rejection: ${String(reason)}`);
  const onWarning = (warning: Error & { code?: string }): void => {
    if (warning.code?.startsWith('PERQ') === true || warning.name === 'MaxListenersExceededWarning')
      errors.push(`warning: ${warning.message}`);
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onRejection);
  process.on('warning', onWarning);
  t.after(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onRejection);
    process.off('warning', onWarning);
  });
  return errors;
}

/** The listeners perq puts on a ChildProcess (and the spec's own, which stay). */
function childListeners(child: ChildProcess): Record<string, number> {
  return { message: child.listenerCount('message'), exit: child.listenerCount('exit'), disconnect: child.listenerCount('disconnect') };
}

function isInvalidArg(dir: string) {
  return (error: unknown): boolean => error instanceof QueueError && error.code === 'ERR_INVALID_ARG' && error.message.includes(dir);
}

/** Messages on the IPC channel that are not perq's: perq must pass them by. */
const FOREIGN: readonly (Serializable | null)[] = [
  'hello',
  42,
  null,
  [1, 'two'],
  { perq: 'other' },
  { perq: 'wake' },
  { perq: 'wake', dir: '/some/other/queue', added: true },
  { dir: '/x', added: true },
];

describe('useNotify between a parent and a forked child (IPC channel)', () => {
  test('a put on either side wakes a get waiting on the other at once, again and again', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const q = await s.open();
    const peer = await s.fork('notify');
    assert.equal(q.useNotify(peer.child), q);
    for (let round = 0; round < 3; round++) {
      await putHereGetThere(q, peer, `to child ${round}`);
      await putThereGetHere(q, peer, `to parent ${round}`);
    }
    assert.equal(q.size, 0);
  });

  test('the two sides may name the directory differently (a symlink): the wake-ups still match', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const q = await s.open();
    const link = `${s.dir}-link`; // beside the queue, in the test's temporary directory
    fs.symlinkSync(s.dir, link);
    const peer = await s.fork('notify', { dir: link });
    q.useNotify(peer.child);
    await putHereGetThere(q, peer, 'through the link');
    await putThereGetHere(q, peer, 'back');
  });

  test('after the child is killed (SIGKILL) and another is forked: nothing is lost, wake-ups work both ways', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const errors = processErrors(t);
    const q = await s.open();
    const first = await s.fork('notify');
    const untouched = childListeners(first.child);
    q.useNotify(first.child);
    await putHereGetThere(q, first, 'a');
    await putThereGetHere(q, first, 'b');
    // An item the child takes and never acknowledges: it must be handed out again.
    first.send({ cmd: 'get', ack: false });
    await first.next('waiting');
    await q.put('held by the dead');
    assert.equal((await first.next('got')).got, 'held by the dead');
    await first.kill();

    await q.put('put while no child lived 1');
    await q.put('put while no child lived 2');
    await sleep(SETTLE_MS);
    assert.deepEqual(childListeners(first.child), untouched, "perq's listeners on the dead child are gone");

    const second = await s.fork('notify');
    q.useNotify(second.child);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      second.send({ cmd: 'get', ack: true });
      got.push((await second.next('got')).got);
    }
    assert.deepEqual([...got].sort(), ['held by the dead', 'put while no child lived 1', 'put while no child lived 2']);
    assert.ok(got.indexOf('put while no child lived 1') < got.indexOf('put while no child lived 2'), `FIFO: ${got.join(', ')}`);

    await putHereGetThere(q, second, 'c');
    await putThereGetHere(q, second, 'd');
    assert.equal(q.size, 0);
    assert.deepEqual(errors, []);
  });

  test("messages that are not perq's reach their own listeners both ways and are ignored by perq", TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const errors = processErrors(t);
    const q = await s.open();
    const peer = await s.fork('notify');
    q.useNotify(peer.child);
    const realDir = fs.realpathSync(s.dir);
    const received: unknown[] = [];
    peer.child.on('message', (message: unknown) => {
      if (!isReply(message) && !isPerqWake(message, realDir)) received.push(message);
    });

    for (const message of FOREIGN) peer.child.send(message as Serializable);
    peer.send({ cmd: 'report' });
    const { report } = await peer.next('report');
    assert.deepEqual(report.foreign, FOREIGN, "the child's own listener got every message, unchanged");
    assert.deepEqual(report.errors, []);

    peer.send({ cmd: 'sendForeign', messages: [...FOREIGN] });
    await peer.next('sentForeign');
    assert.deepEqual(received, FOREIGN, "the parent's own listener got every message, unchanged");

    await putHereGetThere(q, peer, 'still wakes the child');
    await putThereGetHere(q, peer, 'still wakes the parent');
    peer.send({ cmd: 'report' });
    assert.deepEqual((await peer.next('report')).report.errors, []);
    assert.deepEqual(errors, []);
  });

  test('a dozen queues on one channel add one set of listeners; a wake-up reaches the queue of its directory', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const errors = processErrors(t);
    const peer = await s.fork('notify');
    const untouched = childListeners(peer.child);
    const attached = { message: untouched.message + 1, exit: untouched.exit + 1, disconnect: untouched.disconnect + 1 };
    // More queues than Node's default of 10 listeners per event; the child's directory comes last.
    const others: Queue<string>[] = [];
    for (let i = 0; i < 11; i++) others.push(await s.open({ dir: path.join(path.dirname(s.dir), `other-${i}`) }));
    const q = await s.open();
    for (const queue of [...others, q]) queue.useNotify(peer.child);
    assert.deepEqual(childListeners(peer.child), attached);
    await putHereGetThere(q, peer, 'to the child');
    await putThereGetHere(q, peer, 'to the last queue');
    for (const other of others) await other.close();
    assert.deepEqual(childListeners(peer.child), attached, 'still attached for the queue left');
    await putThereGetHere(q, peer, 'to the queue left');
    await q.close();
    assert.deepEqual(childListeners(peer.child), untouched, 'the last queue to close took the listeners off');
    assert.deepEqual(errors, []);
  });

  test('a channel to a killed child is dropped quietly: puts after the kill raise nothing', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const errors = processErrors(t);
    const q = await s.open();
    const peer = await s.fork('notify');
    const untouched = childListeners(peer.child);
    q.useNotify(peer.child);
    assert.notDeepEqual(childListeners(peer.child), untouched, 'perq listens on the child');
    await putHereGetThere(q, peer, 'alive');

    peer.child.kill('SIGKILL');
    // Likely before this process has noticed the death: the channel still looks connected.
    await q.put('right after the kill');
    await sleep(SETTLE_MS);
    await exited(peer.child);
    await q.put('after the exit');
    await sleep(SETTLE_MS);

    assert.deepEqual(errors, []);
    assert.deepEqual(childListeners(peer.child), untouched, "perq's listeners on the dead child are gone");
    assert.deepEqual(await q.getMany(2), ['right after the kill', 'after the exit']);
  });

  test('in a child whose parent disconnects, the channel is dropped quietly: its puts raise nothing', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const errors = processErrors(t);
    const q = await s.open();
    const peer = await s.fork('notify');
    const untouched = childListeners(peer.child);
    q.useNotify(peer.child);
    peer.send({ cmd: 'report' });
    assert.deepEqual((await peer.next('report')).report.perqListeners, { message: 1, disconnect: 1 }, 'perq listens on process');

    peer.child.disconnect();
    // The child puts once more, then prints its report and exits.
    const { code } = await exited(peer.child);
    assert.equal(code, 0, peer.stderr);
    const report = JSON.parse(peer.stdout.trim().split('\n').at(-1) ?? '') as PeerReport;
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.perqListeners, { message: 0, disconnect: 0 }, "perq's listeners on process are gone");
    assert.deepEqual(childListeners(peer.child), untouched, "perq's listeners on the child are gone");
    assert.equal(await q.get({ timeout: REPLY_TIMEOUT_MS }), 'after disconnect');
    assert.deepEqual(errors, []);
  });
});

describe('useNotify between threads', () => {
  // One worker thread for both kinds of channel: fs-ext cannot be loaded by a
  // second worker in one process (see lockFreeForWorker).
  test('a worker thread and the main thread wake each other over a MessagePort and over a BroadcastChannel', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const errors = processErrors(t);
    const byPort = await s.open();
    const byBroadcast = await s.open({ dir: `${s.dir}-broadcast` });
    const { port1, port2 } = new MessageChannel();
    const name = `perq-notify-spec-${randomUUID()}`;
    const broadcast = new BroadcastChannel(name);
    s.defer(() => {
      port1.close();
      broadcast.close();
    });
    const PORT = 0;
    const BROADCAST = 1;
    const peer = await s.worker(
      [
        { dir: byPort.dir, channel: { port: port2 } },
        { dir: byBroadcast.dir, channel: { broadcast: name } },
      ],
      [port2],
    );
    assert.equal(byPort.useNotify(port1), byPort);
    assert.equal(byBroadcast.useNotify(broadcast), byBroadcast);

    await t.test('MessagePort', async () => {
      for (let round = 0; round < 2; round++) {
        await putHereGetThere(byPort, peer, `to worker ${round}`, { queue: PORT });
        await putThereGetHere(byPort, peer, `to main ${round}`, { queue: PORT });
      }
    });
    await t.test('BroadcastChannel', async () => {
      for (let round = 0; round < 2; round++) {
        await putHereGetThere(byBroadcast, peer, `to worker ${round}`, { queue: BROADCAST });
        await putThereGetHere(byBroadcast, peer, `to main ${round}`, { queue: BROADCAST });
      }
    });
    await t.test('a closed BroadcastChannel is dropped quietly', async () => {
      broadcast.close();
      // perq's post on the closed channel throws inside perq, which drops the channel.
      await byBroadcast.put('after close');
      await byBroadcast.put('after close, again');
      await sleep(SETTLE_MS);
      assert.deepEqual(await byBroadcast.getMany(2), ['after close', 'after close, again']);
    });
    await t.test('a port whose worker ended is dropped quietly', async () => {
      const closed = new Promise((resolve) => port1.once('close', resolve));
      await (peer.endpoint as Worker).terminate();
      await within(closed, REPLY_TIMEOUT_MS, 'our port did not close when the worker ended');
      await byPort.put('after the worker ended');
      await sleep(SETTLE_MS);
      assert.equal(port1.listenerCount('message'), 0, "perq's listener on the closed port is gone");
      assert.equal(await byPort.get(), 'after the worker ended');
    });
    assert.deepEqual(errors, []);
  });
});

describe('Notifier (lib/wakeup/notify.ts) in one thread', () => {
  // Notifiers of one directory in one thread also hear each other directly
  // (synchronously); what comes later came over the channel.
  const ADDED = { added: true, taken: false, acknowledged: false };

  function pair(dir: string, channels: [NotifyChannel, NotifyChannel]): { sender: Notifier; heard: StoreEvents[]; close: () => void } {
    const heard: StoreEvents[] = [];
    const sender = new Notifier(dir, () => undefined);
    const receiver = new Notifier(dir, (events) => heard.push(events));
    sender.add(channels[0]);
    receiver.add(channels[1]);
    return { sender, heard, close: () => [sender, receiver].forEach((n) => n.close()) };
  }

  test('a MessagePort carries the events; foreign messages on it are left to their own listeners', async (t) => {
    const { port1, port2 } = new MessageChannel();
    const { sender, heard, close } = pair('/queue/a', [port1, port2]);
    t.after(() => {
      close();
      port1.close();
    });
    const own: unknown[] = [];
    port2.on('message', (message: unknown) => own.push(message));
    sender.send(ADDED);
    assert.deepEqual(heard, [ADDED], 'heard directly');
    for (const message of FOREIGN) port1.postMessage(message);
    const TAKEN = { added: false, taken: true, acknowledged: true };
    sender.send(TAKEN);
    await sleep(SETTLE_MS);
    assert.deepEqual(heard, [ADDED, TAKEN, ADDED, TAKEN], 'heard directly, then over the port');
    assert.equal(own.length, FOREIGN.length + 2, "the port's own listener got perq's messages and the others");
    assert.deepEqual(own.slice(1, 1 + FOREIGN.length), FOREIGN);
  });

  test('a BroadcastChannel carries the events; once closed, sending drops it without throwing', async (t) => {
    const name = `perq-notify-spec-${randomUUID()}`;
    const [a, b] = [new BroadcastChannel(name), new BroadcastChannel(name)];
    const { sender, heard, close } = pair('/queue/b', [a, b]);
    t.after(() => {
      close();
      a.close();
      b.close();
    });
    sender.send(ADDED);
    await sleep(SETTLE_MS);
    assert.deepEqual(heard, [ADDED, ADDED]);
    a.close();
    assert.doesNotThrow(() => sender.send(ADDED));
    assert.doesNotThrow(() => sender.send(ADDED), 'dropped, so not even tried again');
    await sleep(SETTLE_MS);
    assert.deepEqual(heard, [ADDED, ADDED, ADDED, ADDED], 'only the direct wake-ups');
  });

  test('a message for another directory does not wake', async (t) => {
    const { port1, port2 } = new MessageChannel();
    const heard: StoreEvents[] = [];
    const receiver = new Notifier('/queue/c', (events) => heard.push(events));
    receiver.add(port2);
    t.after(() => {
      receiver.close();
      port1.close();
    });
    port1.postMessage({ perq: 'wake', dir: '/queue/other', added: true, taken: false, acknowledged: false });
    port1.postMessage({ perq: 'wake', dir: '/queue/c', added: true, taken: false, acknowledged: false });
    await sleep(SETTLE_MS);
    assert.deepEqual(heard, [ADDED]);
  });
});

describe('without a channel: polling', () => {
  test(`a get waiting in one process finds what another puts within pollInterval (${POLL_MS} ms)`, TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const q = await s.open({ pollInterval: POLL_MS });
    const peer = await s.fork('poll', { pollInterval: POLL_MS });
    for (let round = 0; round < 2; round++) {
      await putHereGetThere(q, peer, `polled by the child ${round}`, { within: POLL_MS + POLL_MARGIN_MS });
      await putThereGetHere(q, peer, `polled by the parent ${round}`, { within: POLL_MS + POLL_MARGIN_MS });
    }
  });
});

describe('useNotify arguments', () => {
  test('returns the queue; a channel passed again is attached once; close detaches it; a closed queue refuses', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const q = await s.open();
    const peer = await s.fork('notify');
    const untouched = childListeners(peer.child);
    assert.equal(q.useNotify(), q);
    assert.equal(q.useNotify(peer.child, peer.child), q);
    assert.equal(q.useNotify(peer.child), q);
    const attached = childListeners(peer.child);
    assert.deepEqual(attached, { message: untouched.message + 1, exit: untouched.exit + 1, disconnect: untouched.disconnect + 1 });
    await q.close();
    assert.deepEqual(childListeners(peer.child), untouched, 'close removed what useNotify added');
    assert.throws(
      () => q.useNotify(peer.child),
      (error: unknown) => error instanceof QueueError && error.code === 'ERR_QUEUE_CLOSED',
    );
  });

  test(
    'anything but a ChildProcess, process, MessagePort or BroadcastChannel is ERR_INVALID_ARG naming the directory',
    TEST_OPTIONS,
    async (t) => {
      const s = scope(t);
      const q = await s.open();
      const channel = new MessageChannel();
      t.after(() => channel.port1.close());
      for (const bad of [undefined, null, 42, 'process', {}, new EventEmitter(), channel, { send() {}, on() {} }]) {
        assert.throws(() => q.useNotify(bad as never), isInvalidArg(fs.realpathSync(s.dir)), `useNotify(${inspect(bad)})`);
      }
      await q.put('still works');
      assert.equal(await q.get(), 'still works');
    },
  );

  test('a ChildProcess started without an IPC channel is ERR_INVALID_ARG saying to fork', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const q = await s.open();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: ['ignore', 'ignore', 'ignore'] });
    t.after(async () => {
      child.kill('SIGKILL');
      await exited(child);
    });
    const untouched = childListeners(child);
    assert.throws(
      () => q.useNotify(child),
      (error: unknown) => isInvalidArg(fs.realpathSync(s.dir))(error) && /fork/.test((error as Error).message),
    );
    assert.deepEqual(childListeners(child), untouched, 'nothing attached');
  });

  test('useNotify(process) in a process without an IPC channel is ERR_INVALID_ARG saying to fork', TEST_OPTIONS, async (t) => {
    const s = scope(t);
    const child = spawn(process.execPath, [path.join(fixtures, 'notify-no-ipc.js'), s.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const { code } = await exited(child);
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as { code: string; message: string };
    assert.equal(result.code, 'ERR_INVALID_ARG', result.message);
    assert.match(result.message, /fork/);
    assert.ok(result.message.includes(fs.realpathSync(s.dir)), result.message);
  });
});
