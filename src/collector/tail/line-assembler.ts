// The tailer's one seam to the collector's shared LineSplitter (src/collector/line-splitter.ts): adapts its
// callback interface to the pull shape the read loop wants (push a chunk, get its lines; reset after truncation),
// so the tailer never depends on the splitter's internals.
//
// Offsets: a line's `offset` is its first byte, `end` the byte after its terminator (`\n` or `\r\n`). `lineStart`
// is the first byte not yet emitted, `position` the first byte not yet pushed; bytes in between are the held
// partial line (at most maxLineBytes of them are kept in memory).
import { LineFlags, LineSplitter } from "../line-splitter.js";

export interface AssembledLine {
  text: string;
  /** The line's UTF-8 is `bytes[bytesStart..bytesEnd)`: a view valid only until the next push (see TailLine). */
  bytes: Buffer;
  bytesStart: number;
  bytesEnd: number;
  offset: number;
  end: number;
  truncated: boolean;
  /** A piece of an overlong line (overlong "split"); the line continues in the next one. */
  split: boolean;
  partial: boolean;
  invalidUtf8: boolean;
  /** `text` was not decoded (lazy mode): decode `bytes[bytesStart..bytesEnd)`, valid UTF-8, while it is valid. */
  lazy: boolean;
}

export class LineAssembler {
  readonly #maxLineBytes: number;
  readonly #overlong: "split" | "truncate";
  readonly #lazyText: boolean;
  #splitter!: LineSplitter;
  /** Where the splitter's callback appends; set for the duration of one push()/takePartial(). */
  #out: AssembledLine[] = [];
  readonly #onLine = (text: string, start: number, end: number, flags: number, bytes: Buffer, bytesStart: number, bytesEnd: number): void => {
    this.#out.push({
      text,
      bytes,
      bytesStart,
      bytesEnd,
      offset: start,
      end,
      truncated: (flags & LineFlags.TRUNCATED) !== 0,
      split: (flags & LineFlags.SPLIT) !== 0,
      partial: (flags & LineFlags.UNTERMINATED) !== 0,
      invalidUtf8: (flags & LineFlags.INVALID_UTF8) !== 0,
      lazy: (flags & LineFlags.LAZY_TEXT) !== 0,
    });
  };

  constructor(maxLineBytes: number, overlong: "split" | "truncate", position = 0, lazyText = false) {
    this.#maxLineBytes = maxLineBytes;
    this.#overlong = overlong;
    this.#lazyText = lazyText;
    this.reset(position);
  }

  /** Bytes consumed so far (the read offset). */
  get position(): number {
    return this.#splitter.position;
  }

  /** First byte not yet emitted as (part of) a line. */
  get lineStart(): number {
    return this.#splitter.offset;
  }

  /** Bytes of the unterminated line held in memory (≤ maxLineBytes). */
  get heldBytes(): number {
    return this.#splitter.pendingBytes;
  }

  get hasPartial(): boolean {
    return this.#splitter.hasPending;
  }

  /** Forgets any held bytes and continues at `position` (after a truncation, or a fresh start). */
  reset(position: number): void {
    this.#splitter = new LineSplitter(
      { maxLineBytes: this.#maxLineBytes, overlong: this.#overlong, startOffset: position, lazyText: this.#lazyText },
      this.#onLine,
    );
  }

  /** Consumes `chunk` (the bytes at `position`) and appends its completed lines to `out`. */
  push(chunk: Buffer, out: AssembledLine[]): void {
    this.#out = out;
    try {
      this.#splitter.push(chunk);
    } finally {
      this.#out = [];
    }
  }

  /** Emits the held bytes as a line flagged partial; the next line starts after them. */
  takePartial(): AssembledLine | undefined {
    if (!this.hasPartial) return undefined;
    const out: AssembledLine[] = [];
    this.#out = out;
    try {
      this.#splitter.flush();
    } finally {
      this.#out = [];
    }
    return out[0];
  }
}
