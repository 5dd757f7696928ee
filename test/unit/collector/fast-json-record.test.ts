// The json parser's fast path must produce exactly the general path's bytes, or step aside. This is a differential
// test: every line is built both ways, for several source contexts, over hand-picked edge cases and a seeded
// random corpus. It also checks that common logger output does take the fast path, so a scanner that always
// declines cannot pass.
import { describe, expect, it } from "vitest";
import { fastJsonRecord, fastJsonRecordBytes, planFastRecord, type RecordWriter } from "../../../src/collector/parse/fast-json-record.js";
import { buildRecord, parseJson, type RecordContext } from "../../../src/collector/parse/index.js";
import { type RandomJsonShape, mulberry32, randomObject } from "../../helpers/random-json.js";
import { Intake, peerOf } from "../../../src/collector/network/intake.js";
import { newCounters } from "../../../src/collector/network/counters.js";
import { LineFlags } from "../../../src/collector/line-splitter.js";

const NOW = "2026-11-29T10:00:00.000Z";

type Ctx = Omit<RecordContext, "now" | "offset">;
const CONTEXTS: { name: string; ctx: Ctx; offset?: number }[] = [
  { name: "bare", ctx: {} },
  { name: "file source", ctx: { source: "api", host: "web-1", filePath: "/var/log/app.log", fileDeviceId: "2049", fileInode: "1310721" }, offset: 4096 },
  { name: "file path only", ctx: { source: "api", host: "web-1", filePath: "/var/log/app.log" }, offset: 4096 },
  { name: "command stderr", ctx: { source: "job", host: "h", stream: "stderr" } },
  { name: "stdout + default level", ctx: { source: "job", stream: "stdout", defaultLevel: "debug" } },
  { name: "keepOriginal", ctx: { source: "s", keepOriginal: true }, offset: 0 },
  { name: "enrichment", ctx: { source: "s", fields: { env: "prod", labels: { team: "core", tier: 2 }, tags: ["a", "b"] } }, offset: 17 },
  { name: "file, no host", ctx: { filePath: "C:\\logs\\x.log" }, offset: 1 },
  // Offsets are written digit by digit: the edges of a digit count, and the largest exact one.
  { name: "offset 10", ctx: { filePath: "/a" }, offset: 10 },
  { name: "offset 99999", ctx: { source: "s", filePath: "/a" }, offset: 99_999 },
  { name: "offset 2^31 - 1", ctx: { filePath: "/a" }, offset: 2 ** 31 - 1 },
  { name: "offset 2^31", ctx: { filePath: "/a" }, offset: 2 ** 31 },
  { name: "largest safe offset", ctx: { source: "s", filePath: "/a", stream: "stdout" }, offset: Number.MAX_SAFE_INTEGER },
  // File identity (device, inode) next to every other part of the log object and the record's tail.
  { name: "file identity, inode past 2^64", ctx: { filePath: "/a", fileDeviceId: "66311", fileInode: "18446744073709551615" }, offset: 0 },
  { name: "file identity + keepOriginal", ctx: { source: "s", filePath: "/b", fileDeviceId: "1", fileInode: "2", keepOriginal: true }, offset: 9 },
  {
    name: "file identity + enrichment + stderr",
    ctx: { source: "s", host: "h", filePath: "/c d/é.log", fileDeviceId: "2049", fileInode: "77", fields: { region: "eu-1" }, stream: "stderr" },
    offset: 123,
  },
  { name: "file identity, no path, no offset", ctx: { fileDeviceId: "3", fileInode: "4" } },
  { name: "inode only", ctx: { source: "s", fileInode: "5" }, offset: 5 },
];

function general(line: string, ctx: Ctx, offset: number | undefined): string {
  const full: RecordContext = { ...ctx, now: NOW };
  if (offset !== undefined) full.offset = offset;
  return JSON.stringify(buildRecord(parseJson(line), full));
}

/** Asserts agreement for every context; returns how many contexts took the fast path. */
function check(line: string): number {
  let fast = 0;
  for (const { name, ctx, offset } of CONTEXTS) {
    const plan = planFastRecord(ctx);
    expect(plan, name).toBeDefined();
    const got = fastJsonRecord(line, plan!, NOW, offset);
    if (got === undefined) continue;
    fast++;
    expect(got, `${name}: ${line}`).toBe(general(line, ctx, offset));
  }
  return fast;
}

