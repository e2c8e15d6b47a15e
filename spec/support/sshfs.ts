// A real network file system view of a local directory, for specs: a
// throwaway sshd on 127.0.0.1 (started here, as the current user) and an
// sshfs mount of the directory over it. Linux only; needs the Debian packages
// sshfs and openssh-server (.ci/install-sshfs installs them) and /dev/fuse.
//
// The mount is made as uncached as sshfs allows, so that what a local process
// writes is seen through the mount at once: no directory/attribute cache in
// sshfs (dir_cache=no), no kernel attribute/name caches (the *_timeout=0
// options), and direct_io so that reads never come from the page cache (an
// fd held open through the mount otherwise keeps serving stale pages after a
// local in-place write).
//
// Known differences from a local file system (SFTP protocol version 3):
// mtimes cross the mount in whole seconds (and as 32-bit seconds), flock()
// through the mount is local to this mount and does not exclude a flock on
// the local path, and fs.watch() through the mount sees only changes made
// through the mount.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { commandErrorText } from './reporting.js';
import { running } from '../helpers.js';

const execFileAsync = promisify(execFile);

const SSHD = '/usr/sbin/sshd';
const INSTALL_HINT = 'run .ci/install-sshfs (or: apt-get install -y sshfs openssh-server)';
/** How long sshd may take to listen, and sshfs to mount. */
const START_TIMEOUT_MS = 15_000;
/** How long unmount waits for each child to exit before killing it. */
const STOP_TIMEOUT_MS = 5_000;

export interface SshfsMount {
  /** Where `localDir` is visible through sshfs. */
  mountPoint: string;
  /** Unmounts, stops sshd and removes the temporary directories; safe to call more than once. */
  unmount(): Promise<void>;
}

/** Options given to sshfs: first the FUSE/sshfs ones, then the ssh client ones. */
export const SSHFS_MOUNT_OPTIONS = [
  // No caching anywhere, see the top of this file.
  'dir_cache=no',
  'attr_timeout=0',
  'entry_timeout=0',
  'negative_timeout=0',
  'direct_io',
  // ssh: our generated key only, never prompt, no known_hosts bookkeeping.
  'BatchMode=yes',
  'IdentitiesOnly=yes',
  'StrictHostKeyChecking=no',
  'UserKnownHostsFile=/dev/null',
  'LogLevel=ERROR',
  'ConnectTimeout=10',
];

/** The tools needed; throws one Error naming everything missing and how to install it. */
export function checkPrerequisites(searchPath = process.env.PATH ?? ''): { sshfs: string; sshKeygen: string; fusermount: string } {
  if (process.platform !== 'linux') throw new Error(`sshfs mounts for specs need Linux (this is ${process.platform})`);
  const sshfs = which('sshfs', searchPath);
  const ssh = which('ssh', searchPath);
  const sshKeygen = which('ssh-keygen', searchPath);
  // sshfs 3 is built on libfuse3, whose tool is fusermount3; older systems only have fusermount.
  const fusermount = which('fusermount3', searchPath) ?? which('fusermount', searchPath);
  const missing = [
    sshfs === undefined && 'sshfs',
    ssh === undefined && 'ssh',
    sshKeygen === undefined && 'ssh-keygen',
    fusermount === undefined && 'fusermount3/fusermount',
    !isExecutable(SSHD) && SSHD,
  ].filter((name): name is string => typeof name === 'string');
  if (missing.length > 0) {
    const what = missing.includes('sshfs') ? 'sshfs not installed' : 'sshfs prerequisites missing';
    throw new Error(`${what} (${missing.join(', ')} not found): ${INSTALL_HINT}`);
  }
  if (!fs.existsSync('/dev/fuse')) {
    throw new Error(
      '/dev/fuse is missing: FUSE is not available here (in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN)',
    );
  }
  return { sshfs: sshfs!, sshKeygen: sshKeygen!, fusermount: fusermount! };
}

/**
 * Mounts `localDir` over ssh on a fresh temporary mount point. Throws a clear
 * Error if anything needed is missing or fails to start, leaving nothing behind.
 */
