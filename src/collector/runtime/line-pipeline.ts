// Child-side per-stream pipeline: bytes → lines (exact offsets) → optional multiline join → parse → ECS record
// → channel. One instance per input stream (a command's stdout or its stderr).
//
//   chunk ─▶ splitter ─line─▶ [multiline] ─▶ record ─▶ channel ── credit spent? ─no──▶ next line
//                                                                  └yes─▶ splitter.halt(): the rest of the chunk is
//                                                                         held, unsplit, until resume()
//
// So a stream stops at its credit, exactly: not at the end of a 64 KiB read, which with tiny lines was tens of
// thousands of records past it (enough for the host to stop reading the collector, see OVERRUN_RECORDS).
import { LineFlags, LineSplitter } from "../line-splitter.js";
import { MultilineJoiner, type MultilineEvent, type MultilineSpec } from "../multiline.js";
import { fastJsonRecordBytes, planFastRecord, type FastRecordPlan, type RecordWriter } from "../parse/fast-json-record.js";
import { buildRecord, createParser, flagRecord, type Parser, type ParserSpec, type RecordContext } from "../parse/index.js";

export interface LinePipelineOptions {
  parser: ParserSpec;
  multiline?: MultilineSpec | undefined;
  maxLineBytes?: number | undefined;
  /** Context copied into every record (source, host, fields, stream, filePath, defaultLevel). */
  context: Omit<RecordContext, "now" | "offset">;
  /** Put `log.offset` on records (file sources). */
  offsets?: boolean;
  startOffset?: number;
}

export interface LineCounters {
  linesRead: number;
  bytesRead: number;
  parseErrors: number;
  /** `__proto__` keys removed from parsed lines (see buildRecord). */
  droppedKeys: number;
  blankLines: number;
  invalidUtf8: number;
  truncatedLines: number;
  /** Multiline events cut at `maxLines`/`maxBytes` (their records carry `log.flags: ["truncated"]`). */
  multilineTruncated: number;
}

/** Where finished records go (the channel): text records by `push`, fast-path ones written in place. */
export interface RecordOut extends RecordWriter {
  /** Queue a record, or drop it (counted) when it is over the channel's record limit. */
  push(json: string): boolean;
  /** False once the host's credit is spent: the input must stop being read. */
  readonly hasCredit: boolean;
  /** Count a record over the limit that never became text (see stringifyRecord). */
  dropOversized(bytes: number): void;
}

/**
 * A record's JSON, or `undefined` when it is too long for a JavaScript string (about 512 Mi UTF-16 units: a
 * 256 MiB line of control bytes escapes to six times that). Such a record is far over the channel's record limit,
 * and the caller counts it with the other oversized records instead of crashing on it. Other errors propagate.
 */
export function stringifyRecord(record: unknown): string | undefined {
  try {
    return JSON.stringify(record);
  } catch (error) {
    if (error instanceof RangeError && /string length/i.test(error.message)) return undefined;
    throw error;
  }
}

export class LinePipeline {
  /** The last line was a piece of a longer one: the next is its continuation (see the splitter's callback). */
  private splitOpen = false;
  readonly counters: LineCounters = { linesRead: 0, bytesRead: 0, parseErrors: 0, droppedKeys: 0, blankLines: 0, invalidUtf8: 0, truncatedLines: 0, multilineTruncated: 0 };
  private readonly splitter: LineSplitter;
  private readonly joiner: MultilineJoiner | undefined;
  private readonly parser: Parser;
  private readonly ctx: RecordContext;
  /** Set for the "json" parser: most lines become a record without JSON.parse and JSON.stringify. */
  private readonly fast: FastRecordPlan | undefined;
  private now = "";
  /**
   * Bytes read but not split yet, in order: the rest of the read the credit ran out in, then whatever was read
   * after it (only once the command exited: Node then reads its pipes to the end, paused or not).
   */
  private readonly held: Buffer[] = [];
  /** end() is under way: what is held goes out whatever the credit. */
  private ending = false;

  constructor(
    private readonly options: LinePipelineOptions,
    private readonly out: RecordOut,
  ) {
    this.parser = createParser(options.parser);
    this.ctx = { ...options.context, now: "" };
    this.fast = options.parser === "json" ? planFastRecord(options.context) : undefined;
    this.joiner =
      options.multiline === undefined
        ? undefined
        : new MultilineJoiner(options.multiline, (e: MultilineEvent) => this.emit(e.text, e.start, e.truncated));
    this.splitter = new LineSplitter(
      // Lines are consumed right here, so the splitter may leave decoding to us: the fast path reads bytes.
      { maxLineBytes: options.maxLineBytes, startOffset: options.startOffset ?? 0, lazyText: true },
      (line, start, end, flags, bytes, bytesStart, bytesEnd) => {
        this.counters.linesRead++;
        if (flags & LineFlags.INVALID_UTF8) this.counters.invalidUtf8++;
        if (flags & (LineFlags.TRUNCATED | LineFlags.SPLIT)) this.counters.truncatedLines++;
        const lazy = (flags & LineFlags.LAZY_TEXT) !== 0;
        if (this.joiner !== undefined) {
          this.joiner.push(lazy ? bytes.toString("utf8", bytesStart, bytesEnd) : line, start, end);
          return;
        }
        // Every piece of a line longer than maxLineBytes, its last included, is flagged (the general path's job).
        const piece = (flags & LineFlags.SPLIT) !== 0 || this.splitOpen;
        this.splitOpen = (flags & LineFlags.SPLIT) !== 0;
        if (piece) this.general(lazy ? bytes.toString("utf8", bytesStart, bytesEnd) : line, start, "split");
        else if (!this.fastBytes(bytes, bytesStart, bytesEnd, start)) this.general(lazy ? bytes.toString("utf8", bytesStart, bytesEnd) : line, start);
      },
    );
  }

