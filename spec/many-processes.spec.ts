// Many processes on one directory, end to end: real producer and consumer
// processes (child_process.fork), some SIGKILLed and restarted at random
// moments. Checked from their logs: nothing whose put resolved is lost,
// nothing appears that was not put, an item is delivered twice only when a
// consumer was killed holding it unacknowledged, and at the end the queue is
// empty. Run with 'flock' on the local path, and with 'lockfile' and polling
// where the consumers reach the directory through an sshfs mount (a real
// network file system: no flock shared with the local path, no inotify).
// A failure prints its seed; PERQ_SEED=<seed> replays that schedule.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Queue } from '../lib/index.js';
import type { LockingMode, QueueOptions } from '../lib/options.js';
import { exited, killIfRunning, forkFixture, sleep, tempDirAfter } from './helpers.js';
import { randomFrom, runSeed } from './support/schedule.js';
import { mountOverSsh } from './support/sshfs.js';

const PRODUCERS = 3;
const CONSUMERS = 3;
const ITEMS_PER_PRODUCER = 400;
/** How long processes are killed and restarted at random. */
const CHAOS_MS = 2500;
const ALL_DELIVERED_TIMEOUT_MS = 60_000;

interface Scenario {
  locking: LockingMode;
  staleAfter: number;
  pollInterval: number;
  /** The path producers open. */
  producerDir: string;
  /** The path consumers open (the same directory, perhaps through a mount). */
  consumerDir: string;
  logs: string;
  /** ms a producer pauses between puts, so that production spans the kills. */
  pause?: number;
  /** Items each producer puts (default ITEMS_PER_PRODUCER). */
  items?: number;
}

interface Member {
  child: ChildProcess;
  log: string;
  killed: boolean;
}

/**
 * A fresh root with a `logs` directory; when the test ends its processes are
 * killed, then `cleanUp` (an unmount) runs, then the root is removed, in that order.
 */
function testRoot(t: TestContext, runs: Run[], cleanUp: Array<() => Promise<void>>): { root: string; logs: string } {
  const root = tempDirAfter(t, 'perq-mp-', async () => {
    for (const run of runs) await run.killAll();
    for (const step of cleanUp) await step();
  });
  const logs = path.join(root, 'logs');
  fs.mkdirSync(logs);
  return { root, logs };
}

/** A child's stderr goes to `<log>.err`, for the failure messages. */
function keepStderr(child: ChildProcess, log: string): void {
  child.stderr?.pipe(fs.createWriteStream(`${log}.err`));
}

function readStderr(log: string): string {
  try {
    return fs.readFileSync(`${log}.err`, 'utf8');
  } catch {
    return '';
  }
}

interface Delivery {
  member: Member;
  at: number;
  ackedAt: number | undefined;
}

/** A consumer log line: "got <p> <n> <time>" or "ack <p> <n> <time>". */
function parseLine(line: string): { kind: string; key: string; time: number } {
  const [kind, p, n, time] = line.split(' ');
  return { kind, key: `${p} ${n}`, time: Number(time) };
}

function readLines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0);
}

class Run {
  readonly producers = new Map<string, Member>();
  readonly consumers: Member[] = [];
  readonly done = new Set<string>();
  #sc: Scenario;
  #generation = 0;

  constructor(sc: Scenario) {
    this.#sc = sc;
  }

  async killAll(): Promise<void> {
    for (const member of [...this.producers.values(), ...this.consumers]) {
      await killIfRunning(member.child);
    }
  }

  startProducer(slot: number): void {
    const id = `p${slot}.${this.#generation++}`;
    const log = path.join(this.#sc.logs, `producer-${id}.log`);
    const { locking, staleAfter, producerDir } = this.#sc;
    const child = forkFixture('mp-producer', [
      producerDir,
      id,
      String(this.#sc.items ?? ITEMS_PER_PRODUCER),
      locking,
      String(staleAfter),
      log,
      String(this.#sc.pause ?? 0),
    ]);
    child.on('message', (message) => {
      if ((message as { done?: boolean }).done) this.done.add(id);
    });
    this.producers.set(id, { child, log, killed: false });
    keepStderr(child, log);
  }

  /** Starts a consumer in `slot`; resolves once it has opened the queue, unless `waitReady` is false. */
  async startConsumer(slot: number, waitReady = true): Promise<void> {
    const log = path.join(this.#sc.logs, `consumer-${slot}.${this.#generation++}.log`);
    const { locking, staleAfter, pollInterval, consumerDir } = this.#sc;
    const child = forkFixture('mp-consumer', [consumerDir, locking, String(staleAfter), String(pollInterval), log]);
    this.consumers[slot] = { child, log, killed: false };
    keepStderr(child, log);
    if (!waitReady) return;
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code, signal) =>
        reject(new Error(`consumer exited (${code ?? signal}) before it was ready: ${readStderr(log)}`)),
      );
    });
  }

