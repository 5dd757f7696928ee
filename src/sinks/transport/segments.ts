// Packs framed records into bounded segments (stream writes, HTTP bodies) without splitting a record.
import type { StreamSegment } from "./stream-connection.js";

/** Default size of one stream write: big enough for throughput, small enough to know what was flushed. */
export const STREAM_SEGMENT_BYTES = 64 * 1024;

export interface PackedSegment extends StreamSegment {
  readonly data: string;
  /** UTF-8 length of `data`. */
  readonly bytes: number;
}

/**
 * Join `lines[i] + terminator` into segments of at most `maxBytes` (a single longer line gets a segment of its own).
 * Segment k holds the records that follow those of segment k-1, so "first N records" maps back to line indexes.
 */
export function packLines(lines: readonly string[], terminator: string, maxBytes: number): PackedSegment[] {
  const out: PackedSegment[] = [];
  const termBytes = Buffer.byteLength(terminator);
  let parts: string[] = [];
  let bytes = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = Buffer.byteLength(line) + termBytes;
    if (parts.length > 0 && bytes + n > maxBytes) {
      out.push({ data: parts.join(terminator) + terminator, records: parts.length, bytes });
      parts = [];
      bytes = 0;
    }
    parts.push(line);
    bytes += n;
  }
  if (parts.length > 0) out.push({ data: parts.join(terminator) + terminator, records: parts.length, bytes });
  return out;
}
