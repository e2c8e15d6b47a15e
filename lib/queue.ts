// The public Queue: validates arguments (arguments.ts), composes the store
// (files), the lock session (when this process holds the directory lock), the
// durability policy and the wake-ups, and keeps the promises of callers
// waiting for items, for room or for `join`. Each call is written once, as an
// Operation that its async and sync forms both run (operation.ts). It does no
// file I/O of its own: open.ts finds, makes and locks the directory.

import { Empty, Full, QueueError } from './errors.js';
import { LockSession, releaseHoldsOn } from './coordination/session.js';
import { Notifier, type NotifyChannel } from './wakeup/notify.js';
import {
  assertCount,
  assertOptionsObject,
  getArgs,
  itemList,
  putArgs,
  rawOption,
  type GetManyOptions,
  type GetOptions,
  type NackOptions,
  type PeekOptions,
  type PutOptions,
} from './arguments.js';
import { OperationRunner } from './operation.js';
import { QueueCalls, RECLAIM_WHEN_IDLE_MS, type ConsumerStats, type QueueOperations, type QueueStats } from './calls.js';
import type { Entry, EntryRef } from './entries.js';
import { openQueueDirectory, repairQueueDirectory } from './open.js';
import type { QueueOptions, ResolvedOptions } from './options.js';
import type { StoreEvents } from './store/events.js';
import { STATE_FILE } from './store/state.js';
import type { QueueStore, RepairReport } from './store/store.js';
import { HandOutCount } from './hand-outs.js';
import { iterate } from './iterate.js';
import { JoinList } from './wakeup/joiners.js';
import { WaitTimers } from './wakeup/wait-timers.js';
import { WaitList } from './wakeup/waiters.js';
import { StateWatcher } from './wakeup/watch.js';

export type { PutOptions, GetOptions, GetManyOptions, PeekOptions, NackOptions, Entry, EntryRef, QueueStats, ConsumerStats };

export class Queue<T = unknown> implements AsyncIterable<T> {
  /** The queue directory, as an absolute path. */
  readonly dir: string;
  #options: ResolvedOptions;
  #store: QueueStore;
  #realDir: string;
  #hold: LockSession;
  #notifier: Notifier;
  #watcher: StateWatcher | null;
  #timers: WaitTimers;
  #getters = new WaitList();
  #putters = new WaitList();
  #joiners = new JoinList();
  /** Items this queue handed out, and how many of them taskDone acknowledged (in that order). */
  #handOuts: HandOutCount;
  #operations: OperationRunner;
  #calls: QueueCalls<T>;
  #ops: QueueOperations<T>;
  #closing: Promise<void> | undefined;

