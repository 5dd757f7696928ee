// A sink's queue on disk (`queue.disk`): every record routed to the sink is appended to checksummed segment files,
// acknowledged to its source once written (and synced), and read back in order into the lane as it has room.
//
//   dir/<sink>/lock              pid (and start time) of the process using it (one process per directory)
//   dir/<sink>/000000000001.seg  "CLADQ001", then frames: u32 LE body length, u32 LE crc32(body),
//                                body = u16 LE source-name length, source name, record JSON (UTF-8)
//   dir/<sink>/position          the first record not yet settled: "<segment id> <byte offset>"
//
// A segment is deleted once every record in it was settled (delivered, dead-lettered or dropped); `position` is
// rewritten about once a second, so after a crash at most that second's deliveries are sent again. A frame whose
// checksum or length is wrong (a torn write, a damaged disk) is skipped up to the next frame that checks out, and
// counted as dropped (`diskCorrupt`): the reader never stops or loops on bad bytes.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { open, rename, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { DiskQueueError } from "../errors.js";
import { lockHolder, takeLock } from "../util/lock.js";
import { AckTracker } from "./ack-tracker.js";
import { Entry, type AckTarget } from "./entry.js";
import { microtask } from "../util/real-time.js";

export interface ResolvedDiskQueue {
  /** The directory of all sinks' disk queues; each sink keeps its own in `dir/<sink name>`. */
  dir: string;
  maxBytes: number;
  segmentBytes: number;
  fsync: boolean;
}

export interface DiskQueueHooks {
  /** These entries are on disk (and synced when `fsync`): their sources may commit them. */
  persisted(entries: readonly Entry[]): void;
  /** A write failed: these entries are not on disk, and the lane takes them back into memory. */
  notPersisted(entries: readonly Entry[], error: DiskQueueError): void;
  /**
   * Records that could not be read back (checksum, length, torn write): `recovered` when an earlier run wrote them
   * (then each damaged stretch counts as one record; they were not counted as received in this run).
   */
  corrupt(records: number, detail: string, recovered: boolean): void;
  /** Records became readable (a write landed). */
  readable(): void;
  /** The pause after a write error is over: producers may go on. */
  roomAgain(): void;
  /** A background failure worth a `sink:error` (the queue goes on, or pauses, as the message says). */
  error(error: DiskQueueError): void;
}

export const SEGMENT_MAGIC = Buffer.from("CLADQ001", "latin1");
const HEADER = SEGMENT_MAGIC.length;
/** u32 body length + u32 crc. */
const FRAME_HEAD = 8;
/** Body bytes before the source name. */
const NAME_LEN = 2;
/** Bytes a segment read asks for at least. */
const READ_CHUNK = 1024 * 1024;
/** Bytes appended and not yet on disk before the queue says it has no room (the lane blocks meanwhile). */
const BACKLOG_LIMIT = 8 * 1024 * 1024;
/** The largest body a frame may claim: anything longer is damage, not a record. */
const MAX_BODY = 256 * 1024 * 1024;
/** Source names are at most 128 characters of a restricted ASCII set (checkName). */
const MAX_NAME = 128;

/** The body length a frame at `p` claims, or -1 when no frame can claim it. */
function frameLength(buf: Buffer, p: number): number {
  const len = buf.readUInt32LE(p);
  return len < NAME_LEN || len > MAX_BODY ? -1 : len;
}

/** Whether the whole frame at `p` (body `len` bytes, all in `buf`) is one the writer wrote: name length and CRC. */
function frameChecks(buf: Buffer, p: number, len: number): boolean {
  const body = p + FRAME_HEAD;
  const nameLen = buf.readUInt16LE(body);
  return nameLen <= MAX_NAME && nameLen <= len - NAME_LEN && crc32(buf.subarray(body, body + len)) === buf.readUInt32LE(p + 4);
}
const POSITION_EVERY_MS = 1000;
/** After a write error, appending is tried again after this long (the lane blocks meanwhile). */
const WRITE_RETRY_MS = 5000;

interface Segment {
  readonly id: number;
  readonly path: string;
  /** Bytes on disk that hold whole frames (a write in progress is not counted until it landed). */
  size: number;
  /** Written by this process (records in it were counted as `received` when they were appended). */
  readonly ours: boolean;
  /** Sequence number after this segment's last record, once it was read to its end. */
  endSeq: number | undefined;
  /** Records written to it by this process, and records read back from it. */
  written: number;
  read: number;
  /** The sequence number its first record read back got (set when reading it begins), and how many of them settled. */
  startSeq: number | undefined;
  settled: number;
  /** What was damaged in a segment of ours (counted exactly once it was read to its end). */
  damage: string | undefined;
}

