// Directories are durable too under fsync: 'always' (issue 10). A new name in
// a directory (a file created, hard linked or renamed into it, a directory
// made) survives a power loss only once that directory is fsync'd; fsyncing
// the file is not enough. LazyFS cannot show a missing directory fsync, so
// this spec runs spec/fixtures/strace-run.ts under strace and checks the
// system calls themselves:
//
// - every name perq makes (chunk, spare, info, cursor, cursor.log,
//   consumers/, a lease in consumers/, and the queue directory itself when
//   open makes it) is followed by an fsync of the directory holding it that
//   starts after the name was made and ends before the call that made it
//   resolves. A spare's name only has to be durable by the time the queue is
//   closed: no call waits on a spare (the chunk made from one is checked as a
//   chunk). A name removed again before anything waited on it needs nothing.
// - a chunk is emptied, linked to another name or unlinked only after the
//   cursor entry that frees it is durable: a cursor.log entry with an ackSeq
//   past its last item, fdatasync'd after it was written, or a cursor file
//   fsync'd, renamed into place and its directory fsync'd.
//
// `state`, `lock` and `lock.d` are not checked: none of them is relied on
// after a power loss (state is rebuilt, lock made again). write-file-atomic's
// temporary files count only through the name they are renamed to.
//
// Needs Linux and strace (Debian package `strace`: apt-get install -y strace);
// without it these tests fail and say so. The run takes about a second.
// PERQ_STRACE_LOG=<file> keeps the trace.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { tempDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const STRACE = 'strace';
const INSTALL_HINT = 'install the Debian package strace (apt-get install -y strace)';
const CHUNK_SIZE = 3;
const RUN_TIMEOUT_MS = 60_000;
/** Unknown names (`?`) are skipped: open, creat, rename, link, unlink, mkdir and truncate do not exist on every architecture. */
const TRACED = [
  'openat',
  '?open',
  '?creat',
  'mkdirat',
  '?mkdir',
  'linkat',
  '?link',
  'renameat',
  '?renameat2',
  '?rename',
  'unlinkat',
  '?unlink',
  '?truncate',
  'ftruncate',
  'fsync',
  'fdatasync',
  'write',
  'pwrite64',
].join(',');

const LOG_MAGIC = 0x32415150; // cursor.log entry, 'PQA2': magic, u32 length, f64 ackSeq, ranges, crc
const CURSOR_MAGIC = 0x32435150; // cursor file, 'PQC2': magic, u32 length, f64 ackSeq, ...

// ---------------------------------------------------------------- strace log

/** One system call, its `<unfinished ...>` and `resumed` halves joined. */
interface Call {
  pid: number;
  name: string;
  args: string[];
  /** The return value; NaN when strace printed `?`. */
  ret: number;
  /** -y's decoration of a returned descriptor. */
  retPath: string | null;
  /** Line (0-based) where the call was entered, and where it returned. */
  start: number;
  end: number;
}

/** The calls in an `strace -f -y -x` log, in the order they returned. */
function parseStrace(text: string): Call[] {
  const calls: Call[] = [];
  const unfinished = new Map<number, { text: string; line: number }>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^(\d+)\s+(.*)$/.exec(lines[i]);
    if (match === null) continue;
    const pid = Number(match[1]);
    let body = match[2];
    let start = i;
    if (body.startsWith('+++') || body.startsWith('---')) continue;
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(body);
    if (resumed !== null) {
      const first = unfinished.get(pid);
      unfinished.delete(pid);
      if (first === undefined) continue;
      body = first.text + resumed[1];
      start = first.line;
    }
    const cut = body.lastIndexOf(' <unfinished ...>');
    if (cut >= 0 && cut === body.length - ' <unfinished ...>'.length) {
      unfinished.set(pid, { text: body.slice(0, cut), line: i });
      continue;
    }
    const call = parseCall(body);
    if (call !== null) calls.push({ pid, ...call, start, end: i });
  }
  return calls;
}

