// Turns the byte chunks of a file or pipe into text lines with exact byte offsets: those offsets become file
// checkpoints, so every byte belongs to exactly one emitted line and `end` of one line is `start` of the next.
//
//   chunk ─┬─ fast path: a whole line inside the chunk, decoded straight from it (no copy)
//          └─ slow path: bytes without a terminator yet are copied into `pending` (at most maxLineBytes of them)
//
// Memory stays bounded by maxLineBytes whatever the input: a 10 MB line without a newline never sits in memory.
//
// A consumer out of room (a collector out of credit) calls halt() from its handler: push() returns right after that
// line with the count of bytes it consumed, and the consumer pushes the rest again when it has room. The lines come
// out as if the chunk had been pushed whole: same text, offsets and flags.
import { isUtf8 } from "node:buffer";
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";

/** Bits of the `flags` argument passed with each line. */
export const LineFlags = {
  /** A piece of a line longer than `maxLineBytes` (mode `"split"`): the line continues in the next emitted line. */
  SPLIT: 1,
  /** A line longer than `maxLineBytes` cut to that size (mode `"truncate"`); `end` still covers the whole line. */
  TRUNCATED: 2,
  /** The bytes were not valid UTF-8; invalid sequences were replaced with U+FFFD. */
  INVALID_UTF8: 4,
  /** Emitted by `flush()` without a terminator (the last line of a file that does not end in a newline). */
  UNTERMINATED: 8,
  /** `lazyText`: the text was not decoded (it is ""); the bytes are valid UTF-8, decode them when needed. */
  LAZY_TEXT: 16,
} as const;

/**
 * Receives each line: its text (no terminator), the offset of its first byte, the offset after its terminator, and
 * `bytes[bytesStart..bytesEnd)`, the line's UTF-8 (BOM stripped). The bytes are a view into the chunk that is valid
 * only during the call: read them there (the byte-level fast paths do), never keep them.
 */
export type LineHandler = (line: string, start: number, end: number, flags: number, bytes: Buffer, bytesStart: number, bytesEnd: number) => void;

export interface LineSplitterOptions {
  /**
   * Longest line kept, in bytes (terminator excluded). Longer lines are split or truncated per `overlong`.
   * @default 1048576 (1 MiB)
   */
  maxLineBytes?: number;
  /**
   * What to do with longer lines: `"split"` emits them in pieces of at most `maxLineBytes` (nothing is lost; each
   * piece is flagged SPLIT), `"truncate"` keeps the first `maxLineBytes` and skips the rest up to the newline
   * (flagged TRUNCATED). Cuts never fall inside a UTF-8 character.
   * @default "split"
   */
  overlong?: "split" | "truncate";
  /**
   * Treat a lone `\r` (old Mac OS line ends) as a line end. Off by default because a lone `\r` inside a line is far
   * more common today (progress bars, terminal output) than a classic Mac file. `\r\n` is always one line end, and
   * the `\r` is never part of the text.
   * @default false
   */
  crIsLineEnd?: boolean;
  /**
   * Absolute offset of the first byte pushed (the checkpoint a tail resumes from).
   * @default 0
   */
  startOffset?: number;
  /**
   * Drop a UTF-8 byte-order mark at offset 0 from the first line's text (offsets still count it).
   * @default true
   */
  stripBom?: boolean;
  /**
   * Do not decode lines that lie whole in a chunk of valid UTF-8: pass "" and the LAZY_TEXT flag, and let the handler
   * decode the bytes if it needs the text (a byte-level consumer often does not). Other lines are decoded as usual.
   * @default false
   */
  lazyText?: boolean;
}

/** Counters for the collector's metrics. */
export interface LineSplitterStats {
  lines: number;
  /** Pieces emitted by mode "split" beyond each overlong line's first. */
  split: number;
  truncated: number;
  invalidUtf8: number;
}

