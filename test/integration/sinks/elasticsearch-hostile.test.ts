// ElasticsearchSink against malformed and hostile answers, the open() cluster check, close(), and credential redaction.
import { inspect } from "node:util";
import { Client } from "@elastic/elasticsearch";
import { afterEach, describe, expect, it } from "vitest";
import { ElasticsearchSink } from "../../../src/sinks/elasticsearch.js";
import type { ElasticsearchSinkOptions } from "../../../src/sinks/elasticsearch.js";
import type { RecordOutcome } from "../../../src/sinks/sink.js";
import { FakeElasticsearch } from "../../helpers/fake-elasticsearch.js";
import type { RequestBehavior } from "../../helpers/fake-elasticsearch.js";
import { waitFor } from "../../helpers/wait-for.js";
import { deliverAll, sendRecords, ts } from "./elasticsearch-helpers.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function setup(options: Partial<ElasticsearchSinkOptions> = {}, fakeOptions = {}) {
  const fake = await FakeElasticsearch.start(fakeOptions);
  const sink = new ElasticsearchSink({ name: "es", node: fake.url, index: "logs", ...options } as ElasticsearchSinkOptions);
  cleanup.push(() => fake.close(), () => sink.close());
  return { fake, sink };
}

const code = (o: RecordOutcome) => ((o as { error?: { code?: string } }).error)?.code;
const records = Array.from({ length: 4 }, (_, i) => ({ "@timestamp": ts(i), message: `m${i}`, note: "payload-marker" }));

describe("ElasticsearchSink: malformed answers", () => {
  it.each<[string, RequestBehavior, string]>([
    ["a non-JSON 200", { kind: "raw", body: "<html>proxy error</html>", contentType: "text/html" }, "ERR_SINK_PROTOCOL"],
    ["invalid JSON with a JSON content type", { kind: "raw", body: "{\"errors\":fal", contentType: "application/json" }, "ERR_SINK_PROTOCOL"],
    ["a 200 without the product header", { kind: "raw", body: "{}", contentType: "application/json", product: false }, "ERR_SINK_PROTOCOL"],
    ["a wrong item count", { kind: "mutate", mutate: (r) => ({ ...r, items: r.items.slice(1) }) }, "ERR_SINK_PROTOCOL"],
    ["errors:true with no items", { kind: "mutate", mutate: () => ({ took: 1, errors: true }) }, "ERR_SINK_PROTOCOL"],
    ["a reset connection", { kind: "reset" }, "ERR_SINK_SEND"],
  ])("retries the whole batch on %s, and a resend stores each record once", async (_label, behavior, expected) => {
    const { fake, sink } = await setup({ id: "deterministic" });
    fake.behaviors.push(behavior);
    const outcomes = await sendRecords(sink, records);
    expect(outcomes.map((o) => o.status)).toEqual(["retry", "retry", "retry", "retry"]);
    expect(code(outcomes[0]!)).toBe(expected);
    // Some of these answers came after the server stored the documents: the deterministic ids make the resend a 409.
    const { rejected } = await deliverAll(sink, records);
    expect(rejected).toEqual([]);
    expect(fake.documentCount).toBe(4);
    expect(new Set(fake.stored.map((op) => op.doc?.message)).size).toBe(fake.stored.length);
    if (expected === "ERR_SINK_PROTOCOL") expect(sink.metrics().protocol_errors + (sink.metrics().status_protocol ?? 0)).toBeGreaterThan(0);
  });

  it.each<[string, RequestBehavior]>([
    ["never answers", { kind: "hang" }],
    ["trickles one byte at a time (slow loris)", { kind: "drip", intervalMs: 20 }],
  ])("gives up on a server that %s once requestTimeoutMs passes", async (_label, behavior) => {
    const { fake, sink } = await setup({ requestTimeoutMs: 300 });
    fake.behaviors.push(behavior);
    const outcomes = await sendRecords(sink, records);
    expect(outcomes[0]).toMatchObject({ status: "retry", reason: "timeout" });
    expect(code(outcomes[0]!)).toBe("ERR_SINK_TIMEOUT");
    await deliverAll(sink, records);
    expect(fake.stored).toHaveLength(4);
  });
});

