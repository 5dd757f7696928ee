// ElasticsearchSink against a loopback Elasticsearch through the real client: per-item outcomes, splits, outages, wire format.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ElasticsearchSink } from "../../../src/sinks/elasticsearch.js";
import type { ElasticsearchSinkOptions } from "../../../src/sinks/elasticsearch.js";
import { FakeElasticsearch } from "../../helpers/fake-elasticsearch.js";
import type { BulkOperation } from "../../helpers/fake-elasticsearch.js";
import { createBatch } from "../../../src/testing/create-batch.js";
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

const msg = (op: BulkOperation) => op.doc?.message;
const countBy = (ops: readonly BulkOperation[]) => {
  const counts: Record<string, number> = {};
  for (const op of ops) counts[String(msg(op))] = (counts[String(msg(op))] ?? 0) + 1;
  return counts;
};

describe("ElasticsearchSink: per-item outcomes", () => {
  it("classifies 201/409/429/400/503 by position and resends only the retried items, each stored once", async () => {
    const { fake, sink } = await setup({ id: "deterministic" });
    const records = ["ok", "dup", "busy", "bad", "unavailable"].map((message, i) => ({ "@timestamp": ts(i), message }));
    // "dup" is already in the index: the create answers 409 as real Elasticsearch does.
    await deliverAll(sink, [records[1]!]);
    const seen = new Map<string, number>();
    fake.itemReply = (op) => {
      const m = String(msg(op));
      const n = (seen.get(m) ?? 0) + 1;
      seen.set(m, n);
      if (m === "busy" && n === 1) return 429;
      if (m === "unavailable" && n <= 2) return 503;
      if (m === "bad") return { status: 400, error: { type: "document_parsing_exception", reason: "[1:30] failed to parse field [message]" } };
      return undefined;
    };
    const firstRequest = fake.bulkRequests;

    const { rejected, rounds } = await deliverAll(sink, records);

    expect(rounds[0]!.map((o) => o.status)).toEqual(["delivered", "delivered", "retry", "rejected", "retry"]);
    expect(rounds[0]![2]).toMatchObject({ reason: "es_rejected_execution_exception" });
    expect(rounds[0]![4]).toMatchObject({ reason: "unavailable_shards_exception" });
    expect(rejected).toEqual([{ record: records[3], reason: "document_parsing_exception: [1:30] failed to parse field [message]" }]);
    // The engine's second and third attempts carried only the retried documents.
    const resent = fake.received.filter((op) => op.request > firstRequest);
    expect(countBy(resent)).toEqual({ busy: 1, unavailable: 2 });
    expect(countBy(fake.stored)).toEqual({ ok: 1, dup: 1, busy: 1, unavailable: 1 });
    expect(fake.documentCount).toBe(4);
    const m = sink.metrics();
    expect(m).toMatchObject({ item_status_409: 1, item_status_429: 1, item_status_400: 1, item_status_503: 2, records_duplicate: 1 });
  });

  it("takes the usual all-created answer to a whole batch as one result, counted per item", async () => {
    const { fake, sink } = await setup();
    const records = Array.from({ length: 300 }, (_, i) => ({ "@timestamp": ts(i), message: `m${i}` }));
    const result = await sink.send(createBatch(records, { source: "app" }), { signal: new AbortController().signal });
    expect(result).toBeUndefined();
    expect(fake.stored).toHaveLength(300);
    expect(sink.metrics()).toMatchObject({ records_delivered: 300, item_status_201: 300, records_retried: 0, records_rejected: 0 });
    // The same answer to a batch of which the sink left records out is judged item by item, by position.
    const { sink: byField } = await setup({ index: "app-%{[service][name]}" });
    const outcomes = await sendRecords(byField, [{ message: "a", service: { name: "x" } }, { message: "b" }, { message: "c", service: { name: "y" } }]);
    expect(outcomes.map((o) => o.status)).toEqual(["delivered", "rejected", "delivered"]);
    expect(byField.metrics()).toMatchObject({ records_delivered: 2, item_status_201: 2 });
  });

  it("never resends an accepted item, even without ids (auto-id index)", async () => {
    const { fake, sink } = await setup();
    let first = true;
    fake.itemReply = (op) => (msg(op) === "b" && first ? ((first = false), 429) : undefined);
    await deliverAll(sink, ["a", "b", "c"].map((message) => ({ message })));
    expect(countBy(fake.received)).toEqual({ a: 1, b: 2, c: 1 });
    expect(countBy(fake.stored)).toEqual({ a: 1, b: 1, c: 1 });
  });
});

