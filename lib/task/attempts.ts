// Durable attempt counts: `attempts/<item id>` holds how many attempts at the
// item have started and the error of each that failed, written before the
// handler is called. A worker that dies during the handler (SIGKILL, a crash,
// the machine going down) has therefore used up that attempt, and the next
// worker, handed the item again because it was never acknowledged, sees it.
// So an item that kills its worker every time still ends in the dead-letter
// queue instead of taking down every worker for ever.
//
// The file goes once the item is acknowledged (done, or moved to the dead
// letters); a worker killed between the acknowledgement and the removal
// leaves a small file no item refers to.

import fs from 'node:fs';
import path from 'node:path';
import { ioError } from '../errors.js';

/** Item ids are UUIDs the pusher made; anything else read from the queue is not used as a path. */
const ITEM_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface AttemptRecord {
  /** Attempts started so far. */
  started: number;
  /** Why each finished attempt failed, oldest first (an attempt whose worker died has an entry saying so). */
  errors: string[];
}

export function isItemId(id: unknown): id is string {
  return typeof id === 'string' && ITEM_ID.test(id);
}

export class AttemptLog {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true });
  }

  /** The record of item `id`; none yet is { started: 0 }. */
  read(id: string): AttemptRecord {
    let text: string;
    try {
      text = fs.readFileSync(this.#file(id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { started: 0, errors: [] };
      throw ioError(this.dir, 'reading an attempt record', error, this.#file(id));
    }
    try {
      const record = JSON.parse(text) as Partial<AttemptRecord>;
      const started = Number.isSafeInteger(record.started) && (record.started as number) > 0 ? (record.started as number) : 0;
      const errors = Array.isArray(record.errors) ? record.errors.map(String) : [];
      return { started, errors };
    } catch {
      // Cut short as it was written (its worker killed at that moment): that attempt had not begun.
      return { started: 0, errors: [] };
    }
  }

  write(id: string, record: AttemptRecord): void {
    const file = this.#file(id);
    try {
      fs.writeFileSync(file, JSON.stringify(record));
    } catch (error) {
      throw ioError(this.dir, 'writing an attempt record', error, file);
    }
  }

  remove(id: string): void {
    fs.rmSync(this.#file(id), { force: true });
  }

  #file(id: string): string {
    if (!isItemId(id)) throw new TypeError(`not an item id: ${String(id)}`);
    return path.join(this.dir, id);
  }
}
