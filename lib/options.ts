// The options of `Queue.open`, documented and validated in this one place.
// Validation happens before anything touches the disk, so a bad option leaves
// the directory exactly as it was.

import type { LockingMode } from './coordination/lock.js';
import { QueueError, describeArgument } from './errors.js';
import { resolveSerializer, type SerializerOption } from './serializers.js';
import type { FsyncMode } from './store/durability.js';
import type { OnCorrupt, StoreOptions } from './store/options.js';

export type { FsyncMode, LockingMode, OnCorrupt };

/** Items per chunk file unless the caller says otherwise. */
export const DEFAULT_CHUNK_SIZE = 100;
/** A poll every 5 s keeps a shared directory cheap to watch. */
export const DEFAULT_POLL_INTERVAL = 5000;
/** 64 MiB: larger items belong in their own files, not in a queue record. */
export const DEFAULT_MAX_ITEM_BYTES = 64 * 1024 * 1024;
/** A 'lockfile' lock or lease untouched this long belongs to a dead process. */
export const DEFAULT_STALE_AFTER = 10_000;
/** proper-lockfile refuses stale times below 2 s (its mtime checks need the margin). */
export const MIN_STALE_AFTER = 2000;
/** A record's length field is 32 bits wide. */
export const MAX_ITEM_BYTES_LIMIT = 0xffff_ffff - 64;

export interface QueueOptions {
  /**
   * Items per chunk file. Fixed when the queue is created; reopening with a
   * different explicit value is an `ERR_FORMAT` error.
   * @default 100
   * @example { chunkSize: 1000 }
   */
  chunkSize?: number;
  /**
   * Most items the queue holds (not yet handed out); `put` waits while it is
   * reached. `0` or less is unbounded.
   * @default 0
   * @example { maxSize: 10_000 }
   */
  maxSize?: number;
  /**
   * How items become bytes: `'cbor'`, `'json'`, `'msgpack'`, `'raw'`
   * (Uint8Array in and out) or `{ name, encode, decode }`. Fixed when the
   * queue is created; reopening with another name is an `ERR_FORMAT` error.
   * @default 'cbor'
   * @example { serializer: 'json' }
   */
  serializer?: SerializerOption;
  /**
   * Persist the read cursor on every `get` instead of on `taskDone`.
   * @default false
   * @example { autosave: true }
   */
  autosave?: boolean;
  /**
   * `'never'`: a resolved call has reached the OS (survives a process crash).
   * `'always'`: also fsync'd (survives power loss; concurrent calls share one
   * fsync). A number N: fsync at most every N ms.
   * @default 'never'
   * @example { fsync: 'always' }
   */
  fsync?: FsyncMode;
  /**
   * Milliseconds between checks of the directory for items written by other
   * processes or hosts.
   * @default 5000
   * @example { pollInterval: 100 }
   */
  pollInterval?: number;
  /**
   * `'flock'` (local file systems) or `'lockfile'` (a directory on a network
   * file system).
   * @default 'flock'
   * @example { locking: 'lockfile' }
   */
  locking?: LockingMode;
  /**
   * Largest encoded item accepted; larger ones are refused with
   * `ERR_ITEM_TOO_LARGE`. Also bounds what a damaged length field can make
   * perq allocate.
   * @default 67108864 (64 MiB)
   * @example { maxItemBytes: 1024 * 1024 }
   */
  maxItemBytes?: number;
  /**
   * Under `locking: 'lockfile'`: after how many ms without a refresh a lock
   * directory or a consumer's lease counts as abandoned by a dead process or
   * host (the lock is taken over, the consumer's items are handed out again).
   * At least 2000. Every process on one directory should use the same value.
   * @default 10000
   * @example { staleAfter: 3000 }
   */
  staleAfter?: number;
  /**
   * Wake a waiting `get` (or `put`, `join`) through `fs.watch` on the
   * directory when another process of this host changes the queue: for local
   * processes with no parent/child channel between them. Polling goes on
   * beside it, and takes over where the platform cannot watch. Changes made on
   * another host of a network file system are not seen this way.
   * @default false
   * @example { watch: true }
   */
  watch?: boolean;
  /**
   * What a queue does when it meets a damaged record (a flipped bit, a
   * zeroed range, a record the serializer cannot decode, a missing chunk):
   * `'error'` rejects with `ERR_CORRUPT` naming file and offset, at every
   * call that reaches it, until `Queue.repair(dir)` moves the damage away;
   * `'quarantine'` does what repair does by itself, moving the damaged bytes
   * into `quarantine/` and going on, with a process warning `PERQ_QUARANTINED`.
   * @default 'error'
   * @example { onCorrupt: 'quarantine' }
   */
  onCorrupt?: OnCorrupt;
}

