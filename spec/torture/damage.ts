// Damage in every kind of file: a bit flip, a zeroed range, a truncation or
// the file's removal (garbage written into the files that should be empty),
// in info, cursor, cursor.log, state, the chunk being read, a middle chunk,
// the newest chunk, a consumer's lease, a spare and the lock file, of a crash
// copy of a queue (items 10..39 waiting, 10..12 held by a consumer that is
// gone, 0..9 acknowledged).
//
// Each damaged directory is checked three ways, each on its own copy:
// - as it is (onCorrupt 'error'): nothing wrong, phantom or duplicated is
//   ever handed out; items before the damage come out; damage that is not a
//   torn tail is ERR_CORRUPT naming the file and the record's offset; nothing
//   is skipped silently;
// - after Queue.repair(dir): everything that was not damaged drains, in order,
//   and the damaged bytes are in quarantine/ (never deleted);
// - opened with onCorrupt: 'quarantine': everything that was not damaged
//   drains, with a PERQ_QUARANTINED warning.
// Damage to bookkeeping (cursor, cursor.log, state) may hand acknowledged
// items 7..9 out again (they are still in a chunk); never lose one.

import fs from 'node:fs';
import path from 'node:path';
import { Queue, QueueError } from '../../lib/index.js';
import { HEADER_BYTES, readHeaderLength } from '../../lib/store/record.js';
import { zeroCounts, type Counts } from './check.js';
import { checkItem, tortureItem, type TortureItem } from './items.js';
import { random, type Random } from './random.js';
import type { CaseResult } from './report.js';
import { errorText, withWarningsCaptured } from '../support/reporting.js';

const CHUNK_SIZE = 7;
const ITEMS = 40;
const GOT = 13;
const ACKED = 10;

export type FileKind =
  'info' | 'cursor' | 'cursor.log' | 'state' | 'chunk-read' | 'chunk-middle' | 'chunk-newest' | 'lease' | 'spare' | 'lock';
export const FILE_KINDS: readonly FileKind[] = [
  'info',
  'cursor',
  'cursor.log',
  'state',
  'chunk-read',
  'chunk-middle',
  'chunk-newest',
  'lease',
  'spare',
  'lock',
];
export type DamageKind = 'flip' | 'zero' | 'truncate' | 'delete' | 'garbage';

interface Damage {
  kind: DamageKind;
  /** Byte offset (flip: and bit), range or new length. */
  offset: number;
  length: number;
  bit: number;
}

interface Layout {
  /** Per chunk file name: the records (start, end, seq). */
  chunks: Map<string, Array<{ start: number; end: number; seq: number }>>;
}

function chunkName(n: number): string {
  return `chunk-${String(n).padStart(16, '0')}`;
}

function fileOf(kind: FileKind): string {
  switch (kind) {
    case 'chunk-read':
      return chunkName(Math.floor(ACKED / CHUNK_SIZE));
    case 'chunk-middle':
      return chunkName(3);
    case 'chunk-newest':
      return chunkName(Math.floor((ITEMS - 1) / CHUNK_SIZE));
    case 'lease':
      return path.join('consumers', '1');
    case 'spare':
      return 'spare-0';
    default:
      return kind;
  }
}

/** A crash copy: the queue as a SIGKILL of its only process would leave it, with a consumer holding 10..12. */
export async function buildFixture(root: string): Promise<{ dir: string; layout: Layout }> {
  const live = path.join(root, 'live');
  const q = await Queue.open<TortureItem>(live, { chunkSize: CHUNK_SIZE });
  for (let id = 0; id < ITEMS;) {
    const n = Math.min(ITEMS - id, 1 + (id % 4));
    await q.putMany(Array.from({ length: n }, (_, i) => tortureItem(id + i)));
    id += n;
  }
  await q.getMany(GOT);
  await q.taskDone(ACKED);
  await new Promise((resolve) => setImmediate(resolve));
  const dir = path.join(root, 'fixture');
  fs.cpSync(live, dir, { recursive: true });
  await q.close();
  fs.rmSync(live, { recursive: true, force: true });
  const layout: Layout = { chunks: new Map() };
  for (const name of fs.readdirSync(dir)) {
    const match = /^chunk-(\d+)$/.exec(name);
    if (match === null) continue;
    const bytes = fs.readFileSync(path.join(dir, name));
    const records: Array<{ start: number; end: number; seq: number }> = [];
    for (let at = 0, k = 0; at < bytes.length; k++) {
      const length = readHeaderLength(bytes, at);
      if (length < 0) throw new Error(`fixture chunk ${name} is not sound at ${at}`);
      records.push({ start: at, end: at + HEADER_BYTES + length, seq: Number(match[1]) * CHUNK_SIZE + k });
      at += HEADER_BYTES + length;
    }
    layout.chunks.set(name, records);
  }
  for (const kind of FILE_KINDS) {
    if (!fs.existsSync(path.join(dir, fileOf(kind)))) throw new Error(`the damage fixture has no ${fileOf(kind)}`);
  }
  return { dir, layout };
}