const MIN_LINE_BYTES = 16;
const REPLACEMENT_CHAR = "\uFFFD";

/**
 * Splits byte chunks into lines. Push chunks in order with {@link push}; call {@link flush} at end of input (or when a
 * partial last line has been idle long enough) to emit what is pending. Lines end at `\n` or `\r\n` (and lone `\r`
 * with `crIsLineEnd`). Invalid UTF-8 becomes U+FFFD, flagged and counted.
 */
export class LineSplitter {
  readonly stats: LineSplitterStats = { lines: 0, split: 0, truncated: 0, invalidUtf8: 0 };
  readonly #onLine: LineHandler;
  readonly #max: number;
  readonly #truncate: boolean;
  readonly #cr: boolean;
  readonly #stripBom: boolean;
  /** Absolute offset of chunk[0] of the chunk being pushed; after push, of the next byte to come. */
  #base: number;
  /** Absolute offset where the pending (not yet emitted) line starts. */
  #lineStart: number;
  #pending: Buffer[] = [];
  #pendingLen = 0;
  /** Truncate mode: the pending line is over the limit; further bytes up to the newline are skipped. */
  #discarding = false;
  /** crIsLineEnd: the previous chunk ended in `\r`; the line ends there unless this chunk starts with `\n`. */
  #crHeld = false;
  /**
   * The previous chunk ended in `\r`, not yet in `pending`: half of a `\r\n` if this chunk starts with `\n`, else
   * the line's content. Held apart so that it does not count toward maxLineBytes before the next byte tells.
   */
  #crOpen = false;
  readonly #lazy: boolean;
  /** lazyText: the chunk being pushed, when it is valid UTF-8 as a whole (its lines then need no check). */
  #validChunk: Buffer | undefined;
  /** halt() was called during this push: it returns after the line being emitted. */
  #halted = false;