export async function mountOverSsh(localDir: string): Promise<SshfsMount> {
  const tools = checkPrerequisites();
  const remoteDir = path.resolve(localDir);
  if (!fs.statSync(remoteDir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`mountOverSsh: ${remoteDir} is not a directory`);

  const parts = new Parts(tools.fusermount);
  try {
    // Keys, sshd_config and pid file live in one private temp dir; the mount
    // point is a separate one so that removing the former never recurses into a mount.
    parts.workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perq-sshd-'));
    const hostKey = path.join(parts.workDir, 'host_key');
    const clientKey = path.join(parts.workDir, 'client_key');
    await keygen(tools.sshKeygen, hostKey);
    await keygen(tools.sshKeygen, clientKey);

    const port = await startSshd(parts, hostKey, `${clientKey}.pub`);

    parts.mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'perq-sshfs-'));
    await startSshfs(parts, tools.sshfs, remoteDir, port, clientKey);
  } catch (error) {
    await parts.stop().catch(() => {}); // the setup error is the one worth reporting
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    mountPoint: parts.mountPoint,
    unmount: () => (stopping ??= parts.stop()),
  };
}

/** What one mount has started so far, and how to stop it (in reverse). */
class Parts {
  workDir: string | undefined;
  mountPoint: string | undefined;
  sshd: ChildProcess | undefined;
  sshfs: ChildProcess | undefined;
  private readonly onExit = () => this.stopSync();

  constructor(private readonly fusermount: string) {
    // If a spec never unmounts, do it as the process exits rather than leave a mount behind.
    process.once('exit', this.onExit);
  }

  /** Unmount, then stop sshfs and sshd, then remove the temp dirs; throws what went wrong at the end. */
  async stop(): Promise<void> {
    process.removeListener('exit', this.onExit);
    const problems: string[] = [];
    const wasMounted = this.mountPoint !== undefined && isMounted(this.mountPoint);
    if (wasMounted) {
      const error = await this.fusermountU(this.mountPoint!);
      if (error !== undefined) problems.push(error);
    }
    // Unmounting ends sshfs (-f); it closing its ssh connection ends the sshd session.
    if (this.sshfs !== undefined) await stopChild(this.sshfs, wasMounted ? STOP_TIMEOUT_MS : 0);
    if (this.sshd !== undefined) await stopChild(this.sshd);
    if (this.mountPoint !== undefined) {
      if (isMounted(this.mountPoint)) problems.push(`${this.mountPoint} is still mounted; left in place`);
      else removeEmptyDir(this.mountPoint);
    }
    if (this.workDir !== undefined) fs.rmSync(this.workDir, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`sshfs unmount: ${problems.join('; ')}`);
  }

  /** `fusermount -u`, retried while busy (a closing fd), then lazily as a last resort. */
  private async fusermountU(mountPoint: string): Promise<string | undefined> {
    let lastError = '';
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        await execFileAsync(this.fusermount, ['-u', mountPoint]);
        return undefined;
      } catch (error) {
        lastError = commandErrorText(error);
        if (!isMounted(mountPoint)) return undefined;
        await delay(100);
      }
    }
    try {
      await execFileAsync(this.fusermount, ['-u', '-z', mountPoint]);
      return undefined;
    } catch (error) {
      return `${this.fusermount} -u ${mountPoint} failed: ${lastError}; lazy unmount failed too: ${commandErrorText(error)}`;
    }
  }

  /** The process-exit safety net: synchronous, best effort. */
  private stopSync(): void {
    if (this.mountPoint !== undefined && isMounted(this.mountPoint)) spawnSync(this.fusermount, ['-u', '-z', this.mountPoint]);
    for (const child of [this.sshfs, this.sshd]) if (child !== undefined && running(child)) child.kill('SIGKILL');
    try {
      if (this.mountPoint !== undefined && !isMounted(this.mountPoint)) removeEmptyDir(this.mountPoint);
      if (this.workDir !== undefined) fs.rmSync(this.workDir, { recursive: true, force: true });
    } catch {
      // Exiting anyway; a leftover empty temp dir is harmless.
    }
  }
}

/** A throwaway ed25519 key pair without passphrase at `file` and `file.pub`. */
async function keygen(sshKeygen: string, file: string): Promise<void> {
  try {
    await execFileAsync(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'perq-spec', '-f', file]);
  } catch (error) {
    throw new Error(`ssh-keygen failed for ${file}: ${commandErrorText(error)}`);
  }
}

