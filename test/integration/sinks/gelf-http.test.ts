// GELF over HTTP on 127.0.0.1: POST to exactly the configured path, one message per request or newline bulk bodies
// under the 64 KiB cap with "\n" after every line, per-record classification, timeouts and credential hygiene.
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { LogRecordInput } from "../../../src/record.js";
import { GelfSink, type GelfSinkOptions } from "../../../src/sinks/gelf.js";
import { DEFAULT_GELF_LEVELS, toGelf } from "../../../src/sinks/gelf-message.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { outcomesOf } from "../../helpers/receivers/deliver-all.js";
import { HttpReceiver, type Responder } from "../../helpers/receivers/http.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const signal = (): AbortSignal => new AbortController().signal;
const makeRecords = (n: number, from = 0): LogRecordInput[] =>
  Array.from({ length: n }, (_x, i) => ({
    "@timestamp": "2024-05-01T12:00:00.250Z",
    message: `gelf ${from + i}`,
    log: { level: "error" },
    n: from + i,
  }));
const mapping = { host: "http-host", levels: DEFAULT_GELF_LEVELS, flattenDepth: 4 };

async function start(responder: Responder = () => ({ status: 202 }), o: Partial<GelfSinkOptions> = {}) {
  const rx = await HttpReceiver.start(responder);
  const sink = new GelfSink({ name: "gelf-http", url: `http://127.0.0.1:${rx.port}/gelf`, host: "http-host", requestTimeoutMs: 5_000, ...o });
  cleanups.push(() => rx.close(), () => sink.close());
  return { rx, sink };
}

