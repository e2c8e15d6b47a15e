// The check after kills: replays the journals of every process that worked on
// one directory, in time order, against what a queue must do:
// - lost: a put resolved (or the item was seen in the queue) and no
//   acknowledgement or clear of it was even attempted, yet a complete listing
//   of the queue does not have it;
// - phantom: an item handed out that no put ever attempted, or that a
//   complete listing had already shown gone;
// - wrong: an item that is not exactly what was put;
// - duplicate: an item handed out while another live consumer (or the same
//   one) still held it, or twice in one listing;
// - acked again: handed out after its taskDone (or a clear of it) resolved;
// - order: a listing out of FIFO order for one producer;
// - errors: an operation that failed where it must not (ERR_CORRUPT after a
//   kill, say), or a final drain that left items.
// Redelivery of an item whose consumer died or closed before acknowledging it
// is allowed.

import { ID_SPACE } from './items.js';
import { idList, type JournalLine } from './journal.js';

export interface ProcessRecord {
  name: string;
  lines: JournalLine[];
  /** When the process ended (for a kill: just before it, or when it was sent). */
  end: number;
  /** Which kill round this process belongs to (violations it reveals are charged to it). */
  round: number;
}

export interface Counts {
  lost: number;
  phantom: number;
  wrong: number;
  duplicate: number;
  ackedAgain: number;
  order: number;
  errors: number;
}

export function zeroCounts(): Counts {
  return { lost: 0, phantom: 0, wrong: 0, duplicate: 0, ackedAgain: 0, order: 0, errors: 0 };
}

export function addCounts(into: Counts, from: Counts): void {
  for (const key of Object.keys(into) as Array<keyof Counts>) into[key] += from[key];
}

export function totalOf(counts: Counts): number {
  return (Object.keys(counts) as Array<keyof Counts>).reduce((sum, key) => sum + counts[key], 0);
}

export interface Violation {
  kind: keyof Counts;
  round: number;
  process: string;
  text: string;
}

/** How far apart the clocks of two processes of one host may be, in ms. */
const CLOCK_SLACK_MS = 5;

interface ItemState {
  intended: boolean;
  /** yes: in the queue, as far as anyone knows; maybe: a put was attempted; no: not there. */
  present: 'yes' | 'maybe' | 'no';
  /** An acknowledgement or clear of it was attempted since it was last known present. */
  mayBeGone: boolean;
  ackedResolved: boolean;
  cleared: boolean;
  /** A complete listing showed it absent. */
  gone: boolean;
  /** Sessions that were handed it and have not acknowledged it. */
  holders: string[];
}

interface Event {
  time: number;
  proc: number;
  seq: number;
  line: JournalLine | null;
}

/**
 * `autosave`: the queues ran with autosave (one process at a time only): a
 * get acknowledges what it takes, the oldest waiting items.
 */
