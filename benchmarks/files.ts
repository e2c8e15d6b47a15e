// What the file system of the temp dir charges for the steps a queue is made
// of, without perq in between: appending a record to an open file, creating a
// chunk file, deleting one, and fdatasync. These explain the other tables:
// with chunkSize 100 every 100 items pay for one create and one delete.

import fs from 'node:fs';
import path from 'node:path';
import {
  formatCount,
  formatRate,
  formatSeconds,
  formatSecondsSeries,
  measureInterleaved,
  median,
  printTable,
  progress,
  timed,
  type BenchContext,
  type BenchGroup,
} from './harness.js';

/** A record of a 100-byte item: 100 bytes of payload plus perq's 28-byte header. */
const RECORD_BYTES = 128;
/** Digits in a perq chunk file name, so that the names (and directory entries) look like perq's. */
const CHUNK_NAME_DIGITS = 16;
/** perq's default chunk size: how many records share the cost of one file. */
const DEFAULT_CHUNK_SIZE = 100;
/** Operations per run for the cheap steps (a few µs each). */
const OPS = 20_000;
const QUICK_OPS = 2_000;
/** Operations per run for the steps that wait for the disk (~0.2-1 ms each). */
const SYNCED_OPS = 500;
const QUICK_SYNCED_OPS = 100;
const REPEATS = 5;
const QUICK_REPEATS = 3;

interface Step {
  label: string;
  synced: boolean;
  /** Runs the step `ops` times in `dir`; returns the seconds of the timed part. */
  run(dir: string, ops: number): Promise<number>;
}

const record = Buffer.alloc(RECORD_BYTES, 0x61);
const US_PER_S = 1e6;
/** CPU time is accounted in scheduler ticks (a few ms): a run's kernel time below this is not worth printing. */
const MIN_SYSTEM_SECONDS = 0.02;

/** Where timedWithSystem records the kernel CPU seconds of a timed section: the running step's list. */
let systemSink: number[] = [];

/** Like harness.timed, and also records the system (kernel) CPU time the section used. */
async function timedWithSystem(fn: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  const seconds = await timed(fn);
  systemSink.push(process.cpuUsage(before).system / US_PER_S);
  return seconds;
}

function fileName(dir: string, i: number): string {
  return path.join(dir, `chunk-${String(i).padStart(CHUNK_NAME_DIGITS, '0')}`);
}

const STEPS: readonly Step[] = [
  {
    label: 'append one record to an open file (writeSync)',
    synced: false,
    async run(dir, ops) {
      const fd = fs.openSync(path.join(dir, 'appended'), 'ax');
      try {
        return await timedWithSystem(async () => {
          for (let i = 0; i < ops; i++) fs.writeSync(fd, record, 0, RECORD_BYTES, i * RECORD_BYTES);
        });
      } finally {
        fs.closeSync(fd);
      }
    },
  },
  {
    label: "create a chunk file ('ax'), write one record, close",
    synced: false,
    run: (dir, ops) =>
      timedWithSystem(async () => {
        for (let i = 0; i < ops; i++) {
          const fd = fs.openSync(fileName(dir, i), 'ax');
          fs.writeSync(fd, record, 0, RECORD_BYTES, 0);
          fs.closeSync(fd);
        }
      }),
  },
  {
    label: 'delete a chunk file (unlinkSync)',
    synced: false,
    async run(dir, ops) {
      for (let i = 0; i < ops; i++) fs.writeFileSync(fileName(dir, i), record);
      return timedWithSystem(async () => {
        for (let i = 0; i < ops; i++) fs.unlinkSync(fileName(dir, i));
      });
    },
  },
  {
    label: 'append one record + fdatasync',
    synced: true,
    async run(dir, ops) {
      const fd = fs.openSync(path.join(dir, 'appended'), 'ax');
      try {
        return await timedWithSystem(async () => {
          for (let i = 0; i < ops; i++) {
            fs.writeSync(fd, record, 0, RECORD_BYTES, i * RECORD_BYTES);
            fs.fdatasyncSync(fd);
          }
        });
      } finally {
        fs.closeSync(fd);
      }
    },
  },
  {
    label: 'create a chunk file + write + fdatasync + fsync of the directory',
    synced: true,
    async run(dir, ops) {
      const dirFd = fs.openSync(dir, 'r');
      try {
        return await timedWithSystem(async () => {
          for (let i = 0; i < ops; i++) {
            const fd = fs.openSync(fileName(dir, i), 'ax');
            fs.writeSync(fd, record, 0, RECORD_BYTES, 0);
            fs.fdatasyncSync(fd);
            fs.closeSync(fd);
            fs.fsyncSync(dirFd);
          }
        });
      } finally {
        fs.closeSync(dirFd);
      }
    },
  },
];

async function run(context: BenchContext): Promise<void> {
  const plan = { repeats: context.quick ? QUICK_REPEATS : REPEATS, warmups: 1 };
  const opsOf = (step: Step): number => (step.synced ? (context.quick ? QUICK_SYNCED_OPS : SYNCED_OPS) : context.quick ? QUICK_OPS : OPS);
  const system: number[][] = STEPS.map(() => []);
  progress(`files: ${STEPS.length} steps taking turns, ${plan.repeats} runs each`);
  const series = await measureInterleaved(
    plan,
    STEPS.map((step, index) => (dir: string) => {
      systemSink = system[index];
      return step.run(dir, opsOf(step));
    }),
  );
  const rows: string[][] = [];
  const perOp = new Map<string, number>();
  for (const [index, step] of STEPS.entries()) {
    const ops = opsOf(step);
    const total = series[index];
    const perOpSeries = {
      median: total.median / ops,
      min: total.min / ops,
      max: total.max / ops,
      samples: total.samples.map((x) => x / ops),
    };
    perOp.set(step.label, perOpSeries.median);
    // The warm-up's CPU time is dropped with the first entry.
    const systemPerRun = median(system[index].slice(plan.warmups));
    const kernel = systemPerRun < MIN_SYSTEM_SECONDS ? 'too small to count' : formatSeconds(systemPerRun / ops);
    rows.push([step.label, formatCount(ops), formatSecondsSeries(perOpSeries), kernel, formatRate(1 / perOpSeries.median)]);
  }
  const append = perOp.get(STEPS[0].label) ?? 0;
  const create = perOp.get(STEPS[1].label) ?? 0;
  const unlink = perOp.get(STEPS[2].label) ?? 0;
  printTable({
    title: 'File system costs in the temp dir (no perq)',
    columns: ['step', 'ops per run', 'time per op, median (min–max)', 'kernel CPU per op', 'ops/s'],
    rows,
    notes: [
      `Median of ${plan.repeats} runs after 1 warm-up, the rows taking turns, each in a fresh directory; ${RECORD_BYTES}-byte records (a 100-byte item with its header).`,
      'Kernel CPU is the system time of the process (process.cpuUsage) in the timed section: time the kernel spends computing, not waiting for the disk.',
      `Creating and later deleting a chunk costs ${formatSeconds(create + unlink)}, about ${((create + unlink) / Math.max(append, Number.MIN_VALUE)).toFixed(0)} appends;` +
        ` at chunkSize ${DEFAULT_CHUNK_SIZE} that is ${formatSeconds((create + unlink) / DEFAULT_CHUNK_SIZE)} per item.`,
    ],
  });
}

export const files: BenchGroup = {
  name: 'files',
  title: 'file system costs of the temp dir: append, create, delete, fdatasync',
  run,
};
