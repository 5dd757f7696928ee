// The host–collector wire format: frames come out of FrameDecoder whole and in order however the pipe cuts the
// bytes (RECORDS frames, for the host, in the pieces the reads made), and RECORDS payloads decode to exact record
// spans or a ProtocolError, from one buffer or from pieces.
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

/** Each record's text, from decodeRecords' offsets (and, for pieces, its buffers). */
function texts(d: ReturnType<typeof decodeRecords>, payload: Buffer | Buffer[]): string[] {
  return Array.from(d.starts, (s, i) => (d.bufs?.[i] ?? (payload as Buffer)).toString("utf8", s, d.ends[i]));
}

/** `buf` cut at `cuts` (ascending), empty pieces left out, each piece a view of it. */
function cut(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...cuts, buf.length]) {
    if (c > from) out.push(buf.subarray(from, c));
    from = Math.max(from, c);
  }
  return out;
}

/** The error decodeRecords throws for `payload`, or undefined. */
function errorOf(payload: Buffer | Buffer[]): string | undefined {
  try {
    decodeRecords(payload);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as Error).message;
  }
}

describe("decodeRecords in pieces", () => {
  const records = ['{"a":1}', '{"m":"Grüße 😀"}', "{}", '{"b":"' + "y".repeat(40) + '"}', '{"c":2}'];
  const payload = Buffer.allocUnsafeSlow(recordsPayload(7, records).length);
  recordsPayload(7, records).copy(payload);

  it("gives the records of the whole payload for every cut and every pair of cuts", () => {
    for (let i = 1; i < payload.length; i++) {
      const d = decodeRecords(cut(payload, [i]));
      expect(d.header.seq, `cut at ${i}`).toBe(7);
      expect(texts(d, []), `cut at ${i}`).toEqual(records);
      for (let j = i + 1; j < payload.length; j += 2) expect(texts(decodeRecords(cut(payload, [i, j])), []), `cuts at ${i}, ${j}`).toEqual(records);
    }
    // A byte a piece: every record crosses pieces.
    expect(texts(decodeRecords(cut(payload, Array.from(payload, (_b, k) => k))), [])).toEqual(records);
  });

  it("leaves a record inside a piece where it is and copies only one that crosses into the next", () => {
    const at = payload.indexOf('{"m"'); // the second record starts here: cut in its middle
    const pieces = cut(payload, [at + 5]);
    const d = decodeRecords(pieces);
    expect(d.bufs![0]).toBe(pieces[0]); // inside the first piece: a view of the read, not a copy
    expect(d.bufs![1]!.buffer).not.toBe(payload.buffer); // crosses: its own copy
    expect(d.bufs![1]!.toString("utf8", d.starts[1], d.ends[1])).toBe(records[1]);
    expect(d.bufs!.slice(2).every((b) => b === pieces[1])).toBe(true); // the last one too, though no \n ends it
    expect(Array.from(d.starts.slice(2), (s) => pieces[1]!.toString("utf8", s, s + 1))).toEqual(["{", "{", "{"]);
  });

  it("gives each record's buffer for an array of one piece too, and none for one Buffer", () => {
    const d = decodeRecords([payload]);
    expect(d.bufs).toHaveLength(records.length);
    expect(d.bufs!.every((b) => b === payload)).toBe(true);
    expect(texts(d, [])).toEqual(records);
    expect(decodeRecords(payload).bufs).toBeUndefined();
  });

  it("refuses what the whole payload refuses, with the same error, however it is cut", () => {
    const fewer = recordsPayload(0, ["{}", "{}"]);
    fewer.writeUInt32BE(3, 0);
    const more = recordsPayload(0, ["{}", "{}", "{}"]);
    more.writeUInt32BE(2, 0);
    const trailing = Buffer.concat([recordsPayload(0, ["{}", "{}"]), Buffer.from("\n{}")]);
    const longHeader = recordsPayload(0, ["{}"]);
    longHeader.writeUInt32BE(1000, 4);
    const notJson = recordsPayload(0, ["{}"]);
    notJson[8] = 0x7b + 1;
    const countTooBig = recordsPayload(0, ["{}"]);
    countTooBig.writeUInt32BE(1_000_000, 0);
    const cases = { fewer, more, trailing, longHeader, notJson, countTooBig, empty: recordsPayload(0, []) };
    for (const [name, whole] of Object.entries(cases)) {
      const expected = errorOf(whole);
      if (name !== "empty") expect(expected, name).toBeDefined();
      for (let i = 1; i < whole.length; i++) expect(errorOf(cut(whole, [i])), `${name} cut at ${i}`).toBe(expected);
    }
  });

  it("keeps an empty last record after a trailing newline, as the whole payload does", () => {
    const whole = Buffer.concat([recordsPayload(0, ["{}", "{}"]), Buffer.from("\n")]);
    whole.writeUInt32BE(3, 0);
    expect(texts(decodeRecords(whole), whole)).toEqual(["{}", "{}", ""]);
    for (let i = 1; i < whole.length; i++) expect(texts(decodeRecords(cut(whole, [i])), []), `cut at ${i}`).toEqual(["{}", "{}", ""]);
  });
});