describe("ElasticsearchSink: request-level failures", () => {
  it("splits a 413 batch in halves until it fits; everything arrives once", async () => {
    const { fake, sink } = await setup({}, { maxContentLength: 700 });
    const records = Array.from({ length: 20 }, (_, i) => ({ "@timestamp": ts(i), message: `m${String(i).padStart(2, "0")}-${"x".repeat(80)}` }));
    const { rejected, rounds } = await deliverAll(sink, records);
    expect(rejected).toEqual([]);
    expect(rounds).toHaveLength(1); // the split happened inside one send()
    expect(fake.stored).toHaveLength(20);
    expect(new Set(fake.stored.map(msg)).size).toBe(20);
    // Every request that stored documents fitted under the limit (request numbers index `requests`: no other calls here).
    const storing = new Set(fake.stored.map((op) => op.request));
    expect(storing.size).toBeGreaterThan(1);
    for (const n of storing) expect(Buffer.byteLength(fake.requests[n]!.body)).toBeLessThanOrEqual(700);
    const m = sink.metrics();
    expect(m.requests_split_413).toBeGreaterThan(0);
    expect(m.status_413).toBeGreaterThan(0);
    // The learned ceiling pre-splits the next batch: no new 413 is needed.
    const before = m.status_413;
    await deliverAll(sink, records.map((r) => ({ ...r, message: `again-${r.message}` })));
    expect(sink.metrics().status_413).toBe(before);
    expect(fake.stored).toHaveLength(40);
  });

  it("rejects a single document larger than the server accepts, and delivers the rest", async () => {
    const { fake, sink } = await setup({}, { maxContentLength: 500 });
    const outcomes = await sendRecords(sink, [{ message: "small-1" }, { message: "y".repeat(1000) }, { message: "small-2" }]);
    expect(outcomes.map((o) => o.status)).toEqual(["delivered", "rejected", "delivered"]);
    expect(outcomes[1]).toMatchObject({ reason: expect.stringMatching(/^request_entity_too_large: a single document of \d+ bytes/) });
    expect(countBy(fake.stored)).toEqual({ "small-1": 1, "small-2": 1 });
  });

  it("answers retry while the connection is refused, then delivers everything after the server returns", async () => {
    const { fake, sink } = await setup({ id: "deterministic" });
    await fake.close();
    await sink.open(); // a down cluster does not fail open()
    expect(sink.lastOpenError).toMatchObject({ code: "ERR_SINK_SEND" });
    const records = Array.from({ length: 5 }, (_, i) => ({ "@timestamp": ts(i), message: `r${i}` }));
    for (let attempt = 0; attempt < 3; attempt++) {
      const outcomes = await sendRecords(sink, records);
      for (const o of outcomes) expect(o).toMatchObject({ status: "retry", reason: "connection_error" });
      expect((outcomes[0] as { error: { code: string } }).error.code).toBe("ERR_SINK_SEND");
    }
    await fake.listen(); // same port
    const { rejected } = await deliverAll(sink, records);
    expect(rejected).toEqual([]);
    expect(countBy(fake.stored)).toEqual({ r0: 1, r1: 1, r2: 1, r3: 1, r4: 1 });
    expect(sink.metrics().status_error).toBe(4); // 3 sends + the open check
  });

  it("retries 429 (with Retry-After) and 503 as a whole, without client-side retries", async () => {
    const { fake, sink } = await setup();
    fake.behaviors.push({ kind: "status", status: 429, headers: { "retry-after": "2" } }, { kind: "status", status: 503 });
    const first = await sendRecords(sink, [{ message: "a" }, { message: "b" }]);
    expect(first[0]).toBe(first[1]);
    expect(first[0]).toMatchObject({ status: "retry", reason: "http_429", retryAfterMs: 2000 });
    const second = await sendRecords(sink, [{ message: "a" }, { message: "b" }]);
    expect(second[0]).toMatchObject({ status: "retry", reason: "http_503" });
    expect(fake.bulkRequests).toBe(2); // the client's own retries (3 on 503 by default) are off
    await deliverAll(sink, [{ message: "a" }, { message: "b" }]);
    expect(countBy(fake.stored)).toEqual({ a: 1, b: 1 });
  });

  it("a failed request never walks its body (the client's redaction copies error metadata, body included)", async () => {
    const { fake, sink } = await setup();
    const records = Array.from({ length: 2_000 }, (_, i) => ({ message: `${i} ${"z".repeat(500)}` }));
    const entries = Object.entries;
    let bytesWalked = 0;
    Object.entries = ((o: object) => {
      if (o instanceof Uint8Array) bytesWalked += o.length;
      return entries(o);
    }) as typeof Object.entries;
    try {
      fake.behaviors.push({ kind: "status", status: 429, headers: { "retry-after": "1" } }, { kind: "status", status: 503 }, { kind: "reset" });
      const answers = [];
      for (let k = 0; k < 3; k++) answers.push((await sendRecords(sink, records))[0]);
      expect(answers).toMatchObject([
        { status: "retry", reason: "http_429", retryAfterMs: 1000 },
        { status: "retry", reason: "http_503" },
        { status: "retry", reason: "connection_error" },
      ]);
    } finally {
      Object.entries = entries;
    }
    // 3 × 1 MB bodies: the transport's default redaction called Object.entries on each of them.
    expect(bytesWalked).toBe(0);
    expect(fake.bulkRequests).toBe(3);
  });

  it("rejects every record of a request that fails with 400 at the request level", async () => {
    const { fake, sink } = await setup();
    fake.behaviors.push({ kind: "status", status: 400, body: { error: { type: "illegal_argument_exception", reason: "request [/_bulk] contains unrecognized parameter" }, status: 400 } });
    const outcomes = await sendRecords(sink, [{ message: "a" }, { message: "b" }]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected"]);
    expect(outcomes[0]).toMatchObject({ reason: "http_400: illegal_argument_exception: request [/_bulk] contains unrecognized parameter" });
  });

  it("keeps retrying 401 with ERR_SINK_AUTH so nothing is lost while credentials are fixed", async () => {
    const { fake, sink } = await setup({ auth: { username: "elastic", password: "changeme" } }, { authorization: `Basic ${Buffer.from("elastic:right").toString("base64")}` });
    const outcomes = await sendRecords(sink, [{ message: "a" }]);
    expect(outcomes[0]).toMatchObject({ status: "retry", reason: "http_401" });
    expect((outcomes[0] as { error: { code: string } }).error.code).toBe("ERR_SINK_AUTH");
    expect(fake.stored).toHaveLength(0);
  });

  it("aborts an in-flight request when the engine's signal fires", async () => {
    const { fake, sink } = await setup();
    fake.behaviors.push({ kind: "hang" });
    const controller = new AbortController();
    const pending = sendRecords(sink, [{ message: "a" }], "app", controller.signal);
    await vi.waitFor(() => expect(fake.bulkRequests).toBe(1), { timeout: 5000 });
    controller.abort(new Error("stop deadline"));
    const outcomes = await pending;
    expect(outcomes[0]).toMatchObject({ status: "retry", reason: "aborted" });
  });
});

describe("ElasticsearchSink: on the wire", () => {
  it("sends one NDJSON string: action + canonical JSON per record, newline-terminated, vendor content type", async () => {
    const { fake, sink } = await setup();
    const records = [{ "@timestamp": ts(0), message: "one" }, { "@timestamp": ts(1), message: "two", n: 1 }];
    await sendRecords(sink, records);
    const req = fake.requests.at(-1)!;
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/_bulk");
    expect(req.headers["content-type"]).toBe("application/vnd.elasticsearch+x-ndjson; compatible-with=9");
    expect(req.body).toBe(
      `{"create":{"_index":"logs"}}\n${JSON.stringify(records[0])}\n{"create":{"_index":"logs"}}\n${JSON.stringify(records[1])}\n`,
    );
    expect(req.query.get("filter_path")).toBe("errors,items.*.status,items.*.error");
  });

  it("names date-pattern indices from each record's @timestamp in UTC", async () => {
    const { fake, sink } = await setup({ index: "logs-%{+yyyy.MM.dd}" });
    await sendRecords(sink, [
      { "@timestamp": "2024-05-01T23:59:59.999Z", message: "a" },
      { "@timestamp": "2024-05-02T01:00:00+02:00", message: "b" }, // 23:00 UTC on the 1st
      { "@timestamp": "2024-05-02T00:00:00.000Z", message: "c" },
    ]);
    expect(fake.received.map((op) => op.actionLine)).toEqual([
      '{"create":{"_index":"logs-2024.05.01"}}',
      '{"create":{"_index":"logs-2024.05.01"}}',
      '{"create":{"_index":"logs-2024.05.02"}}',
    ]);
  });

  it("writes data streams with create only, and passes pipeline and routing", async () => {
    const { fake, sink } = await setup({ index: undefined, dataStream: { dataset: "myapp" }, pipeline: "geoip", routing: "tenant-1" });
    await sendRecords(sink, [{ "@timestamp": ts(0), message: "a" }]);
    expect(fake.received[0]!.actionLine).toBe('{"create":{"_index":"logs-myapp-default"}}');
    const query = fake.requests.at(-1)!.query;
    expect(query.get("pipeline")).toBe("geoip");
    expect(query.get("routing")).toBe("tenant-1");
    expect(fake.stored).toHaveLength(1);
  });

  it("puts per-record routing, ids and field-based indices into the action line; rejects records whose index is invalid", async () => {
    const { fake, sink } = await setup({
      index: "app-%{[service][name]}",
      routing: (r) => (r.host?.name === undefined ? undefined : String(r.host.name)),
      id: (r) => (typeof r.uid === "string" ? r.uid : undefined),
    });
    const outcomes = await sendRecords(sink, [
      { message: "a", service: { name: "api" }, host: { name: "h1" }, uid: "u-1" },
      { message: "b", service: { name: "Bad Name" } },
      { message: "c", service: { name: "web" } },
      { message: "d" },
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["delivered", "rejected", "delivered", "rejected"]);
    expect(outcomes[1]).toMatchObject({ reason: 'invalid index name "app-Bad Name": must be lowercase' });
    expect(outcomes[3]).toMatchObject({ reason: "index pattern field [service.name] is missing" });
    expect(fake.received.map((op) => op.actionLine)).toEqual([
      '{"create":{"_index":"app-api","_id":"u-1","routing":"h1"}}',
      '{"create":{"_index":"app-web"}}',
    ]);
  });

  it("gzips the body when compression is on", async () => {
    const { fake, sink } = await setup({ compression: true });
    await sendRecords(sink, [{ message: `zipped ${"z".repeat(2000)}` }]);
    const req = fake.requests.at(-1)!;
    expect(req.headers["content-encoding"]).toBe("gzip");
    expect(req.body).toContain('"message":"zipped zzz');
    expect(req.wireBytes).toBeLessThan(Buffer.byteLength(req.body) / 5);
    expect(fake.stored).toHaveLength(1);
  });

  it("gives every record the same _id on a replay; create answers 409 and nothing is stored twice", async () => {
    const { fake, sink } = await setup({ id: "deterministic" });
    const records = Array.from({ length: 10 }, (_, i) => ({
      "@timestamp": ts(i),
      message: i < 2 ? "same line" : `line ${i}`,
      log: { offset: i * 100, file: { path: "/var/log/app.log" } },
    }));
    await deliverAll(sink, records, 10, "files");
    const firstIds = fake.received.map((op) => op.meta._id);
    const replay = await sendRecords(sink, records, "files");
    expect(replay.every((o) => o.status === "delivered")).toBe(true);
    expect(fake.received.slice(10).map((op) => op.meta._id)).toEqual(firstIds);
    expect(new Set(firstIds).size).toBe(10);
    expect(fake.stored).toHaveLength(10);
    expect(fake.documentCount).toBe(10);
    expect(sink.metrics()).toMatchObject({ item_status_201: 10, item_status_409: 10, records_duplicate: 10 });
  });
});

describe("ElasticsearchSink: body buffers", () => {
  it("reuses the buffer of an answered request for the next body, never one whose request failed", async () => {
    const { Client } = await import("@elastic/elasticsearch");
    const fake = await FakeElasticsearch.start();
    const client = new Client({ node: fake.url });
    const sink = new ElasticsearchSink({ name: "es", client, index: "logs" });
    cleanup.push(() => fake.close(), () => sink.close(), () => client.close());
    // The official client reports each request's body: the Buffer the sink handed it.
    const bodies: Buffer[] = [];
    client.diagnostic.on("request", (_err, event) => {
      const body = event?.meta.request.params.body;
      if (Buffer.isBuffer(body)) bodies.push(body);
    });
    const batch = (tag: string) => Array.from({ length: 50 }, (_, i) => ({ "@timestamp": ts(i), message: `${tag} ${i}` }));

    await sendRecords(sink, batch("first"));
    await sendRecords(sink, batch("second"));
    expect(bodies).toHaveLength(2);
    expect(bodies[1]!.buffer).toBe(bodies[0]!.buffer);

    // A 503 fails the request: its buffer stays with the client and is not written again.
    fake.behaviors.push({ kind: "status", status: 503 });
    await sendRecords(sink, batch("refused"));
    const refused = bodies[2]!;
    const snapshot = Buffer.from(refused);
    await sendRecords(sink, batch("third"));
    await sendRecords(sink, batch("fourth"));
    expect(bodies).toHaveLength(5);
    expect(bodies[3]!.buffer).not.toBe(refused.buffer);
    expect(bodies[4]!.buffer).not.toBe(refused.buffer);
    expect(refused.equals(snapshot)).toBe(true);

    // What the server stored is every answered batch, intact (reused buffers carry no bytes of earlier bodies).
    const stored = fake.stored.map((op) => String(op.doc?.message));
    const expected = ["first", "second", "third", "fourth"].flatMap((tag) => batch(tag).map((r) => r.message));
    expect(stored).toEqual(expected);
  });
});
