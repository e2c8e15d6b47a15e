// The verdict on one power cut: what the workers' resolved calls promise
// (reported over IPC, with the time each resolved), what they may have done
// (their journals of intents), and what a fresh process found afterwards
// (the drain). Pure functions over those records, so the rules can be tested
// without LazyFS (spec/power-loss.spec.ts).
//
// Per directory a model carries over from cut to cut: the items present at
// the last drain (the queue goes on with them), every acknowledgement that
// resolved, every item a resolved clear removed, every item ever meant.

import type { DrainReport, Fsync, Intents, WorkerReport } from './protocol.js';

export type Kind = 'lost' | 'again' | 'wrong' | 'stuck' | 'dup' | 'clearedBack' | 'error';
export const KINDS: readonly Kind[] = ['lost', 'again', 'wrong', 'stuck', 'dup', 'clearedBack', 'error'];

export interface Finding {
  kind: Kind;
  /** Not a failure in this mode (a 'never' loss, a call inside the fsync period). */
  allowed: boolean;
  /** Found while the workers ran (no cut involved), rather than in the drain. */
  live: boolean;
  key?: string;
  /** ms from the call's resolution to the cut (Infinity: before an earlier cut). */
  age?: number;
  detail: string;
  /** For 'again': the acknowledgement was above the acknowledged prefix (another consumer held an item handed out before). */
  abovePrefix?: boolean;
}

export interface DirModel {
  /** Items the last drain found (all waiting again when the next workers start). */
  baseline: Set<string>;
  /** Items whose acknowledgement resolved, with when, that have not come back since. */
  acked: Map<string, number>;
  /** Items a resolved clear removed, with when it resolved. */
  cleared: Map<string, number>;
  /** Every item any worker called put for in this directory. */
  intended: Set<string>;
}

export function newModel(): DirModel {
  return { baseline: new Set(), acked: new Map(), cleared: new Map(), intended: new Set() };
}

export interface RunRecord {
  fsync: Fsync;
  /** When the first worker was killed. */
  tCut: number;
  /** Every report, tagged with its worker. */
  reports: Array<WorkerReport & { worker: string }>;
  intents: Intents;
  /** Workers that exited before the kill (code or signal), or failed to start. */
  earlyExits: string[];
}

export interface CutVerdict {
  findings: Finding[];
  /** The model for the next cut on this directory; undefined when the directory is given up (stuck). */
  next: DirModel | undefined;
  counts: { puts: number; acks: number; gets: number; drained: number };
}

/** Whether a loss or return of a call that resolved `age` ms before the cut is within what `fsync` promises. */
export function allowedByMode(fsync: Fsync, age: number, slack = 0): boolean {
  if (fsync === 'never') return true;
  if (fsync === 'always') return false;
  return age < fsync + slack;
}

interface Clear {
  t0: number;
  t1: number | undefined;
}

