// The options of `taskQueue`, documented and validated in this one place, and
// the plain-data config a pusher hands to the detached worker it starts (the
// worker re-creates everything else from it, so it must survive JSON).

import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { QueueError } from '../errors.js';
import { invalidOption, resolveOptions, type QueueOptions } from '../options.js';

/** A failed handler gets this many more attempts unless the caller says otherwise. */
export const DEFAULT_RETRIES = 3;
/** Retries and dead letters are logged; every item done is not (the log would grow with the work). */
export const DEFAULT_LOG_LEVEL: TaskLogLevel = 'warn';
/** The export of the handler module used unless `export` names another. */
export const DEFAULT_EXPORT = 'default';

export type TaskLogLevel = 'error' | 'warn' | 'info' | 'silent';

/** What a handler learns about the item besides the work itself. */
export interface TaskContext {
  /** The item's id, the same on every attempt. */
  id: string;
  /** 1 on the first attempt, up to `retries + 1`. */
  attempt: number;
  /** The `retries` option the worker runs with. */
  retries: number;
  /** The task queue directory (absolute). */
  dir: string;
}

export type TaskHandler<W = unknown> = (work: W, context: TaskContext) => unknown;

/** Serializers a worker process can re-create by name; a custom one is code and cannot cross. */
export type TaskSerializerName = 'cbor' | 'json' | 'msgpack';

/**
 * The options of the underlying perq queues (`queue/` and `dead/`). `maxSize`
 * and `autosave` are not among them: a full queue would make a push wait while
 * it holds the index lock the worker needs to make room, and the worker's
 * at-least-once hand-out rests on acknowledging with `taskDone`.
 */
export interface TaskStorageOptions extends Pick<QueueOptions, 'chunkSize' | 'fsync' | 'locking' | 'maxItemBytes' | 'staleAfter'> {
  /**
   * How work is stored: a serializer the worker can load by name.
   * @default 'cbor'
   * @example { serializer: 'json' }
   */
  serializer?: TaskSerializerName;
}

export interface TaskQueueOptions<W = unknown> {
  /**
   * Leave out work equal to work already waiting in the queue (not yet handed
   * to the handler). Equal means the same `key`: by default the SHA-256 of the
   * work's bytes under the queue's serializer, so `{ a: 1, b: 2 }` and
   * `{ b: 2, a: 1 }` differ under 'cbor' and 'json' (key order is kept);
   * pass `key` to decide equality yourself.
   * @default false
   * @example { unique: true }
   */
  unique?: boolean;
  /**
   * Turns work into its identity for `unique` (runs in the pushing process).
   * Only the SHA-256 of the string is stored.
   * @default SHA-256 of the serialized work
   * @example { unique: true, key: (job) => job.url }
   */
  key?: (work: W) => string;
  /**
   * How many times an item whose handler failed (threw, rejected, or its
   * worker died during it) is handed out again before it moves to the
   * dead-letter queue in `<dir>/dead/`. Each item gets `retries + 1` attempts.
   * @default 3
   * @example { retries: 0 }
   */
  retries?: number;
  /**
   * What goes to `<dir>/worker.log`: `'error'` (dead letters, a handler that
   * cannot be loaded, a worker that crashed), `'warn'` (also failed attempts
   * that will be retried), `'info'` (also workers starting and leaving, and
   * every item done), `'silent'` (no log file).
   * @default 'warn'
   * @example { logLevel: 'info' }
   */
  logLevel?: TaskLogLevel;
  /**
   * The export of the handler module to call.
   * @default 'default'
   * @example { export: 'resizeImage' }
   */
  export?: string;
  /**
   * Run the handler in this process instead of a detached worker: the only
   * way to use a handler given as a function. The loop runs while this
   * process lives; work left when it exits waits for the next push.
   * @default false
   * @example { inProcess: true }
   */
  inProcess?: boolean;
  /**
   * Node.js options for the worker process.
   * @default this process's `execArgv` without `--inspect*`, `--debug*`, `--test*` and `--watch*`
   * @example { execArgv: ['--import', 'tsx'] }
   */
  execArgv?: string[];
  /**
   * Options of the underlying perq queues.
   * @default {}
   * @example { queue: { fsync: 'always' } }
   */
  queue?: TaskStorageOptions;
}

/** Everything a worker needs, as plain data: passed on its command line. */
export interface WorkerConfig {
  dir: string;
  /** The handler module as a file: URL. */
  handler: string;
  export: string;
  retries: number;
  logLevel: TaskLogLevel;
  queue: TaskStorageOptions;
  /** The descriptor through which the starting push handed over the worker lock (see worker-lock.ts). */
  lockFd?: number;
}

export interface ResolvedTaskOptions<W> {
  unique: boolean;
  key: ((work: W) => string) | undefined;
  inProcess: boolean;
  execArgv: string[];
  /** The handler when given as a function (inProcess only). */
  handlerFunction: TaskHandler<W> | undefined;
  config: WorkerConfig;
}

