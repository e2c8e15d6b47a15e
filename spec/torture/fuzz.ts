// The record reader fuzzed (fast-check property tests), through the public
// Queue on real files:
// 1. arbitrary bytes as a chunk never decode into an item;
// 2. a chunk of known items, mutated at random (bit flips, overwrites, zeroed
//    ranges, truncation, bytes inserted or deleted): every item handed out is
//    exactly one that was written and intact, in order, never twice; every
//    intact item before the first damage comes out; a drain never stops
//    silently while an intact item is left (only ERR_CORRUPT naming a chunk
//    file and offset stops it);
// 3. the same after Queue.repair(dir) (SPEC): every intact item drains.

import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { Queue, QueueError } from '../../lib/index.js';
import { HEADER_BYTES, readHeaderLength } from '../../lib/store/record.js';
import { zeroCounts, type Counts } from './check.js';
import { checkItem, tortureItem, type TortureItem } from './items.js';
import type { CaseResult } from './report.js';
import { errorText, withoutWarnings, withoutWarningsSync } from '../support/reporting.js';

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'overwrite'; at: number; bytes: Uint8Array }
  | { op: 'zero'; at: number; length: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number };

const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fraction, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('overwrite' as const), at: fraction, bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
  fc.record({ op: fc.constant('zero' as const), at: fraction, length: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fraction }),
  fc.record({ op: fc.constant('insert' as const), at: fraction, bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fraction, length: fc.integer({ min: 1, max: 60 }) }),
);

/** A byte of the mutated file: the original byte it stands for (-1: inserted), and its value now. */
interface Cell {
  orig: number;
  value: number;
}

function mutate(bytes: Buffer, mutations: readonly Mutation[]): Cell[] {
  let cells: Cell[] = [...bytes].map((value, orig) => ({ orig, value }));
  for (const m of mutations) {
    const at = Math.floor(m.at * (cells.length + (m.op === 'insert' ? 1 : 0)));
    switch (m.op) {
      case 'flip':
        if (at < cells.length) cells[at] = { orig: cells[at].orig, value: cells[at].value ^ (1 << m.bit) };
        break;
      case 'overwrite':
        m.bytes.forEach((value, i) => {
          if (at + i < cells.length) cells[at + i] = { orig: cells[at + i].orig, value };
        });
        break;
      case 'zero':
        for (let i = at; i < Math.min(cells.length, at + m.length); i++) cells[i] = { orig: cells[i].orig, value: 0 };
        break;
      case 'truncate':
        cells = cells.slice(0, at);
        break;
      case 'insert':
        cells.splice(at, 0, ...[...m.bytes].map((value) => ({ orig: -1, value })));
        break;
      case 'delete':
        cells.splice(at, m.length);
        break;
    }
  }
  return cells;
}

/** Whether the original bytes [start, end) of `before` are still all there, in one piece, unchanged. */
function intact(cells: readonly Cell[], before: Buffer, start: number, end: number): boolean {
  const at = cells.findIndex((cell) => cell.orig === start);
  if (at < 0 || at + (end - start) > cells.length) return false;
  for (let i = 0; i < end - start; i++) {
    const cell = cells[at + i];
    if (cell.orig !== start + i || cell.value !== before[start + i]) return false;
  }
  return true;
}

function records(bytes: Buffer): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  for (let at = 0; at < bytes.length;) {
    const length = readHeaderLength(bytes, at);
    out.push({ start: at, end: at + HEADER_BYTES + length });
    at += HEADER_BYTES + length;
  }
  return out;
}

function chunkPath(dir: string, n: number): string {
  return path.join(dir, `chunk-${String(n).padStart(16, '0')}`);
}

interface Outcome {
  ids: number[];
  wrong: string[];
  error: unknown;
}

