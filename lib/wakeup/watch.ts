// Wake-ups through the file system (`watch: true`): every change of the
// shared state is a write to one file (the store's `state`, named by the
// caller), so a watch on the directory that reports it tells a waiting
// process on this host that something may have changed. Only an
// accelerator: polling still runs beside it, and takes over where watching is
// impossible (fs.watch throws, or the watcher fails later) or blind (changes
// made on another host of a network file system).

import fs from 'node:fs';

export class StateWatcher {
  #watcher: fs.FSWatcher | null = null;

  /** Calls `onChange` after writes to `file` in `dir`; does nothing where the platform cannot watch. */
  constructor(dir: string, file: string, onChange: () => void) {
    try {
      this.#watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        // Some platforms do not name the file: then any change counts.
        if (name === null || name === file) onChange();
      });
      this.#watcher.on('error', () => this.close());
    } catch {
      this.#watcher = null;
    }
  }

  /** Whether changes are being watched (false: polling alone). */
  get watching(): boolean {
    return this.#watcher !== null;
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }
}
