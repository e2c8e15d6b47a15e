// Runs perq's benchmarks and prints their tables as markdown on stdout
// (progress goes to stderr). `npm run bench` builds and runs everything.
// Usage: node --expose-gc dist/benchmarks/run.js [--quick] [group ...]
// Groups: throughput, producers, memory, table, drain, wakeups, processes, files.

import { files } from './files.js';
import {
  describeMachine,
  formatSeconds,
  gcExposed,
  removeTempDirs,
  settleFileCreation,
  type BenchContext,
  type BenchGroup,
} from './harness.js';
import { memory } from './memory.js';
import { persistQueueTable } from './persist-queue-table.js';
import { processes } from './processes.js';
import { producers } from './producers.js';
import { drain, throughput } from './throughput.js';
import { wakeups } from './wakeups.js';

// Groups that create many files and delete none come first, those that
// delete many later, files last (its deletion step alone frees 20,000
// inodes): freed inodes make creating files dearer for minutes after on the
// file system measured here (see harness.withTempDir).
const GROUPS: readonly BenchGroup[] = [throughput, producers, memory, persistQueueTable, drain, wakeups, processes, files];
const MS_PER_S = 1000;
/** Wide enough for the longest group name, so the usage text lines up. */
const GROUP_NAME_WIDTH = 11;

function usage(): string {
  return [
    'usage: node --expose-gc dist/benchmarks/run.js [--quick] [group ...]',
    '  --quick   fewer repeats and smaller N: a smoke run',
    '  group     run only these groups:',
    ...GROUPS.map((group) => `              ${group.name.padEnd(GROUP_NAME_WIDTH)} ${group.title}`),
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage());
    return;
  }
  const unknownFlags = args.filter((arg) => arg.startsWith('-') && arg !== '--quick');
  const names = args.filter((arg) => !arg.startsWith('-'));
  const unknownGroups = names.filter((name) => !GROUPS.some((group) => group.name === name));
  if (unknownFlags.length > 0 || unknownGroups.length > 0) {
    console.error(`unknown ${[...unknownFlags, ...unknownGroups].join(', ')}\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const context: BenchContext = { quick: args.includes('--quick') };
  const selected = names.length === 0 ? GROUPS : GROUPS.filter((group) => names.includes(group.name));
  if (!gcExposed()) console.error('warning: run node with --expose-gc so that runs start from a collected heap');

  console.log(`## perq benchmarks${context.quick ? ' (--quick: fewer repeats, smaller N)' : ''}\n`);
  console.log(`${describeMachine().join('\n')}\n`);
  const start = performance.now();
  try {
    for (const group of selected) {
      process.stderr.write(`${group.name}: ${group.title}\n`);
      const settled = await settleFileCreation(context);
      const waited = settled.waitedMs >= MS_PER_S ? `, after waiting ${formatSeconds(settled.waitedMs / MS_PER_S)}` : '';
      console.log(`_${group.name}: creating a file cost ${settled.createUs.toFixed(0)} µs when the group started${waited}._\n`);
      const groupStart = performance.now();
      await group.run(context);
      process.stderr.write(`${group.name}: done in ${formatSeconds((performance.now() - groupStart) / MS_PER_S)}\n`);
    }
  } finally {
    removeTempDirs();
  }
  console.log(`Total run time: ${formatSeconds((performance.now() - start) / MS_PER_S)}.`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
