// The package as a user imports it: `import { Queue } from 'perq'` through the
// exports map (package self-reference), with the names SPEC fixes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { tempQueueDir } from './helpers.js';

const require = createRequire(import.meta.url);

test("import from 'perq' resolves through the exports map", async (t) => {
  const perq = await import('perq');
  assert.deepEqual(Object.keys(perq).sort(), ['Empty', 'Full', 'Queue', 'QueueError', 'taskQueue']);
  assert.ok(new perq.Empty('/x') instanceof perq.QueueError);
  assert.ok(new perq.Full('/x') instanceof perq.QueueError);
  const q = await perq.Queue.open(tempQueueDir(t));
  await q.put('via the package name');
  assert.equal(await q.get(), 'via the package name');
  await q.close();
});

test('package.json declares what SPEC asks for', () => {
  const pkg = JSON.parse(fs.readFileSync(require.resolve('perq/package.json'), 'utf8')) as {
    name: string;
    type: string;
    engines: { node: string };
    exports: Record<string, { types?: string; import?: string }>;
    dependencies: Record<string, string>;
  };
  assert.equal(pkg.name, 'perq');
  assert.equal(pkg.type, 'module');
  assert.match(pkg.engines.node, />=\s*20/);
  assert.ok(pkg.exports['.'].types && pkg.exports['.'].import);
  for (const dep of ['write-file-atomic', 'proper-lockfile', 'cbor-x', 'fs-ext']) assert.ok(pkg.dependencies[dep], dep);
  assert.ok(fs.existsSync(new URL('../lib/index.d.ts', import.meta.url)), 'types are built beside the code');
});