function parseCall(body: string): Omit<Call, 'pid' | 'start' | 'end'> | null {
  const head = /^(\w+)\(/.exec(body);
  if (head === null) return null;
  const args: string[] = [];
  let depth = 0;
  let current = '';
  let i = head[0].length;
  for (; i < body.length; i++) {
    const c = body[i];
    if (c === '"') {
      // A quoted string, escapes included.
      let j = i + 1;
      while (j < body.length && body[j] !== '"') j += body[j] === '\\' ? 2 : 1;
      current += body.slice(i, j + 1);
      i = j;
      continue;
    }
    if (c === '(' || c === '[' || c === '{' || c === '<') depth++;
    if (c === ']' || c === '}' || c === '>') depth--;
    if (c === ')') {
      if (depth === 0) break;
      depth--;
    }
    if (c === ',' && depth === 0) {
      args.push(current.trim());
      current = '';
      continue;
    }
    current += c;
  }
  if (current.trim() !== '') args.push(current.trim());
  const result = /^\)\s*=\s*(-?\d+|\?)(?:<(.*?)>)?/.exec(body.slice(i));
  if (result === null) return null;
  return {
    name: head[1],
    args,
    ret: result[1] === '?' ? Number.NaN : Number(result[1]),
    retPath: result[2] === undefined ? null : decodeString(result[2]).toString('latin1'),
  };
}

/** The bytes of a string as strace prints it (C escapes: \n, \", \\, \xHH, octal). */
function decodeString(escaped: string): Buffer {
  const bytes: number[] = [];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, a: 7, b: 8, '\\': 92, '"': 34, "'": 39 };
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped[i];
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'latin1'));
      continue;
    }
    const e = escaped[i + 1];
    if (e === 'x') {
      bytes.push(parseInt(escaped.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (e !== undefined && e >= '0' && e <= '7') {
      const octal = /^[0-7]{1,3}/.exec(escaped.slice(i + 1))![0];
      bytes.push(parseInt(octal, 8));
      i += octal.length;
    } else {
      bytes.push(simple[e] ?? e.charCodeAt(0));
      i += 1;
    }
  }
  return Buffer.from(bytes);
}

/** A quoted string argument's bytes, or null when the argument is not one. */
function stringBytes(arg: string | undefined): Buffer | null {
  const match = arg === undefined ? null : /^"((?:[^"\\]|\\.)*)"(?:\.\.\.)?$/.exec(arg);
  return match === null ? null : decodeString(match[1]);
}

/** A quoted string argument's text (a path), or null when the argument is not one. */
function stringArg(arg: string | undefined): string | null {
  return stringBytes(arg)?.toString('latin1') ?? null;
}

/** The path -y prints for a descriptor argument (`19</q/chunk-...>`, `AT_FDCWD</cwd>`). */
function fdPath(arg: string | undefined): string | null {
  const match = arg === undefined ? null : /^(?:-?\d+|AT_FDCWD)<(.*)>(?:\(deleted\))?$/.exec(arg);
  return match === null ? null : decodeString(match[1]).toString('latin1');
}

function resolveAt(dirArg: string | undefined, name: string): string {
  if (path.isAbsolute(name)) return path.normalize(name);
  return path.join(fdPath(dirArg) ?? '/', name);
}

// ---------------------------------------------------------------- the checks

type Kind = 'queue directory' | 'info' | 'cursor' | 'cursor.log' | 'chunk' | 'spare' | 'consumers/' | 'lease';

interface NewName {
  kind: Kind;
  file: string;
  /** The call that made it, as the trace shows it, and its line. */
  how: string;
  line: number;
  /** The fixture call it belongs to (the last BEGIN marker). */
  during: string;
}

interface Violation extends NewName {
  /** The call that resolved first without the directory fsync, or why there was none. */
  problem: string;
}

interface ChunkRemoval {
  chunk: number;
  how: string;
  line: number;
  during: string;
  /** The durable ackSeq when it was made, and the one the chunk needs. */
  durableAckSeq: number;
  needed: number;
}

interface TraceReport {
  names: NewName[];
  violations: Violation[];
  removals: ChunkRemoval[];
  /** Removals made before the cursor entry that frees them was durable. */
  earlyRemovals: ChunkRemoval[];
  /** The calls during which a cursor.log entry was written. */
  acknowledging: Set<string>;
  /** Calls that resolved with a cursor.log entry written and not yet fdatasync'd. */
  undurableAcks: Array<{ label: string; entries: number; line: number }>;
  markers: string[];
}

/** The kind of a name in the queue directory that must be durable, or null for names that need not be. */
function kindOf(queueDir: string, file: string): Kind | null {
  if (file === queueDir) return 'queue directory';
  const consumers = path.join(queueDir, 'consumers');
  if (file === consumers) return 'consumers/';
  if (path.dirname(file) === consumers) return 'lease';
  if (path.dirname(file) !== queueDir) return null;
  const name = path.basename(file);
  if (name === 'info' || name === 'cursor' || name === 'cursor.log') return name;
  if (/^chunk-\d{16}$/.test(name)) return 'chunk';
  if (/^spare-\d+$/.test(name)) return 'spare';
  return null;
}

