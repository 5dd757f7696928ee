// GELF from record bytes must produce exactly the general path's bytes (JSON.stringify(toGelf(record))), or step
// aside. A differential test over hand-picked edge cases, records as the collector builds them, and a seeded
// random corpus, for several mappings. It also checks that ordinary records do take the fast path, so an
// encoder that always declines cannot pass.
import { describe, expect, it } from "vitest";
import { buildRecord, parseJson } from "../../../src/collector/parse/index.js";
import { GelfBytesEncoder } from "../../../src/sinks/gelf-bytes.js";
import { DEFAULT_GELF_LEVELS, toGelf, type GelfMappingOptions } from "../../../src/sinks/gelf-message.js";
import { type RandomJsonShape, mulberry32, randomObject, randomValue } from "../../helpers/random-json.js";

const MAPPINGS: { name: string; mapping: GelfMappingOptions }[] = [
  { name: "defaults", mapping: { host: "fallback-host", levels: DEFAULT_GELF_LEVELS, flattenDepth: 4 } },
  { name: "depth 1, odd host", mapping: { host: 'h"o\\st é', levels: DEFAULT_GELF_LEVELS, flattenDepth: 1 } },
  { name: "depth 2, custom levels", mapping: { host: "h", levels: { ...DEFAULT_GELF_LEVELS, fatal: 0, info: 5 }, flattenDepth: 2 } },
  { name: "depth 32", mapping: { host: "h", levels: DEFAULT_GELF_LEVELS, flattenDepth: 32 } },
];

const encoders = MAPPINGS.map(({ mapping }) => new GelfBytesEncoder(mapping));

/** The record at `src[start, end)` as GELF through the encoder, or undefined when it declines. */
function encode(enc: GelfBytesEncoder, src: Buffer, start: number, end: number): Buffer | undefined {
  const size = enc.prepare(src, start, end);
  if (size < 0) return undefined;
  const out = Buffer.allocUnsafe(size);
  expect(enc.writeTo(out, 0)).toBe(size);
  return out;
}

/**
 * Asserts agreement for every mapping (the record placed at an odd offset in a larger buffer); returns how many
 * took the fast path.
 */
function check(text: string): number {
  return accepted(text).length;
}

/** Like `check`; returns the names of the mappings that took the fast path. */
function accepted(text: string): string[] {
  const bytes = Buffer.from(text);
  const buf = Buffer.concat([Buffer.from('x"}{'), bytes, Buffer.from('}"\n')]);
  const names: string[] = [];
  MAPPINGS.forEach(({ name, mapping }, k) => {
    const got = encode(encoders[k]!, buf, 4, 4 + bytes.length);
    if (got === undefined) return;
    names.push(name);
    expect(got.toString("utf8"), `${name}: ${text}`).toBe(JSON.stringify(toGelf(JSON.parse(text), mapping)));
    // Written after other bytes in a shared buffer, as the UDP path does.
    const size = encoders[k]!.prepare(buf, 4, 4 + bytes.length);
    const shared = Buffer.alloc(size + 9, 0x2a);
    expect(encoders[k]!.writeTo(shared, 7)).toBe(7 + size);
    expect(shared.subarray(7, 7 + size).equals(got)).toBe(true);
    expect(shared.subarray(0, 7).toString() + shared.subarray(7 + size).toString()).toBe("*********");
  });
  return names;
}

// At flattenDepth 1 an object `host`, `log` or `error` is sent as JSON text and still read for the standard
// fields: that takes the general path.
const DEPTH_1 = MAPPINGS[1]!.name;
const ALL = MAPPINGS.map((m) => m.name);
const ALL_BUT_DEPTH_1 = ALL.filter((n) => n !== DEPTH_1);

const TS = "2026-11-29T08:01:26.123Z";
const rec = (fields: Record<string, unknown>): string => JSON.stringify({ "@timestamp": TS, message: "hello", ...fields });