export function checkCut(model: DirModel, run: RunRecord, drain: DrainReport | undefined, slack = 0): CutVerdict {
  const findings: Finding[] = [];
  const add = (finding: Omit<Finding, 'allowed'> & { allowed?: boolean }): void => {
    findings.push({ allowed: false, ...finding });
  };
  const syncs = run.reports.filter((r): r is Extract<WorkerReport, { kind: 'synced' }> & { worker: string } => r.kind === 'synced');
  /** Who made the call whose loss a finding reports: the producer of a lost put, the acknowledger of an item back. */
  const ackedBy = new Map<string, string>();
  const windowed = (kind: Kind, key: string, age: number, detail: string): void => {
    const allowed = allowedByMode(run.fsync, age, slack);
    const worker = kind === 'lost' ? key.split('/')[0] : ackedBy.get(key);
    const own = syncs.filter((s) => s.worker === worker);
    add({
      kind,
      key,
      age,
      live: false,
      allowed,
      detail: allowed || syncs.length === 0 || worker === undefined ? detail : `${detail}; ${syncsAfter(own, run.tCut - age)}`,
    });
  };
  const intended = new Set([...model.intended, ...run.intents.puts.keys()]);
  const putT0 = new Map<string, number>();
  const putT1 = new Map<string, number>();
  const ackedAt = new Map(model.acked);
  const cleared = new Map(model.cleared);
  const counts = { puts: 0, acks: 0, gets: 0, drained: drain?.keys.length ?? 0 };

  for (const worker of run.earlyExits) add({ kind: 'error', live: true, detail: `worker ${worker} exited before the cut` });

  // The run, in time order: hand-outs against holders, acknowledgements and clears.
  const clears: Clear[] = run.intents.clears.map((t0) => ({ t0, t1: undefined }));
  const timeline: Array<{ t: number; order: number; report: WorkerReport & { worker: string } }> = [];
  for (const report of run.reports) {
    switch (report.kind) {
      case 'put':
        counts.puts += report.keys.length;
        for (const key of report.keys) {
          putT0.set(key, report.t0);
          putT1.set(key, report.t1);
        }
        break;
      case 'got':
        counts.gets += report.keys.length;
        timeline.push({ t: report.t1, order: 1, report });
        break;
      case 'acked':
        counts.acks += report.keys.length;
        timeline.push({ t: report.t1, order: 0, report });
        break;
      case 'closed':
      case 'gaveBack':
        // The hand-back happens inside close (or nack): a get resolving after the call began may take the items.
        timeline.push({ t: report.t0, order: 0, report });
        break;
      case 'cleared': {
        const clear = clears.find((c) => c.t0 === report.t0 && c.t1 === undefined);
        if (clear) clear.t1 = report.t1;
        else clears.push({ t0: report.t0, t1: report.t1 });
        timeline.push({ t: report.t1, order: 0, report });
        break;
      }
      case 'bad':
        add({ kind: 'wrong', live: true, detail: `worker ${report.worker} got ${report.what}` });
        break;
      case 'error':
        add({
          kind: 'error',
          live: true,
          detail: `worker ${report.worker}: ${report.code}: ${report.message.split('\n').slice(0, 3).join(' / ')}`,
        });
        break;
      case 'ready':
        break;
    }
  }
  for (const key of run.intents.puts.keys()) if (!putT0.has(key)) putT0.set(key, run.intents.puts.get(key) ?? -Infinity);

  timeline.sort((a, b) => a.t - b.t || a.order - b.order);
  const holders = new Map<string, string>();
  /** Hand-out order in this run (gets run under the lock, so their resolution order is close to it). */
  const gotIndex = new Map<string, number>();
  /** Acknowledgements made while another consumer held an item handed out earlier: above the prefix. */
  const abovePrefix = new Map<string, string>();
  for (const { report } of timeline) {
    if (report.kind === 'got') {
      for (const key of report.keys) {
        if (key.startsWith('?')) continue;
        gotIndex.set(key, gotIndex.size);
        const holder = holders.get(key);
        const ack = ackedAt.get(key);
        const clearedAt = cleared.get(key);
        if (!intended.has(key)) add({ kind: 'wrong', live: true, key, detail: `worker ${report.worker} got ${key}, which was never put` });
        else if (holder !== undefined)
          add({ kind: 'dup', live: true, key, detail: `worker ${report.worker} got ${key} while worker ${holder} held it` });
        else if (ack !== undefined && ack < report.t0)
          add({
            kind: 'again',
            live: true,
            key,
            detail: `worker ${report.worker} got ${key}, acknowledged ${(report.t0 - ack).toFixed(1)} ms before`,
          });
        else if (clearedAt !== undefined && clearedAt < report.t0)
          add({
            kind: 'clearedBack',
            live: true,
            key,
            detail: `worker ${report.worker} got ${key}, cleared ${(report.t0 - clearedAt).toFixed(1)} ms before`,
          });
        holders.set(key, report.worker);
      }
    } else if (report.kind === 'acked') {
      for (const key of report.keys) {
        if (key.startsWith('?')) continue;
        holders.delete(key);
        ackedBy.set(key, report.worker);
        const index = gotIndex.get(key) ?? -1;
        for (const [other, worker] of holders) {
          if (worker !== report.worker && (gotIndex.get(other) ?? Infinity) < index) {
            abovePrefix.set(key, `${other} held by ${worker}`);
            break;
          }
        }
        ackedAt.set(key, report.t1);
      }
    } else if (report.kind === 'closed' || report.kind === 'gaveBack') {
      for (const key of report.keys) holders.delete(key);
    } else if (report.kind === 'cleared') {
      holders.clear();
      // Removed for certain: whatever was there before the clear began and was not acknowledged.
      for (const key of model.baseline) if (!ackedAt.has(key)) cleared.set(key, report.t1);
      for (const [key, t1] of putT1) if (t1 < report.t0 && !ackedAt.has(key)) cleared.set(key, report.t1);
    }
  }

  if (drain === undefined || drain.stuck !== undefined) {
    const what = drain?.stuck
      ? `${drain.stuck.stage}: ${drain.stuck.code}: ${drain.stuck.message}${drain.stuck.file ? ` (${drain.stuck.file}${drain.stuck.offset !== undefined ? ` @${drain.stuck.offset}` : ''})` : ''}`
      : 'the drain process did not report';
    add({ kind: 'stuck', live: false, detail: what });
    for (const wrong of drain?.wrong ?? []) add({ kind: 'wrong', live: false, detail: `the drain got ${wrong}` });
    return { findings, next: undefined, counts };
  }

  for (const wrong of drain.wrong) add({ kind: 'wrong', live: false, detail: `the drain got ${wrong}` });
  // Damage with a way forward: allowed under 'never' only ('always' and N must open and drain without an error).
  if (drain.repaired)
    add({
      kind: 'stuck',
      live: false,
      allowed: run.fsync === 'never',
      detail: `ERR_CORRUPT until Queue.repair: ${drain.repaired.damage}; repair: ${drain.repaired.report}`,
    });
  const present = new Set<string>();
  for (const key of drain.keys) {
    if (present.has(key)) {
      add({ kind: 'dup', live: false, key, detail: `the drain got ${key} twice` });
      continue;
    }
    present.add(key);
    if (!intended.has(key)) {
      add({ kind: 'wrong', live: false, key, detail: `the drain got ${key}, which was never put` });
      continue;
    }
    const ack = ackedAt.get(key);
    const clearedAt = cleared.get(key);
    if (ack !== undefined) {
      const above = abovePrefix.get(key);
      windowed(
        'again',
        key,
        run.tCut - ack,
        `${key} came back, acknowledged ${fmt(run.tCut - ack)} before the cut${above ? `, above the prefix (${above})` : ''}`,
      );
      if (above) findings[findings.length - 1].abovePrefix = true;
    } else if (clearedAt !== undefined)
      windowed('clearedBack', key, run.tCut - clearedAt, `${key} came back, cleared ${fmt(run.tCut - clearedAt)} before the cut`);
  }

  const possiblyCleared = (key: string): boolean => {
    const t0 = putT0.get(key) ?? -Infinity;
    return clears.some((clear) => t0 < (clear.t1 ?? Infinity));
  };
  const candidates = new Set([...model.baseline, ...run.intents.puts.keys(), ...putT1.keys()]);
  for (const key of candidates) {
    if (present.has(key) || run.intents.acks.has(key) || ackedAt.has(key) || cleared.has(key) || possiblyCleared(key)) continue;
    const resolved = model.baseline.has(key) ? -Infinity : putT1.get(key);
    if (resolved === undefined) continue; // a put that never resolved may or may not have landed
    const age = run.tCut - resolved;
    windowed('lost', key, age, `${key} is gone, its put resolved ${fmt(age)} before the cut`);
  }

  for (const key of present) {
    ackedAt.delete(key);
    cleared.delete(key);
  }
  return { findings, next: { baseline: present, acked: ackedAt, cleared, intended }, counts };
}

/** What perq's sync timer did after `t` (a call resolved then): whether a sync could have covered it. */
function syncsAfter(syncs: Array<{ t0: number; t1: number; worker: string }>, t: number): string {
  if (!Number.isFinite(t)) return 'put before an earlier cut';
  const covering = syncs.filter((s) => s.t0 > t);
  if (covering.length === 0) {
    const last = syncs.filter((s) => s.t0 <= t).at(-1);
    return `no fdatasync began after it${last ? ` (the last began ${(t - last.t0).toFixed(1)} ms before)` : ''}: the timer was late`;
  }
  const first = covering[0];
  return `${covering.length} fdatasync(s) began after it, the first ${(first.t0 - t).toFixed(1)} ms after (${first.worker}, done ${(first.t1 - first.t0).toFixed(1)} ms later)`;
}

function fmt(age: number): string {
  return Number.isFinite(age) ? `${age.toFixed(1)} ms` : 'an earlier cut';
}
