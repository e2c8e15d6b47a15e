// The detached worker process a push starts: `node task/worker.js <config>`,
// the config being options.ts's WorkerConfig as JSON. It holds the worker
// lock from the start (the push hands it over as descriptor `lockFd`; started
// without one, it takes the lock or exits at once, since another worker
// works), loads the handler module, works until the queue is empty and exits.
// It has no terminal: what it has to say goes to `<dir>/worker.log`.

import { Queue } from '../queue.js';
import { WaitingKeys } from './keys.js';
import { taskPaths } from './layout.js';
import { WorkerLock } from './worker-lock.js';
import { TaskLog, describeError } from './log.js';
import type { TaskHandler, WorkerConfig } from './options.js';
import { TaskRunner, loadHandler, type TaskEnvelope } from './runner.js';

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const paths = taskPaths(config.dir);
const log = new TaskLog(paths.logFile, config.logLevel ?? 'warn');

function crashed(error: unknown): never {
  log.error(`worker crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  // The kernel drops the worker lock with the process; an unacknowledged item is handed out again.
  process.exit(1);
}
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);

async function main(): Promise<void> {
  const workerLock = config.lockFd === undefined ? WorkerLock.open(paths) : WorkerLock.inherited(paths, config.lockFd);
  if (config.lockFd === undefined && !workerLock.tryAcquire()) {
    log.info('another worker holds the worker lock; this one exits');
    return;
  }
  log.info('worker started');
  let handler: TaskHandler;
  try {
    handler = await loadHandler(config);
  } catch (error) {
    log.error(`cannot load the handler: ${describeError(error)}; the work stays in the queue`);
    process.exitCode = 1;
    return;
  }
  const queue = await Queue.open<TaskEnvelope>(paths.queue, config.queue);
  const keys = WaitingKeys.open(paths.keys, config.queue);
  try {
    await new TaskRunner({ paths, config, queue, keys, workerLock, log, handler }).run();
  } finally {
    await queue.close();
    keys.close();
  }
}

main().then(
  // Timers or sockets the handler left open must not keep a worker with nothing to do alive.
  () => process.exit(),
  crashed,
);
