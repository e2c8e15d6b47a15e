// Poll mode, receiving side: gets what poll-sender puts, looking at the
// directory every second (pollInterval); acknowledges each item once it is
// printed, so a receiver killed in between gets it again when restarted.
//
//   node dist/examples/poll-receiver.js /tmp/perq-poll
//   node dist/examples/poll-receiver.js /mnt/shared/q lockfile

import { Queue } from '../lib/index.js';

const [dir = '/tmp/perq-poll', locking = 'flock'] = process.argv.slice(2);
const queue = await Queue.open<{ text: string; sentAt: string }>(dir, {
  locking: locking === 'lockfile' ? 'lockfile' : 'flock',
  pollInterval: 1000,
});
console.log(`receiving from ${queue.dir} (${queue.size} waiting). Ctrl-C to stop.`);
// close() hands back an item taken and not yet acknowledged.
process.on('SIGINT', () => void queue.close().then(() => process.exit(0)));
// Each item is acknowledged when the loop asks for the next; the loop ends when the queue is closed.
for await (const item of queue) {
  console.log(`received: ${item.text} (sent ${item.sentAt})`);
}
