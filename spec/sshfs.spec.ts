// spec/support/sshfs.ts: a local directory mounted over a real sshd with sshfs
// behaves as the network file system the other specs need: both sides see
// each other's writes at once, mkdir is atomic (proper-lockfile relies on
// EEXIST), utimes goes through, and appends from both sides all land.
// Needs sshfs and openssh-server (.ci/install-sshfs); without them these
// tests fail, with the message saying what to install.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isNetworkFileSystem } from '../lib/store/coherence.js';
import { checkPrerequisites, isMounted, mountOverSsh, type SshfsMount } from './support/sshfs.js';
import { tempDir, tempDirAfter } from './helpers.js';

/** A local temp dir mounted over sshfs for the whole describe block, torn down after it. */
function mountedDir(): { local: string; remote: () => string; mount: () => SshfsMount } {
  let mount: SshfsMount | undefined;
  // Unmount first: the local dir must not go while sshfs still serves it.
  const local = tempDirAfter({ after }, 'perq-sshfs-local-', () => mount?.unmount());
  before(async () => {
    mount = await mountOverSsh(local);
  });
  const current = () => {
    assert.ok(mount, 'not mounted');
    return mount;
  };
  return { local, remote: () => current().mountPoint, mount: current };
}

describe('an sshfs mount of a local directory', () => {
  const dir = mountedDir();
  const local = (name: string) => path.join(dir.local, name);
  const remote = (name: string) => path.join(dir.remote(), name);

  test('is a FUSE sshfs mount, not the local directory itself', () => {
    assert.ok(isMounted(dir.remote()));
    assert.notEqual(fs.statSync(dir.remote()).dev, fs.statSync(dir.local).dev);
  });

  test('a file written locally is listed and readable through the mount', () => {
    const content = randomBytes(200_000); // several SFTP packets
    fs.writeFileSync(local('from-local.bin'), content);
    assert.ok(fs.readdirSync(dir.remote()).includes('from-local.bin'));
    assert.deepEqual(fs.readFileSync(remote('from-local.bin')), content);
  });

  test('a file written through the mount is readable locally', () => {
    fs.writeFileSync(remote('from-mount.txt'), 'written through sshfs\n');
    assert.equal(fs.readFileSync(local('from-mount.txt'), 'utf8'), 'written through sshfs\n');
  });

  test('local changes are seen through the mount at once, even through an fd held open', () => {
    fs.writeFileSync(local('changing.txt'), 'aaaa');
    const fd = fs.openSync(remote('changing.txt'), 'r');
    try {
      const read = () => {
        const buffer = Buffer.alloc(16);
        return buffer.toString('utf8', 0, fs.readSync(fd, buffer, 0, buffer.length, 0));
      };
      assert.equal(read(), 'aaaa');
      // In place, same size, likely the same mtime second: only an uncached mount sees this.
      const localFd = fs.openSync(local('changing.txt'), 'r+');
      fs.writeSync(localFd, 'bb', 0);
      fs.closeSync(localFd);
      assert.equal(read(), 'bbaa');
      fs.appendFileSync(local('changing.txt'), 'cc');
      assert.equal(read(), 'bbaacc');
      assert.equal(fs.statSync(remote('changing.txt')).size, 6);
    } finally {
      fs.closeSync(fd);
    }
    fs.unlinkSync(local('changing.txt'));
    assert.equal(fs.existsSync(remote('changing.txt')), false);
  });

  test('mkdir through the mount fails with EEXIST when the directory exists locally, and the reverse', () => {
    fs.mkdirSync(local('made-locally.lock'));
    assert.throws(() => fs.mkdirSync(remote('made-locally.lock')), { code: 'EEXIST' });
    fs.mkdirSync(remote('made-remotely.lock'));
    assert.throws(() => fs.mkdirSync(local('made-remotely.lock')), { code: 'EEXIST' });
    // Released on one side, it can be taken again on the other.
    fs.rmdirSync(local('made-remotely.lock'));
    fs.mkdirSync(remote('made-remotely.lock'));
  });

  test('utimes through the mount changes the mtime seen locally, and the reverse', () => {
    fs.writeFileSync(local('touched'), '');
    // SFTP v3 carries whole seconds only: a lockfile's mtime has 1 s precision here.
    const then = new Date('2001-02-03T04:05:06.000Z');
    fs.utimesSync(remote('touched'), then, then);
    assert.equal(fs.statSync(local('touched')).mtimeMs, then.getTime());
    const later = new Date('2020-01-02T03:04:05.000Z');
    fs.utimesSync(local('touched'), later, later);
    assert.equal(fs.statSync(remote('touched')).mtimeMs, later.getTime());
  });

  test('appends from both sides to one file all land, in order', () => {
    const expected: string[] = [];
    fs.writeFileSync(local('log'), '');
    // One O_APPEND fd held open through the mount, the local side appending in between.
    const fd = fs.openSync(remote('log'), 'a');
    try {
      for (let i = 0; i < 20; i++) {
        fs.appendFileSync(local('log'), `local ${i}\n`);
        expected.push(`local ${i}`);
        fs.writeSync(fd, `mount fd ${i}\n`);
        expected.push(`mount fd ${i}`);
        fs.appendFileSync(remote('log'), `mount ${i}\n`);
        expected.push(`mount ${i}`);
      }
    } finally {
      fs.closeSync(fd);
    }
    const wanted = expected.map((line) => `${line}\n`).join('');
    assert.equal(fs.readFileSync(local('log'), 'utf8'), wanted);
    assert.equal(fs.readFileSync(remote('log'), 'utf8'), wanted);
  });

  test('rename over an existing file through the mount replaces it (atomic writes rely on it)', () => {
    fs.writeFileSync(local('target'), 'old');
    fs.writeFileSync(remote('target.tmp'), 'new');
    fs.renameSync(remote('target.tmp'), remote('target'));
    assert.equal(fs.readFileSync(local('target'), 'utf8'), 'new');
    assert.equal(fs.existsSync(local('target.tmp')), false);
  });
});

describe('mountOverSsh', () => {
  test('unmount removes the mount and its temp dirs, and is safe to call twice', async (t) => {
    const local = tempDir(t, 'perq-sshfs-local-');
    const mount = await mountOverSsh(local);
    try {
      fs.writeFileSync(path.join(local, 'kept'), 'x');
      assert.deepEqual(fs.readdirSync(mount.mountPoint), ['kept']);
      // perq tells the mount from the local directory under it (and so makes its writes visible to other hosts).
      assert.equal(isNetworkFileSystem(mount.mountPoint), true);
      assert.equal(isNetworkFileSystem(local), false);
    } finally {
      await Promise.all([mount.unmount(), mount.unmount()]);
      await mount.unmount();
    }
    assert.equal(isMounted(mount.mountPoint), false);
    assert.equal(fs.existsSync(mount.mountPoint), false);
    // The local files are untouched by the teardown.
    assert.equal(fs.readFileSync(path.join(local, 'kept'), 'utf8'), 'x');
  });

  test('names what to install when the tools are missing', () => {
    assert.throws(() => checkPrerequisites('/nonexistent'), /^Error: sshfs not installed .*apt-get install -y sshfs openssh-server/);
  });

  test('rejects a local path that is not a directory', async () => {
    await assert.rejects(mountOverSsh(path.join(os.tmpdir(), 'perq-no-such-dir-' + process.pid)), /is not a directory/);
  });
});
