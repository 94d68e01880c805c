import type { ObjectStore } from '@hourglass/storage';
import { sleep } from '../faults/pipeline';

/**
 * A reader of the published data as BigQuery external tables or Hive see it: every 250 ms it
 * lists each type's prefix (`<type>/`, never `_staging/`) and notes every `.avro` file whose
 * window folder had no `_SUCCESS` in that same listing. Such a file is data a query would read
 * from a window that is not closed yet: it may still change, and no manifest vouches for it.
 */
export class WindowReader {
  listings = 0;
  listingErrors = 0;
  /** Files seen under `<type>/` while their window had no `_SUCCESS`. */
  readonly unclosedFiles = new Set<string>();
  /** Windows in which such a file was seen. */
  readonly unclosedWindows = new Set<string>();
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ObjectStore,
    private readonly types: readonly string[],
    private readonly intervalMs = 250,
  ) {}

  start(): this {
    this.loop = this.run();
    return this;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      await this.scan();
      await sleep(Math.max(0, this.intervalMs - (Date.now() - started)));
    }
  }

  /** One round: every type's prefix listed once. */
  async scan(): Promise<void> {
    await Promise.all(this.types.map((type) => this.listOnce(type)));
  }

  private async listOnce(type: string): Promise<void> {
    let names: string[];
    try {
      names = (await this.store.list(`${type}/`)).map((o) => o.name);
    } catch {
      this.listingErrors++;
      return;
    }
    this.listings++;
    const closed = new Set(names.filter((n) => n.endsWith('/_SUCCESS')).map((n) => n.slice(0, n.lastIndexOf('/'))));
    for (const n of names) {
      if (!n.endsWith('.avro')) continue;
      const window = n.slice(0, n.lastIndexOf('/'));
      if (closed.has(window)) continue;
      this.unclosedFiles.add(n);
      this.unclosedWindows.add(window);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  describe(): string {
    return `reader: ${this.listings} listings (${this.listingErrors} failed), ${this.unclosedFiles.size} .avro files seen in ${this.unclosedWindows.size} windows without _SUCCESS`;
  }
}
