// Child side of the channel: reads the host's frames from fd 3 and sends records in credit-limited frames.
import { Socket } from "node:net";
import {
  type FrameType as FT,
  FrameDecoder,
  FrameType,
  MAX_RECORD_BYTES,
  type RecordsHeader,
  encodeJson,
} from "../../channel/protocol.js";
import type { RecordWriter } from "../parse/fast-json-record.js";

export interface HostMessages {
  init(spec: unknown): void;
  /** `withinMs`: how long the host waits for DRAINED, when it says. */
  stop(withinMs: number | undefined): void;
  exit(): void;
  /** Every record with a seq below `seq` is settled by every sink. */
  ack(seq: number): void;
  /** The host is gone (pipe closed): exit without delay. */
  hostGone(): void;
}

/** Records per frame before it is sent without waiting for the end of the tick. */
const FRAME_RECORDS = 1024;
/** Bytes per frame before it is sent without waiting for the end of the tick. */
const FRAME_BYTES = 256 * 1024;
/**
 * Room reserved in front of the records for the frame header (5 bytes), the RECORDS counts (8) and the header
 * JSON (`{"seq":N}`, at most 26 bytes): the header is written right-aligned into it at flush, so a frame is one
 * contiguous buffer and the records are encoded exactly once, straight into it.
 */
const HEAD_ROOM = 48;
/**
 * Frames are carved one after another out of 1 MiB slabs. A slab is reused once the OS has taken all of its frames
 * (their writes completed); until then the socket holds them. Before, every frame was a fresh 320 KiB buffer,
 * mostly empty (a frame is flushed at the end of each tick, at about 110 KiB in W1), that outlived a few scavenges
 * in the socket's queue and then waited for a full GC: V8 starts one only after tens of MB of such external memory.
 * A W1 collector held 25 to 77 MB of ArrayBuffers; 2,106 of its 3,325 frames allocated one.
 */
const SLAB_BYTES = 1024 * 1024;
/** A slab with less room than this left starts no new frame. */
const MIN_FRAME_ROOM = 64 * 1024;
/**
 * Slabs kept for reuse beyond the current one. A collector ahead of its host holds about MAX_BACKLOG_BYTES and a
 * frame in its socket (more only from what it hands over whatever its credit, such as a command's last output at a
 * stop), so the pool must cover that or the excess turns into garbage again. Once no frame has been sent for
 * SPARE_TRIM_MS the pool is emptied, so an idle collector holds one slab.
 */
const MAX_SPARE_SLABS = 16;
const SPARE_TRIM_MS = 2000;
/**
 * Frame bytes the socket may hold unwritten (the host is not reading: busy, or still starting) before the collector
 * stops reading its input, as it does when out of credit; it goes on once the socket is back under half of it. Credit
 * alone let a whole window (W1: about 3 MB) pile up in the socket, in slabs that were then kept as spares for the
 * rest of the run: a W1 collector held 7 slabs, allocated while its host started. The host still finds about this
 * much waiting whenever it reads again.
 */
export const MAX_BACKLOG_BYTES = 1024 * 1024;

interface Slab {
  readonly buf: Buffer;
  /** Frames of this slab the socket has not finished writing. */
  pending: number;
}

/**
 * Buffers serialized records into RECORDS frames and tracks credit. `push()` returns false once credit is spent:
 * the collector must stop reading its input until `onCredit` fires. A record over MAX_RECORD_BYTES is dropped here
 * (by `push` or `commit`), counted as `oversizedRecords` and announced once in a LOG: whatever path built it, no
 * frame the host would refuse leaves the collector.
 */
export class ChildChannel implements RecordWriter {
  private readonly socket: Socket;
  /** The slab holding the frame being filled. */
  private slab: Slab = { buf: Buffer.allocUnsafe(SLAB_BYTES), pending: 0 };
  private readonly spare: Slab[] = [];
  private trimTimer: NodeJS.Timeout | undefined;
  /** Frames sent so far (the trim timer's sign of activity). */
  private frames = 0;
  /** The frame being filled: its header room from `base`, then its records from `base + HEAD_ROOM` to `pos`. */
  private base = 0;
  private pos = HEAD_ROOM;
  private count = 0;
  private seq = 0;
  private creditRecords = 0;
  private creditBytes = 0;
  private flushQueued = false;
  private gone = false;
  /** The socket holds more than MAX_BACKLOG_BYTES unwritten: no credit until it is under half of that. */
  private backlogged = false;
  /**
   * Whether a backlog in the socket holds the collector back (see MAX_BACKLOG_BYTES). A network collector turns it
   * off: UDP cannot wait, and its share of the credit window (the UDP reserve) is what it may use while the host is
   * busy; the window bounds what the host holds either way.
   */
  limitBacklog = true;
  private oversized = 0;
  /** The host's initial credit window (what `begin` granted). */
  private windowRecords = 0;
  private windowBytes = 0;
  /** Called when credit arrives after it ran out, and when a backlog that held it back has cleared. */
  onCredit: () => void = () => {};
  /**
   * Called after every CREDIT frame, whether or not credit had run out (a collector keeping a reserve needs it), and
   * when a backlog has cleared.
   */
  onCreditFrame: () => void = () => {};

