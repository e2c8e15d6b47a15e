// lib/store/info.ts: the info file says what a directory is. A round trip keeps it;
// anything else in its place is ERR_CORRUPT (damaged) or ERR_FORMAT (not
// ours, or too new), naming the directory and the file.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { crc32c } from '../lib/store/crc32c.js';
import { QueueError } from '../lib/errors.js';
import { FORMAT_VERSION, INFO_FILE, readInfo, writeInfo } from '../lib/store/info.js';
import { tempDir } from './helpers.js';

function infoPath(dir: string): string {
  return path.join(dir, INFO_FILE);
}

function rejects(dir: string, code: 'ERR_CORRUPT' | 'ERR_FORMAT', mentions?: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof QueueError, String(error));
    assert.equal(error.code, code);
    assert.equal(error.dir, dir);
    assert.equal(error.file, infoPath(dir));
    assert.ok(error.message.includes(dir), error.message);
    assert.ok(error.message.includes(infoPath(dir)), error.message);
    if (mentions !== undefined) assert.ok(error.message.includes(mentions), error.message);
    return true;
  };
}

describe('writeInfo and readInfo', () => {
  test('round trip of the chunk size and serializer name, with the format and current version', (t) => {
    const dir = tempDir(t);
    const written = writeInfo(dir, 250, 'msgpack');
    assert.deepEqual(written, { format: 'perq', version: FORMAT_VERSION, chunkSize: 250, serializer: 'msgpack' });
    assert.deepEqual(readInfo(dir), written);
  });

  test('a custom serializer name, with characters JSON must escape, round trips', (t) => {
    const dir = tempDir(t);
    const name = 'my "fancy"\\serializer\n\u00e9\u{1f600}';
    writeInfo(dir, 1, name);
    assert.equal(readInfo(dir)?.serializer, name);
  });

  test('the file is plain JSON a person can read', (t) => {
    const dir = tempDir(t);
    writeInfo(dir, 100, 'cbor');
    const parsed: unknown = JSON.parse(fs.readFileSync(infoPath(dir), 'utf8'));
    const check = crc32c(Buffer.from(JSON.stringify({ format: 'perq', version: FORMAT_VERSION, chunkSize: 100, serializer: 'cbor' })))
      .toString(16)
      .padStart(8, '0');
    assert.deepEqual(parsed, { format: 'perq', version: FORMAT_VERSION, chunkSize: 100, serializer: 'cbor', check });
  });

  test('a changed byte that still parses as JSON (a digit, a space) is ERR_CORRUPT: its check no longer matches', (t) => {
    const dir = tempDir(t);
    writeInfo(dir, 100, 'cbor');
    const text = fs.readFileSync(infoPath(dir), 'utf8');
    for (const [from, to] of [
      ['"chunkSize":100,', '"chunkSize":10 ,'],
      ['"chunkSize":100', '"chunkSize":900'],
      ['"cbor"', '"json"'],
    ] as const) {
      fs.writeFileSync(infoPath(dir), text.replace(from, to));
      JSON.parse(fs.readFileSync(infoPath(dir), 'utf8'));
      assert.throws(() => readInfo(dir), rejects(dir, 'ERR_CORRUPT', 'check'), `${from} -> ${to}`);
    }
  });

  test('a format 1 file (no check) is ERR_FORMAT naming the version', (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(infoPath(dir), '{"format":"perq","version":1,"chunkSize":100,"serializer":"cbor"}\n');
    assert.throws(() => readInfo(dir), rejects(dir, 'ERR_FORMAT', 'version 1'));
  });

  test('writing again replaces the file whole and leaves no temporary file', (t) => {
    const dir = tempDir(t);
    writeInfo(dir, 100, 'cbor');
    writeInfo(dir, 7, 'json');
    assert.deepEqual(readInfo(dir), { format: 'perq', version: FORMAT_VERSION, chunkSize: 7, serializer: 'json' });
    assert.deepEqual(fs.readdirSync(dir), [INFO_FILE]);
  });

  test('a missing info file reads as null', (t) => {
    const dir = tempDir(t);
    assert.equal(readInfo(dir), null);
  });

  test('writing into a directory that does not exist is ERR_IO naming the file', (t) => {
    const dir = path.join(tempDir(t), 'absent');
    assert.throws(
      () => writeInfo(dir, 100, 'cbor'),
      (error: unknown) => {
        assert.ok(error instanceof QueueError);
        assert.equal(error.code, 'ERR_IO');
        assert.equal(error.file, infoPath(dir));
        return true;
      },
    );
  });
});

