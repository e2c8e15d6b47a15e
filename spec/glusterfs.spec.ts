// One queue directory on a real GlusterFS volume, used from two "hosts": a
// one-brick volume mounted twice through FUSE on this machine, each mount its
// own GlusterFS client with its own caches (spec/support/glusterfs.ts).
// Producers (child processes) reach the queue through mount A, consumers
// through mount B; some of each are SIGKILLed and restarted mid-run. At the
// end the queue is drained through mount A and checked from the logs: every
// put that resolved was acknowledged or drained exactly once (0 lost), nothing
// came out that was never put (0 phantom), no acknowledged item came out
// again, and no process met an error (ERR_CORRUPT: a consumer reading a chunk
// that its mount has not yet seen grow). Run under locking 'lockfile' and
// 'flock' (GlusterFS's locks translator makes a flock exclusive across its
// clients, checked here too). The volume keeps GlusterFS's default options.
//
// Needs glusterfs-server and glusterfs-client (.ci/install-glusterfs), root
// and /dev/fuse; without them these tests fail, saying what to install.
//
// A failure prints its seed; PERQ_SEED=<seed> replays that kill schedule
// (the timing of the processes themselves cannot be replayed).

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { Queue } from '../lib/index.js';
import type { LockingMode } from '../lib/options.js';
import { exited, forkFixture, running, sleep, tempDirAfter } from './helpers.js';
import { randomFrom, runSeed } from './support/schedule.js';
import { isNetworkFileSystem } from '../lib/store/coherence.js';
import {
  FUSE_SUPER_MAGIC,
  checkPrerequisites,
  isMounted,
  processRunning,
  startGlusterVolume,
  statfsType,
  type GlusterVolume,
} from './support/glusterfs.js';

const PRODUCERS = 3;
const CONSUMERS = 3;
/** Items each producer slot puts; a producer started in place of a killed one puts what that one had not. */
const ITEMS_PER_PRODUCER = 120;
/** ms a producer pauses between puts, so that production spans the kills. */
const PRODUCER_PAUSE_MS = 5;
/** As in the report this reproduces: consumers on another host poll. */
const POLL_INTERVAL_MS = 200;
/** The least perq allows: items of a consumer killed under 'lockfile' come back this long after. */
const STALE_AFTER_MS = 2000;
/** Processes are killed and restarted at random while the producers work, for at least this long... */
const CHAOS_MIN_MS = 3000;
/** ...and at most this long (after it, the producers left finish in peace). */
const CHAOS_MAX_MS = 15_000;
/** The pause between two kills is this plus up to as much again. */
const KILL_EVERY_MS = 300;
const SETTLE_TIMEOUT_MS = 60_000;

function readLines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0);
}

interface Member {
  child: ChildProcess;
  log: string;
  killed: boolean;
  done: boolean;
  /** Items a producer was asked to put. */
  count: number;
}

/** Producers through one mount, consumers through another, and what they report. */
class Run {
  readonly producers = new Map<string, Member>();
  readonly consumers: Member[] = [];
  readonly retired: Member[] = [];
  /** Errors the processes reported (ERR_CORRUPT and the like), and how the unexpected exits ended. */
  readonly errors: string[] = [];
  #generation = 0;

  constructor(
    readonly locking: LockingMode,
    readonly producerDir: string,
    readonly consumerDir: string,
    readonly logs: string,
  ) {}

