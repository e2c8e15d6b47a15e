// A real GlusterFS volume for specs: a private glusterd (started here, as
// root), a one-brick volume on a local directory, and that volume mounted
// through FUSE more than once on this machine. Each mount is its own
// GlusterFS client with its own caches, as on two hosts: what one mount
// writes, another sees only as GlusterFS lets it (write-behind in the
// writer's client; the kernel's attribute and page caches, md-cache and
// quick-read in the reader's). Linux only, as root; needs the Debian packages
// glusterfs-server and glusterfs-client (.ci/install-glusterfs) and /dev/fuse.
//
// Nothing is shared with a system glusterd: the working directory, run
// directory, CLI socket and logs are in a temporary directory. glusterd and
// the brick listen on 127.0.0.2 (GlusterFS refuses 127.0.0.1 and localhost as
// a brick's host), port 24007 for glusterd, so a system glusterd must not be
// running. The volume keeps GlusterFS's default options unless told otherwise.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { commandErrorText } from './reporting.js';
import { running } from '../helpers.js';

const execFileAsync = promisify(execFile);

export const INSTALL_HINT = 'run .ci/install-glusterfs (or: apt-get install -y glusterfs-server glusterfs-client)';
/** The address glusterd, the brick and the mounts use: loopback, but not one GlusterFS refuses. */
export const GLUSTER_HOST = '127.0.0.2';
const GLUSTERD_PORT = 24007;
export const VOLUME_NAME = 'perq';
/** statfs(2) f_type of every FUSE mount (FUSE_SUPER_MAGIC). */
export const FUSE_SUPER_MAGIC = 0x65735546;
/** How long glusterd may take to answer, and a mount to appear. */
const START_TIMEOUT_MS = 30_000;
/** How long a stopping child may take before it is killed. */
const STOP_TIMEOUT_MS = 5_000;
/** Directories searched besides PATH by default: the tools live in sbin. */
const SBIN = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

export interface GlusterTools {
  glusterd: string;
  gluster: string;
  glusterfs: string;
  umount: string;
}

export interface GlusterVolumeOptions {
  /** How many FUSE mounts of the volume (default 2). */
  mounts?: number;
  /** Extra arguments for each glusterfs client, e.g. ['--attribute-timeout=0']. */
  mountArguments?: string[];
  /** `gluster volume set` options applied before the volume starts, e.g. { 'performance.quick-read': 'off' }. */
  volumeOptions?: Record<string, string>;
}

export interface GlusterVolume {
  /** The brick: the server side's directory. Read it to see what reached the server; never write into it. */
  brick: string;
  /** Where the volume is mounted, one directory per client. */
  mountPoints: string[];
  /** glusterd's, the brick's and each mount's log files, for failure messages. */
  logs(): string;
  /** The pids of glusterd, the brick and the mounts' clients (for checking that stop leaves none). */
  pids(): number[];
  /** Unmounts, stops and deletes the volume, stops glusterd, removes the temporary directories; safe to call more than once. */
  stop(): Promise<void>;
}

/** The tools needed; throws one Error naming everything missing and how to install it. */
export function checkPrerequisites(searchPath = [process.env.PATH ?? '', ...SBIN].join(path.delimiter)): GlusterTools {
  if (process.platform !== 'linux') throw new Error(`GlusterFS mounts for specs need Linux (this is ${process.platform})`);
  const dirs = searchPath.split(path.delimiter);
  const glusterd = which('glusterd', dirs);
  const gluster = which('gluster', dirs);
  const glusterfs = which('glusterfs', dirs);
  const umount = which('umount', dirs);
  const missing = [
    glusterd === undefined && 'glusterd',
    gluster === undefined && 'gluster',
    glusterfs === undefined && 'glusterfs',
    umount === undefined && 'umount',
  ].filter((name): name is string => typeof name === 'string');
  if (missing.length > 0) {
    const what = glusterd === undefined || glusterfs === undefined ? 'GlusterFS not installed' : 'GlusterFS prerequisites missing';
    throw new Error(`${what} (${missing.join(', ')} not found): ${INSTALL_HINT}`);
  }
  if (process.getuid?.() !== 0) throw new Error('GlusterFS specs must run as root (glusterd and its FUSE mounts need it)');
  if (!fs.existsSync('/dev/fuse')) {
    throw new Error(
      '/dev/fuse is missing: FUSE is not available here (in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN)',
    );
  }
  return { glusterd: glusterd!, gluster: gluster!, glusterfs: glusterfs!, umount: umount! };
}

