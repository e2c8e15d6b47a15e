// The fresh process that opens a queue directory after a power cut and
// drains it: gets every item (without acknowledging any), checks each
// against what it should be, closes (which hands them all back), reopens to
// see they are all still waiting, and reports over IPC. The queue is left as
// the cut left it, for the next run of workers to go on with.
// Usage: drain <JSON DrainConfig>

import { Queue, QueueError } from '../../lib/index.js';
import { checkItem } from './items.js';
import type { DrainConfig, DrainReport } from './protocol.js';

/** Items asked for per getMany. */
const BATCH = 1000;

const config = JSON.parse(process.argv[2]) as DrainConfig;
const result: DrainReport = { keys: [], wrong: [], warnings: {} };
process.on('warning', (warning) => {
  const code = (warning as { code?: string }).code ?? warning.name;
  result.warnings[code] = (result.warnings[code] ?? 0) + 1;
});

type Stage = NonNullable<DrainReport['stuck']>['stage'];
type Repairable = { repair?: (dir: string) => Promise<unknown> };

function stuck(stage: Stage, error: unknown): NonNullable<DrainReport['stuck']> {
  const e = error as Partial<QueueError> & { file?: string; offset?: number };
  return { stage, code: e?.code ?? 'ERROR', message: e?.message ?? String(error), file: e?.file, offset: e?.offset };
}

/** Opens, gets everything, closes; returns what stopped it, if something did. */
async function drainOnce(): Promise<NonNullable<DrainReport['stuck']> | undefined> {
  result.keys = [];
  result.wrong = [];
  let queue: Queue;
  try {
    queue = await Queue.open(config.dir, { fsync: config.fsync });
  } catch (error) {
    return stuck('open', error);
  }
  try {
    for (;;) {
      let values: unknown[];
      try {
        values = await queue.getMany(BATCH, { timeout: 0 });
      } catch (error) {
        if (error instanceof QueueError && error.code === 'ERR_EMPTY') break;
        return stuck('drain', error);
      }
      for (const value of values) {
        const checked = checkItem(value);
        if ('key' in checked) result.keys.push(checked.key);
        else result.wrong.push(checked.wrong);
      }
    }
  } finally {
    await queue.close().catch(() => undefined);
  }
  return undefined;
}

let failure = await drainOnce();
// Damage that open or get reports, with a way forward: the queue's own repair, where it has one.
const repair = (Queue as unknown as Repairable).repair;
if (failure !== undefined && failure.code === 'ERR_CORRUPT' && typeof repair === 'function') {
  try {
    const damage = `${failure.stage}: ${failure.message} (${failure.file ?? '?'} @${failure.offset ?? '?'})`;
    result.repaired = { damage, report: JSON.stringify(await repair.call(Queue, config.dir)).slice(0, 300) };
    failure = await drainOnce();
  } catch (error) {
    failure = stuck('repair', error);
  }
}
if (failure === undefined) {
  // Everything got without taskDone must be waiting again for the next open.
  try {
    const queue = await Queue.open(config.dir, { fsync: config.fsync });
    const size = queue.size;
    await queue.close();
    const drained = result.keys.length + result.wrong.length;
    if (size !== drained)
      failure = { stage: 'reopen', code: 'SIZE', message: `reopened with size ${size} after ${drained} items were got without taskDone` };
  } catch (error) {
    failure = stuck('reopen', error);
  }
}
result.stuck = failure;
// Let warnings emitted on the last ticks arrive.
await new Promise((resolve) => setImmediate(resolve));
process.send?.(result, () => process.exit(0));
