// The index of waiting work, for `unique`: how many items with each key wait
// in the queue (put, not yet handed to a handler). One file per key,
// `keys/<sha256 hex>`, holding the count as decimal text; no file means none
// waits. It is changed only under the keys lock, together with the queue
// operation it mirrors: a push puts and then counts up; a worker takes and
// then counts down; a retry puts again and counts up. So a push checks one
// small file per item instead of reading the queue.
//
// Invariant: a count is never higher than the items that wait with its key.
// Every crash window errs low (a push dies between put and count; a worker
// dies after counting down but before acknowledging, and its item is handed
// out again), and a count that reads as garbage counts as 0. Too low costs at
// most one duplicate; too high would drop work forever.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ioError } from '../errors.js';
import type { DirectoryLock } from '../coordination/lock.js';
import { openTaskLock } from './layout.js';
import type { TaskStorageOptions } from './options.js';

/** A count file's name: 64 hex digits, so nothing a caller passes becomes a path. */
const KEY_FILE = /^[0-9a-f]{64}$/;

/**
 * Sections of one process on one keys directory run one after another, so
 * that at most one of them waits for the kernel lock (in the thread pool) at
 * a time, however many task queues the process has on the directory.
 */
const turns = new Map<string, Promise<unknown>>();

/** Whether `key` is a work key (so that it can name a count file). */
export function isWorkKey(key: unknown): key is string {
  return typeof key === 'string' && KEY_FILE.test(key);
}

/** The key of work given its serialized bytes. */
export function keyOfBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The key of work given the string a `key` option made of it (kept apart from byte keys). */
export function keyOfString(text: string): string {
  return createHash('sha256').update('key\0').update(text, 'utf8').digest('hex');
}

export class WaitingKeys {
  readonly dir: string;
  #lock: DirectoryLock;

  private constructor(dir: string, lock: DirectoryLock) {
    this.dir = dir;
    this.#lock = lock;
  }

  static open(dir: string, storage: TaskStorageOptions): WaitingKeys {
    return new WaitingKeys(path.resolve(dir), openTaskLock(dir, storage));
  }

  /** Runs `fn` with the keys lock held (no other process or task queue counts meanwhile). */
  locked<R>(fn: () => R | Promise<R>): Promise<R> {
    const previous = turns.get(this.dir) ?? Promise.resolve();
    const turn = previous.then(async () => {
      if (!this.#lock.tryAcquire()) await this.#lock.acquire();
      try {
        return await fn();
      } finally {
        this.#lock.release();
      }
    });
    const settled = turn.then(
      () => undefined,
      () => undefined,
    );
    turns.set(this.dir, settled);
    void settled.then(() => {
      if (turns.get(this.dir) === settled) turns.delete(this.dir);
    });
    return turn;
  }

  /** How many items with `key` wait (under the lock). */
  count(key: string): number {
    let text: string;
    try {
      text = fs.readFileSync(this.#file(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw ioError(this.dir, 'reading a waiting-work count', error, this.#file(key));
    }
    const count = Number(text);
    // Empty or damaged (a write cut short): low is the safe side.
    return Number.isSafeInteger(count) && count > 0 ? count : 0;
  }

  /** Counts `by` more waiting items with `key` (under the lock). */
  add(key: string, by = 1): void {
    this.#set(key, this.count(key) + by);
  }

  /** Counts one waiting item with `key` fewer (under the lock). */
  remove(key: string): void {
    this.#set(key, this.count(key) - 1);
  }

  close(): void {
    this.#lock.close();
  }

  #set(key: string, count: number): void {
    const file = this.#file(key);
    try {
      // In place: a write cut short leaves an empty file, which reads as 0.
      if (count > 0) fs.writeFileSync(file, String(count));
      else fs.rmSync(file, { force: true });
    } catch (error) {
      throw ioError(this.dir, 'writing a waiting-work count', error, file);
    }
  }

  #file(key: string): string {
    if (!isWorkKey(key)) throw new TypeError(`not a work key: ${JSON.stringify(key)}`);
    return path.join(this.dir, key);
  }
}