describe("FrameDecoder with RECORDS in pieces", () => {
  const whole = Buffer.allocUnsafeSlow(STREAM.length); // its own ArrayBuffer: pieces are views of it
  STREAM.copy(whole);

  /** Each frame's type and payload (hex), and whether it came in pieces; every piece a view of `whole`. */
  function decodePieces(chunks: Buffer[]): { frames: [FrameType, string][]; spread: number } {
    const frames: [FrameType, string][] = [];
    let spread = 0;
    const d = new FrameDecoder((type, payload) => frames.push([type, payload.toString("hex")]), undefined, {
      type: FrameType.RECORDS,
      when: () => true,
      onPieces(pieces) {
        expect(pieces.length).toBeGreaterThan(1);
        for (const p of pieces) {
          expect(p.length).toBeGreaterThan(0);
          expect(p.buffer).toBe(whole.buffer);
        }
        spread++;
        frames.push([FrameType.RECORDS, Buffer.concat(pieces).toString("hex")]);
      },
    });
    for (const c of chunks) d.push(c);
    return { frames, spread };
  }

  it("hands a RECORDS frame spread over chunks out as views of them, and every other frame whole, for every cut", () => {
    let spread = 0;
    for (let i = 0; i <= whole.length; i++) {
      const got = decodePieces([whole.subarray(0, i), whole.subarray(i)]);
      expect(got.frames, `cut at ${i}`).toEqual(expected);
      spread += got.spread;
    }
    expect(spread).toBeGreaterThan(0);
    const bytewise = decodePieces(Array.from(whole, (_b, k) => whole.subarray(k, k + 1)));
    expect(bytewise.frames).toEqual(expected);
    expect(bytewise.spread).toBe(2); // both RECORDS frames, one byte a piece
  });

  it("decodes the records of a spread frame as those of the whole frame", () => {
    const [, payload] = FRAMES[1]!;
    const frame = encodeFrame(FrameType.RECORDS, payload);
    const own = Buffer.allocUnsafeSlow(frame.length);
    frame.copy(own);
    for (let i = 6; i < own.length; i++) {
      let got: string[] | undefined;
      const d = new FrameDecoder(() => expect.fail("a spread RECORDS frame came whole"), undefined, {
        type: FrameType.RECORDS,
        when: () => true,
        onPieces: (pieces) => (got = texts(decodeRecords(pieces), pieces)),
      });
      d.push(own.subarray(0, i));
      d.push(own.subarray(i));
      expect(got, `cut at ${i}`).toEqual(['{"a":1}', '{"m":"Grüße 😀"}', "{}"]);
    }
  });

  it("copies a spread RECORDS frame whole while `when()` says no, and asks once per spread frame", () => {
    let asked = 0;
    let allow = false;
    const whole: Buffer[] = [];
    const pieced: Buffer[][] = [];
    const d = new FrameDecoder((type, payload) => type === FrameType.RECORDS && whole.push(payload), undefined, {
      type: FrameType.RECORDS,
      when: () => (asked++, allow),
      onPieces: (pieces) => pieced.push(pieces),
    });
    const frame = encodeFrame(FrameType.RECORDS, FRAMES[1]![1]);
    d.push(frame.subarray(0, 20));
    d.push(frame.subarray(20));
    allow = true;
    d.push(frame.subarray(0, 20));
    d.push(frame.subarray(20));
    d.push(frame); // inside one chunk: a view, not asked
    expect(asked).toBe(2);
    expect(whole.map((b) => b.toString("hex"))).toEqual([FRAMES[1]![1].toString("hex"), FRAMES[1]![1].toString("hex")]);
    expect(pieced).toHaveLength(1);
    expect(Buffer.concat(pieced[0]!).equals(FRAMES[1]![1])).toBe(true);
  });
});
