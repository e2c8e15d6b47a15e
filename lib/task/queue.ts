// taskQueue: push work into a directory and have it done by a handler in a
// detached worker process that runs while there is work and then exits. A
// layer above Queue: the work waits in a perq queue in `<dir>/queue/`.
//
// A push (1) puts its work, with the waiting-work index updated in the same
// keys section (keys.ts), then (2) tries the worker lock: held means a
// worker runs and will see the work (runner.ts says why even one that is
// leaving will); free means none does, and the push starts one, handing it
// the lock it just took (worker-lock.ts). The order matters: putting first is
// what lets a leaving worker's last look find the work.

import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QueueError, ioError } from '../errors.js';
import { Queue } from '../queue.js';
import { resolveSerializer, type Serializer } from '../serializers.js';
import { WaitingKeys, keyOfBytes, keyOfString } from './keys.js';
import { readWorkerPid, taskPaths, type TaskPaths } from './layout.js';
import { WorkerLock } from './worker-lock.js';
import { TaskLog, describeError } from './log.js';
import { resolveTaskOptions, type ResolvedTaskOptions, type TaskHandler, type TaskQueueOptions } from './options.js';
import { TaskRunner, loadHandler, type DeadLetter, type TaskEnvelope } from './runner.js';

export type { TaskContext, TaskHandler, TaskLogLevel, TaskQueueOptions, TaskStorageOptions } from './options.js';
export type { DeadLetter } from './runner.js';

/** The worker lock's descriptor in the worker: its place in the stdio array below. */
const LOCK_FD_IN_WORKER = 4;