/** Every option with its default filled in: the store's, and the ones the queue itself acts on. */
export interface ResolvedOptions extends StoreOptions {
  maxSize: number;
  autosave: boolean;
  pollInterval: number;
  watch: boolean;
}

const KNOWN_OPTIONS = new Set([
  'chunkSize',
  'maxSize',
  'serializer',
  'autosave',
  'fsync',
  'pollInterval',
  'locking',
  'maxItemBytes',
  'staleAfter',
  'watch',
  'onCorrupt',
]);

export function resolveOptions(dir: string, options: QueueOptions | undefined): ResolvedOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new QueueError('ERR_INVALID_OPTION', dir, `options must be an object, got ${describeArgument(options)}`);
  }
  const o = options ?? {};
  for (const key of Object.keys(o)) {
    if (!KNOWN_OPTIONS.has(key)) throw invalidOption(dir, key, (o as Record<string, unknown>)[key], 'is not a perq option');
  }
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw invalidOption(dir, 'chunkSize', chunkSize, 'must be a whole number >= 1');
  const maxSize = o.maxSize ?? 0;
  if (typeof maxSize !== 'number' || Number.isNaN(maxSize)) throw invalidOption(dir, 'maxSize', maxSize, 'must be a number');
  const autosave = o.autosave ?? false;
  if (typeof autosave !== 'boolean') throw invalidOption(dir, 'autosave', autosave, 'must be true or false');
  const fsync = o.fsync ?? 'never';
  if (fsync !== 'never' && fsync !== 'always' && !(typeof fsync === 'number' && Number.isFinite(fsync) && fsync > 0)) {
    throw invalidOption(dir, 'fsync', fsync, "must be 'never', 'always' or a number of milliseconds > 0");
  }
  const pollInterval = o.pollInterval ?? DEFAULT_POLL_INTERVAL;
  if (typeof pollInterval !== 'number' || !Number.isFinite(pollInterval) || pollInterval <= 0) {
    throw invalidOption(dir, 'pollInterval', pollInterval, 'must be a number of milliseconds > 0');
  }
  const locking = o.locking ?? 'flock';
  if (locking !== 'flock' && locking !== 'lockfile') throw invalidOption(dir, 'locking', locking, "must be 'flock' or 'lockfile'");
  const maxItemBytes = o.maxItemBytes ?? DEFAULT_MAX_ITEM_BYTES;
  if (!Number.isSafeInteger(maxItemBytes) || maxItemBytes < 1 || maxItemBytes > MAX_ITEM_BYTES_LIMIT) {
    throw invalidOption(dir, 'maxItemBytes', maxItemBytes, `must be a whole number from 1 to ${MAX_ITEM_BYTES_LIMIT}`);
  }
  const staleAfter = o.staleAfter ?? DEFAULT_STALE_AFTER;
  if (typeof staleAfter !== 'number' || !Number.isFinite(staleAfter) || staleAfter < MIN_STALE_AFTER) {
    throw invalidOption(dir, 'staleAfter', staleAfter, `must be a number of milliseconds >= ${MIN_STALE_AFTER}`);
  }
  const watch = o.watch ?? false;
  if (typeof watch !== 'boolean') throw invalidOption(dir, 'watch', watch, 'must be true or false');
  const onCorrupt = o.onCorrupt ?? 'error';
  if (onCorrupt !== 'error' && onCorrupt !== 'quarantine')
    throw invalidOption(dir, 'onCorrupt', onCorrupt, "must be 'error' or 'quarantine'");
  const serializer = resolveSerializer(o.serializer ?? 'cbor', (why) => invalidOption(dir, 'serializer', o.serializer, why));
  return {
    chunkSize,
    chunkSizeExplicit: o.chunkSize != null,
    maxSize: maxSize > 0 ? maxSize : 0,
    serializer,
    serializerExplicit: o.serializer != null,
    autosave,
    fsync,
    pollInterval,
    locking,
    maxItemBytes,
    staleAfter,
    watch,
    onCorrupt,
  };
}

/** ERR_INVALID_OPTION for option `name`, saying why `value` is refused. */
export function invalidOption(dir: string, name: string, value: unknown, why: string): QueueError {
  return new QueueError('ERR_INVALID_OPTION', dir, `option ${name} ${why}, got ${describeArgument(value)}`);
}
