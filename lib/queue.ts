// The public Queue: validates arguments, composes the store (files), the
// directory lock and the durability policy, and keeps the promises of callers
// waiting for items, for room or for `join`. It does no file I/O of its own.

import fs from 'node:fs';
import path from 'node:path';
import { Empty, Full, QueueError, ioError } from './errors.js';
import { acquireDirectoryLock, type DirectoryLock } from './lock.js';
import { resolveOptions, type QueueOptions, type ResolvedOptions } from './options.js';
import { QueueStore } from './store.js';
import { WaitList } from './waiters.js';

export interface PutOptions {
  /** Wait while the queue is at `maxSize` (otherwise reject `Full` at once). @default true */
  block?: boolean;
  /** Give up waiting for room after this many ms and reject `Full`. */
  timeout?: number;
}

export interface GetOptions {
  /** Wait while the queue is empty (otherwise reject `Empty` at once). @default true */
  block?: boolean;
  /** Give up waiting after this many ms and reject `Empty`. */
  timeout?: number;
  /** Give up waiting when aborted, rejecting with the signal's reason. */
  signal?: AbortSignal;
}

export type GetManyOptions = Omit<GetOptions, 'block'>;

interface Joiner {
  target: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class Queue<T = unknown> implements AsyncIterable<T> {
  /** The queue directory, as an absolute path. */
  readonly dir: string;
  #options: ResolvedOptions;
  #store: QueueStore;
  #lock: DirectoryLock;
  #getters = new WaitList();
  #putters = new WaitList();
  #joiners: Joiner[] = [];
  /** Items before this one are acknowledged by taskDone (== store.ackSeq unless autosave). */
  #doneSeq: number;
  #closing: Promise<void> | undefined;

  private constructor(dir: string, options: ResolvedOptions, store: QueueStore, lock: DirectoryLock) {
    this.dir = dir;
    this.#options = options;
    this.#store = store;
    this.#lock = lock;
    this.#doneSeq = store.ackSeq;
  }

  /** Opens the queue in `dir`, creating the directory (recursively) and the queue when absent. */
  static async open<T = unknown>(dir: string, options?: QueueOptions): Promise<Queue<T>> {
    return Queue.openSync<T>(dir, options);
  }

  /** `open`, synchronously. */
  static openSync<T = unknown>(dir: string, options?: QueueOptions): Queue<T> {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new QueueError('ERR_INVALID_ARG', String(dir), 'the queue directory must be a non-empty string');
    }
    const absolute = path.resolve(dir);
    const resolved = resolveOptions(absolute, options);
    try {
      fs.mkdirSync(absolute, { recursive: true });
    } catch (error) {
      throw ioError(absolute, 'creating the queue directory', error);
    }
    const lock = acquireDirectoryLock(absolute, resolved.locking);
    try {
      return new Queue<T>(absolute, resolved, QueueStore.open(absolute, resolved), lock);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /** Items not yet handed out. */
  get size(): number {
    return this.#store.waiting;
  }

  /** Items not yet handed out. */
  qsize(): number {
    return this.#store.waiting;
  }

  empty(): boolean {
    return this.#store.waiting === 0;
  }

  full(): boolean {
    return this.#options.maxSize > 0 && this.#store.waiting >= this.#options.maxSize;
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

  /** Appends `item`; resolves once it is durable per the `fsync` option. */
  async put(item: T, options: PutOptions = {}): Promise<void> {
    this.#assertOpen();
    const { block, deadline } = this.#putArgs(options);
    await this.#waitForRoom(block, deadline, options.timeout);
    this.#append([item]);
    await this.#store.durability.settle();
  }

  /** Appends all `items` in order, in as few writes as possible. */
  async putMany(items: Iterable<T>, options: PutOptions = {}): Promise<void> {
    this.#assertOpen();
    const list = this.#itemList(items);
    const { block, deadline } = this.#putArgs(options);
    const maxSize = this.#options.maxSize;
    for (let from = 0; from < list.length; ) {
      // With maxSize, items go in as room frees up; each part is one append.
      await this.#waitForRoom(block, deadline, options.timeout);
      const to = maxSize > 0 ? Math.min(list.length, from + maxSize - this.#store.waiting) : list.length;
      this.#append(from === 0 && to === list.length ? list : list.slice(from, to));
      from = to;
    }
    await this.#store.durability.settle();
  }

  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  /** Resolves with the oldest item not yet handed out, waiting while there is none. */
  async get(options: GetOptions = {}): Promise<T> {
    return (await this.#getBatch(1, options)).values[0];
  }

  /** Waits like `get` for the first item, then resolves with up to `max` waiting items. */
  async getMany(max: number, options: GetManyOptions = {}): Promise<T[]> {
    if (!Number.isSafeInteger(max) || max < 1) throw this.#invalidArg(`getMany(max) takes a whole number >= 1, got ${String(max)}`);
    return (await this.#getBatch(max, { ...options, block: true })).values;
  }

  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  /** The next item `get` would return, without taking it; undefined when empty. */
  async peek(): Promise<T | undefined> {
    return this.peekSync();
  }

  peekSync(): T | undefined {
    this.#assertOpen();
    return this.#store.peek() as T | undefined;
  }

  /**
   * Acknowledges the oldest handed-out, unacknowledged item and persists the
   * read cursor (with `autosave`, get already did; this only counts for join).
   */
  async taskDone(): Promise<void> {
    this.#acknowledge();
    await this.#store.durability.settle();
  }

  /** Resolves when every item put so far has been acknowledged. */
  async join(): Promise<void> {
    this.#assertOpen();
    const target = this.#store.headSeq;
    if (this.#doneSeq >= target) return;
    return new Promise((resolve, reject) => this.#joiners.push({ target, resolve, reject }));
  }

  /** Removes every item (handed out or not) and the files that held them. */
  async clear(): Promise<void> {
    this.clearSync();
  }

  clearSync(): void {
    this.#assertOpen();
    this.#store.clear();
    this.#doneSeq = this.#store.ackSeq;
    this.#settleJoiners();
    this.#putters.wakeAll();
  }

  putSync(item: T): void {
    this.#assertOpen();
    if (this.full()) throw new Full(this.dir, `the queue holds maxSize (${this.#options.maxSize}) items`);
    this.#append([item]);
    this.#store.durability.settleSync();
  }

  /** Takes the oldest waiting item or throws `Empty`. */
  getSync(): T {
    this.#assertOpen();
    const { values } = this.#take(1);
    if (values.length === 0) throw new Empty(this.dir);
    if (this.#options.autosave) this.#store.durability.settleSync();
    return values[0];
  }

  taskDoneSync(): void {
    this.#acknowledge();
    this.#store.durability.settleSync();
  }

  /** Flushes and persists, then releases files, locks and timers. Later calls reject ERR_QUEUE_CLOSED. */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Yields items forever, waiting when empty. An item is acknowledged when the
   * loop asks for the next one, so an item whose loop body throws or breaks out
   * stays unacknowledged. The loop ends when the queue is closed.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    let yielded = -1;
    return {
      next: async (): Promise<IteratorResult<T>> => {
        try {
          // The body may already have called taskDone for the item (before a break, say).
          if (yielded >= 0 && this.#doneSeq <= yielded) await this.taskDone();
          const { values, firstSeq } = await this.#getBatch(1, {});
          yielded = firstSeq;
          return { value: values[0], done: false };
        } catch (error) {
          if (error instanceof QueueError && error.code === 'ERR_QUEUE_CLOSED') return { value: undefined, done: true };
          throw error;
        }
      },
      return: async (): Promise<IteratorResult<T>> => ({ value: undefined, done: true }),
    };
  }

  async #shutDown(): Promise<void> {
    const closed = this.#closedError();
    this.#getters.failAll(closed);
    this.#putters.failAll(closed);
    for (const joiner of this.#joiners.splice(0)) joiner.reject(closed);
    try {
      await this.#store.close();
    } finally {
      this.#lock.release();
    }
  }

  async #getBatch(max: number, options: GetOptions): Promise<{ values: T[]; firstSeq: number }> {
    this.#assertOpen();
    const { block = true, timeout, signal } = options;
    if (typeof block !== 'boolean') throw this.#invalidArg(`option block must be true or false, got ${String(block)}`);
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw this.#invalidArg('option signal must be an AbortSignal');
    signal?.throwIfAborted();
    const deadline = this.#deadline(timeout);
    for (;;) {
      const batch = this.#take(max);
      if (batch.values.length > 0) {
        if (this.#options.autosave) await this.#store.durability.settle();
        return batch;
      }
      if (!block || timeout === 0) throw new Empty(this.dir);
      await this.#getters.wait(deadline, signal, () => new Empty(this.dir, `no item arrived within ${timeout} ms`));
    }
  }

  #take(max: number): { values: T[]; firstSeq: number } {
    const firstSeq = this.#store.readSeq;
    const values = this.#store.take(max) as T[];
    if (values.length > 0) {
      if (this.#options.autosave) this.#store.acknowledgeUpTo(this.#store.readSeq);
      this.#putters.wake(values.length);
    }
    return { values, firstSeq };
  }

  #append(items: readonly T[]): void {
    this.#store.append(items);
    this.#getters.wake(items.length);
  }

  #acknowledge(): void {
    this.#assertOpen();
    if (this.#doneSeq >= this.#store.readSeq) {
      throw new QueueError('ERR_TASK_DONE', this.dir, 'taskDone() was called more times than items were handed out');
    }
    this.#doneSeq++;
    if (!this.#options.autosave) this.#store.acknowledgeUpTo(this.#doneSeq);
    this.#settleJoiners();
  }

  #settleJoiners(): void {
    if (this.#joiners.length === 0) return;
    this.#joiners = this.#joiners.filter((joiner) => {
      if (this.#doneSeq < joiner.target) return true;
      joiner.resolve();
      return false;
    });
  }

  async #waitForRoom(block: boolean, deadline: number | undefined, timeout: number | undefined): Promise<void> {
    const maxSize = this.#options.maxSize;
    while (maxSize > 0 && this.#store.waiting >= maxSize) {
      if (!block || timeout === 0) throw new Full(this.dir, `the queue holds maxSize (${maxSize}) items`);
      await this.#putters.wait(deadline, undefined, () => new Full(this.dir, `no room freed up within ${timeout} ms`));
    }
  }

  #putArgs(options: PutOptions): { block: boolean; deadline: number | undefined } {
    if (typeof options !== 'object' || options === null) throw this.#invalidArg('put options must be an object');
    const { block = true } = options;
    if (typeof block !== 'boolean') throw this.#invalidArg(`option block must be true or false, got ${String(block)}`);
    return { block, deadline: this.#deadline(options.timeout) };
  }

  #deadline(timeout: number | undefined): number | undefined {
    if (timeout === undefined) return undefined;
    if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) {
      throw this.#invalidArg(`option timeout must be a number of milliseconds >= 0, got ${String(timeout)}`);
    }
    return performance.now() + timeout;
  }

  #itemList(items: Iterable<T>): readonly T[] {
    if (Array.isArray(items)) return items;
    if (items === null || typeof (items as Iterable<T>)?.[Symbol.iterator] !== 'function') {
      throw this.#invalidArg('putMany takes an array or another iterable of items');
    }
    return [...items];
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw this.#closedError();
  }

  #closedError(): QueueError {
    return new QueueError('ERR_QUEUE_CLOSED', this.dir, 'the queue is closed');
  }

  #invalidArg(message: string): QueueError {
    return new QueueError('ERR_INVALID_ARG', this.dir, message);
  }
}
