// Item-by-item and request-level classification of bulk answers, and option validation, without a network.
import { errors } from "@elastic/elasticsearch";
import { describe, expect, it } from "vitest";
import { InvalidOptionError, SinkError } from "../../../src/errors.js";
import { Aggregator } from "../../../src/aggregator.js";
import { ElasticsearchSink } from "../../../src/sinks/elasticsearch.js";
import { BatchOutcomes, type ItemTally, classifyBulkResponse, uniformlyDelivered } from "../../../src/sinks/elasticsearch/bulk-response.js";
import { UniformBulkAnswer } from "../../../src/sinks/elasticsearch/bulk-serializer.js";
import { classifyRequestError, parseRetryAfter } from "../../../src/sinks/elasticsearch/request-error.js";
import { Outcome, type RecordOutcome } from "../../../src/sinks/sink.js";

const tally = (): ItemTally => ({ statuses: new Map(), delivered: 0, duplicates: 0, retried: 0, rejected: 0 });
const idx = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

describe("classifyBulkResponse", () => {
  it("maps 201/409/429/400/503 items by position", () => {
    const out = new Array<RecordOutcome>(5);
    const t = tally();
    const body = {
      errors: true,
      items: [
        { create: { status: 201 } },
        { create: { status: 409, error: { type: "version_conflict_engine_exception", reason: "exists" } } },
        { create: { status: 429, error: { type: "es_rejected_execution_exception", reason: "queue full" } } },
        { create: { status: 400, error: { type: "document_parsing_exception", reason: "failed to parse field [n]", caused_by: { type: "number_format_exception", reason: "For input string: \"x\"" } } } },
        { create: { status: 503, error: { type: "unavailable_shards_exception", reason: "primary not active" } } },
      ],
    };
    expect(classifyBulkResponse(body, idx(5), 0, 5, "create", out, t, "es")).toBeUndefined();
    expect(out.map((o) => o.status)).toEqual(["delivered", "delivered", "retry", "rejected", "retry"]);
    expect(out[2]).toMatchObject({ reason: "es_rejected_execution_exception" });
    expect(out[3]).toMatchObject({
      reason: 'document_parsing_exception: failed to parse field [n] [caused_by: number_format_exception: For input string: "x"]',
    });
    expect((out[3] as { error: SinkError }).error).toMatchObject({ code: "ERR_SINK_REJECTED", statusCode: 400, retryable: false });
    expect(t).toMatchObject({ delivered: 2, duplicates: 1, retried: 2, rejected: 1 });
    expect([...t.statuses]).toEqual([[201, 1], [409, 1], [429, 1], [400, 1], [503, 1]]);
  });

  it("retries a 403 write block on the index (it lifts); rejects another 403 (a key without write privilege on it)", () => {
    const out = new Array<RecordOutcome>(2);
    const body = {
      errors: true,
      items: [
        { create: { status: 403, error: { type: "cluster_block_exception", reason: "index [logs] blocked by: [FORBIDDEN/8/index write (api)];" } } },
        { create: { status: 403, error: { type: "security_exception", reason: "action [indices:data/write/bulk[s]] is unauthorized" } } },
      ],
    };
    const t = tally();
    expect(classifyBulkResponse(body, idx(2), 0, 2, "create", out, t, "es")).toBeUndefined();
    expect(out).toEqual([
      expect.objectContaining({ status: "retry", reason: "cluster_block_exception" }),
      expect.objectContaining({ status: "rejected", reason: "security_exception: action [indices:data/write/bulk[s]] is unauthorized" }),
    ]);
    expect(t).toMatchObject({ retried: 1, rejected: 1 });
  });

  it("rejects a 409 when the action was `index` (not a duplicate create)", () => {
    const out = new Array<RecordOutcome>(1);
    classifyBulkResponse({ errors: true, items: [{ index: { status: 409, error: { type: "version_conflict_engine_exception", reason: "seq_no" } } }] }, idx(1), 0, 1, "index", out, tally(), "es");
    expect(out[0]!.status).toBe("rejected");
  });

  it("writes outcomes at the positions of the sent sub-range only", () => {
    const out = new Array<RecordOutcome>(6);
    const included = Int32Array.from([0, 2, 5]);
    classifyBulkResponse({ errors: true, items: [{ create: { status: 429 } }, { create: { status: 201 } }] }, included, 1, 3, "create", out, tally(), "es");
    expect(out[0]).toBeUndefined();
    expect(out[2]!.status).toBe("retry");
    expect(out[5]!.status).toBe("delivered");
  });

  it.each([
    ["a string body", "<html>oops</html>", /not a JSON object/],
    ["errors:true without items", { errors: true }, /no `items` array/],
    ["the wrong item count", { errors: false, items: [{ create: { status: 201 } }] }, /1 items for 2 actions/],
    ["null", null, /not a JSON object/],
  ])("returns ERR_SINK_PROTOCOL and writes nothing for %s", (_label, body, message) => {
    const out = new Array<RecordOutcome>(2);
    const err = classifyBulkResponse(body, idx(2), 0, 2, "create", out, tally(), "es");
    expect(err).toBeInstanceOf(SinkError);
    expect(err).toMatchObject({ code: "ERR_SINK_PROTOCOL", retryable: true });
    expect(err!.message).toMatch(message);
    expect(out.filter((o) => o !== undefined)).toHaveLength(0);
  });

  it("retries an item that has no status instead of guessing", () => {
    const out = new Array<RecordOutcome>(2);
    classifyBulkResponse({ errors: true, items: [{ create: {} }, "junk"] }, idx(2), 0, 2, "create", out, tally(), "es");
    expect(out.map((o) => o.status)).toEqual(["retry", "retry"]);
    expect(out[0]).toMatchObject({ reason: "malformed_item" });
  });

  it("judges a uniform answer by position like any other when it covers part of a batch", () => {
    const out = new Array<RecordOutcome>(4);
    const t = tally();
    const answer = new UniformBulkAnswer({ create: { status: 201 } }, 2);
    expect(classifyBulkResponse(answer, Int32Array.of(0, 2, 3), 1, 3, "create", out, t, "es")).toBeUndefined();
    expect(out.map((o) => o?.status)).toEqual([undefined, undefined, "delivered", "delivered"]);
    expect(t).toMatchObject({ delivered: 2 });
  });
});

