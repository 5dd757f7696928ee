// Hostile input through real collector children (FileSource, plus CommandSource and NetworkSource where the case fits):
// invalid UTF-8, NUL bytes, a 10 MB line, 1M tiny lines, 10k-level JSON, `__proto__` keys, huge numbers, CR/CRLF,
// binary data, a file replaced by a directory, a symlink loop and a FIFO in the glob. Every case proves: no crash
// (no restart, no error event), bounded memory (the sink queue's byte accounting never passes `queue.maxBytes`),
// counters with reasons, and for text the exact records (message and byte offset) that must come out.
// Small corpus files live in test/fixtures/hostile/ (see its README); big ones are generated here into a tmp dir.
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  appendFileSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  Aggregator,
  CommandSource,
  FileSource,
  MemorySink,
  NetworkSource,
  type AggregatorOptions,
  type Batch,
  type DeliveryReport,
  type DropEvent,
  type FileSourceOptions,
  type LogRecord,
  type Sink,
  type SourceDefinition,
} from "../../src/index.js";
import { waitFor } from "../helpers/wait-for.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/hostile/", import.meta.url));
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const root = mkdtempSync(join(tmpdir(), "cla-hostile-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
/** Aggregators started by the current test; stopped afterwards even when the test failed (stop() is idempotent). */
const running: Aggregator[] = [];
afterEach(async () => {
  for (const agg of running.splice(0)) await agg.stop({ timeoutMs: 10_000 });
});

/** Every case runs with a small queue, so "bounded" means something: the accounting must never pass it. */
const QUEUE_MAX_BYTES = 1 << 20;
const REPLACEMENT = "\uFFFD";

// ── harness ───────────────────────────────────────────────────────────────────────────────────────────────────

interface Case {
  agg: Aggregator;
  mem: MemorySink;
  dir: string;
  drops: DropEvent[];
  /** source:error / source:failed / unexpected source:exit, as "event code". A hostile line must cause none. */
  incidents: string[];
  /** Largest `queueBytes` / `queueRecords` of the sink seen while the case ran. */
  peak: { bytes: number; records: number };
  stop(): Promise<DeliveryReport>;
}

/**
 * Starts an aggregator with `sources` and one sink (a MemorySink unless given), watching the sink's queue accounting
 * on every delivery and every few ms (measurement only: nothing waits on it).
 */
async function startCase(
  sources: SourceDefinition[],
  options: { aggregator?: AggregatorOptions; sink?: Sink; dir?: string } = {},
): Promise<Case> {
  const mem = new MemorySink({ name: "mem" });
  const sink = options.sink ?? mem;
  const agg = new Aggregator({
    ...options.aggregator,
    batch: { maxWaitMs: 10, ...options.aggregator?.batch },
    queue: { maxBytes: QUEUE_MAX_BYTES, ...options.aggregator?.queue },
  });
  for (const s of sources) agg.addSource(s);
  agg.addSink(sink);
  const peak = { bytes: 0, records: 0 };
  const sample = (): void => {
    const s = agg.metrics().sinks[sink.name];
    if (s === undefined) return;
    peak.bytes = Math.max(peak.bytes, s.queueBytes);
    peak.records = Math.max(peak.records, s.queueRecords);
  };
  agg.on("delivered", sample);
  const sampler = setInterval(sample, 2);
  sampler.unref();
  const drops: DropEvent[] = [];
  agg.on("drop", (e) => drops.push(e));
  const incidents: string[] = [];
  agg.on("source:error", (e) => incidents.push(`source:error ${e.error.code} ${e.error.message}`));
  agg.on("source:failed", (e) => incidents.push(`source:failed ${e.error.code}`));
  agg.on("source:exit", (e) => {
    if (!e.expected) incidents.push(`source:exit ${e.exitCode ?? e.signal}`);
  });
  running.push(agg);
  await agg.start();
  return {
    agg,
    mem,
    dir: options.dir ?? root,
    drops,
    incidents,
    peak,
    async stop() {
      const report = await agg.stop({ timeoutMs: 10_000 }); // sampled throughout: collectors flush while stopping
      clearInterval(sampler);
      sample();
      return report;
    },
  };
}

/** A FileSource case over a fresh directory that `setup` fills; the glob is `<dir>/<glob>`. */
async function fileCase(
  name: string,
  setup: (dir: string) => void,
  options: Partial<FileSourceOptions> & { glob?: string } = {},
  aggregator?: AggregatorOptions,
): Promise<Case> {
  const dir = mkdtempSync(join(root, `${name}-`));
  setup(dir);
  const { glob = "*.log", ...rest } = options;
  const source = new FileSource({ name, paths: [join(dir, glob)], pollIntervalMs: 20, globIntervalMs: 100, ...rest });
  return startCase([source], { aggregator, dir });
}

/** What every case must show once stopped: no crash, no timeout, nothing pending, queue within its bound and empty. */
function expectHealthy(c: Case, report: DeliveryReport, source: string): void {
  expect(c.incidents).toEqual([]);
  expect(report.timedOut).toBe(false);
  expect(report.sources[source]!.restarts).toBe(0);
  expect(report.sinks.mem!.pending).toBe(0);
  expect(c.peak.bytes).toBeLessThanOrEqual(QUEUE_MAX_BYTES);
  expect(c.agg.metrics().sinks.mem!.queueBytes).toBe(0);
}

/** Start offsets of the `\n`-terminated lines of `buf` (an independent model of what the splitter must report). */
function lineStarts(buf: Buffer): number[] {
  const starts: number[] = [];
  let start = 0;
  for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
    starts.push(start);
    start = nl + 1;
  }
  return starts;
}

const messagesWithOffsets = (mem: MemorySink): Array<[number | undefined, string]> =>
  mem.records.map((r) => [r.log?.offset, r.message]);

/** Every object in `value` has Object.prototype (or Array.prototype) and no own `__proto__` key. */
function assertNoProtoKeys(value: unknown, path = "record"): void {
  if (typeof value !== "object" || value === null) return;
  const proto: unknown = Object.getPrototypeOf(value);
  expect(proto === Object.prototype || proto === Array.prototype, `${path} has a foreign prototype`).toBe(true);
  expect(Object.hasOwn(value, "__proto__"), `${path} has an own __proto__ key`).toBe(false);
  for (const [k, v] of Object.entries(value)) assertNoProtoKeys(v, `${path}.${k}`);
}

function expectNoPollution(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.hasOwn(Object.prototype, "polluted")).toBe(false);
  expect(Object.hasOwn(Array.prototype, "polluted")).toBe(false);
  expect(({} as Record<string, unknown>).message).toBeUndefined();
}