  /**
   * Feed bytes as they were read. Returns false when the credit is spent: stop reading (and say so with pause()), and
   * call resume() when credit comes. What the credit did not cover is held (never copied) and goes first then.
   */
  push(chunk: Buffer): boolean {
    this.counters.bytesRead += chunk.length;
    if (this.held.length > 0 || !this.out.hasCredit) {
      this.held.push(chunk);
      return false;
    }
    // One arrival time per chunk: cheap, and lines read together share it (held lines keep it).
    this.now = new Date().toISOString();
    this.feed(chunk);
    return this.out.hasCredit;
  }

  /** The input is not read for want of credit: a multiline event open now is not idle, its next lines wait. */
  pause(): void {
    this.joiner?.pauseIdle();
  }

  /**
   * Credit came: split what is held while it lasts. True when nothing is held any more: the input may be read again,
   * and then readingAgain() says so.
   */
  resume(): boolean {
    while (this.held.length > 0 && this.out.hasCredit) this.feed(this.held.shift()!);
    return this.held.length === 0;
  }

  /** The input is read again: an open multiline event's idle time counts from now. */
  readingAgain(): void {
    this.joiner?.resumeIdle();
  }

  /** Bytes are held for want of credit. */
  get holding(): boolean {
    return this.held.length > 0;
  }

  /** End of input: emit what is held whatever the credit, then a partial last line and any open multiline event. */
  end(): void {
    this.ending = true;
    for (const chunk of this.held) this.splitter.push(chunk);
    this.held.length = 0;
    this.now = new Date().toISOString();
    this.splitter.flush();
    this.joiner?.flush();
    this.joiner?.close();
  }

  /** Split `chunk` up to the line that spends the credit; hold the rest (in front of anything held already). */
  private feed(chunk: Buffer): void {
    const used = this.splitter.push(chunk);
    if (used < chunk.length) this.held.unshift(chunk.subarray(used));
  }

  /** The json parser's fast path from the line's bytes; false when the general path must build the record. */
  private fastBytes(bytes: Buffer, s: number, e: number, start: number): boolean {
    if (this.fast === undefined) return false;
    if (!fastJsonRecordBytes(bytes, s, e, this.fast, this.now || new Date().toISOString(), this.options.offsets ? start : undefined, this.out)) return false;
    // Out of credit, the chunk being split stops after this line (end() sends it all).
    if (!this.out.hasCredit && !this.ending) this.splitter.halt();
    return true;
  }

  /** A joined multiline event (text only). */
  private emit(text: string, start: number, truncated: boolean): void {
    if (truncated) {
      // Flagged: the general path's job.
      this.counters.multilineTruncated++;
      this.general(text, start, "truncated");
      return;
    }
    if (this.fast !== undefined) {
      const bytes = Buffer.from(text);
      if (this.fastBytes(bytes, 0, bytes.length, start)) return;
    }
    this.general(text, start);
  }

  private general(text: string, start: number, flag?: "truncated" | "split"): void {
    const parsed = this.parser(text);
    if (parsed.blank) {
      this.counters.blankLines++;
      return;
    }
    if (parsed.error !== undefined) this.counters.parseErrors++;
    if (parsed.droppedKeys !== undefined) this.counters.droppedKeys += parsed.droppedKeys;
    const ctx = this.ctx;
    ctx.now = this.now || new Date().toISOString();
    if (this.options.offsets) ctx.offset = start;
    const record = buildRecord(parsed, ctx);
    if (flag !== undefined) flagRecord(record, flag);
    let json: string | undefined;
    try {
      json = stringifyRecord(record);
    } catch {
      // buildRecord owns every object it returns; only a pathological parse function result can get here.
      this.counters.parseErrors++;
      json = JSON.stringify({ "@timestamp": ctx.now, message: text, error: { type: "parse", message: "unserializable" } });
    }
    if (json === undefined) {
      this.out.dropOversized(text.length);
      return;
    }
    if (!this.out.push(json) && !this.ending) this.splitter.halt();
  }
}
