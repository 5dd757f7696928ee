// A sink lane's waiting records, oldest first. While the sink delivers they are held as they arrived. While the lane
// says it is stalled (setPacking), those past the next batches (the hot ones) are packed into deflated blocks of
// about 64 KiB, and inflated when their turn comes near. JSON logs shrink 5 to 10 times that way, so a queue full of
// a stalled sink's records holds a fraction of the memory its byte bound counts, and lets go of the channel frames
// they came in.
//
//   shift ◀── head (entries: the next batches) ◀── parked blocks (deflated) ◀── tail (entries to pack, or held while
//                                                                                   the sink delivers) ◀── push
//
// A block deflates the records' UTF-8 with a `\n` after each, so that entries inflated from one block form runs
// (Entry.follows) as a channel frame's do, and after it what each entry needs again (seq, byte length, admission
// stamp); the source is kept once per block. An entry another lane also holds (pending > 1) is kept whole in its
// block: it is one object shared by the lanes, whose `pending` each of them settles. Once the other lanes settled
// them, such a block is packed again. Records over BLOCK_BYTES stay whole too: deflating one takes milliseconds of the
// host's thread, and its frame is its own anyway.
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
/**
 * Room for a block's text: a tail is packed once it reaches BLOCK_BYTES, so it holds less than that plus its last
 * record, itself at most BLOCK_BYTES (larger ones stay whole).
 */
const TEXT_ROOM = 2 * BLOCK_BYTES + BLOCK_RECORDS;
/** Blocks setPacking packs at once; packSome, called by the lane's timer, packs the rest. */
const PACK_AT_ONCE = 4;
/** Where pack() lays out a block before deflating it. Deflation is synchronous, so one serves every queue. */
const scratch = Buffer.allocUnsafeSlow(TEXT_ROOM + 8 + BLOCK_RECORDS * META_BYTES);
const EMPTY = Buffer.alloc(0);

interface Parked {
  /** The records' UTF-8 (a `\n` after each), then from the next multiple of 8 their META_BYTES each; deflated. */
  z: Buffer;
  readonly count: number;
  /** Of `count`, the records deflated (the others are kept whole). */
  packed: number;
  /** Bytes inflated. */
  size: number;
  /** Bytes of the records' text (with their `\n`s). */
  text: number;
  /** The records' ack target: one for the block when they share it (the usual case), else one per record. */
  source: AckTarget | undefined | (AckTarget | undefined)[];
  /** Entries kept whole, by position; undefined when there are none. */
  kept: (Entry | undefined)[] | undefined;
  /** Some kept entry is held by another lane too: the block is packed again once none is. */
  shared: boolean;
  /** Inflated into the head already. */
  gone: boolean;
}

/** Pack `entries` (at most BLOCK_RECORDS) into a block; a record that cannot be packed is kept whole in it. */
function pack(entries: readonly Entry[]): Parked {
  const n = entries.length;
  const buf = scratch;
  let kept: (Entry | undefined)[] | undefined;
  let shared = false;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    const bytes = e.bytes;
    if (e.pending === 1 && bytes <= BLOCK_BYTES && at + bytes < TEXT_ROOM) {
      const end = e.copyUtf8(buf, at);
      // Exactly `bytes`, or the record is not what its entry says (a text decoded from bytes that were not UTF-8):
      // then it is not repacked but kept as it is, and what it wrote is overwritten.
      if (end - at === bytes) {
        buf[end] = 10;
        at = end + 1;
        continue;
      }
    }
    (kept ??= new Array<Entry | undefined>(n))[i] = e;
    if (e.pending !== 1) shared = true;
  }
  const first = entries[0]?.source;
  const all = { count: n, source: first, kept, shared, gone: false };
  if (at === 0) return { ...all, z: EMPTY, packed: 0, size: 0, text: 0 };
  const meta = (at + 7) & ~7;
  buf.fill(0, at, meta);
  let packed = 0;
  let sources: (AckTarget | undefined)[] | undefined;
  for (let i = 0, m = meta; i < n; i++, m += META_BYTES) {
    if (kept?.[i] !== undefined) {
      buf.fill(0, m, m + META_BYTES);
      continue;
    }
    const e = entries[i]!;
    buf.writeDoubleLE(e.seq, m);
    buf.writeUInt32LE(e.bytes, m + 8);
    buf.writeInt32LE(e.stamp, m + 12);
    if (sources === undefined && e.source !== first) sources = entries.map((x) => x.source);
    packed++;
  }
  const size = meta + n * META_BYTES;
  let out: Buffer;
  try {
    out = deflateRawSync(buf.subarray(0, size), DEFLATE);
  } catch {
    // Out of memory for zlib's state: the records stay as they are, so nothing is lost.
    return { ...all, kept: entries.slice(), z: EMPTY, packed: 0, size: 0, text: 0 };
  }
  // The output is a view of zlib's 16 KiB output buffer: copied to its own size, or a block would hold twice its bytes.
  const z = out.buffer.byteLength > out.length + 1024 ? Buffer.from(out) : out;
  return { ...all, source: sources ?? first, z, packed, size, text: at };
}