/** Where the records of one read start: positions for `position` as the settle watermark moves. */
interface ReadMark {
  readonly firstSeq: number;
  readonly segment: number;
  readonly offsets: number[];
}

const segmentName = (id: number): string => `${String(id).padStart(12, "0")}.seg`;
const SEGMENT_FILE = /^(\d{12})\.seg$/;

/**
 * What a record of `bytes` may take on disk: its frame, reckoned with the longest source name there may be (names are
 * at most 128 ASCII characters), and a segment header should it start a segment.
 */
function segmentBytesFor(bytes: number): number {
  return FRAME_HEAD + NAME_LEN + 128 + bytes + HEADER;
}

export class DiskQueue {
  readonly path: string;
  private readonly segments: Segment[] = [];
  /** The segment being read: an index into `segments`, and the byte offset of its next frame. */
  private readIdx = 0;
  private readOffset = HEADER;
  private nextId = 1;
  private writeFh: FileHandle | undefined;
  private writeSeg: Segment | undefined;
  private readFh: { id: number; fh: FileHandle } | undefined;
  /** Appended, not yet written. */
  private queue: Entry[] = [];
  private backlogBytes = 0;
  private writing: Promise<void> | undefined;
  private reading: Promise<void> = Promise.resolve();
  /** Deletions of settled segments, one after the other (close() waits for them). */
  private releasing: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private failedUntil = 0;
  /** Bytes of every segment file (settled records included, until their segment is deleted). */
  private diskBytes = 0;
  /** Records appended by this process and not yet read back. */
  private unreadOurs = 0;
  /** Of those, read back by the read under way and not handed over yet (still `records`, so `pending` holds them). */
  private readingOurs = 0;
  private nextSeq = 0;
  private readonly acks = new AckTracker("disk", 0);
  private readonly marks: ReadMark[] = [];
  private readonly targets = new Map<string, AckTarget>();
  private readonly names = new Map<string, Buffer>();
  private positionDirty = false;
  private positionTimer: NodeJS.Timeout | undefined;
  private positionWrite: Promise<void> = Promise.resolve();
  private closed = false;
  /** Counters for metrics(). */
  recovered = 0;
  written = 0;
  writeErrors = 0;
  corruptRegions = 0;

  constructor(
    sinkName: string,
    private readonly options: ResolvedDiskQueue,
    private readonly hooks: DiskQueueHooks,
  ) {
    this.path = join(options.dir, sinkName);
    this.acks.onAdvance((w) => this.advanced(w));
  }

