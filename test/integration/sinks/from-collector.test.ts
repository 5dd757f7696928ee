// Records from a real collector reach the sinks as bytes: GelfSink builds GELF from them for most records
// (gelf-bytes.ts) over UDP, TCP and HTTP (bulk, and single gzip requests), LogstashSink copies them into bodies and
// segments. Every message on the wire must be exactly
// what the general path makes of the record a MemorySink on the same aggregator received.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, FileSource, GelfSink, LogstashSink, MemorySink } from "../../../src/index.js";
import { DEFAULT_GELF_LEVELS, toGelf } from "../../../src/sinks/gelf-message.js";
import { GelfUdpReceiver } from "../../helpers/receivers/gelf-udp.js";
import { HttpReceiver } from "../../helpers/receivers/http.js";
import { StreamReceiver } from "../../helpers/receivers/stream.js";
import { waitFor } from "../../helpers/wait-for.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-gelf-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Line i of a mix: plain request logs (fast path) and shapes the general path builds (multi-line, stacks…). */
function line(i: number): string {
  const base = { level: [30, 40, 50, "debug"][i % 4], time: 1_764_403_286_000 + i, pid: 7, hostname: "web-1", n: i };
  switch (i % 8) {
    case 0:
      return JSON.stringify({ ...base, msg: `request ${i}`, req: { method: "GET", url: `/api/${i}`, headers: { "x-id": `r${i}` } }, res: { statusCode: 200 }, responseTime: i / 8 });
    case 1:
      return JSON.stringify({ ...base, msg: `first line ${i}\n  second line` });
    case 2:
      return JSON.stringify({ ...base, msg: `trailing space ${i} ` });
    case 3:
      return JSON.stringify({ ...base, msg: `naïve 😀 ${i}`, tags: ["a", 'q"'], deep: { a: { b: { c: { d: i } } } }, ok: true, none: null });
    case 4:
      return JSON.stringify({ ...base, msg: `failed ${i}`, error: { type: "Error", message: "boom", stack_trace: "Error: boom\n    at f (x.js:1:1)" } });
    case 5:
      return JSON.stringify({ ...base, msg: "", "a.b": 1, a_b: 2 });
    case 6:
      return `not json ${i}`;
    default:
      return JSON.stringify({ ...base, msg: `quote at the end "`, host: { name: "db-1" } });
  }
}

describe("sinks fed by a collector", () => {
  it("GELF (UDP, TCP, HTTP bulk) and Logstash (TCP, NDJSON, JSON array) send exactly what the general path makes", async () => {
    const total = 4_000;
    const file = join(dir, "app.log");
    writeFileSync(file, Array.from({ length: total }, (_, i) => line(i)).join("\n") + "\n");
    const udp = await GelfUdpReceiver.start({ maxDatagram: 1420 });
    const tcp = await StreamReceiver.start({ delimiter: "\0" });
    const http = await HttpReceiver.start(() => ({ status: 202 }));
    const httpSingle = await HttpReceiver.start(() => ({ status: 202 }));
    const lsTcp = await StreamReceiver.start({ delimiter: "\n" });
    const lsNdjson = await HttpReceiver.start(() => ({ status: 200 }));
    const lsArray = await HttpReceiver.start(() => ({ status: 200 }));
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxRecords: 500, maxWaitMs: 20 } })
      .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20 }))
      .addSink(mem)
      .addSink(new GelfSink({ name: "udp", url: `udp://127.0.0.1:${udp.port}`, host: "fallback" }))
      .addSink(new GelfSink({ name: "tcp", url: `tcp://127.0.0.1:${tcp.port}`, host: "fallback" }))
      .addSink(new GelfSink({ name: "http", url: `http://127.0.0.1:${http.port}/gelf`, host: "fallback", bulk: true }))
      .addSink(new GelfSink({ name: "http-single", url: `http://127.0.0.1:${httpSingle.port}/gelf`, host: "fallback", compression: "gzip" }))
      .addSink(new LogstashSink({ name: "ls-tcp", url: `tcp://127.0.0.1:${lsTcp.port}` }))
      .addSink(new LogstashSink({ name: "ls-ndjson", url: `http://127.0.0.1:${lsNdjson.port}`, format: "ndjson" }))
      .addSink(new LogstashSink({ name: "ls-array", url: `http://127.0.0.1:${lsArray.port}`, format: "json_array" }));
    try {
      await agg.start();
      await mem.waitForCount(total, { timeout: 20_000 });
      const report = await agg.stop({ timeoutMs: 20_000 });
      for (const name of ["udp", "tcp", "http", "http-single", "ls-tcp", "ls-ndjson", "ls-array"]) expect(report.sinks[name], name).toMatchObject({ delivered: total, droppedTotal: 0 });

      const mapping = { host: "fallback", levels: DEFAULT_GELF_LEVELS, flattenDepth: 4 };
      const expected = mem.records.map((r) => JSON.stringify(toGelf(r, mapping))).sort();
      // The general path's shapes are in there: multi-line messages and stack traces make a full_message.
      expect(expected.filter((g) => g.includes('"full_message"'))).toHaveLength(total / 4);
      await waitFor(() => udp.messages.length >= total, { timeout: 10_000, message: () => `UDP receiver decoded ${udp.messages.length}/${total}` });
      expect(udp.errors).toEqual([]);
      expect(udp.messages.map((m) => m.text).sort()).toEqual(expected);
      expect([...tcp.frames].sort()).toEqual(expected);
      const bulkLines = http.requests.flatMap((r) => r.body.toString("utf8").slice(0, -1).split("\n"));
      expect(bulkLines.sort()).toEqual(expected);
      // One message per request, gzip-encoded (the receiver undoes the encoding).
      expect(httpSingle.requests.every((r) => r.headers["content-encoding"] === "gzip")).toBe(true);
      expect(httpSingle.requests.map((r) => r.body.toString("utf8")).sort()).toEqual(expected);

      // Logstash gets each record's canonical JSON as it is: the MemorySink's records, serialized.
      const records = mem.records.map((r) => JSON.stringify(r)).sort();
      expect([...lsTcp.frames].sort()).toEqual(records);
      const ndjson = lsNdjson.requests.map((r) => r.body.toString("utf8"));
      for (const body of ndjson) expect(body.endsWith("\n")).toBe(true);
      expect(ndjson.flatMap((b) => b.slice(0, -1).split("\n")).sort()).toEqual(records);
      const arrays = lsArray.requests.map((r) => JSON.parse(r.body.toString("utf8")) as unknown[]);
      expect(arrays.flat().map((r) => JSON.stringify(r)).sort()).toEqual(records);
    } finally {
      await agg.stop({ timeoutMs: 5_000 }).catch(() => undefined);
      await Promise.all([udp.close(), tcp.close(), http.close(), httpSingle.close(), lsTcp.close(), lsNdjson.close(), lsArray.close()]);
    }
  });
});