async function drain(dir: string, repairFirst: boolean): Promise<Outcome> {
  const run = async (): Promise<Outcome> => {
    const out: Outcome = { ids: [], wrong: [], error: undefined };
    let q: Queue<TortureItem>;
    try {
      q = withoutWarningsSync(() => Queue.openSync<TortureItem>(dir));
    } catch (error) {
      return { ...out, error };
    }
    try {
      for (;;) {
        let value: unknown;
        try {
          value = q.getSync();
        } catch (error) {
          if (!(error instanceof QueueError && error.code === 'ERR_EMPTY')) out.error = error;
          break;
        }
        const checked = checkItem(value);
        if ('id' in checked) out.ids.push(checked.id);
        else out.wrong.push(checked.wrong);
        q.taskDoneSync();
      }
    } finally {
      await q.close().catch((error) => {
        out.error ??= error;
      });
    }
    return out;
  };
  if (!repairFirst) return withoutWarnings(run);
  const repair = (Queue as unknown as { repair?: (dir: string) => Promise<unknown> }).repair;
  if (typeof repair !== 'function') return { ids: [], wrong: [], error: new Error('Queue.repair(dir) is not there yet') };
  return withoutWarnings(async () => {
    await repair.call(Queue, dir);
    return run();
  });
}

/** A queue with `count` items (ids 0..count-1) in chunks of `chunkSize`; returns the chunk files' bytes. */
async function writeQueue(dir: string, count: number, chunkSize: number, seedText: number): Promise<void> {
  const q = await Queue.open<TortureItem>(dir, { chunkSize });
  await q.putMany(Array.from({ length: count }, (_, i) => tortureItem(i * 7 + seedText)));
  await q.close();
}

export interface FuzzOptions {
  seed: number;
  numRuns: number;
  tmp: string;
}

function result<T>(name: string, tally: Counts, out: fc.RunDetails<T>, seed: number): CaseResult {
  const details: string[] = [];
  // The tally counts every failing run fast-check tried while shrinking: report the final counterexample's alone.
  const counts = zeroCounts();
  if (out.failed) {
    const kind = (Object.keys(tally) as Array<keyof Counts>).find((k) => tally[k] > 0) ?? 'errors';
    counts[kind] = 1;
  }
  if (out.failed) {
    details.push(
      `after ${out.numRuns} runs: ${(out.errorInstance === undefined || out.errorInstance === null ? 'property failed' : errorText(out.errorInstance)).split('\n')[0].slice(0, 400)}`,
    );
    details.push(`counterexample: ${fc.stringify(out.counterexample).slice(0, 600)}`);
    details.push(`fast-check replay: seed ${out.seed}, path "${out.counterexamplePath}"`);
  }
  return { name, passed: !out.failed, counts, kills: 0, seed: String(seed), details };
}