describe("GelfSink over HTTP", () => {
  it("one message per request to exactly /gelf, 202 = delivered", async () => {
    const { rx, sink } = await start();
    const batch = createBatch(makeRecords(1_000));
    expect(await sink.send(batch, { signal: signal() })).toEqual({ status: "delivered" });
    expect(rx.requests).toHaveLength(1_000);
    const expected = new Set(batch.records.map((r) => JSON.stringify(toGelf(r, mapping))));
    for (const req of rx.requests) {
      expect(req.method).toBe("POST");
      expect(req.url).toBe("/gelf");
      expect(req.headers["content-type"]).toBe("application/json");
      expect(expected.delete(req.body.toString("utf8"))).toBe(true);
    }
    expect(expected.size).toBe(0);
    expect(sink.metrics()).toMatchObject({ requests: 1_000, status_202: 1_000 });
  });

  it("defaults the path to /gelf when the URL has none", async () => {
    const { rx } = await start();
    const sink = new GelfSink({ name: "g2", url: `http://127.0.0.1:${rx.port}` });
    cleanups.push(() => sink.close());
    await sink.send(createBatch(makeRecords(1)), { signal: signal() });
    expect(rx.requests[0]!.url).toBe("/gelf");
  });

  it.each([["none" as const, 100_000], ["gzip" as const, 20_000]])("bulk (%s): %i records, bodies ≤ maxBodyBytes, \\n after every line", async (compression, total) => {
    const { rx, sink } = await start(undefined, { bulk: true, compression });
    for (let b = 0; b < total; b += 5_000) {
      expect(await sink.send(createBatch(makeRecords(5_000, b)), { signal: signal() })).toEqual({ status: "delivered" });
    }
    const seen = new Set<number>();
    for (const req of rx.requests) {
      const text = req.body.toString("utf8");
      expect(req.body.length).toBeLessThanOrEqual(65_536);
      expect(text.endsWith("\n")).toBe(true);
      expect(text.includes("\n\n")).toBe(false);
      if (compression === "gzip") expect(req.headers["content-encoding"]).toBe("gzip");
      for (const line of text.slice(0, -1).split("\n")) {
        const m = JSON.parse(line) as { _n: number; version: string; level: number; timestamp: number };
        expect(m.version).toBe("1.1");
        seen.add(m._n);
      }
    }
    expect(seen.size).toBe(total);
    expect(rx.requests.length).toBeGreaterThan(total / 5_000); // really split under the 64 KiB cap
  });

  it("per-record outcomes in single mode: each request in flight classified on its own", async () => {
    const { sink } = await start((req) => {
      const n = (JSON.parse(req.body.toString("utf8")) as { _n: number })._n;
      return n === 1 ? { status: 401 } : n === 2 ? { status: 503, headers: { "retry-after": "2" } } : n === 3 ? { status: 400 } : { status: 202 };
    });
    // Five records, eight requests at a time: all are in flight before any answer, so none is held back.
    const outcomes = outcomesOf(await sink.send(createBatch(makeRecords(5)), { signal: signal() }), 5);
    expect(outcomes.map((o) => o.status)).toEqual(["delivered", "retry", "retry", "rejected", "delivered"]);
    expect(outcomes[1]).toMatchObject({ reason: "http_401", error: { code: "ERR_SINK_AUTH", statusCode: 401 } });
    expect(outcomes[2]).toMatchObject({ reason: "http_503", retryAfterMs: 2000 });
    expect(outcomes[3]).toMatchObject({ reason: "http_400", error: { code: "ERR_SINK_REJECTED" } });
  });

  it("single mode against a 503: stops after the requests in flight, one whole-batch retry, then probes with one request", async () => {
    let answer: ReturnType<Responder> = { status: 503, headers: { "retry-after": "3" } };
    const { rx, sink } = await start(() => answer, { concurrency: 4 });
    const first = await sink.send(createBatch(makeRecords(100)), { signal: signal() });
    // One outcome for the batch (not { outcomes }): the engine backs the whole sink off.
    expect(first).toMatchObject({ status: "retry", reason: "http_503", retryAfterMs: 3000, error: { code: "ERR_SINK_SEND", statusCode: 503 } });
    expect(rx.requests).toHaveLength(4); // the four in flight when the first 503 came, not 100
    // The next batch, while the sink is unwell, sends one request first.
    expect(await sink.send(createBatch(makeRecords(100, 100)), { signal: signal() })).toMatchObject({ status: "retry", reason: "http_503" });
    expect(rx.requests).toHaveLength(5);
    // Back up: the probe gets through and the rest follows.
    answer = { status: 202 };
    expect(await sink.send(createBatch(makeRecords(100, 200)), { signal: signal() })).toEqual({ status: "delivered" });
    expect(rx.requests).toHaveLength(105);
  });

  it("single mode: 401 and 403 retry the whole batch with ERR_SINK_AUTH, never reject", async () => {
    for (const status of [401, 403]) {
      const { rx, sink } = await start(() => ({ status, body: "denied" }), { concurrency: 2 });
      const result = await sink.send(createBatch(makeRecords(50)), { signal: signal() });
      expect(result).toMatchObject({ status: "retry", reason: `http_${status}`, error: { code: "ERR_SINK_AUTH", statusCode: status } });
      expect(rx.requests).toHaveLength(2);
    }
  });

  it("a refused connection: one whole-batch retry (network_error) after the first attempts", async () => {
    const { rx, sink } = await start(undefined, { concurrency: 3 });
    await rx.close();
    const result = await sink.send(createBatch(makeRecords(40)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "network_error", error: { code: "ERR_SINK_SEND" } });
    expect(sink.metrics().requests).toBe(3);
  });

  it("bulk against a 503: one whole-batch retry, no body sent after the failure", async () => {
    const { rx, sink } = await start(() => ({ status: 503 }), { bulk: true, concurrency: 2, maxBodyBytes: 4_096 });
    const result = await sink.send(createBatch(makeRecords(1_000)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "http_503" });
    expect(rx.requests).toHaveLength(2); // of about 40 bodies
  });

  it("bulk: a 413 halves the body until it fits, each message delivered once; one message still too large → http_413", async () => {
    const limit = 3_000;
    const { rx, sink } = await start((req) => (req.body.length > limit ? { status: 413 } : { status: 202 }), { bulk: true });
    const records = makeRecords(300);
    records[123] = { ...records[123]!, message: `big ${"z".repeat(4_000)}` };
    const outcomes = outcomesOf(await sink.send(createBatch(records), { signal: signal() }), 300);
    expect(outcomes.filter((o) => o.status === "delivered")).toHaveLength(299);
    expect(outcomes[123]).toMatchObject({ status: "rejected", reason: "http_413", error: { code: "ERR_SINK_REJECTED", statusCode: 413 } });
    const seen = rx.requests
      .filter((r) => r.body.length <= limit)
      .flatMap((r) => r.body.toString("utf8").slice(0, -1).split("\n").map((l) => (JSON.parse(l) as { _n: number })._n));
    expect(seen).toHaveLength(299);
    expect(new Set(seen).size).toBe(299);
    expect(seen).not.toContain(123);
    expect(sink.metrics().requests_split_413).toBeGreaterThan(0);
  });

  it("a server that never answers → retry (timeout) for every record, no hang", async () => {
    const { sink } = await start(() => "hang", { requestTimeoutMs: 150 });
    const outcomes = outcomesOf(await sink.send(createBatch(makeRecords(3)), { signal: signal() }), 3);
    for (const o of outcomes) expect(o).toMatchObject({ status: "retry", reason: "timeout", error: { code: "ERR_SINK_TIMEOUT" } });
  });

  it("a message larger than maxBodyBytes is truncated to fit (full_message first)", async () => {
    const { rx, sink } = await start(undefined, { maxBodyBytes: 4_096 });
    const r = { "@timestamp": "2024-05-01T12:00:00Z", message: "head\n" + "x".repeat(20_000) };
    expect(await sink.send(createBatch([r]), { signal: signal() })).toEqual({ status: "delivered" });
    expect(rx.requests[0]!.body.length).toBeLessThanOrEqual(4_096);
    expect(JSON.parse(rx.requests[0]!.body.toString("utf8"))).toMatchObject({ short_message: "head", _gelf_truncated: "true" });
    expect(sink.metrics().truncated).toBe(1);
  });

  it("credentials in the URL: basic auth on the wire, never in outcomes, errors or metrics", async () => {
    let answer: ReturnType<Responder> = { status: 401 };
    const { rx } = await start(() => answer);
    const sink = new GelfSink({ name: "g-auth", url: `http://user:secret@127.0.0.1:${rx.port}/gelf`, requestTimeoutMs: 150 });
    cleanups.push(() => sink.close());
    const results = [await sink.send(createBatch(makeRecords(1)), { signal: signal() })];
    answer = "hang";
    results.push(await sink.send(createBatch(makeRecords(1)), { signal: signal() }));
    await rx.close();
    results.push(await sink.send(createBatch(makeRecords(1)), { signal: signal() }));
    expect(rx.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from("user:secret").toString("base64")}`);
    expect(outcomesOf(results[0], 1)[0]).toMatchObject({ status: "retry", reason: "http_401", error: { code: "ERR_SINK_AUTH" } });
    const dump = inspect(results, { depth: 20 }) + JSON.stringify(results) + JSON.stringify(sink.metrics());
    expect(dump).toContain("127.0.0.1");
    expect(dump).not.toContain("secret");
  });
});
