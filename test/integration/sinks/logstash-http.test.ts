// Logstash http input on 127.0.0.1: one request per batch (NDJSON or JSON array), status classification, timeouts,
// basic auth that never leaks, and HTTPS verification.
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { LogRecordInput } from "../../../src/record.js";
import { LogstashSink, type LogstashSinkOptions } from "../../../src/sinks/logstash.js";
import type { SendResult } from "../../../src/sinks/sink.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { outcomesOf } from "../../helpers/receivers/deliver-all.js";
import { HttpReceiver, type Responder } from "../../helpers/receivers/http.js";
import { testPki } from "../../helpers/tls.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const signal = (): AbortSignal => new AbortController().signal;

/**
 * The events Logstash's `http` input makes of a body with its default settings (see protocols.md §3.1): the MIME type
 * of Content-Type is looked up in `additional_codecs` (by default only application/json → json), else the `plain`
 * codec makes the whole body one event. The json codec makes one event per element of a top-level array.
 */
function stockHttpInputEvents(contentType: string | undefined, body: string): Array<Record<string, unknown>> {
  const mime = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (mime !== "application/json") return [{ message: body }];
  const parsed = JSON.parse(body) as unknown;
  return Array.isArray(parsed) ? (parsed as Array<Record<string, unknown>>) : [parsed as Record<string, unknown>];
}
const makeRecords = (n: number, from = 0): LogRecordInput[] =>
  Array.from({ length: n }, (_x, i) => ({ "@timestamp": "2024-05-01T12:00:00.000Z", message: `event ${from + i}`, n: from + i }));

async function start(responder?: Responder, o: Partial<LogstashSinkOptions> = {}, tlsServer = false) {
  const pki = testPki();
  const rx = await HttpReceiver.start(responder, tlsServer ? { key: pki.serverKey, cert: pki.serverCert } : undefined);
  const sink = new LogstashSink({ name: "logstash-http", url: `${tlsServer ? "https" : "http"}://127.0.0.1:${rx.port}`, requestTimeoutMs: 5_000, ...o });
  cleanups.push(() => rx.close(), () => sink.close());
  return { rx, sink };
}

