// Poll mode, sending side: run this and poll-receiver in two shells (or on
// two hosts that share the directory). Each line typed here is put into the
// queue; with no terminal attached, it puts a numbered message every second.
//
//   node dist/examples/poll-sender.js /tmp/perq-poll            # one host
//   node dist/examples/poll-sender.js /mnt/shared/q lockfile    # NFS, sshfs...
//
// Either side can be stopped and started again at any time: the items wait in
// the directory.

import readline from 'node:readline';
import { Queue } from '../lib/index.js';

const [dir = '/tmp/perq-poll', locking = 'flock'] = process.argv.slice(2);
const queue = await Queue.open<{ text: string; sentAt: string }>(dir, { locking: locking === 'lockfile' ? 'lockfile' : 'flock' });
console.log(`sending to ${queue.dir} (${queue.size} waiting). Ctrl-C to stop.`);

async function send(text: string): Promise<void> {
  await queue.put({ text, sentAt: new Date().toISOString() });
  console.log(`sent: ${text}`);
}

process.on('SIGINT', () => void queue.close().then(() => process.exit(0)));

if (process.stdin.isTTY) {
  console.log('type a line and press Enter:');
  for await (const line of readline.createInterface({ input: process.stdin })) if (line.trim() !== '') await send(line);
  await queue.close();
} else {
  let n = 0;
  setInterval(() => void send(`message ${++n}`), 1000);
}