describe("ElasticsearchSink: open() and close()", () => {
  it("checks the cluster once and passes", async () => {
    const { fake, sink } = await setup();
    await sink.open();
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /"]);
    expect(sink.lastOpenError).toBeUndefined();
  });

  it("fails with ERR_SINK_AUTH when GET / answers 401", async () => {
    const { sink } = await setup({ auth: { username: "u", password: "wrong" } }, { authorization: "Basic only-this" });
    await expect(sink.open()).rejects.toMatchObject({ code: "ERR_SINK_AUTH", statusCode: 401, retryable: false });
  });

  it("fails with ERR_SINK_AUTH when GET / answers 403, and names the way out for write-only API keys", async () => {
    const { createServer } = await import("node:http");
    const denying = createServer((_req, res) => {
      res.writeHead(403, { "content-type": "application/json" });
      res.end('{"error":{"type":"security_exception","reason":"action [cluster:monitor/main] is unauthorized"},"status":403}');
    });
    await new Promise<void>((r) => denying.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => denying.close(() => r())));
    const sink = new ElasticsearchSink({ name: "es", node: `http://127.0.0.1:${(denying.address() as { port: number }).port}`, index: "logs" });
    cleanup.push(() => sink.close());
    const error = await sink.open().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ERR_SINK_AUTH", statusCode: 403, retryable: false });
    expect((error as Error).message).toContain("verifyOnOpen: false");
  });

  it("reports a foreign product on GET / as ERR_SINK_OPEN", async () => {
    const { createServer } = await import("node:http");
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"version":{"distribution":"opensearch","number":"2.11.0"}}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const sink = new ElasticsearchSink({ name: "es", node: `http://127.0.0.1:${port}`, index: "logs" });
    cleanup.push(() => sink.close());
    await expect(sink.open()).rejects.toMatchObject({ code: "ERR_SINK_OPEN", retryable: false });
  });

  it("skips the check with verifyOnOpen: false", async () => {
    const { fake, sink } = await setup({ verifyOnOpen: false });
    await sink.open();
    expect(fake.requests).toHaveLength(0);
  });

  it("closes a client it created, but not one it was given", async () => {
    const fake = await FakeElasticsearch.start();
    cleanup.push(() => fake.close());
    const client = new Client({ node: fake.url });
    cleanup.push(() => client.close());
    const sink = new ElasticsearchSink({ name: "es", client, index: "logs" });
    await sendRecords(sink, [{ message: "via user client" }]);
    await sink.close();
    const again = await sink.send((await import("../../../src/testing/create-batch.js")).createBatch([{ message: "x" }]), { signal: new AbortController().signal });
    expect(again).toMatchObject({ status: "retry", reason: "closed" });
    // The user's client still works after the sink closed.
    await expect(client.info()).resolves.toMatchObject({ cluster_name: "fake-cluster" });
    expect(fake.stored).toHaveLength(1);
  });

  it("close() ends a bulk request the server never answers: its records come back as retry, not after requestTimeoutMs", async () => {
    const { fake, sink } = await setup({ requestTimeoutMs: 120_000, verifyOnOpen: false });
    fake.behaviors.push({ kind: "hang" });
    const sent = sendRecords(sink, records);
    await waitFor(() => fake.bulkRequests === 1, { message: "the bulk request in flight" });
    // Bounded far below requestTimeoutMs: before, close() waited for the client's pool, so for the request's timeout.
    let closed = false;
    void sink.close().then(() => (closed = true));
    await waitFor(() => closed, { timeout: 10_000, message: "close() to return while the request hangs" });
    const outcomes = await sent;
    expect(outcomes).toHaveLength(records.length);
    expect(outcomes.every((o) => o.status === "retry")).toBe(true);
    expect(fake.stored).toHaveLength(0);
  });
});

describe("ElasticsearchSink: credentials never leak", () => {
  const secrets = ["s3cret", Buffer.from("elastic:s3cret").toString("base64"), "c2VjcmV0LWFwaS1rZXk", "secret-api-key"];

  function scan(label: string, value: unknown): void {
    const text = `${inspect(value, { depth: 30, showHidden: true, getters: true })}\n${JSON.stringify(value, (_k, v) => (v instanceof Error ? { message: v.message, stack: v.stack, cause: v.cause } : v))}`;
    for (const secret of secrets) expect(text, `${label} contains a secret`).not.toContain(secret);
  }

  it.each<[string, Partial<ElasticsearchSinkOptions>]>([
    ["a password in the node URL", {}],
    ["an API key", { auth: { apiKey: "c2VjcmV0LWFwaS1rZXk" } }],
  ])("with %s: outcomes, errors and metrics are clean", async (_label, extra) => {
    const fake = await FakeElasticsearch.start({ authorization: "Basic something-else" });
    cleanup.push(() => fake.close());
    const sink = new ElasticsearchSink({
      name: "es",
      node: `http://elastic:s3cret@127.0.0.1:${fake.port}`,
      index: "logs",
      requestTimeoutMs: 300,
      ...extra,
    } as ElasticsearchSinkOptions);
    cleanup.push(() => sink.close());
    // The secret really is sent (so the test can see a leak if there was one).
    const openError = await sink.open().catch((e: unknown) => e);
    expect(openError).toMatchObject({ code: "ERR_SINK_AUTH" });
    expect(fake.requests[0]!.headers.authorization).toMatch(/^(Basic|ApiKey) /);
    scan("open error", openError);

    const seen: unknown[] = [];
    seen.push(await sendRecords(sink, records)); // 401
    fake.itemReply = () => ({ status: 400, error: { type: "x", reason: "password=s3cret in a reason" } });
    await fake.close();
    seen.push(await sendRecords(sink, records)); // connection refused (the URL with credentials is in the client's error)
    await fake.listen();
    fake.behaviors.push({ kind: "hang" });
    seen.push(await sendRecords(sink, records)); // timeout
    for (const [i, s] of seen.entries()) scan(`send ${i}`, s);
    // The client's errors also hold the whole request body; the outcomes must not drag documents along.
    expect(inspect(seen, { depth: 30, showHidden: true })).not.toContain("payload-marker");
    expect((seen[1] as RecordOutcome[])[0]).toMatchObject({ status: "retry", reason: "connection_error" });
    scan("metrics", sink.metrics());
  });

  it("redacts secrets the server echoes in item errors", async () => {
    const { fake, sink } = await setup();
    fake.itemReply = () => ({ status: 400, error: { type: "illegal_argument_exception", reason: "bad header Authorization: Basic ZWxhc3RpYzpzM2NyZXQ= password=s3cret" } });
    const outcomes = await sendRecords(sink, [{ message: "a" }]);
    expect(outcomes[0]!.status).toBe("rejected");
    scan("item reason", outcomes);
  });
});
