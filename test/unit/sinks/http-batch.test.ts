// How the HTTP sinks (Logstash, GELF) classify one answer (classifyResponse), and how a batch's outcomes are
// summarized for the engine (summarize): every record to retry → one whole-batch outcome, so the sink is backed off.
import { describe, expect, it } from "vitest";
import { SinkError } from "../../../src/errors.js";
import { type RecordOutcome, Outcome } from "../../../src/sinks/sink.js";
import { summarize } from "../../../src/sinks/transport/http-batch.js";
import { type HttpPostResult, classifyResponse } from "../../../src/sinks/transport/http-post.js";

const answer = (status: number, headers: Record<string, string> = {}): HttpPostResult => ({ ok: true, status, headers, body: "no" });
const classify = (r: HttpPostResult): RecordOutcome => classifyResponse("s", "http://127.0.0.1:1/", r, (s) => s >= 200 && s <= 299);

describe("classifyResponse", () => {
  it.each([401, 403])("HTTP %i → retry with ERR_SINK_AUTH (credentials get fixed; records must not be dropped meanwhile)", (status) => {
    const o = classify(answer(status, { "retry-after": "4" }));
    expect(o).toMatchObject({ status: "retry", reason: `http_${status}`, retryAfterMs: 4_000 });
    expect((o as { error: SinkError }).error).toMatchObject({ code: "ERR_SINK_AUTH", statusCode: status, retryable: true });
  });
});

describe("summarize", () => {
  const e503 = Outcome.retry("http_503", 2_000);
  const conn = Outcome.retry("network_error");
  const bad = Outcome.reject("http_400");

  it("every record to retry (for different reasons) → one whole-batch retry; anything delivered or rejected beside → per record", () => {
    expect(summarize([conn, e503, conn])).toEqual({ status: "retry", reason: "network_error", retryAfterMs: 2_000, error: undefined });
    expect(summarize([e503, e503, e503])).toBe(e503);
    // Nothing delivered is sent twice, and a rejection keeps its reason.
    expect(summarize([Outcome.delivered, e503])).toEqual({ outcomes: [Outcome.delivered, e503] });
    expect(summarize([bad, e503])).toEqual({ outcomes: [bad, e503] });
  });
});