/** Where the block that begins at entries[start] ends: BLOCK_RECORDS, or the record that reaches BLOCK_BYTES, or `to`. */
function blockEnd(entries: readonly Entry[], start: number, to: number): number {
  let end = start;
  for (let bytes = 0; end < to && end - start < BLOCK_RECORDS && bytes < BLOCK_BYTES; ) bytes += entries[end++]!.bytes;
  return end;
}

/** The block's entries, in order (packed ones new, with pending 1; kept ones themselves). */
function unpack(block: Parked): Entry[] {
  // One output chunk of the block's size: no concatenation.
  const buf = block.size === 0 ? EMPTY : inflateRawSync(block.z, { chunkSize: block.size + 64 });
  const { source, kept } = block;
  const out = new Array<Entry>(block.count);
  let at = 0;
  for (let i = 0, m = (block.text + 7) & ~7; i < block.count; i++, m += META_BYTES) {
    const whole = kept?.[i];
    if (whole !== undefined) {
      out[i] = whole;
      continue;
    }
    const len = buf.readUInt32LE(m + 8);
    const e = new Entry(buf, len, Array.isArray(source) ? source[i] : source, buf.readDoubleLE(m), undefined, at);
    e.pending = 1;
    e.admit(buf.readInt32LE(m + 12));
    out[i] = e;
    at += len + 1;
  }
  return out;
}

export interface WaitQueueStats {
  /** Records held deflated now (not those kept whole). */
  records: number;
  /** Bytes those blocks take, deflated. */
  bytes: number;
  /** Their records' bytes before deflation (with a `\n` each). */
  rawBytes: number;
  /** Records packed into blocks so far (a running total; a block packed again counts again). */
  total: number;
}

