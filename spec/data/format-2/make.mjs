// Made the format-2 fixture directories beside this file, with perq's code of
// the commit named in README.md (format 2). Kept as the record of how they
// were made: run again with newer code, it would write that code's format,
// so do not regenerate them. Usage (from the repository root, after a build):
//   node spec/data/format-2/make.mjs
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { Queue } = await import(path.join(here, '../../../dist/lib/index.js'));

/** Items of every kind the default serializer (cbor) stores. */
const ITEMS = [
  'first',
  42,
  -1.5,
  null,
  true,
  { job: 'resize', id: 7, tags: ['a', 'b'] },
  ['x', 1, { y: [2] }],
  'Grüße, 世界, 🎉',
  Buffer.from([0, 1, 2, 254, 255]),
  'x'.repeat(5000),
  { nested: { deep: { deeper: 'yes' } } },
  '',
  0,
  'last of the first batch',
];

async function clean(dir) {
  // chunkSize 4: items 0..13 in chunks 0..3, one consumer acknowledging in
  // order (the prefix), another acknowledging above it, then both closed.
  const a = await Queue.open(dir, { chunkSize: 4 });
  const b = await Queue.open(dir);
  await a.putMany(ITEMS);
  for (let i = 0; i < 5; i++) await a.get();
  await a.taskDone(5); // prefix 5: chunk 0 deleted (kept as a spare)
  await a.get(); // 5, held by a
  await b.get(); // 6
  await b.get(); // 7
  await b.taskDone(2); // 6 and 7 acknowledged above the prefix
  await a.close(); // 5 handed back: returned
  await b.close();
}

async function killed(dir) {
  // A consumer SIGKILLed holding items, with cursor.log entries not yet folded
  // and a dirty state; json serializer.
  const q = await Queue.open(dir, { chunkSize: 5, serializer: 'json' });
  await q.putMany(Array.from({ length: 23 }, (_, i) => ({ n: i, text: `item ${i}` })));
  await q.close();
  const child = fork(fileURLToPath(import.meta.url), ['--child', dir]);
  await new Promise((resolve) => child.on('message', resolve));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
}

async function child(dir) {
  const q = await Queue.open(dir);
  for (let i = 0; i < 7; i++) {
    await q.get();
    await q.taskDone();
  }
  await q.getMany(3); // 7, 8, 9 held when it dies
  await q.put({ n: 23, text: 'put by the consumer' });
  process.send('ready');
  await new Promise(() => {});
}

/** Drains a copy of `dir` with this code: what every later perq must give too. */
async function drainCopy(dir) {
  const copy = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'perq-fixture-'));
  fs.cpSync(dir, copy, { recursive: true });
  const q = await Queue.open(copy, { serializer: JSON.parse(fs.readFileSync(path.join(dir, 'info'), 'utf8')).serializer });
  const items = [];
  for (;;) {
    try {
      items.push(await q.get({ block: false }));
    } catch {
      break;
    }
  }
  await q.close();
  fs.rmSync(copy, { recursive: true, force: true });
  return items;
}

if (process.argv[2] === '--child') await child(process.argv[3]);
else {
  const expected = {};
  for (const [name, make] of [
    ['clean-cbor', clean],
    ['killed-json', killed],
  ]) {
    const dir = path.join(here, name);
    fs.rmSync(dir, { recursive: true, force: true });
    await make(dir);
    fs.rmSync(path.join(dir, 'lock'), { force: true });
    expected[name] = (await drainCopy(dir)).map((item) => (Buffer.isBuffer(item) ? { buffer: [...item] } : item));
  }
  fs.writeFileSync(path.join(here, 'expected.json'), `${JSON.stringify(expected, null, 1)}\n`);
}
