// The spare maker: a worker thread that creates empty spare chunk files
// (spares.ts) when asked. It has its own event loop, so a spare is made at
// once, even while the thread that asked keeps its loop busy with a run of
// awaited puts; and the kernel time of creating files is spent on another
// core. Requests are handled in order, so a `flush` answered means every
// earlier request is done.

import fs from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';

export type SpareRequest = { make: string } | { flush: number };
export interface SpareReply {
  flushed: number;
}

parentPort?.on('message', (request: SpareRequest) => {
  if ('make' in request) {
    try {
      fs.mkdirSync(path.dirname(request.make), { recursive: true });
      fs.closeSync(fs.openSync(request.make, 'wx'));
    } catch {
      // Made already, or cannot be made now: the writer creates its chunk itself.
    }
  } else {
    parentPort?.postMessage({ flushed: request.flush } satisfies SpareReply);
  }
});