  #watch(member: Member, name: string): void {
    member.child.on('message', (message: { done?: boolean; error?: { code: string; message: string } }) => {
      if (message.done === true) member.done = true;
      if (message.error !== undefined) this.errors.push(`${name}: ${message.error.code}: ${message.error.message}`);
    });
    member.child.once('exit', (code, signal) => {
      if (!member.killed && code !== 0) this.errors.push(`${name} exited (${code ?? signal}): ${this.stderr(member).slice(-2000)}`);
    });
    member.child.stderr?.pipe(fs.createWriteStream(`${member.log}.err`));
  }

  stderr(member: Member): string {
    try {
      return fs.readFileSync(`${member.log}.err`, 'utf8');
    } catch {
      return '';
    }
  }

  startProducer(slot: number, count = ITEMS_PER_PRODUCER): void {
    const id = `p${slot}.${this.#generation++}`;
    const log = path.join(this.logs, `producer-${id}.log`);
    const child = forkFixture('gluster-producer', [
      this.producerDir,
      id,
      String(count),
      this.locking,
      String(STALE_AFTER_MS),
      log,
      String(PRODUCER_PAUSE_MS),
    ]);
    const member = { child, log, killed: false, done: false, count };
    this.producers.set(id, member);
    this.#watch(member, `producer ${id}`);
  }

  /** Starts a consumer in `slot`; resolves once it has opened the queue, unless `waitReady` is false. */
  async startConsumer(slot: number, waitReady = true): Promise<void> {
    const name = `consumer-${slot}.${this.#generation++}`;
    const log = path.join(this.logs, `${name}.log`);
    const child = forkFixture('gluster-consumer', [this.consumerDir, this.locking, String(STALE_AFTER_MS), String(POLL_INTERVAL_MS), log]);
    const member = { child, log, killed: false, done: false, count: 0 };
    this.consumers[slot] = member;
    this.#watch(member, name);
    if (!waitReady) return;
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code, signal) =>
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${this.stderr(member)}`)),
      );
    });
  }

  async kill(member: Member): Promise<void> {
    member.killed = true;
    member.child.kill('SIGKILL');
    await exited(member.child);
  }

  async killAll(): Promise<void> {
    for (const member of [...this.producers.values(), ...this.consumers]) {
      if (running(member.child)) await this.kill(member);
    }
  }

  allConsumers(): Member[] {
    return [...this.consumers, ...this.retired];
  }

  /** Items whose put resolved, as "p n" keys; and per killed producer the one put that may have landed unlogged. */
  puts(): { resolved: Set<string>; maybe: Set<string> } {
    const resolved = new Set<string>();
    const maybe = new Set<string>();
    for (const [id, member] of this.producers) {
      const ns = readLines(member.log).map(Number);
      ns.forEach((n, i) => assert.equal(n, i, `producer ${id} logged its puts out of order`));
      for (const n of ns) resolved.add(`${id} ${n}`);
      if (member.killed && ns.length < member.count) maybe.add(`${id} ${ns.length}`);
    }
    return { resolved, maybe };
  }

  /** Keys some consumer logged as got. */
  gotKeys(): Set<string> {
    const keys = new Set<string>();
    for (const member of this.allConsumers()) {
      for (const line of readLines(member.log)) if (line.startsWith('got ')) keys.add(line.slice(4));
    }
    return keys;
  }
}

interface Outcome {
  resolved: number;
  acked: number;
  drained: number;
  inDoubt: number;
  redelivered: number;
  killedConsumers: number;
  killedProducers: number;
}

/** Checks the logs and the drained items against what was put; throws naming the first few problems. */
function check(run: Run, drained: string[], seed: number): Outcome {
  const { resolved, maybe } = run.puts();
  const acks = new Map<string, number>();
  const gets = new Map<string, number>();
  /** Items whose consumer was killed between "acking" and "ack": acknowledged or not, either is right. */
  const inDoubt = new Set<string>();
  for (const member of run.allConsumers()) {
    const lines = readLines(member.log);
    const open = new Map<string, string>();
    for (const line of lines) {
      const space = line.indexOf(' ');
      const kind = line.slice(0, space);
      const key = line.slice(space + 1);
      if (kind === 'got') gets.set(key, (gets.get(key) ?? 0) + 1);
      if (kind === 'ack') acks.set(key, (acks.get(key) ?? 0) + 1);
      if (kind === 'got' || kind === 'acking') open.set(key, kind);
      if (kind === 'ack') open.delete(key);
    }
    for (const [key, kind] of open) {
      if (!member.killed) assert.fail(`${path.basename(member.log)} was not killed yet never acknowledged ${key} (seed ${seed})`);
      if (kind === 'acking') inDoubt.add(key);
    }
  }
  const drainedCount = new Map<string, number>();
  for (const key of drained) drainedCount.set(key, (drainedCount.get(key) ?? 0) + 1);

  const problems: string[] = [];
  const seen = new Set([...gets.keys(), ...drainedCount.keys()]);
  for (const key of seen) {
    if (!resolved.has(key) && !maybe.has(key)) problems.push(`phantom: ${key} came out but was never put`);
    const done = (acks.get(key) ?? 0) + (drainedCount.get(key) ?? 0);
    if (done > 1)
      problems.push(`duplicate: ${key} acknowledged ${acks.get(key) ?? 0} times and drained ${drainedCount.get(key) ?? 0} times`);
  }
  for (const key of resolved) {
    const done = (acks.get(key) ?? 0) + (drainedCount.get(key) ?? 0);
    if (done === 0 && !inDoubt.has(key))
      problems.push(
        `lost: ${key} (put resolved) was never acknowledged nor drained${gets.has(key) ? ` (got ${gets.get(key)} times)` : ''}`,
      );
  }
  if (problems.length > 0) assert.fail(`${problems.length} problems (seed ${seed}):\n${problems.slice(0, 15).join('\n')}`);
  return {
    resolved: resolved.size,
    acked: [...acks.values()].reduce((a, b) => a + b, 0),
    drained: drained.length,
    inDoubt: inDoubt.size,
    redelivered: [...gets.values()].filter((count) => count > 1).length,
    killedConsumers: run.allConsumers().filter((m) => m.killed).length,
    killedProducers: [...run.producers.values()].filter((m) => m.killed).length,
  };
}

/** Gets and acknowledges everything left (waiting for leases of killed consumers to go stale); the keys drained. */
async function drain(dir: string, locking: LockingMode): Promise<string[]> {
  const queue = await Queue.open<{ p: string; n: number }>(dir, { locking, staleAfter: STALE_AFTER_MS, pollInterval: POLL_INTERVAL_MS });
  const keys: string[] = [];
  try {
    for (;;) {
      let item: { p: string; n: number };
      try {
        item = await queue.get({ timeout: STALE_AFTER_MS + 1500 });
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_EMPTY') break;
        throw error;
      }
      keys.push(`${item.p} ${item.n}`);
      await queue.taskDone();
    }
    assert.equal(queue.size, 0);
  } finally {
    await queue.close();
  }
  return keys;
}

async function producersAndConsumers(t: TestContext, volume: GlusterVolume, locking: LockingMode): Promise<void> {
  const [mountA, mountB] = volume.mountPoints;
  const name = `q-${locking}`;
  const runs: Run[] = [];
  const logs = tempDirAfter(t, 'perq-gluster-logs-', () => Promise.all(runs.map((each) => each.killAll())));
  const run = new Run(locking, path.join(mountA, name), path.join(mountB, name), logs);
  runs.push(run);
  const seed = runSeed();
  const random = randomFrom(seed);
  const failWithErrors = () => {
    if (run.errors.length > 0) assert.fail(`a process failed (seed ${seed}):\n${run.errors.slice(0, 5).join('\n')}`);
  };

  // The queue is created through mount A before anyone opens it through B.
  await (await Queue.open(run.producerDir, { locking, staleAfter: STALE_AFTER_MS })).close();
  for (let slot = 0; slot < CONSUMERS; slot++) await run.startConsumer(slot);
  for (let slot = 0; slot < PRODUCERS; slot++) run.startProducer(slot);

  const started = performance.now();
  const phases: string[] = [];
  const phase = (name: string) => phases.push(`${name} ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const producing = () => [...run.producers.values()].some((m) => !m.killed && !m.done);
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed > CHAOS_MAX_MS || (elapsed > CHAOS_MIN_MS && !producing())) break;
    await sleep(KILL_EVERY_MS + random(KILL_EVERY_MS));
    failWithErrors();
    if (random(3) === 0) {
      const live = [...run.producers.entries()].filter(([, m]) => !m.killed && !m.done);
      if (live.length === 0) continue;
      const [id, member] = live[random(live.length)];
      await run.kill(member);
      // Its replacement puts what it had not (its one unlogged put may have landed: it counts as its own).
      const left = member.count - readLines(member.log).length - 1;
      if (left > 0) run.startProducer(Number(id.slice(1, id.indexOf('.'))), left);
    } else {
      const slot = random(CONSUMERS);
      const member = run.consumers[slot];
      await run.kill(member);
      run.retired.push(member);
      await run.startConsumer(slot, false);
    }
  }

  phase('chaos over');
  // Every live producer finishes; the consumers get what they can (items of
  // killed consumers come back once their leases are seen dead).
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  while ([...run.producers.values()].some((m) => !m.killed && !m.done)) {
    failWithErrors();
    assert.ok(performance.now() < deadline, `producers did not finish (seed ${seed})`);
    await sleep(100);
  }
  phase('producers done');
  let lastGot = -1;
  for (;;) {
    failWithErrors();
    const got = run.gotKeys();
    const missing = [...run.puts().resolved].filter((key) => !got.has(key)).length;
    if (missing === 0) break;
    // Not everything need be got by a consumer (the drain takes the rest), but wait while they make progress.
    if (got.size === lastGot) break;
    lastGot = got.size;
    assert.ok(performance.now() < deadline, `consumers stopped making progress (seed ${seed})`);
    await sleep(STALE_AFTER_MS);
  }
  for (const member of [...run.producers.values(), ...run.consumers]) {
    if (member.killed) continue;
    member.child.send('stop');
    await exited(member.child);
  }
  failWithErrors();
  phase('consumers stopped');

  const drained = await drain(run.producerDir, locking);
  phase('drained');
  const outcome = check(run, drained, seed);
  t.diagnostic(
    `seed ${seed}: ${outcome.resolved} puts resolved; ${outcome.acked} acknowledged by consumers, ${outcome.drained} drained at the end, ` +
      `${outcome.inDoubt} in doubt (consumer killed inside taskDone); ${outcome.redelivered} handed out more than once; ` +
      `${outcome.killedConsumers} consumers and ${outcome.killedProducers} producers SIGKILLed; ${phases.join(', ')}`,
  );
}