describe('damaged info files are ERR_CORRUPT', () => {
  test('the file cut short at every length', (t) => {
    const dir = tempDir(t);
    writeInfo(dir, 100, 'cbor');
    const whole = fs.readFileSync(infoPath(dir), 'utf8').trimEnd();
    for (let cut = 0; cut < whole.length; cut++) {
      fs.writeFileSync(infoPath(dir), whole.slice(0, cut));
      assert.throws(() => readInfo(dir), rejects(dir, 'ERR_CORRUPT'), `cut to ${cut} characters`);
    }
  });

  test('binary garbage and an empty file beside a cursor file', (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(path.join(dir, 'cursor'), Buffer.alloc(24));
    for (const bytes of [Buffer.from([0x00, 0xff, 0x13, 0x37, 0x80, 0x7b]), Buffer.alloc(64), Buffer.alloc(0)]) {
      fs.writeFileSync(infoPath(dir), bytes);
      assert.throws(() => readInfo(dir), rejects(dir, 'ERR_CORRUPT'));
    }
  });

  test("perq's format with an impossible chunk size or serializer", (t) => {
    const dir = tempDir(t);
    for (const fields of [
      { chunkSize: 0, serializer: 'cbor' },
      { chunkSize: -5, serializer: 'cbor' },
      { chunkSize: 2.5, serializer: 'cbor' },
      { chunkSize: '100', serializer: 'cbor' },
      { serializer: 'cbor' },
      { chunkSize: 100 },
      { chunkSize: 100, serializer: 7 },
    ]) {
      fs.writeFileSync(infoPath(dir), JSON.stringify({ format: 'perq', version: FORMAT_VERSION, ...fields }));
      assert.throws(() => readInfo(dir), rejects(dir, 'ERR_CORRUPT'), JSON.stringify(fields));
    }
  });
});

describe("info files that are not a perq queue's are ERR_FORMAT", () => {
  test("foreign JSON: another program's object, an array, a string, null, a number", (t) => {
    const dir = tempDir(t);
    for (const text of [
      '{"name":"my-app","version":"1.0.0"}',
      '{"format":"perqx","version":1,"chunkSize":100,"serializer":"cbor"}',
      '[]',
      '"perq"',
      'null',
      '42',
    ]) {
      fs.writeFileSync(infoPath(dir), text);
      assert.throws(() => readInfo(dir), rejects(dir, 'ERR_FORMAT'), text);
    }
  });

  test("an info file that is not JSON, with no perq file beside it (persist-queue's pickled info)", (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(infoPath(dir), Buffer.from([0x80, 0x04, 0x95, 0x2a, 0x00, 0x7d, 0x94, 0x28, 0x8c, 0x04, 0x73, 0x69, 0x7a, 0x65]));
    fs.writeFileSync(path.join(dir, 'q00000'), 'x');
    assert.throws(() => readInfo(dir), rejects(dir, 'ERR_FORMAT', 'not a perq queue'));
  });

  test('a newer format version names both versions', (t) => {
    const dir = tempDir(t);
    const newer = FORMAT_VERSION + 1;
    fs.writeFileSync(infoPath(dir), JSON.stringify({ format: 'perq', version: newer, chunkSize: 100, serializer: 'cbor' }));
    assert.throws(() => readInfo(dir), rejects(dir, 'ERR_FORMAT', String(newer)));
    assert.throws(() => readInfo(dir), rejects(dir, 'ERR_FORMAT', String(FORMAT_VERSION)));
  });

  test('a version that is not a whole number >= 1 is damage', (t) => {
    const dir = tempDir(t);
    for (const version of ['1', null, [1], 0, -1, 1.5]) {
      fs.writeFileSync(infoPath(dir), JSON.stringify({ format: 'perq', version, chunkSize: 100, serializer: 'cbor' }));
      assert.throws(() => readInfo(dir), rejects(dir, 'ERR_CORRUPT'), JSON.stringify(version));
    }
  });
});