/** Deterministic pseudo-random bytes (xorshift32), so the binary case is the same on every run. */
function pseudoRandomBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });
function isValidUtf8(bytes: Buffer): boolean {
  try {
    fatalUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once the sink holds `n` records; on timeout the message says how far it got. */
const haveRecords = (mem: MemorySink, n: number, what: string, timeout = 30_000): Promise<unknown> =>
  waitFor(() => mem.count >= n, { timeout, message: () => `${n} records (${what}), have ${mem.count}` });

// ── text cases: exact records ─────────────────────────────────────────────────────────────────────────────────

describe("hostile input through a FileSource child", () => {
  it("invalid UTF-8: each bad sequence becomes U+FFFD, the line is flagged and counted, offsets stay exact", async () => {
    const bytes = fixture("invalid-utf8.log");
    const c = await fileCase("utf8", (dir) => writeFileSync(join(dir, "app.log"), bytes));
    await haveRecords(c.mem, 7, "invalid-utf8.log");
    const report = await c.stop();
    const messages = [
      "ok 1",
      `lone continuation ${REPLACEMENT}${REPLACEMENT} end`,
      `overlong slash ${REPLACEMENT}${REPLACEMENT}`,
      `utf8 surrogate ${REPLACEMENT}${REPLACEMENT}${REPLACEMENT}`,
      `cut euro ${REPLACEMENT}`, // E2 82 is one truncated sequence: one replacement (WHATWG "maximal subpart")
      `real replacement char ${REPLACEMENT} is valid`, // a genuine EF BF BD is not an error
      "ok 2 \u00e9\u20ac\u{1F600}",
    ];
    expect(messagesWithOffsets(c.mem)).toEqual(lineStarts(bytes).map((o, i) => [o, messages[i]]));
    expect(report.sources.utf8!.collector.invalidUtf8).toBe(4);
    expect(report.sources.utf8!.linesRead).toBe(7);
    expect(report.sources.utf8!.bytesRead).toBe(bytes.length);
    expectHealthy(c, report, "utf8");
  });

  it("NUL bytes stay in the message (JSON-escaped on the wire), never end a line or corrupt the channel", async () => {
    const bytes = fixture("nul-bytes.log");
    const c = await fileCase("nul", (dir) => writeFileSync(join(dir, "app.log"), bytes));
    await haveRecords(c.mem, 4, "nul-bytes.log");
    const report = await c.stop();
    expect(messagesWithOffsets(c.mem)).toEqual(lineStarts(bytes).map((o, i) => [o, ["a\0b", "\0\0\0", "tail nul\0", "c"][i]]));
    expect(c.mem.json[0]).toContain("a\\u0000b");
    expect(report.sources.nul!.collector.invalidUtf8).toBe(0);
    expectHealthy(c, report, "nul");
  });

  it("CRLF, CR inside a line, a blank CRLF line and a CR-only file (one partial line after the idle timeout)", async () => {
    const endings = fixture("line-endings.log");
    const crOnly = fixture("cr-only.log");
    const c = await fileCase("eol", (dir) => {
      writeFileSync(join(dir, "a-endings.log"), endings);
      writeFileSync(join(dir, "b-cr-only.log"), crOnly);
    });
    // 6 lines from the CRLF file; the CR-only file has no `\n` at all, so it is one unterminated line, emitted after
    // the tailer's partial-line idle timeout (5 s by default; FileSource does not expose it).
    await haveRecords(c.mem, 7, "6 CRLF lines and the CR-only partial line");
    const report = await c.stop();
    const byFile = (suffix: string) =>
      c.mem.records.filter((r) => r.log!.file!.path!.endsWith(suffix)).map((r): [number | undefined, string] => [r.log!.offset, r.message]);
    const starts = lineStarts(endings);
    expect(byFile("a-endings.log")).toEqual([
      [starts[0], "crlf 1"],
      [starts[1], "crlf 2"],
      [starts[2], "lf 3"],
      [starts[3], "cr inside\ra line"], // a lone CR is not a line end (crIsLineEnd is off: progress bars, not old Macs)
      // starts[4] is "\r\n": blank, skipped and counted
      [starts[5], "double cr"], // "double cr\r\r\n": the splitter takes "\r\n", the parser one more trailing "\r"
      [starts[6], "last crlf"],
    ]);
    expect(byFile("b-cr-only.log")).toEqual([[0, "mac 1\rmac 2\rmac 3"]]);
    expect(report.sources.eol!.collector.blankLines).toBe(1);
    expectHealthy(c, report, "eol");
  });

  it("a binary file: every line is shipped as valid JSON text, invalid UTF-8 counted per line, all bytes read", async () => {
    // 256 KiB of pseudo-random bytes ending in a newline; lines are wherever 0x0A happens to fall.
    const bytes = pseudoRandomBytes(256 * 1024, 0xc0ffee);
    bytes[0] = 0x41; // not a BOM
    bytes[bytes.length - 1] = 10;
    // The model: split at \n, drop one \r before it (splitter) and one more trailing \r (parser), decode with
    // replacement, skip blank lines. Written from the documented behaviour, not from the implementation.
    const expected: Array<[number, string]> = [];
    let invalid = 0;
    let blank = 0;
    let start = 0;
    let lines = 0;
    for (let nl = bytes.indexOf(10); nl !== -1; nl = bytes.indexOf(10, start)) {
      let end = nl;
      if (end > start && bytes[end - 1] === 13) end--;
      const content = bytes.subarray(start, end);
      lines++;
      if (!isValidUtf8(content)) invalid++;
      let text = content.toString("utf8");
      if (text.endsWith("\r")) text = text.slice(0, -1);
      if (text.trim() === "") blank++;
      else expected.push([start, text]);
      start = nl + 1;
    }
    const c = await fileCase("bin", (dir) => writeFileSync(join(dir, "blob.log"), bytes));
    await haveRecords(c.mem, expected.length, "binary lines");
    const report = await c.stop();
    expect(c.mem.count).toBe(expected.length);
    const got = messagesWithOffsets(c.mem);
    // Compare in one go, but first the cheap checks so a failure message stays readable.
    expect(got.map(([o]) => o)).toEqual(expected.map(([o]) => o));
    expect(got).toEqual(expected);
    expect(report.sources.bin!.linesRead).toBe(lines);
    expect(report.sources.bin!.bytesRead).toBe(bytes.length);
    expect(report.sources.bin!.collector.invalidUtf8).toBe(invalid);
    expect(report.sources.bin!.collector.blankLines).toBe(blank);
    expect(invalid).toBeGreaterThan(100); // the case really is hostile
    expectHealthy(c, report, "bin");
  });
});

// ── size: one huge line, a million tiny ones ──────────────────────────────────────────────────────────────────

describe("size extremes through a FileSource child", () => {
  it("a 10 MB single line is split at maxLineBytes into counted pieces; the queue stays within its bytes", async () => {
    const size = 10 * 1024 * 1024;
    const maxLineBytes = 256 * 1024;
    const c = await fileCase("huge", (dir) => {
      const line = Buffer.alloc(size + 1, "x");
      line[size] = 10;
      writeFileSync(join(dir, "one.log"), line);
      writeFileSync(join(dir, "two.log"), "after the huge line\n");
    }, { maxLineBytes });
    await haveRecords(c.mem, 41, "40 pieces of 256 KiB and one normal line");
    const report = await c.stop();
    const pieces = c.mem.records.filter((r) => r.log!.file!.path!.endsWith("one.log"));
    expect(pieces).toHaveLength(40);
    expect(pieces.every((r) => /^x+$/.test(r.message) && r.message.length === maxLineBytes)).toBe(true);
    // Offsets are the byte positions of the pieces: nothing skipped, nothing read twice.
    expect(pieces.map((r) => r.log!.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i * maxLineBytes));
    expect(c.mem.records.filter((r) => r.log!.file!.path!.endsWith("two.log")).map((r) => r.message)).toEqual(["after the huge line"]);
    expect(report.sources.huge!.collector.linesSplit).toBe(39); // every piece but the last continues in the next
    expect(report.sources.huge!.bytesRead).toBe(size + 1 + "after the huge line\n".length);
    expect(c.peak.bytes).toBeGreaterThan(0);
    expectHealthy(c, report, "huge");
  });

  it("a piece larger than the sink's queue is dropped as tooLarge (counted, announced), the rest flows", async () => {
    // 2 MiB line, pieces of 1 MiB (the default maxLineBytes) against a 512 KiB queue: both pieces are tooLarge.
    const queueBytes = 512 * 1024;
    const c = await fileCase(
      "toolarge",
      (dir) => writeFileSync(join(dir, "app.log"), "before\n" + "y".repeat(2 * 1024 * 1024) + "\nafter\n"),
      {},
      { queue: { maxBytes: queueBytes } },
    );
    await haveRecords(c.mem, 2, "the two small lines");
    await waitFor(() => c.drops.length >= 2, { timeout: 20_000, message: () => `2 tooLarge drops, have ${c.drops.length}` });
    const report = await c.stop();
    expect(c.mem.messages()).toEqual(["before", "after"]);
    expect(c.drops.map((d) => [d.sink, d.reason, d.count])).toEqual([
      ["mem", "tooLarge", 1],
      ["mem", "tooLarge", 1],
    ]);
    expect(report.sinks.mem).toMatchObject({ received: 4, delivered: 2, dropped: { tooLarge: 2 }, droppedTotal: 2, pending: 0 });
    expect(report.sources.toolarge!.collector.linesSplit).toBe(1);
    expect(c.incidents).toEqual([]);
    expect(c.peak.bytes).toBeLessThanOrEqual(queueBytes);
  });

  it("1M tiny lines arrive complete and in order; queue bytes and records stay within their bounds", async () => {
    const total = 1_000_000;
    const dir = mkdtempSync(join(root, "million-"));
    const parts: string[] = [];
    for (let i = 0; i < total; i++) parts.push(`${i}\n`);
    writeFileSync(join(dir, "many.log"), parts.join(""));
    // A sink that checks the sequence as it goes instead of keeping a million records in the test process.
    let next = 0;
    const outOfOrder: string[] = [];
    const counter: Sink = {
      name: "mem",
      async send(batch: Batch) {
        for (const r of batch.records as readonly LogRecord[]) {
          if (r.message !== String(next) && outOfOrder.length < 10) outOfOrder.push(`expected ${next}, got ${r.message}`);
          next++;
        }
      },
    };
    const maxRecords = 50_000;
    const queueMax = 4 * 1024 * 1024;
    const started = performance.now();
    const c = await startCase(
      [new FileSource({ name: "million", paths: [join(dir, "many.log")], pollIntervalMs: 20 })],
      { sink: counter, aggregator: { queue: { maxBytes: queueMax, maxRecords }, batch: { maxRecords: 5_000, maxWaitMs: 10 } } },
    );
    await waitFor(() => next >= total, { timeout: 100_000, interval: 50, message: () => `${total} lines, have ${next}` });
    const seconds = (performance.now() - started) / 1000;
    const report = await c.stop();
    console.info(
      `[hostile] 1M tiny lines: ${next} delivered in ${seconds.toFixed(1)} s, peak queue ${c.peak.bytes} B / ${c.peak.records} records`,
    );
    expect(outOfOrder).toEqual([]);
    expect(next).toBe(total);
    expect(report.sinks.mem).toMatchObject({ received: total, delivered: total, droppedTotal: 0, pending: 0 });
    expect(report.sources.million!.linesRead).toBe(total);
    expect(c.incidents).toEqual([]);
    expect(c.peak.bytes).toBeGreaterThan(0);
    expect(c.peak.bytes).toBeLessThanOrEqual(queueMax);
    expect(c.peak.records).toBeLessThanOrEqual(maxRecords);
  }, 120_000);
});

// ── JSON: depth, prototype pollution, numbers ─────────────────────────────────────────────────────────────────

/** `{"a":{"a":…{"msg":"leaf"}…}}` with `depth` objects in all. */
const nestedObject = (depth: number, leaf = '{"msg":"leaf"}'): string => '{"a":'.repeat(depth - 1) + leaf + "}".repeat(depth - 1);

function deepCorpus(): { text: string; lines: string[] } {
  const lines = [
    '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000), // 10k levels of objects
    "[".repeat(10_000) + "]".repeat(10_000), // 10k levels of arrays
    nestedObject(1000), // exactly at the parser's limit (MAX_JSON_DEPTH = 1000): parsed
    nestedObject(1001), // one over: shipped as text with error.type "parse"
    '{"msg":"ok after deep"}',
  ];
  return { text: lines.join("\n") + "\n", lines };
}

describe("hostile JSON through a FileSource child (parser json)", () => {
  it("10k-level nesting: shipped as a plain message with error.type parse (too_deep), counted; no stack overflow", async () => {
    const { text, lines } = deepCorpus();
    const c = await fileCase("deep", (dir) => writeFileSync(join(dir, "deep.log"), text), { parser: "json" });
    await haveRecords(c.mem, 5, "deep.log");
    const report = await c.stop();
    const r = c.mem.records;
    expect(r.map((x) => x.message)).toEqual([lines[0], lines[1], lines[2], lines[3], "ok after deep"]);
    const reasons = r.map((x) => (x.error as { message?: string } | undefined)?.message);
    expect(reasons).toEqual(["too_deep", "too_deep", undefined, "too_deep", undefined]);
    // The record at the limit keeps its structure: 999 levels of `a`, then the leaf object.
    let node: Record<string, unknown> = r[2]!;
    let hops = 0;
    while (typeof node.a === "object") {
      node = node.a as Record<string, unknown>;
      hops++;
    }
    expect([hops, node]).toEqual([999, { msg: "leaf" }]);
    expect(report.sources.deep!.parseErrors).toBe(3);
    expectHealthy(c, report, "deep");
  });

  it("__proto__ keys are dropped at every depth: no prototype pollution, records keep Object.prototype", async () => {
    const c = await fileCase("proto", (dir) => copyFileSync(join(FIXTURES, "proto.ndjson"), join(dir, "proto.log")), { parser: "json" });
    await haveRecords(c.mem, 8, "proto.ndjson");
    const report = await c.stop();
    expectNoPollution();
    const records = c.mem.records;
    for (const [i, r] of records.entries()) assertNoProtoKeys(r, `record ${i}`);
    const strip = (r: LogRecord) => {
      const { "@timestamp": _t, host: _h, ...rest } = r;
      return rest;
    };
    const path = join(c.dir, "proto.log");
    const { dev, ino } = statSync(path, { bigint: true });
    const file = { path, device_id: String(dev), inode: String(ino) };
    const starts = lineStarts(fixture("proto.ndjson"));
    const base = (i: number, extra: Record<string, unknown> = {}) => ({
      service: { name: "proto" },
      ...extra,
      log: { ...(extra.log as object | undefined), file, offset: starts[i] },
    });
    expect(records.map(strip)).toEqual([
      { message: "p1", ...base(0) },
      { message: "p2", ...base(1, { nested: { keep: 1 } }) },
      { message: "p3", ...base(2, { arr: [{}, 2] }) },
      { message: "p4", ...base(3) }, // "\u005f_proto__" is the same key once parsed
      { message: "p5", ...base(4, { constructor: { prototype: { polluted: "ctor" } } }) }, // plain data, harmless
      { message: "p6", ...base(5, { log: { logger: "x" } }) },
      { message: "p7", ...base(6) }, // the message and level hidden under __proto__ are not used
      { message: "p8", ...base(7, { prototype: { polluted: "plain key" } }) },
    ]);
    // Plain data keys named like prototype machinery are kept as own data properties, with the normal prototype.
    expect(Object.hasOwn(records[4]!, "constructor")).toBe(true);
    expect(Object.getPrototypeOf(records[4]!)).toBe(Object.prototype);
    expect(report.sources.proto!.parseErrors).toBe(0);
    expectHealthy(c, report, "proto");
  });

  // Regression test for a fixed bug (src/collector/runtime/file.ts, line-pipeline.ts, network intake): the parsers report how many `__proto__`
  // keys they removed (`ParsedLine.droppedKeys`, documented as "counted"), but no collector adds it to its counters,
  // so data is removed from records without a trace, against "nothing is lost silently". Fix: sum
  // `parsed.droppedKeys` into a collector counter (e.g. `droppedKeys`) in every collector's emit path.
  it("the __proto__ keys removed from records are counted in the collector's counters", async () => {
    const c = await fileCase("protocount", (dir) => copyFileSync(join(FIXTURES, "proto.ndjson"), join(dir, "proto.log")), { parser: "json" });
    await haveRecords(c.mem, 8, "proto.ndjson");
    const report = await c.stop();
    // p1, p2, p3, p4, p7 and p8 hold one each, p6 two (under log and service): 8 keys removed.
    const counted = Object.entries(report.sources.protocount!.collector).filter(([k]) => /proto|dropped.?keys/i.test(k));
    expect(counted.map(([, v]) => v)).toEqual([8]);
  });

  it("huge numbers: doubles as JSON.parse gives them (±Infinity → null on the wire), timestamps out of range ignored", async () => {
    const bytes = fixture("huge-numbers.ndjson");
    const c = await fileCase("numbers", (dir) => writeFileSync(join(dir, "n.log"), bytes), { parser: "json" });
    await haveRecords(c.mem, 7, "huge-numbers.ndjson");
    const report = await c.stop();
    const pick = (r: LogRecord, keys: string[]) => Object.fromEntries(keys.map((k) => [k, r[k]]));
    const r = c.mem.records;
    expect(r.map((x) => x.message)).toEqual(["n1", "n2", "n3", "n4", "n5", "n6", "n7"]);
    expect(pick(r[0]!, ["big"])).toEqual({ big: 1.2345678901234568e29 });
    expect(pick(r[1]!, ["inf", "ninf"])).toEqual({ inf: null, ninf: null });
    expect(pick(r[2]!, ["id"])).toEqual({ id: 9007199254740992 }); // precision lost, as documented: log ids as strings
    expect(pick(r[3]!, ["tiny", "negzero"])).toEqual({ tiny: 0, negzero: 0 });
    expect(pick(r[4]!, ["digits"])).toEqual({ digits: null });
    // An infinite level or timestamp is not one: they stay fields, and @timestamp is the arrival time.
    expect(pick(r[5]!, ["level", "timestamp"])).toEqual({ level: null, timestamp: null });
    expect(r[5]!.log!.level).toBeUndefined();
    expect(pick(r[6]!, ["time"])).toEqual({ time: -8640000000000001 });
    for (const x of r) expect(Number.isNaN(Date.parse(x["@timestamp"]))).toBe(false);
    expect(report.sources.numbers!.parseErrors).toBe(0);
    expectHealthy(c, report, "numbers");
  });

  it("JSON escapes: a lone surrogate, NUL and control characters in values and keys survive as valid JSON", async () => {
    const c = await fileCase("escapes", (dir) => copyFileSync(join(FIXTURES, "json-escapes.ndjson"), join(dir, "e.log")), { parser: "json" });
    await haveRecords(c.mem, 3, "json-escapes.ndjson");
    const report = await c.stop();
    expect(c.mem.records.map((r) => r.message)).toEqual(["e1 lone surrogate \ud800 end", "e2 nul \0 and bell \u0007", "e3"]);
    expect(c.mem.records[2]!["k\0ey"]).toBe("v");
    // Well-formed JSON.stringify escapes the lone surrogate: the wire text is valid UTF-8.
    expect(c.mem.json[0]).toContain("\\ud800");
    expectHealthy(c, report, "escapes");
  });
});

// ── the file system being hostile ─────────────────────────────────────────────────────────────────────────────

describe("hostile file system under a FileSource glob", () => {
  it("a file replaced by a directory (and back): counted, never read as a file, the new file read from its start", async () => {
    const c = await fileCase("replaced", (dir) => writeFileSync(join(dir, "app.log"), "before 1\nbefore 2\n"), { rotateWaitMs: 200 });
    await haveRecords(c.mem, 2, "the lines before the swap");
    const app = join(c.dir, "app.log");
    unlinkSync(app);
    mkdirSync(app);
    writeFileSync(join(app, "inside.log"), "not matched: the glob is <dir>/*.log\n");
    const collector = () => c.agg.metrics().sources.replaced!.collector;
    await waitFor(() => (collector().notRegularSkipped ?? 0) >= 1 && (collector().deletions ?? 0) >= 1, {
      timeout: 20_000,
      message: () => `the directory seen as not-regular and the file as deleted: ${JSON.stringify(collector())}`,
    });
    rmSync(app, { recursive: true });
    writeFileSync(app, "after 1\n");
    await haveRecords(c.mem, 3, "the line of the new file");
    const report = await c.stop();
    expect(c.mem.messages()).toEqual(["before 1", "before 2", "after 1"]);
    expect(c.mem.records[2]!.log!.offset).toBe(0);
    expect(report.sources.replaced!.collector.notRegularSkipped).toBe(1);
    expect(report.sources.replaced!.collector.ioErrors).toBe(0);
    expectHealthy(c, report, "replaced");
  });

  /** a/loop → the directory itself (an endless cycle), self.log → itself (ELOOP), and two real files. */
  const loopTree = (dir: string): void => {
    mkdirSync(join(dir, "a"));
    writeFileSync(join(dir, "x.log"), "x 1\nx 2\n");
    writeFileSync(join(dir, "a", "y.log"), "y 1\n");
    symlinkSync("..", join(dir, "a", "loop"));
    symlinkSync("self.log", join(dir, "self.log"));
  };
  /** Waits for `n` more poll cycles of a file source: rescans happen meanwhile (globIntervalMs is 100 ms here). */
  const moreCycles = async (c: Case, source: string, n: number): Promise<void> => {
    const cycles = (): number => c.agg.metrics().sources[source]!.collector.pollCycles ?? 0;
    const target = cycles() + n;
    await waitFor(() => cycles() >= target, { timeout: 20_000, message: () => `${n} more poll cycles of ${source}` });
  };

  it("a symlink loop under `**` (and a self-referencing link): the scan ends, loops counted, every file read once", async () => {
    const c = await fileCase("loop", loopTree, { glob: "**/*.log" });
    await haveRecords(c.mem, 3, "x.log and a/y.log");
    // Give several rescans the chance to read a file twice through the loop.
    await moreCycles(c, "loop", 20);
    const report = await c.stop();
    expect(c.mem.messages().sort()).toEqual(["x 1", "x 2", "y 1"]);
    // At least: the directory cycle at a/loop, and self.log reached directly and through a/loop/.
    expect(report.sources.loop!.collector.symlinkLoops).toBeGreaterThanOrEqual(3);
    expectHealthy(c, report, "loop");
  });

  // Regression test for a fixed bug (src/collector/tail/tailer.ts, #scan): the "reported once per path" memory of problems is pruned after every
  // scan for paths the globs did not return as candidates. A looping (or unreadable) DIRECTORY is never a candidate,
  // so it is forgotten and reported again at every rescan: `symlinkLoops` (and `accessDenied` for an unreadable
  // directory) counts rescans, not loops, and grows for as long as the source runs (+1 per globIntervalMs).
  // Fix: keep the paths reported by scanGlobs' onProblem during this scan in the set that survives the pruning.
  it("a directory symlink loop is counted once, not once per rescan", async () => {
    const c = await fileCase("loopcount", loopTree, { glob: "**/*.log" });
    await haveRecords(c.mem, 3, "x.log and a/y.log");
    await moreCycles(c, "loopcount", 5);
    const before = c.agg.metrics().sources.loopcount!.collector.symlinkLoops;
    await moreCycles(c, "loopcount", 20); // at 20 ms per cycle: about four more rescans
    const report = await c.stop();
    expect(report.sources.loopcount!.collector.symlinkLoops).toBe(before);
    expect(report.sources.loopcount!.collector.symlinkLoops).toBe(3);
  });

  it("a FIFO matched by the glob is skipped without opening it for a read that would block", async () => {
    const c = await fileCase("fifo", (dir) => {
      execFileSync("mkfifo", [join(dir, "pipe.log")]);
      writeFileSync(join(dir, "app.log"), "neighbour 1\n");
    });
    await haveRecords(c.mem, 1, "the regular neighbour");
    // The loop is not stuck on the FIFO: a later append is read.
    appendFileSync(join(c.dir, "app.log"), "neighbour 2\n");
    await haveRecords(c.mem, 2, "the appended line");
    const report = await c.stop();
    expect(c.mem.messages()).toEqual(["neighbour 1", "neighbour 2"]);
    expect(report.sources.fifo!.collector.notRegularSkipped).toBe(1);
    expectHealthy(c, report, "fifo");
  });
});

// ── the same corpus through the other collectors ──────────────────────────────────────────────────────────────

describe("hostile input through CommandSource and NetworkSource", () => {
  it("a command printing invalid UTF-8, NUL, CRLF (plain) and __proto__ JSON (json): exact records, no pollution", async () => {
    const dir = mkdtempSync(join(root, "command-"));
    const text = join(dir, "text.bin");
    writeFileSync(text, Buffer.concat([fixture("invalid-utf8.log"), fixture("nul-bytes.log"), fixture("line-endings.log")]));
    const cat = (name: string, file: string, parser: "plain" | "json") =>
      new CommandSource({
        name,
        command: process.execPath,
        // Prints the file, then stays up: a command that exits is a crash to the supervisor (it is long-lived).
        args: ["-e", "process.stdout.write(require('fs').readFileSync(process.argv[1])); setInterval(() => {}, 1e9)", file],
        parser,
        restart: { maxRestarts: 0 },
      });
    const c = await startCase([cat("cmdtext", text, "plain"), cat("cmdjson", join(FIXTURES, "proto.ndjson"), "json")]);
    await haveRecords(c.mem, 7 + 4 + 6 + 8, "both commands' lines");
    const report = await c.stop();
    expectNoPollution();
    const of = (s: string) => c.mem.records.filter((r) => r.service!.name === s);
    expect(of("cmdtext").map((r) => r.message)).toEqual([
      "ok 1",
      `lone continuation ${REPLACEMENT}${REPLACEMENT} end`,
      `overlong slash ${REPLACEMENT}${REPLACEMENT}`,
      `utf8 surrogate ${REPLACEMENT}${REPLACEMENT}${REPLACEMENT}`,
      `cut euro ${REPLACEMENT}`,
      `real replacement char ${REPLACEMENT} is valid`,
      "ok 2 \u00e9\u20ac\u{1F600}",
      "a\0b",
      "\0\0\0",
      "tail nul\0",
      "c",
      "crlf 1",
      "crlf 2",
      "lf 3",
      "cr inside\ra line",
      "double cr",
      "last crlf",
    ]);
    expect(of("cmdjson").map((r) => r.message)).toEqual(["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"]);
    for (const r of c.mem.records) assertNoProtoKeys(r);
    expect(report.sources.cmdtext!.collector.invalidUtf8).toBe(4);
    expect(report.sources.cmdtext!.collector.blankLines).toBe(1);
    expectHealthy(c, report, "cmdtext");
    expect(report.sources.cmdjson!.restarts).toBe(0);
  });

  it("a TCP sender with __proto__, 10k-level JSON, huge numbers and an oversized line: dropped/counted, no pollution", async () => {
    const maxMessageBytes = 100_000;
    const source = new NetworkSource({ name: "net", listen: "tcp://:0", maxMessageBytes });
    const c = await startCase([source]);
    const { lines: deep } = deepCorpus();
    const payload = Buffer.concat([
      fixture("proto.ndjson"),
      Buffer.from(deep[0]! + "\n"), // 60 KB: under the limit, too deep
      Buffer.from(`{"msg":"${"z".repeat(maxMessageBytes * 2)}"}\n`), // over the limit: dropped, counted
      fixture("huge-numbers.ndjson").subarray(0, fixture("huge-numbers.ndjson").indexOf(10) + 1),
      Buffer.from('{"msg":"last"}\n'),
    ]);
    await new Promise<void>((resolve, reject) => {
      const s = connect(source.addresses[0]!.port, "127.0.0.1", () => s.end(payload));
      s.on("error", reject);
      s.on("close", () => resolve());
    });
    await haveRecords(c.mem, 8 + 1 + 1 + 1, "proto lines, the deep line, n1 and last");
    const report = await c.stop();
    expectNoPollution();
    for (const r of c.mem.records) assertNoProtoKeys(r);
    expect(c.mem.records.map((r) => (r.message.length > 100 ? `${r.message.length} chars` : r.message))).toEqual([
      "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", `${deep[0]!.length} chars`, "n1", "last",
    ]);
    expect(c.mem.records[8]!.error).toEqual({ type: "parse", message: "too_deep" });
    expect(c.mem.records[9]!.big).toBe(1.2345678901234568e29);
    expect(report.sources.net!.collector.oversizedLines).toBe(1);
    expect(report.sources.net!.parseErrors).toBe(1);
    expectHealthy(c, report, "net");
  });
});
