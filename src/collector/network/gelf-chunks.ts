// GELF UDP chunk reassembly (protocols.md §1.4), bounded in count, bytes and time so that a flood of partial
// messages cannot grow the collector's memory. Every chunk or message it gives up on is counted by reason.
//
//   datagram 0x1e 0x0f | id (8) | seq | count | data
//        │
//        ├─ bad header (short, count 0 or > 128, seq ≥ count, count changed) ─▶ gelfChunkInvalid
//        ├─ slot already filled ─▶ gelfChunkDuplicate (first copy wins)
//        ├─ message over maxMessageBytes ─▶ gelfTooLarge (later chunks of it are ignored until it expires)
//        ├─ table over maxPendingMessages / maxPendingBytes ─▶ oldest dropped, gelfChunksEvicted
//        └─ all `count` slots filled ─▶ data slices concatenated in sequence order (then decompressed by the caller)
//   sweep(now): messages older than timeoutMs since their first chunk ─▶ gelfChunksExpired
import type { NetworkCounters } from "./counters.js";

export const CHUNK_HEADER_BYTES = 12;
/** The GELF spec's limit on chunks per message. */
export const MAX_CHUNKS = 128;

export interface ChunkLimits {
  /** A message must complete this long after its first chunk. */
  timeoutMs: number;
  maxPendingMessages: number;
  maxPendingBytes: number;
  /** Largest reassembled message (compressed bytes). */
  maxMessageBytes: number;
}

type ChunkCounters = Pick<
  NetworkCounters,
  "gelfChunkInvalid" | "gelfChunkDuplicate" | "gelfChunksExpired" | "gelfChunksEvicted" | "gelfTooLarge"
>;

interface Pending {
  readonly first: number;
  readonly count: number;
  received: number;
  bytes: number;
  parts: Array<Buffer | undefined>;
  /** Dropped as too large: kept (without data) until it expires, so its later chunks are not counted again. */
  dead: boolean;
}

/** True when the datagram starts with the chunk magic bytes. */
export function isChunk(datagram: Buffer): boolean {
  return datagram.length >= 2 && datagram[0] === 0x1e && datagram[1] === 0x0f;
}

export class GelfChunkAssembler {
  // Insertion order is arrival order of first chunks: the oldest message is always the first entry.
  private readonly pending = new Map<string, Pending>();
  private bytes = 0;

  constructor(
    private readonly limits: ChunkLimits,
    private readonly counters: ChunkCounters,
  ) {}

  /** Messages being reassembled. */
  get size(): number {
    return this.pending.size;
  }

  /** Bytes of chunk data held. */
  get pendingBytes(): number {
    return this.bytes;
  }

  /**
   * Add one chunk datagram (`isChunk` is true). Returns the whole message's bytes when this chunk completed it.
   * `sender` keys reassembly together with the message id, so one sender cannot fill or spoil another's slots.
   */
  add(datagram: Buffer, sender: string, now: number): Buffer | undefined {
    this.sweep(now);
    if (datagram.length < CHUNK_HEADER_BYTES) {
      this.counters.gelfChunkInvalid++;
      return undefined;
    }
    const seq = datagram[10]!;
    const count = datagram[11]!;
    if (count === 0 || count > MAX_CHUNKS || seq >= count) {
      this.counters.gelfChunkInvalid++;
      return undefined;
    }
    // The dgram buffer belongs to this datagram alone: a view keeps nothing else alive.
    const data = datagram.subarray(CHUNK_HEADER_BYTES);
    if (count === 1) {
      if (data.length > this.limits.maxMessageBytes) {
        this.counters.gelfTooLarge++;
        return undefined;
      }
      return data;
    }
    const key = sender + "/" + datagram.toString("hex", 2, 10);
    let p = this.pending.get(key);
    if (p === undefined) {
      if (this.pending.size >= this.limits.maxPendingMessages) this.evictOldest();
      p = { first: now, count, received: 0, bytes: 0, parts: new Array<Buffer | undefined>(count), dead: false };
      this.pending.set(key, p);
    } else if (p.dead) {
      return undefined;
    } else if (p.count !== count) {
      this.counters.gelfChunkInvalid++;
      return undefined;
    }
    if (p.parts[seq] !== undefined) {
      this.counters.gelfChunkDuplicate++;
      return undefined;
    }
    if (p.bytes + data.length > this.limits.maxMessageBytes) {
      this.counters.gelfTooLarge++;
      this.bytes -= p.bytes;
      p.bytes = 0;
      p.parts = [];
      p.dead = true;
      return undefined;
    }
    p.parts[seq] = data;
    p.received++;
    p.bytes += data.length;
    this.bytes += data.length;
    if (p.received === p.count) {
      this.pending.delete(key);
      this.bytes -= p.bytes;
      return Buffer.concat(p.parts as Buffer[], p.bytes);
    }
    while (this.bytes > this.limits.maxPendingBytes && this.pending.size > 0) this.evictOldest();
    return undefined;
  }

  /** Drop messages whose time ran out (counted as expired). Cheap when nothing expired: looks at the oldest only. */
  sweep(now: number): void {
    const deadline = now - this.limits.timeoutMs;
    for (const [key, p] of this.pending) {
      if (p.first > deadline) break;
      this.remove(key, p);
      if (!p.dead) this.counters.gelfChunksExpired++;
    }
  }

  /** Forget everything (at stop); incomplete messages count as expired. */
  clear(): void {
    for (const [key, p] of this.pending) {
      this.remove(key, p);
      if (!p.dead) this.counters.gelfChunksExpired++;
    }
  }

  private evictOldest(): void {
    const first = this.pending.entries().next();
    if (first.done === true) return;
    const [key, p] = first.value;
    this.remove(key, p);
    if (!p.dead) this.counters.gelfChunksEvicted++;
  }

  private remove(key: string, p: Pending): void {
    this.pending.delete(key);
    this.bytes -= p.bytes;
  }
}