/** Where in the info file a flip turns one valid value into another (chunkSize, version, serializer). */
function infoValueOffsets(text: string): number[] {
  const offsets: number[] = [];
  for (const key of ['"chunkSize":', '"version":', '"serializer":"']) {
    const at = text.indexOf(key);
    if (at >= 0) offsets.push(at + key.length);
  }
  return offsets;
}

function planDamage(r: Random, kind: DamageKind, size: number, aimAt?: number): Damage {
  if (aimAt === -1) return { kind, offset: 0, length: size, bit: 0 };
  const offset = aimAt ?? (size === 0 ? 0 : r.int(size));
  switch (kind) {
    case 'flip':
      return { kind, offset, length: 1, bit: aimAt !== undefined ? 0 : r.int(8) };
    case 'zero': {
      const length = r.chance(0.25) ? size - offset : Math.min(size - offset, 1 + r.int(48));
      return { kind, offset, length, bit: 0 };
    }
    case 'truncate':
      return { kind, offset, length: 0, bit: 0 };
    default:
      return { kind, offset: 0, length: 1 + r.int(200), bit: 0 };
  }
}

function applyDamage(file: string, damage: Damage, r: Random): void {
  switch (damage.kind) {
    case 'delete':
      fs.rmSync(file);
      return;
    case 'truncate':
      fs.truncateSync(file, damage.offset);
      return;
    case 'garbage': {
      const bytes = Buffer.alloc(damage.length);
      for (let i = 0; i < bytes.length; i++) bytes[i] = 1 + r.int(255);
      fs.appendFileSync(file, bytes);
      return;
    }
    default: {
      const bytes = fs.readFileSync(file);
      if (damage.kind === 'flip') bytes[damage.offset] ^= 1 << damage.bit;
      else bytes.fill(0, damage.offset, damage.offset + damage.length);
      fs.writeFileSync(file, bytes);
    }
  }
}

function describeDamage(kind: FileKind, damage: Damage): string {
  const file = fileOf(kind);
  switch (damage.kind) {
    case 'flip':
      return `bit ${damage.bit} of byte ${damage.offset} of ${file} flipped`;
    case 'zero':
      return `bytes ${damage.offset}..${damage.offset + damage.length - 1} of ${file} zeroed`;
    case 'truncate':
      return `${file} truncated to ${damage.offset} bytes`;
    case 'delete':
      return `${file} deleted`;
    default:
      return `${damage.length} bytes of garbage appended to ${file}`;
  }
}

/** Seqs of the records whose bytes the damage changed or removed (chunk files only), in order. */
function damagedSeqs(
  layout: Layout,
  name: string,
  before: Buffer,
  after: Buffer | null,
): Array<{ seq: number; start: number; end: number }> {
  const records = layout.chunks.get(name) ?? [];
  return records.filter(
    (record) =>
      after === null ||
      record.end > after.length ||
      !before.subarray(record.start, record.end).equals(after.subarray(record.start, record.end)),
  );
}

interface Drained {
  ids: number[];
  wrong: string[];
  error: unknown;
  /** 'open' when the queue did not open. */
  stoppedAt: 'open' | 'get' | 'empty';
}

