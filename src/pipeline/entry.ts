// The engine's unit of work: one record's canonical JSON, its size, and who must settle it before its source may commit.
import type { LogRecord } from "../record.js";

/** Admission times are stored relative to this, modulo ADMIT_WRAP (see Entry.admittedAt). */
const ADMIT_EPOCH = Date.now();
/** 2^30 ms, about 12.4 days: every value below it is a small integer in V8 (a Smi), stored inside the object. */
const ADMIT_WRAP = 0x40000000;

/** Ack bookkeeping for one source: the engine reports each entry's seq once every sink settled it. */
export interface AckTarget {
  readonly name: string | undefined;
  /** `delivered` says whether the last sink to settle delivered it (the dead-letter hop needs to know). */
  settle(seq: number, delivered: boolean): void;
}

/** `ms` modulo ADMIT_WRAP, in [0, ADMIT_WRAP) for negative values too. */
function wrap(ms: number): number {
  return ((ms % ADMIT_WRAP) + ADMIT_WRAP) % ADMIT_WRAP;
}

/**
 * One record shared by every sink queue it was routed to (fan-out shares the object, not copies).
 * Its canonical serialization is kept as it arrived: UTF-8 bytes from a collector (its channel frame and an offset),
 * or text from `write()`. Sinks that ship bytes (Elasticsearch) use `copyUtf8` without decoding; `json` decodes once.
 */
export class Entry {
  /** Parsed form, materialized on first use (records from children arrive as JSON text). */
  private rec: LogRecord | undefined;
  private text: string | undefined;
  /**
   * When the record arrived as bytes: the channel frame holding them, at `start` (`bytes` long). Offsets rather
   * than a view: a Buffer view per record would cost an object and a native call each.
   */
  private frame: Buffer | undefined;
  private start = 0;
  /**
   * When the router admitted it, as ms since ADMIT_EPOCH modulo ADMIT_WRAP. It must stay a Smi: the difference of
   * two Date.now() values is a heap number, and one such store turns the field into a boxed double in every entry
   * (16 more bytes and an allocation per record).
   */
  private admitted = 0;
  /** Sinks that still have to settle this entry; at 0 the source's ack tracker hears of it. */
  pending = 0;

  /**
   * `json` is the record's text, or the buffer holding its UTF-8 at `start` (then `bytes` long; the buffer is
   * shared, not copied, and must not change while the entry lives).
   */
  constructor(
    json: string | Buffer,
    /** UTF-8 byte length of the JSON. */
    readonly bytes: number,
    readonly source: AckTarget | undefined,
    readonly seq: number,
    record?: LogRecord,
    start = 0,
  ) {
    if (typeof json === "string") this.text = json;
    else {
      this.frame = json;
      this.start = start;
    }
    this.rec = record;
  }

  /**
   * When the router admitted it (epoch ms); the batcher's maxWaitMs counts from here. Exact for entries younger
   * than ADMIT_WRAP; an older one reads as admitted up to that much later, which can only delay a flush that
   * is due anyway by at most maxWaitMs.
   */
  get admittedAt(): number {
    const now = Date.now();
    return now - wrap(wrap(now - ADMIT_EPOCH) - this.admitted);
  }

  set admittedAt(ms: number) {
    this.admitted = Entry.admitStamp(ms);
  }

  /**
   * `ms` (epoch) as `admit` takes it. The modulo of a double is a C call: a loop that admits many entries at one
   * time computes this once and stamps each with `admit`.
   */
  static admitStamp(ms: number): number {
    return wrap(ms - ADMIT_EPOCH) | 0;
  }

  /** Set `admittedAt` from `Entry.admitStamp(ms)`. */
  admit(stamp: number): void {
    this.admitted = stamp;
  }

  /** The admission time as `admit` takes it (a parked copy keeps it so). */
  get stamp(): number {
    return this.admitted;
  }

  /** The canonical JSON text (decoded from the bytes on first use). */
  get json(): string {
    return (this.text ??= this.frame!.toString("utf8", this.start, this.start + this.bytes));
  }

  /** True when the record is held as UTF-8 bytes (copied by `copyUtf8` without encoding). */
  get hasBytes(): boolean {
    return this.frame !== undefined;
  }

  /** Write the record's UTF-8 into `out` at `at` (room for `bytes` is the caller's); returns the end. */
  copyUtf8(out: Buffer, at: number): number {
    const frame = this.frame;
    if (frame === undefined) return at + out.write(this.text!, at);
    return at + frame.copy(out, at, this.start, this.start + this.bytes);
  }

  /**
   * True when this record's bytes sit right after `prev`'s in the same frame, one `\n` between them (records of
   * one RECORDS frame are stored that way): a run of such entries can be copied as one span.
   */
  follows(prev: Entry): boolean {
    return this.frame !== undefined && this.frame === prev.frame && this.start === prev.start + prev.bytes + 1;
  }

  /**
   * Copy the frame span from this record's first byte to the end of `last` (a later entry of the same run, see
   * `follows`) into `out` at `at`; returns the end. Only for entries held as bytes.
   */
  copyRunUtf8(last: Entry, out: Buffer, at: number): number {
    return at + this.frame!.copy(out, at, this.start, last.start + last.bytes);
  }

  /** The frame holding the record's UTF-8 (at `frameOffset`, `bytes` long), when it is held as bytes. */
  get frameBuffer(): Buffer | undefined {
    return this.frame;
  }

  /** Where this record starts in its frame (runs use it to find each record inside a copied span). */
  get frameOffset(): number {
    return this.start;
  }

  /**
   * Keep the record as text of its own and let go of its frame. For entries a lane holds long and apart from their
   * neighbours (retried items, a filtered lane that fell behind): otherwise each keeps its whole frame alive, about
   * 100 to 250 KB for a record of a few hundred bytes, which the queue's byte bound does not see.
   */
  detach(): void {
    const frame = this.frame;
    if (frame === undefined) return;
    this.text ??= frame.toString("utf8", this.start, this.start + this.bytes);
    this.frame = undefined;
    this.start = 0;
  }

  get record(): LogRecord {
    return (this.rec ??= JSON.parse(this.json) as LogRecord);
  }

  /**
   * Let go of the parsed record, and of the decoded text when the frame still holds the bytes: what a filter's
   * look at the record cached (about 2.4 times the JSON for a typical line), which the queue's byte bound does not
   * count. A sink that asks for them later decodes them again.
   */
  releaseDecoded(): void {
    this.rec = undefined;
    if (this.frame !== undefined) this.text = undefined;
  }

  /** Called by each sink when it settled the entry (delivered, dead-lettered, dropped). */
  settleOne(delivered = false): void {
    if (--this.pending === 0 && this.source !== undefined) this.source.settle(this.seq, delivered);
  }
}
