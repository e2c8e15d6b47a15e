// Push work to a detached worker and exit at once:
//   node dist/examples/push-to-worker.js [dir]
// The first push starts a worker process that goes on after this script has
// exited; it works through the queue (writing results to a file), then exits
// itself. Run the script twice in a row: the second run's work is taken by
// the worker the first run started, if it still runs.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { taskQueue } from '../lib/index.js';
import type { CountWords } from './push-to-worker-handler.js';

const dir = path.resolve(process.argv[2] ?? path.join(os.tmpdir(), 'perq-push-to-worker'));
fs.mkdirSync(dir, { recursive: true });
const results = path.join(dir, 'results.txt');

const tasks = taskQueue<CountWords>(path.join(dir, 'tasks'), new URL('./push-to-worker-handler.js', import.meta.url), {
  logLevel: 'info',
  // Pushing a sentence that is still waiting adds nothing.
  unique: true,
});

const sentences = [
  'a persistent queue keeps its items in files',
  'the worker outlives the process that pushed the work',
  'a killed worker loses nothing',
  'a persistent queue keeps its items in files',
];
const started = performance.now();
const pushed = await tasks.push(...sentences.map((text) => ({ text, out: results })));
await tasks.close();

console.log(
  `pushed ${pushed.queued} jobs (${pushed.skipped} left out as already waiting) in ${Math.round(performance.now() - started)} ms`,
);
console.log(
  pushed.worker === 'started' ? `started worker process ${pushed.pid}` : 'a worker was already running; it takes the new jobs too',
);
console.log(`this process exits now; the worker writes a line per job (about ${(pushed.queued * 0.4).toFixed(1)} s) to`);
console.log(`  ${results}`);
console.log(`and logs what it does to`);
console.log(`  ${tasks.logFile}`);
console.log(`watch with: tail -f ${results}`);