/** Waits for a child's first message. */
function firstMessage(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code, signal) => reject(new Error(`exited (${code ?? signal}) before it said anything`)));
  });
}

describe('a queue on a GlusterFS volume mounted twice (two clients, as two hosts)', () => {
  let volume: GlusterVolume | undefined;
  before(async () => {
    volume = await startGlusterVolume();
  });
  after(async () => {
    await volume?.stop();
  });
  const current = (): GlusterVolume => {
    assert.ok(volume, 'the volume did not start');
    return volume;
  };

  test('each mount is a FUSE client of its own on the one brick', () => {
    const [a, b] = current().mountPoints;
    for (const dir of [a, b]) {
      assert.ok(isMounted(dir));
      // What perq can test to know it is on FUSE (sshfs says the same).
      assert.equal(statfsType(dir), FUSE_SUPER_MAGIC);
      // ...and what it does test: a FUSE magic is no known local type, so mountinfo names it.
      assert.equal(isNetworkFileSystem(dir), true);
    }
    assert.equal(isNetworkFileSystem(os.tmpdir()), false);
    assert.notEqual(fs.statSync(a).dev, fs.statSync(b).dev);
    fs.writeFileSync(path.join(a, 'hello'), 'through A');
    assert.equal(fs.readFileSync(path.join(b, 'hello'), 'utf8'), 'through A');
    assert.equal(fs.readFileSync(path.join(current().brick, 'hello'), 'utf8'), 'through A');
  });

  test('a flock taken through mount A excludes one through mount B, and is released when its holder is SIGKILLed', async () => {
    const [a, b] = current().mountPoints;
    const dir = path.join(a, 'flock-check');
    fs.mkdirSync(dir);
    const holder = forkFixture('unit-lock-holder', [dir, 'flock']);
    try {
      assert.deepEqual(await firstMessage(holder), { locked: true });
      const fdB = fs.openSync(path.join(b, 'flock-check', 'lock'), 'a');
      const fsExt = (await import('fs-ext')).default;
      try {
        assert.throws(() => fsExt.flockSync(fdB, 'exnb'), { code: 'EAGAIN' });
        holder.kill('SIGKILL');
        await exited(holder);
        // The holder's client lets the lock go as the kernel closes its descriptor.
        const deadline = Date.now() + 5000;
        for (;;) {
          try {
            fsExt.flockSync(fdB, 'exnb');
            break;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > deadline) throw error;
            await sleep(20);
          }
        }
        fsExt.flockSync(fdB, 'un');
      } finally {
        fs.closeSync(fdB);
      }
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test("what B's client caches: a write through A, fdatasync'd, is seen through B once B lists the directory (and fstats the file), an in-place rewrite only if it also changed the file's length", async (t) => {
    const [a, b] = current().mountPoints;
    fs.mkdirSync(path.join(a, 'caches'));
    // A listing longer than one page of FUSE readdirplus, as a queue with its spares.
    for (let i = 0; i < 70; i++) fs.writeFileSync(path.join(a, 'caches', `spare-${i}`), '');
    const listB = () => fs.readdirSync(path.join(b, 'caches'));
    const ROUNDS = 150;
    const buffer = Buffer.alloc(65536);
    /** What B reads through its descriptor from `offset`, as perq's chunk reader does (until a read returns 0). */
    const readFrom = (fd: number, offset: number): number => {
      let done = 0;
      for (let n = -1; n !== 0 && done < buffer.length; done += n) n = fs.readSync(fd, buffer, done, buffer.length - done, offset + done);
      return done;
    };

    // Appends (a chunk): B's descriptor stays open, as perq's reader's does.
    const RECORD = 50;
    const chunkA = fs.openSync(path.join(a, 'caches', 'chunk'), 'w+');
    fs.writeSync(chunkA, Buffer.alloc(RECORD, 0xff), 0, RECORD, 0);
    fs.fdatasyncSync(chunkA);
    const chunkB = fs.openSync(path.join(b, 'caches', 'chunk'), 'r');
    readFrom(chunkB, 0);
    let appendsSeenAtOnce = 0;
    for (let i = 1; i <= ROUNDS; i++) {
      const record = Buffer.alloc(RECORD, i % 251);
      record.writeUInt32LE(i, 0);
      fs.writeSync(chunkA, record, 0, RECORD, i * RECORD);
      fs.fdatasyncSync(chunkA);
      if (readFrom(chunkB, i * RECORD) >= RECORD && buffer.readUInt32LE(0) === i) appendsSeenAtOnce++;
      listB();
      assert.ok(readFrom(chunkB, i * RECORD) >= RECORD && buffer.readUInt32LE(0) === i, `append ${i} not seen through B after a listing`);
      assert.equal(fs.fstatSync(chunkB).size, (i + 1) * RECORD);
    }
    fs.closeSync(chunkA);
    fs.closeSync(chunkB);

    // In-place rewrites (the state file's two slots), with and without a change of length.
    const SIZE = 8 + 2 * 4096;
    const rewrites = (name: string, changeLength: boolean): number[] => {
      const fileA = fs.openSync(path.join(a, 'caches', name), 'w+');
      fs.writeSync(fileA, Buffer.alloc(SIZE), 0, SIZE, 0);
      fs.fdatasyncSync(fileA);
      const fileB = fs.openSync(path.join(b, 'caches', name), 'r');
      const stale: number[] = [];
      for (let gen = 1; gen <= ROUNDS; gen++) {
        const slot = Buffer.alloc(16);
        slot.writeDoubleLE(gen, 0);
        fs.writeSync(fileA, slot, 0, slot.length, 8 + (gen % 2) * 4096);
        if (changeLength) fs.ftruncateSync(fileA, SIZE + (gen % 2));
        fs.fdatasyncSync(fileA);
        listB();
        // The listing's attributes can lose to an invalidation GlusterFS sends at the same time: fstat fetches them again.
        fs.fstatSync(fileB);
        fs.readSync(fileB, buffer, 0, SIZE, 0);
        if (Math.max(buffer.readDoubleLE(8), buffer.readDoubleLE(8 + 4096)) !== gen) stale.push(gen);
      }
      fs.closeSync(fileA);
      fs.closeSync(fileB);
      return stale;
    };
    assert.deepEqual(rewrites('state-length-changes', true), [], 'rewrites that changed the length, not seen through B after a listing');
    const staleSameLength = rewrites('state-same-length', false);
    t.diagnostic(
      `without a listing, B saw ${appendsSeenAtOnce} of ${ROUNDS} fdatasync'd appends at once; ` +
        `after a listing, B still read ${staleSameLength.length} of ${ROUNDS} same-length rewrites stale`,
    );
  });

  for (const locking of ['lockfile', 'flock'] as const) {
    test(`locking '${locking}': producers through mount A and consumers through mount B, some SIGKILLed, lose nothing, invent nothing and read no damage`, async (t) => {
      await producersAndConsumers(t, current(), locking);
    });
  }
});

describe('startGlusterVolume', () => {
  test('stop unmounts and ends glusterd, the brick and the clients, leaving no temp dir', async () => {
    const volume = await startGlusterVolume({ mounts: 1 });
    const pids = volume.pids();
    const mountPoint = volume.mountPoints[0];
    try {
      assert.ok(pids.length >= 3, `glusterd, the brick and a client: ${pids.join(', ')}`);
      fs.writeFileSync(path.join(mountPoint, 'kept'), 'x');
    } finally {
      await Promise.all([volume.stop(), volume.stop()]);
      await volume.stop();
    }
    assert.equal(isMounted(mountPoint), false);
    assert.equal(fs.existsSync(mountPoint), false);
    assert.equal(fs.existsSync(path.dirname(volume.brick)), false);
    for (const pid of pids) {
      const running = processRunning(pid);
      assert.ok(running === undefined || !running.comm.startsWith('gluster'), `process ${pid} (${running?.comm}) is still running`);
    }
  });

  test('names what to install when GlusterFS is missing', () => {
    assert.throws(
      () => checkPrerequisites('/nonexistent'),
      /^Error: GlusterFS not installed .*apt-get install -y glusterfs-server glusterfs-client/,
    );
  });
});
