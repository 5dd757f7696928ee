// A sink lane's waiting records, oldest first. While the sink keeps up they are held as they arrived. Once more wait
// than the next batches need (the sink is down, slow or backing off), later arrivals are packed into deflated blocks
// of about 64 KiB and inflated when their turn comes near. JSON logs shrink 5 to 10 times that way, so a queue full of
// a stalled sink's records holds a fraction of the memory its byte bound counts, and lets go of the channel frames
// they came in.
//
//   shift ◀── head (entries: the next batches) ◀── parked blocks (deflated) ◀── tail (entries filling a block) ◀── push
//
// A block deflates the records' UTF-8 with a `\n` after each, so that entries inflated from one block form runs
// (Entry.follows) as a channel frame's do, and after it what each entry needs again (seq, byte length, admission
// stamp); the source is kept once per block. An entry another lane also holds (pending > 1) is kept whole in its
// block: it is one object shared by the lanes, whose `pending` each of them settles.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { Entry, type AckTarget } from "./entry.js";
import { Ring } from "./ring.js";

/** Raw bytes per parked block: deflate sees enough repetition, and one block costs about 0.15 ms to pack. */
const BLOCK_BYTES = 64 * 1024;
/** Records per parked block at most (tiny records would otherwise make one block hold thousands of entries' worth). */
const BLOCK_RECORDS = 2048;
/** Level 1: about 90 % of level 6's ratio on log lines, at several times its speed. */
const DEFLATE = { level: 1 };
/** Per record after a block's text: seq (float64), byte length (uint32), admission stamp (int32), little-endian. */
const META_BYTES = 16;
/** Where park() lays out a block's records before deflating them (deflation is synchronous, so one serves all). */
let scratch = Buffer.allocUnsafeSlow(2 * BLOCK_BYTES);

interface Parked {
  /** The records' UTF-8 (a `\n` after each), then from the next multiple of 8 their META_BYTES each; deflated. */
  readonly z: Buffer;
  readonly count: number;
  /** Of `count`, the records deflated (the others are kept whole). */
  readonly packed: number;
  /** Bytes inflated. */
  readonly size: number;
  /** Bytes of the records' text (with their `\n`s). */
  readonly text: number;
  /** The records' ack target: one for the block when they share it (the usual case), else one per record. */
  readonly source: AckTarget | undefined | (AckTarget | undefined)[];
  /** Entries kept whole (another lane holds them too), by position; undefined when there are none. */
  readonly kept: (Entry | undefined)[] | undefined;
}

export interface WaitQueueStats {
  /** Records held deflated now (not those kept whole in a block because another lane holds them too). */
  records: number;
  /** Bytes those blocks take, deflated. */
  bytes: number;
  /** Their records' bytes before deflation (with a `\n` each). */
  rawBytes: number;
  /** Records packed into blocks so far (a running total). */
  total: number;
}

export class WaitQueue {
  private readonly head: Ring<Entry>;
  private headBytes = 0;
  private readonly parked = new Ring<Parked>(16);
  private tail: Entry[] = [];
  private tailBytes = 0;
  /** Records in parked blocks, and those of them deflated (the others are kept whole). */
  private parkedRecords = 0;
  private packedRecords = 0;
  private parkedBytes = 0;
  private parkedText = 0;
  private packedTotal = 0;

  /**
   * Records join parked blocks once `hotRecords` or `hotBytes` wait before them; Infinity keeps every record as it
   * arrived (compression off, or a disk queue's read-ahead, which its reads bound already).
   */
  constructor(
    private readonly hotRecords: number,
    private readonly hotBytes: number,
  ) {
    this.head = new Ring<Entry>(1024);
  }

  get length(): number {
    return this.head.length + this.parkedRecords + this.tail.length;
  }

  get stats(): WaitQueueStats {
    return { records: this.packedRecords, bytes: this.parkedBytes, rawBytes: this.parkedText, total: this.packedTotal };
  }

  push(entry: Entry): void {
    if (this.tail.length === 0 && this.parked.length === 0 && this.head.length < this.hotRecords && this.headBytes < this.hotBytes) {
      this.head.push(entry);
      this.headBytes += entry.bytes;
      return;
    }
    this.tail.push(entry);
    this.tailBytes += entry.bytes;
    if (this.tailBytes >= BLOCK_BYTES || this.tail.length >= BLOCK_RECORDS) this.park();
  }

