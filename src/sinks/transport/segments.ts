// Packs framed records into bounded segments (stream writes, HTTP bodies) without splitting a record.
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