  /** `channel` is the fd of the host's pipe (3 in a collector), or an open socket (tests). */
  constructor(handlers: HostMessages, channel: number | Socket = 3) {
    this.socket = typeof channel === "number" ? new Socket({ fd: channel, readable: true, writable: true }) : channel;
    const decoder = new FrameDecoder((type: FT, payload: Buffer) => {
      const json = (): unknown => JSON.parse(payload.toString("utf8"));
      switch (type) {
        case FrameType.INIT:
          handlers.init(json());
          break;
        case FrameType.CREDIT: {
          const c = json() as { records: number; bytes: number };
          const wasOut = !this.hasCredit;
          this.creditRecords += c.records;
          this.creditBytes += c.bytes;
          if (wasOut && this.hasCredit) this.onCredit();
          this.onCreditFrame();
          break;
        }
        case FrameType.STOP: {
          const w = payload.length > 0 ? (json() as { withinMs?: unknown }).withinMs : undefined;
          handlers.stop(typeof w === "number" && Number.isFinite(w) && w >= 0 ? w : undefined);
          break;
        }
        case FrameType.EXIT:
          handlers.exit();
          break;
        case FrameType.ACK:
          handlers.ack((json() as { seq: number }).seq);
          break;
        default:
          break;
      }
    });
    this.socket.on("data", (chunk: Buffer) => decoder.push(chunk));
    const onGone = (): void => {
      if (this.gone) return;
      this.gone = true;
      handlers.hostGone();
    };
    this.socket.on("end", onGone);
    this.socket.on("close", onGone);
    this.socket.on("error", onGone);
  }

  /** Seq the next pushed record gets. */
  get nextSeq(): number {
    return this.seq + this.count;
  }

  /** Whether the collector may go on reading: credit is left and the socket is not backlogged (MAX_BACKLOG_BYTES). */
  get hasCredit(): boolean {
    return this.creditRecords > 0 && this.creditBytes > 0 && !this.backlogged;
  }

  /**
   * Whether more than `records` and `bytes` of credit are left (and the socket is not backlogged): what a collector
   * that keeps part of its credit in reserve asks instead of `hasCredit`.
   */
  hasCreditOver(records: number, bytes: number): boolean {
    return this.creditRecords > records && this.creditBytes > bytes && !this.backlogged;
  }

  /** The host's credit window, as granted at the start. */
  get creditWindow(): { readonly records: number; readonly bytes: number } {
    return { records: this.windowRecords, bytes: this.windowBytes };
  }

  /** Start numbering at `seq` with the host's initial credit window. */
  begin(seq: number, credit: { records: number; bytes: number }): void {
    this.seq = seq;
    this.creditRecords = this.windowRecords = credit.records;
    this.creditBytes = this.windowBytes = credit.bytes;
  }

  /**
   * Queue one serialized record (JSON text without newlines), or drop it when it is over MAX_RECORD_BYTES (counted;
   * `nextSeq` then stays put). Returns false when credit is spent (stop reading).
   */
  push(json: string): boolean {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; measure only when that bound is over the cap.
    const max = json.length <= MAX_RECORD_BYTES / 3 ? json.length * 3 : Buffer.byteLength(json);
    if (max > MAX_RECORD_BYTES) {
      this.dropOversized(max);
      return this.hasCredit;
    }
    const buf = this.reserve(max);
    this.commit(this.recordStart + buf.write(json, this.recordStart));
    return this.hasCredit;
  }

  /**
   * Count a record that is over MAX_RECORD_BYTES and is not sent: the channel's own drops, and those a caller finds
   * before it has the record's text (a record too long for a JavaScript string). `bytes` is its size, or a lower
   * bound of it. Warns once per collector process; the counter carries the rest.
   */
  dropOversized(bytes: number): void {
    if (this.oversized++ === 0) {
      this.send(FrameType.LOG, {
        level: "warn",
        message: `dropped a record of ${bytes} bytes or more: over the ${MAX_RECORD_BYTES}-byte record limit (counted as oversizedRecords)`,
      });
    }
  }

  /** The channel's counters, sent with the collector's own in STATS. */
  counters(): { oversizedRecords: number } {
    return { oversizedRecords: this.oversized };
  }

  /**
   * Room for one record of at most `maxBytes` UTF-8 bytes, written in place at `recordStart` of the returned
   * buffer and then committed with `commit(end)` (the byte-level fast path writes records this way). A record
   * committed over MAX_RECORD_BYTES is dropped, so callers should not reserve much more than that.
   */
  reserve(maxBytes: number): Buffer {
    const worst = maxBytes + 1; // and the separator
    if (this.pos + worst > this.slab.buf.length) {
      this.flush();
      if (this.pos + worst > this.slab.buf.length) this.nextSlab(HEAD_ROOM + worst);
    }
    return this.slab.buf;
  }

