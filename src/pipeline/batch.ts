// The Batch handed to sinks: arrays built once per batch, records parsed only if a sink asks for objects.
import type { LogRecord } from "../record.js";
import type { Batch } from "../sinks/sink.js";
import type { Entry } from "./entry.js";

export class EntryBatch implements Batch {
  readonly length: number;
  readonly sources: (string | undefined)[];
  readonly bytes: number;
  private recs: LogRecord[] | undefined;
  private texts: string[] | undefined;

  constructor(
    readonly entries: readonly Entry[],
    readonly attempt: number,
  ) {
    const n = entries.length;
    this.length = n;
    this.sources = new Array<string | undefined>(n);
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      this.sources[i] = e.source?.name;
      bytes += e.bytes;
    }
    this.bytes = bytes;
  }

  /** Texts, decoded on first use: a sink that ships bytes never pays for them. */
  get json(): readonly string[] {
    if (this.texts === undefined) {
      const n = this.length;
      const texts = new Array<string>(n);
      for (let i = 0; i < n; i++) texts[i] = this.entries[i]!.json;
      this.texts = texts;
    }
    return this.texts;
  }

  get records(): readonly LogRecord[] {
    if (this.recs === undefined) {
      const n = this.length;
      const recs = new Array<LogRecord>(n);
      for (let i = 0; i < n; i++) recs[i] = this.entries[i]!.record;
      this.recs = recs;
    }
    return this.recs;
  }
}