const PINO = '{"level":30,"time":1768464000000,"pid":4000,"hostname":"web-01","reqId":"0","msg":"cache miss","req":{"method":"GET","url":"/a?b=1"},"res":{"statusCode":200},"responseTime":131.65}';
const COMMON = [
  PINO,
  // bunyan
  '{"name":"app","hostname":"h1","pid":12,"level":50,"msg":"boom","time":"2026-01-15T08:00:00.123Z","v":0}',
  // ECS (pino-ecs / winston-ecs): dotted keys
  '{"log.level":"info","@timestamp":"2026-01-15T08:00:00.123Z","process.pid":1,"host.hostname":"h","ecs.version":"8.10.0","message":"hello"}',
  // winston json, with escapes JSON.stringify also writes
  '{"level":"warn","message":"quote \\" backslash \\\\ tab \\t newline \\n","timestamp":"2026-01-15 08:00:00,123"}',
  // no message, no level, no time
  '{"a":1,"b":[1,2,{"c":null}],"d":true,"e":false,"f":-0.5,"g":0,"h":"é ü 中文"}',
  // zap
  '{"L":"INFO","T":"2026-01-15T08:00:00.000Z","M":"served","caller":"main.go:12","latency":0.000123}',
  // Python structlog with `event` → general path; with msg/lvl
  '{"lvl":"error","ts":1768464000.5,"msg":"x","count":123456789012345}',
  // number message
  '{"message":42,"level":"info"}',
  // astral characters (a surrogate pair in UTF-16) are written verbatim by JSON.stringify
  '{"msg":"deploy 🚀 done","level":"info","user":"ñandú"}',
  '{"message":true,"severity":3}',
  '{}',
];

const EDGE = [
  // whitespace at the top level is allowed (fields are re-joined without it); inside values it is not
  '{ "level" : 30 , "msg" : "x" , "k" : {"a":1} }',
  '{"level":30,"msg":"x","k":{ "a": 1 }}',
  '{"level":30}\r',
  // numbers JSON.stringify would rewrite
  '{"n":1.0}', '{"n":1e3}', '{"n":1E3}', '{"n":-0}', '{"n":0.0000001}', '{"n":0.000001}', '{"n":12345678901234567890}',
  '{"n":1234567890123456}', '{"n":0.1234567890123456}', '{"n":123456789012345}', '{"n":-0.0}', '{"n":01}', '{"n":-}', '{"n":.5}',
  '{"n":100}', '{"n":10.01}', '{"n":-10.5}', '{"n":5e-324}',
  // zeros inside a fraction are significant digits: 17 of them here, which a double does not keep
  '{"n":1.0000000000000001}', '{"n":10.000000000000001}', '{"n":123456789012.00001}', '{"n":1.0000005}', '{"n":0.00000105}',
  // strings JSON.stringify would rewrite or JSON.parse rejects
  '{"s":"\\u0041"}', '{"s":"a\\/b"}', '{"s":"\\x"}', '{"s":"tab\there"}', '{"s":"emoji 😀"}', '{"s":"C:\\\\users"}', '{"s":"\\\\"}',
  '{"s":"\\\\\\""}', '{"s":"a"b"}', '{"s":"unterminated}',
  // keys
  '{"a":1,"a":2}', '{"x":{"a":1,"a":2}}', '{"x":{"a":1,"b":{"a":2}}}', '{"1":"a","b":2}', '{"x":{"2":1,"a":0}}', '{"":1}', '{"a\\nb":1}',
  '{"__proto__":{"polluted":true}}', '{"x":{"__proto__":1}}',
  // keys the builder reshapes
  '{"log":{"level":"error"},"msg":"x"}', '{"host":"h"}', '{"service":"s"}', '{"event":{"action":"a"}}', '{"stream":"x","msg":"y"}',
  '{"message":{"nested":true},"msg":"m"}', '{"message":null,"msg":"m"}', '{"@timestamp":"not a date","msg":"m"}', '{"@timestamp":12,"time":5}',
  '{"@timestamp":"2026-01-15T08:00:00Z","time":1768464000000}', '{"time":"garbage","ts":1768464000}', '{"time":{"a":1}}',
  '{"level":{"a":1}}', '{"level":"nonsense","lvl":"warn"}', '{"level":null,"severity":"ERROR"}', '{"log.level":42}', '{"log.level":"WARN","level":50}',
  '{"msg":1,"text":"t"}', '{"msg":"a","message":"b"}', '{"text":"t","msg":"m"}', '{"env":"dev","msg":"enrichment collides"}', '{"labels":{"x":1}}',
  // literals and structure
  '{"a":tru}', '{"a":nul}', '{"a":null}', '{"a":[]}', '{"a":{}}', '{"a":[[[[]]]]}', '{"a":[1,]}', '{"a":1,}', '{"a":1}x', '{"a":1} ', ' {"a":1}',
  '{"a":1', '"a"', '[1,2]', '', '   ', 'plain text', '{"a":' + '['.repeat(40) + ']'.repeat(40) + '}',
];