export class WaitQueue {
  private readonly head: Ring<Entry>;
  private headBytes = 0;
  private readonly parked = new Ring<Parked>(16);
  /** Blocks that keep entries another lane held when they were packed, oldest first (see repackSettled). */
  private shared: Parked[] = [];
  /** Newest entries, held as they came; those before `tailFrom` were packed already (the array is cut now and then). */
  private tail: Entry[] = [];
  private tailFrom = 0;
  /** Bytes of tail[tailFrom…]. */
  private tailBytes = 0;
  private on = false;
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
    return this.head.length + this.parkedRecords + this.tail.length - this.tailFrom;
  }

  get stats(): WaitQueueStats {
    return { records: this.packedRecords, bytes: this.parkedBytes, rawBytes: this.parkedText, total: this.packedTotal };
  }

  /** Whether records past the hot ones are packed now (see setPacking). */
  get packing(): boolean {
    return this.on;
  }

  /**
   * Pack what waits past the hot records from now on (the sink stopped making progress). Off, arrivals are held as
   * they come (behind any blocks still parked), and nothing is deflated: a sink that keeps delivering, however far
   * behind, costs no CPU for this. What is already held past the hot records is packed a few blocks now and the rest
   * by `packSome` (a full queue at once would hold the host's thread for tens of milliseconds), or at once where it
   * must go in front of blocks parked before.
   */
  setPacking(on: boolean): void {
    if (on === this.on) return;
    this.on = on;
    if (!on) return;
    const head = this.head.drain();
    this.head.shrinkIfEmpty();
    let keep = 0;
    let bytes = 0;
    while (keep < head.length && keep < this.hotRecords && bytes < this.hotBytes) bytes += head[keep++]!.bytes;
    for (let i = 0; i < keep; i++) this.head.push(head[i]!);
    this.headBytes = bytes;
    if (keep < head.length && this.parked.length === 0) {
      // Nothing parked: the head's records past the hot ones and the tail are one run, packed from its front.
      const rest = head.slice(keep);
      for (const e of rest) this.tailBytes += e.bytes;
      for (let i = this.tailFrom; i < this.tail.length; i++) rest.push(this.tail[i]!);
      this.tail = rest;
      this.tailFrom = 0;
    } else if (keep < head.length) {
      // Older than the parked blocks: packed now, in front of them.
      const older = this.packRun(head, keep, head.length);
      for (let i = older.length - 1; i >= 0; i--) this.parked.unshift(older[i]!);
      const shared = older.filter((b) => b.shared);
      if (shared.length > 0) this.shared = [...shared, ...this.shared];
    }
    this.packSome(PACK_AT_ONCE);
  }

  /** Packing is on and a block's worth or more of the tail waits to be packed (see packSome). */
  get backlog(): boolean {
    return this.on && this.blockWaiting();
  }

  push(entry: Entry): void {
    if (this.tailFrom === this.tail.length && this.parked.length === 0 && (!this.on || (this.head.length < this.hotRecords && this.headBytes < this.hotBytes))) {
      this.head.push(entry);
      this.headBytes += entry.bytes;
      return;
    }
    this.tail.push(entry);
    this.tailBytes += entry.bytes;
    if (this.on && this.blockWaiting()) this.packSome(1);
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

  /** Each entry held as it arrived, in the head, the tail or kept whole in a block (not the deflated ones). */
  forEachLoose(fn: (entry: Entry) => void): void {
    const head = this.head;
    for (let i = 0; i < head.length; i++) {
      const e = head.shift()!;
      fn(e);
      head.push(e);
    }
    const parked = this.parked;
    for (let i = 0; i < parked.length; i++) {
      const b = parked.shift()!;
      if (b.kept !== undefined) for (const e of b.kept) if (e !== undefined) fn(e);
      parked.push(b);
    }
    for (let i = this.tailFrom; i < this.tail.length; i++) fn(this.tail[i]!);
  }

  private refillHead(): void {
    const block = this.parked.peek();
    if (block !== undefined) {
      // Inflated before anything changes: should zlib fail (out of memory), the block is still there.
      const entries = unpack(block);
      this.parked.shift();
      this.forget(block);
      block.gone = true;
      for (let i = 0; i < entries.length; i++) {
        this.head.push(entries[i]!);
        this.headBytes += entries[i]!.bytes;
      }
      return;
    }
    const tail = this.tail;
    if (this.tailFrom === tail.length) return;
    for (let i = this.tailFrom; i < tail.length; i++) this.head.push(tail[i]!);
    this.headBytes += this.tailBytes;
    this.tail = [];
    this.tailFrom = 0;
    this.tailBytes = 0;
  }

  private blockWaiting(): boolean {
    return this.tailBytes >= BLOCK_BYTES || this.tail.length - this.tailFrom >= BLOCK_RECORDS;
  }

  /**
   * Pack up to `max` blocks from the front of the tail, to the back of the parked ones, while a block's worth waits
   * (less than that stays, to fill). Returns how many it packed.
   */
  packSome(max: number): number {
    let n = 0;
    const tail = this.tail;
    while (n < max && this.blockWaiting()) {
      const end = blockEnd(tail, this.tailFrom, tail.length);
      const block = pack(tail.slice(this.tailFrom, end));
      this.count(block);
      this.parked.push(block);
      if (block.shared) this.shared.push(block);
      for (let i = this.tailFrom; i < end; i++) this.tailBytes -= tail[i]!.bytes;
      this.tailFrom = end;
      n++;
    }
    if (this.tailFrom === tail.length) {
      this.tail = [];
      this.tailFrom = 0;
    } else if (this.tailFrom > 1024 && this.tailFrom * 2 > tail.length) {
      this.tail = tail.slice(this.tailFrom);
      this.tailFrom = 0;
    }
    if (n > 0) this.repackSettled();
    return n;
  }

  /** Pack entries[from, to) into blocks of up to BLOCK_BYTES and BLOCK_RECORDS, in order (counted as parked). */
  private packRun(entries: readonly Entry[], from: number, to: number): Parked[] {
    const out: Parked[] = [];
    for (let start = from; start < to; ) {
      const end = blockEnd(entries, start, to);
      const block = pack(entries.slice(start, end));
      this.count(block);
      out.push(block);
      start = end;
    }
    return out;
  }

  /** Blocks that keep entries another lane held when they were packed (see repackSettled). */
  get sharedBlocks(): number {
    return this.shared.length;
  }

  /**
   * Pack again the oldest blocks (at most `limit`) whose shared entries the other lanes have settled since: with a
   * healthy sink beside a stalled one, records are often still shared when they are packed. Called as blocks are
   * parked, and by the lane's timer while no more come. Returns how many it packed.
   */
  repackSettled(limit = 2): number {
    let done = 0;
    while (done < limit && this.shared.length > 0) {
      const b = this.shared[0]!;
      if (!b.gone) {
        if (b.kept!.some((e) => e !== undefined && e.pending !== 1)) break;
        this.forget(b);
        Object.assign(b, pack(unpack(b)));
        this.count(b);
        done++;
      }
      this.shared.shift();
    }
    return done;
  }

  private count(b: Parked): void {
    this.parkedRecords += b.count;
    this.packedRecords += b.packed;
    this.packedTotal += b.packed;
    this.parkedBytes += b.z.length;
    this.parkedText += b.text;
  }

  private forget(b: Parked): void {
    this.parkedRecords -= b.count;
    this.packedRecords -= b.packed;
    this.parkedBytes -= b.z.length;
    this.parkedText -= b.text;
  }
}
