// The per-call options of Queue's methods and the checks of every argument a
// caller passes: a bad one is ERR_INVALID_ARG naming the queue directory, and
// nothing has happened yet.

import { QueueError, describeArgument } from './errors.js';

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
  /** Resolve with an `Entry` (id, put time, deliveries) instead of the item alone. @default false */
  raw?: boolean;
}

export type GetManyOptions = Omit<GetOptions, 'block'>;

export interface NackOptions {
  /** Hand the item out again only once this many ms have passed. @default 0 */
  delay?: number;
}

export interface PeekOptions {
  /** Give an `Entry` (id, put time, deliveries so far) instead of the item alone. @default false */
  raw?: boolean;
}

export function invalidArg(dir: string, message: string): QueueError {
  return new QueueError('ERR_INVALID_ARG', dir, message);
}

/** Per-call options must be an object: `get(null)` is ERR_INVALID_ARG, not a TypeError. */
export function assertOptionsObject(dir: string, options: unknown, call: string): void {
  if (typeof options !== 'object' || options === null)
    throw invalidArg(dir, `${call} options must be an object, got ${describeArgument(options)}`);
}

/** The `performance.now()` time a wait of `timeout` ms ends; undefined: no limit. */
export function deadlineOf(dir: string, timeout: number | undefined): number | undefined {
  if (timeout === undefined) return undefined;
  if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) {
    throw invalidArg(dir, `option timeout must be a number of milliseconds >= 0, got ${describeArgument(timeout)}`);
  }
  return performance.now() + timeout;
}

function blockOption(dir: string, block: unknown): boolean {
  if (block === undefined) return true;
  if (typeof block !== 'boolean') throw invalidArg(dir, `option block must be true or false, got ${describeArgument(block)}`);
  return block;
}

export function putArgs(dir: string, options: PutOptions): { block: boolean; deadline: number | undefined } {
  assertOptionsObject(dir, options, 'put');
  return { block: blockOption(dir, options.block), deadline: deadlineOf(dir, options.timeout) };
}

export function getArgs(
  dir: string,
  options: GetOptions,
): { block: boolean; deadline: number | undefined; signal: AbortSignal | undefined; raw: boolean } {
  const raw = rawOption(dir, options, 'get');
  const block = blockOption(dir, options.block);
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArg(dir, 'option signal must be an AbortSignal');
  signal?.throwIfAborted();
  return { block, deadline: deadlineOf(dir, options.timeout), signal, raw };
}

/** When nack's items may be handed out again (ms since the epoch; 0: at once). */
export function dueOf(dir: string, options: NackOptions): number {
  assertOptionsObject(dir, options, 'nack');
  const { delay } = options;
  if (delay === undefined || delay === 0) return 0;
  if (typeof delay !== 'number' || !(delay >= 0) || !Number.isFinite(delay)) {
    throw invalidArg(dir, `option delay must be a number of milliseconds >= 0, got ${describeArgument(delay)}`);
  }
  return Date.now() + delay;
}

/** The `raw` option of a get or a peek (its options object checked first). */
export function rawOption(dir: string, options: PeekOptions, call: string): boolean {
  assertOptionsObject(dir, options, call);
  const { raw } = options;
  if (raw !== undefined && typeof raw !== 'boolean')
    throw invalidArg(dir, `option raw must be true or false, got ${describeArgument(raw)}`);
  return raw === true;
}

/** putMany's items as an array (an array as it is, any other iterable copied). */
export function itemList<T>(dir: string, items: Iterable<T>): readonly T[] {
  if (Array.isArray(items)) return items as readonly T[];
  if (items === null || typeof items?.[Symbol.iterator] !== 'function') {
    throw invalidArg(dir, 'putMany takes an array or another iterable of items');
  }
  return [...items];
}

/** A count argument (getMany's max, taskDone's count): a whole number >= 1. */
export function assertCount(dir: string, value: unknown, call: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 1)
    throw invalidArg(dir, `${call} takes a whole number >= 1, got ${describeArgument(value)}`);
}
