// Shared by the specs: real temporary directories, removed after each test,
// a way to run a fixture script in a real child process, and waiting for a
// condition to hold.

import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Where a temp dir's removal is registered: a test's context (`t`, removed
 * when the test ends) or, for a directory shared by a describe block,
 * `{ after }` from node:test (removed when the block ends).
 */
export interface Teardown {
  after(fn: () => unknown): void;
}

/** A fresh directory under the OS temp dir, removed when the test (or block) ends. */
export function tempDir(t: Teardown, prefix = 'perq-spec-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A fresh directory under the OS temp dir for a test that starts processes
 * or mounts in it: when the test ends, `teardown` runs first (kill them,
 * unmount), then the directory is removed, even when `teardown` fails.
 */
export function tempDirAfter(t: Teardown, prefix: string, teardown: () => unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(async () => {
    try {
      await teardown();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  return dir;
}

/** A path inside a fresh temporary directory that does not exist yet. */
export function tempQueueDir(t: TestContext, name = 'q'): string {
  return path.join(tempDir(t), name);
}

/** Forks `spec/fixtures/<name>.js` (compiled) with `args`, IPC enabled. */
export function forkFixture(name: string, args: string[], options: { silent?: boolean } = {}): ChildProcess {
  return fork(path.join(here, 'fixtures', `${name}.js`), args, { stdio: options.silent === false ? 'inherit' : 'pipe' });
}

/** Resolves with the exit code (or signal) of `child`. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Whether `child` is still running: it has neither exited nor been ended by a signal. */
export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` (SIGKILL unless told) to `child` unless it has exited already, then waits for it to exit. */
export async function killIfRunning(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (running(child)) child.kill(signal);
  await exited(child);
}

/** Names of the chunk files in `dir`, sorted. */
export function chunkFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.startsWith('chunk-'))
    .sort();
}

/** The process warnings emitted while the test runs (with their codes). */
export function collectWarnings(t: TestContext): Array<Error & { code?: string }> {
  const warnings: Array<Error & { code?: string }> = [];
  const onWarning = (warning: Error): number => warnings.push(warning);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  return warnings;
}

/**
 * Polls `check` every `pollMs` until it holds; fails after `timeoutMs` with
 * `what` (a string, or a function giving the state to report then).
 */
export async function waitFor(
  check: () => boolean,
  what: string | (() => string),
  { timeoutMs = 10_000, pollMs = 20 } = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(pollMs);
  }
}

/** Linux tells a zombie from a live process; elsewhere kill(pid, 0) is trusted. */
const HAVE_PROC = fs.existsSync('/proc/self/stat');

/** Whether process `pid` is still there: a zombie counts as gone once its last thread has exited. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (!HAVE_PROC) return true;
  try {
    // A zombie (exited, not yet reaped by its parent) is gone for our purposes once
    // its last thread has exited too: only then are its descriptors (and flocks) closed.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const zombie = stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
    return !zombie || fs.readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return false;
  }
}
