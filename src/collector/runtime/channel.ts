// Child side of the channel: reads the host's frames from fd 3 and sends records in credit-limited frames.
import { Socket } from "node:net";
import {
  type FrameType as FT,
  FrameDecoder,
  FrameType,
  type RecordsHeader,
  encodeJson,
} from "../../channel/protocol.js";
import type { RecordWriter } from "../parse/fast-json-record.js";

export interface HostMessages {
  init(spec: unknown): void;
  stop(): void;
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
/** The frame buffer: a full frame plus one typical record of slack. */
const FRAME_CAPACITY = HEAD_ROOM + FRAME_BYTES + 64 * 1024;

/**
 * Buffers serialized records into RECORDS frames and tracks credit. `push()` returns false once credit is spent:
 * the collector must stop reading its input until `onCredit` fires.
 */
export class ChildChannel implements RecordWriter {
  private readonly socket: Socket;
  /** The frame being filled: records from HEAD_ROOM to `pos`, newline-separated. */
  private buf = Buffer.allocUnsafe(FRAME_CAPACITY);
  private pos = HEAD_ROOM;
  private count = 0;
  private seq = 0;
  private creditRecords = 0;
  private creditBytes = 0;
  private flushQueued = false;
  private gone = false;
  /** Called when credit arrives after it ran out. */
  onCredit: () => void = () => {};

  constructor(handlers: HostMessages, fd = 3) {
    this.socket = new Socket({ fd, readable: true, writable: true });
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
          break;
        }
        case FrameType.STOP:
          handlers.stop();
          break;
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

  get hasCredit(): boolean {
    return this.creditRecords > 0 && this.creditBytes > 0;
  }

  /** Start numbering at `seq` with the host's initial credit window. */
  begin(seq: number, credit: { records: number; bytes: number }): void {
    this.seq = seq;
    this.creditRecords = credit.records;
    this.creditBytes = credit.bytes;
  }

  /** Queue one serialized record (JSON text without newlines). Returns false when credit is spent (stop reading). */
  push(json: string): boolean {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const buf = this.reserve(json.length * 3);
    this.commit(this.recordStart + buf.write(json, this.recordStart));
    return this.hasCredit;
  }

  /**
   * Room for one record of at most `maxBytes` UTF-8 bytes, written in place at `recordStart` of the returned
   * buffer and then committed with `commit(end)` (the byte-level fast path writes records this way).
   */
  reserve(maxBytes: number): Buffer {
    const worst = maxBytes + 1; // and the separator
    if (this.pos + worst > this.buf.length) {
      this.flush();
      if (HEAD_ROOM + worst > this.buf.length) this.buf = Buffer.allocUnsafe(HEAD_ROOM + worst);
    }
    return this.buf;
  }

  /** Where the next record starts in the buffer `reserve` returned. */
  get recordStart(): number {
    return this.count > 0 ? this.pos + 1 : this.pos;
  }

  /** The record written at `recordStart` ends at `end`. Use `hasCredit` to learn whether to keep reading. */
  commit(end: number): void {
    const start = this.recordStart;
    if (this.count > 0) this.buf[this.pos] = 10;
    const bytes = end - start;
    this.pos = end;
    this.count++;
    this.creditRecords--;
    this.creditBytes -= bytes;
    if (this.count >= FRAME_RECORDS || this.pos - HEAD_ROOM >= FRAME_BYTES) this.flush();
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
    const start = HEAD_ROOM - 13 - hdr.length;
    const buf = this.buf;
    buf.writeUInt32BE(this.pos - start - 5, start);
    buf[start + 4] = FrameType.RECORDS;
    buf.writeUInt32BE(this.count, start + 5);
    buf.writeUInt32BE(hdr.length, start + 9);
    buf.write(hdr, start + 13, "latin1");
    const frame = buf.subarray(start, this.pos);
    this.seq += this.count;
    this.count = 0;
    // The socket holds on to the frame until the OS took it: the next records go into a fresh buffer.
    this.buf = Buffer.allocUnsafe(FRAME_CAPACITY);
    this.pos = HEAD_ROOM;
    this.write(frame);
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
    this.socket.destroy();
  }
}