describe("uniformlyDelivered", () => {
  it("tallies a uniform all-success answer of the expected length at once", () => {
    const t = tally();
    expect(uniformlyDelivered(new UniformBulkAnswer({ create: { status: 201 } }, 5000), 5000, "create", t)).toBe(true);
    expect(uniformlyDelivered(new UniformBulkAnswer({ index: { status: 200 } }, 3), 3, "index", t)).toBe(true);
    expect(t).toMatchObject({ delivered: 5003, duplicates: 0, retried: 0, rejected: 0 });
    expect([...t.statuses]).toEqual([[201, 5000], [200, 3]]);
  });

  it("counts a uniform 409 on create as duplicates, and leaves it to the item-by-item judgement on index", () => {
    const t = tally();
    const conflicts = new UniformBulkAnswer({ create: { status: 409 } }, 2);
    expect(uniformlyDelivered(conflicts, 2, "create", t)).toBe(true);
    expect(t).toMatchObject({ delivered: 2, duplicates: 2 });
    expect(uniformlyDelivered(new UniformBulkAnswer({ index: { status: 409 } }, 2), 2, "index", t)).toBe(false);
  });

  it("declines, tallying nothing, for another count, another status or an ordinary answer", () => {
    const t = tally();
    expect(uniformlyDelivered(new UniformBulkAnswer({ create: { status: 201 } }, 4), 5, "create", t)).toBe(false);
    expect(uniformlyDelivered(new UniformBulkAnswer({ create: { status: 429 } }, 5), 5, "create", t)).toBe(false);
    expect(uniformlyDelivered(new UniformBulkAnswer({ create: {} }, 5), 5, "create", t)).toBe(false);
    expect(uniformlyDelivered({ errors: false, items: Array.from({ length: 5 }, () => ({ create: { status: 201 } })) }, 5, "create", t)).toBe(false);
    expect(t).toMatchObject({ delivered: 0, duplicates: 0 });
    expect(t.statuses.size).toBe(0);
  });
});

