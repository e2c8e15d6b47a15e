// The worker's loop: hand each waiting item to the handler, one at a time,
// while holding the worker lock; retry a failed item up to `retries` times
// (at the back of the queue), then move it to the dead-letter queue; leave
// once the queue is empty. Runs in the detached worker (worker.ts) or, with
// `inProcess`, in the pushing process; either way the caller has taken the
// worker lock and hands it over, and the loop returns with it released.
//
// Leaving is where a push could be stranded: a push that puts just as the
// worker finds the queue empty sees the worker lock still held and starts no
// worker. So the worker lets the lock go first and only then looks at the
// queue once more (under the queue's lock, which orders it after any put that
// came before): a push that put before that look is seen by it, and a push
// that put after it tries the worker lock after the release, finds it free
// and starts a worker. Work seen in the last look makes this worker take the
// lock back, or leave it to whichever worker a push started meanwhile.
//
// An item is acknowledged only after its handler settled and its outcome
// (done, back in the queue, or a dead letter) is stored: a worker that dies
// before that has its item handed out again by the queue (at least once).

import { Queue } from '../queue.js';
import { QueueError } from '../errors.js';
import { AttemptLog, isItemId, type AttemptRecord } from './attempts.js';
import { isWorkKey, type WaitingKeys } from './keys.js';
import type { WorkerLock } from './worker-lock.js';
import { removeWorkerPid, writeWorkerPid, type TaskPaths } from './layout.js';
import { describeError, type TaskLog } from './log.js';
import type { TaskHandler, WorkerConfig } from './options.js';

/** What the queue in `queue/` holds: the work and what the task queue needs to know about it. */
export interface TaskEnvelope<W = unknown> {
  /** A random UUID, made by the push; the same on every attempt. */
  id: string;
  /** The work's key in the waiting-work index (keys.ts). */
  key: string;
  work: W;
}

/** What the dead-letter queue in `dead/` holds. */
export interface DeadLetter<W = unknown> {
  /** The item's id ('' for an item that was not a task queue item at all). */
  id: string;
  work: W;
  /** Why the last attempt failed: the handler's error message, or that its worker died. */
  error: string;
  /** Why each attempt failed, oldest first. */
  errors: string[];
  /** Attempts made (started). */
  attempts: number;
  /** When the item was moved here (ISO 8601). */
  failedAt: string;
}

/** What a TaskRunner works with: the directories, the queues, the locks and the handler. */
export interface TaskRunnerInputs<W> {
  paths: TaskPaths;
  config: WorkerConfig;
  /** The pending queue; the runner takes from it but does not close it. */
  queue: Queue<TaskEnvelope<W>>;
  keys: WaitingKeys;
  /** Held on entry; the runner releases it (not closes) before it returns. */
  workerLock: Pick<WorkerLock, 'tryAcquire' | 'release'>;
  log: TaskLog;
  handler: TaskHandler<W>;
  /** Asked between items: true makes the loop leave, leaving the rest for the next worker. */
  stopping?: () => boolean;
}

export function isEnvelope(value: unknown): value is TaskEnvelope {
  if (typeof value !== 'object' || value === null) return false;
  const envelope = value as Partial<TaskEnvelope>;
  return isItemId(envelope.id) && isWorkKey(envelope.key) && 'work' in envelope;
}

/** Imports the handler module and picks its export. */
export async function loadHandler<W>(config: WorkerConfig): Promise<TaskHandler<W>> {
  const module = (await import(config.handler)) as Record<string, unknown>;
  const handler = module[config.export];
  if (typeof handler !== 'function') {
    throw new QueueError(
      'ERR_INVALID_ARG',
      config.dir,
      `the handler module ${config.handler} has no function export '${config.export}' (it is ${typeof handler})`,
    );
  }
  return handler as TaskHandler<W>;
}

export class TaskRunner<W> {
  #parts: TaskRunnerInputs<W>;
  #attempts: AttemptLog;
  #dead: Queue<DeadLetter<unknown>> | undefined;
  #holding = true;

  constructor(parts: TaskRunnerInputs<W>) {
    this.#parts = parts;
    this.#attempts = new AttemptLog(parts.paths.attempts);
  }