describe("fastJsonRecord", () => {
  it("takes the fast path for common logger output, with the general path's exact bytes", () => {
    for (const line of COMMON) {
      expect(check(line), `declined: ${line}`).toBe(CONTEXTS.length - (line.includes('"env"') ? 1 : 0));
    }
  });

  it("leaves numbers before 2000 and bare dates under time/ts/t/date/timestamp as fields, on both paths", () => {
    const cases: [string, string | undefined][] = [
      ['{"msg":"request done","time":12}', undefined],
      ['{"msg":"temp","t":21.5}', undefined],
      ['{"msg":"batch","date":"20240115"}', undefined],
      ['{"msg":"batch","date":20240115}', undefined],
      ['{"msg":"invoice","date":"2023-12-31","amount":5}', undefined],
      ['{"msg":"x","timestamp":"2024-01-15"}', undefined],
      ['{"msg":"x","timestamp":"2024-01-15 "}', undefined],
      ['{"msg":"x","ts":1700000000}', "2023-11-14T22:13:20.000Z"],
      ['{"msg":"x","ts":"1700000000.5"}', "2023-11-14T22:13:20.500Z"],
      ['{"msg":"x","time":1768464000000}', "2026-01-15T08:00:00.000Z"],
      ['{"msg":"x","date":"2024-01-15 10:00:00"}', "2024-01-15T10:00:00.000Z"],
      ['{"msg":"x","time":12,"ts":1700000000}', "2023-11-14T22:13:20.000Z"],
      // @timestamp says what it says.
      ['{"msg":"x","@timestamp":"2024-01-15"}', "2024-01-15T00:00:00.000Z"],
      ['{"msg":"x","@timestamp":12}', "1970-01-01T00:00:12.000Z"],
    ];
    for (const [line, ts] of cases) {
      check(line);
      const record = JSON.parse(general(line, CONTEXTS[0]!.ctx, undefined)) as Record<string, unknown>;
      expect(record["@timestamp"], line).toBe(ts ?? new Date(NOW).toISOString());
      if (ts === undefined) {
        // The value stays as the field it was.
        const [key, value] = Object.entries(JSON.parse(line) as Record<string, unknown>).find(([k]) => k !== "msg" && k !== "amount")!;
        expect(record[key], line).toEqual(value);
      }
    }
  });

  it("an ECS line naming its service and host with dotted keys keeps them, without the source's, on both paths", () => {
    const line = '{"@timestamp":"2024-01-15T10:00:00.123Z","log.level":"info","message":"ecs java","service.name":"petclinic","host.name":"web-7"}';
    // Taken by the fast path in every context, with the general path's bytes (check compares them).
    expect(check(line)).toBe(CONTEXTS.length);
    for (const only of ['"service.name":"petclinic"', '"host.name":"web-7"']) {
      expect(check(`{"message":"m",${only},"n":1}`), only).toBe(CONTEXTS.length);
    }
    expect(check('{"message":"m","service.name":null}')).toBe(CONTEXTS.length);
    // The source's own fields may name them so too: no second value either (the general path's job).
    const ctx = { source: "s", host: "h", fields: { "service.name": "from-fields" } };
    expect(planFastRecord(ctx)).toBeUndefined();
    const fromFields = JSON.parse(general('{"message":"m"}', ctx, undefined)) as Record<string, unknown>;
    expect(fromFields).toMatchObject({ "service.name": "from-fields", host: { name: "h" } });
    expect(fromFields.service).toBeUndefined();
    const record = JSON.parse(general(line, CONTEXTS[1]!.ctx, 0)) as Record<string, unknown>;
    expect(record).toMatchObject({ "service.name": "petclinic", "host.name": "web-7", message: "ecs java" });
    expect(record.service).toBeUndefined();
    expect(record.host).toBeUndefined();
    // One of them named: the other is still added.
    const service = JSON.parse(general('{"message":"m","service.name":"petclinic"}', CONTEXTS[1]!.ctx, 0)) as Record<string, unknown>;
    expect(service).toMatchObject({ "service.name": "petclinic", host: { name: "web-1" } });
    expect(service.service).toBeUndefined();
  });

  it("reads Serilog's compact JSON (@t, @m or @mt, @l) and .NET's JSON console (Timestamp, LogLevel, Message), on both paths", () => {
    const cases: [string, { message: string; level: string | undefined; ts: string }][] = [
      ['{"@t":"2024-01-15T10:00:00.1234567Z","@m":"Failed 3","@mt":"Failed {Id}","@l":"Error","Id":3}', { message: "Failed 3", level: "error", ts: "2024-01-15T10:00:00.123Z" }],
      ['{"@t":"2024-01-15T10:00:00.5Z","@mt":"Started {App}","App":"api"}', { message: "Started {App}", level: undefined, ts: "2024-01-15T10:00:00.500Z" }],
      ['{"Timestamp":"2024-01-15T10:00:00.000+01:00","EventId":0,"LogLevel":"Warning","Category":"App","Message":"slow"}', { message: "slow", level: "warn", ts: "2024-01-15T09:00:00.000Z" }],
      ['{"Timestamp":"2024-01-15 10:00:00","Level":"Information","RenderedMessage":"r","Message":"m"}', { message: "m", level: "info", ts: "2024-01-15T10:00:00.000Z" }],
    ];
    for (const [line, want] of cases) {
      check(line);
      const record = JSON.parse(general(line, CONTEXTS[0]!.ctx, undefined)) as { message: string; "@timestamp": string; log?: { level?: string } };
      expect({ message: record.message, level: record.log?.level, ts: record["@timestamp"] }, line).toEqual(want);
    }
  });

  it("agrees with the general path on edge cases, or declines", () => {
    let fast = 0;
    for (const line of EDGE) fast += check(line);
    // Some edge cases are canonical and must be taken (whitespace at the top level, 100, 10.01 …).
    expect(fast).toBeGreaterThan(CONTEXTS.length * 10);
  });

  it("declines where the general path reshapes: a known subset", () => {
    const plan = planFastRecord(CONTEXTS[1]!.ctx)!;
    for (const line of ['{"n":1.0}', '{"s":"\\u0041"}', '{"a":1,"a":2}', '{"__proto__":{}}', '{"log":{}}', '{"a":1}x', '{"a":[1, 2]}']) {
      expect(fastJsonRecord(line, plan, NOW, 0), line).toBeUndefined();
    }
  });

  it("declines a nested object with more than 64 keys (its duplicate check is quadratic); takes one with 64", () => {
    const plan = planFastRecord(CONTEXTS[1]!.ctx)!;
    const line = (n: number) => JSON.stringify({ msg: "m", map: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])) });
    expect(check(line(64))).toBe(CONTEXTS.length);
    expect(fastJsonRecord(line(65), plan, NOW, 0)).toBeUndefined();
    // A map dumped into one line: declined at its 65th key, before any quadratic work.
    expect(fastJsonRecord(line(60_000), plan, NOW, 0)).toBeUndefined();
    expect(fastJsonRecord(JSON.stringify({ msg: "m", a: { b: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) } }), plan, NOW, 0)).toBeUndefined();
  });

  it("agrees on 20,000 random lines (seeded)", () => {
    const rand = mulberry32(0xc0ffee);
    let fast = 0;
    for (let i = 0; i < 20_000; i++) fast += check(randomLine(rand));
    expect(fast).toBeGreaterThan(20_000); // most random lines are canonical in most contexts
  });

  it("writes the file's identity into log.file after its path; plans for two files at one path differ", () => {
    const line = '{"level":"info","msg":"request completed","status":200}';
    const before = planFastRecord({ source: "app", filePath: "/var/log/app.log", fileDeviceId: "2049", fileInode: "41" })!;
    const after = planFastRecord({ source: "app", filePath: "/var/log/app.log", fileDeviceId: "2049", fileInode: "42" })!;
    expect(JSON.parse(fastJsonRecord(line, before, NOW, 0)!).log).toEqual({ level: "info", file: { path: "/var/log/app.log", device_id: "2049", inode: "41" }, offset: 0 });
    expect(fastJsonRecord(line, after, NOW, 0)).toContain('"file":{"path":"/var/log/app.log","device_id":"2049","inode":"42"},"offset":0}');
  });

  it("declines enrichment it cannot copy verbatim", () => {
    expect(planFastRecord({ fields: { when: new Date(0) } })).toBeUndefined();
    expect(planFastRecord({ fields: { service: { version: "1" } } })).toBeUndefined();
    expect(planFastRecord({ fields: { n: Number.NaN } })).toBeUndefined();
    expect(planFastRecord({ fields: { "0": "x" } })).toBeUndefined();
  });
});

