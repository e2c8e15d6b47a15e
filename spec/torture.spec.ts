// The bounded part of the torture suite (npm run torture runs the whole of
// it; see spec/torture/run.ts): SIGKILLs inside every operation, with one
// process and with 2 producers + 2 consumers; damage in every kind of file;
// the fuzzed record reader; a full disk, a read-only file system and a
// removed directory. Seeded: PERQ_SEED=S replays a run (the seed is printed
// with every failure); PERQ_TORTURE_KILLS=N sets the number of kills.

import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, test } from 'node:test';
import { checkJournals, type ProcessRecord } from './torture/check.js';
import { damageSuite } from './torture/damage.js';
import { diskSuite } from './torture/disk.js';
import { fuzzSuite } from './torture/fuzz.js';
import type { JournalLine } from './torture/journal.js';
import { WorkerPool, multiProcessRun, singleProcessRun } from './torture/kill.js';
import { OPS } from './torture/killswitch.js';
import { random } from './torture/random.js';
import { describeResult, summary, type CaseResult } from './torture/report.js';

const SEED = process.env.PERQ_SEED !== undefined && process.env.PERQ_SEED !== '' ? Number(process.env.PERQ_SEED) : 20_261_201;
const KILLS = Number(process.env.PERQ_TORTURE_KILLS ?? 200);
const tmp = os.tmpdir();
const seeds = random(SEED);

function assertPassed(results: readonly CaseResult[]): void {
  const failed = results.filter((r) => !r.passed);
  assert.equal(
    failed.length,
    0,
    `${summary(results).text}\n${failed.map(describeResult).join('\n')}\n(PERQ_SEED=${SEED} replays this run)`,
  );
}

/** A journal from lines like 'P 3' (times are given by position). */
function journal(start: number, ...lines: string[]): JournalLine[] {
  return lines.map((text, i) => {
    const [code, ...args] = text.split(' ');
    return { time: start + i, code, args, text: args.join(' ') };
  });
}

function proc(name: string, round: number, lines: JournalLine[], end: number): ProcessRecord {
  return { name, lines, end, round };
}

describe('torture: the journal check itself', () => {
  test('a clean history passes; a redelivery after a kill is allowed', () => {
    const { counts, violations } = checkJournals([
      proc('w0', 0, journal(0, 'O 1', 'p 0', 'P 0', 'p 1', 'P 1', 'g 1', 'G 0', 't 0', 'g 1', 'G 1'), 100),
      proc('w1', 0, journal(200, 'V 0,1'), 300),
      proc('drain', 0, journal(400, 'V 0,1', 't 0,1', 'T 2', 'Z 0'), 500),
    ]);
    assert.deepEqual(violations, []);
    assert.equal(counts.lost + counts.duplicate + counts.ackedAgain, 0);
  });

  test('it finds a lost put, a phantom, an acknowledged item handed out again, a duplicate and a wrong item', () => {
    const { counts } = checkJournals([
      proc(
        'w0',
        0,
        journal(
          0,
          'O 1',
          'p 0',
          'P 0',
          'p 1',
          'P 1',
          'p 2',
          'P 2',
          'g 1',
          'G 0',
          't 0',
          'T 1',
          'g 1',
          'G 1',
          'W item 7 with wrong content',
        ),
        100,
      ),
      proc('w1', 0, journal(200, 'V 0,2,9'), 300),
    ]);
    assert.equal(counts.lost, 1, 'item 1 (handed out, never acknowledged) is missing');
    assert.equal(counts.phantom, 1, 'item 9 was never put');
    assert.equal(counts.ackedAgain, 1, 'item 0 was acknowledged');
    assert.equal(counts.wrong, 1);
    const concurrent = checkJournals([
      proc('c0', 0, journal(0, 'O 1', 'G 5'), 1000),
      proc('c1', 0, journal(10, 'O 1', 'G 5'), 1000),
      proc('p', 0, journal(-10, 'O 1', 'p 5', 'P 5'), 1000),
    ]);
    assert.equal(concurrent.counts.duplicate, 1, 'item 5 handed to a second consumer while the first lived');
  });

  test('a clear cut short must be all or nothing', () => {
    const { counts } = checkJournals([
      proc('w0', 0, journal(0, 'O 1', 'm 0 3', 'M 0 3', 'c'), 100),
      proc('w1', 0, journal(200, 'V 2,3'), 300),
    ]);
    assert.equal(counts.lost, 1);
  });
});

// One case at a time: an event-loop lag monitor showed this process blocked
// for ~20 s in a full run under coverage (2026-12-02; most likely the
// synchronous check of a case's journals, not yet measured), long enough for
// the 20 s watchdog of another case's workers, run beside it, to take them
// for hung.
describe('torture: SIGKILL inside every operation', () => {
  const pool = new WorkerPool(2);
  const single = Math.max(OPS.length, Math.round(KILLS * 0.6));
  const perOp = Math.max(1, Math.floor(single / OPS.length));
  const multi = Math.max(0, KILLS - perOp * OPS.length);
  let done = 0;
  const finished = (): void => {
    if (++done === OPS.length + (multi > 0 ? 1 : 0)) pool.close();
  };
  for (const op of OPS) {
    const seed = seeds.seed();
    test(`${perOp} kills inside ${op}, one process (seed ${seed}: npm run torture -- --case single:${op} --seed ${seed} --kills ${perOp})`, async () => {
      try {
        assertPassed(await singleProcessRun(pool, seed, op, perOp, tmp));
      } finally {
        finished();
      }
    });
  }
  if (multi > 0) {
    const seed = seeds.seed();
    test(`${multi} kills in 2 producers + 2 consumers (seed ${seed}: npm run torture -- --case multi --seed ${seed} --kills ${multi})`, async () => {
      try {
        assertPassed(await multiProcessRun(pool, seed, multi, tmp));
      } finally {
        finished();
      }
    });
  }
});

describe('torture: damage in every kind of file, then the queue drains everything not damaged', () => {
  const seed = seeds.seed();
  test(`bit flips, zeroed ranges, truncations, removals (seed ${seed})`, async (t) => {
    const results = await damageSuite(seed, 1, tmp, () => {});
    for (const result of results) await t.test(result.name, () => assertPassed([result]));
  });
});

describe('torture: the record reader, fuzzed', () => {
  const seed = seeds.seed();
  test(`fast-check properties (seed ${seed})`, async (t) => {
    const results = await fuzzSuite({ seed, numRuns: 40, tmp }, () => {});
    for (const result of results) await t.test(result.name, () => assertPassed([result]));
  });
});

describe('torture: a full disk, a read-only file system, a removed directory', () => {
  test('each case', async (t) => {
    const results = await diskSuite(tmp, () => {});
    for (const result of results) await t.test(result.name, () => assertPassed([result]));
  });
});