const KNOWN_OPTIONS = new Set(['unique', 'key', 'retries', 'logLevel', 'export', 'inProcess', 'execArgv', 'queue']);
const STORAGE_OPTIONS = new Set(['chunkSize', 'fsync', 'locking', 'maxItemBytes', 'staleAfter', 'serializer']);
const LOG_LEVELS: readonly TaskLogLevel[] = ['error', 'warn', 'info', 'silent'];
const SERIALIZERS: readonly TaskSerializerName[] = ['cbor', 'json', 'msgpack'];
/** Flags that must not reach a worker: a second debugger on the same port, a test runner, a watch mode that never exits. */
const INHERITED_FLAGS_TO_DROP = /^--(inspect|debug|test|watch)/;

export function resolveTaskOptions<W>(dir: string, handler: unknown, options: TaskQueueOptions<W> | undefined): ResolvedTaskOptions<W> {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new QueueError('ERR_INVALID_OPTION', dir, 'task queue options must be an object');
  }
  const o = options ?? {};
  for (const key of Object.keys(o)) {
    if (!KNOWN_OPTIONS.has(key)) throw invalidOption(dir, key, (o as Record<string, unknown>)[key], 'is not a task queue option');
  }
  const unique = o.unique ?? false;
  if (typeof unique !== 'boolean') throw invalidOption(dir, 'unique', unique, 'must be true or false');
  if (o.key !== undefined && typeof o.key !== 'function') throw invalidOption(dir, 'key', o.key, 'must be a function (work) => string');
  const retries = o.retries ?? DEFAULT_RETRIES;
  if (!Number.isSafeInteger(retries) || retries < 0) throw invalidOption(dir, 'retries', retries, 'must be a whole number >= 0');
  const logLevel = o.logLevel ?? DEFAULT_LOG_LEVEL;
  if (!LOG_LEVELS.includes(logLevel))
    throw invalidOption(dir, 'logLevel', logLevel, `must be one of ${LOG_LEVELS.map((l) => `'${l}'`).join(', ')}`);
  const exportName = o.export ?? DEFAULT_EXPORT;
  if (typeof exportName !== 'string' || exportName.length === 0)
    throw invalidOption(dir, 'export', exportName, 'must be a non-empty string');
  const inProcess = o.inProcess ?? false;
  if (typeof inProcess !== 'boolean') throw invalidOption(dir, 'inProcess', inProcess, 'must be true or false');
  const execArgv = o.execArgv ?? process.execArgv.filter((flag) => !INHERITED_FLAGS_TO_DROP.test(flag));
  if (!Array.isArray(execArgv) || !execArgv.every((flag) => typeof flag === 'string')) {
    throw invalidOption(dir, 'execArgv', execArgv, 'must be an array of strings');
  }
  const queue = resolveStorage(dir, o.queue);

  let handlerUrl = '';
  let handlerFunction: TaskHandler<W> | undefined;
  if (typeof handler === 'function') {
    if (!inProcess) {
      throw new QueueError(
        'ERR_INVALID_ARG',
        dir,
        'a handler function cannot cross into a worker process; pass the path (or file: URL) of a module that exports it, or set inProcess: true to run it in this process',
      );
    }
    handlerFunction = handler as TaskHandler<W>;
  } else {
    handlerUrl = handlerModuleUrl(dir, handler);
  }
  return {
    unique,
    key: o.key,
    inProcess,
    execArgv: [...execArgv],
    handlerFunction,
    config: { dir, handler: handlerUrl, export: exportName, retries, logLevel, queue },
  };
}

/** The handler module as an absolute file: URL, checked to exist (so a typo fails the push, not a detached worker). */
function handlerModuleUrl(dir: string, handler: unknown): string {
  let file: string;
  if (handler instanceof URL || (typeof handler === 'string' && handler.startsWith('file:'))) {
    const url = handler instanceof URL ? handler : new URL(handler);
    if (url.protocol !== 'file:') throw new QueueError('ERR_INVALID_ARG', dir, `the handler module must be a file: URL, got ${url.href}`);
    file = fileURLToPath(url);
  } else if (typeof handler === 'string' && handler.length > 0) {
    file = path.resolve(handler);
  } else {
    throw new QueueError(
      'ERR_INVALID_ARG',
      dir,
      'the handler must be the path or file: URL of a module (or a function, with inProcess: true)',
    );
  }
  if (!fs.existsSync(file)) throw new QueueError('ERR_INVALID_ARG', dir, `the handler module ${file} does not exist`);
  return pathToFileURL(file).href;
}

function resolveStorage(dir: string, storage: TaskStorageOptions | undefined): TaskStorageOptions {
  if (storage === undefined) return {};
  if (typeof storage !== 'object' || storage === null) throw invalidOption(dir, 'queue', storage, 'must be an object');
  for (const key of Object.keys(storage)) {
    if (!STORAGE_OPTIONS.has(key)) {
      throw invalidOption(
        dir,
        `queue.${key}`,
        (storage as Record<string, unknown>)[key],
        `is not available to a task queue (one of ${[...STORAGE_OPTIONS].join(', ')})`,
      );
    }
  }
  if (storage.serializer !== undefined && !SERIALIZERS.includes(storage.serializer)) {
    throw invalidOption(
      dir,
      'queue.serializer',
      storage.serializer,
      `must be one of ${SERIALIZERS.map((s) => `'${s}'`).join(', ')} (a worker process re-creates it by name)`,
    );
  }
  // The queue's own checks, now, rather than in a detached worker that can only log them.
  resolveOptions(dir, storage);
  return { ...storage };
}