/** A writer like the channel's: records go into one shared buffer, one after another, at odd positions. */
class TestWriter implements RecordWriter {
  buf = Buffer.alloc(16);
  pos = 3;
  records: string[] = [];
  get recordStart(): number {
    return this.pos + 1;
  }
  reserve(maxBytes: number): Buffer {
    if (this.pos + 1 + maxBytes > this.buf.length) {
      const grown = Buffer.alloc(this.pos + 1 + maxBytes);
      this.buf.copy(grown);
      this.buf = grown;
    }
    return this.buf;
  }
  commit(end: number): void {
    this.records.push(this.buf.toString("utf8", this.recordStart, end));
    this.pos = end;
  }
}

describe("fastJsonRecordBytes", () => {
  it("reads the line in place, between its neighbours' bytes, and appends to what the writer holds", () => {
    const ctx = CONTEXTS[1]!.ctx;
    const plan = planFastRecord(ctx)!;
    const lines = [COMMON[0]!, COMMON[1]!, COMMON[3]!, '{"msg":"crlf","level":"info"}\r'];
    const chunk = Buffer.from("garbage" + lines.join("\n") + "\ntail");
    const w = new TestWriter();
    let at = "garbage".length;
    for (const line of lines) {
      const len = Buffer.byteLength(line);
      expect(fastJsonRecordBytes(chunk, at, at + len, plan, NOW, at, w), line).toBe(true);
      at += len + 1;
    }
    expect(w.records).toEqual(lines.map((l, i) => general(l.replace(/\r$/, ""), ctx, "garbage".length + lines.slice(0, i).reduce((n, x) => n + Buffer.byteLength(x) + 1, 0))));
    // The bytes around each record are untouched: records are separated by exactly the gaps the writer left.
    expect(w.buf.subarray(0, 3).every((b) => b === 0)).toBe(true);
  });

  it("declines invalid UTF-8 (the general path would write U+FFFD) and writes nothing", () => {
    const plan = planFastRecord(CONTEXTS[1]!.ctx)!;
    const w = new TestWriter();
    for (const bad of [
      Buffer.from([...Buffer.from('{"msg":"a'), 0xff, ...Buffer.from('b"}')]),
      Buffer.from([...Buffer.from('{"msg":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}')]), // an encoded surrogate
      Buffer.from([...Buffer.from('{"msg":"'), 0xc3, ...Buffer.from('"}')]), // a sequence cut short
      Buffer.from([...Buffer.from('{"m'), 0xe9, ...Buffer.from('":1}')]), // in a key
    ]) {
      expect(fastJsonRecordBytes(bad, 0, bad.length, plan, NOW, 0, w), bad.toString("hex")).toBe(false);
    }
    expect(w.records).toEqual([]);
  });
});