export function checkJournals(processes: readonly ProcessRecord[], autosave = false): { counts: Counts; violations: Violation[] } {
  const counts = zeroCounts();
  const violations: Violation[] = [];
  const items = new Map<number, ItemState>();
  const ended = new Set<string>();
  const sessionOf = new Map<number, number>();
  const pendingAck = new Map<string, number[]>();
  let pendingClear: { ids: number[]; session: string } | null = null;

  const events: Event[] = [];
  processes.forEach((p, proc) => {
    p.lines.forEach((line, seq) => events.push({ time: line.time, proc, seq, line }));
    // A process counts as gone a little before it ended: the clocks of processes may differ by a fraction of a ms.
    events.push({ time: p.end - CLOCK_SLACK_MS, proc, seq: p.lines.length, line: null });
  });
  events.sort((a, b) => a.time - b.time || (a.proc === b.proc ? a.seq - b.seq : a.proc - b.proc));

  let current: ProcessRecord = processes[0];
  const report = (kind: keyof Counts, text: string): void => {
    counts[kind]++;
    if (violations.length < 200) violations.push({ kind, round: current.round, process: current.name, text });
  };
  const state = (id: number): ItemState => {
    let s = items.get(id);
    if (s === undefined) {
      s = { intended: false, present: 'no', mayBeGone: false, ackedResolved: false, cleared: false, gone: false, holders: [] };
      items.set(id, s);
    }
    return s;
  };
  const deadProcs = new Set<number>();
  const live = (session: string): boolean => !ended.has(session) && !deadProcs.has(Number(session.split(':')[0]));
  const deliveryCheck = (id: number, where: string): ItemState => {
    const s = state(id);
    if (!s.intended) report('phantom', `item ${id} ${where}: no put of it was ever attempted`);
    else if (s.ackedResolved) report('ackedAgain', `item ${id} ${where} after its taskDone resolved`);
    else if (s.cleared) report('ackedAgain', `item ${id} ${where} after a clear() that removed it resolved`);
    else if (s.gone) report('phantom', `item ${id} ${where}: it had been absent from a complete listing`);
    const holding = s.holders.filter(live);
    if (holding.length > 0) report('duplicate', `item ${id} ${where} while still held by live session ${holding.join(', ')}`);
    s.holders = holding;
    return s;
  };

  for (const event of events) {
    current = processes[event.proc];
    const line = event.line;
    const prefix = `${event.proc}:`;
    if (line === null) {
      deadProcs.add(event.proc);
      continue;
    }
    const session = `${prefix}${sessionOf.get(event.proc) ?? 0}`;
    switch (line.code) {
      case 'O':
        sessionOf.set(event.proc, Number(line.args[0]));
        break;
      case 'p':
      case 'm': {
        const first = Number(line.args[0]);
        const last = line.code === 'p' ? first : Number(line.args[1]);
        for (let id = first; id <= last; id++) {
          const s = state(id);
          s.intended = true;
          if (s.present === 'no') s.present = 'maybe';
        }
        break;
      }
      case 'P':
      case 'M': {
        const first = Number(line.args[0]);
        const last = line.code === 'P' ? first : Number(line.args[1]);
        for (let id = first; id <= last; id++) {
          const s = state(id);
          s.present = 'yes';
          s.mayBeGone = false;
        }
        break;
      }
      case 'g':
        if (autosave) {
          // The take may persist before the kill: the oldest waiting items may be gone.
          const waiting = [...items].filter(
            ([, s]) => s.present !== 'no' && !s.ackedResolved && !s.cleared && s.holders.filter(live).length === 0,
          );
          waiting.sort((a, b) => a[0] - b[0]);
          for (const [, s] of waiting.slice(0, Number(line.args[0]))) s.mayBeGone = true;
        }
        break;
      case 'G':
        for (const id of idList(line.args[0])) {
          const s = deliveryCheck(id, `handed to ${current.name} session ${session}`);
          s.holders.push(session);
          s.present = 'yes';
          if (autosave) {
            s.ackedResolved = true;
            s.holders = [];
          }
        }
        break;
      case 'W':
        report('wrong', `${current.name}: ${line.text}`);
        break;
      case 't': {
        const ids = idList(line.args[0]);
        for (const id of ids) state(id).mayBeGone = true;
        pendingAck.set(session, ids);
        break;
      }
      case 'T':
        for (const id of pendingAck.get(session) ?? []) {
          const s = state(id);
          s.ackedResolved = true;
          s.holders = s.holders.filter((h) => h !== session);
        }
        pendingAck.delete(session);
        break;
      case 'c': {
        const ids: number[] = [];
        for (const [id, s] of items) {
          if (s.present === 'no' || s.ackedResolved || s.cleared) continue;
          s.mayBeGone = true;
          ids.push(id);
        }
        pendingClear = { ids, session };
        break;
      }
      case 'C':
        for (const id of pendingClear?.ids ?? []) {
          const s = state(id);
          s.cleared = true;
          s.holders = [];
        }
        pendingClear = null;
        break;
      case 'x':
        ended.add(session);
        break;
      case 'e':
        report('errors', `${current.name}: ${line.args[0]} failed: ${line.args.slice(1).join(' ')}`);
        break;
      case 'Z':
        if (Number(line.args[0]) !== 0)
          report('errors', `${current.name}: after the final drain a fresh open still found ${line.args[0]} items`);
        break;
      case 'V': {
        const listed = idList(line.args[0]);
        const seen = new Set<number>();
        const lastOfProducer = new Map<number, number>();
        for (const id of listed) {
          if (seen.has(id)) report('duplicate', `item ${id} twice in one complete listing`);
          seen.add(id);
          deliveryCheck(id, `in the listing by ${current.name}`);
          const tag = Math.floor(id / ID_SPACE);
          const previous = lastOfProducer.get(tag);
          if (previous !== undefined && id < previous) report('order', `item ${id} listed after item ${previous} of the same producer`);
          lastOfProducer.set(tag, id);
        }
        const missing: number[] = [];
        for (const [id, s] of items) {
          if (seen.has(id)) continue;
          if (s.present === 'yes' && !s.mayBeGone && !s.ackedResolved && !s.cleared) missing.push(id);
        }
        for (const id of missing.slice(0, 20))
          report('lost', `item ${id} (put resolved or seen, never acknowledged) missing from the listing by ${current.name}`);
        if (missing.length > 20) {
          counts.lost += missing.length - 20;
        }
        if (pendingClear !== null) {
          // A clear that was cut short: all there or all gone.
          const candidates = pendingClear.ids.filter((id) => !(pendingAck.get(pendingClear!.session) ?? []).includes(id));
          const kept = candidates.filter((id) => seen.has(id)).length;
          if (kept > 0 && kept < candidates.length)
            report(
              'lost',
              `a clear() cut short by the kill removed ${candidates.length - kept} of ${candidates.length} items, not all or none`,
            );
          pendingClear = null;
        }
        for (const [id, s] of items) {
          if (seen.has(id)) {
            s.present = 'yes';
            s.mayBeGone = false;
            s.gone = false;
          } else if (s.present !== 'no' || s.mayBeGone) {
            s.present = 'no';
            s.gone = true;
            s.mayBeGone = false;
          }
          s.holders = s.holders.filter(live);
        }
        break;
      }
      default:
        break;
    }
  }
  return { counts, violations };
}
