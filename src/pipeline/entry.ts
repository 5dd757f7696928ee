// The engine's unit of work: one record's canonical JSON, its size, and who must settle it before its source may commit.
import type { LogRecord } from "../record.js";

/** Ack bookkeeping for one source: the engine reports each entry's seq once every sink settled it. */
export interface AckTarget {
  readonly name: string | undefined;
  /** `delivered` says whether the last sink to settle delivered it (the dead-letter hop needs to know). */
  settle(seq: number, delivered: boolean): void;
}

/**
 * One record shared by every sink queue it was routed to (fan-out shares the object, not copies).
 * `json` is the canonical serialization: computed once, reused by every JSON-speaking sink.
 */
export class Entry {
  /** Parsed form, materialized on first use (records from children arrive as JSON text). */
  private rec: LogRecord | undefined;
  /** When the router admitted it (ms); the batcher's maxWaitMs counts from here. */
  admittedAt = 0;
    /** Sinks that still have to settle this entry; at 0 the source's ack tracker hears of it. */
  pending = 0;

  constructor(
    readonly json: string,
    readonly bytes: number,
    readonly source: AckTarget | undefined,
    readonly seq: number,
    record?: LogRecord,
  ) {
    this.rec = record;
  }

  get record(): LogRecord {
    return (this.rec ??= JSON.parse(this.json) as LogRecord);
  }

  /** Called by each sink when it settled the entry (delivered, dead-lettered, dropped). */
  settleOne(delivered = false): void {
    if (--this.pending === 0 && this.source !== undefined) this.source.settle(this.seq, delivered);
  }
}