export async function fuzzSuite(options: FuzzOptions, log: (result: CaseResult) => void): Promise<CaseResult[]> {
  const root = fs.mkdtempSync(path.join(options.tmp, 'perq-torture-fuzz-'));
  const results: CaseResult[] = [];
  let n = 0;
  const fresh = (): string => path.join(root, `r${n++}`);
  const done = (r: CaseResult): void => {
    results.push(r);
    log(r);
  };
  try {
    // 1. Arbitrary bytes as the only chunk: nothing comes out but errors.
    {
      const counts = zeroCounts();
      const out = await fc.check(
        fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.integer({ min: 1, max: 50 }), async (bytes, chunkSize) => {
          const dir = fresh();
          await writeQueue(dir, 0, chunkSize, 0);
          fs.writeFileSync(chunkPath(dir, 0), bytes);
          const got = await drain(dir, false);
          fs.rmSync(dir, { recursive: true, force: true });
          if (got.ids.length > 0 || got.wrong.length > 0) {
            counts.phantom += got.ids.length + got.wrong.length;
            throw new Error(`arbitrary bytes decoded into items: ${got.ids.join(',')} ${got.wrong.join(' ')}`);
          }
          if (got.error !== undefined && !(got.error instanceof QueueError && got.error.code === 'ERR_CORRUPT')) {
            counts.errors++;
            throw new Error(`arbitrary bytes gave ${errorText(got.error)}, not ERR_CORRUPT`);
          }
        }),
        { seed: options.seed, numRuns: options.numRuns },
      );
      done(result('fuzz: arbitrary bytes in a chunk never decode into an item', counts, out, options.seed));
    }

    // 2 and 3. Mutated chunks of known items.
    const scenario = fc.record({
      count: fc.integer({ min: 1, max: 40 }),
      chunkSize: fc.integer({ min: 1, max: 16 }),
      which: fraction,
      mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }),
      salt: fc.integer({ min: 0, max: 6 }),
    });
    for (const repaired of [false, true]) {
      const counts = zeroCounts();
      const out = await fc.check(
        fc.asyncProperty(scenario, async (s) => {
          const dir = fresh();
          try {
            await writeQueue(dir, s.count, s.chunkSize, s.salt);
            const chunks = Math.ceil(s.count / s.chunkSize);
            const target = Math.floor(s.which * chunks);
            const file = chunkPath(dir, target);
            const before = fs.readFileSync(file);
            const cells = mutate(before, s.mutations);
            fs.writeFileSync(file, Buffer.from(cells.map((c) => c.value)));
            const written = Array.from({ length: s.count }, (_, i) => i * 7 + s.salt);
            const isIntact = written.map(() => true);
            records(before).forEach((record, k) => {
              isIntact[target * s.chunkSize + k] = intact(cells, before, record.start, record.end);
            });
            const got = await drain(dir, repaired);
            counts.wrong += got.wrong.length;
            if (got.wrong.length > 0) throw new Error(`wrong items: ${got.wrong.join(' ')}`);
            // Only intact items, in order, each once.
            let last = -1;
            for (const id of got.ids) {
              const k = written.indexOf(id);
              if (k < 0) {
                counts.phantom++;
                throw new Error(`item ${id} was never written`);
              }
              if (!isIntact[k]) {
                counts.wrong++;
                throw new Error(`item ${id} came from a damaged record`);
              }
              if (k <= last) {
                counts[k === last ? 'duplicate' : 'order']++;
                throw new Error(`item ${id} out of order or twice: ${got.ids.join(',')}`);
              }
              last = k;
            }
            const intactIds = written.filter((_, k) => isIntact[k]);
            const missing = intactIds.filter((id) => !got.ids.includes(id));
            if (repaired) {
              if (got.error !== undefined) {
                counts.errors++;
                throw new Error(`after Queue.repair: ${errorText(got.error)}`);
              }
              if (missing.length > 0) {
                counts.lost += missing.length;
                throw new Error(`after Queue.repair, intact items did not drain: ${missing.join(',')} (drained ${got.ids.join(',')})`);
              }
              return;
            }
            const firstDamaged = isIntact.indexOf(false);
            const beforeDamage = written.filter((_, k) => firstDamaged < 0 || k < firstDamaged);
            const missingBefore = beforeDamage.filter((id) => !got.ids.includes(id));
            const openFailed = got.error !== undefined && got.ids.length === 0;
            if (missingBefore.length > 0 && !openFailed) {
              counts.lost += missingBefore.length;
              throw new Error(
                `intact items before the damage did not come out: ${missingBefore.join(',')} (${got.error === undefined ? 'no error' : errorText(got.error)})`,
              );
            }
            if (got.error === undefined) {
              if (missing.length > 0) {
                counts.lost += missing.length;
                throw new Error(
                  `the drain stopped without an error with intact items left: ${missing.join(',')} (drained ${got.ids.join(',')})`,
                );
              }
            } else if (!(got.error instanceof QueueError) || got.error.code !== 'ERR_CORRUPT' || got.error.file === undefined) {
              counts.errors++;
              throw new Error(`stopped by ${errorText(got.error)}, not ERR_CORRUPT naming a file`);
            } else if (fs.existsSync(got.error.file) && got.error.file.includes('chunk-') && typeof got.error.offset !== 'number') {
              counts.errors++;
              throw new Error(`ERR_CORRUPT without an offset: ${got.error.message}`);
            }
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        }),
        { seed: options.seed + (repaired ? 1 : 0), numRuns: options.numRuns },
      );
      done(
        result(
          repaired
            ? 'fuzz: after Queue.repair every intact record of a mutated chunk drains'
            : 'fuzz: a mutated chunk hands out only intact items, in order, never skipping one silently',
          counts,
          out,
          options.seed + (repaired ? 1 : 0),
        ),
      );
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return results;
}
