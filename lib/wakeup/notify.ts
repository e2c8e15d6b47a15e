// Wake-ups between processes. Items always travel through the directory;
// these messages only say "look now", so a lost message costs at most a poll
// interval and either side can restart at any time.
// - notify channels (`useNotify`): a ChildProcess (parent side), `process`
//   (a forked child), a worker_threads MessagePort or a BroadcastChannel.
//   Messages that are not perq's are left alone; a channel whose other end
//   is gone is dropped quietly.
// - Queues of the same directory in the same thread hear each other directly.
// A channel gets one set of listeners in this thread however many queues use
// it (a process with a dozen queues on one IPC channel must not trip Node's
// listener-leak warning); its messages are handed to the queues of their
// directory.

import { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { BroadcastChannel, MessagePort } from 'node:worker_threads';
import { QueueError } from '../errors.js';
import type { StoreEvents } from '../store/events.js';

export type NotifyChannel = ChildProcess | NodeJS.Process | MessagePort | BroadcastChannel;

/** What goes over a channel: the directory (its real path) and what changed. */
export interface WakeMessage extends StoreEvents {
  perq: 'wake';
  dir: string;
}

/** A Notifier's interest in a channel's messages. */
interface Subscriber {
  /** The directory (real path) whose messages it wants. */
  dir: string;
  wake(events: StoreEvents): void;
  /** `link`'s channel is gone: forget it. */
  gone(link: Link): void;
}

interface Endpoint {
  send(message: WakeMessage): void;
  detach(): void;
}

/** Queues of the same directory in this thread, by real path. */
const localBus = new EventEmitter();
localBus.setMaxListeners(0);

/** The channels in use in this thread, each with its one set of listeners. */
const links = new Map<NotifyChannel, Link>();

/** One channel in this thread: listens once, hands each wake-up to the subscribers of its directory. */
class Link {
  readonly channel: NotifyChannel;
  #subscribers = new Set<Subscriber>();
  #endpoint: Endpoint;
  #closed = false;

  /** Throws ERR_INVALID_ARG (naming `dir`) if `channel` is none of the four kinds. */
  constructor(channel: NotifyChannel, dir: string) {
    this.channel = channel;
    this.#endpoint = this.#attach(channel, dir);
  }

  subscribe(subscriber: Subscriber): void {
    this.#subscribers.add(subscriber);
  }

  /** The last subscriber to leave takes the listeners off the channel. */
  unsubscribe(subscriber: Subscriber): void {
    this.#subscribers.delete(subscriber);
    if (this.#subscribers.size === 0) this.#close();
  }

  send(message: WakeMessage): void {
    if (!this.#closed) this.#endpoint.send(message);
  }

  #receive(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    const m = message as Partial<WakeMessage>;
    if (m.perq !== 'wake' || typeof m.dir !== 'string') return;
    const events = { added: m.added === true, taken: m.taken === true, acknowledged: m.acknowledged === true };
    for (const subscriber of [...this.#subscribers]) {
      if (subscriber.dir === m.dir) subscriber.wake(events);
    }
  }

  /** The other end is gone (or the channel closed): nothing more can cross it. */
  #drop(): void {
    if (this.#closed) return;
    const subscribers = [...this.#subscribers];
    this.#close();
    for (const subscriber of subscribers) subscriber.gone(this);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscribers.clear();
    this.#endpoint.detach();
    if (links.get(this.channel) === this) links.delete(this.channel);
  }

  #post(channel: MessagePort | BroadcastChannel, message: WakeMessage): void {
    try {
      channel.postMessage(message);
    } catch {
      // Closed: it can carry nothing more.
      this.#drop();
    }
  }

  #attach(channel: NotifyChannel, dir: string): Endpoint {
    const onMessage = (message: unknown): void => this.#receive(message);
    if (channel === process) return this.#attachProcess(dir, onMessage);
    if (channel instanceof ChildProcess) return this.#attachChild(channel, dir, onMessage);
    if (channel instanceof MessagePort) {
      const onClose = (): void => this.#drop();
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
    throw new QueueError(
      'ERR_INVALID_ARG',
      dir,
      'useNotify takes ChildProcess objects, process (in a forked child), MessagePorts or BroadcastChannels',
    );
  }

  #attachProcess(dir: string, onMessage: (message: unknown) => void): Endpoint {
    if (typeof process.send !== 'function') {
      throw new QueueError(
        'ERR_INVALID_ARG',
        dir,
        'useNotify(process) needs an IPC channel to the parent: start this process with child_process.fork',
      );
    }
    const onDisconnect = (): void => this.#drop();
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
    return {
      send: (message) => {
        if (!process.connected || process.send === undefined) return this.#drop();
        process.send(message, undefined, undefined, (error: Error | null) => {
          if (error) this.#drop();
        });
      },
      detach: () => {
        process.off('message', onMessage);
        process.off('disconnect', onDisconnect);
      },
    };
  }

  #attachChild(child: ChildProcess, dir: string, onMessage: (message: unknown) => void): Endpoint {
    // A child started without an IPC channel has no send at all (one whose channel closed keeps it).
    if (typeof child.send !== 'function') {
      throw new QueueError(
        'ERR_INVALID_ARG',
        dir,
        `useNotify(child) needs a child with an IPC channel (pid ${child.pid ?? 'none'} has none): start it with child_process.fork, or with 'ipc' in its stdio`,
      );
    }
    const onGone = (): void => this.#drop();
    child.on('message', onMessage);
    child.on('disconnect', onGone);
    child.on('exit', onGone);
    return {
      send: (message) => {
        if (!child.connected) return this.#drop();
        child.send(message, (error) => {
          if (error) this.#drop();
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

export class Notifier {
  #dir: string;
  #links = new Set<Link>();
  #subscriber: Subscriber;
  #onLocal: (from: Notifier, events: StoreEvents) => void;

  /** `dir`: the queue directory's real path, the same in every process. */
  constructor(dir: string, onWake: (events: StoreEvents) => void) {
    this.#dir = dir;
    this.#onLocal = (from, events) => {
      if (from !== this) onWake(events);
    };
    this.#subscriber = { dir, wake: onWake, gone: (link) => this.#links.delete(link) };
    localBus.on(dir, this.#onLocal);
  }

  /** Starts listening and sending on `channel`; ERR_INVALID_ARG if it is none of the four kinds. */
  add(channel: NotifyChannel): void {
    let link = links.get(channel);
    if (link === undefined) {
      link = new Link(channel, this.#dir);
      links.set(channel, link);
    }
    if (this.#links.has(link)) return;
    link.subscribe(this.#subscriber);
    this.#links.add(link);
  }

  /** Tells the other side of every channel, and the queues of this thread, what changed. */
  send(events: StoreEvents): void {
    localBus.emit(this.#dir, this, events);
    if (this.#links.size === 0) return;
    const message: WakeMessage = { perq: 'wake', dir: this.#dir, ...events };
    for (const link of [...this.#links]) link.send(message);
  }

  close(): void {
    localBus.off(this.#dir, this.#onLocal);
    for (const link of this.#links) link.unsubscribe(this.#subscriber);
    this.#links.clear();
  }
}
