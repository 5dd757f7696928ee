// A GELF UDP receiver with its own decoder written from the spec (protocols.md §1.4), sharing no code with the sink:
// it checks every datagram (magic, header, seq < count ≤ 128, one id per message, no empty chunk, size limit),
// reassembles by id, detects GZIP/ZLIB/plain by magic bytes and parses the JSON.
import * as dgram from "node:dgram";
import type { AddressInfo } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";

export interface DecodedGelf {
  /** Parsed GELF object. */
  readonly message: Record<string, unknown>;
  /** Decompressed JSON text. */
  readonly text: string;
  /** "chunked" with this many chunks, or 1 for an unchunked datagram. */
  readonly chunks: number;
  /** Hex message id (chunked only). */
  readonly id: string | undefined;
  readonly compression: "gzip" | "zlib" | "none";
  /** Sizes of the datagrams that carried it. */
  readonly datagramSizes: readonly number[];
}

interface Partial {
  count: number;
  parts: (Buffer | undefined)[];
  received: number;
  sizes: number[];
}

export class GelfUdpReceiver {
  readonly messages: DecodedGelf[] = [];
  /** Protocol violations seen; a correct sender leaves this empty. */
  readonly errors: string[] = [];
  datagrams = 0;
  private readonly pending = new Map<string, Partial>();
  private readonly completedIds = new Set<string>();

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
    /** Largest datagram allowed (the sender's configured chunk size), if it should be checked. */
    public maxDatagram: number | undefined,
  ) {
    socket.on("message", (buf) => this.onDatagram(buf));
  }

  /** On 127.0.0.1 and a free port, unless `address`/`port` say otherwise (any 127.x.y.z is loopback on Linux). */
  static async start(options: { maxDatagram?: number; address?: string; port?: number } = {}): Promise<GelfUdpReceiver> {
    const socket = dgram.createSocket({ type: "udp4", recvBufferSize: 4 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(options.port ?? 0, options.address ?? "127.0.0.1", () => resolve());
    });
    return new GelfUdpReceiver(socket, (socket.address() as AddressInfo).port, options.maxDatagram);
  }

  /** Messages still missing chunks. */
  get incomplete(): number {
    return this.pending.size;
  }

  /** Every completed message id (for uniqueness checks). */
  get ids(): ReadonlySet<string> {
    return this.completedIds;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private onDatagram(buf: Buffer): void {
    this.datagrams++;
    if (this.maxDatagram !== undefined && buf.length > this.maxDatagram) {
      this.errors.push(`datagram of ${buf.length} bytes exceeds ${this.maxDatagram}`);
    }
    if (buf.length >= 2 && buf[0] === 0x1e && buf[1] === 0x0f) {
      this.onChunk(buf);
      return;
    }
    this.decode(buf, 1, undefined, [buf.length]);
  }

  private onChunk(buf: Buffer): void {
    if (buf.length < 12) {
      this.errors.push(`chunk shorter than its 12-byte header (${buf.length})`);
      return;
    }
    const id = buf.toString("hex", 2, 10);
    const seq = buf[10]!;
    const count = buf[11]!;
    const data = buf.subarray(12);
    if (count < 1 || count > 128) this.errors.push(`chunk count ${count} outside 1..128 (id ${id})`);
    if (seq >= count) this.errors.push(`sequence number ${seq} not below count ${count} (id ${id})`);
    if (data.length === 0) this.errors.push(`empty chunk ${seq}/${count} (id ${id})`);
    if (this.completedIds.has(id)) this.errors.push(`message id ${id} reused after its message completed`);
    let p = this.pending.get(id);
    if (p === undefined) {
      p = { count, parts: new Array<Buffer | undefined>(count).fill(undefined), received: 0, sizes: [] };
      this.pending.set(id, p);
    } else if (p.count !== count) {
      this.errors.push(`chunk count changed from ${p.count} to ${count} within message ${id}`);
      return;
    }
    if (seq >= count) return;
    if (p.parts[seq] !== undefined) {
      this.errors.push(`duplicate chunk ${seq} of message ${id}`);
      return;
    }
    p.parts[seq] = Buffer.from(data);
    p.received++;
    p.sizes.push(buf.length);
    if (p.received === p.count) {
      this.pending.delete(id);
      this.completedIds.add(id);
      this.decode(Buffer.concat(p.parts as Buffer[]), count, id, p.sizes);
    }
  }

  private decode(payload: Buffer, chunks: number, id: string | undefined, sizes: number[]): void {
    let text: string;
    let compression: DecodedGelf["compression"];
    try {
      const b0 = payload[0];
      const b1 = payload[1];
      if (b0 === 0x1f && b1 === 0x8b) {
        compression = "gzip";
        text = gunzipSync(payload).toString("utf8");
      } else if (b0 === 0x78 && b1 !== undefined && (0x78 * 256 + b1) % 31 === 0) {
        compression = "zlib";
        text = inflateSync(payload).toString("utf8");
      } else {
        compression = "none";
        text = payload.toString("utf8");
      }
    } catch (error) {
      this.errors.push(`cannot decompress message ${id ?? "(unchunked)"}: ${(error as Error).message}`);
      return;
    }
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.errors.push(`invalid JSON in message ${id ?? "(unchunked)"}: ${text.slice(0, 80)}`);
      return;
    }
    this.messages.push({ message, text, chunks, id, compression, datagramSizes: sizes });
  }
}
