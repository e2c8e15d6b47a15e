// The handler of push-to-worker.ts. It runs in the detached worker process,
// which has no terminal, so it writes its results to the file named in the
// work. A handler is a module's default export: (work, context) => unknown.

import fs from 'node:fs';
import type { TaskContext } from '../lib/index.js';

export interface CountWords {
  text: string;
  /** The file to append the result to. */
  out: string;
}

/** Pretends each job takes a while, so the worker is seen outliving its pusher. */
const WORK_MS = 400;

export default async function countWords(work: CountWords, context: TaskContext): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, WORK_MS));
  const words = work.text.split(/\s+/).filter(Boolean).length;
  fs.appendFileSync(
    work.out,
    `${new Date().toISOString()} worker ${process.pid} (attempt ${context.attempt}): ${words} words in "${work.text}"\n`,
  );
}
