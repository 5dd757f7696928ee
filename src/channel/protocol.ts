// The wire protocol between host and collector child, on a dedicated pipe (fd 3), never on the child's stdout.
//
//   frame := u32 BE payload length | u8 type | payload
//
//   child → host                                  host → child
//   READY    {pid, info, groups}                  INIT    {spec}          (first frame, once)
//   RECORDS  u32 count | u32 hdrLen | hdr JSON    CREDIT  {records, bytes} (more room in the host's inbox)
//            | records as JSON lines (\n-joined)  ACK     {seq}           (every record below seq is settled)
//   STATS    {counters}                           STOP    {withinMs}      (stop reading, flush, say DRAINED in time)
//   LOG      {level, message, code?}              EXIT    {}              (host is done with you)
//   FATAL    {code, message, exitCode?, signal?, stderrTail?}
//   DRAINED  {}
//
// READY's `groups` are process groups the collector started outside its own (a command's): the host kills them
// when the collector dies without doing so. FATAL's `exitCode`, `signal` and `stderrTail` describe what ended by
// itself (the command), which the host reports instead of the collector's own exit. FATAL is a collector's last
// frame: it then waits for EXIT, which the host sends once it has read everything before it (a collector that exited
// at once would make the host's next write fail with EPIPE, and Node would drop the frames still unread).
//
// RECORDS carries many records per frame (no per-record IPC message). Its header holds the seq of the first
// record; the others follow contiguously. ACK lets a collector commit positions (file checkpoints) of settled records.