describe("NetworkSource intake: JSON lines with the peer's client", () => {
  /** Records an Intake ships, through push() (general path) or reserve/commit (fast path, when `writer`). */
  function intake(writer: boolean, fields?: Record<string, unknown>): { line: (text: string) => void; out: string[]; fast: () => number } {
    const out: string[] = [];
    let buf = Buffer.alloc(4096);
    let fast = 0;
    const sink = {
      hasCredit: true,
      hasCreditOver: () => true,
      push: (json: string) => (out.push(json), true),
      ...(writer
        ? {
            recordStart: 0,
            reserve: (max: number) => (buf.length >= max ? buf : (buf = Buffer.alloc(max))),
            commit: (end: number) => {
              fast++;
              out.push(buf.toString("utf8", 0, end));
            },
          }
        : {}),
    };
    const i = new Intake({ source: "net", fields, parser: "json", maxGelfBytes: 1_000 }, sink, newCounters(), () => {});
    i.stamp(NOW);
    const peer = peerOf("::ffff:10.1.2.3", 40_000);
    return {
      line: (text) => {
        const bytes = Buffer.from(`>${text}<`); // the line between its neighbours' bytes, as a read chunk holds it
        i.line("", LineFlags.LAZY_TEXT, peer, bytes, 1, bytes.length - 1);
      },
      out,
      fast: () => fast,
    };
  }

  it("writes the general path's exact bytes (client last), or declines: common, edge and 5,000 random lines", () => {
    const rand = mulberry32(0x5eed);
    const lines = [...COMMON, ...EDGE.filter((l) => !l.endsWith("\r") && !l.includes("\n") && l.trim() !== ""), '{"client":"c","msg":"m"}', '{"client":{"user":"u"},"msg":"m"}', '{"msg":"m","clients":1,"client_":2}'];
    for (let n = 0; n < 5_000; n++) lines.push(randomLine(rand));
    for (const fields of [undefined, { env: "prod", tags: ["a"] }]) {
      const a = intake(true, fields);
      const b = intake(false, fields);
      for (const line of lines) {
        const before = a.fast();
        a.line(line);
        b.line(line);
        expect(a.out.at(-1), line).toBe(b.out.at(-1));
        // Common logger output takes the fast path, so a scanner that always declined could not pass.
        if (COMMON.includes(line) && !(fields !== undefined && line.includes('"env"'))) expect(a.fast(), `declined: ${line}`).toBe(before + 1);
      }
      expect(a.out).toHaveLength(b.out.length);
      expect(a.fast()).toBeGreaterThan(1_000);
      expect(b.fast()).toBe(0);
      expect(JSON.parse(a.out[0]!)).toMatchObject({ client: { ip: "10.1.2.3", port: 40_000 }, service: { name: "net" } });
    }
  });

  it("sends a line naming `client` (the general path merges the sender's value) and enrichment naming it the general way", () => {
    const a = intake(true);
    a.line('{"client":{"user":"u"},"msg":"m"}');
    expect(a.fast()).toBe(0);
    expect(JSON.parse(a.out[0]!)).toMatchObject({ client: { user: "u", ip: "10.1.2.3", port: 40_000 } });
    const withField = intake(true, { client: { team: "x" } });
    withField.line('{"msg":"m"}');
    expect(withField.fast()).toBe(0);
    expect(JSON.parse(withField.out[0]!)).toMatchObject({ client: { team: "x", ip: "10.1.2.3" } });
  });
});