/** The worker entry, next to this file (worker.js when built, .ts when run from source by a loader). */
const WORKER_ENTRY = fileURLToPath(new URL(`./worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface PushResult {
  /** Work appended to the queue. */
  queued: number;
  /** Work left out by `unique` because equal work was waiting already. */
  skipped: number;
  /**
   * `'started'`: this push started a worker process (`pid`); `'running'`: a
   * worker held the worker lock and will do the work; `'in-process'`: this
   * process started its own loop (`inProcess`).
   */
  worker: 'started' | 'running' | 'in-process';
  /** The pid of the worker process this push started. */
  pid?: number;
}

export class TaskQueue<W = unknown> {
  /** The task queue directory, as an absolute path. */
  readonly dir: string;
  #paths: TaskPaths;
  #options: ResolvedTaskOptions<W>;
  #queue: Queue<TaskEnvelope<W>>;
  #keys: WaitingKeys;
  #serializer: Serializer;
  #log: TaskLog;
  /** In-process loops still running (usually none or one). */
  #loops = new Set<Promise<void>>();
  /** Pushes under way, which close lets finish. */
  #pushes = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  /** Use `taskQueue(dir, handler, options)`. */
  constructor(dir: string, handler: unknown, options?: TaskQueueOptions<W>) {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new QueueError('ERR_INVALID_ARG', String(dir), 'the task queue directory must be a non-empty string');
    }
    this.dir = path.resolve(dir);
    this.#options = resolveTaskOptions(this.dir, handler, options);
    this.#paths = taskPaths(this.dir);
    this.#log = new TaskLog(this.#paths.logFile, this.#options.config.logLevel);
    this.#queue = Queue.openSync<TaskEnvelope<W>>(this.#paths.queue, this.#options.config.queue);
    try {
      // Keys are made with the serializer the queue really uses (its info file may name another than the option).
      this.#serializer = resolveSerializer(
        this.#queue.serializerName,
        (why) => new QueueError('ERR_FORMAT', this.dir, `the queue's serializer ${why}`),
      );
      this.#keys = WaitingKeys.open(this.#paths.keys, this.#options.config.queue);
    } catch (error) {
      void this.#queue.close();
      throw error;
    }
  }

  /**
   * The pid in `worker.pid`: the worker holding the worker lock, undefined
   * when none works. A worker killed by SIGKILL leaves its pid behind until
   * the next one starts, so check with `process.kill(pid, 0)` before relying
   * on it. (Probing the lock itself would be wrong: while a probe held it, a
   * push could take the probe for a worker and start none.)
   */
  get workerPid(): number | undefined {
    return readWorkerPid(this.#paths);
  }

  /** Items waiting for the handler (not yet handed out). */
  get size(): number {
    return this.#queue.size;
  }

  /** The directory of the dead-letter queue (a perq queue of `DeadLetter` items). */
  get deadLetterDir(): string {
    return this.#paths.dead;
  }

  /** The log file (written unless logLevel is 'silent'). */
  get logFile(): string {
    return this.#paths.logFile;
  }

  /** Opens the dead-letter queue; the caller closes it. */
  openDeadLetters(): Promise<Queue<DeadLetter<W>>> {
    return Queue.open<DeadLetter<W>>(this.#paths.dead, this.#options.config.queue);
  }

  /**
   * Appends `work` (leaving out, with `unique`, work equal to work already
   * waiting) and makes sure a worker runs: starts a detached worker process
   * unless one holds the worker lock. Resolves once the work is stored (per the
   * queue's `fsync`) and the worker started; the worker goes on after this
   * process exits. `push()` with no work only makes sure a worker runs, e.g.
   * to finish work whose worker was killed.
   */
  push(...work: W[]): Promise<PushResult> {
    if (this.#closing !== undefined) return Promise.reject(this.#closedError());
    const pushing = this.#push(work);
    const settled = pushing.then(
      () => undefined,
      () => undefined,
    );
    this.#pushes.add(settled);
    void settled.then(() => this.#pushes.delete(settled));
    return pushing;
  }

  async #push(work: W[]): Promise<PushResult> {
    // Encoding for the keys first: work that cannot be stored fails before anything is locked.
    const envelopes = work.map((item) => ({ id: randomUUID(), key: this.#keyOf(item), work: item }));
    let queued = 0;
    let skipped = 0;
    if (envelopes.length > 0) {
      await this.#keys.locked(async () => {
        const fresh: TaskEnvelope<W>[] = [];
        const counts = new Map<string, number>();
        for (const envelope of envelopes) {
          if (this.#options.unique && (counts.has(envelope.key) || this.#keys.count(envelope.key) > 0)) continue;
          fresh.push(envelope);
          counts.set(envelope.key, (counts.get(envelope.key) ?? 0) + 1);
        }
        if (fresh.length > 0) await this.#queue.putMany(fresh);
        // After the put: a count may lag its items, never lead them.
        for (const [key, count] of counts) this.#keys.add(key, count);
        queued = fresh.length;
        skipped = envelopes.length - fresh.length;
      });
    }
    return { queued, skipped, ...(await this.#ensureWorker()) };
  }

  /**
   * Closes this process's side: stops an in-process loop after its current
   * item (the rest waits for the next push) and closes the files. A detached
   * worker is not affected. Later pushes reject ERR_QUEUE_CLOSED.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutDown(): Promise<void> {
    await Promise.all(this.#pushes);
    while (this.#loops.size > 0) await Promise.all(this.#loops);
    try {
      await this.#queue.close();
    } finally {
      this.#keys.close();
    }
  }

  #keyOf(work: W): string {
    const keyFunction = this.#options.key;
    if (keyFunction !== undefined) {
      const text = keyFunction(work);
      if (typeof text !== 'string')
        throw new QueueError('ERR_INVALID_ARG', this.dir, `the key option must return a string, got ${typeof text}`);
      return keyOfString(text);
    }
    let bytes: Uint8Array;
    try {
      bytes = this.#serializer.encode(work);
    } catch (error) {
      throw new QueueError(
        'ERR_SERIALIZE',
        this.dir,
        `work cannot be serialized with '${this.#serializer.name}': ${describeError(error)}`,
        { cause: error },
      );
    }
    return keyOfBytes(bytes);
  }

  /** Starts a worker unless one holds the worker lock. */
  async #ensureWorker(): Promise<Pick<PushResult, 'worker' | 'pid'>> {
    const lock = WorkerLock.open(this.#paths);
    let free: boolean;
    try {
      free = lock.tryAcquire();
    } catch (error) {
      lock.close();
      throw error;
    }
    if (!free) {
      lock.close();
      return { worker: 'running' };
    }
    if (this.#options.inProcess) {
      this.#startLoop(lock);
      return { worker: 'in-process' };
    }
    let pid: number;
    try {
      pid = await this.#spawn(lock);
    } finally {
      // The worker shares the locked open file now: closing our side leaves it locked.
      lock.close();
    }
    this.#log.info(`started worker process ${pid}`);
    return { worker: 'started', pid };
  }

  /** Starts a detached worker process holding `lock` (which this process holds). */
  async #spawn(lock: WorkerLock): Promise<number> {
    const config = { ...this.#options.config, lockFd: LOCK_FD_IN_WORKER };
    const child = fork(WORKER_ENTRY, [JSON.stringify(config)], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'ipc', lock.fd],
      execArgv: this.#options.execArgv,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (error) {
      throw ioError(this.dir, 'starting a worker process', error);
    }
    // Nothing ties this process to the worker any more: it may exit at once.
    child.disconnect();
    child.unref();
    return child.pid as number;
  }

  /** Runs the worker loop in this process with `lock` (held); closes the lock when it ends. */
  #startLoop(lock: WorkerLock): void {
    const loop = (async () => {
      try {
        const handler = this.#options.handlerFunction ?? (await loadHandler<W>(this.#options.config));
        this.#log.info('worker loop started in this process');
        await new TaskRunner<W>({
          paths: this.#paths,
          config: this.#options.config,
          queue: this.#queue,
          keys: this.#keys,
          workerLock: lock,
          log: this.#log,
          handler,
          stopping: () => this.#closing !== undefined,
        }).run();
      } catch (error) {
        this.#log.error(`worker loop in this process failed: ${describeError(error)}; the work stays in the queue`);
      } finally {
        lock.close();
      }
    })();
    this.#loops.add(loop);
    void loop.then(() => this.#loops.delete(loop));
  }

  #closedError(): QueueError {
    return new QueueError('ERR_QUEUE_CLOSED', this.dir, 'the task queue is closed');
  }
}

/**
 * A task queue in `dir` whose work is done by `handler`: the path or file:
 * URL of a module whose default export (or the export named by `export`) is
 * `(work, context) => unknown`. It runs in a detached worker process, which a
 * function cannot cross into; pass a function only with `inProcess: true`.
 */
export function taskQueue<W = unknown>(dir: string, handler: string | URL | TaskHandler<W>, options?: TaskQueueOptions<W>): TaskQueue<W> {
  return new TaskQueue<W>(dir, handler, options);
}