  /** Where the next record starts in the buffer `reserve` returned. */
  get recordStart(): number {
    return this.count > 0 ? this.pos + 1 : this.pos;
  }

  /**
   * The record written at `recordStart` ends at `end`; one over MAX_RECORD_BYTES is dropped instead (counted).
   * Use `hasCredit` to learn whether to keep reading.
   */
  commit(end: number): void {
    const start = this.recordStart;
    const bytes = end - start;
    if (bytes > MAX_RECORD_BYTES) {
      // Nothing of it is committed: the next record is written over it. A slab made for it alone is let go.
      this.dropOversized(bytes);
      if (this.count === 0 && this.slab.buf.length !== SLAB_BYTES) this.nextSlab(SLAB_BYTES);
      return;
    }
    if (this.count > 0) this.slab.buf[this.pos] = 10;
    this.pos = end;
    this.count++;
    this.creditRecords--;
    this.creditBytes -= bytes;
    if (this.count >= FRAME_RECORDS || this.pos - this.base - HEAD_ROOM >= FRAME_BYTES) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushSoon);
    }
  }

  private readonly flushSoon = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  flush(): void {
    if (this.count === 0) return;
    const header: RecordsHeader = { seq: this.seq };
    const hdr = JSON.stringify(header);
    const start = this.base + HEAD_ROOM - 13 - hdr.length;
    const slab = this.slab;
    const buf = slab.buf;
    buf.writeUInt32BE(this.pos - start - 5, start);
    buf[start + 4] = FrameType.RECORDS;
    buf.writeUInt32BE(this.count, start + 5);
    buf.writeUInt32BE(hdr.length, start + 9);
    buf.write(hdr, start + 13, "latin1");
    const frame = buf.subarray(start, this.pos);
    this.seq += this.count;
    this.count = 0;
    // The socket holds on to the frame until the OS took it: the next frame follows it in the slab.
    this.base = this.pos;
    this.pos = this.base + HEAD_ROOM;
    this.frames++;
    if (!this.gone) {
      slab.pending++;
      this.socket.write(frame, (err) => this.written(slab, err));
      if (this.limitBacklog && this.socket.writableLength > MAX_BACKLOG_BYTES) this.backlogged = true;
    }
    // A slab made for one large record is not kept: the next frame starts in a standard one.
    if (buf.length !== SLAB_BYTES || buf.length - this.base < MIN_FRAME_ROOM) this.nextSlab(SLAB_BYTES);
  }

  /** A frame's write completed (or failed). */
  private written(slab: Slab, err: Error | null | undefined): void {
    slab.pending--;
    // After an error the handle may have been torn down mid-write: such a slab is left to the GC.
    if (err != null) slab.pending = Number.NaN;
    else if (slab.pending === 0 && slab !== this.slab) this.recycle(slab);
    if (this.backlogged && this.socket.writableLength <= MAX_BACKLOG_BYTES / 2) {
      this.backlogged = false;
      if (this.hasCredit) this.onCredit();
      this.onCreditFrame();
    }
  }

  private recycle(slab: Slab): void {
    if (slab.buf.length !== SLAB_BYTES || this.spare.length >= MAX_SPARE_SLABS) return;
    this.spare.push(slab);
    if (this.trimTimer === undefined) this.scheduleTrim();
  }

  private scheduleTrim(): void {
    const seen = this.frames;
    this.trimTimer = setTimeout(() => {
      this.trimTimer = undefined;
      if (this.frames === seen) this.spare.length = 0;
      else if (this.spare.length > 0) this.scheduleTrim();
    }, SPARE_TRIM_MS);
    this.trimTimer.unref();
  }

  /**
   * Start the next frame (none may be open) in a slab with room for `bytes`: a standard one (reused, spare or new),
   * or for a record that does not fit one, a slab of its own size.
   */
  private nextSlab(bytes: number): void {
    const old = this.slab;
    const standard = bytes <= SLAB_BYTES;
    if (old.pending === 0) {
      // Nothing of it is in flight: start over in it.
      if (standard && old.buf.length === SLAB_BYTES) {
        this.base = 0;
        this.pos = HEAD_ROOM;
        return;
      }
      this.recycle(old);
    }
    this.slab = (standard ? this.spare.pop() : undefined) ?? { buf: Buffer.allocUnsafe(Math.max(SLAB_BYTES, bytes)), pending: 0 };
    this.base = 0;
    this.pos = HEAD_ROOM;
  }

  send(type: FT, value: unknown): void {
    this.write(encodeJson(type, value));
  }

  private write(buf: Buffer): void {
    if (this.gone) return;
    this.socket.write(buf);
  }

  /** Resolves when everything written has been handed to the OS. */
  drain(): Promise<void> {
    this.flush();
    if (this.gone || this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => this.socket.once("drain", () => resolve()));
  }

  close(): void {
    clearTimeout(this.trimTimer);
    this.socket.destroy();
  }
}