  /** The oldest waiting entry, without removing it. */
  peek(): Entry | undefined {
    if (this.head.length === 0) this.refillHead();
    return this.head.peek();
  }

  shift(): Entry | undefined {
    if (this.head.length === 0) this.refillHead();
    const e = this.head.shift();
    if (e !== undefined) this.headBytes -= e.bytes;
    return e;
  }

  /** Remove and return every entry, oldest first (parked ones inflated). */
  drain(): Entry[] {
    const out: Entry[] = [];
    for (let e = this.shift(); e !== undefined; e = this.shift()) out.push(e);
    this.head.shrinkIfEmpty();
    return out;
  }

  /** Each entry held as it arrived (not the parked ones, which hold nothing but their own bytes). */
  forEachLoose(fn: (entry: Entry) => void): void {
    const head = this.head;
    for (let i = 0; i < head.length; i++) {
      const e = head.shift()!;
      fn(e);
      head.push(e);
    }
    for (const e of this.tail) fn(e);
  }

  private refillHead(): void {
    const block = this.parked.shift();
    if (block !== undefined) {
      this.unpark(block);
      return;
    }
    const tail = this.tail;
    if (tail.length === 0) return;
    for (let i = 0; i < tail.length; i++) this.head.push(tail[i]!);
    this.headBytes += this.tailBytes;
    this.tail = [];
    this.tailBytes = 0;
  }

  /** Pack the tail into a deflated block. */
  private park(): void {
    const entries = this.tail;
    const n = entries.length;
    this.tail = [];
    this.tailBytes = 0;
    let text = 0;
    for (let i = 0; i < n; i++) if (entries[i]!.pending === 1) text += entries[i]!.bytes + 1;
    // Each record's seq, byte length and admission stamp go after the text, deflated with it: consecutive seqs and
    // equal stamps take next to nothing there, and a block is one buffer instead of one per field.
    const meta = (text + 7) & ~7;
    const size = meta + n * META_BYTES;
    if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.max(size, 2 * scratch.length));
    const buf = scratch;
    buf.fill(0, text, size);
    const first = entries[0]!.source;
    let sources: (AckTarget | undefined)[] | undefined;
    let kept: (Entry | undefined)[] | undefined;
    let at = 0;
    let packed = 0;
    for (let i = 0, m = meta; i < n; i++, m += META_BYTES) {
      const e = entries[i]!;
      if (e.pending !== 1) {
        (kept ??= new Array<Entry | undefined>(n))[i] = e;
        continue;
      }
      const end = e.copyUtf8(buf, at);
      buf[end] = 10;
      buf.writeDoubleLE(e.seq, m);
      buf.writeUInt32LE(end - at, m + 8);
      buf.writeInt32LE(e.stamp, m + 12);
      if (sources === undefined && e.source !== first) sources = entries.map((x) => x.source);
      at = end + 1;
      packed++;
    }
    // The output is a view of zlib's 16 KiB output buffer: copied to its own size, or a block would hold twice its bytes.
    const out = deflateRawSync(buf.subarray(0, size), DEFLATE);
    const z = out.buffer.byteLength > out.length + 1024 ? Buffer.from(out) : out;
    this.parked.push({ z, count: n, packed, size, text: at, source: sources ?? first, kept });
    this.parkedRecords += n;
    this.packedRecords += packed;
    this.packedTotal += packed;
    this.parkedBytes += z.length;
    this.parkedText += at;
  }

  /** Inflate the oldest block into the head. */
  private unpark(block: Parked): void {
    this.parkedRecords -= block.count;
    this.packedRecords -= block.packed;
    this.parkedBytes -= block.z.length;
    this.parkedText -= block.text;
    // One output chunk of the block's size: no concatenation.
    const buf = inflateRawSync(block.z, { chunkSize: block.size + 64 });
    const { source, kept } = block;
    let at = 0;
    for (let i = 0, m = (block.text + 7) & ~7; i < block.count; i++, m += META_BYTES) {
      const whole = kept?.[i];
      if (whole !== undefined) {
        this.head.push(whole);
        this.headBytes += whole.bytes;
        continue;
      }
      const len = buf.readUInt32LE(m + 8);
      const e = new Entry(buf, len, Array.isArray(source) ? source[i] : source, buf.readDoubleLE(m), undefined, at);
      e.pending = 1;
      e.admit(buf.readInt32LE(m + 12));
      this.head.push(e);
      this.headBytes += len;
      at += len + 1;
    }
  }
}