function chunkNumber(queueDir: string, file: string): number {
  const match = path.dirname(file) === queueDir ? /^chunk-(\d{16})$/.exec(path.basename(file)) : null;
  return match === null ? -1 : Number(match[1]);
}

function describeCall(call: Call): string {
  return `${call.name}(${call.args.join(', ')}) = ${call.ret}`;
}

/**
 * Walks the calls of a trace in the order they returned. `queueDir` did not
 * exist when the trace began; `chunkSize` is the queue's.
 */
function checkTrace(calls: Call[], queueDir: string, chunkSize: number): TraceReport {
  const report: TraceReport = {
    names: [],
    violations: [],
    removals: [],
    earlyRemovals: [],
    acknowledging: new Set(),
    undurableAcks: [],
    markers: [],
  };
  const exists = new Set<string>();
  let pending: NewName[] = [];
  let during = '(before the first marker)';
  const cursorLog = path.join(queueDir, 'cursor.log');
  const cursorFile = path.join(queueDir, 'cursor');
  // The cursor: log entries written but not yet synced, and what is durable.
  let logWrites: Array<{ ackSeq: number; line: number }> = [];
  let durableLog = 0;
  let durableCursor = 0;
  const temps = new Map<string, { ackSeq: number; line: number; synced: boolean }>();
  let renamedCursor: { ackSeq: number; line: number } | null = null;
  const durableAt: Array<{ line: number; ackSeq: number }> = [{ line: -1, ackSeq: 0 }];
  const noteDurable = (line: number): void => {
    durableAt.push({ line, ackSeq: Math.max(durableLog, durableCursor) });
  };
  const durableBefore = (line: number): number => {
    let value = 0;
    for (const entry of durableAt) if (entry.line < line) value = entry.ackSeq;
    return value;
  };

  const made = (file: string, call: Call): void => {
    const existed = exists.has(file);
    exists.add(file);
    if (existed) return;
    const kind = kindOf(queueDir, file);
    if (kind === null) return;
    const name = { kind, file, how: describeCall(call), line: call.end, during };
    report.names.push(name);
    pending.push(name);
  };
  const removed = (file: string): void => {
    exists.delete(file);
    // Made and gone again before anything waited on it: nothing to make durable.
    pending = pending.filter((name) => name.file !== file);
  };
  const removesChunk = (file: string | null, call: Call): void => {
    if (file === null) return;
    const chunk = chunkNumber(queueDir, file);
    if (chunk < 0) return;
    const removal = {
      chunk,
      how: describeCall(call),
      line: call.start,
      during,
      durableAckSeq: durableBefore(call.start),
      needed: (chunk + 1) * chunkSize,
    };
    report.removals.push(removal);
    if (removal.durableAckSeq < removal.needed) report.earlyRemovals.push(removal);
  };

  for (const call of calls) {
    const ok = call.ret >= 0;
    switch (call.name) {
      case 'write':
      case 'pwrite64': {
        const file = fdPath(call.args[0]);
        const data = stringBytes(call.args[1]);
        if (!ok || file === null || data === null) break;
        if (path.basename(file) === 'marker') {
          for (const text of data.toString('latin1').split('\n').filter(Boolean)) {
            report.markers.push(text);
            const [word, ...rest] = text.split(' ');
            const label = rest.join(' ');
            if (word === 'BEGIN') during = label;
            if (word !== 'RESOLVED') continue;
            const due = pending.filter((name) => name.kind !== 'spare' || label.startsWith('close'));
            for (const name of due) {
              report.violations.push({
                ...name,
                problem: `'${label}' resolved (line ${call.end}) before any fsync of ${path.dirname(name.file)} that began after line ${name.line}`,
              });
            }
            pending = pending.filter((name) => !due.includes(name));
            if (logWrites.length > 0) report.undurableAcks.push({ label, entries: logWrites.length, line: call.end });
          }
        } else if (file === cursorLog) {
          for (let at = 0; at + 24 <= data.length;) {
            const length = data.readUInt32LE(at + 4);
            if (data.readUInt32LE(at) !== LOG_MAGIC || length < 24) break;
            logWrites.push({ ackSeq: data.readDoubleLE(at + 8), line: call.end });
            report.acknowledging.add(during);
            at += length;
          }
        } else if (
          path.dirname(file) === queueDir &&
          /^cursor\.\d+$/.test(path.basename(file)) &&
          data.length >= 32 &&
          data.readUInt32LE(0) === CURSOR_MAGIC
        ) {
          temps.set(file, { ackSeq: data.readDoubleLE(8), line: call.end, synced: false });
        }
        break;
      }
      case 'fsync':
      case 'fdatasync': {
        const file = fdPath(call.args[0]);
        if (!ok || file === null) break;
        // A name is durable once its directory is synced by a call that began after the name was made.
        pending = pending.filter((name) => !(path.dirname(name.file) === file && name.line < call.start));
        if (file === cursorLog) {
          for (const entry of logWrites) if (entry.line < call.start) durableLog = Math.max(durableLog, entry.ackSeq);
          logWrites = logWrites.filter((entry) => entry.line >= call.start);
          noteDurable(call.end);
        }
        const temp = temps.get(file);
        if (temp !== undefined && temp.line < call.start) temp.synced = true;
        if (file === queueDir && renamedCursor !== null && renamedCursor.line < call.start) {
          durableCursor = Math.max(durableCursor, renamedCursor.ackSeq);
          renamedCursor = null;
          noteDurable(call.end);
        }
        break;
      }
      case 'openat':
      case 'open':
      case 'creat': {
        if (!ok) break;
        const file =
          call.name === 'openat' ? resolveAt(call.args[0], stringArg(call.args[1]) ?? '') : path.normalize(stringArg(call.args[0]) ?? '');
        const flags = call.name === 'creat' ? 'O_CREAT' : ((call.name === 'openat' ? call.args[2] : call.args[1]) ?? '');
        if (flags.includes('O_CREAT')) made(file, call);
        if (flags.includes('O_TRUNC')) removesChunk(file, call);
        break;
      }
      case 'mkdir':
      case 'mkdirat':
        if (ok)
          made(
            call.name === 'mkdirat'
              ? resolveAt(call.args[0], stringArg(call.args[1]) ?? '')
              : path.normalize(stringArg(call.args[0]) ?? ''),
            call,
          );
        break;
      case 'link':
      case 'linkat':
      case 'rename':
      case 'renameat':
      case 'renameat2': {
        if (!ok) break;
        const two = call.name === 'link' || call.name === 'rename';
        const from = two ? path.normalize(stringArg(call.args[0]) ?? '') : resolveAt(call.args[0], stringArg(call.args[1]) ?? '');
        const to = two ? path.normalize(stringArg(call.args[1]) ?? '') : resolveAt(call.args[2], stringArg(call.args[3]) ?? '');
        removesChunk(from, call);
        if (call.name.startsWith('rename')) {
          removed(from);
          exists.delete(to);
          const temp = temps.get(from);
          if (to === cursorFile) renamedCursor = temp !== undefined && temp.synced ? { ackSeq: temp.ackSeq, line: call.end } : null;
        }
        made(to, call);
        break;
      }
      case 'unlink':
      case 'unlinkat': {
        if (!ok) break;
        const file =
          call.name === 'unlinkat' ? resolveAt(call.args[0], stringArg(call.args[1]) ?? '') : path.normalize(stringArg(call.args[0]) ?? '');
        removesChunk(file, call);
        removed(file);
        break;
      }
      case 'truncate':
      case 'ftruncate': {
        if (!ok || Number(call.args[1]) !== 0) break;
        const file = call.name === 'truncate' ? path.normalize(stringArg(call.args[0]) ?? '') : fdPath(call.args[0]);
        removesChunk(file, call);
        if (file === cursorLog) {
          // The log's entries may be gone from disk from now on.
          logWrites = [];
          durableLog = 0;
          noteDurable(call.end);
        }
        break;
      }
    }
  }
  for (const name of pending) report.violations.push({ ...name, problem: 'no fsync of its directory followed before the trace ended' });
  return report;
}

