// The log of a task queue: `<dir>/worker.log`, one line per event, because a
// detached worker has no terminal. Pushers and workers of one directory append
// to the same file; each line is one O_APPEND write, so lines from different
// processes do not interleave. Logging never fails the work: a line that
// cannot be written is dropped.

import fs from 'node:fs';
import type { TaskLogLevel } from './options.js';

/** How severe each level is; a logger writes lines at or above its level. */
const SEVERITY: Record<TaskLogLevel, number> = { info: 0, warn: 1, error: 2, silent: 3 };

export class TaskLog {
  #file: string;
  #threshold: number;

  constructor(file: string, level: TaskLogLevel) {
    this.#file = file;
    this.#threshold = SEVERITY[level];
  }

  info(message: string): void {
    this.#write('info', message);
  }

  warn(message: string): void {
    this.#write('warn', message);
  }

  error(message: string): void {
    this.#write('error', message);
  }

  #write(level: Exclude<TaskLogLevel, 'silent'>, message: string): void {
    if (SEVERITY[level] < this.#threshold) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [pid ${process.pid}] ${message.replace(/\n/g, '\n    ')}\n`;
    try {
      fs.appendFileSync(this.#file, line);
    } catch {
      // The directory is gone or full: nothing better to do with a log line.
    }
  }
}

/** An error's message (and, for non-errors, their string form), for a log line or a dead letter. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  try {
    return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
  } catch {
    return String(error);
  }
}
