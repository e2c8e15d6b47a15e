// A LazyFS mount for the power-loss suite: built and mounted with the
// scripts in shared/lazyfs (build.sh, mount.sh), a power cut is
// `lazyfs::clear-cache` written to its FIFO, done once its log says so.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** How long a clear-cache may take before the suite gives up on the mount. */
const CLEAR_TIMEOUT_MS = 10_000;
const CLEARED = 'cache is cleared';

/** Where shared/lazyfs is: $PERQ_LAZYFS_DIR, else ../shared/lazyfs beside the repository. */
export function lazyfsScripts(repoRoot: string): string {
  return process.env.PERQ_LAZYFS_DIR ?? path.resolve(repoRoot, '..', 'shared', 'lazyfs');
}

/** Why LazyFS cannot run here, or undefined when it can. */
export function unavailable(scripts: string): string | undefined {
  if (!fs.existsSync(path.join(scripts, 'build.sh'))) return `no LazyFS scripts at ${scripts}`;
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse is missing';
  if (process.getuid?.() !== 0) return 'mounting LazyFS needs root';
  return undefined;
}

/** Builds LazyFS (once; build.sh is idempotent) and returns the binary. */
export function buildLazyfs(scripts: string): string {
  if (process.env.LAZYFS_BIN) return process.env.LAZYFS_BIN;
  // shared/ may be read-only (CI): build under $LAZYFS_HOME, /var/cache/lazyfs, or the temp dir.
  let out = process.env.LAZYFS_HOME ?? '/var/cache/lazyfs';
  try {
    fs.mkdirSync(out, { recursive: true });
    fs.accessSync(out, fs.constants.W_OK);
  } catch {
    out = path.join(os.tmpdir(), 'perq-lazyfs');
  }
  const built = spawnSync(path.join(scripts, 'build.sh'), [out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const bin = built.stdout.trim().split('\n').at(-1) ?? '';
  if (built.status !== 0 || !fs.existsSync(bin)) throw new Error(`building LazyFS failed (exit ${built.status}): ${built.stdout}`);
  return bin;
}

export class LazyFs {
  readonly root: string;
  readonly mnt: string;
  readonly fifo: string;
  readonly pid: number;
  #log: string;

  private constructor(root: string, mnt: string, fifo: string, pid: number) {
    this.root = root;
    this.mnt = mnt;
    this.fifo = fifo;
    this.pid = pid;
    this.#log = `${fifo}.log`;
  }

  /** Mounts LazyFS at `<base>/mnt`, its files in `<base>/root`. */
  static mount(scripts: string, bin: string, base: string): LazyFs {
    const root = path.join(base, 'root');
    const mnt = path.join(base, 'mnt');
    const fifo = path.join(base, 'fifo');
    // LazyFS's argument parser ignores a --config-path (mount.sh passes FIFO.toml) that contains "-o".
    if (/-o/i.test(fifo)) throw new Error(`LazyFS cannot take a config path containing "-o": ${fifo}.toml (set TMPDIR elsewhere)`);
    const mounted = spawnSync(path.join(scripts, 'mount.sh'), [root, mnt, fifo, bin], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = Number(mounted.stdout.trim());
    if (mounted.status !== 0 || !Number.isSafeInteger(pid))
      throw new Error(`mounting LazyFS failed (exit ${mounted.status}): ${mounted.stdout}`);
    return new LazyFs(root, mnt, fifo, pid);
  }

  /** The power cut: drops every byte not fsync'd; resolves once LazyFS reports it done. */
  async clearCache(): Promise<void> {
    const from = fs.statSync(this.#log).size;
    fs.writeFileSync(this.fifo, 'lazyfs::clear-cache\n');
    const deadline = Date.now() + CLEAR_TIMEOUT_MS;
    for (;;) {
      if (this.#logSince(from).includes(CLEARED)) return;
      if (Date.now() > deadline) throw new Error(`LazyFS did not report "${CLEARED}" within ${CLEAR_TIMEOUT_MS} ms (log: ${this.#log})`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  #logSince(offset: number): string {
    const fd = fs.openSync(this.#log, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buffer = Buffer.alloc(Math.max(0, size - offset));
      fs.readSync(fd, buffer, 0, buffer.length, offset);
      return buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Unmounts and stops the LazyFS process this mount started. */
  unmount(): void {
    spawnSync('fusermount3', ['-u', this.mnt], { stdio: 'ignore' });
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      // Already gone with the unmount.
    }
  }
}