describe("GelfBytesEncoder", () => {
  it("takes the fast path for records as collectors build them, with the general path's bytes", () => {
    const lines = [
      '{"level":30,"time":1764403286123,"pid":4242,"hostname":"web-1","reqId":"req-1","req":{"method":"GET","url":"/api/users/42","remoteAddress":"10.0.0.7"},"res":{"statusCode":200},"responseTime":12.5,"msg":"request completed"}',
      '{"level":"warn","msg":"slow query","ms":1500,"sql":"SELECT \\"x\\" FROM t","user":{"id":7,"tags":["a","b"],"admin":false,"manager":null}}',
      '{"level":"error","message":"naïve café ☕ 😀","err":{"type":"Error","message":"boom"}}',
      '{"severity":"debug","text":"quote at the end \\"","deep":{"a":{"b":{"c":{"d":{"e":1}}}}}}',
    ];
    const contexts = [
      { now: TS },
      { now: TS, source: "api", host: "web-1", filePath: "/var/log/app.log", offset: 4096 },
      { now: TS, source: "job", stream: "stderr" as const, fields: { env: "prod", labels: { team: "core" } } },
    ];
    for (const line of lines) {
      for (const ctx of contexts) {
        const text = JSON.stringify(buildRecord(parseJson(line), ctx));
        // Every built record has a log object (level, file path or offset) or none: `log` decides depth 1.
        expect(accepted(text), text).toEqual("log" in JSON.parse(text) ? ALL_BUT_DEPTH_1 : ALL);
      }
    }
  });

  it.each([
    ["host.name as host, not repeated", rec({ host: { name: "db-1", ip: "10.0.0.1" } })],
    ["blank host.name falls back", rec({ host: { name: "   " } })],
    ["host.name of unicode spaces falls back", rec({ host: { name: "\u00a0\u3000" } })],
    ["host.name of escaped whitespace falls back", rec({ host: { name: "\t\n " } })],
    ["host.name with escapes", rec({ host: { name: 'a"b' } })],
    ["host.name not a string", rec({ host: { name: 7, os: "linux" } })],
    ["host as a string", rec({ host: "plain" })],
    ["host as an array", rec({ host: ["a"] })],
    ["log.level names the level", rec({ log: { level: "error", logger: "x" } })],
    ["unknown level", rec({ log: { level: "verbose" } })],
    ["inherited property name as level", rec({ log: { level: "toString" } })],
    ["numeric level", rec({ log: { level: 50 } })],
    ["empty stack trace is skipped", rec({ error: { stack_trace: "", type: "E" } })],
    ["stack trace not a string", rec({ error: { stack_trace: 5 } })],
    ["error as a string", rec({ error: "boom" })],
    ["empty message", rec({ message: "" })],
    ["message not a string", rec({ message: { text: "x" } })],
    ["no message", JSON.stringify({ "@timestamp": TS, a: 1 })],
    ["message ending in \\\\", rec({ message: "path\\" })],
    ["message ending in \\b", rec({ message: "bell\b" })],
    ["message ending in a control char", rec({ message: "x\u0001" })],
    ["message ending in a lone surrogate", rec({ message: "x\ud800" })],
    ["message with U+2028 inside", rec({ message: "a\u2028b" })],
    ["leading spaces kept", rec({ message: "  indented" })],
    ["reserved names", rec({ id: 1, _id: 2, source: "s", gl2_x: "g", all: true, "": "empty" })],
    ["dots and odd characters in names", rec({ "a.b": 1, "k@y": 2, "ключ": 3, "e😀": 4 })],
    ["integer-like keys", rec({ obj: { "2": "b", "1": "a", z: "c" } })],
    ["__proto__ as a key", JSON.stringify(JSON.parse(`{"@timestamp":"${TS}","message":"m","__proto__":{"x":1}}`))],
    ["arrays and deep objects as JSON text", rec({ tags: ["a", 'q"', "back\\", "\u2028", 1, null, { k: [] }], d: { a: { b: { c: { d: { e: "deep" } } } } } })],
    ["empty objects and arrays", rec({ o: {}, a: [], n: { m: {} } })],
    ["booleans and nulls", rec({ t: true, f: false, n: null, nested: { t: true, n: null } })],
    ["numbers", rec({ a: 0, b: -1.5, c: 1e21, d: 1e-7, e: 123456789012345, f: 2 ** 53 + 2 })],
    ["timestamp without milliseconds", JSON.stringify({ "@timestamp": "2024-05-01T12:00:00Z", message: "m" })],
    ["timestamp before 1970", JSON.stringify({ "@timestamp": "1969-12-31T23:59:59.999Z", message: "m" })],
  ])("%s", (_name, text) => {
    check(text);
  });

  it("takes a record's syslog severity as its level (log.syslog.severity.code), as the general path does", () => {
    const line = (syslog: string, level = '"info"') => `{"@timestamp":"2024-05-01T12:00:00.000Z","message":"m","log":{"level":${level},"syslog":${syslog}}}`;
    // Syslog and GELF input records keep the fast path.
    for (const code of ["0", "5", "7"]) {
      const text = line(`{"facility":{"code":1,"name":"user"},"severity":{"code":${code},"name":"x"},"priority":13}`);
      expect(accepted(text)).toEqual(ALL.filter((n) => n !== DEPTH_1));
      expect(JSON.parse(encode(encoders[0]!, Buffer.from(text), 0, text.length)!.toString()).level).toBe(Number(code));
    }
    expect(check(line('{"severity":{"name":"x","code":1}}', '"fatal"'))).toBeGreaterThan(0);
    // Not a severity: the level comes from log.level. Other spellings of a number: the general path decides.
    for (const syslog of ['{"severity":{"code":"5"}}', '{"severity":{"code":null}}', '{"severity":5}', "[1]", '"x"', "{}", '{"severity":{}}']) {
      expect(check(line(syslog)), syslog).toBeGreaterThan(0);
    }
    for (const syslog of ['{"severity":{"code":5.0}}', '{"severity":{"code":8}}', '{"severity":{"code":-1}}', '{"severity":{"code":1e0}}']) check(line(syslog));
  });

  it("takes the fast path for the usual shapes among those", () => {
    for (const [text, which] of [
      [rec({ host: { name: "db-1", ip: "10.0.0.1" } }), ALL_BUT_DEPTH_1],
      [rec({ log: { level: "error", logger: "x" } }), ALL_BUT_DEPTH_1],
      [rec({ tags: ["a", "b"], d: { a: { b: { c: { d: { e: 1 } } } } } }), ALL],
      [rec({ message: "" }), ALL],
      [rec({ "a.b": 1, "k@y": 2, "ключ": 3 }), ALL],
    ] as const) {
      expect(accepted(text), text).toEqual(which);
    }
  });

  it.each([
    ["multi-line message (full_message)", rec({ message: "a\nb" })],
    ["CR in the message", rec({ message: "a\rb" })],
    ["trailing space", rec({ message: "text " })],
    ["trailing tab", rec({ message: "text\t" })],
    ["trailing form feed", rec({ message: "text\f" })],
    ["trailing vertical tab", rec({ message: "text\u000b" })],
    ["trailing no-break space", rec({ message: "text\u00a0" })],
    ["trailing BOM", rec({ message: "text\ufeff" })],
    ["whitespace only", rec({ message: "   " })],
    ["a stack trace (full_message)", rec({ error: { stack_trace: "Error: x\n    at f" } })],
    ["no timestamp", JSON.stringify({ message: "m" })],
    ["timestamp not a string", JSON.stringify({ "@timestamp": 1, message: "m" })],
    ["unreadable timestamp", JSON.stringify({ "@timestamp": "yesterday", message: "m" })],
    ["a key with an escape", rec({ 'k"q': 1 })],
    ["two fields with one GELF name (not at depth 1: `a` is text there)", rec({ a_b: 1, a: { b: 2 } })],
    ["two fields with one GELF name after replacement", rec({ "a.b": 1, "a-b": 2, "a b": 3 })],
    ["log.level as an array (String() of it names a level)", rec({ log: { level: ["warn"] } })],
    ["host too deep to flatten at depth 1 is read by the general path", rec({ host: { name: "h" } })],
    ["duplicate message", `{"@timestamp":"${TS}","message":"a","message":"b"}`],
    ["whitespace (not canonical)", `{"@timestamp":"${TS}", "message":"a"}`],
    ["truncated", `{"@timestamp":"${TS}","message":"a"`],
    ["garbage after a value", `{"@timestamp":"${TS}","message":"a"x}`],
    ["empty object", "{}"],
  ])("declines: %s", (name, text) => {
    const bytes = Buffer.from(text);
    const which = name.startsWith("host too deep") ? [1] : name.includes("not at depth 1") ? [0, 2, 3] : [0, 1, 2, 3];
    for (const k of which) expect(encode(encoders[k]!, bytes, 0, bytes.length), `${MAPPINGS[k]!.name}: ${text}`).toBeUndefined();
  });

  it("agrees with String#trimEnd on every BMP character at the end of a message", () => {
    const { mapping } = MAPPINGS[0]!;
    const enc = encoders[0]!;
    let fast = 0;
    for (let c = 0; c <= 0xffff; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const text = rec({ message: "x" + String.fromCharCode(c) });
      const bytes = Buffer.from(text);
      const got = encode(enc, bytes, 0, bytes.length);
      if (got === undefined) continue;
      fast++;
      if (got.toString() !== JSON.stringify(toGelf(JSON.parse(text), mapping))) expect.fail(`U+${c.toString(16)}: ${got.toString()}`);
    }
    // Declined: the 31 escaped control characters other than \b, and the 20 whitespace characters of String#trim.
    expect(fast).toBe(0x10000 - 0x800 - 31 - 20);
  });

  it("agrees on timestamps: 20,000 random instants, fraction edges, other formats; declines what Date.parse cannot read", () => {
    const rand = mulberry32(0x7157);
    const stamps = [
      "1970-01-01T00:00:00.000Z",
      "1970-01-01T00:00:00.001Z",
      "1969-12-31T23:59:59.999Z",
      "2024-02-29T23:59:59.990Z",
      "2026-11-29T08:01:26.100Z",
      "2026-11-29T08:01:26.120Z",
      "9999-12-31T23:59:59.999Z",
      "2026-11-29T08:01:26Z",
      "2026-11-29T08:01:26.123456Z",
      "2026-11-29T08:01:26.123+02:00",
      "2026-11-29",
      "2024-02-30T00:00:00.000Z",
      "+002026-11-29T08:01:26.123Z",
    ];
    for (let i = 0; i < 20_000; i++) stamps.push(new Date(Math.floor(rand() * 4_102_444_800_000)).toISOString());
    // Consecutive records often share the minute: walk through one.
    for (let ms = 0; ms < 60_000; ms += 7) stamps.push(new Date(1_764_403_260_000 + ms).toISOString());
    let fast = 0;
    for (const ts of stamps) fast += check(JSON.stringify({ "@timestamp": ts, message: "m" }));
    expect(fast).toBe(stamps.length * MAPPINGS.length);
    for (const ts of ["2024-13-01T00:00:00.000Z", "2024-01-01T25:00:00.000Z", "2024-01-01T00:60:00.000Z", "2024-01-01T00:00:60.000Z", "2024-01-01T00:00:0x.000Z", "soon"]) {
      const bytes = Buffer.from(JSON.stringify({ "@timestamp": ts, message: "m" }));
      expect(encode(encoders[0]!, bytes, 0, bytes.length), ts).toBeUndefined();
    }
  });

  it("agrees when a timestamp before 1970 (or with sub-ms digits) comes between two of one second", () => {
    // Those take another way to their text; the encoder's cache of the second's text must not survive it.
    const odd = ["1969-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z", "1969-07-20T20:17:40Z", "2026-11-29T08:01:26.123456Z"];
    let fast = 0;
    for (const between of odd) {
      for (const ts of ["2024-05-01T12:00:00.123Z", between, "2024-05-01T12:00:00.456Z", "2024-05-01T12:00:00.000Z"]) {
        fast += check(JSON.stringify({ "@timestamp": ts, message: "m" }));
      }
    }
    expect(fast).toBe(odd.length * 4 * MAPPINGS.length);
  });

  it("agrees on 20,000 random records (seeded)", () => {
    const rand = mulberry32(0x6e1f);
    let fast = 0;
    for (let i = 0; i < 20_000; i++) fast += check(JSON.stringify(randomRecord(rand)));
    expect(fast).toBeGreaterThan(40_000); // 47,396 of 80,000 (4 mappings) with this seed
  });

  it("reads each key anew when it is not the one the last record had in its place (the shape it remembers)", () => {
    // One encoder, records in turn whose keys repeat, extend, shorten, swap or move those before them: a key the
    // encoder guessed from the last record's shape is taken only when its bytes, closing quote and colon are there.
    const shapes = [
      rec({ ab: 1, cd: { ef: "x" } }),
      rec({ ab: 2, cd: { ef: "y" } }),
      rec({ ba: 1, dc: { fe: "x" } }), // same lengths, other bytes
      rec({ a: 1, cd: { e: "x" } }), // shorter
      rec({ abc: 1, cd: { efg: "x" } }), // longer
      rec({ "ab:": 1, cd: { ef: "x" } }), // a colon inside the key
      rec({ ab: 1 }),
      rec({ "abc:1": 1 }), // the guess's bytes, then not its closing quote but a colon
      rec({ cd: { ef: "x" }, ab: 1 }), // swapped
      rec({ ab: { cd: 1 }, cd: "ef" }), // a key of one object in another's place
      JSON.stringify({ message: "first", "@timestamp": TS, ab: 1 }), // message and @timestamp swapped
      rec({ host: { name: "h1", ab: 1 }, log: { level: "error" } }),
      rec({ log: { level: "warn" }, host: { name: "h2" } }),
      rec({ log: { levels: "warn", level: "fatal" } }),
      rec({ ab: 1, cd: { ef: "x" } }),
    ];
    for (let round = 0; round < 3; round++) {
      for (const text of shapes) {
        const o = JSON.parse(text) as { host?: unknown; log?: unknown };
        // At depth 1 an object host or log takes the general path (see DEPTH_1).
        expect(accepted(text), text).toEqual(typeof o.host === "object" || typeof o.log === "object" ? ALL_BUT_DEPTH_1 : ALL);
      }
    }
  });

  it("reads a record shaped like the last one without looking a key up", () => {
    const enc = new GelfBytesEncoder(MAPPINGS[0]!.mapping);
    const fields = (enc as unknown as { fields: { lookup(...args: unknown[]): number } }).fields;
    const lookup = fields.lookup.bind(fields);
    let lookups = 0;
    fields.lookup = (...args: unknown[]) => (lookups++, lookup(...args));
    const one = Buffer.from(rec({ a: 1, b: { c: "x", d: { e: true } }, host: { name: "h" }, log: { level: "warn" } }));
    const two = Buffer.from(rec({ a: 2, b: { c: "y", d: { e: false } }, host: { name: "h" }, log: { level: "info" } }));
    expect(encode(enc, one, 0, one.length)).toBeDefined();
    expect(lookups).toBe(11); // every key once: @timestamp, message, a, b, c, d, e, host, name, log, level
    expect(encode(enc, two, 0, two.length)?.toString()).toBe(JSON.stringify(toGelf(JSON.parse(two.toString()), MAPPINGS[0]!.mapping)));
    expect(lookups).toBe(11);
  });

  it("keeps a bounded table of field names", () => {
    const enc = new GelfBytesEncoder(MAPPINGS[0]!.mapping);
    for (let i = 0; i < 25_000; i++) {
      const bytes = Buffer.from(rec({ [`k${i}`]: i }));
      expect(encode(enc, bytes, 0, bytes.length)).toBeDefined();
    }
    expect((enc as unknown as { fields: { parents: unknown[] } }).fields.parents.length).toBeLessThanOrEqual(10_000);
  });

  it("declines a key behind a long run of occupied slots instead of walking it (keys chosen to collide)", () => {
    const enc = new GelfBytesEncoder(MAPPINGS[0]!.mapping);
    // Every slot taken by a node no key matches: what a flood of colliding keys makes of one region of the table.
    (enc as unknown as { fields: { slots: Int32Array } }).fields.slots.fill(1);
    const bytes = Buffer.from(rec({ user: "ann" }));
    expect(enc.prepare(bytes, 0, bytes.length)).toBe(-1);
  });

  it("declines a record with more new keys than its table has room for, and returns (a full table would probe forever)", () => {
    const enc = new GelfBytesEncoder(MAPPINGS[0]!.mapping);
    // 40,000 distinct keys, 477 KB: a line a JSON NetworkSource or a file can carry. The table holds at most 16,384.
    const fields: Record<string, number> = {};
    for (let i = 0; i < 40_000; i++) fields[`k${i}`] = i;
    const text = rec(fields);
    const bytes = Buffer.from(text);
    expect(enc.prepare(bytes, 0, bytes.length)).toBe(-1);
    // The general path builds it; the encoder goes on with the next record as before.
    expect(JSON.stringify(toGelf(JSON.parse(text), MAPPINGS[0]!.mapping))).toContain('"_k39999":39999');
    const next = Buffer.from(rec({ after: 1 }));
    expect(encode(enc, next, 0, next.length)?.toString()).toBe(JSON.stringify(toGelf(JSON.parse(next.toString()), MAPPINGS[0]!.mapping)));
  });
});

const STRINGS = ["info", "warn", "error", "fatal", "x", 'q"', "back\\", "line\nbreak", "tab\t", "end ", "ctl\u0001", "é", "😀", "\u2028", "\u00a0", "", " ", "2026-01-15T08:00:00Z"];
const SHAPE: RandomJsonShape = {
  keys: ["a", "b", "a_b", "a.b", "name", "level", "stack_trace", "message", "host", "log", "error", "id", "1", "x y", "é", "gl2_z", ""],
  strings: STRINGS,
  numbers: [0, 1, -1, 1.5, 30, 1e21, 1e-7, 1768464000000, 123456789012345],
  odds: [0.35, 0.55, 0.65, 0.75],
  maxDepth: 4,
  maxArray: 3,
  maxKeys: 5,
};

function randomRecord(rand: () => number): Record<string, unknown> {
  const r = rand();
  const ts = r < 0.9 ? TS : r < 0.95 ? "not a time" : 5;
  const message = rand() < 0.8 ? STRINGS[Math.floor(rand() * STRINGS.length)] : randomValue(rand, SHAPE, 3);
  return { "@timestamp": ts, message, ...randomObject(rand, SHAPE, 0) };
}