  /** Works until the queue is empty (or `stopping`); returns with the worker lock released. */
  async run(): Promise<void> {
    const { queue, workerLock, log, paths } = this.#parts;
    writeWorkerPid(paths);
    try {
      for (;;) {
        if (this.#parts.stopping?.() === true) {
          log.info('worker stops (the task queue is closing); the rest waits for the next push');
          return;
        }
        const envelope = await this.#take();
        if (envelope !== undefined) {
          await this.#attempt(envelope);
          continue;
        }
        this.#leave();
        if ((await queue.peek()) === undefined) {
          log.info('queue empty; worker leaves');
          return;
        }
        if (!workerLock.tryAcquire()) {
          log.info('work arrived as this worker left; another worker has taken over');
          return;
        }
        this.#holding = true;
        writeWorkerPid(paths);
        log.info('work arrived as this worker left; it goes on');
      }
    } finally {
      this.#leave();
      await this.#dead?.close();
    }
  }

  /** Lets the worker lock go (worker.pid first, so it never names a worker that left). */
  #leave(): void {
    if (!this.#holding) return;
    this.#holding = false;
    try {
      removeWorkerPid(this.#parts.paths);
    } finally {
      this.#parts.workerLock.release();
    }
  }

  /** Takes the next item and counts it out of the waiting-work index, in one keys section. */
  #take(): Promise<TaskEnvelope<W> | undefined> {
    const { keys, queue } = this.#parts;
    return keys.locked(async () => {
      let envelope: TaskEnvelope<W>;
      try {
        envelope = await queue.getNowait();
      } catch (error) {
        if (error instanceof QueueError && error.code === 'ERR_EMPTY') return undefined;
        throw error;
      }
      if (isEnvelope(envelope)) keys.remove(envelope.key);
      return envelope;
    });
  }

  async #attempt(envelope: TaskEnvelope<W>): Promise<void> {
    const { config, handler, log, queue } = this.#parts;
    if (!isEnvelope(envelope)) {
      log.error('an item in the queue is not a task (written by something other than a task queue?); moved to the dead-letter queue');
      const error = 'not a task queue item';
      await this.#moveToDeadLetters({ id: '', work: envelope, error, errors: [error], attempts: 0, failedAt: new Date().toISOString() });
      return;
    }
    const { id } = envelope;
    const record = this.#attempts.read(id);
    // Attempts that started but left no error: their worker died during the handler.
    for (let n = record.errors.length + 1; n <= record.started; n++) record.errors.push(`the worker process died during attempt ${n}`);
    const allowed = config.retries + 1;
    if (record.started >= allowed) {
      log.error(
        `item ${id}: its worker died during its last allowed attempt (${record.started} of ${allowed}); moved to the dead-letter queue`,
      );
      await this.#moveToDeadLetters(this.#deadLetter(envelope, record));
      return;
    }
    const attempt = record.started + 1;
    this.#attempts.write(id, { started: attempt, errors: record.errors });
    const began = performance.now();
    try {
      await handler(envelope.work, { id, attempt, retries: config.retries, dir: config.dir });
    } catch (error) {
      const failed: AttemptRecord = { started: attempt, errors: [...record.errors, describeError(error)] };
      this.#attempts.write(id, failed);
      if (attempt < allowed) {
        log.warn(`item ${id}: attempt ${attempt} of ${allowed} failed: ${describeError(error)}; it goes back in the queue`);
        await this.#retry(envelope);
      } else {
        log.error(`item ${id}: attempt ${attempt} of ${allowed} failed: ${describeError(error)}; moved to the dead-letter queue`);
        await this.#moveToDeadLetters(this.#deadLetter(envelope, failed));
      }
      return;
    }
    await queue.taskDone();
    this.#attempts.remove(id);
    log.info(`item ${id} done (attempt ${attempt}, ${Math.round(performance.now() - began)} ms)`);
  }

  /** Puts the item at the back of the queue (counted as waiting again), then acknowledges the copy handed out. */
  async #retry(envelope: TaskEnvelope<W>): Promise<void> {
    const { keys, queue } = this.#parts;
    await keys.locked(async () => {
      await queue.put(envelope);
      keys.add(envelope.key);
    });
    await queue.taskDone();
  }

  /** Stores a dead letter, then acknowledges the item (a death in between makes a second dead letter, never none). */
  async #moveToDeadLetters(letter: DeadLetter<unknown>): Promise<void> {
    const { paths, config, queue } = this.#parts;
    this.#dead ??= await Queue.open(paths.dead, config.queue);
    await this.#dead.put(letter);
    await queue.taskDone();
    if (letter.id !== '') this.#attempts.remove(letter.id);
  }

  #deadLetter(envelope: TaskEnvelope<W>, record: AttemptRecord): DeadLetter<W> {
    return {
      id: envelope.id,
      work: envelope.work,
      error: record.errors.at(-1) ?? 'unknown',
      errors: record.errors,
      attempts: record.started,
      failedAt: new Date().toISOString(),
    };
  }
}
