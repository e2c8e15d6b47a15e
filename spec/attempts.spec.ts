// Durable attempt counts of the task queue (lib/task/attempts.ts) on real
// files: a record reads back as written, a missing or half-written one is no
// attempt yet, and only an item id the pusher made is ever used as a path.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AttemptLog, isItemId } from '../lib/task/attempts.js';
import { tempDir } from './helpers.js';

test('a record reads back as written, and remove() forgets it', (t) => {
  const log = new AttemptLog(path.join(tempDir(t), 'attempts'));
  const id = randomUUID();
  assert.deepEqual(log.read(id), { started: 0, errors: [] });
  log.write(id, { started: 2, errors: ['Error: first'] });
  assert.deepEqual(log.read(id), { started: 2, errors: ['Error: first'] });
  // A second log on the same folder (the next worker) sees the same record.
  assert.deepEqual(new AttemptLog(log.dir).read(id), { started: 2, errors: ['Error: first'] });
  log.remove(id);
  assert.deepEqual(log.read(id), { started: 0, errors: [] });
  log.remove(id); // already gone: no error
});

test('a record cut short as it was written is no attempt yet; fields of the wrong type are read as none', (t) => {
  const log = new AttemptLog(path.join(tempDir(t), 'attempts'));
  const id = randomUUID();
  fs.writeFileSync(path.join(log.dir, id), '{"started":3,"err');
  assert.deepEqual(log.read(id), { started: 0, errors: [] });
  fs.writeFileSync(path.join(log.dir, id), JSON.stringify({ started: -1, errors: 'x' }));
  assert.deepEqual(log.read(id), { started: 0, errors: [] });
  fs.writeFileSync(path.join(log.dir, id), JSON.stringify({ started: 1.5, errors: [1, 'two'] }));
  assert.deepEqual(log.read(id), { started: 0, errors: ['1', 'two'] });
});

test('only a UUID is an item id: anything else is refused before it becomes a path', (t) => {
  const dir = tempDir(t);
  const log = new AttemptLog(path.join(dir, 'attempts'));
  for (const bad of ['../state', '', 'abc', `${randomUUID()}/x`, randomUUID().toUpperCase()]) {
    assert.equal(isItemId(bad), false, bad);
    assert.throws(() => log.read(bad), TypeError);
    assert.throws(() => log.write(bad, { started: 1, errors: [] }), TypeError);
  }
  assert.equal(isItemId(42), false);
  assert.deepEqual(fs.readdirSync(log.dir), [], 'nothing was written');
});

test('a record that cannot be written is ERR_IO naming the folder', (t) => {
  const log = new AttemptLog(path.join(tempDir(t), 'attempts'));
  fs.rmSync(log.dir, { recursive: true });
  assert.throws(
    () => log.write(randomUUID(), { started: 1, errors: [] }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_IO');
      assert.ok(error.message.includes(log.dir), error.message);
      return true;
    },
  );
});
