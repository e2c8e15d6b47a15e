// perq's main job in one command (`npm run demo`): jobs put by two producer
// processes flow through one queue directory to two consumer processes at
// the same time; a consumer SIGKILLed in the middle of a job loses nothing:
// the job it held goes to the other consumer at once, and a fresh consumer
// takes its place. At the end every job has been done, and each one by a
// consumer that acknowledged it exactly once.

import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from '../lib/index.js';

interface Job {
  producer: string;
  n: number;
}

type Message = { done: string } | { holding: string };

const self = fileURLToPath(import.meta.url);
const JOBS_PER_PRODUCER = 20;
/** Jobs the doomed consumer does before it is killed holding the next one. */
const DONE_BEFORE_CRASH = 4;

const name = (job: Job): string => `${job.producer}#${job.n}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function produce(dir: string, producer: string): Promise<void> {
  const queue = await Queue.open<Job>(dir);
  for (let n = 1; n <= JOBS_PER_PRODUCER; n++) {
    await queue.put({ producer, n });
    await sleep(20);
  }
  log(`producer ${producer}`, `put ${JOBS_PER_PRODUCER} jobs`);
  await queue.close();
}

async function consume(dir: string, label: string, crashAfter: number): Promise<void> {
  // pollInterval: a job put by another process is found within 100 ms.
  const queue = await Queue.open<Job>(dir, { pollInterval: 100 });
  let done = 0;
  process.on('message', () => void queue.close().then(() => process.exit(0)));
  for (;;) {
    let job: Job;
    try {
      job = await queue.get();
    } catch (error) {
      // Told to stop: close() ends the wait.
      if ((error as { code?: string }).code === 'ERR_QUEUE_CLOSED') return;
      throw error;
    }
    if (done === crashAfter) {
      log(`consumer ${label}`, `got ${name(job)} and is working on it...`);
      process.send?.({ holding: name(job) } satisfies Message);
      await new Promise(() => undefined); // working until killed
    }
    await sleep(30); // the work
    await queue.taskDone();
    done++;
    log(`consumer ${label}`, `did ${name(job)}`);
    process.send?.({ done: name(job) } satisfies Message);
  }
}

function log(role: string, message: string): void {
  console.log(`[${role} ${process.pid}] ${message}`);
}

function start(args: string[], onMessage: (message: Message, child: ChildProcess) => void = () => undefined): ChildProcess {
  const child = fork(self, args, { stdio: 'inherit' });
  child.on('message', (message) => onMessage(message as Message, child));
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perq-demo-'));
  console.log(`perq demo: two producers and two consumers on ${dir}\n`);
  const done: string[] = [];
  const consumers: ChildProcess[] = [];
  let held = '';
  const onMessage = (message: Message, child: ChildProcess): void => {
    if ('done' in message) {
      done.push(message.done);
      return;
    }
    held = message.holding;
    console.log(`[demo] SIGKILL to consumer ${child.pid}, which holds ${held} unacknowledged`);
    child.kill('SIGKILL');
    console.log('[demo] starting a fresh consumer in its place');
    consumers.push(start(['consumer', dir, 'C', 'Infinity'], onMessage));
  };
  try {
    consumers.push(start(['consumer', dir, 'A', String(DONE_BEFORE_CRASH)], onMessage));
    consumers.push(start(['consumer', dir, 'B', 'Infinity'], onMessage));
    const producers = ['P1', 'P2'].map((producer) => start(['producer', dir, producer]));
    await Promise.all(producers.map(exited));
    const total = 2 * JOBS_PER_PRODUCER;
    const deadline = performance.now() + 30_000;
    while (new Set(done).size < total && performance.now() < deadline) await sleep(50);
    for (const consumer of consumers) if (consumer.connected) consumer.send('stop');
    await Promise.all(consumers.map(exited));

    const expected = ['P1', 'P2'].flatMap((producer) => Array.from({ length: JOBS_PER_PRODUCER }, (_, i) => `${producer}#${i + 1}`));
    const once = expected.every((job) => done.filter((d) => d === job).length === 1) && done.length === total;
    console.log(`\n[demo] ${done.length} jobs acknowledged; ${held} was handed to another consumer after the crash`);
    console.log(`[demo] every job done exactly once: ${once ? 'yes' : 'NO'}`);
    if (!once) process.exitCode = 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const [role, dir, label, crashAfter] = process.argv.slice(2);
if (role === 'producer') await produce(dir, label);
else if (role === 'consumer') await consume(dir, label, Number(crashAfter));
else await main();