  async kill(member: Member): Promise<void> {
    member.killed = true;
    member.child.kill('SIGKILL');
    await exited(member.child);
  }

  /** Items whose put resolved, as "p n" keys. */
  resolvedPuts(): Set<string> {
    const keys = new Set<string>();
    for (const [id, member] of this.producers) {
      const ns = readLines(member.log).map(Number);
      ns.forEach((n, i) => assert.equal(n, i, `producer ${id} logged its puts out of order`));
      for (const n of ns) keys.add(`${id} ${n}`);
    }
    return keys;
  }

  deliveredKeys(): Set<string> {
    const keys = new Set<string>();
    for (const member of this.consumers.concat(this.#retired)) {
      for (const line of readLines(member.log).map(parseLine)) if (line.kind === 'got') keys.add(line.key);
    }
    return keys;
  }

  /** Consumers killed and replaced keep their logs for the checks. */
  #retired: Member[] = [];
  retire(member: Member): void {
    this.#retired.push(member);
  }

  allConsumers(): Member[] {
    return this.consumers.concat(this.#retired);
  }
}

async function runScenario(t: TestContext, run: Run, sc: Scenario, seed: number): Promise<void> {
  const random = randomFrom(seed);
  // Producers first, so that the directory exists before consumers open it (perhaps through a mount).
  const first = await Queue.open(sc.producerDir, { locking: sc.locking, staleAfter: sc.staleAfter });
  await first.close();
  for (let slot = 0; slot < CONSUMERS; slot++) await run.startConsumer(slot);
  for (let slot = 0; slot < PRODUCERS; slot++) run.startProducer(slot);

  const chaosEnd = performance.now() + CHAOS_MS;
  while (performance.now() < chaosEnd) {
    await sleep(50 + random(200));
    if (random(3) === 0) {
      const live = [...run.producers.entries()].filter(([id, m]) => !m.killed && !run.done.has(id));
      if (live.length === 0) continue;
      const [id, member] = live[random(live.length)];
      await run.kill(member);
      run.startProducer(Number(id.slice(1, id.indexOf('.'))));
    } else {
      const slot = random(CONSUMERS);
      const member = run.consumers[slot];
      await run.kill(member);
      run.retire(member);
      await run.startConsumer(slot, false);
    }
  }

  // Let every live producer finish, then wait for every resolved put to be delivered.
  const live = [...run.producers.entries()].filter(([, m]) => !m.killed);
  const deadline = performance.now() + ALL_DELIVERED_TIMEOUT_MS;
  while (live.some(([id]) => !run.done.has(id))) {
    assert.ok(performance.now() < deadline, `producers did not finish (seed ${seed})`);
    await sleep(50);
  }
  for (;;) {
    const missing = [...run.resolvedPuts()].filter((key) => !run.deliveredKeys().has(key));
    if (missing.length === 0) break;
    assert.ok(
      performance.now() < deadline,
      `never delivered (seed ${seed}): ${missing.slice(0, 10).join(', ')} (${missing.length} in all)`,
    );
    await sleep(100);
  }
  // Items a killed producer put without logging, and items a killed consumer held, settle too.
  await sleep(sc.pollInterval + 300);
  for (const member of [...run.producers.values(), ...run.consumers]) {
    if (member.killed) continue;
    member.child.send('stop');
    const { code } = await exited(member.child);
    assert.equal(code, 0, `a process failed (seed ${seed}): ${readStderr(member.log)}`);
  }

  // What was delivered, from the consumers' logs.
  const deliveries = new Map<string, Delivery[]>();
  for (const member of run.allConsumers()) {
    const lines = readLines(member.log).map(parseLine);
    const ackedAt = new Map(lines.filter((line) => line.kind === 'ack').map((line) => [line.key, line.time]));
    for (const line of lines) {
      if (line.kind !== 'got') continue;
      const list = deliveries.get(line.key) ?? [];
      list.push({ member, at: line.time, ackedAt: ackedAt.get(line.key) });
      deliveries.set(line.key, list);
    }
  }
  const producerIds = new Set(run.producers.keys());
  let duplicates = 0;
  for (const [key, list] of deliveries) {
    const [id, n] = key.split(' ');
    list.sort((a, b) => a.at - b.at);
    const story = list
      .map((d) => `${path.basename(d.member.log)}${d.member.killed ? ' (killed)' : ''}${d.ackedAt !== undefined ? ' acked' : ''}`)
      .join(', ');
    assert.ok(
      producerIds.has(id) && Number(n) >= 0 && Number(n) < (sc.items ?? ITEMS_PER_PRODUCER),
      `delivered an item never put (seed ${seed}): ${key}`,
    );
    list.forEach((delivery, i) => {
      // Only a consumer killed before it acknowledged leaves an item unacknowledged...
      if (delivery.ackedAt === undefined)
        assert.ok(delivery.member.killed, `a live consumer got ${key} and never acknowledged it (seed ${seed}): ${story}`);
      // ...and only then is it handed out again: never after an acknowledgement.
      if (i > 0) assert.ok(list[i - 1].ackedAt === undefined, `${key} delivered again after it was acknowledged (seed ${seed}): ${story}`);
    });
    if (list.length > 1) duplicates++;
  }
  for (const key of run.resolvedPuts()) assert.ok(deliveries.has(key), `lost (seed ${seed}): ${key}`);
  t.diagnostic(
    `seed ${seed}: ${deliveries.size} items delivered, ${duplicates} redelivered after a kill, ${run.allConsumers().filter((m) => m.killed).length} consumers and ${[...run.producers.values()].filter((m) => m.killed).length} producers killed`,
  );

  // Nothing left: every item was delivered and acknowledged, or handed back and taken again.
  const after = await Queue.open(sc.producerDir, { locking: sc.locking, staleAfter: sc.staleAfter });
  try {
    assert.equal(after.size, 0);
    await assert.rejects(after.get({ block: false }), { code: 'ERR_EMPTY' });
  } finally {
    await after.close();
  }
}

describe('many producer and consumer processes on one directory', () => {
  test("locking 'flock': processes SIGKILLed and restarted at random lose nothing and invent nothing", async (t) => {
    const runs: Run[] = [];
    const { root, logs } = testRoot(t, runs, []);
    const dir = path.join(root, 'q');
    const sc: Scenario = { locking: 'flock', staleAfter: 2000, pollInterval: 50, producerDir: dir, consumerDir: dir, logs, pause: 5 };
    runs.push(new Run(sc));
    await runScenario(t, runs[0], sc, runSeed());
  });

  test("locking 'lockfile' with polling, consumers through an sshfs mount: the same", async (t) => {
    const runs: Run[] = [];
    const cleanUp: Array<() => Promise<void>> = [];
    const { root, logs } = testRoot(t, runs, cleanUp);
    const shared = path.join(root, 'shared');
    fs.mkdirSync(shared);
    const mount = await mountOverSsh(shared);
    cleanUp.push(() => mount.unmount());
    const sc: Scenario = {
      locking: 'lockfile',
      staleAfter: 2000,
      pollInterval: 100,
      producerDir: path.join(shared, 'q'),
      consumerDir: path.join(mount.mountPoint, 'q'),
      logs,
      pause: 20,
      items: 100,
    };
    runs.push(new Run(sc));
    await runScenario(t, runs[0], sc, runSeed());
  });

  test('without kills, each consumer sees the items of each producer in the order they were put', async (t) => {
    const runs: Run[] = [];
    const { root, logs } = testRoot(t, runs, []);
    const dir = path.join(root, 'q');
    const run = new Run({ locking: 'flock', staleAfter: 2000, pollInterval: 50, producerDir: dir, consumerDir: dir, logs });
    runs.push(run);
    await (await Queue.open(dir)).close();
    for (let slot = 0; slot < 2; slot++) await run.startConsumer(slot);
    for (let slot = 0; slot < 2; slot++) run.startProducer(slot);
    const deadline = performance.now() + ALL_DELIVERED_TIMEOUT_MS;
    while (run.deliveredKeys().size < 2 * ITEMS_PER_PRODUCER) {
      assert.ok(performance.now() < deadline, 'not everything was delivered');
      await sleep(50);
    }
    for (const member of [...run.producers.values(), ...run.consumers]) {
      member.child.send('stop');
      await exited(member.child);
    }
    let total = 0;
    for (const member of run.consumers) {
      const last = new Map<string, number>();
      for (const line of readLines(member.log)) {
        const [kind, id, n] = line.split(' ');
        if (kind !== 'got') continue;
        total++;
        assert.ok(Number(n) > (last.get(id) ?? -1), `${member.log}: ${id} ${n} after ${last.get(id)}`);
        last.set(id, Number(n));
      }
    }
    assert.equal(total, 2 * ITEMS_PER_PRODUCER, 'an item was delivered twice or not at all');
  });
});

describe('a consumer that stops holding an item it has not acknowledged', () => {
  /** Runs `body` with a queue in a fresh root (removed when the test ends), closing the queue after it. */
  async function withQueue(
    t: TestContext,
    options: QueueOptions,
    body: (q: Queue<string>, dir: string, root: string) => Promise<void>,
  ): Promise<void> {
    const { root } = testRoot(t, [], []);
    const dir = path.join(root, 'q');
    const q = await Queue.open<string>(dir, options);
    try {
      await body(q, dir, root);
    } finally {
      await q.close();
    }
  }

  async function holder(
    t: TestContext,
    dir: string,
    locking: LockingMode,
    staleAfter: number,
  ): Promise<{ child: ChildProcess; got: unknown }> {
    const child = forkFixture('mp-holder', [dir, locking, String(staleAfter)]);
    t.after(() => killIfRunning(child));
    const message = await new Promise<{ got: unknown }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { got: unknown }));
      child.once('exit', (code, signal) => reject(new Error(`holder exited (${code ?? signal})`)));
    });
    return { child, got: message.got };
  }

  for (const [locking, staleAfter] of [
    ['flock', 10_000],
    ['lockfile', 2000],
  ] as const) {
    test(`locking '${locking}': its item stays its own while it lives, and comes back ${locking === 'flock' ? 'at once' : 'once its lease is stale'} when it is SIGKILLed`, async (t) => {
      // No polling to speak of: what brings the item back is seeing the holder's death.
      await withQueue(t, { locking, staleAfter, pollInterval: 60_000 }, async (q, dir) => {
        await q.putMany(['a', 'b']);
        const { child, got } = await holder(t, dir, locking, staleAfter);
        assert.equal(got, 'a');
        assert.equal(await q.get(), 'b');
        await assert.rejects(q.get({ timeout: 300 }), { code: 'ERR_EMPTY' }, "a live consumer's item was handed out again");
        const waiting = q.get();
        const killedAt = performance.now();
        child.kill('SIGKILL');
        assert.equal(await waiting, 'a');
        const elapsed = performance.now() - killedAt;
        const limit = locking === 'flock' ? 1000 : staleAfter + 3000;
        assert.ok(elapsed < limit, `came back after ${Math.round(elapsed)} ms`);
        await q.taskDone();
        await q.taskDone();
        assert.equal(q.size, 0);
      });
    });
  }

  test('size, empty() and full() count the item of a killed consumer at once, before anything takes it back', async (t) => {
    await withQueue(t, { pollInterval: 60_000, maxSize: 2 }, async (q, dir) => {
      await q.putMany(['a', 'b']);
      const { child } = await holder(t, dir, 'flock', 10_000);
      // peek takes the lock, so the holder's hold has ended and its take is published.
      assert.equal(await q.peek(), 'b');
      assert.equal(q.size, 1, "the holder's item is out");
      assert.equal(q.full(), false);
      child.kill('SIGKILL');
      await exited(child);
      assert.equal(q.size, 2, 'its item will be handed out again');
      assert.equal(q.qsize(), 2);
      assert.equal(q.full(), true);
      // Taking it back is up to the next get that looks (within 50 ms of a get finding nothing).
      const got = [await q.get({ timeout: 5000 }), await q.get({ timeout: 5000 })];
      assert.deepEqual(got.sort(), ['a', 'b']);
      assert.equal(q.empty(), true);
    });
  });

  test('peek shows the item of a killed consumer as the next one, as get would take it', async (t) => {
    await withQueue(t, { pollInterval: 60_000 }, async (q, dir) => {
      await q.putMany(['a', 'b']);
      const { child } = await holder(t, dir, 'flock', 10_000);
      assert.equal(await q.peek(), 'b');
      child.kill('SIGKILL');
      await exited(child);
      const deadline = performance.now() + 1000;
      let next = await q.peek();
      while (next !== 'a' && performance.now() < deadline) {
        await sleep(20);
        next = await q.peek();
      }
      assert.equal(next, 'a');
      assert.equal(await q.get({ block: false }), 'a');
      assert.equal(await q.get({ block: false }), 'b');
    });
  });

  test('an item acknowledged above the acknowledged prefix stays acknowledged when its consumer dies right after taskDone resolved', async (t) => {
    await withQueue(t, { pollInterval: 60_000 }, async (q, dir, root) => {
      await q.putMany(['a', 'b']);
      // 'a' stays out with a live holder, so the acknowledgement of 'b' is above the prefix.
      const { child: holding } = await holder(t, dir, 'flock', 10_000);
      const marker = path.join(root, 'acked');
      const dying = forkFixture('mp-ack-and-die', [dir, marker]);
      const { signal } = await exited(dying);
      assert.equal(signal, 'SIGKILL');
      assert.equal(JSON.parse(fs.readFileSync(marker, 'utf8')), 'b');
      holding.kill('SIGKILL');
      await exited(holding);
      assert.equal(await q.get({ timeout: 5000 }), 'a');
      await assert.rejects(q.get({ timeout: 500 }), { code: 'ERR_EMPTY' }, "'b' was handed out again after its taskDone resolved");
    });
  });

  test('items acknowledged together by taskDone(2) above the prefix stay acknowledged when their consumer dies right after', async (t) => {
    await withQueue(t, { pollInterval: 60_000 }, async (q, dir, root) => {
      await q.putMany(['a', 'b', 'c', 'd']);
      const { child: holding } = await holder(t, dir, 'flock', 10_000);
      const marker = path.join(root, 'acked');
      const dying = forkFixture('mp-ack-and-die', [dir, marker, 'batch']);
      const { signal } = await exited(dying);
      assert.equal(signal, 'SIGKILL');
      assert.deepEqual(JSON.parse(fs.readFileSync(marker, 'utf8')), ['b', 'c']);
      holding.kill('SIGKILL');
      await exited(holding);
      assert.equal(await q.get({ timeout: 5000 }), 'a');
      assert.equal(await q.get({ block: false }), 'd', "'b' and 'c' were not handed out again");
      await assert.rejects(q.get({ timeout: 300 }), { code: 'ERR_EMPTY' });
    });
  });

  test('a consumer killed after get, before its hold on the lock ends, leaves the item waiting at once', async (t) => {
    await withQueue(t, { pollInterval: 60_000 }, async (q, dir, root) => {
      await q.putMany(['a', 'b']);
      const marker = path.join(root, 'got');
      const dying = forkFixture('mp-ack-and-die', [dir, marker, 'get-only']);
      const { signal } = await exited(dying);
      assert.equal(signal, 'SIGKILL');
      assert.equal(JSON.parse(fs.readFileSync(marker, 'utf8')), 'a');
      assert.equal(q.size, 2);
      assert.equal(await q.get({ block: false }), 'a');
      assert.equal(await q.get({ block: false }), 'b');
      await q.taskDone();
      await q.taskDone();
      assert.equal(q.size, 0);
    });
  });

  test('a consumer that closes hands its item back to the others', async (t) => {
    await withQueue(t, { pollInterval: 100 }, async (q, dir) => {
      await q.put('a');
      const { child, got } = await holder(t, dir, 'flock', 10_000);
      assert.equal(got, 'a');
      await assert.rejects(q.get({ timeout: 200 }), { code: 'ERR_EMPTY' });
      child.send('close');
      assert.equal(await q.get({ timeout: 5000 }), 'a');
      await q.taskDone();
    });
  });
});