  constructor(options: LineSplitterOptions, onLine: LineHandler) {
    const max = options.maxLineBytes ?? 1024 * 1024;
    if (!Number.isInteger(max) || max < MIN_LINE_BYTES) {
      throw new InvalidOptionError(`Expected \`maxLineBytes\` to be an integer of at least ${MIN_LINE_BYTES}, got ${describe(max)}`);
    }
    const overlong = options.overlong ?? "split";
    if (overlong !== "split" && overlong !== "truncate") {
      throw new InvalidOptionError(`Expected \`overlong\` to be "split" or "truncate", got ${describe(overlong)}`);
    }
    const start = options.startOffset ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) {
      throw new InvalidOptionError(`Expected \`startOffset\` to be a non-negative integer, got ${describe(start)}`);
    }
    if (typeof onLine !== "function") {
      throw new InvalidOptionError(`Expected \`onLine\` to be a function, got ${describe(onLine)}`);
    }
    this.#onLine = onLine;
    this.#max = max;
    this.#truncate = overlong === "truncate";
    this.#cr = options.crIsLineEnd ?? false;
    this.#stripBom = options.stripBom ?? true;
    this.#lazy = options.lazyText ?? false;
    this.#base = start;
    this.#lineStart = start;
  }

  /** Absolute offset after the last emitted line: what a checkpoint may commit once that line is acked. */
  get offset(): number {
    return this.#lineStart;
  }

  /** Absolute offset after the last byte pushed. */
  get position(): number {
    return this.#base;
  }

  /** Bytes held for a line without a terminator yet (at most `maxLineBytes`). */
  get pendingBytes(): number {
    return this.#pendingLen;
  }

  /** True when bytes after the last emitted line are waiting for their terminator (or for `flush()`). */
  get hasPending(): boolean {
    return this.#lineStart < this.#base;
  }

  /**
   * For the line handler: the push in progress returns right after the line being emitted. Its bytes after that line
   * are not consumed: push them again (`chunk.subarray(consumed)`) to go on where it stopped. A halt outside a push
   * (from `flush()`) is forgotten.
   */
  halt(): void {
    this.#halted = true;
  }

  /** Splits `chunk`; returns how many of its bytes were consumed: all of them, unless the handler called halt(). */
  push(chunk: Buffer): number {
    const n = chunk.length;
    let pos = 0;
    this.#halted = false;
    // One native check per chunk instead of a decode per line. A chunk that cuts a character in two fails it, and
    // its lines are then decoded (and checked) one by one as usual.
    this.#validChunk = this.#lazy && isUtf8(chunk) ? chunk : undefined;
    if (this.#crHeld) {
      this.#crHeld = false;
      // The held `\r` was the line end, or the first half of `\r\n`.
      const after = n > 0 && chunk[0] === 10 ? 1 : 0;
      this.#emitPending(this.#base + after, 0);
      pos = after;
      if (this.#halted) return this.#stopAt(pos);
    }
    if (this.#crOpen && n > 0) {
      this.#crOpen = false;
      // Followed by `\n`, it is part of the terminator (the loop ends the line); else it is content.
      if (chunk[0] !== 10 && !this.#appendOpenCR()) return this.#stopAt(0);
    }
    // Next `\r` in the chunk, searched again only once passed (searching per line would be quadratic).
    let cr = -2;
    while (pos < n) {
      let nl = chunk.indexOf(10, pos);
      let termLen = 1;
      if (this.#cr) {
        if (cr !== -1 && cr < pos) cr = chunk.indexOf(13, pos);
        if (cr !== -1 && (nl === -1 || cr < nl)) {
          if (cr + 1 === n) {
            // Cannot tell `\r` from `\r\n` until the next byte arrives.
            const at = this.#append(chunk, pos, cr);
            if (at < cr) return this.#stopAt(at);
            this.#crHeld = true;
            this.#base += n;
            return n;
          }
          if (chunk[cr + 1] === 10) termLen = 2;
          nl = cr;
        }
      }
      if (nl === -1) {
        // A `\r` at the chunk's end waits for the next byte (see #crOpen).
        const open = !this.#cr && chunk[n - 1] === 13;
        const end = open ? n - 1 : n;
        const at = this.#append(chunk, pos, end);
        if (at < end) return this.#stopAt(at);
        this.#crOpen = open;
        break;
      }
      let contentEnd = nl;
      if (termLen === 1 && chunk[nl] === 10 && nl > pos && chunk[nl - 1] === 13) contentEnd = nl - 1;
      const after = this.#base + nl + termLen;
      if (this.#lineStart === this.#base + pos && this.#pendingLen === 0 && !this.#discarding && contentEnd - pos <= this.#max) {
        this.#emit(chunk, pos, contentEnd, after, 0); // fast path: the whole line is in this chunk
      } else {
        const at = this.#append(chunk, pos, contentEnd);
        if (at < contentEnd) return this.#stopAt(at);
        this.#emitPending(after, 0);
      }
      pos = nl + termLen;
      if (this.#halted) return this.#stopAt(pos);
    }
    this.#base += n;
    return n;
  }

  /** Halted: the chunk's first `at` bytes are consumed, the rest is the caller's to push again. */
  #stopAt(at: number): number {
    this.#halted = false;
    this.#base += at;
    return at;
  }

  /** Emit a pending partial line (flagged UNTERMINATED). No-op when nothing is pending. */
  flush(): void {
    if (this.#crOpen) {
      // No `\n` came after it: content.
      this.#crOpen = false;
      this.#appendOpenCR();
    }
    if (this.#crHeld) {
      this.#crHeld = false;
      this.#emitPending(this.#base, 0);
      return;
    }
    if (this.#lineStart < this.#base) this.#emitPending(this.#base, LineFlags.UNTERMINATED);
  }

  // Copy chunk[s, e) into pending, enforcing maxLineBytes; in split mode full pieces are emitted on the way. Returns
  // where it stopped: `e`, or the end of a piece after which the handler halted (the piece's line then starts anew
  // there, as it would have continued: every piece is cut at the same place either way).
  #append(chunk: Buffer, s: number, e: number): number {
    while (s < e) {
      if (this.#discarding) return e;
      const room = this.#max - this.#pendingLen;
      if (e - s <= room) {
        // A copy, not a view: a view would keep the whole (often 64 KiB) chunk alive for a short tail.
        this.#pending.push(Buffer.from(chunk.subarray(s, e)));
        this.#pendingLen += e - s;
        return e;
      }
      let cut = charBoundary(chunk, s, s + room);
      if (cut === s && this.#pendingLen === 0) cut = s + room; // cannot happen with max >= 16; never loop forever
      if (cut > s) {
        this.#pending.push(Buffer.from(chunk.subarray(s, cut)));
        this.#pendingLen += cut - s;
      }
      if (this.#truncate) {
        this.#discarding = true;
        return e;
      }
      this.#emitPending(this.#lineStart + this.#pendingLen, LineFlags.SPLIT);
      s = cut;
      if (this.#halted) return s;
    }
    return e;
  }

  // Emit the pending bytes as one line ending at absolute offset `end`.
  #emitPending(end: number, flags: number): void {
    const buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingLen);
    if (this.#discarding) {
      flags |= LineFlags.TRUNCATED;
      this.stats.truncated++;
      this.#discarding = false;
    }
    if ((flags & LineFlags.SPLIT) !== 0) this.stats.split++;
    this.#pending = [];
    this.#pendingLen = 0;
    this.#emit(buf, 0, buf.length, end, flags);
  }

  #emit(buf: Buffer, s: number, e: number, end: number, flags: number): void {
    const start = this.#lineStart;
    if (start === 0 && this.#stripBom && e - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3;
    let text = "";
    if (buf === this.#validChunk) flags |= LineFlags.LAZY_TEXT;
    else {
      text = buf.toString("utf8", s, e);
      if (text.includes(REPLACEMENT_CHAR) && isInvalidUtf8(text, buf, s, e)) {
        flags |= LineFlags.INVALID_UTF8;
        this.stats.invalidUtf8++;
      }
    }
    this.#lineStart = end;
    this.stats.lines++;
    this.#onLine(text, start, end, flags, buf, s, e);
  }

  // The `\r` that ended the previous chunk is content (see #crOpen): append it. False when the handler halted on a
  // piece emitted on the way (the `\r` is then still open, for the push to come again).
  #appendOpenCR(): boolean {
    if (this.#append(CR, 0, 1) === 1) return true;
    this.#crOpen = true;
    return false;
  }
}

const CR = Buffer.from([13]);

// Largest cut <= limit that does not fall inside a UTF-8 sequence (looks back at most 3 continuation bytes).
function charBoundary(buf: Buffer, start: number, limit: number): number {
  let cut = limit;
  for (let k = 0; k < 3 && cut > start && (buf[cut]! & 0xc0) === 0x80; k++) cut--;
  return (buf[cut]! & 0xc0) === 0x80 ? limit : cut;
}

// The decoder writes U+FFFD for invalid bytes, but a valid EF BF BD in the input decodes to the same character:
// count both to tell them apart. Only runs for lines that contain U+FFFD at all.
function isInvalidUtf8(text: string, buf: Buffer, s: number, e: number): boolean {
  let chars = 0;
  for (let i = text.indexOf(REPLACEMENT_CHAR); i !== -1; i = text.indexOf(REPLACEMENT_CHAR, i + 1)) chars++;
  let encoded = 0;
  for (let i = buf.indexOf(0xef, s); i !== -1 && i + 2 < e; i = buf.indexOf(0xef, i + 1)) {
    if (buf[i + 1] === 0xbf && buf[i + 2] === 0xbd) encoded++;
  }
  return chars !== encoded;
}
