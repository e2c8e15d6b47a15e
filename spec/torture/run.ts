// npm run torture [-- options]: the whole torture suite, printing one line per
// case, then "N passed, N failed" and the lost / phantom / wrong / duplicate
// counts. Exit code 1 when a case failed.
//
//   --kills N       SIGKILLs in all (default 240; 60 % one process, 40 % 2+2)
//   --seed S        replay a run (or PERQ_SEED); printed at the start
//   --only LIST     some of kill,damage,fuzz,disk (comma separated)
//   --case C        one kill run alone: single:<op> (open, put, putMany, get,
//                   getMany, taskDone, clear, close) or multi, with --seed
//                   and --kills as that case printed them
//   --runs N        fast-check runs per property (default 300)
//   --variants N    random damages per file and kind (default 3)
//   --parallel N    kill runs at once (default 2)
//   --tmp DIR       where queues go (default the OS temp dir)
//   --quiet         print failed cases only

import os from 'node:os';
import { damageSuite } from './damage.js';
import { diskSuite } from './disk.js';
import { fuzzSuite } from './fuzz.js';
import { WorkerPool, killSuite, multiProcessRun, singleProcessRun } from './kill.js';
import { OPS, type OpName } from './killswitch.js';
import { random, seedFrom } from './random.js';
import { describeResult, summary, type CaseResult } from './report.js';

export interface TortureOptions {
  seed: number;
  kills: number;
  only: Set<string>;
  runs: number;
  variants: number;
  parallel: number;
  tmp: string;
}

/** Runs the suites asked for; `log` sees each case as it ends. */
export async function torture(options: TortureOptions, log: (result: CaseResult) => void): Promise<CaseResult[]> {
  const r = random(options.seed);
  const seeds = { kill: r.seed(), damage: r.seed(), fuzz: r.seed() };
  const results: CaseResult[] = [];
  const keep = (result: CaseResult): void => {
    results.push(result);
    log(result);
  };
  if (options.only.has('fuzz')) await fuzzSuite({ seed: seeds.fuzz, numRuns: options.runs, tmp: options.tmp }, keep);
  if (options.only.has('damage')) await damageSuite(seeds.damage, options.variants, options.tmp, keep);
  if (options.only.has('disk')) await diskSuite(options.tmp, keep);
  if (options.only.has('kill') && options.kills > 0) await killSuite(seeds.kill, options.kills, options.tmp, keep, options.parallel);
  return results;
}

function option(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
}

async function main(argv: readonly string[]): Promise<number> {
  const seed = seedFrom(argv);
  const number = (name: string, fallback: number): number => {
    const text = option(argv, name);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} takes a whole number, got ${text}`);
    return n;
  };
  const quiet = argv.includes('--quiet');
  const print = (result: CaseResult): void => {
    if (!quiet || !result.passed) console.log(describeResult(result));
  };
  const kills = number('--kills', 240);
  const tmp = option(argv, '--tmp') ?? os.tmpdir();
  const started = performance.now();
  let results: CaseResult[];
  const only = option(argv, '--case');
  if (only !== undefined) {
    console.log(`torture case ${only}, seed ${seed}, ${kills} kills`);
    const pool = new WorkerPool(1);
    try {
      if (only === 'multi') results = await multiProcessRun(pool, seed, kills, tmp);
      else {
        const op = only.replace(/^single:/, '') as OpName;
        if (!OPS.includes(op)) throw new Error(`--case takes single:<${OPS.join('|')}> or multi, got ${only}`);
        results = await singleProcessRun(pool, seed, op, kills, tmp);
      }
    } finally {
      pool.close();
    }
    for (const result of results) print(result);
  } else {
    const suites = new Set((option(argv, '--only') ?? 'kill,damage,fuzz,disk').split(','));
    console.log(`torture seed ${seed} (replay: npm run torture -- --seed ${seed}), ${kills} kills, suites ${[...suites].join(',')}`);
    results = await torture(
      {
        seed,
        kills,
        only: suites,
        runs: number('--runs', 300),
        variants: number('--variants', 3),
        parallel: Math.max(1, number('--parallel', 2)),
        tmp,
      },
      print,
    );
  }
  const { text, failed } = summary(results);
  console.log(text);
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s, seed ${seed})`);
  return failed > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error);
      process.exit(2);
    },
  );
}
