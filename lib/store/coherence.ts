// Making one host's writes visible to another through a network file system.
// A client of GlusterFS, NFS or sshfs caches what it wrote (write-behind;
// close is no barrier) and what it read (file sizes, pages, small files), so
// the lock being handed over says nothing about what the next holder sees.
// On such a file system a holder therefore
// - fdatasyncs every file it wrote in the hold before it lets the lock go;
// - lists the directory, then fstats its state and chunk descriptors, right
//   after it takes the lock: the listing refreshes the cached sizes of every
//   file, and the fstat fetches again what an invalidation arriving meanwhile
//   dropped;
// - changes the length of `state` with every write (state.ts): a client drops
//   its cached pages of a file at once only when its length changes.
// On a local file system none of this is needed and nothing is done.

import fs from 'node:fs';
import path from 'node:path';

/** File system types whose clients cache across hosts (from /proc/self/mountinfo). */
const NETWORK_TYPES = new Set([
  'nfs',
  'nfs4',
  'cifs',
  'smb3',
  'smbfs',
  'ceph',
  '9p',
  'afs',
  'glusterfs',
  'lustre',
  'gpfs',
  'beegfs',
  'fuse.glusterfs',
  'fuse.sshfs',
  'fuse.s3fs',
  'fuse.rclone',
  'fuse.gcsfuse',
  'fuse.juicefs',
  'fuse.ceph-fuse',
  'fuse.mfs',
  'fuse.moosefs',
  'fuse.davfs',
  'fuse.lizardfs',
  'fuse.seaweedfs',
]);

/** The type of the file system `dir` is on, as /proc/self/mountinfo names it; null where that cannot be read. */
export function fileSystemType(dir: string): string | null {
  let mounts: string;
  let real: string;
  try {
    mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    real = fs.realpathSync(dir);
  } catch {
    return null;
  }
  let best: { point: string; type: string } | null = null;
  for (const line of mounts.split('\n')) {
    const [left, right] = line.split(' - ');
    if (right === undefined) continue;
    const point = unescape(left.split(' ')[4] ?? '');
    const type = right.split(' ')[0];
    const inside = real === point || real.startsWith(point.endsWith(path.sep) ? point : point + path.sep);
    if (inside && (best === null || point.length >= best.point.length)) best = { point, type };
  }
  return best?.type ?? null;
}

/** mountinfo writes a space, a tab, a newline and a backslash in a path as octal escapes. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * statfs magic numbers of local file systems (linux/magic.h): ext2/3/4, xfs,
 * btrfs, tmpfs, ramfs, f2fs, zfs, overlayfs. One statfs tells them apart,
 * where reading and parsing mountinfo costs ~0.1 ms per open (far more on a
 * host with many mounts); any other type (FUSE among them) is looked up there.
 */
const LOCAL_MAGICS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x858458f6, 0xf2f52010, 0x2fc12fc1, 0x794c7630]);

function isKnownLocal(dir: string): boolean {
  try {
    return LOCAL_MAGICS.has(fs.statfsSync(dir).type);
  } catch {
    return false;
  }
}

export function isNetworkFileSystem(dir: string): boolean {
  if (isKnownLocal(dir)) return false;
  const type = fileSystemType(dir);
  return type !== null && NETWORK_TYPES.has(type);
}

/** What a holder does for other hosts' sake (see the top of this file); a no-op on a local file system. */
export class Coherence {
  readonly enabled: boolean;
  #dir: string;
  /** Descriptors written in this hold, to fdatasync before the lock goes. */
  #written = new Set<number>();

  constructor(dir: string, enabled: boolean) {
    this.#dir = dir;
    this.enabled = enabled;
  }

  /** `fd` was written in this hold. */
  wrote(fd: number): void {
    if (this.enabled) this.#written.add(fd);
  }

  /** `fd` is about to be closed: what was written through it must reach the server first. */
  closing(fd: number): void {
    if (this.#written.delete(fd)) fs.fdatasyncSync(fd);
  }

  /** Before the lock goes: every file written in the hold reaches the server (`more`: the state file). */
  publish(...more: number[]): void {
    if (!this.enabled) return;
    for (const fd of this.#written) fs.fdatasyncSync(fd);
    this.#written.clear();
    for (const fd of more) fs.fdatasyncSync(fd);
  }

  /** Right after the lock is taken: drop cached sizes and pages (`fds`: the descriptors about to be read). */
  refresh(...fds: Array<number | undefined>): void {
    if (!this.enabled) return;
    fs.readdirSync(this.#dir);
    for (const fd of fds) if (fd !== undefined) fs.fstatSync(fd);
  }
}
