// Wake-ups between processes. Items always travel through the directory;
// these messages only say "look now", so a lost message costs at most a poll
// interval and either side can restart at any time.
// - notify channels (`useNotify`): a ChildProcess (parent side), `process`
//   (a forked child), a worker_threads MessagePort or a BroadcastChannel.
//   Messages that are not perq's are left alone; a channel whose other end
//   is gone is dropped quietly.
// - Queues of one directory in the same thread hear each other directly.

import { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { BroadcastChannel, MessagePort } from 'node:worker_threads';
import { QueueError } from './errors.js';
import type { StoreEvents } from './store.js';

export type NotifyChannel = ChildProcess | NodeJS.Process | MessagePort | BroadcastChannel;

/** What goes over a channel: the directory (its real path) and what changed. */
export interface WakeMessage extends StoreEvents {
  perq: 'wake';
  dir: string;
}

interface Attached {
  send(message: WakeMessage): void;
  detach(): void;
}

/** Queues of the same directory in this thread, by real path. */
const localBus = new EventEmitter();
localBus.setMaxListeners(0);

export class Notifier {
  #dir: string;
  #onWake: (events: StoreEvents) => void;
  #channels = new Map<NotifyChannel, Attached>();
  #onLocal: (from: Notifier, events: StoreEvents) => void;

  /** `dir`: the queue directory's real path, the same in every process. */
  constructor(dir: string, onWake: (events: StoreEvents) => void) {
    this.#dir = dir;
    this.#onWake = onWake;
    this.#onLocal = (from, events) => {
      if (from !== this) onWake(events);
    };
    localBus.on(dir, this.#onLocal);
  }

  /** Starts listening and sending on `channel`; ERR_INVALID_ARG if it is none of the four kinds. */
  add(channel: NotifyChannel): void {
    if (this.#channels.has(channel)) return;
    this.#channels.set(channel, this.#attach(channel));
  }

  /** Tells the other side of every channel, and the queues of this thread, what changed. */
  send(events: StoreEvents): void {
    localBus.emit(this.#dir, this, events);
    if (this.#channels.size === 0) return;
    const message: WakeMessage = { perq: 'wake', dir: this.#dir, ...events };
    for (const attached of [...this.#channels.values()]) attached.send(message);
  }

  close(): void {
    localBus.off(this.#dir, this.#onLocal);
    for (const attached of this.#channels.values()) attached.detach();
    this.#channels.clear();
  }

  #receive(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    const m = message as Partial<WakeMessage>;
    if (m.perq !== 'wake' || m.dir !== this.#dir) return;
    this.#onWake({ added: m.added === true, taken: m.taken === true, acknowledged: m.acknowledged === true });
  }

  #drop(channel: NotifyChannel): void {
    this.#channels.get(channel)?.detach();
    this.#channels.delete(channel);
  }

  #post(channel: MessagePort | BroadcastChannel, message: WakeMessage): void {
    try {
      channel.postMessage(message);
    } catch {
      // Closed: it can carry nothing more.
      this.#drop(channel);
    }
  }

  #attach(channel: NotifyChannel): Attached {
    const onMessage = (message: unknown): void => this.#receive(message);
    if (channel === process) return this.#attachProcess(onMessage);
    if (channel instanceof ChildProcess) return this.#attachChild(channel, onMessage);
    if (channel instanceof MessagePort) {
      const onClose = (): void => this.#drop(channel);
      channel.on('message', onMessage);
      channel.on('close', onClose);
      return {
        send: (message) => this.#post(channel, message),
        detach: () => {
          channel.off('message', onMessage);
          channel.off('close', onClose);
        },
      };
    }
    if (channel instanceof BroadcastChannel) {
      const onEvent = (event: Event): void => onMessage((event as MessageEvent).data);
      channel.addEventListener('message', onEvent);
      return {
        send: (message) => this.#post(channel, message),
        detach: () => channel.removeEventListener('message', onEvent),
      };
    }
    throw new QueueError('ERR_INVALID_ARG', this.#dir, 'useNotify takes ChildProcess objects, process (in a forked child), MessagePorts or BroadcastChannels');
  }

  #attachProcess(onMessage: (message: unknown) => void): Attached {
    if (typeof process.send !== 'function') {
      throw new QueueError('ERR_INVALID_ARG', this.#dir, 'useNotify(process) needs an IPC channel to the parent: start this process with child_process.fork');
    }
    const onDisconnect = (): void => this.#drop(process);
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
    return {
      send: (message) => {
        if (!process.connected || process.send === undefined) return this.#drop(process);
        process.send(message, undefined, undefined, (error: Error | null) => {
          if (error) this.#drop(process);
        });
      },
      detach: () => {
        process.off('message', onMessage);
        process.off('disconnect', onDisconnect);
      },
    };
  }

  #attachChild(child: ChildProcess, onMessage: (message: unknown) => void): Attached {
    const onGone = (): void => this.#drop(child);
    child.on('message', onMessage);
    child.on('disconnect', onGone);
    child.on('exit', onGone);
    return {
      send: (message) => {
        if (!child.connected) return this.#drop(child);
        child.send(message, (error) => {
          if (error) this.#drop(child);
        });
      },
      detach: () => {
        child.off('message', onMessage);
        child.off('disconnect', onGone);
        child.off('exit', onGone);
      },
    };
  }
}