async function drainQueue(dir: string, options: Record<string, unknown>, ack: boolean): Promise<Drained> {
  const result: Drained = { ids: [], wrong: [], error: undefined, stoppedAt: 'empty' };
  let q: Queue<TortureItem>;
  try {
    q = await Queue.open<TortureItem>(dir, options);
  } catch (error) {
    return { ...result, error, stoppedAt: 'open' };
  }
  try {
    for (;;) {
      let batch: unknown[];
      try {
        batch = await q.getMany(1 + (result.ids.length % 5), { timeout: 0 });
      } catch (error) {
        if (error instanceof QueueError && error.code === 'ERR_EMPTY') break;
        result.error = error;
        result.stoppedAt = 'get';
        break;
      }
      for (const value of batch) {
        const checked = checkItem(value);
        if ('id' in checked) result.ids.push(checked.id);
        else result.wrong.push(checked.wrong);
      }
      if (ack) await q.taskDone(batch.length);
    }
  } finally {
    await q.close().catch((error) => {
      result.error ??= error;
    });
  }
  return result;
}

interface Expectation {
  /** Items that must come out (in this order) when nothing is in the way. */
  expected: number[];
  /** Items that may come out besides (acknowledged ones, after damage to bookkeeping). */
  allowedExtra: Set<number>;
  /** Damaged items: may be missing. */
  damaged: Set<number>;
  /** The first damaged record in the order of reading, where ERR_CORRUPT must point. */
  firstDamage: { file: string; offset: number } | null;
  /** Where the damaged records start. */
  damagedOffsets: number[];
}

/** Checks a drain against the expectation; `mustDrainAll`: every undamaged item must come out. */
function judge(drained: Drained, want: Expectation, mustDrainAll: boolean, counts: Counts, problems: string[], label: string): void {
  counts.wrong += drained.wrong.length;
  for (const w of drained.wrong) problems.push(`${label}: wrong item handed out: ${w}`);
  const seen = new Set<number>();
  let previous = -1;
  for (const id of drained.ids) {
    if (seen.has(id)) {
      counts.duplicate++;
      problems.push(`${label}: item ${id} handed out twice`);
    }
    seen.add(id);
    if (!want.expected.includes(id) && !want.allowedExtra.has(id)) {
      if (id < ACKED && id >= 0) {
        counts.ackedAgain++;
        problems.push(`${label}: acknowledged item ${id} handed out again`);
      } else {
        counts.phantom++;
        problems.push(`${label}: item ${id} handed out, which is not in the queue`);
      }
    }
    if (id < previous) {
      counts.order++;
      problems.push(`${label}: item ${id} after ${previous}`);
    }
    previous = id;
  }
  const undamaged = want.expected.filter((id) => !want.damaged.has(id));
  const missing = undamaged.filter((id) => !seen.has(id));
  if (mustDrainAll) {
    if (drained.error !== undefined) {
      counts.errors++;
      problems.push(`${label}: ${drained.stoppedAt === 'open' ? 'open' : 'a get'} failed: ${errorText(drained.error)}`);
    }
    if (missing.length > 0) {
      counts.lost += missing.length;
      problems.push(
        `${label}: ${missing.length} undamaged items did not drain: ${missing.slice(0, 12).join(',')}${missing.length > 12 ? ',...' : ''}`,
      );
    }
    return;
  }
  // As it is: the items before the first damage must come out; past it, only an ERR_CORRUPT may stop the drain.
  // A damaged record of an acknowledged item in the chunk being read hides where the next ones start: it may stop everything.
  const firstDamaged = want.expected.find((id) => want.damaged.has(id));
  const hidesAll = [...want.damaged].some((id) => id < ACKED);
  const before = hidesAll ? [] : firstDamaged === undefined ? undamaged : want.expected.slice(0, want.expected.indexOf(firstDamaged));
  const missingBefore = before.filter((id) => !seen.has(id));
  if (drained.error === undefined) {
    if (missing.length > 0) {
      counts.lost += missing.length;
      problems.push(
        `${label}: the queue ended without an error, ${missing.length} undamaged items never came out: ${missing.slice(0, 12).join(',')}`,
      );
    }
    return;
  }
  // A damaged chunk may stop the open (the newest chunk is scanned then) or the first get that reaches it.
  if (drained.stoppedAt === 'get' && missingBefore.length > 0) {
    counts.lost += missingBefore.length;
    problems.push(
      `${label}: items before the damage did not come out: ${missingBefore.slice(0, 12).join(',')} (${errorText(drained.error)})`,
    );
  }
  const error = drained.error;
  if (!(error instanceof QueueError) || error.code !== 'ERR_CORRUPT') {
    counts.errors++;
    problems.push(`${label}: stopped by ${errorText(error)}, not ERR_CORRUPT`);
    return;
  }
  if (want.firstDamage === null) {
    counts.errors++;
    problems.push(`${label}: ERR_CORRUPT where nothing read was damaged: ${errorText(error)}`);
    return;
  }
  const wantFile = want.firstDamage.file;
  if (error.file !== wantFile) {
    counts.errors++;
    problems.push(`${label}: ERR_CORRUPT names ${error.file ?? 'no file'}, not ${wantFile}: ${error.message}`);
  } else if (fs.existsSync(wantFile) && !want.damagedOffsets.includes(error.offset ?? -1)) {
    counts.errors++;
    problems.push(
      `${label}: ERR_CORRUPT at offset ${String(error.offset)}, where no damaged record starts (they start at ${want.damagedOffsets.join(', ')}): ${error.message}`,
    );
  }
}