describe("BatchOutcomes", () => {
  it("says all delivered without a per-record array when one answer covered the batch", () => {
    const o = new BatchOutcomes(3);
    o.deliverAll();
    expect(o.result()).toBeUndefined();
    expect(o.each).toEqual([Outcome.delivered, Outcome.delivered, Outcome.delivered]);
  });

  it("gives one shared outcome, or one per record, when records fare differently", () => {
    const retry = Outcome.retry("busy");
    const same = new BatchOutcomes(2);
    same.each[0] = retry;
    same.each[1] = retry;
    expect(same.result()).toBe(retry);
    const mixed = new BatchOutcomes(2);
    mixed.each[0] = Outcome.delivered;
    mixed.each[1] = retry;
    expect(mixed.result()).toEqual({ outcomes: [Outcome.delivered, retry] });
    const late = new BatchOutcomes(2);
    late.each[1] = retry;
    late.deliverAll();
    expect(late.result()).toBeUndefined();
  });

  it("throws rather than read a record without an outcome as delivered", () => {
    expect(() => new BatchOutcomes(2).result()).toThrow(/without an outcome/);
    const partial = new BatchOutcomes(2);
    partial.each[0] = Outcome.delivered;
    expect(() => partial.result()).toThrow(/record 1 of a batch was judged without an outcome/);
    expect(new BatchOutcomes(0).result()).toBeUndefined();
  });
});

function responseError(statusCode: number, body: unknown = "", headers: Record<string, string> = {}) {
  return new errors.ResponseError({ body, statusCode, headers, warnings: null, meta: {} as never });
}

