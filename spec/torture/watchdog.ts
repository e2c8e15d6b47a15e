// The kill switch's watchdog thread ('thread' mode, see killswitch.ts): when
// a target operation starts it spins the given microseconds and, if that
// operation is still running, kills the whole process with SIGKILL.

import fs from 'node:fs';
import { workerData } from 'node:worker_threads';

const { shared, fd } = workerData as { shared: Int32Array; fd: number };
let seen = 0;
for (;;) {
  Atomics.wait(shared, 2, seen);
  seen = Atomics.load(shared, 2);
  const delay = Atomics.load(shared, 1) / 1000;
  const start = performance.now();
  while (performance.now() - start < delay) {
    // spin: a timer would be far too coarse
  }
  if (Atomics.load(shared, 0) === 1 && Atomics.load(shared, 2) === seen) {
    fs.writeSync(fd, `${(performance.timeOrigin + performance.now()).toFixed(3)} K thread after ${delay.toFixed(3)} ms\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
