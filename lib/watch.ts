// Wake-ups through the file system (`watch: true`): every change of the
// shared state is a write to the file `state`, so a watch on the directory
// that reports `state` tells a waiting process on this host that something
// may have changed. Only an accelerator: polling still runs beside it, and
// takes over where watching is impossible (fs.watch throws, or the watcher
// fails later) or blind (changes made on another host of a network file system).

import fs from 'node:fs';
import { STATE_FILE } from './state.js';

export class StateWatcher {
  #watcher: fs.FSWatcher | null = null;

  /** Calls `onChange` after writes to the state file in `dir`; does nothing where the platform cannot watch. */
  constructor(dir: string, onChange: () => void) {
    try {
      this.#watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        // Some platforms do not name the file: then any change counts.
        if (name === null || name === STATE_FILE) onChange();
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