function formatViolation(v: Violation): string {
  return `${path.basename(v.file)} (during '${v.during}'): line ${v.line}: ${v.how}; ${v.problem}`;
}

function formatRemoval(r: ChunkRemoval): string {
  return `chunk ${r.chunk} (during '${r.during}'): line ${r.line}: ${r.how}; durable ackSeq was ${r.durableAckSeq}, needs >= ${r.needed}`;
}

// ---------------------------------------------------------------- the run

/** Runs the fixture under strace; the trace's text. */
async function traceRun(base: string): Promise<{ log: string; queueDir: string }> {
  const version = spawnSync(STRACE, ['-V'], { encoding: 'utf8' });
  if (version.error !== undefined || version.status !== 0) {
    throw new Error(`strace not installed (${version.error?.message ?? version.stderr.trim()}): ${INSTALL_HINT}`);
  }
  const queueDir = path.join(base, 'q');
  const logFile = path.join(base, 'strace.log');
  const args = [
    '-f',
    '-qq',
    '-y',
    '-x',
    '-s',
    '256',
    '-e',
    `trace=${TRACED}`,
    '-e',
    'signal=none',
    '-o',
    logFile,
    process.execPath,
    path.join(here, 'fixtures', 'strace-run.js'),
    queueDir,
    path.join(base, 'marker'),
    String(CHUNK_SIZE),
  ];
  const child = spawn(STRACE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr.on('data', (data: Buffer) => (output += data.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  if (code !== 0) {
    const hint = /ptrace|Operation not permitted/i.test(output)
      ? ' (strace needs ptrace: in a container, run with --cap-add=SYS_PTRACE)'
      : '';
    throw new Error(`strace run exited with ${code}${hint}:\n${output}`);
  }
  // PERQ_STRACE_LOG=<file> keeps the trace for a look by hand.
  if (process.env.PERQ_STRACE_LOG) fs.copyFileSync(logFile, process.env.PERQ_STRACE_LOG);
  return { log: fs.readFileSync(logFile, 'utf8'), queueDir };
}

describe('directories are durable under fsync: always (strace)', () => {
  let traced: TraceReport | Error;
  /** The run's report; a run that failed (no strace, say) fails every test with its reason. */
  const report = (): TraceReport => {
    if (traced instanceof Error) throw traced;
    return traced;
  };

  // strace prints real paths.
  const base = fs.realpathSync(tempDir({ after }, 'perq-strace-'));

  before(async () => {
    try {
      const { log, queueDir } = await traceRun(base);
      traced = checkTrace(parseStrace(log), queueDir, CHUNK_SIZE);
    } catch (error) {
      traced = error as Error;
    }
  });

  test('the run made every kind of name, deleted chunks and resolved every call', () => {
    const kinds = new Set(report().names.map((name) => name.kind));
    for (const kind of ['queue directory', 'info', 'cursor', 'cursor.log', 'chunk', 'spare', 'consumers/', 'lease'] as const) {
      assert.ok(kinds.has(kind), `the trace shows no ${kind} being made: is strace tracing the right calls?`);
    }
    assert.ok(
      report().names.some((name) => name.kind === 'chunk' && /^link/.test(name.how)),
      'no chunk was made from a spare',
    );
    assert.ok(
      report().names.some((name) => name.kind === 'cursor' && /^rename/.test(name.how)),
      'no cursor was renamed into place',
    );
    assert.ok(
      report().removals.some((r) => /^unlink/.test(r.how)),
      'no chunk was deleted',
    );
    assert.ok(
      report().removals.some((r) => /^link/.test(r.how)),
      'no chunk was kept as a spare',
    );
    assert.equal(report().markers.at(-1), 'RESOLVED close (reopened)');
  });

  const kinds: Array<[Kind, string]> = [
    ['queue directory', "the queue directory, made by open: its parent is fsync'd before open returns"],
    ['info', "info: the queue directory is fsync'd after its rename, before open returns"],
    ['cursor', "cursor: the queue directory is fsync'd after each rename, before the call resolves"],
    ['cursor.log', "cursor.log: the queue directory is fsync'd after it is made, before open returns"],
    ['chunk', "a new chunk (created, or linked from a spare): the queue directory is fsync'd before the put resolves"],
    ['spare', "a spare: the queue directory is fsync'd after it is linked, by the time the queue is closed"],
    ['consumers/', "consumers/: the queue directory is fsync'd after it is made, before the get resolves"],
    ['lease', "a lease: consumers/ is fsync'd after it is made, before the get resolves"],
  ];
  for (const [kind, title] of kinds) {
    test(title, () => {
      const violations = report().violations.filter((v) => v.kind === kind);
      assert.equal(
        violations.length,
        0,
        `${violations.length} ${kind} name(s) not made durable in time:\n  ${violations.map(formatViolation).join('\n  ')}`,
      );
    });
  }

  test("an acknowledgement or a clear written to cursor.log is fdatasync'd before the call resolves", () => {
    for (const label of ['taskDone', 'taskDoneSync', 'ack', 'clear']) {
      assert.ok(
        report().acknowledging.has(label),
        `no cursor.log entry was written during '${label}': is the run still acknowledging there?`,
      );
    }
    const undurable = report().undurableAcks;
    assert.equal(
      undurable.length,
      0,
      `${undurable.length} call(s) resolved before their cursor.log entries were durable:\n  ${undurable.map((u) => `'${u.label}' (line ${u.line}): ${u.entries} entr(ies) not fdatasync'd`).join('\n  ')}`,
    );
  });

  test('a chunk is emptied, linked away or unlinked only once the cursor entry that frees it is durable', () => {
    const early = report().earlyRemovals;
    assert.equal(
      early.length,
      0,
      `${early.length} chunk removal(s) before the cursor freeing them was durable:\n  ${early.map(formatRemoval).join('\n  ')}`,
    );
  });
});

// ---------------------------------------------------------------- the checker itself

describe('the strace checker', () => {
  const q = '/t/q';
  const chunk = (n: number): string => `${q}/chunk-${String(n).padStart(16, '0')}`;
  const entry = (ackSeq: number): string => {
    const bytes = Buffer.alloc(24);
    bytes.writeUInt32LE(LOG_MAGIC, 0);
    bytes.writeUInt32LE(24, 4);
    bytes.writeDoubleLE(ackSeq, 8);
    return [...bytes].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  };
  const check = (lines: string[]): TraceReport => checkTrace(parseStrace(lines.join('\n')), q, 3);

  test('a chunk followed by a directory fsync on another thread, in halves, passes', () => {
    const report = check([
      `1  write(9</t/marker>, "BEGIN put 0\\n", 12) = 12`,
      `1  openat(AT_FDCWD</t>, "${chunk(0)}", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 20<${chunk(0)}>`,
      `2  fsync(19</t/q> <unfinished ...>`,
      `3  fdatasync(20<${chunk(0)}>) = 0`,
      `2  <... fsync resumed>) = 0`,
      `1  write(9</t/marker>, "RESOLVED put 0\\n", 15) = 15`,
    ]);
    assert.equal(report.names.length, 1);
    assert.deepEqual(report.violations, []);
  });

  test('a lease without an fsync of consumers/ fails, naming the call that resolved', () => {
    const report = check([
      `1  write(9</t/marker>, "BEGIN get\\n", 10) = 10`,
      `1  mkdir("${q}/consumers", 0777) = -1 EEXIST (File exists)`,
      `1  openat(AT_FDCWD</t>, "${q}/consumers/0", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 21<${q}/consumers/0>`,
      `2  fsync(19</t/q>) = 0`,
      `1  write(9</t/marker>, "RESOLVED get\\n", 13) = 13`,
    ]);
    assert.equal(report.violations.length, 1);
    assert.equal(report.violations[0].kind, 'lease');
    assert.match(report.violations[0].problem, /^'get' resolved/);
  });

  test('a directory fsync that began before the name was made does not count', () => {
    const report = check([
      `2  fsync(19</t/q> <unfinished ...>`,
      `1  openat(AT_FDCWD</t>, "${chunk(0)}", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 20<${chunk(0)}>`,
      `2  <... fsync resumed>) = 0`,
      `1  write(9</t/marker>, "RESOLVED put 0\\n", 15) = 15`,
    ]);
    assert.equal(report.violations.length, 1);
  });

  test("a chunk unlinked after its log entry is fdatasync'd passes; before, fails", () => {
    const ok = check([
      `1  write(21<${q}/cursor.log>, "${entry(3)}", 24) = 24`,
      `2  fdatasync(21<${q}/cursor.log>) = 0`,
      `1  unlink("${chunk(0)}") = 0`,
    ]);
    assert.equal(ok.removals.length, 1);
    assert.deepEqual(ok.earlyRemovals, []);
    const early = check([
      `1  write(21<${q}/cursor.log>, "${entry(3)}", 24) = 24`,
      `1  openat(AT_FDCWD</t>, "${chunk(0)}", O_RDWR|O_CLOEXEC) = 22<${chunk(0)}>`,
      `1  ftruncate(22<${chunk(0)}>, 0) = 0`,
      `2  fdatasync(21<${q}/cursor.log>) = 0`,
      `1  unlink("${chunk(0)}") = 0`,
    ]);
    assert.deepEqual(
      early.earlyRemovals.map((r) => r.how),
      [`ftruncate(22<${chunk(0)}>, 0) = 0`],
    );
  });

  test("decodeString reads strace's escapes", () => {
    assert.deepEqual([...decodeString('a\\n\\"\\\\\\x00\\xff\\0\\177')], [97, 10, 34, 92, 0, 255, 0, 127]);
  });
});