/**
 * Starts glusterd, creates and starts a one-brick volume and mounts it
 * `mounts` times. Throws a clear Error if anything is missing or fails to
 * start, leaving nothing behind.
 */
export async function startGlusterVolume(options: GlusterVolumeOptions = {}): Promise<GlusterVolume> {
  const tools = checkPrerequisites();
  const parts = new Parts(tools);
  try {
    await parts.startGlusterd();
    await parts.createVolume(options.volumeOptions ?? {});
    for (let i = 0; i < (options.mounts ?? 2); i++) await parts.mount(options.mountArguments ?? []);
  } catch (error) {
    const logs = parts.logs();
    await parts.stop().catch(() => {}); // the setup error is the one worth reporting
    throw new Error(`${(error as Error).message}\n${logs}`.trim());
  }
  let stopping: Promise<void> | undefined;
  return {
    brick: parts.brick,
    mountPoints: parts.mounts.map((m) => m.dir),
    logs: () => parts.logs(),
    pids: () =>
      [parts.glusterd?.pid, ...parts.brickPids(), ...parts.mounts.map((m) => m.child.pid)].filter(
        (pid): pid is number => pid !== undefined,
      ),
    stop: () => (stopping ??= parts.stop()),
  };
}

interface Mount {
  dir: string;
  log: string;
  child: ChildProcess;
}

/** What one volume has started so far, and how to stop it (in reverse). */
class Parts {
  readonly workDir: string;
  readonly brick: string;
  readonly mounts: Mount[] = [];
  glusterd: ChildProcess | undefined;
  volumeCreated = false;
  #tools: GlusterTools;
  #glusterdLog = '';
  private readonly onExit = () => this.stopSync();

  constructor(tools: GlusterTools) {
    this.#tools = tools;
    // glusterd's files, logs and the brick; the mount points are separate
    // temp dirs, so that removing this one never recurses into a mount.
    this.workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perq-gluster-'));
    this.brick = path.join(this.workDir, 'brick');
    for (const sub of ['glusterd', 'run', 'log', 'brick']) fs.mkdirSync(path.join(this.workDir, sub));
    // If a spec never stops the volume, do it as the process exits rather than leave mounts and daemons behind.
    process.once('exit', this.onExit);
  }