export const FrameType = {
  READY: 1,
  RECORDS: 2,
  STATS: 3,
  LOG: 4,
  FATAL: 5,
  DRAINED: 6,
  INIT: 16,
  CREDIT: 17,
  STOP: 18,
  EXIT: 19,
  ACK: 20,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN = new Set<number>(Object.values(FrameType));

/** Largest frame either side accepts; a larger length prefix is a protocol error (garbage, not a frame). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/**
 * Largest record (its JSON's UTF-8) a collector sends; a larger one is dropped and counted in the collector. A frame
 * holds at most one record past its 256 KiB fill mark, so this keeps every frame far below MAX_FRAME_BYTES: one
 * record can never make a frame the host refuses (and kills the collector for, which would re-read the same line).
 */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** What a collector leaves of STOP's `withinMs` for its last frames (STATS, DRAINED) to reach the host. */
export const STOP_MARGIN_MS = 500;
/**
 * How much longer than a collector's `killAfterMs` the host waits for its DRAINED: STOP_MARGIN_MS, plus the second
 * a command collector gives its pipes after the command exited (OUTPUT_GRACE_MS in collector/runtime/command.ts).
 */
export const DRAINED_MARGIN_MS = 1_000 + STOP_MARGIN_MS;

export interface RecordsHeader {
  /** Seq of the first record in the frame; the others follow contiguously. */
  seq: number;
}

export function encodeFrame(type: FrameType, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32BE(body.length, 0);
  out[4] = type;
  body.copy(out, 5);
  return out;
}

export function encodeJson(type: FrameType, value: unknown): Buffer {
  return encodeFrame(type, JSON.stringify(value));
}

export interface DecodedRecords {
  header: RecordsHeader;
  /**
   * Record i's JSON is `payload[starts[i]..ends[i])` as UTF-8 (offsets, not copies or views); for a payload in
   * pieces, `bufs[i][starts[i]..ends[i])` instead.
   */
  starts: Int32Array;
  ends: Int32Array;
  /**
   * For a payload in pieces (an array, even of one): the buffer holding each record, the piece it lies in
   * (consecutive records of a piece share it), or a copy of its own for one that crosses from a piece into the next.
   * Undefined for a payload in one Buffer.
   */
  bufs: Buffer[] | undefined;
}

export class ProtocolError extends Error {}

const NO_BYTES = Buffer.alloc(0);

/** The first `n` bytes of `pieces` (n ≤ their length) as one buffer: a view of the first piece if it holds them. */
function prefix(pieces: readonly Buffer[], n: number): Buffer {
  if (pieces[0]!.length >= n) return pieces[0]!;
  const out = Buffer.allocUnsafe(n);
  for (let i = 0, at = 0; at < n; i++) at += pieces[i]!.copy(out, at, 0, Math.min(pieces[i]!.length, n - at));
  return out;
}

/**
 * A RECORDS payload's records, from one buffer or from the pieces (in order, none empty) that make it up: the
 * views of the pipe reads a frame arrived in (see FrameDecoder). The same records, offsets aside, and the same
 * errors either way.
 */
export function decodeRecords(payload: Buffer | readonly Buffer[]): DecodedRecords {
  const pieces = Buffer.isBuffer(payload) ? [payload] : payload;
  let total = 0;
  for (const p of pieces) total += p.length;
  if (total < 8) throw new ProtocolError("RECORDS frame shorter than its header");
  const fixed = prefix(pieces, 8);
  const count = fixed.readUInt32BE(0);
  const hdrLen = fixed.readUInt32BE(4);
  if (8 + hdrLen > total) throw new ProtocolError("RECORDS header length exceeds the frame");
  let header: RecordsHeader;
  try {
    header = JSON.parse(prefix(pieces, 8 + hdrLen).toString("utf8", 8, 8 + hdrLen)) as RecordsHeader;
  } catch {
    throw new ProtocolError("RECORDS header is not JSON");
  }
  if (typeof header?.seq !== "number" || !Number.isSafeInteger(header.seq) || header.seq < 0) {
    throw new ProtocolError("RECORDS header has no valid seq");
  }
  // A count larger than the bytes could hold is garbage: refuse it before allocating for it.
  if (count > total - 8 - hdrLen + 1) throw new ProtocolError(`RECORDS frame cannot hold ${count} records`);
  const starts = new Int32Array(count);
  const ends = new Int32Array(count);
  const bufs = Buffer.isBuffer(payload) ? undefined : new Array<Buffer>(count);
  // The read position: piece p at `at`; p === pieces.length once every byte is read.
  let p = 0;
  let at = 8 + hdrLen;
  while (p < pieces.length && at >= pieces[p]!.length) at -= pieces[p++]!.length;
  for (let i = 0; i < count; i++) {
    if (p === pieces.length) {
      // Nothing left: an empty last record, or too few.
      if (i < count - 1) throw new ProtocolError(`RECORDS frame holds fewer than ${count} records`);
      if (bufs !== undefined) bufs[i] = NO_BYTES;
      continue;
    }
    const piece = pieces[p]!;
    const nl = piece.indexOf(10, at);
    if (nl >= 0 || p === pieces.length - 1) {
      // To its `\n`, or the last record to the end of the last piece.
      if (nl < 0 && i < count - 1) throw new ProtocolError(`RECORDS frame holds fewer than ${count} records`);
      if (bufs !== undefined) bufs[i] = piece;
      starts[i] = at;
      ends[i] = nl >= 0 ? nl : piece.length;
      at = nl >= 0 ? nl + 1 : piece.length;
    } else {
      // The record goes on into the next pieces, to a `\n` or to the end: copied into a buffer of its own.
      let q = p + 1;
      let cut = -1;
      let len = piece.length - at;
      for (; q < pieces.length; q++) {
        cut = pieces[q]!.indexOf(10);
        if (cut >= 0) break;
        len += pieces[q]!.length;
      }
      if (q === pieces.length && i < count - 1) throw new ProtocolError(`RECORDS frame holds fewer than ${count} records`);
      if (q < pieces.length) len += cut;
      const own = Buffer.allocUnsafe(len);
      let w = piece.copy(own, 0, at);
      for (let k = p + 1; k < q; k++) w += pieces[k]!.copy(own, w);
      if (q < pieces.length) pieces[q]!.copy(own, w, 0, cut);
      bufs![i] = own;
      starts[i] = 0;
      ends[i] = len;
      p = q;
      at = cut + 1;
    }
    while (p < pieces.length && at >= pieces[p]!.length) at -= pieces[p++]!.length;
  }
  if (count > 0 && p < pieces.length) throw new ProtocolError(`RECORDS frame holds more than ${count} records`);
  return { header, starts, ends, bufs };
}

/**
 * Incremental decoder. Push bytes as they arrive; complete frames come out in order. A length over `maxFrameBytes`
 * or an unknown type is a ProtocolError (the caller treats the peer as broken), never an unbounded buffer.
 *
 * A frame inside one chunk comes out as a view of it. A frame spread over chunks (most large frames: pipe reads
 * end anywhere) is copied once into a buffer of its own size when its last byte arrives; the rest of the last
 * chunk stays a view. Nothing is concatenated while a frame is incomplete.
 *
 * `spread` lets the frames of one type skip that copy while its `when()` says so: they go to its `onPieces` as the
 * views of the chunks they lie in, in order, none empty. The host takes RECORDS frames so while a sink of theirs is
 * stalled and its queue packs records as they come: each record is then deflated at once and its bytes dropped,
 * and a copy would only double what the fill allocates (and what the host's RSS peaks at). While every sink keeps
 * up, a copy is what holds the records of a batch until it is delivered, and the reads die young.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly onFrame: (type: FrameType, payload: Buffer) => void,
    private readonly maxFrameBytes = MAX_FRAME_BYTES,
    private readonly spread?: { readonly type: FrameType; when(): boolean; onPieces(pieces: Buffer[]): void },
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 5) {
      const first = this.chunks[0]!;
      const len = first.length >= 5 ? first.readUInt32BE(0) : this.byteAt(0) * 0x1000000 + ((this.byteAt(1) << 16) | (this.byteAt(2) << 8) | this.byteAt(3));
      const type = first.length >= 5 ? first[4]! : this.byteAt(4);
      if (len > this.maxFrameBytes) throw new ProtocolError(`frame of ${len} bytes exceeds the ${this.maxFrameBytes}-byte limit`);
      if (!KNOWN.has(type)) throw new ProtocolError(`unknown frame type ${type}`);
      if (this.buffered < 5 + len) return;
      if (this.spread !== undefined && type === this.spread.type && first.length < 5 + len && this.spread.when()) {
        const pieces = this.takePieces(5 + len);
        if (pieces.length > 1) {
          this.spread.onPieces(pieces);
          continue;
        }
        this.onFrame(type as FrameType, pieces[0] ?? first.subarray(0, 0));
        continue;
      }
      const frame = this.take(5 + len);
      this.onFrame(type as FrameType, frame.subarray(5));
    }
  }

  /** Remove the first `n` buffered bytes (a frame, n ≤ buffered) and return its payload's pieces, none empty. */
  private takePieces(n: number): Buffer[] {
    this.buffered -= n;
    const out: Buffer[] = [];
    let skip = 5;
    while (n > 0) {
      const c = this.chunks[0]!;
      const end = Math.min(c.length, n);
      if (end > skip) out.push(c.subarray(skip, end));
      skip = Math.max(0, skip - end);
      n -= end;
      if (end === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(end);
    }
    return out;
  }

  /** The buffered byte at `k` (only for the 5-byte header, when it spans chunks). */
  private byteAt(k: number): number {
    for (const c of this.chunks) {
      if (k < c.length) return c[k]!;
      k -= c.length;
    }
    throw new RangeError("FrameDecoder.byteAt past the buffered bytes");
  }

  /** Remove the first `n` buffered bytes (n ≤ buffered) and return them as one buffer. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const need = n - at;
      if (c.length <= need) {
        at += c.copy(out, at);
        this.chunks.shift();
      } else {
        at += c.copy(out, at, 0, need);
        this.chunks[0] = c.subarray(need);
      }
    }
    return out;
  }
}