describe("LogstashSink over HTTP", () => {
  it("by default a batch is one JSON array, which a stock http input (no additional_codecs) splits into one event per record", async () => {
    const { rx, sink } = await start();
    const batch = createBatch(makeRecords(50));
    expect(await sink.send(batch, { signal: signal() })).toEqual({ status: "delivered" });
    const req = rx.requests[0]!;
    expect(req.headers["content-type"]).toBe("application/json");
    expect(stockHttpInputEvents(req.headers["content-type"], req.body.toString("utf8"))).toEqual(batch.records);
  });

  it("ndjson is what a stock http input would take as one event: it needs application/x-ndjson mapped to json_lines", async () => {
    const { rx, sink } = await start(undefined, { format: "ndjson" });
    expect(await sink.send(createBatch(makeRecords(3)), { signal: signal() })).toEqual({ status: "delivered" });
    const req = rx.requests[0]!;
    const events = stockHttpInputEvents(req.headers["content-type"], req.body.toString("utf8"));
    expect(events).toHaveLength(1);
    expect(events[0]!.message).toBe(req.body.toString("utf8"));
  });

  it("100k records: one NDJSON request per batch, every line terminated, canonical JSON reused", async () => {
    const { rx, sink } = await start(undefined, { format: "ndjson" });
    const batches: ReturnType<typeof createBatch>[] = [];
    for (let b = 0; b < 100_000; b += 5_000) batches.push(createBatch(makeRecords(5_000, b)));
    for (const batch of batches) expect(await sink.send(batch, { signal: signal() })).toEqual({ status: "delivered" });
    expect(rx.requests).toHaveLength(20);
    rx.requests.forEach((req, k) => {
      expect(req.method).toBe("POST");
      expect(req.url).toBe("/");
      expect(req.headers["content-type"]).toBe("application/x-ndjson");
      expect(req.body.toString("utf8")).toBe(batches[k]!.json.join("\n") + "\n");
    });
    const ns = rx.requests.flatMap((r) => r.body.toString("utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as { n: number }).n));
    expect(new Set(ns).size).toBe(100_000);
    expect(sink.metrics()).toMatchObject({ requests: 20, status_200: 20 });
  });

  it("json_array format with gzip Content-Encoding", async () => {
    const { rx } = await start();
    const s2 = new LogstashSink({ name: "ls", url: `http://127.0.0.1:${rx.port}/in?x=1`, format: "json_array", compression: "gzip" });
    cleanups.push(() => s2.close());
    const batch = createBatch(makeRecords(100));
    expect(await s2.send(batch, { signal: signal() })).toEqual({ status: "delivered" });
    const req = rx.requests[0]!;
    expect(req.url).toBe("/in?x=1");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers["content-encoding"]).toBe("gzip");
    expect(req.wireBytes).toBeLessThan(req.body.length);
    expect(JSON.parse(req.body.toString("utf8"))).toEqual(batch.records);
  });

  it.each<[number, string, string, number | undefined]>([
    [200, "delivered", "", undefined],
    [204, "delivered", "", undefined],
    [429, "retry", "http_429", 3000],
    [500, "retry", "http_500", undefined],
    [503, "retry", "http_503", 3000],
    [400, "rejected", "http_400", undefined],
    [401, "retry", "http_401", undefined],
    [403, "retry", "http_403", undefined],
  ])("status %i → %s", async (status, outcome, reason, retryAfterMs) => {
    const { sink } = await start(() => ({ status, headers: status === 429 || status === 503 ? { "retry-after": "3" } : ({} as Record<string, string>), body: "nope" }));
    const result = (await sink.send(createBatch(makeRecords(3)), { signal: signal() })) as { status: string; reason?: string; retryAfterMs?: number; error?: { code: string; statusCode: number } };
    expect(result.status).toBe(outcome);
    if (outcome !== "delivered") {
      expect(result.reason).toBe(reason);
      expect(result.retryAfterMs).toBe(retryAfterMs);
      expect(result.error?.statusCode).toBe(status);
      expect(result.error?.code).toBe(status === 401 || status === 403 ? "ERR_SINK_AUTH" : outcome === "retry" ? "ERR_SINK_SEND" : "ERR_SINK_REJECTED");
    }
  });

  it("413: halves the batch until each part fits, every record delivered once; later batches are cut below the learned size", async () => {
    const limit = 20_000;
    const { rx, sink } = await start((req) => (req.body.length > limit ? { status: 413, body: "payload too large" } : { status: 200, body: "ok" }), { format: "ndjson" });
    const big = (n: number, from: number): LogRecordInput[] => makeRecords(n, from).map((r) => ({ ...r, pad: "x".repeat(400) }));
    // 100 records of ~480 bytes: 48 KB, more than twice the limit.
    expect(await sink.send(createBatch(big(100, 0)), { signal: signal() })).toEqual({ status: "delivered" });
    const refusedFirst = rx.requests.filter((r) => r.body.length > limit).length;
    expect(refusedFirst).toBeGreaterThan(0);
    expect(await sink.send(createBatch(big(100, 100)), { signal: signal() })).toEqual({ status: "delivered" });
    // The second batch was cut by the ceiling the first one taught: no further 413.
    expect(rx.requests.filter((r) => r.body.length > limit).length).toBe(refusedFirst);
    const ns = rx.requests
      .filter((r) => r.body.length <= limit)
      .flatMap((r) => r.body.toString("utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as { n: number }).n));
    expect(ns).toHaveLength(200);
    expect(new Set(ns).size).toBe(200);
    expect(sink.metrics().requests_split_413).toBeGreaterThan(0);
  });

  it("413 on json_array bodies: each half is a valid array of its own records", async () => {
    const { rx } = await start((req) => (req.body.length > 2_000 ? { status: 413 } : { status: 200 }));
    const s2 = new LogstashSink({ name: "ls-array", url: `http://127.0.0.1:${rx.port}`, format: "json_array", compression: "gzip" });
    cleanups.push(() => s2.close());
    const batch = createBatch(makeRecords(64));
    expect(await s2.send(batch, { signal: signal() })).toEqual({ status: "delivered" });
    const accepted = rx.requests.filter((r) => r.body.length <= 2_000).flatMap((r) => JSON.parse(r.body.toString("utf8")) as unknown[]);
    expect(accepted).toEqual(batch.records);
  });

  it("413 for a single record still too large: only it is rejected (http_413), its neighbours delivered", async () => {
    const { rx, sink } = await start((req) => (req.body.length > 5_000 ? { status: 413 } : { status: 200 }), { format: "ndjson" });
    const records = makeRecords(8);
    records[5] = { ...records[5]!, pad: "y".repeat(6_000) };
    const outcomes = outcomesOf(await sink.send(createBatch(records), { signal: signal() }), 8);
    expect(outcomes.map((o) => o.status)).toEqual(["delivered", "delivered", "delivered", "delivered", "delivered", "rejected", "delivered", "delivered"]);
    expect(outcomes[5]).toMatchObject({ reason: "http_413", error: { code: "ERR_SINK_REJECTED", statusCode: 413 } });
    const ns = rx.requests.filter((r) => r.body.length <= 5_000).flatMap((r) => r.body.toString("utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as { n: number }).n));
    expect(ns.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 6, 7]);
  });

  it("413 then 503 on the first half: the second half is not sent, and the whole batch gets one retry", async () => {
    const { rx, sink } = await start((req) => (req.body.length > 1_000 ? { status: 413 } : { status: 503, headers: { "retry-after": "7" } }));
    const result = await sink.send(createBatch(makeRecords(20)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "http_503", retryAfterMs: 7_000 });
    // The whole batch (413), then halves until a part is small enough to be answered 503: nothing after that.
    expect(rx.requests.at(-1)!.body.length).toBeLessThanOrEqual(1_000);
    expect(rx.requests.filter((r) => r.body.length <= 1_000)).toHaveLength(1);
  });

  it("a server that never answers → retry (timeout) instead of a hang", async () => {
    const { sink } = await start(() => "hang", { requestTimeoutMs: 150 });
    const result = await sink.send(createBatch(makeRecords(2)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "timeout", error: { code: "ERR_SINK_TIMEOUT" } });
  });

  it("an aborted send → retry (aborted)", async () => {
    const { sink } = await start(() => "hang");
    const ac = new AbortController();
    const pending = sink.send(createBatch(makeRecords(2)), { signal: ac.signal });
    ac.abort();
    expect(await pending).toMatchObject({ status: "retry", reason: "aborted" });
  });

  it("a refused connection → retry (network_error)", async () => {
    const { rx, sink } = await start();
    await rx.close();
    expect(await sink.send(createBatch(makeRecords(2)), { signal: signal() })).toMatchObject({ status: "retry", reason: "network_error", error: { code: "ERR_SINK_SEND" } });
  });

  it("credentials from the URL are sent as basic auth and never appear in outcomes, errors or metrics", async () => {
    let answer: ReturnType<Responder> = { status: 401, body: "bad credentials" };
    const { rx } = await start(() => answer);
    const sink = new LogstashSink({ name: "ls-auth", url: `http://user:secret@127.0.0.1:${rx.port}/`, requestTimeoutMs: 150 });
    cleanups.push(() => sink.close());
    const results: SendResult[] = [];
    results.push(await sink.send(createBatch(makeRecords(1)), { signal: signal() }));
    answer = "hang";
    results.push(await sink.send(createBatch(makeRecords(1)), { signal: signal() }));
    answer = { status: 200 };
    results.push(await sink.send(createBatch(makeRecords(1)), { signal: signal() }));
    expect(rx.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from("user:secret").toString("base64")}`);
    expect(results[0]).toMatchObject({ status: "retry", reason: "http_401", error: { code: "ERR_SINK_AUTH" } });
    expect(results[1]).toMatchObject({ status: "retry", reason: "timeout" });
    expect(results[2]).toEqual({ status: "delivered" });
    await rx.close();
    results.push(await sink.send(createBatch(makeRecords(1)), { signal: signal() }));
    const dump = inspect(results, { depth: 20 }) + JSON.stringify(results) + JSON.stringify(sink.metrics()) +
      results.map((r) => String((outcomesOf(r, 1)[0] as { error?: Error }).error?.stack ?? "")).join("\n");
    expect(dump).toContain("127.0.0.1"); // the scan really covers the messages
    expect(dump).not.toContain("secret");
    expect(dump).not.toContain(Buffer.from("user:secret").toString("base64"));
  });

  it("the auth option works like URL userinfo", async () => {
    const { rx } = await start();
    const sink = new LogstashSink({ name: "ls-auth2", url: `http://127.0.0.1:${rx.port}`, auth: { username: "a", password: "b" } });
    cleanups.push(() => sink.close());
    await sink.send(createBatch(makeRecords(1)), { signal: signal() });
    expect(rx.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from("a:b").toString("base64")}`);
  });

  it("HTTPS: verifies with the CA; without it → retry carrying ERR_TLS", async () => {
    const pki = testPki();
    const { rx, sink } = await start(undefined, { tls: { ca: pki.ca } }, true);
    expect(await sink.send(createBatch(makeRecords(5)), { signal: signal() })).toEqual({ status: "delivered" });
    expect(rx.requests).toHaveLength(1);
    const bad = new LogstashSink({ name: "ls-noca", url: `https://127.0.0.1:${rx.port}` });
    cleanups.push(() => bad.close());
    const result = await bad.send(createBatch(makeRecords(5)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "tls_error", error: { code: "ERR_TLS" } });
    expect(rx.requests).toHaveLength(1);
  });
});
