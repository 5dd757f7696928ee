// GELF UDP framing: compress the whole JSON once, then slice it into chunks with the 12-byte header (protocols.md §1.4).
//
//   datagram = 0x1e 0x0f | message id (8 random bytes) | seq no | seq count | data (≤ chunkSize − 12 bytes)
//
// `chunkSize` is the whole datagram, header included. A payload that fits one datagram is sent without a header.
// Count = ceil(len / (chunkSize − 12)), never an empty trailing chunk; at most 128 chunks.
import { randomFillSync } from "node:crypto";
import { deflate, deflateSync, gzip, gzipSync } from "node:zlib";
import { promisify } from "node:util";

export type GelfCompression = "gzip" | "zlib" | "none";

export const CHUNK_MAGIC_0 = 0x1e;
export const CHUNK_MAGIC_1 = 0x0f;
export const CHUNK_HEADER_BYTES = 12;
export const MAX_CHUNKS = 128;
/** WAN default: fits a 1500-byte MTU with room for IPv6 and tunnel headers. */
export const CHUNK_SIZE_WAN = 1420;
/** LAN profile: the size every Graylog component handles (whole datagram, header included). */
export const CHUNK_SIZE_LAN = 8192;
/** Largest UDP payload over IPv4. */
export const MAX_DATAGRAM = 65507;
export const MIN_CHUNK_SIZE = 64;

/** Largest (compressed) payload that `chunkSize` datagrams can carry. */
export function maxPayloadBytes(chunkSize: number): number {
  return MAX_CHUNKS * (chunkSize - CHUNK_HEADER_BYTES);
}

/** Number of datagrams for a payload: 1 when it fits unchunked, else ceil(len / data-per-chunk). */
export function datagramCount(payloadBytes: number, chunkSize: number): number {
  if (payloadBytes <= chunkSize) return 1;
  return Math.ceil(payloadBytes / (chunkSize - CHUNK_HEADER_BYTES));
}

const gzipAsync = promisify(gzip);
const deflateAsync = promisify(deflate);
// Above this size compression moves off the event loop (zlib's thread pool).
const ASYNC_COMPRESS_BYTES = 64 * 1024;

export function compressSync(json: string, mode: GelfCompression): Buffer {
  if (mode === "gzip") return gzipSync(json);
  if (mode === "zlib") return deflateSync(json);
  return Buffer.from(json, "utf8");
}

export function compress(json: string, mode: GelfCompression): Buffer | Promise<Buffer> {
  if (mode === "none" || json.length < ASYNC_COMPRESS_BYTES) return compressSync(json, mode);
  return mode === "gzip" ? gzipAsync(json) : deflateAsync(json);
}

/** Random 8-byte message ids, drawn from a refilled pool so 100k messages do not mean 100k crypto calls. */
export class MessageIdPool {
  private pool = Buffer.allocUnsafe(8 * 512);
  private offset = this.pool.length;

  /** Write the next id into `target` at `at`. */
  writeId(target: Buffer, at: number): void {
    if (this.offset >= this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    this.pool.copy(target, at, this.offset, this.offset + 8);
    this.offset += 8;
  }
}

/**
 * Split a compressed payload into datagrams. Throws RangeError when it needs more than 128 chunks: callers
 * check `maxPayloadBytes` first (and shrink or reject the message), so this never sends a broken message.
 */
export function chunkPayload(payload: Buffer, chunkSize: number, ids: MessageIdPool): Buffer[] {
  if (payload.length <= chunkSize) return [payload];
  const dataPerChunk = chunkSize - CHUNK_HEADER_BYTES;
  const count = Math.ceil(payload.length / dataPerChunk);
  if (count > MAX_CHUNKS) throw new RangeError(`A GELF payload of ${payload.length} bytes needs ${count} chunks (max ${MAX_CHUNKS})`);
  const out = new Array<Buffer>(count);
  // Header of chunk 0; the others copy it and change the sequence number.
  const first = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + Math.min(dataPerChunk, payload.length));
  first[0] = CHUNK_MAGIC_0;
  first[1] = CHUNK_MAGIC_1;
  ids.writeId(first, 2);
  first[10] = 0;
  first[11] = count;
  for (let i = 0; i < count; i++) {
    const start = i * dataPerChunk;
    const end = Math.min(start + dataPerChunk, payload.length);
    const d = i === 0 ? first : Buffer.allocUnsafe(CHUNK_HEADER_BYTES + end - start);
    if (i > 0) {
      first.copy(d, 0, 0, CHUNK_HEADER_BYTES);
      d[10] = i;
    }
    payload.copy(d, CHUNK_HEADER_BYTES, start, end);
    out[i] = d;
  }
  return out;
}
