// GELF receiving: chunk reassembly bounds (count, bytes, time; with an explicit clock), compression detection with
// a decompression cap, and the GELF → record mapping rules.
import { randomBytes } from "node:crypto";
import { deflateSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { newCounters } from "../../../src/collector/network/counters.js";
import { GelfChunkAssembler, isChunk } from "../../../src/collector/network/gelf-chunks.js";
import { decompressGelf, gelfCompression, parseGelf } from "../../../src/collector/network/gelf-decode.js";
import { buildRecord } from "../../../src/collector/parse/index.js";

function chunks(payload: Buffer, count: number, id = randomBytes(8)): Buffer[] {
  const per = Math.ceil(payload.length / count);
  return Array.from({ length: count }, (_, i) =>
    Buffer.concat([Buffer.from([0x1e, 0x0f]), id, Buffer.from([i, count]), payload.subarray(i * per, (i + 1) * per)]),
  );
}

const limits = { timeoutMs: 5_000, maxPendingMessages: 3, maxPendingBytes: 1_000_000, maxMessageBytes: 100_000 };

describe("GelfChunkAssembler", () => {
  it("reassembles chunks in any order, in sequence order, once", () => {
    const c = newCounters();
    const a = new GelfChunkAssembler(limits, c);
    const payload = Buffer.from("0123456789abcdefghij");
    const parts = chunks(payload, 4);
    expect(parts.every(isChunk)).toBe(true);
    expect(a.add(parts[3]!, "h", 0)).toBeUndefined();
    expect(a.add(parts[1]!, "h", 0)).toBeUndefined();
    expect(a.add(parts[1]!, "h", 0)).toBeUndefined(); // duplicate: first wins
    expect(a.add(parts[0]!, "h", 0)).toBeUndefined();
    expect(a.add(parts[2]!, "h", 0)?.toString()).toBe(payload.toString());
    expect(c.gelfChunkDuplicate).toBe(1);
    expect(a.size).toBe(0);
    expect(a.pendingBytes).toBe(0);
  });

  it("keys by sender and id: the same id from two senders are two messages", () => {
    const a = new GelfChunkAssembler(limits, newCounters());
    const id = randomBytes(8);
    const p1 = chunks(Buffer.from("AAAA"), 2, id);
    const p2 = chunks(Buffer.from("BBBB"), 2, id);
    a.add(p1[0]!, "10.0.0.1", 0);
    a.add(p2[0]!, "10.0.0.2", 0);
    expect(a.add(p1[1]!, "10.0.0.1", 0)?.toString()).toBe("AAAA");
    expect(a.add(p2[1]!, "10.0.0.2", 0)?.toString()).toBe("BBBB");
  });

  it.each([
    ["shorter than the header", Buffer.from([0x1e, 0x0f, 0, 0, 0])],
    ["count 0", Buffer.concat([Buffer.from([0x1e, 0x0f]), randomBytes(8), Buffer.from([0, 0]), Buffer.from("x")])],
    ["count 129", Buffer.concat([Buffer.from([0x1e, 0x0f]), randomBytes(8), Buffer.from([0, 129]), Buffer.from("x")])],
    ["seq = count", Buffer.concat([Buffer.from([0x1e, 0x0f]), randomBytes(8), Buffer.from([2, 2]), Buffer.from("x")])],
  ])("counts a bad header (%s) as gelfChunkInvalid", (_name, datagram) => {
    const c = newCounters();
    expect(new GelfChunkAssembler(limits, c).add(datagram, "h", 0)).toBeUndefined();
    expect(c.gelfChunkInvalid).toBe(1);
  });

  it("accepts 128 chunks, and a single chunk with count 1 at once", () => {
    const a = new GelfChunkAssembler(limits, newCounters());
    const payload = randomBytes(128 * 10);
    const parts = chunks(payload, 128);
    let out: Buffer | undefined;
    for (const p of parts.reverse()) out = a.add(p, "h", 0);
    expect(out?.equals(payload)).toBe(true);
    expect(a.add(chunks(Buffer.from("solo"), 1)[0]!, "h", 0)?.toString()).toBe("solo");
  });

  it("drops a chunk whose count disagrees with the first one", () => {
    const c = newCounters();
    const a = new GelfChunkAssembler(limits, c);
    const id = randomBytes(8);
    a.add(chunks(Buffer.from("abcd"), 2, id)[0]!, "h", 0);
    expect(a.add(chunks(Buffer.from("abcdef"), 3, id)[1]!, "h", 0)).toBeUndefined();
    expect(c.gelfChunkInvalid).toBe(1);
  });

  it("expires incomplete messages timeoutMs after their first chunk (sweep), counting them", () => {
    const c = newCounters();
    const a = new GelfChunkAssembler(limits, c);
    const parts = chunks(Buffer.from("abcdef"), 3);
    a.add(parts[0]!, "h", 1_000);
    a.sweep(5_999);
    expect(a.size).toBe(1);
    a.sweep(6_000);
    expect(a.size).toBe(0);
    expect(c.gelfChunksExpired).toBe(1);
    // A late chunk starts a new, never-completed message: it does not resurrect the old one.
    expect(a.add(parts[1]!, "h", 6_001)).toBeUndefined();
    expect(a.add(parts[2]!, "h", 6_002)).toBeUndefined();
    a.clear();
    expect(c.gelfChunksExpired).toBe(2);
  });

  it("bounds the table: beyond maxPendingMessages the oldest is evicted (counted)", () => {
    const c = newCounters();
    const a = new GelfChunkAssembler(limits, c);
    const sets = Array.from({ length: 4 }, () => chunks(Buffer.from("xxyy"), 2));
    sets.forEach((s, i) => a.add(s[0]!, "h", i));
    expect(a.size).toBe(3);
    expect(c.gelfChunksEvicted).toBe(1);
    expect(a.add(sets[0]![1]!, "h", 10)).toBeUndefined(); // the evicted one cannot complete
    expect(a.add(sets[3]![1]!, "h", 10)?.toString()).toBe("xxyy");
  });

  it("bounds bytes: over maxPendingBytes the oldest go; over maxMessageBytes the message is dropped once", () => {
    const c = newCounters();
    const a = new GelfChunkAssembler({ ...limits, maxPendingBytes: 250, maxMessageBytes: 300 }, c);
    const one = chunks(randomBytes(400), 4); // 100 bytes per chunk
    const two = chunks(randomBytes(400), 4);
    a.add(one[0]!, "h", 0);
    a.add(one[1]!, "h", 0);
    a.add(two[0]!, "h", 1); // 300 held > 250: `one` goes
    expect(c.gelfChunksEvicted).toBe(1);
    expect(a.pendingBytes).toBe(100);
    const big = chunks(randomBytes(400), 4, randomBytes(8));
    const c2 = newCounters();
    const b = new GelfChunkAssembler({ ...limits, maxMessageBytes: 300 }, c2);
    for (const p of big) expect(b.add(p, "h", 0)).toBeUndefined();
    expect(c2.gelfTooLarge).toBe(1); // counted once, its later chunks ignored
    expect(b.pendingBytes).toBe(0);
    b.sweep(10_000);
    expect(c2.gelfChunksExpired).toBe(0);
  });
});

describe("GELF payloads", () => {
  const json = Buffer.from('{"version":"1.1","host":"h","short_message":"hi"}');

  it("detects gzip, zlib and plain by magic bytes and caps decompressed size", () => {
    expect(gelfCompression(gzipSync(json))).toBe("gzip");
    expect(gelfCompression(deflateSync(json))).toBe("zlib");
    expect(gelfCompression(json)).toBe("none");
    expect(decompressGelf(gzipSync(json), 1_000)).toEqual(json);
    expect(decompressGelf(deflateSync(json), 1_000)).toEqual(json);
    // A zip bomb stops at the cap instead of filling memory.
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100_000);
    expect(decompressGelf(bomb, 8 * 1024 * 1024)).toBe("gelfTooLarge");
    expect(decompressGelf(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 1_000)).toBe("gelfDecompressFailed");
    expect(decompressGelf(json, 10)).toBe("gelfTooLarge");
  });

  it("maps GELF to an ECS record", () => {
    const parsed = parseGelf(
      JSON.stringify({
        version: "1.1",
        host: "web-1",
        short_message: "boom",
        full_message: "boom\n  at x.js:1",
        timestamp: 1_700_000_000.5,
        level: 3,
        _user_id: 7,
        _host: "shadow",
        _id: "abc",
        facility: "app",
      }),
    );
    if (typeof parsed === "string") throw new Error(parsed);
    const record = buildRecord(parsed, { now: "2020-01-01T00:00:00.000Z", source: "net" });
    expect(record).toEqual({
      "@timestamp": "2023-11-14T22:13:20.500Z",
      message: "boom\n  at x.js:1",
      log: { level: "error", syslog: { severity: { code: 3 } } },
      host: { name: "web-1" },
      host_: "shadow",
      user_id: 7,
      id: "abc",
      facility: "app",
      service: { name: "net" },
    });
  });

  it("keeps short_message when it is not the start of full_message; falls back to `message`; arrival time for timestamp 0", () => {
    const a = parseGelf('{"host":"h","short_message":"summary","full_message":"details"}');
    expect(typeof a !== "string" && a.fields).toMatchObject({ message: "details", short_message: "summary" });
    const b = parseGelf('{"host":"h","message":"graylog extension","timestamp":0}');
    if (typeof b === "string") throw new Error(b);
    expect(buildRecord(b, { now: "2020-01-01T00:00:00.000Z" })).toMatchObject({ message: "graylog extension", "@timestamp": "2020-01-01T00:00:00.000Z" });
    const c = parseGelf('{"host":"h","short_message":"x","timestamp":"soon","level":"loud"}');
    if (typeof c === "string") throw new Error(c);
    expect(buildRecord(c, { now: "2020-01-01T00:00:00.000Z" })).toMatchObject({ "@timestamp_raw": "soon", level: "loud" });
  });

  it.each([
    ["not JSON", "nope", "gelfInvalidJson"],
    ["empty", "", "gelfInvalidJson"],
    ["an array", "[1]", "gelfNotAnObject"],
    ["no message", '{"host":"h"}', "gelfMissingMessage"],
    ["a numeric short_message", '{"host":"h","short_message":5}', "gelfMissingMessage"],
    ["a blank short_message", '{"host":"h","short_message":"  "}', "gelfMissingMessage"],
    ["a numeric host", '{"host":1,"short_message":"x"}', "gelfInvalidHost"],
    ["a blank host", '{"host":" ","short_message":"x"}', "gelfInvalidHost"],
  ])("rejects %s", (_name, text, reason) => {
    expect(parseGelf(text)).toBe(reason);
  });

  it("renames an extra whose name is taken with up to four `_`, then with a number counted per message; chains keep every field", () => {
    const taken = { a: 0, a_: 1, a__: 2, a___: 3, a____: 4, a_1: 5 };
    const p = parseGelf(JSON.stringify({ host: "h", short_message: "x", ...taken, _a: "first clash", _a_: "second" }));
    if (typeof p === "string") throw new Error(p);
    // `_a` finds a, then a_ … a____ taken (four `_`), then a_1: it gets a_2. `_a_` (a_) finds a__ … a____ taken and
    // gets its fourth `_`: a_____.
    expect(p.fields).toMatchObject({ ...taken, a_2: "first clash", a_____: "second" });
    // A message of such chains: 4,000 extras, each kept once.
    const chain: Record<string, number> = {};
    for (let k = 0; k < 2_000; k++) chain[`a${"_".repeat(k)}`] = k;
    for (let k = 0; k < 2_000; k++) chain[`_a${"_".repeat(k)}`] = -k;
    const big = parseGelf(JSON.stringify({ host: "h", short_message: "x", ...chain }));
    if (typeof big === "string") throw new Error(big);
    expect(Object.values(big.fields!).filter((v) => typeof v === "number")).toHaveLength(4_000);
  });

  it("never lets an extra named __proto__ reach the prototype", () => {
    const p = parseGelf('{"host":"h","short_message":"x","___proto__":{"polluted":true}}');
    if (typeof p === "string") throw new Error(p);
    const record = buildRecord(p, { now: 0 });
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
  });
});
