// Packs framed records into bounded segments (stream writes, HTTP bodies) without splitting a record.
import { EntryBatch } from "../../pipeline/batch.js";
import type { Entry } from "../../pipeline/entry.js";
import type { Batch } from "../sink.js";
import type { StreamSegment } from "./stream-connection.js";

/** Default size of one stream write: big enough for throughput, small enough to know what was flushed. */
export const STREAM_SEGMENT_BYTES = 64 * 1024;

export interface PackedSegment extends StreamSegment {
  readonly data: string | Buffer;
  /** UTF-8 length of `data`. */
  readonly bytes: number;
}

/**
 * Join `lines[i] + terminator` into segments of at most `maxBytes` (a single longer line gets a segment of its own).
 * Segment k holds the records that follow those of segment k-1, so "first N records" maps back to line indexes.
 * Lines given as UTF-8 bytes are copied as they are; a segment holding any is a Buffer.
 */
export function packLines(lines: readonly (string | Buffer)[], terminator: string, maxBytes: number): PackedSegment[] {
  const out: PackedSegment[] = [];
  const termBytes = Buffer.byteLength(terminator);
  let first = 0;
  let bytes = 0;
  let allText = true;
  const flush = (end: number): void => {
    out.push({ data: allText ? (lines.slice(first, end) as string[]).join(terminator) + terminator : joinBytes(lines, first, end, terminator, bytes), records: end - first, bytes });
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = (typeof line === "string" ? Buffer.byteLength(line) : line.length) + termBytes;
    if (i > first && bytes + n > maxBytes) {
      flush(i);
      first = i;
      bytes = 0;
      allText = true;
    }
    if (typeof line !== "string") allText = false;
    bytes += n;
  }
  if (lines.length > first) flush(lines.length);
  return out;
}

function joinBytes(lines: readonly (string | Buffer)[], from: number, to: number, terminator: string, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let p = 0;
  for (let i = from; i < to; i++) {
    const line = lines[i]!;
    p += typeof line === "string" ? out.write(line, p) : line.copy(out, p);
    p += out.write(terminator, p);
  }
  return out;
}

/**
 * `packLines` for a batch's canonical JSON with a one-byte ASCII terminator. Records that arrived as bytes are
 * copied as they are, and a run of them that lies back to back in one channel frame is one copy: no decode, join
 * or encode.
 */
export function packRecords(batch: Batch, terminator: string, maxBytes: number): PackedSegment[] {
  if (!(batch instanceof EntryBatch)) return packLines(batch.json, terminator, maxBytes);
  const entries = batch.entries;
  const term = terminator.charCodeAt(0);
  const out: PackedSegment[] = [];
  let first = 0;
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const n = entries[i]!.bytes + 1;
    if (i > first && bytes + n > maxBytes) {
      out.push({ data: recordBytes(entries, first, i, term, bytes), records: i - first, bytes });
      first = i;
      bytes = 0;
    }
    bytes += n;
  }
  if (entries.length > first) out.push({ data: recordBytes(entries, first, entries.length, term, bytes), records: entries.length - first, bytes });
  return out;
}

/**
 * The UTF-8 of `entries[from, to)`, each followed by the byte `term` (`size` bytes in all). Records of one channel
 * frame sit there separated by "\n": a run of them is copied at once, and its separators are set to `term`.
 */
export function recordBytes(entries: readonly Entry[], from: number, to: number, term: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  for (let i = from; i < to; ) {
    const e = entries[i]!;
    let j = i + 1;
    if (e.hasBytes) while (j < to && entries[j]!.follows(entries[j - 1]!)) j++;
    if (j - i === 1) p = e.copyUtf8(out, p);
    else {
      const at = p - e.frameOffset;
      p = e.copyRunUtf8(entries[j - 1]!, out, p);
      if (term !== 0x0a) for (let k = i + 1; k < j; k++) out[at + entries[k]!.frameOffset - 1] = term;
    }
    out[p++] = term;
    i = j;
  }
  return out;
}
