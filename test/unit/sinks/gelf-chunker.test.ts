// Chunk arithmetic of GELF UDP: whole-datagram chunk size, ceil division, no empty trailing chunk, ≤ 128 chunks.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CHUNK_HEADER_BYTES,
  MAX_CHUNKS,
  MessageIdPool,
  chunkPayload,
  datagramCount,
  maxPayloadBytes,
} from "../../../src/sinks/gelf-chunker.js";

describe("gelf chunker", () => {
  it.each([
    [100, 1420, 1],
    [1420, 1420, 1],
    [1421, 1420, 2],
    [1408 * 2, 1420, 2],
    [1408 * 2 + 1, 1420, 3],
    [1408 * 128, 1420, 128],
  ])("%i payload bytes at chunkSize %i → %i datagrams", (len, size, count) => {
    expect(datagramCount(len, size)).toBe(count);
    const d = chunkPayload(randomBytes(len), size, new MessageIdPool());
    expect(d).toHaveLength(count);
    for (const x of d) expect(x.length).toBeLessThanOrEqual(size);
  });

  it("an exact multiple of the data size has no empty trailing chunk", () => {
    const payload = randomBytes((1420 - 12) * 5);
    const d = chunkPayload(payload, 1420, new MessageIdPool());
    expect(d).toHaveLength(5);
    for (const x of d) expect(x.length).toBe(1420);
  });

  it("writes magic, one id, seq and count; data concatenates back to the payload", () => {
    const payload = randomBytes(5000);
    const d = chunkPayload(payload, 1000, new MessageIdPool());
    const id = d[0]!.subarray(2, 10);
    d.forEach((x, i) => {
      expect([x[0], x[1]]).toEqual([0x1e, 0x0f]);
      expect(x.subarray(2, 10).equals(id)).toBe(true);
      expect(x[10]).toBe(i);
      expect(x[11]).toBe(d.length);
    });
    expect(Buffer.concat(d.map((x) => x.subarray(CHUNK_HEADER_BYTES))).equals(payload)).toBe(true);
  });

  it("refuses more than 128 chunks instead of sending a broken message", () => {
    expect(maxPayloadBytes(1420)).toBe(MAX_CHUNKS * 1408);
    expect(() => chunkPayload(randomBytes(maxPayloadBytes(1420) + 1), 1420, new MessageIdPool())).toThrow(RangeError);
  });

  it("ids differ between messages across pool refills", () => {
    const pool = new MessageIdPool();
    const seen = new Set<string>();
    const buf = Buffer.alloc(8);
    for (let i = 0; i < 5000; i++) {
      pool.writeId(buf, 0);
      seen.add(buf.toString("hex"));
    }
    expect(seen.size).toBe(5000);
  });
});
