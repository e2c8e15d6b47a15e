// The power-loss suite's rules (spec/power/check.ts) on made-up runs, so that
// what it calls lost, handed out again, wrong, stuck or duplicated is pinned
// down without LazyFS; and, with PERQ_POWER_CUTS=N set (root, /dev/fuse and
// shared/lazyfs needed), the suite itself on LazyFS for N cuts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkCut, newModel, type DirModel, type Finding, type RunRecord } from './power/check.js';
import { checkItem, keyOf, powerItem } from './power/items.js';
import { parseJournal, type DrainReport, type Fsync, type Intents, type WorkerReport } from './power/protocol.js';

const T = 1_000_000;

function run(fsync: Fsync, reports: WorkerReport[], intents: Partial<Intents> = {}, tCut = T + 1000): RunRecord {
  const puts = new Map<string, number>(intents.puts ?? []);
  for (const r of reports) if (r.kind === 'put') for (const key of r.keys) if (!puts.has(key)) puts.set(key, r.t0);
  return {
    fsync,
    tCut,
    earlyExits: [],
    reports: reports.map((r) => ({ ...r, worker: 'w' })),
    intents: { puts, acks: intents.acks ?? new Set(), clears: intents.clears ?? [] },
  };
}

function drained(...keys: string[]): DrainReport {
  return { keys, wrong: [], warnings: {} };
}

const put = (key: string, t1: number): WorkerReport => ({ kind: 'put', keys: [key], t0: t1 - 1, t1 });
const got = (key: string, t1: number, worker?: string): WorkerReport & { worker?: string } => ({
  kind: 'got',
  keys: [key],
  t0: t1 - 1,
  t1,
  ...(worker ? { worker } : {}),
});
const acked = (key: string, t1: number): WorkerReport => ({ kind: 'acked', keys: [key], t0: t1 - 1, t1 });

function failures(findings: Finding[]): string[] {
  return findings.filter((f) => !f.allowed).map((f) => `${f.kind}${f.live ? ' live' : ''} ${f.key ?? ''}`.trim());
}
function allowed(findings: Finding[]): string[] {
  return findings.filter((f) => f.allowed).map((f) => `${f.kind} ${f.key ?? ''}`.trim());
}