describe("classifyRequestError", () => {
  it("retries 429/5xx with Retry-After and rejects other 4xx", () => {
    const r429 = classifyRequestError(responseError(429, { error: { type: "es_rejected_execution_exception", reason: "busy" } }, { "retry-after": "7" }), "es", undefined);
    expect(r429).toMatchObject({ kind: "retry", status: 429, retryAfterMs: 7000 });
    expect(r429.error).toMatchObject({ code: "ERR_SINK_SEND", statusCode: 429, retryAfterMs: 7000 });
    expect(classifyRequestError(responseError(503), "es", undefined)).toMatchObject({ kind: "retry", status: 503 });
    const r400 = classifyRequestError(responseError(400, { error: { type: "illegal_argument_exception", reason: "bad" } }), "es", undefined);
    expect(r400).toMatchObject({ kind: "reject", reason: "http_400: illegal_argument_exception: bad" });
    expect(r400.error).toMatchObject({ code: "ERR_SINK_REJECTED", retryable: false });
  });

  it("splits on 413, retries auth failures with ERR_SINK_AUTH", () => {
    expect(classifyRequestError(responseError(413), "es", undefined).kind).toBe("too_large");
    const auth = classifyRequestError(responseError(401), "es", undefined);
    expect(auth).toMatchObject({ kind: "retry", status: 401 });
    expect(auth.error).toMatchObject({ code: "ERR_SINK_AUTH", retryable: true });
  });

  it("codes timeouts, aborts, connection errors and foreign servers", () => {
    expect(classifyRequestError(new errors.TimeoutError("Request timed out"), "es", undefined).error.code).toBe("ERR_SINK_TIMEOUT");
    expect(classifyRequestError(new errors.RequestAbortedError("x"), "es", "timeout").error.code).toBe("ERR_SINK_TIMEOUT");
    expect(classifyRequestError(new errors.RequestAbortedError("x"), "es", "aborted")).toMatchObject({ kind: "retry", reason: "aborted" });
    expect(classifyRequestError(new errors.ConnectionError("connect ECONNREFUSED"), "es", undefined)).toMatchObject({ kind: "retry", reason: "connection_error" });
    expect(classifyRequestError(new errors.ProductNotSupportedError("Elasticsearch", {} as never), "es", undefined).error.code).toBe("ERR_SINK_PROTOCOL");
    expect(classifyRequestError(new errors.DeserializationError("bad", "x"), "es", undefined).error.code).toBe("ERR_SINK_PROTOCOL");
  });

  it("never carries the client's error (with its meta) as cause, and redacts URL passwords", () => {
    const err = new errors.ConnectionError("connection failed (http://elastic:s3cret@127.0.0.1:9/)");
    const failure = classifyRequestError(err, "es", undefined);
    expect(failure.error.cause).not.toBe(err);
    expect(JSON.stringify([failure.error.message, (failure.error.cause as Error).message, (failure.error.cause as Error).stack])).not.toContain("s3cret");
  });

  it("parses Retry-After seconds and dates", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe("ElasticsearchSink options", () => {
  const node = "http://127.0.0.1:9200";
  it.each([
    [{ name: "" , node }, "Expected `name` to be a non-empty string, got `\"\"` (string)"],
    [{ name: "es" }, "Expected `node`, `nodes`, `cloud` or a ready `client`"],
    [{ name: "es", node, index: "a", dataStream: "logs-a-b" }, "Expected either `index` or `dataStream`, got both"],
    [{ name: "es", node, dataStream: "logs-a-b", opType: "index" }, 'Expected `opType` to be "create" with a data stream'],
    [{ name: "es", node, opType: "upsert" }, 'Expected `opType` to be "create" or "index", got `"upsert"` (string)'],
    [{ name: "es", node, requestTimeoutMs: -1 }, "Expected `requestTimeoutMs` to be a positive integer (milliseconds), got `-1` (number)"],
    [{ name: "es", node, filterPath: "items.*.error" }, "Expected `filterPath` to keep `errors` and `items.*.status`"],
    [{ name: "es", node, index: "UPPER" }, "must be lowercase"],
    [{ name: "es", node, dataStream: { dataset: "my-app" } }, "Expected `dataStream.dataset` to be a valid data stream part (must not contain -)"],
    [{ name: "es", node, id: "random" }, 'Expected `id` to be "deterministic" or a function, got `"random"` (string)'],
    [{ name: "es", node: "http://elastic:s3cret@exa mple:9200" }, "client options were refused"],
    [{ name: "es", nodes: ["http://127.0.0.1:9200", { url: "ftp://elastic:s3cret@h" }] }, "client options were refused: Invalid protocol 'ftp:'"],
  ])("rejects %j", (options, message) => {
    let thrown: unknown;
    try {
      new ElasticsearchSink(options as never);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(InvalidOptionError);
    expect((thrown as Error).message).toContain(message);
    expect((thrown as Error).message).not.toContain("s3cret");
  });

  it("options only the client checks make open() (so start()) reject with ERR_INVALID_OPTION, credentials redacted", async () => {
    const signal = new AbortController().signal;
    const sink = new ElasticsearchSink({ name: "es", cloud: { id: "not-a-cloud-id" }, auth: { username: "elastic", password: "s3cret" } });
    const refused = await sink.open({ signal }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(InvalidOptionError);
    expect((refused as InvalidOptionError).message).toContain("Cloud ID must be in the format");
    expect((refused as InvalidOptionError).message).not.toContain("s3cret");
    await sink.close();
    const agg = new Aggregator().addSink(new ElasticsearchSink({ name: "es2", cloud: { id: "not-a-cloud-id" } }));
    await expect(agg.start()).rejects.toMatchObject({ code: "ERR_INVALID_OPTION" });
    await agg.stop();
  });

  it("refuses a client together with nodes, and accepts a ready client", () => {
    const client = { bulk: () => undefined, info: () => undefined, close: () => undefined };
    expect(() => new ElasticsearchSink({ name: "es", client: client as never, node })).toThrow(/either `client` or/);
    expect(new ElasticsearchSink({ name: "es", client: client as never }).name).toBe("es");
  });
});