  get #socket(): string {
    return path.join(this.workDir, 'run', 'glusterd.socket');
  }

  async startGlusterd(): Promise<void> {
    await assertPortFree(GLUSTER_HOST, GLUSTERD_PORT);
    const volfile = path.join(this.workDir, 'glusterd.vol');
    fs.writeFileSync(
      volfile,
      [
        'volume management',
        '    type mgmt/glusterd',
        `    option working-directory ${path.join(this.workDir, 'glusterd')}`,
        `    option run-directory ${path.join(this.workDir, 'run')}`,
        `    option glusterd-sockfile ${this.#socket}`,
        '    option transport-type socket',
        `    option transport.socket.bind-address ${GLUSTER_HOST}`,
        `    option transport.socket.listen-port ${GLUSTERD_PORT}`,
        '    option ping-timeout 0',
        '    option event-threads 1',
        'end-volume',
        '',
      ].join('\n'),
    );
    this.#glusterdLog = path.join(this.workDir, 'log', 'glusterd.log');
    // -N: stay in the foreground as our child.
    this.glusterd = spawn(
      this.#tools.glusterd,
      ['-N', '-f', volfile, '-p', path.join(this.workDir, 'run', 'glusterd.pid'), `--log-file=${this.#glusterdLog}`],
      {
        stdio: ['ignore', 'ignore', 'ignore'],
      },
    );
    this.glusterd.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.glusterd.exitCode !== null || this.glusterd.signalCode !== null)
        throw new Error(`glusterd exited (${this.glusterd.exitCode ?? this.glusterd.signalCode}) before it answered`);
      if (
        fs.existsSync(this.#socket) &&
        (await this.cli(['peer', 'status']).then(
          () => true,
          () => false,
        ))
      )
        return;
      if (Date.now() > deadline) throw new Error(`glusterd did not answer within ${START_TIMEOUT_MS} ms`);
      await delay(100);
    }
  }

  async createVolume(volumeOptions: Record<string, string>): Promise<void> {
    await this.cli(['volume', 'create', VOLUME_NAME, `${GLUSTER_HOST}:${this.brick}`, 'force']);
    this.volumeCreated = true;
    for (const [key, value] of Object.entries(volumeOptions)) await this.cli(['volume', 'set', VOLUME_NAME, key, value]);
    await this.cli(['volume', 'start', VOLUME_NAME]);
  }

  async mount(extra: string[]): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perq-glusterfs-'));
    const log = path.join(this.workDir, 'log', `mount-${this.mounts.length}.log`);
    const child = spawn(
      this.#tools.glusterfs,
      ['-N', `--volfile-server=${GLUSTER_HOST}`, `--volfile-id=${VOLUME_NAME}`, `--log-file=${log}`, ...extra, dir],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    child.unref();
    this.mounts.push({ dir, log, child });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`glusterfs exited (${child.exitCode ?? child.signalCode}) before ${dir} was mounted`);
      if (isMounted(dir) && statfsType(dir) === FUSE_SUPER_MAGIC) {
        // Mounted once the kernel lists it; the brick answers once a listing works.
        try {
          fs.readdirSync(dir);
          return;
        } catch {
          // ENOTCONN while the client connects to the brick: try again.
        }
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${START_TIMEOUT_MS} ms waiting for the GlusterFS mount on ${dir}`);
      await delay(50);
    }
  }

  /** `gluster` with our glusterd, never prompting; rejects with its output. */
  async cli(args: string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync(
        this.#tools.gluster,
        ['--mode=script', `--glusterd-sock=${this.#socket}`, `--log-file=${path.join(this.workDir, 'log', 'cli.log')}`, ...args],
        {
          timeout: START_TIMEOUT_MS,
        },
      );
      return stdout;
    } catch (error) {
      throw new Error(`gluster ${args.join(' ')} failed: ${commandErrorText(error)}`);
    }
  }

  logs(): string {
    const files = [this.#glusterdLog, ...this.mounts.map((m) => m.log), ...this.brickLogs()];
    return files
      .filter((file) => file !== '' && fs.existsSync(file))
      .map((file) => `--- ${file} (last lines, errors and warnings)\n${tailProblems(file)}`)
      .join('\n');
  }

  /** The brick's log: glusterd names it after the brick's path, under the system log dir. */
  brickLogs(): string[] {
    return [path.join('/var/log/glusterfs/bricks', `${this.brick.slice(1).replaceAll('/', '-')}.log`)];
  }

  /** Unmount, stop and delete the volume, stop glusterd, remove temp dirs; throws what went wrong at the end. */
  async stop(): Promise<void> {
    process.removeListener('exit', this.onExit);
    const problems: string[] = [];
    for (const mount of this.mounts) {
      const problem = await this.unmount(mount);
      if (problem !== undefined) problems.push(problem);
    }
    // Known before the volume stops: glusterd removes the pid files then, maybe before the brick has exited.
    const bricks = this.brickPids();
    if (this.volumeCreated && this.glusterd?.exitCode === null) {
      // Stopping the volume ends the brick process.
      await this.cli(['volume', 'stop', VOLUME_NAME, 'force']).catch((error: Error) => problems.push(error.message));
      await this.cli(['volume', 'delete', VOLUME_NAME]).catch((error: Error) => problems.push(error.message));
    }
    if (this.glusterd !== undefined) await stopChild(this.glusterd);
    // A brick still exiting, or one that outlived the volume stop (glusterd died first).
    for (const pid of new Set([...bricks, ...this.brickPids()])) await stopPid(pid);
    for (const mount of this.mounts) {
      if (isMounted(mount.dir)) problems.push(`${mount.dir} is still mounted; left in place`);
      else removeEmptyDir(mount.dir);
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
    for (const log of this.brickLogs()) fs.rmSync(log, { force: true });
    if (problems.length > 0) throw new Error(`GlusterFS teardown: ${problems.join('; ')}`);
  }

  /** umount (the client then exits by itself), retried while busy, then lazily as a last resort. */
  private async unmount(mount: Mount): Promise<string | undefined> {
    let lastError = '';
    if (isMounted(mount.dir)) {
      for (let attempt = 0; attempt < 20 && isMounted(mount.dir); attempt++) {
        try {
          await execFileAsync(this.#tools.umount, [mount.dir]);
        } catch (error) {
          lastError = commandErrorText(error);
          await delay(100);
        }
      }
      if (isMounted(mount.dir)) {
        try {
          await execFileAsync(this.#tools.umount, ['-l', mount.dir]);
        } catch (error) {
          return `umount ${mount.dir} failed: ${lastError}; lazy unmount failed too: ${commandErrorText(error)}`;
        }
      }
    }
    await stopChild(mount.child, STOP_TIMEOUT_MS);
    return undefined;
  }

  brickPids(): number[] {
    const dir = path.join(this.workDir, 'run', 'vols', VOLUME_NAME);
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((name) => name.endsWith('.pid'));
    } catch {
      return [];
    }
    return names
      .map((name) => Number(fs.readFileSync(path.join(dir, name), 'utf8').trim()))
      .filter((pid) => Number.isSafeInteger(pid) && pid > 0);
  }

  /** The process-exit safety net: synchronous, best effort. */
  private stopSync(): void {
    for (const mount of this.mounts) if (isMounted(mount.dir)) spawnSync(this.#tools.umount, ['-l', mount.dir]);
    const children = [...this.mounts.map((m) => m.child), this.glusterd];
    for (const child of children) if (child !== undefined && running(child)) child.kill('SIGKILL');
    for (const pid of this.brickPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    try {
      for (const mount of this.mounts) if (!isMounted(mount.dir)) removeEmptyDir(mount.dir);
      fs.rmSync(this.workDir, { recursive: true, force: true });
    } catch {
      // Exiting anyway; a leftover temp dir is harmless.
    }
  }
}

/** Waits up to `graceMs` for `child` to exit by itself, then SIGTERM, then SIGKILL. */
async function stopChild(child: ChildProcess, graceMs = 0): Promise<void> {
  if (await exitedWithin(child, graceMs)) return;
  child.kill('SIGTERM');
  if (await exitedWithin(child, STOP_TIMEOUT_MS)) return;
  child.kill('SIGKILL');
  await exitedWithin(child, STOP_TIMEOUT_MS);
}

/** The same for a process that is not our child (the brick, started by glusterd). */
async function stopPid(pid: number): Promise<void> {
  const alive = () => processRunning(pid) !== undefined;
  // The pid file may name a process long gone, whose pid was reused: only glusterfsd is ours to stop.
  if (!(processRunning(pid)?.comm.startsWith('glusterfs') ?? false)) return;
  // It may be on its way out already: a moment first, then SIGTERM, then SIGKILL.
  for (const signal of [undefined, 'SIGTERM', 'SIGKILL'] as const) {
    if (signal !== undefined && alive()) process.kill(pid, signal);
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (alive() && Date.now() < deadline) await delay(50);
    if (!alive()) return;
  }
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

/** Whether `pid` is a process that has not exited (a zombie, exited but not yet reaped, counts as gone). */
export function processRunning(pid: number): { comm: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ')'.
    const close = stat.lastIndexOf(')');
    if (stat.slice(close + 2, close + 3) === 'Z') return undefined;
    return { comm: stat.slice(stat.indexOf('(') + 1, close) };
  } catch {
    return undefined;
  }
}

/** Fails clearly when something (a system glusterd) already listens where ours must. */
function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          `cannot listen on ${host}:${port} (${error.code}): is a glusterd already running? Stop it first (the specs start their own)`,
        ),
      );
    });
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** The statfs(2) type of the file system `dir` is on. */
export function statfsType(dir: string): number {
  return fs.statfsSync(dir).type;
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

/** The last error and warning lines of a GlusterFS log, and its last few lines. */
function tailProblems(file: string): string {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const problems = lines.filter((line) => / [EWC] \[/.test(line)).slice(-10);
  return [...problems, '...', ...lines.slice(-5)].join('\n');
}

function which(name: string, dirs: string[]): string | undefined {
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
