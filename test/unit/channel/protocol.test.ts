// The host–collector wire format: frames come out of FrameDecoder whole and in order however the pipe cuts the
// bytes, and RECORDS payloads decode to exact record spans or a ProtocolError.
import { describe, expect, it } from "vitest";
import { FrameDecoder, FrameType, ProtocolError, decodeRecords, encodeFrame, encodeJson } from "../../../src/channel/protocol.js";

function recordsPayload(seq: number, records: string[]): Buffer {
  const hdr = Buffer.from(JSON.stringify({ seq }));
  const head = Buffer.alloc(8);
  head.writeUInt32BE(records.length, 0);
  head.writeUInt32BE(hdr.length, 4);
  return Buffer.concat([head, hdr, Buffer.from(records.join("\n"))]);
}

const FRAMES: [FrameType, Buffer][] = [
  [FrameType.READY, Buffer.from('{"pid":1}')],
  [FrameType.RECORDS, recordsPayload(0, ['{"a":1}', '{"m":"Grüße 😀"}', "{}"])],
  [FrameType.DRAINED, Buffer.alloc(0)],
  [FrameType.RECORDS, recordsPayload(3, ['{"b":"' + "x".repeat(300) + '"}'])],
  [FrameType.STATS, Buffer.from("{}")],
];
const STREAM = Buffer.concat(FRAMES.map(([t, p]) => encodeFrame(t, p)));

function decodeIn(pieces: Buffer[]): [FrameType, string][] {
  const out: [FrameType, string][] = [];
  const d = new FrameDecoder((type, payload) => out.push([type, payload.toString("hex")]));
  for (const p of pieces) d.push(p);
  return out;
}
const expected = FRAMES.map(([t, p]): [FrameType, string] => [t, p.toString("hex")]);

describe("FrameDecoder", () => {
  it("gives the same frames for every single cut of the stream and for every pair of cuts", () => {
    for (let i = 0; i <= STREAM.length; i++) {
      expect(decodeIn([STREAM.subarray(0, i), STREAM.subarray(i)]), `cut at ${i}`).toEqual(expected);
    }
    for (let i = 0; i <= STREAM.length; i += 7) {
      for (let j = i; j <= STREAM.length; j += 3) {
        expect(decodeIn([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]), `cuts at ${i}, ${j}`).toEqual(expected);
      }
    }
  });

  it("gives the same frames fed a byte at a time", () => {
    expect(decodeIn(Array.from(STREAM, (b) => Buffer.from([b])))).toEqual(expected);
  });

  it("hands out a frame inside one chunk as a view and copies a spread one, leaving the chunks as they were", () => {
    const seen: Buffer[] = [];
    const d = new FrameDecoder((_t, payload) => seen.push(payload));
    const whole = Buffer.allocUnsafeSlow(STREAM.length); // its own ArrayBuffer, not the shared pool
    STREAM.copy(whole);
    d.push(whole.subarray(0, 20)); // READY and the start of RECORDS
    d.push(whole.subarray(20));
    expect(seen).toHaveLength(FRAMES.length);
    expect(seen[0]!.buffer).toBe(whole.buffer); // READY: inside the first chunk
    expect(seen[1]!.buffer).not.toBe(whole.buffer); // RECORDS: spread over both chunks
    expect(whole.equals(STREAM)).toBe(true);
  });

  it("refuses a length over the limit and an unknown type as soon as the header is in", () => {
    const big = Buffer.alloc(5);
    big.writeUInt32BE(1025, 0);
    big[4] = FrameType.RECORDS;
    const d = new FrameDecoder(() => {}, 1024);
    d.push(big.subarray(0, 3));
    expect(() => d.push(big.subarray(3))).toThrow(ProtocolError);
    const unknown = Buffer.from([0, 0, 0, 0, 99]);
    expect(() => new FrameDecoder(() => {}).push(unknown)).toThrow(/unknown frame type 99/);
  });

  it("encodeJson frames a value the decoder returns", () => {
    const got = decodeIn([encodeJson(FrameType.CREDIT, { records: 5, bytes: 10 })]);
    expect(got).toEqual([[FrameType.CREDIT, Buffer.from('{"records":5,"bytes":10}').toString("hex")]]);
  });
});

describe("decodeRecords", () => {
  it("returns each record's span and the header", () => {
    const records = ['{"a":1}', '{"m":"Grüße 😀"}', "{}"];
    const payload = recordsPayload(42, records);
    const { header, starts, ends } = decodeRecords(payload);
    expect(header.seq).toBe(42);
    expect(Array.from(starts, (s, i) => payload.toString("utf8", s, ends[i]))).toEqual(records);
  });

  it("refuses a count that disagrees with the records, a bad header and a bad seq", () => {
    const two = recordsPayload(0, ["{}", "{}"]);
    two.writeUInt32BE(3, 0);
    expect(() => decodeRecords(two)).toThrow(/fewer than 3/);
    const three = recordsPayload(0, ["{}", "{}", "{}"]);
    three.writeUInt32BE(2, 0);
    expect(() => decodeRecords(three)).toThrow(/more than 2/);
    expect(() => decodeRecords(Buffer.alloc(4))).toThrow(/shorter than its header/);
    const badSeq = recordsPayload(-1, ["{}"]);
    expect(() => decodeRecords(badSeq)).toThrow(/no valid seq/);
    const notJson = recordsPayload(0, ["{}"]);
    notJson[8] = 0x7b + 1; // the header's opening brace
    expect(() => decodeRecords(notJson)).toThrow(/not JSON/);
  });
});
