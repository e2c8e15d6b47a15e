// The scripts in examples/ run as documented: real processes, real output.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test, type TestContext } from 'node:test';
import { killIfRunning, tempDir, waitFor } from './helpers.js';

const examples = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples');

/** Starts an example script; its output is collected; it is killed when the test ends. */
function start(t: TestContext, name: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [path.join(examples, `${name}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  t.after(() => killIfRunning(child, 'SIGINT'));
  return { child, output: () => output };
}

describe('examples', () => {
  test('poll-sender and poll-receiver: messages put by one arrive at the other', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    const receiver = start(t, 'poll-receiver', [dir]);
    const sender = start(t, 'poll-sender', [dir]);
    await waitFor(
      () => /received: message 2 /.test(receiver.output()),
      () => `receiver said:\n${receiver.output()}\nsender said:\n${sender.output()}`,
      { timeoutMs: 15_000, pollMs: 50 },
    );
    assert.match(receiver.output(), /received: message 1 \(sent /);
  });

  test('notify-parent and its forked notify-child: jobs go out and answers come back, also after the child is killed', async (t) => {
    const root = tempDir(t);
    const parent = start(t, 'notify-parent', [root]);
    await waitFor(
      () => /\] 3² = 9 /.test(parent.output()),
      () => parent.output(),
      { timeoutMs: 15_000, pollMs: 50 },
    );
    const pid = Number(/forked worker (\d+)/.exec(parent.output())?.[1]);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      () => /forking a new one/.test(parent.output()),
      () => parent.output(),
      { timeoutMs: 5000, pollMs: 50 },
    );
    const answered = (parent.output().match(/² = /g) ?? []).length;
    await waitFor(
      () => (parent.output().match(/² = /g) ?? []).length >= answered + 3,
      () => parent.output(),
      { timeoutMs: 15_000, pollMs: 50 },
    );
    const squares = [...parent.output().matchAll(/\] (\d+)² = (\d+) /g)].map((m) => [Number(m[1]), Number(m[2])]);
    for (const [n, square] of squares) assert.equal(square, n * n);
  });
});