describe('power-loss verdicts', () => {
  test('a resolved put that is gone: lost under always, allowed under never, and under N only within N ms of the cut', () => {
    const reports = [put('a/0', T), put('a/1', T + 980)];
    assert.deepEqual(failures(checkCut(newModel(), run('always', reports), drained()).findings), ['lost a/0', 'lost a/1']);
    assert.deepEqual(failures(checkCut(newModel(), run('never', reports), drained()).findings), []);
    const periodic = checkCut(newModel(), run(50, reports), drained()).findings;
    assert.deepEqual(failures(periodic), ['lost a/0']);
    assert.deepEqual(allowed(periodic), ['lost a/1']);
  });

  test('a put that never resolved may be there or not', () => {
    const intents = { puts: new Map([['a/0', T]]) };
    assert.deepEqual(checkCut(newModel(), run('always', [], intents), drained()).findings, []);
    assert.deepEqual(checkCut(newModel(), run('always', [], intents), drained('a/0')).findings, []);
  });

  test('an item whose taskDone resolved comes back: again; one whose taskDone was only called may come back or not', () => {
    const reports = [put('a/0', T), put('a/1', T), got('a/0', T + 1), got('a/1', T + 1), acked('a/0', T + 2)];
    const intents = { acks: new Set(['a/0', 'a/1']) };
    assert.deepEqual(failures(checkCut(newModel(), run('always', reports, intents), drained('a/0', 'a/1')).findings), ['again a/0']);
    assert.deepEqual(checkCut(newModel(), run('always', reports, intents), drained()).findings, []);
    assert.deepEqual(failures(checkCut(newModel(), run('never', reports, intents), drained('a/0')).findings), []);
  });

  test('an item handed out and not acknowledged must still be there', () => {
    const reports = [put('a/0', T), got('a/0', T + 1)];
    assert.deepEqual(failures(checkCut(newModel(), run('always', reports), drained()).findings), ['lost a/0']);
    assert.deepEqual(checkCut(newModel(), run('always', reports), drained('a/0')).findings, []);
  });

  test('a clear that resolved removes what was put before it began; what was put after must stay', () => {
    const reports: WorkerReport[] = [put('a/0', T), { kind: 'cleared', t0: T + 10, t1: T + 20 }, put('a/1', T + 30)];
    const intents = { clears: [T + 10] };
    assert.deepEqual(checkCut(newModel(), run('always', reports, intents), drained('a/1')).findings, []);
    assert.deepEqual(failures(checkCut(newModel(), run('always', reports, intents), drained('a/0', 'a/1')).findings), ['clearedBack a/0']);
    assert.deepEqual(failures(checkCut(newModel(), run('always', reports, intents), drained()).findings), ['lost a/1']);
  });

  test('a clear called but not resolved at the cut may have removed anything', () => {
    const reports = [put('a/0', T), put('a/1', T + 500)];
    assert.deepEqual(checkCut(newModel(), run('always', reports, { clears: [T + 100] }), drained()).findings, []);
  });

  test('the drain: an item twice is a duplicate, an item never put or not as put is wrong', () => {
    const reports = [put('a/0', T)];
    assert.deepEqual(failures(checkCut(newModel(), run('never', reports), drained('a/0', 'a/0')).findings), ['dup a/0']);
    assert.deepEqual(failures(checkCut(newModel(), run('never', reports), drained('a/0', 'b/7')).findings), ['wrong b/7']);
    const damaged = { ...drained('a/0'), wrong: ['item a/1 differs from what was put'] };
    assert.deepEqual(failures(checkCut(newModel(), run('never', reports), damaged).findings), ['wrong']);
  });

  test('while the workers run: an item handed to a second holder, or out again after its taskDone, fails in every mode', () => {
    const twice = [put('a/0', T), got('a/0', T + 1, 'w1'), got('a/0', T + 2, 'w2')];
    const r1 = run('never', []);
    r1.reports = twice.map((r) => ({ worker: 'w', ...r }));
    r1.intents.puts.set('a/0', T - 1);
    assert.deepEqual(failures(checkCut(newModel(), r1, drained('a/0')).findings), ['dup live a/0']);
    const again = [put('a/0', T), got('a/0', T + 1), acked('a/0', T + 2), got('a/0', T + 5)];
    assert.deepEqual(failures(checkCut(newModel(), run('never', again), drained()).findings), ['again live a/0']);
    // Handed back by close: another consumer may take it.
    const handedBack: WorkerReport[] = [
      put('a/0', T),
      got('a/0', T + 1),
      { kind: 'closed', keys: ['a/0'], t0: T + 3, t1: T + 6 },
      got('a/0', T + 5),
    ];
    assert.deepEqual(checkCut(newModel(), run('always', handedBack), drained('a/0')).findings, []);
  });

  test('a drain that fails is stuck, and the directory is given up', () => {
    const stuck: DrainReport = { ...drained(), stuck: { stage: 'open', code: 'ERR_CORRUPT', message: 'damaged' } };
    const verdict = checkCut(newModel(), run('never', [put('a/0', T)]), stuck);
    assert.deepEqual(failures(verdict.findings), ['stuck']);
    assert.equal(verdict.next, undefined);
  });

  test('across cuts: what a drain found must stay, and acknowledgements of earlier runs must hold', () => {
    const first = checkCut(newModel(), run(50, [put('a/0', T), put('a/1', T), got('a/1', T + 1), acked('a/1', T + 2)]), drained('a/0'));
    assert.deepEqual(first.findings, []);
    const model = first.next as DirModel;
    assert.deepEqual([...model.baseline], ['a/0']);
    const second = checkCut(model, run(50, [], {}, T + 5000), drained('a/1'));
    assert.deepEqual(failures(second.findings), ['again a/1', 'lost a/0']);
    assert.equal(second.findings.find((f) => f.kind === 'lost')?.age, Infinity);
  });
});

describe('power-loss items and journals', () => {
  test('an item is recognised exactly; any change to it is wrong', () => {
    const item = powerItem('c1w0', 42);
    assert.deepEqual(checkItem(structuredClone(item)), { key: keyOf('c1w0', 42) });
    assert.ok('wrong' in checkItem({ ...item, pad: `${item.pad.slice(0, -1)}#` }));
    assert.ok('wrong' in checkItem({ ...item, k: 43 }));
    assert.ok('wrong' in checkItem({ ...item, extra: 1 }));
    assert.ok('wrong' in checkItem(null));
    assert.ok(
      Array.from({ length: 200 }, (_, k) => powerItem('p', k).pad.length).some((n) => n > 4096),
      'some items span a cache page',
    );
  });

  test('a journal line the kill cut short is not read', () => {
    const intents: Intents = { puts: new Map(), acks: new Set(), clears: [] };
    parseJournal(`P ${T} a/0 a/1\nA ${T + 1} a/0\nC ${T + 2}\nP ${T + 3} a/2 a/3`, intents);
    assert.deepEqual([...intents.puts.keys()], ['a/0', 'a/1']);
    assert.deepEqual([...intents.acks], ['a/0']);
    assert.deepEqual(intents.clears, [T + 2]);
  });
});