const SHAPE: RandomJsonShape = {
  keys: ["level", "lvl", "msg", "message", "text", "time", "ts", "t", "@timestamp", "date", "severity", "log.level", "pid", "host", "hostname", "req", "a", "b", "id", "stream", "1", "env"],
  strings: ["info", "WARN", "error", "30", "x", 'q"uote', "back\\slash", "new\nline", "tab\t", "ctl\u0001", "é", "😀", "/path/a", "2026-01-15T08:00:00Z", "2026-01-15 08:00:00,5", "1768464000", ""],
  numbers: [0, 1, 30, 50, -1, 1.5, 131.65, 1768464000000, 1768464000.25, 1e21, 1e-7, 0.000001, 2 ** 53 + 2, 123456789012345],
  odds: [0.3, 0.55, 0.62, 0.8],
  maxDepth: 3,
  maxArray: 4,
  maxKeys: 7,
};

function randomLine(rand: () => number): string {
  let text = JSON.stringify(randomObject(rand, SHAPE, 0));
  // Sometimes non-canonical text with the same meaning: spaces, escapes JSON.stringify would not write.
  const r = rand();
  if (r < 0.1) text = text.replace(/,"/g, ', "');
  else if (r < 0.15) text = text.replace(/\//g, "\\/");
  else if (r < 0.2) text = text.replace(/:/, ": ");
  else if (r < 0.23) text = text.slice(0, -1) + ',"level":"info"}'.slice(text === "{}" ? 1 : 0); // maybe a duplicate
  return text;
}