  /** Take the directory (its lock) and find what an earlier run left. Throws ERR_DISK_QUEUE when it cannot. */
  open(): void {
    try {
      mkdirSync(this.path, { recursive: true, mode: 0o700 });
      this.lock();
      const ids: number[] = [];
      for (const f of readdirSync(this.path)) {
        const m = SEGMENT_FILE.exec(f);
        if (m !== null) ids.push(Number(m[1]));
      }
      ids.sort((a, b) => a - b);
      for (const id of ids) {
        const path = join(this.path, segmentName(id));
        const size = statSync(path).size;
        this.segments.push({ id, path, size, ours: false, endSeq: undefined, written: 0, read: 0, startSeq: undefined, settled: 0, damage: undefined });
        this.diskBytes += size;
      }
      this.nextId = ids.length > 0 ? ids[ids.length - 1]! + 1 : 1;
      this.readPosition();
    } catch (error) {
      if (error instanceof DiskQueueError) throw error;
      throw new DiskQueueError(`cannot use the disk queue directory ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  private lock(): void {
    const path = join(this.path, "lock");
    const holder = takeLock(path);
    if (holder === undefined) return;
    const who =
      holder.pid === process.pid
        ? " (this one: another sink or aggregator)"
        : holder.started
          ? ""
          : `; if that process is not a shipper (its pid was reused), delete ${path}`;
    throw new DiskQueueError(`the disk queue directory ${this.path} is in use by process ${holder.pid}${who}`);
  }

  /** Skip what an earlier run settled: segments before `position`'s, and its first records. */
  private readPosition(): void {
    const text = readOr(join(this.path, "position"));
    const m = text === undefined ? null : /^(\d+) (\d+)\n?$/.exec(text);
    if (m === null) return; // none, or unreadable: read everything (duplicates, never loss)
    const id = Number(m[1]);
    const offset = Number(m[2]);
    // New segments are numbered above it: a position left behind by a run that deleted its last segment must not
    // make the next run's first segments look settled.
    if (id >= this.nextId) this.nextId = id + 1;
    if (this.segments.length > 0 && this.segments[0]!.id < id && !this.segments.some((s) => s.id === id)) {
      // It names a segment that is not there while older ones are: a damaged position file (or settled segments whose
      // deletion failed, after the named one's). Deleting them all on its word could lose every record queued:
      // read them again instead (duplicates, never loss), and say so.
      this.hooks.error(
        new DiskQueueError(
          `the disk queue position file ${join(this.path, "position")} names segment ${segmentName(id)}, which is not there: the queue is read again from its first segment (records may be sent twice)`,
        ),
      );
      return;
    }
    while (this.segments.length > 0 && this.segments[0]!.id < id) {
      const s = this.segments.shift()!;
      this.diskBytes -= s.size;
      tryUnlink(s.path);
    }
    const first = this.segments[0];
    if (first === undefined || first.id !== id || offset < HEADER || offset > first.size) return;
    if (offset < first.size) {
      this.readOffset = offset;
      return;
    }
    this.segments.shift(); // read and settled to its end
    this.diskBytes -= first.size;
    tryUnlink(first.path);
  }

  /** Something waits to be written or read back. */
  get active(): boolean {
    return this.queue.length > 0 || this.writing !== undefined || this.hasUnread();
  }

  /** Records appended by this process that are not read back yet (a run's earlier records are known once read). */
  get records(): number {
    return this.unreadOurs + this.readingOurs;
  }

  /** Bytes in segment files now. */
  get bytes(): number {
    return this.diskBytes;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Records wait on disk to be read back. */
  get readable(): boolean {
    return this.hasUnread();
  }

  private hasUnread(): boolean {
    const s = this.segments[this.readIdx];
    if (s === undefined) return false;
    return this.readIdx < this.segments.length - 1 || this.readOffset < s.size;
  }

  /** Whether a record of `bytes` fits in `maxBytes` at all, with nothing else queued (see hasRoom). */
  fits(bytes: number): boolean {
    return segmentBytesFor(bytes) <= this.options.maxBytes;
  }

  /** Room to append a record of `bytes`, within `maxBytes` and the write backlog. */
  hasRoom(bytes: number): boolean {
    if (this.closed || Date.now() < this.failedUntil) return false;
    return this.backlogBytes < BACKLOG_LIMIT && this.diskBytes + this.backlogBytes + segmentBytesFor(bytes) <= this.options.maxBytes;
  }

  /** Queue an entry for the disk; `persisted` (or `notPersisted`) tells when it is there. */
  append(entry: Entry): void {
    this.queue.push(entry);
    this.backlogBytes += FRAME_HEAD + NAME_LEN + this.nameBytes(entry.source?.name).length + entry.bytes;
    this.unreadOurs++;
    if (!this.flushQueued && this.writing === undefined) {
      this.flushQueued = true;
      microtask(this.startFlush);
    }
  }

  private readonly startFlush = (): void => {
    this.flushQueued = false;
    if (this.writing !== undefined || this.queue.length === 0) return;
    this.writing = this.flush().finally(() => {
      this.writing = undefined;
      if (this.queue.length > 0 && !this.closed) this.startFlush();
    });
  };

  private nameBytes(name: string | undefined): Buffer {
    const key = name ?? "";
    let b = this.names.get(key);
    if (b === undefined) {
      b = Buffer.from(key, "utf8");
      if (b.length > 0xffff) b = b.subarray(0, 0xffff);
      this.names.set(key, b);
    }
    return b;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      // Up to what fits the segment being written (one record at least): segments stay near segmentBytes, so the
      // first ones free their disk space while later ones are still being written.
      const cur = this.writeSeg;
      const room = cur === undefined || this.writeFh === undefined || cur.size >= this.options.segmentBytes ? this.options.segmentBytes - HEADER : this.options.segmentBytes - cur.size;
      let total = 0;
      let n = 0;
      while (n < this.queue.length) {
        const e = this.queue[n]!;
        const size = FRAME_HEAD + NAME_LEN + this.nameBytes(e.source?.name).length + e.bytes;
        if (n > 0 && total + size > room) break;
        total += size;
        n++;
      }
      const entries = n === this.queue.length ? this.queue : this.queue.slice(0, n);
      this.queue = n === this.queue.length ? [] : this.queue.slice(n);
      const buf = Buffer.allocUnsafe(total);
      let p = 0;
      for (const e of entries) {
        const name = this.nameBytes(e.source?.name);
        const body = p + FRAME_HEAD;
        buf.writeUInt16LE(name.length, body);
        name.copy(buf, body + NAME_LEN);
        const end = e.copyUtf8(buf, body + NAME_LEN + name.length);
        buf.writeUInt32LE(end - body, p);
        buf.writeUInt32LE(crc32(buf.subarray(body, end)), p + 4);
        p = end;
      }
      let seg: Segment | undefined;
      try {
        seg = await this.segmentFor(total);
        await writeAll(this.writeFh!, buf, seg.size);
        if (this.options.fsync) await this.writeFh!.datasync();
      } catch (error) {
        this.backlogBytes -= total;
        this.unreadOurs -= entries.length;
        this.writeErrors++;
        this.failedUntil = Date.now() + WRITE_RETRY_MS;
        // Whatever part of the write landed is cut off again, so the segment ends on a whole frame.
        if (seg !== undefined) await this.writeFh?.truncate(seg.size).catch(() => undefined);
        const e = new DiskQueueError(`could not write ${entries.length} record(s) to the disk queue ${this.path}: ${(error as Error).message}; they stay in memory, and the queue takes no more for ${WRITE_RETRY_MS} ms`, { cause: error });
        this.hooks.notPersisted(entries, e);
        setTimeout(() => this.hooks.roomAgain(), WRITE_RETRY_MS).unref();
        continue;
      }
      seg.size += total;
      seg.written += entries.length;
      this.diskBytes += total;
      this.backlogBytes -= total;
      this.written += entries.length;
      this.hooks.persisted(entries);
      this.hooks.readable();
    }
  }

  /** The segment to append `bytes` to: the current one, or a new one when it is full. */
  private async segmentFor(bytes: number): Promise<Segment> {
    const cur = this.writeSeg;
    if (cur !== undefined && this.writeFh !== undefined && (cur.size === HEADER || cur.size + bytes <= this.options.segmentBytes)) return cur;
    await this.closeWriteSegment();
    const id = this.nextId++;
    const path = join(this.path, segmentName(id));
    const fh = await open(path, "wx", 0o600);
    try {
      await writeAll(fh, SEGMENT_MAGIC, 0);
      // The new file's name must survive a machine crash as its synced records do.
      if (this.options.fsync) await syncDirectory(this.path);
    } catch (error) {
      await fh.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw error;
    }
    const seg: Segment = { id, path, size: HEADER, ours: true, endSeq: undefined, written: 0, read: 0, startSeq: undefined, settled: 0, damage: undefined };
    this.segments.push(seg);
    this.diskBytes += HEADER;
    this.writeFh = fh;
    this.writeSeg = seg;
    return seg;
  }

  private async closeWriteSegment(): Promise<void> {
    const fh = this.writeFh;
    this.writeFh = undefined;
    this.writeSeg = undefined;
    await fh?.close();
  }

  /**
   * Read back up to `maxRecords` records (`maxBytes` of JSON, at least one record) in order. Their entries settle
   * through the queue: a segment is deleted once all of its records settled. One read at a time.
   */
  read(maxRecords: number, maxBytes: number): Promise<{ entries: Entry[]; recovered: number }> {
    const reading = this.readSome(maxRecords, maxBytes);
    this.reading = reading.then(
      () => undefined,
      () => undefined,
    );
    return reading;
  }

  private async readSome(maxRecords: number, maxBytes: number): Promise<{ entries: Entry[]; recovered: number }> {
    try {
      return await this.readFrames(maxRecords, maxBytes);
    } finally {
      // Handed over now (a read that fails part-way hands over what its earlier chunks parsed), and counted by the
      // queue from here.
      this.readingOurs = 0;
    }
  }

  private async readFrames(maxRecords: number, maxBytes: number): Promise<{ entries: Entry[]; recovered: number }> {
    const entries: Entry[] = [];
    let bytes = 0;
    let recovered = 0;
    /** A frame longer than one chunk: the next read takes all of it. */
    let want = 0;
    let full = false;
    while (!full && entries.length < maxRecords && !this.closed) {
      const seg = this.segments[this.readIdx];
      if (seg === undefined) break;
      seg.startSeq ??= this.nextSeq;
      try {
        if (this.readOffset >= seg.size) {
          if (seg === this.writeSeg) break; // caught up with the writer
          seg.endSeq = this.nextSeq;
          this.segmentRead(seg);
          this.readIdx++;
          this.readOffset = HEADER;
          await this.releaseSettled();
          continue;
        }
        if (this.readOffset === HEADER && !(await this.checkMagic(seg))) continue;
        const left = seg.size - this.readOffset;
        if (left < FRAME_HEAD) {
          // Only a segment an earlier run was writing can end in part of a frame (the writer counts whole frames).
          this.damage(seg, this.readOffset, seg.size, "a torn end");
          this.readOffset = seg.size;
          continue;
        }
        const chunk = Math.max(want, Math.min(READ_CHUNK, Math.max(64 * 1024, maxBytes - bytes + 4096)));
        const buf = await this.readAt(seg, this.readOffset, Math.min(left, chunk));
        want = 0;
        const mark: ReadMark = { firstSeq: this.nextSeq, segment: seg.id, offsets: [] };
        let p = 0;
        let damaged = false;
        while (p + FRAME_HEAD <= buf.length && entries.length < maxRecords) {
          const len = frameLength(buf, p);
          if (len < 0) {
            damaged = true;
            break;
          }
          if (p + FRAME_HEAD + len > buf.length) {
            if (this.readOffset + p + FRAME_HEAD + len > seg.size) damaged = true; // runs past the segment's end
            else if (p === 0) want = FRAME_HEAD + len;
            break; // else: the rest comes with the next read
          }
          if (!frameChecks(buf, p, len)) {
            damaged = true;
            break;
          }
          const body = p + FRAME_HEAD;
          const nameLen = buf.readUInt16LE(body);
          const payload = len - NAME_LEN - nameLen;
          if (entries.length > 0 && bytes + payload > maxBytes) {
            full = true;
            break;
          }
          const name = nameLen === 0 ? undefined : buf.toString("utf8", body + NAME_LEN, body + NAME_LEN + nameLen);
          entries.push(new Entry(buf, payload, this.target(name), this.nextSeq++, undefined, body + NAME_LEN + nameLen));
          mark.offsets.push(this.readOffset + p);
          seg.read++;
          bytes += payload;
          if (seg.ours) {
            this.unreadOurs--;
            this.readingOurs++;
          } else recovered++;
          p += FRAME_HEAD + len;
        }
        if (mark.offsets.length > 0) this.marks.push(mark);
        this.readOffset += p;
        if (damaged) await this.skipDamage(seg);
        if (this.readOffset >= seg.size && seg !== this.writeSeg) {
          // Read to its end: it can go as soon as its records settle (not only at the next read).
          seg.endSeq = this.nextSeq;
          this.segmentRead(seg);
          this.readIdx++;
          this.readOffset = HEADER;
        }
        if (bytes >= maxBytes) full = true;
      } catch (error) {
        // A segment file deleted under the queue (by hand, or a cleaner) is damage: its records are counted lost, and
        // reading goes on with the next one, instead of failing every read from here on.
        if ((error as NodeJS.ErrnoException).code === "ENOENT" && this.segments[this.readIdx] === seg && !existsSync(seg.path)) {
          this.damage(seg, this.readOffset, seg.size, "its file is gone");
          this.readOffset = seg.size;
          continue;
        }
        // Records parsed by earlier chunks of this read are handed over (their read offset is past them, so they
        // would not be read again); the failing read is tried again by the next call.
        if (entries.length === 0) throw error;
        break;
      }
    }
    this.recovered += recovered;
    return { entries, recovered };
  }

  private async checkMagic(seg: Segment): Promise<boolean> {
    if (seg.size < HEADER) {
      this.damage(seg, 0, seg.size, "shorter than its header");
      this.readOffset = seg.size;
      return false;
    }
    const head = await this.readAt(seg, 0, HEADER);
    if (head.equals(SEGMENT_MAGIC)) return true;
    this.damage(seg, 0, seg.size, "not a disk queue segment (wrong header)");
    this.readOffset = seg.size;
    return false;
  }

  /** At `readOffset` lies a frame that does not check out: find the next one that does, and count what lies between. */
  private async skipDamage(seg: Segment): Promise<void> {
    const from = this.readOffset;
    let at = from + 1;
    while (at + FRAME_HEAD <= seg.size) {
      const buf = await this.readAt(seg, at, Math.min(seg.size - at, READ_CHUNK));
      const q = nextFrame(buf, 0, seg.size - at);
      if (q.found >= 0) {
        this.damage(seg, from, at + q.found, "checksum or length mismatch");
        this.readOffset = at + q.found;
        return;
      }
      at += q.resume;
    }
    this.damage(seg, from, seg.size, seg === this.writeSeg ? "checksum or length mismatch" : "a torn or damaged end");
    this.readOffset = seg.size;
  }

  /**
   * Bytes that hold no readable record. In a segment an earlier run wrote, how many records they held is unknown:
   * each damaged stretch counts as one. In one of ours, the records missing are counted exactly at its end.
   */
  private damage(seg: Segment, from: number, to: number, what: string): void {
    this.corruptRegions++;
    const detail = `disk queue segment ${segmentName(seg.id)}: ${to - from} byte(s) at offset ${from} hold no readable record (${what})`;
    if (seg.ours) seg.damage ??= detail;
    else this.hooks.corrupt(1, detail, true);
  }

  /** A segment was read to its end: records of ours that could not be read back are lost, and counted. */
  private segmentRead(seg: Segment): void {
    if (!seg.ours || seg.read >= seg.written) return;
    const lost = seg.written - seg.read;
    this.unreadOurs -= lost;
    this.hooks.corrupt(lost, seg.damage ?? `disk queue segment ${segmentName(seg.id)}: ${lost} record(s) could not be read back`, false);
  }

  private async readAt(seg: Segment, at: number, length: number): Promise<Buffer> {
    if (this.readFh?.id !== seg.id) {
      const old = this.readFh;
      this.readFh = undefined;
      await old?.fh.close().catch(() => undefined);
      this.readFh = { id: seg.id, fh: await open(seg.path, "r") };
    }
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.readFh.fh.read(buf, got, length - got, at + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  /** The ack target of records read back, per source name (batch.sources keeps naming the source). */
  private target(name: string | undefined): AckTarget {
    const key = name ?? "";
    let t = this.targets.get(key);
    if (t === undefined) {
      t = {
        name,
        settle: (seq) => {
          if (this.acks.settle(seq)) this.settledIn(seq);
        },
      };
      this.targets.set(key, t);
    }
    return t;
  }

  /** Every record read back below `watermark` is settled. */
  private advanced(watermark: number): void {
    while (this.marks.length > 0) {
      const m = this.marks[0]!;
      if (m.firstSeq + m.offsets.length > watermark) break;
      this.marks.shift();
    }
    // Closed: the directory may be another queue's by now (a send that outlived stop()'s deadline settles late).
    // What settled after the final position is sent again by the next run.
    if (this.closed) return;
    this.positionDirty = true;
    this.positionTimer ??= setTimeout(this.onPositionTimer, POSITION_EVERY_MS).unref();
    this.retireWriteSegment();
    void this.releaseSettled();
  }

  /**
   * The segment being written was read to its end and all of it settled, and no write is under way: close it, so it
   * can be deleted now. Else a queue that stays caught up would keep one segment growing, and a full disk queue whose
   * only segment is that one would never free its space.
   */
  private retireWriteSegment(): void {
    if (!this.closed) void this.retire();
  }

  private async retire(): Promise<void> {
    const seg = this.writeSeg;
    if (seg === undefined || this.writing !== undefined || this.queue.length > 0) return;
    if (this.segments[this.readIdx] !== seg || this.readOffset < seg.size || seg.settled < seg.read) return;
    seg.endSeq = this.nextSeq;
    this.segmentRead(seg);
    this.readIdx++;
    this.readOffset = HEADER;
    await this.closeWriteSegment().catch(() => undefined);
  }

  private readonly onPositionTimer = (): void => {
    this.positionTimer = undefined;
    this.positionWrite = this.positionWrite.then(() => this.writePosition());
  };

  /**
   * A record read back settled: count it in its segment. A segment read to its end whose records all settled can go
   * whatever comes before it: one record retried without end must not keep every later segment on disk, fill the
   * queue's bound and, under `block`, stop every source.
   */
  private settledIn(seq: number): void {
    // The last segment read from whose first sequence number is at or below seq (those read from are in order).
    let lo = 0;
    let hi = Math.min(this.readIdx, this.segments.length - 1);
    let seg: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.segments[mid]!;
      if (s.startSeq !== undefined && s.startSeq <= seq) {
        seg = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (seg === undefined) return;
    seg.settled++;
    if (seg.settled < seg.read || this.closed) return;
    // The segment being written is retired first (closed, read to its end), and deleted then like any other.
    if (seg === this.writeSeg) this.retireWriteSegment();
    if (seg.endSeq !== undefined) void this.releaseSettled();
  }

  /** Delete segments read to their end whose records all settled. */
  private releaseSettled(): Promise<void> {
    this.releasing = this.releasing.then(() => this.deleteSettled());
    return this.releasing;
  }

  private async deleteSettled(): Promise<void> {
    const w = this.acks.watermark;
    let freed = false;
    // Those before the one being read: in order up to the watermark, and any other whose records all settled.
    for (let i = 0; i < this.readIdx && i < this.segments.length; ) {
      const s = this.segments[i]!;
      if (s.endSeq === undefined || s === this.writeSeg || (s.endSeq > w && s.settled < s.read)) {
        i++;
        continue;
      }
      this.segments.splice(i, 1);
      this.readIdx--;
      this.diskBytes -= s.size;
      freed = true;
      // Where its records were is no longer needed for `position` (they all settled): behind a record retried without
      // end, these offsets would otherwise pile up for every record read after it.
      if (s.endSeq > w) this.dropMarksOf(s.id);
      if (this.readFh?.id === s.id) {
        const r = this.readFh;
        this.readFh = undefined;
        await r.fh.close().catch(() => undefined);
      }
      this.positionDirty = true;
      await unlink(s.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") this.hooks.error(new DiskQueueError(`could not delete the settled disk queue segment ${s.path}: ${error.message}`, { cause: error }));
      });
    }
    // Producers held back by a full queue (`block`) look again: nothing else tells them this room is there.
    if (freed && !this.closed) this.hooks.roomAgain();
  }

  private dropMarksOf(segment: number): void {
    let k = 0;
    for (const m of this.marks) if (m.segment !== segment) this.marks[k++] = m;
    this.marks.length = k;
  }

  /** `position`: the first unsettled record read back, or where reading goes on. */
  private positionText(): string | undefined {
    const w = this.acks.watermark;
    const m = this.marks[0];
    if (m !== undefined && w >= m.firstSeq && w < m.firstSeq + m.offsets.length) return `${m.segment} ${m.offsets[w - m.firstSeq]}\n`;
    const s = this.segments[this.readIdx];
    return s === undefined ? undefined : `${s.id} ${this.readOffset}\n`;
  }

  private async writePosition(): Promise<void> {
    if (!this.positionDirty) return;
    this.positionDirty = false;
    const text = this.positionText();
    const path = join(this.path, "position");
    try {
      if (text === undefined) await unlink(path).catch(() => undefined);
      else {
        await writeFile(`${path}.tmp`, text, { mode: 0o600 });
        await rename(`${path}.tmp`, path);
      }
    } catch (error) {
      this.hooks.error(new DiskQueueError(`could not record the disk queue position in ${path}: ${(error as Error).message}`, { cause: error }));
    }
  }

  /** Write what was appended, end the read under way, save the position, let go of the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Appended in this tick: its flush is still only queued.
    if (this.writing === undefined && this.queue.length > 0) this.startFlush();
    await this.writing;
    await this.reading;
    await this.releasing;
    clearTimeout(this.positionTimer);
    this.positionTimer = undefined;
    // What settled while it closed goes now, while this process still holds the directory (settles after close()
    // change nothing on disk: the next run sends those records again).
    await this.retire();
    await this.deleteSettled();
    this.positionDirty = true;
    await this.positionWrite;
    await this.writePosition();
    await this.writeFh?.close().catch(() => undefined);
    await this.readFh?.fh.close().catch(() => undefined);
    this.writeFh = undefined;
    this.readFh = undefined;
    tryUnlink(join(this.path, "lock"));
  }
}

/**
 * The first frame in `buf` from `p` that checks out (`found`, or -1), looking only at frames that lie whole in `buf`
 * (a record over a read's length is not taken as the place to go on from). `left`: bytes from `buf`'s start to the
 * segment's end. Otherwise `resume`: where to read next, the first candidate cut off by the buffer's end.
 */
function nextFrame(buf: Buffer, p: number, left: number): { found: number; resume: number } {
  for (let q = p; q + FRAME_HEAD <= buf.length; q++) {
    const len = frameLength(buf, q);
    if (len < 0 || q + FRAME_HEAD + len > left) continue;
    if (q + FRAME_HEAD + len > buf.length) {
      if (q > 0) return { found: -1, resume: q }; // read again from its start
      continue;
    }
    if (frameChecks(buf, q, len)) return { found: q, resume: q };
  }
  return { found: -1, resume: Math.max(1, buf.length - FRAME_HEAD + 1) };
}

/** What `inspectDiskQueue()` finds in one segment file. */
export interface DiskQueueSegmentInspection {
  file: string;
  bytes: number;
  /** Records whose frames check out. */
  records: number;
  /** Of those, records at or after `position` (not settled yet). */
  unsettled: number;
  /** Stretches that hold no readable record (a torn end, a damaged disk): the reader skips them. */
  damaged: Array<{ offset: number; bytes: number }>;
}

export interface DiskQueueInspection {
  path: string;
  /** The pid in `lock`, and whether that process is alive (the queue is in use). */
  lock: { pid: number; alive: boolean } | undefined;
  /** Where the next run starts reading: segment id and byte offset. */
  position: { segment: number; offset: number } | undefined;
  segments: DiskQueueSegmentInspection[];
  /** Records not settled yet, over every segment: what the next run sends. */
  unsettled: number;
  bytes: number;
}

/**
 * Read a sink's disk queue directory (`dir/<sink name>`) without changing it or taking its lock: each segment's
 * records, the records the next run will send, and any damaged stretch. One segment is in memory at a time.
 */
export function inspectDiskQueue(path: string): DiskQueueInspection {
  const holder = lockHolder(readOr(join(path, "lock")));
  const pos = /^(\d+) (\d+)\n?$/.exec(readOr(join(path, "position")) ?? "");
  const position = pos === null ? undefined : { segment: Number(pos[1]), offset: Number(pos[2]) };
  const out: DiskQueueInspection = {
    path,
    lock: holder === undefined ? undefined : { pid: holder.pid, alive: holder.alive },
    position,
    segments: [],
    unsettled: 0,
    bytes: 0,
  };
  const files = readdirSync(path).filter((f) => SEGMENT_FILE.test(f)).sort();
  for (const file of files) {
    const id = Number(SEGMENT_FILE.exec(file)![1]);
    const buf = readOr(join(path, file), null);
    if (buf === undefined) continue; // deleted meanwhile
    const seg: DiskQueueSegmentInspection = { file, bytes: buf.length, records: 0, unsettled: 0, damaged: [] };
    out.bytes += buf.length;
    out.segments.push(seg);
    const settledBefore = position === undefined || id > position.segment ? 0 : id < position.segment ? Number.POSITIVE_INFINITY : position.offset;
    if (buf.length < HEADER || !buf.subarray(0, HEADER).equals(SEGMENT_MAGIC)) {
      seg.damaged.push({ offset: 0, bytes: buf.length });
      continue;
    }
    let p = HEADER;
    while (p + FRAME_HEAD <= buf.length) {
      const len = frameLength(buf, p);
      if (len >= 0 && p + FRAME_HEAD + len <= buf.length && frameChecks(buf, p, len)) {
        seg.records++;
        if (p >= settledBefore) seg.unsettled++;
        p += FRAME_HEAD + len;
        continue;
      }
      const next = nextFrame(buf, p + 1, buf.length);
      const to = next.found >= 0 ? next.found : buf.length;
      seg.damaged.push({ offset: p, bytes: to - p });
      p = to;
    }
    if (p < buf.length) seg.damaged.push({ offset: p, bytes: buf.length - p });
    out.unsettled += seg.unsettled;
  }
  return out;
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

function readOr(path: string): string | undefined;
function readOr(path: string, encoding: null): Buffer | undefined;
function readOr(path: string, encoding: "utf8" | null = "utf8"): string | Buffer | undefined {
  try {
    return encoding === null ? readFileSync(path) : readFileSync(path, encoding);
  } catch {
    return undefined;
  }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

