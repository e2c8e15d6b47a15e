// What a torture worker did, written line by line to its own journal file
// with a synchronous write, so that every line written survives a SIGKILL of
// the worker: an intent line before each call, a result line once it resolved.
//
//   <time> <code> [args]
//   o / O n            open intent / opened (session n of this process)
//   p id / P id        put intent / resolved
//   m a b / M a b      putMany intent of ids a..b / resolved
//   g n / G ids        get(Many) intent / resolved with these ids (comma list, may be empty)
//   W text             an item that is not what was put was handed out
//   t ids / T n        taskDone(n) intent, acknowledging these ids / resolved
//   c / C              clear intent / resolved
//   x / X              close intent / resolved
//   V ids              a complete listing of the queue (verify or final drain session)
//   Z n                after the final drain, a fresh open found n items
//   e op text          an operation failed unexpectedly
//   K why              about to be killed (by itself or its watchdog thread)
//
// `time` is ms on a clock all processes of the host share.

import fs from 'node:fs';

// Taken before a kill switch wraps fs, so that journal writes are never counted as queue syscalls.
const writeSync = fs.writeSync.bind(fs);
const openSync = fs.openSync.bind(fs);
const readFileSync = fs.readFileSync.bind(fs);

export function now(): number {
  return performance.timeOrigin + performance.now();
}

export class Journal {
  readonly fd: number;

  constructor(file: string) {
    this.fd = openSync(file, 'a');
  }

  write(code: string, ...args: Array<string | number>): void {
    const line = `${now().toFixed(3)} ${code}${args.length > 0 ? ` ${args.join(' ')}` : ''}\n`;
    writeSync(this.fd, line);
  }
}

export interface JournalLine {
  time: number;
  code: string;
  args: string[];
  /** The rest of the line after the code, for free text. */
  text: string;
}

export function readJournal(file: string): JournalLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines: JournalLine[] = [];
  for (const raw of text.split('\n')) {
    // A line cut short by the kill has no newline after it; split leaves it last, and it is kept only if whole-looking.
    const match = /^(\d+\.\d{3}) (\S+)(?: (.*))?$/.exec(raw);
    if (match === null) continue;
    const rest = match[3] ?? '';
    lines.push({ time: Number(match[1]), code: match[2], args: rest === '' ? [] : rest.split(' '), text: rest });
  }
  return lines;
}

/** Parses a comma list of ids ('' is none). */
export function idList(text: string | undefined): number[] {
  if (text === undefined || text === '' || text === '-') return [];
  return text.split(',').map(Number);
}

export function formatIds(ids: readonly number[]): string {
  return ids.length === 0 ? '-' : ids.join(',');
}