function filesUnder(dir: string): Buffer {
  const parts: Buffer[] = [];
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) parts.push(fs.readFileSync(p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return Buffer.concat(parts);
}

/** Every damage case for one seed; `variants` random damages per file and kind. */
export async function damageSuite(seed: number, variants: number, tmp: string, log: (result: CaseResult) => void): Promise<CaseResult[]> {
  const r = random(seed);
  const root = fs.mkdtempSync(path.join(tmp, 'perq-torture-damage-'));
  const results: CaseResult[] = [];
  try {
    const fixture = await buildFixture(root);
    let n = 0;
    for (const kind of FILE_KINDS) {
      const original = path.join(fixture.dir, fileOf(kind));
      const size = fs.statSync(original).size;
      const kinds: DamageKind[] = size === 0 ? ['garbage', 'delete'] : ['flip', 'zero', 'truncate', 'delete'];
      for (const damageKind of kinds) {
        const aims: Array<number | undefined> = [];
        for (let v = 0; v < (damageKind === 'delete' ? 1 : variants); v++) aims.push(undefined);
        if (kind === 'info' && damageKind === 'flip') aims.push(...infoValueOffsets(fs.readFileSync(original, 'utf8')));
        // Both slots of state unreadable: it is rebuilt from the cursor and the chunks.
        if (kind === 'state' && damageKind === 'zero') aims.push(-1);
        for (const aim of aims) {
          const caseSeed = r.seed();
          const damage = planDamage(random(caseSeed), damageKind, size, aim);
          for (const result of await damageCase(fixture, root, `d${n++}`, kind, damage, caseSeed)) {
            results.push(result);
            log(result);
          }
        }
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return results;
}

async function damageCase(
  fixture: { dir: string; layout: Layout },
  root: string,
  name: string,
  kind: FileKind,
  damage: Damage,
  seed: number,
): Promise<CaseResult[]> {
  const r = random(seed);
  const base = path.join(root, name);
  const damagedDir = path.join(base, 'damaged');
  fs.cpSync(fixture.dir, damagedDir, { recursive: true });
  const file = path.join(damagedDir, fileOf(kind));
  const before = fs.readFileSync(file);
  applyDamage(file, damage, r);
  const after = fs.existsSync(file) ? fs.readFileSync(file) : null;
  const label = `damage: ${describeDamage(kind, damage)}`;
  const modes: Array<{ name: string; counts: Counts; problems: string[] }> = [];
  let counts = zeroCounts();
  let problems: string[] = [];
  const mode = (name: string): void => {
    counts = zeroCounts();
    problems = [];
    modes.push({ name, counts, problems });
  };

  const bookkeeping = kind === 'cursor' || kind === 'cursor.log' || kind === 'state';
  const extraPuts = kind === 'spare' ? 30 : 0;
  const expected = Array.from({ length: ITEMS + extraPuts - ACKED }, (_, i) => ACKED + i);
  const isChunk = kind.startsWith('chunk-');
  const hurt = isChunk ? damagedSeqs(fixture.layout, fileOf(kind), before, after) : [];
  /** Zeros to the end of the file: what a power cut leaves of unsynced appends. */
  const zeroedToEnd = damage.kind === 'zero' && damage.offset + damage.length >= before.length;
  const want: Expectation = {
    expected,
    allowedExtra: new Set(bookkeeping ? Array.from({ length: ACKED - CHUNK_SIZE }, (_, i) => CHUNK_SIZE + i) : []),
    damaged: new Set(hurt.map((record) => record.seq)),
    firstDamage: null,
    damagedOffsets: hurt.map((record) => record.start),
  };
  // Items are numbered as they were put (id = seq), so the first damaged record read is the lowest damaged seq from 10 on.
  const firstHurt = hurt[0];
  if (firstHurt !== undefined) want.firstDamage = { file: path.join(damagedDir, fileOf(kind)), offset: firstHurt.start };
  const unchanged = after !== null && before.equals(after);

  const prepare = async (mode: string): Promise<string> => {
    const copy = path.join(base, mode);
    fs.cpSync(damagedDir, copy, { recursive: true });
    if (extraPuts > 0) {
      // A damaged spare is met by puts that need new chunks.
      const q = await Queue.open<TortureItem>(copy);
      try {
        await q.putMany(Array.from({ length: extraPuts }, (_, i) => tortureItem(ITEMS + i)));
      } finally {
        await q.close();
      }
    }
    return copy;
  };
  const relabel = (error: unknown, dir: string): string => errorText(error).split(dir).join('<dir>');

  // 1. As it is.
  mode('as it is');
  try {
    const dir = await prepare('as-is');
    const listing = snapshot(dir);
    const { value: drained } = await withWarningsCaptured(() => drainQueue(dir, {}, false));
    if (want.firstDamage !== null) want.firstDamage.file = path.join(dir, fileOf(kind));
    if (drained.error instanceof QueueError && kind === 'info' && drained.stoppedAt === 'open') {
      // Damage to info: refusing to open is right, if it names the file and changed nothing.
      // (A missing info file is reported without error.file, the message names it.)
      const namesInfo =
        drained.error.file === path.join(dir, 'info') || (damage.kind === 'delete' && drained.error.message.includes('info file'));
      if (!namesInfo || !['ERR_CORRUPT', 'ERR_FORMAT'].includes(drained.error.code)) {
        counts.errors++;
        problems.push(`as it is: a damaged info file gives ${relabel(drained.error, dir)}`);
      }
      if (snapshot(dir) !== listing) {
        counts.errors++;
        problems.push('as it is: the failed open changed the directory');
      }
      fs.copyFileSync(path.join(fixture.dir, 'info'), path.join(dir, 'info'));
      judge(await drainQueue(dir, {}, false), want, true, counts, problems, 'with info restored');
    } else {
      judge(drained, want, unchanged || !isChunk, counts, problems, 'as it is');
    }
  } catch (error) {
    counts.errors++;
    problems.push(`as it is: ${errorText(error)}`);
  }

  // 2. Queue.repair(dir), then drain.
  mode('after Queue.repair');
  try {
    const dir = await prepare('repair');
    const repair = (Queue as unknown as { repair?: (dir: string) => Promise<unknown> }).repair;
    if (typeof repair !== 'function') throw new Error('Queue.repair(dir) is not there yet');
    let repaired = true;
    try {
      await withWarningsCaptured(() => repair.call(Queue, dir));
    } catch (error) {
      repaired = false;
      // A damaged info file cannot be repaired from the chunks: saying so, naming it, is right.
      if (!(
        kind === 'info' &&
        error instanceof QueueError &&
        (error.file === path.join(dir, 'info') || error.message.includes('info file'))
      ))
        throw error;
    }
    if (repaired) {
      const { value: drained } = await withWarningsCaptured(() => drainQueue(dir, {}, true));
      judge(drained, want, true, counts, problems, 'after Queue.repair');
      if (isChunk && (damage.kind === 'flip' || damage.kind === 'zero') && hurt.length > 0 && after !== null) {
        const kept = filesUnder(path.join(dir, 'quarantine'));
        for (const record of hurt) {
          const bytes = after.subarray(record.start, Math.min(record.end, after.length));
          // A sound header, then zeros to the end of the file: what a power cut leaves of an append
          // whose header's bytes reached the disk and the rest did not (nothing promises the bytes
          // being written are all or nothing). Repair cuts it off like a torn tail, as the reader
          // and open do; the other modes account for it as PERQ_RECORDS_LOST.
          if (
            zeroedToEnd &&
            bytes.length >= HEADER_BYTES &&
            readHeaderLength(bytes, 0) >= 0 &&
            bytes.subarray(HEADER_BYTES).every((byte) => byte === 0)
          )
            continue;
          if (bytes.length > 0 && !kept.includes(bytes)) {
            counts.lost++;
            problems.push(`after Queue.repair: the damaged bytes of record ${record.seq} (offset ${record.start}) are not in quarantine/`);
          }
        }
      }
      const again = await drainQueue(dir, {}, false);
      if (again.ids.length > 0 || again.error !== undefined) {
        counts.errors++;
        problems.push(
          `after Queue.repair and a drain: a fresh open found ${again.ids.length} items${again.error === undefined ? '' : `, ${errorText(again.error)}`}`,
        );
      }
    }
  } catch (error) {
    counts.errors++;
    problems.push(`Queue.repair: ${errorText(error)}`);
  }

  // 3. onCorrupt: 'quarantine'.
  mode("onCorrupt 'quarantine'");
  try {
    const dir = await prepare('quarantine');
    const { value: drained, codes } = await withWarningsCaptured(() => drainQueue(dir, { onCorrupt: 'quarantine' }, true));
    if (
      kind === 'info' &&
      drained.stoppedAt === 'open' &&
      drained.error instanceof QueueError &&
      ['ERR_CORRUPT', 'ERR_FORMAT'].includes(drained.error.code)
    ) {
      // As above: info cannot be quarantined.
    } else if (drained.stoppedAt === 'open' && drained.error instanceof QueueError && drained.error.code === 'ERR_INVALID_OPTION') {
      counts.errors++;
      problems.push(`onCorrupt 'quarantine' is not an option yet: ${errorText(drained.error)}`);
    } else {
      judge(drained, want, true, counts, problems, "onCorrupt 'quarantine'");
      // Damage to a record still needed must be told: PERQ_QUARANTINED, or where the bytes are gone (cut off, removed,
      // or zeroed to the end of the file, which is what a power cut leaves of unsynced appends), PERQ_RECORDS_LOST.
      const needed = [...want.damaged].some((seq) => seq >= ACKED);
      const reported = isChunk && needed && !isTornTail(kind, fixture.layout, hurt, after);
      const gone = damage.kind === 'truncate' || damage.kind === 'delete' || zeroedToEnd;
      const told = codes.includes('PERQ_QUARANTINED') || (gone && codes.includes('PERQ_RECORDS_LOST'));
      if (reported && !told) {
        counts.errors++;
        problems.push(`onCorrupt 'quarantine': no PERQ_QUARANTINED warning (warnings: ${codes.join(', ') || 'none'})`);
      }
    }
  } catch (error) {
    counts.errors++;
    problems.push(`onCorrupt 'quarantine': ${errorText(error)}`);
  }

  fs.rmSync(base, { recursive: true, force: true });
  return modes.map((m) => ({
    name: `${label}, ${m.name}`,
    passed: m.problems.length === 0,
    counts: m.counts,
    kills: 0,
    seed: String(seed),
    details: m.problems.map((p) => p.split(base).join('<case>')).slice(0, 12),
  }));
}

/** Damage that open may take for a torn tail: the newest chunk, nothing sound after the damaged records. */
function isTornTail(kind: FileKind, layout: Layout, hurt: Array<{ seq: number; end: number }>, after: Buffer | null): boolean {
  if (kind !== 'chunk-newest' || after === null) return false;
  const records = layout.chunks.get(fileOf(kind)) ?? [];
  const firstHurt = hurt[0];
  return firstHurt !== undefined && records.every((record) => record.seq < firstHurt.seq || hurt.some((h) => h.seq === record.seq));
}

function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(`${path.relative(dir, p)}:${fs.statSync(p).size}`);
    }
  };
  walk(dir);
  return out.join(' ');
}