  private constructor(dir: string, realDir: string, options: ResolvedOptions, store: QueueStore, hold: LockSession) {
    this.dir = dir;
    this.#options = options;
    this.#store = store;
    this.#realDir = realDir;
    this.#hold = hold;
    this.#handOuts = new HandOutCount(dir);
    this.#operations = new OperationRunner(hold, store, () => this.#assertOpen());
    this.#calls = new QueueCalls<T>({
      dir,
      options,
      store,
      handOuts: this.#handOuts,
      getters: this.#getters,
      putters: this.#putters,
      resolveJoined: () => this.#resolveJoined(store.ackSeq, store.readSeq),
    });
    this.#ops = this.#calls.operations;
    hold.useHooks({
      acquired: () => store.refresh(),
      releasing: () => store.publish(),
      released: () => this.#published(store.takeEvents()),
    });
    this.#notifier = new Notifier(realDir, (events) => this.#wake(events));
    this.#timers = new WaitTimers(options.pollInterval, RECLAIM_WHEN_IDLE_MS, {
      anyWaiting: () => this.#getters.length + this.#putters.length + this.#joiners.length > 0,
      gettersWaiting: () => this.#getters.length > 0,
      poll: () => this.#wake({ added: true, taken: true, acknowledged: true }),
      deadHolderSuspected: () => store.deadHolderSuspected(),
      deadHolderFound: () => this.#getters.wakeAll(),
    });
    this.#watcher = options.watch
      ? new StateWatcher(realDir, STATE_FILE, () => this.#wake({ added: true, taken: true, acknowledged: true }))
      : null;
  }

  /** Opens the queue in `dir`, creating the directory (recursively) and the queue when absent. */
  static async open<T = unknown>(dir: string, options?: QueueOptions): Promise<Queue<T>> {
    return Queue.openSync<T>(dir, options);
  }

  /** `open`, synchronously. */
  static openSync<T = unknown>(dir: string, options?: QueueOptions): Queue<T> {
    const { absolute, realDir, resolved, store, hold } = openQueueDirectory(dir, options);
    return new Queue<T>(absolute, realDir, resolved, store, hold);
  }

  /**
   * Moves every damaged record of the queue in `dir` into `quarantine/`
   * inside it (where damage hides where records start, the damaged stretch
   * up to the next intact record), so that the queue goes on past it;
   * resolves with what it moved. Never deletes a byte. Works while other
   * processes have the queue open (they move to the repaired files), and
   * where `Queue.open` fails on damage.
   */
  static async repair(dir: string, options?: QueueOptions): Promise<RepairReport> {
    return Queue.repairSync(dir, options);
  }

  /** `repair`, synchronously. */
  static repairSync(dir: string, options?: QueueOptions): RepairReport {
    return repairQueueDirectory(dir, options);
  }

  /** Items not yet handed out (by any process). */
  get size(): number {
    return this.#itemsWaiting();
  }

  /** Items not yet handed out (by any process). */
  qsize(): number {
    return this.#itemsWaiting();
  }

  empty(): boolean {
    return this.#itemsWaiting() === 0;
  }

  full(): boolean {
    return this.#options.maxSize > 0 && this.#itemsWaiting() >= this.#options.maxSize;
  }

  /** The chunk size and serializer in use (from the info file when the queue existed). */
  get chunkSize(): number {
    return this.#store.chunkSize;
  }

  get serializerName(): string {
    return this.#store.serializer.name;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Wakes this queue's waiting calls when a process at the other end of a
   * channel puts, takes or acknowledges, and tells that process when this one
   * does: a ChildProcess (parent side), `process` (in a forked child), a
   * worker_threads MessagePort or a BroadcastChannel. Returns the queue.
   */
  useNotify(...channels: NotifyChannel[]): this {
    this.#assertOpen();
    for (const channel of channels) this.#notifier.add(channel);
    return this;
  }

  /** Appends `item`; resolves once it is durable per the `fsync` option. */
  async put(item: T, options: PutOptions = {}): Promise<void> {
    await this.#putList([item], options);
  }

  /** Appends all `items` in order, in as few writes as possible. */
  async putMany(items: Iterable<T>, options: PutOptions = {}): Promise<void> {
    this.#assertOpen();
    await this.#putList(itemList(this.dir, items), options);
  }

  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  /**
   * Resolves with the oldest item not yet handed out, waiting while there is
   * none; with `raw: true`, as an `Entry` (its id, put time and deliveries),
   * for `ack` and `nack`.
   */
  get(options: GetOptions & { raw: true }): Promise<Entry<T>>;
  get(options?: GetOptions): Promise<T>;
  async get(options: GetOptions = {}): Promise<T | Entry<T>> {
    return (await this.#getBatch(1, options))[0];
  }

  /** Waits like `get` for the first item, then resolves with up to `max` waiting items (entries with `raw: true`). */
  getMany(max: number, options: GetManyOptions & { raw: true }): Promise<Array<Entry<T>>>;
  getMany(max: number, options?: GetManyOptions): Promise<T[]>;
  async getMany(max: number, options: GetManyOptions = {}): Promise<Array<T | Entry<T>>> {
    assertCount(this.dir, max, 'getMany(max)');
    assertOptionsObject(this.dir, options, 'getMany');
    return this.#getBatch(max, { ...options, block: true });
  }

  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  /** The next item `get` would return, without taking it (an `Entry` with `raw: true`); undefined when empty. */
  peek(options: PeekOptions & { raw: true }): Promise<Entry<T> | undefined>;
  peek(options?: PeekOptions): Promise<T | undefined>;
  peek(options: PeekOptions = {}): Promise<T | Entry<T> | undefined> {
    return this.#operations.run(this.#ops.peek, options);
  }

  peekSync(options: PeekOptions & { raw: true }): Entry<T> | undefined;
  peekSync(options?: PeekOptions): T | undefined;
  peekSync(options: PeekOptions = {}): T | Entry<T> | undefined {
    return this.#operations.runSync(this.#ops.peek, options);
  }

  /**
   * Acknowledges the items named (ids or entries, in any order; an array in
   * one write), durable per `fsync` like `taskDone`. `ERR_NOT_HELD` when this
   * queue does not hold one of them; then none is acknowledged.
   */
  ack(target: EntryRef | readonly EntryRef[]): Promise<void> {
    return this.#operations.run(this.#ops.ack, target);
  }

  /**
   * Gives the items named back: each is handed out again before newer items
   * (to this queue or another consumer), or once `delay` ms have passed.
   * `ERR_NOT_HELD` when this queue does not hold one of them; then none is
   * given back. A delay lives in the shared state alone: should that be lost
   * (a power cut), the item comes back at once.
   */
  nack(target: EntryRef | readonly EntryRef[], options: NackOptions = {}): Promise<void> {
    return this.#operations.run(this.#ops.nack, { target, options });
  }

  /**
   * Acknowledges the oldest handed-out, unacknowledged item (or the `count`
   * oldest, in one write: after a getMany, say) and persists the read cursor
   * (with `autosave`, get already did; this only counts for join).
   */
  taskDone(count = 1): Promise<void> {
    return this.#operations.run(this.#ops.taskDone, count);
  }

  taskDoneSync(count = 1): void {
    this.#operations.runSync(this.#ops.taskDone, count);
  }

  /**
   * Counts of the whole queue (all processes), taken under the lock: items
   * waiting, held, delayed, in the dead-letter queue, the chunk files and
   * their bytes, and the consumers.
   */
  stats(): Promise<QueueStats> {
    return this.#operations.run(this.#ops.stats, undefined);
  }

  /** Resolves when every item put so far (by any process) has been acknowledged. */
  async join(): Promise<void> {
    const target = await this.#operations.run(this.#ops.head, undefined);
    if (this.#joined(target, this.#store.ackSeq, this.#store.readSeq)) return;
    this.#assertOpen();
    const joined = this.#joiners.wait(target);
    this.#timers.pollWhileWaiting();
    return joined;
  }

  /** Removes every item (handed out or not, by any process) and the files that held them. */
  clear(): Promise<void> {
    return this.#operations.run(this.#ops.clear, undefined);
  }

  clearSync(): void {
    this.#operations.runSync(this.#ops.clear, undefined);
  }

  /** Appends `item`, or throws `Full` when the queue holds `maxSize` items (never waits for room). */
  putSync(item: T): void {
    this.#operations.runSync(this.#ops.putNowait, [item]);
  }

  /** Takes the oldest waiting item (an `Entry` with `raw: true`) or throws `Empty`. */
  getSync(options: PeekOptions & { raw: true }): Entry<T>;
  getSync(options?: PeekOptions): T;
  getSync(options: PeekOptions = {}): T | Entry<T> {
    const values = this.#operations.runSync(this.#ops.take, { max: 1, raw: rawOption(this.dir, options, 'getSync') });
    if (values.length === 0) throw new Empty(this.dir);
    return values[0];
  }

  /**
   * Hands back the items this queue holds unacknowledged (to other consumers,
   * or to the next open), persists, then releases files, locks and timers.
   * Later calls reject ERR_QUEUE_CLOSED.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Yields items forever, waiting when empty; each is acknowledged when the loop asks for the next (see iterate.ts). */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return iterate({ take: async () => (await this.#getBatch(1, {}))[0] as T, acknowledge: () => this.taskDone(), counts: this.#handOuts });
  }

  async #shutDown(): Promise<void> {
    const closed = this.#closedError();
    this.#getters.failAll(closed);
    this.#putters.failAll(closed);
    this.#joiners.failAll(closed);
    this.#timers.stop();
    try {
      // Not #run: the queue counts as closed already.
      await this.#hold.run(() => {
        this.#store.endConsumer();
        this.#store.foldCursor();
      });
    } finally {
      try {
        this.#hold.close();
      } finally {
        this.#notifier.close();
        this.#watcher?.close();
        await this.#store.close();
      }
    }
  }

  async #putList(items: readonly T[], options: PutOptions): Promise<void> {
    this.#assertOpen();
    const { block, deadline } = putArgs(this.dir, options);
    const maxSize = this.#options.maxSize;
    for (let from = 0; from < items.length;) {
      let seen = 0;
      // The lock session directly (as #getBatch): the loop is put's own, and an
      // async step more per put would cost. One wait for durability for all
      // the parts, after the loop.
      const appended = await this.#hold.run(() => {
        this.#assertOpen();
        seen = this.#putters.wakes;
        if (this.#calls.isFull()) return false;
        // With maxSize, items go in as room frees up; each part is one append.
        const to = maxSize > 0 ? Math.min(items.length, from + maxSize - this.#store.waiting) : items.length;
        this.#calls.append(from === 0 && to === items.length ? items : items.slice(from, to));
        from = to;
        return true;
      });
      if (appended) continue;
      if (!block || options.timeout === 0) throw new Full(this.dir, `the queue holds maxSize (${maxSize}) items`);
      // Wait for room without sitting on the lock (unless close came meanwhile).
      this.#assertOpen();
      this.#hold.release();
      const room = this.#putters.wait(deadline, undefined, () => new Full(this.dir, `no room freed up within ${options.timeout} ms`), seen);
      this.#timers.pollWhileWaiting();
      await room;
    }
    await this.#store.settle();
  }

  async #getBatch(max: number, options: GetOptions): Promise<Array<T | Entry<T>>> {
    this.#assertOpen();
    const { block, deadline, signal, raw } = getArgs(this.dir, options);
    const { timeout } = options;
    for (;;) {
      this.#assertOpen();
      let seen = 0;
      // The take getSync runs too (QueueCalls.takeAs), on the lock
      // session directly: the loop is get's own (as #putList's is put's).
      const values = await this.#hold.run(() => {
        this.#assertOpen();
        seen = this.#getters.wakes;
        return this.#calls.takeAs(max, raw);
      });
      if (values.length > 0) {
        // As the take Operation settles (getSync): with autosave, the take acknowledged.
        if (this.#ops.take.settles) await this.#store.settle();
        return values;
      }
      if (!block || timeout === 0) throw new Empty(this.dir);
      // Wait for a put (here, through a channel or found by polling) without sitting on the lock.
      this.#assertOpen();
      this.#hold.release();
      // A put that came between the take and here (this queue's, or a sibling's) woke no one: `seen` catches it.
      const arrival = this.#getters.wait(deadline, signal, () => new Empty(this.dir, `no item arrived within ${timeout} ms`), seen);
      const nextDue = this.#store.nextDue;
      if (nextDue < Infinity) this.#timers.wakeAt(nextDue);
      this.#timers.pollWhileWaiting();
      this.#timers.watchForDeadConsumers();
      await arrival;
    }
  }

  /** After a release: tell the other processes and the queues of this thread what changed. */
  #published(events: StoreEvents): void {
    if (events.added || events.taken || events.acknowledged) this.#notifier.send(events);
  }

  /** Another process (or queue) changed something: let the waiting calls look. */
  #wake(events: StoreEvents): void {
    if (this.#closing !== undefined) return;
    if (events.added) this.#getters.wakeAll();
    if (events.taken) this.#putters.wakeAll();
    if (events.acknowledged && this.#joiners.length > 0) {
      const { ackSeq, readSeq } = this.#store.snapshot();
      this.#resolveJoined(ackSeq, readSeq);
    }
  }

  #joined(target: number, ackSeq: number, readSeq: number): boolean {
    // With autosave items count as acknowledged when taken; join also waits for this queue's taskDone calls.
    if (this.#options.autosave) return readSeq >= target && this.#handOuts.allAcknowledged;
    return ackSeq >= target;
  }

  /** Resolves the join() calls whose target the queue has reached. */
  #resolveJoined(ackSeq: number, readSeq: number): void {
    this.#joiners.resolveReached((target) => this.#joined(target, ackSeq, readSeq));
  }

  /** Items not yet handed out: exact under the lock, else as last published (this process's queues publish first). */
  #itemsWaiting(): number {
    if (this.#closing !== undefined) return this.#store.waiting;
    if (this.#hold.held) return this.#store.waitingCountingGone();
    // Queues of this process publish first; other processes' changes show once they publish (within a loop turn).
    releaseHoldsOn(this.#realDir);
    return this.#store.snapshot().waiting;
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw this.#closedError();
  }

  #closedError(): QueueError {
    return new QueueError('ERR_QUEUE_CLOSED', this.dir, 'the queue is closed');
  }
}
