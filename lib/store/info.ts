// The info file: what a queue directory is (format version, chunk size,
// serializer name). Written once when the queue is created, atomically
// (temporary file + rename), and never edited in place; `put` never touches it.
// Its `check` field is the CRC-32C of the JSON of the other fields: a changed
// byte that still parses (a digit, a space) would otherwise be believed, and a
// wrong chunkSize misplaces every item.

import fs from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { crc32c } from './crc32c.js';
import { QueueError, ioError } from '../errors.js';

export const INFO_FILE = 'info';
/** Marks the file as perq's, so a stranger's `info` file is never misread. */
const FORMAT_NAME = 'perq';
/** Bumped when the on-disk layout changes in a way older code cannot read. */
export const FORMAT_VERSION = 2;
/** How every info file perq writes begins (JSON.stringify keeps key order). */
const INFO_PREFIX = `{"format":"${FORMAT_NAME}"`;

export interface Info {
  format: typeof FORMAT_NAME;
  version: number;
  chunkSize: number;
  serializer: string;
}

/** The check of the info fields as they stand in the file, in their order. */
function checkOf(fields: object): string {
  return crc32c(Buffer.from(JSON.stringify(fields)))
    .toString(16)
    .padStart(8, '0');
}

/** The info of the queue in `dir`, or null when it has no info file. */
export function readInfo(dir: string): Info | null {
  const file = path.join(dir, INFO_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(dir, 'reading the info file', error, file);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // perq writes `{"format":"perq",...`: a file that starts so (or is cut
    // short within it), or that sits beside perq's other files, is ours and
    // damaged; anything else (persist-queue's pickled info) is a stranger's.
    const ours = text.startsWith(INFO_PREFIX) || INFO_PREFIX.startsWith(text) || holdsPerqFiles(dir);
    if (!ours) throw new QueueError('ERR_FORMAT', dir, "the directory is not a perq queue (its info file is not perq's)", { file });
    throw new QueueError('ERR_CORRUPT', dir, 'the info file is damaged or truncated (not valid JSON); restore it from a backup', { file });
  }
  const info = parsed as Partial<Info> | null;
  if (typeof info !== 'object' || info === null || info.format !== FORMAT_NAME) {
    throw new QueueError('ERR_FORMAT', dir, "the info file is not a perq queue's", { file });
  }
  if (!Number.isSafeInteger(info.version) || (info.version as number) < 1) {
    throw new QueueError('ERR_CORRUPT', dir, `the info file is damaged (format version ${String(info.version)})`, { file });
  }
  if ((info.version as number) > FORMAT_VERSION) {
    throw new QueueError(
      'ERR_FORMAT',
      dir,
      `the queue has format version ${String(info.version)}, newer than this perq reads (${FORMAT_VERSION}); upgrade perq`,
      { file },
    );
  }
  if ((info.version as number) < FORMAT_VERSION) {
    throw new QueueError(
      'ERR_FORMAT',
      dir,
      `the queue has format version ${String(info.version)}, written by a development version of perq before 0.2 (this one reads ${FORMAT_VERSION}); drain it with the perq that wrote it`,
      { file },
    );
  }
  const { check, ...fields } = info as Partial<Info> & { check?: unknown };
  if (check !== checkOf(fields)) {
    throw new QueueError('ERR_CORRUPT', dir, 'the info file is damaged (its check does not match its fields); restore it from a backup', {
      file,
    });
  }
  if (!Number.isSafeInteger(fields.chunkSize) || (fields.chunkSize as number) < 1 || typeof fields.serializer !== 'string') {
    throw new QueueError('ERR_CORRUPT', dir, 'the info file is damaged (bad chunkSize or serializer)', { file });
  }
  return fields as Info;
}

/** Whether `dir` holds a cursor or chunk file, whatever state its info file is in. */
function holdsPerqFiles(dir: string): boolean {
  try {
    return fs.readdirSync(dir).some((name) => name === 'cursor' || name === 'cursor.log' || name.startsWith('chunk-'));
  } catch {
    return false;
  }
}

export function writeInfo(dir: string, chunkSize: number, serializer: string): Info {
  const info: Info = { format: FORMAT_NAME, version: FORMAT_VERSION, chunkSize, serializer };
  const file = path.join(dir, INFO_FILE);
  try {
    writeFileAtomic.sync(file, JSON.stringify({ ...info, check: checkOf(info) }) + '\n', { fsync: true });
  } catch (error) {
    throw ioError(dir, 'writing the info file', error, file);
  }
  return info;
}
