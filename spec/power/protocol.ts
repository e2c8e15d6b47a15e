// What the power-loss runner, its workers and its drain process tell each
// other. Times are ms since the epoch with a fraction (performance.timeOrigin
// + performance.now()), a clock the processes of one host share.

export type Fsync = 'always' | 'never' | number;

export type Role = 'mixed' | 'producer' | 'consumer';

export interface WorkerConfig {
  dir: string;
  fsync: Fsync;
  role: Role;
  /** Producer name, unique in the run: the p of every item this worker puts. */
  tag: string;
  seed: number;
  /** Passed only when the queue is created by this run (a fresh directory). */
  chunkSize?: number;
  /** This worker may clear the queue now and then. */
  clears: boolean;
  /**
   * Acknowledge everything held before the next get. Needed when another
   * process may clear: a clear empties this consumer's held list behind
   * its back, and later taskDones would then acknowledge other items than
   * the ones this worker counts.
   */
  ackAll: boolean;
  /** Producers wait while the queue holds more than this (so a drain stays small). */
  backlog: number;
  /** An append-only file the worker writes each intent to, synchronously, before the call. */
  journal: string;
}

/** Sent over IPC once an awaited call has resolved. */
export type WorkerReport =
  | { kind: 'ready'; t: number }
  | { kind: 'put'; keys: string[]; t0: number; t1: number }
  | { kind: 'got'; keys: string[]; t0: number; t1: number }
  | { kind: 'acked'; keys: string[]; t0: number; t1: number }
  | { kind: 'cleared'; t0: number; t1: number }
  /** close() resolved; `keys` were held unacknowledged, so close handed them back. */
  | { kind: 'closed'; keys: string[]; t0: number; t1: number }
  /** nack() resolved: `keys` were given back (inside the call: another worker may get them before t1). */
  | { kind: 'gaveBack'; keys: string[]; t0: number; t1: number }
  /** Under a period: one fdatasync of perq's timer, from call to completion (to tell a late timer from a lost sync). */
  | { kind: 'synced'; t0: number; t1: number }
  | { kind: 'bad'; what: string; t: number }
  | { kind: 'error'; code: string; message: string; t: number };

/**
 * Journal lines (written before the call, so that a SIGKILL cannot lose one):
 *   P <t0> <key> <key> ...   put / putMany called with these items
 *   A <t0> <key> <key> ...   taskDone called for these items
 *   C <t0>                   clear called
 */
export interface Intents {
  puts: Map<string, number>;
  acks: Set<string>;
  clears: number[];
}

export interface DrainConfig {
  dir: string;
  fsync: Fsync;
}

export interface DrainReport {
  /** Where the queue stopped being usable; undefined when it opened and drained. */
  stuck?: { stage: 'open' | 'drain' | 'reopen' | 'repair'; code: string; message: string; file?: string; offset?: number };
  /** Keys in the order the fresh process got them. */
  keys: string[];
  wrong: string[];
  /** Process warnings, by code. */
  warnings: Record<string, number>;
  /** The ERR_CORRUPT that made the drain call Queue.repair (when perq has one), and what repair said. */
  repaired?: { damage: string; report: string };
}

/** A clock shared by the processes of one host, in ms since the epoch. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function fsyncArg(text: string): Fsync {
  return text === 'always' || text === 'never' ? text : Number(text);
}

export function parseJournal(text: string, into: Intents): void {
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or a line the kill cut short
  for (const line of lines) {
    const [kind, time, ...keys] = line.split(' ');
    const t0 = Number(time);
    if (kind === 'P') for (const key of keys) into.puts.set(key, t0);
    else if (kind === 'A') for (const key of keys) into.acks.add(key);
    else if (kind === 'C') into.clears.push(t0);
  }
}