/** Starts sshd on a free port of 127.0.0.1 and resolves with the port once it accepts connections. */
async function startSshd(parts: Parts, hostKey: string, authorizedKeys: string): Promise<number> {
  // sshd running as root insists on its privilege separation dir (normally made by systemd).
  if (process.getuid?.() === 0) {
    try {
      fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    } catch (error) {
      throw new Error(`cannot create /run/sshd (sshd's privilege separation dir): ${commandErrorText(error)}`);
    }
  }
  const workDir = parts.workDir!;
  // The free port is found by binding port 0 and closing it, so another
  // process may take it before sshd binds it: retry with a new port then.
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = path.join(workDir, 'sshd_config');
    fs.writeFileSync(
      config,
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        `PidFile ${path.join(workDir, 'sshd.pid')}`,
        'UsePAM no',
        // The generated files are in /tmp; do not check the modes of their directories.
        'StrictModes no',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    // -D: stay in the foreground as our child; -e: log to stderr, which we keep for errors.
    const sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    parts.sshd = sshd;
    const log = collect(sshd);
    try {
      // Its own "listening" log line first: a connect alone could reach whoever else took the port.
      const listening = `Server listening on 127.0.0.1 port ${port}`;
      await waitFor(async () => log().includes(listening) && (await canConnect(port)), sshd, `sshd on 127.0.0.1:${port}`);
      return port;
    } catch (error) {
      await stopChild(sshd);
      lastError = `${commandErrorText(error)}\n${log()}`;
      if (!/address already in use/i.test(log())) break;
    }
  }
  throw new Error(`sshd did not start: ${lastError.trim()}`);
}

/** Runs sshfs in the foreground (so it is our child) and resolves once the mount is visible. */
async function startSshfs(parts: Parts, sshfsPath: string, remoteDir: string, port: number, clientKey: string): Promise<void> {
  const mountPoint = parts.mountPoint!;
  const user = os.userInfo().username;
  const args = [
    `${user}@127.0.0.1:${remoteDir}`,
    mountPoint,
    '-f', // foreground: a child we can wait for and kill, with its errors on our pipe
    '-F',
    '/dev/null', // ignore the user's ~/.ssh/config
    '-p',
    String(port),
    '-o',
    [`IdentityFile=${clientKey}`, ...SSHFS_MOUNT_OPTIONS].join(','),
  ];
  const sshfs = spawn(sshfsPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  parts.sshfs = sshfs;
  const log = collect(sshfs);
  try {
    await waitFor(() => isMounted(mountPoint), sshfs, `the sshfs mount on ${mountPoint}`);
    // The mount table lists it once FUSE is set up; a readdir proves sftp answers too.
    fs.readdirSync(mountPoint);
  } catch (error) {
    throw new Error(`sshfs did not mount ${remoteDir}: ${commandErrorText(error)}\n${log()}`.trim());
  }
}

/** Polls `ready` until it is true; rejects if `child` exits first or after START_TIMEOUT_MS. */
async function waitFor(ready: () => boolean | Promise<boolean>, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await ready()) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${path.basename(String(child.spawnfile))} exited (${child.exitCode ?? child.signalCode}) before ${what} was ready`);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${START_TIMEOUT_MS} ms waiting for ${what}`);
    await delay(25);
  }
}

/**
 * Waits up to `graceMs` for `child` to exit by itself (sshfs does once
 * unmounted), then asks with SIGTERM (sshfs then unmounts itself), then SIGKILL.
 */
async function stopChild(child: ChildProcess, graceMs = 0): Promise<void> {
  if (await exitedWithin(child, graceMs)) return;
  child.kill('SIGTERM');
  if (await exitedWithin(child, STOP_TIMEOUT_MS)) return;
  child.kill('SIGKILL');
  await exitedWithin(child, STOP_TIMEOUT_MS);
}

function exitedWithin(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  if (ms === 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.removeListener('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Keeps the last few KB of a child's stderr, for error messages. The child
 * and its pipe are unref'd: a spec that forgets to unmount must not hang the
 * test process (the 'exit' safety net then cleans up).
 */
function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    text = (text + chunk).slice(-8192);
  });
  child.on('error', (error) => {
    text += `\n${error.message}`;
  });
  child.unref();
  (child.stderr as net.Socket).unref();
  return () => text;
}

/** A port on 127.0.0.1 that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether /proc/mounts lists `mountPoint` (which escapes space, tab, newline and backslash in octal). */
export function isMounted(mountPoint: string): boolean {
  const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => unescape(line.split(' ')[1] ?? '') === mountPoint);
}

/** rmdir, never a recursive rm: a mount point must not be emptied through a mount still on it. */
function removeEmptyDir(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function which(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
