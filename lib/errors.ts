// The one error class perq throws, with a `code` a caller can switch on.
// Every message names the queue directory (and the file, where one is involved)
// so that an error in a log says which queue it came from.

/** Every `code` a `QueueError` can carry. */
export type QueueErrorCode =
  | 'ERR_QUEUE_CLOSED'
  | 'ERR_SERIALIZE'
  | 'ERR_CORRUPT'
  | 'ERR_FORMAT'
  | 'ERR_ITEM_TOO_LARGE'
  | 'ERR_LOCKED'
  | 'ERR_EMPTY'
  | 'ERR_FULL'
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_ARG'
  | 'ERR_TASK_DONE'
  | 'ERR_NOT_HELD'
  | 'ERR_IO';

export interface QueueErrorDetails {
  /** The file the error is about, when there is one. */
  file?: string;
  /** The byte offset in `file` the error is about, when there is one. */
  offset?: number;
  /** The error that caused this one. */
  cause?: unknown;
}

export class QueueError extends Error {
  readonly code: QueueErrorCode;
  /** The queue directory. */
  readonly dir: string;
  readonly file: string | undefined;
  readonly offset: number | undefined;

  constructor(code: QueueErrorCode, dir: string, message: string, details: QueueErrorDetails = {}) {
    const where =
      details.file === undefined ? '' : ` (file ${details.file}${details.offset === undefined ? '' : ` at offset ${details.offset}`})`;
    super(`perq queue ${dir}: ${message}${where}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'QueueError';
    this.code = code;
    this.dir = dir;
    this.file = details.file;
    this.offset = details.offset;
  }
}

/** Thrown by a non-blocking or timed-out `get` on an empty queue. */
export class Empty extends QueueError {
  constructor(dir: string, message = 'the queue is empty') {
    super('ERR_EMPTY', dir, message);
    this.name = 'Empty';
  }
}

/** Thrown by a non-blocking or timed-out `put` on a queue at `maxSize`. */
export class Full extends QueueError {
  constructor(dir: string, message = 'the queue is full') {
    super('ERR_FULL', dir, message);
    this.name = 'Full';
  }
}

/** Wraps an I/O error from the file system, keeping its code in the message. */
export function ioError(dir: string, what: string, cause: unknown, file?: string): QueueError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
  return new QueueError('ERR_IO', dir, `${what} failed: ${code}`, { file, cause });
}

/** A value as an argument error shows it: strings quoted (`"1"`, not `1`), objects and functions by kind. */
export function describeArgument(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.toString();
  return String(value);
}
