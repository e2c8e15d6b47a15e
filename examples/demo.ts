// perq's main job in one command (`npm run demo`): jobs put by one process
// flow through a queue directory to another process, and survive that
// consumer being killed in the middle of a job.
//
// The parent forks a producer, then a consumer that is SIGKILLed while it
// holds an unacknowledged job, then a second producer and a fresh consumer
// that drains the queue. (Until perq's many-process locking lands, processes
// take turns on the directory; a second concurrent opener gets ERR_LOCKED.)

import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from '../lib/index.js';

interface Job {
  id: number;
  text: string;
}

type Message = { done: number } | { holding: number };

const self = fileURLToPath(import.meta.url);
/** Jobs acknowledged by the first consumer before it is killed mid-job. */
const DONE_BEFORE_CRASH = 3;

async function produce(dir: string, from: number, to: number): Promise<void> {
  const queue = await Queue.open<Job>(dir);
  for (let id = from; id <= to; id++) await queue.put({ id, text: `job ${id}` });
  log('producer', `put jobs ${from}..${to}; the queue holds ${queue.size}`);
  await queue.close();
}

async function consume(dir: string, limit: number): Promise<void> {
  const queue = await Queue.open<Job>(dir);
  let done = 0;
  while (!queue.empty()) {
    const job = await queue.get();
    if (done === limit) {
      log('consumer', `got job ${job.id} and is now working on it...`);
      process.send?.({ holding: job.id } satisfies Message);
      await new Promise(() => undefined); // working until killed
    }
    await queue.taskDone();
    done++;
    log('consumer', `did job ${job.id}`);
    process.send?.({ done: job.id } satisfies Message);
  }
  log('consumer', 'queue empty, exiting');
  await queue.close();
}

function log(role: string, message: string): void {
  console.log(`[${role} ${process.pid}] ${message}`);
}

/** Runs this file as a child in `role`; resolves with its messages once it exits. */
function child(role: string, args: string[], onMessage: (message: Message, kill: () => void) => void = () => undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = fork(self, [role, ...args], { stdio: 'inherit' });
    proc.on('message', (message) => onMessage(message as Message, () => proc.kill('SIGKILL')));
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (code === 0 || signal === 'SIGKILL') resolve();
      else reject(new Error(`${role} exited with ${code ?? signal}`));
    });
  });
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perq-demo-'));
  console.log(`perq demo: queue directory ${dir}\n`);
  const done: number[] = [];
  let held = -1;
  try {
    await child('producer', [dir, '1', '10']);
    await child('consumer', [dir, String(DONE_BEFORE_CRASH)], (message, kill) => {
      if ('done' in message) done.push(message.done);
      else {
        held = message.holding;
        console.log(`[demo] killing the consumer with SIGKILL while it holds job ${held}, unacknowledged`);
        kill();
      }
    });
    await child('producer', [dir, '11', '15']);
    await child('consumer', [dir, 'Infinity'], (message) => {
      if ('done' in message) done.push(message.done);
    });
    const expected = Array.from({ length: 15 }, (_, i) => i + 1);
    const ok = done.length === expected.length && expected.every((id, i) => done[i] === id);
    console.log(`\n[demo] jobs done, in order: ${done.join(' ')}`);
    console.log(`[demo] job ${held} was handed out again after the crash; every job was acknowledged exactly once, in order: ${ok ? 'yes' : 'NO'}`);
    if (!ok) process.exitCode = 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const [role, dir, a, b] = process.argv.slice(2);
if (role === 'producer') await produce(dir, Number(a), Number(b));
else if (role === 'consumer') await consume(dir, Number(a));
else await main();
