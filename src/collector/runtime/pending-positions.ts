// A file collector's checkpoint positions waiting for the host's ACK: "file `fileKey` may be committed up to `end`
// once every record below seq + 1 is settled". One is added per read chunk (per record with multiline), in seq order.
//
// While one record stays unsettled (an item the sink retries without end), every position after it waits, and the
// file keeps flowing: at one position per chunk, or per line for a slow writer, that grew without bound. Past
// `cap` positions, a new position replaces its file's newest one: checkpoints then move in coarser steps, never past
// a settled record, and at most `cap` plus one position per file is kept.
import { Ring } from "../../pipeline/ring.js";

interface Position {
  seq: number;
  readonly fileKey: string;
  end: number;
}

/** Positions kept before new ones replace older ones of the same file. */
export const MAX_PENDING_POSITIONS = 4096;

export class PendingPositions {
  private readonly ring = new Ring<Position>(1024);
  /** Each file's newest position still in the ring. */
  private readonly newest = new Map<string, Position>();

  constructor(private readonly cap = MAX_PENDING_POSITIONS) {}

  get length(): number {
    return this.ring.length;
  }

  /** `fileKey` may be committed up to `end` once record `seq` is settled (every seq below seq + 1). */
  add(seq: number, fileKey: string, end: number): void {
    if (this.ring.length >= this.cap) {
      // Safe to fold: the position taken over is its file's newest, so the file's positions stay in order, and a
      // larger seq only makes it wait longer. Positions of other files behind it wait with it; none commits early.
      const p = this.newest.get(fileKey);
      if (p !== undefined) {
        p.seq = seq;
        p.end = end;
        return;
      }
    }
    const p: Position = { seq, fileKey, end };
    this.ring.push(p);
    this.newest.set(fileKey, p);
  }

  /** Every record below `watermark` is settled: the furthest position per file that this makes safe, if any. */
  settle(watermark: number): Map<string, number> | undefined {
    const ring = this.ring;
    let commits: Map<string, number> | undefined;
    while (ring.length > 0 && ring.peek()!.seq < watermark) {
      const p = ring.shift()!;
      (commits ??= new Map()).set(p.fileKey, p.end);
      if (this.newest.get(p.fileKey) === p) this.newest.delete(p.fileKey);
    }
    return commits;
  }
}
