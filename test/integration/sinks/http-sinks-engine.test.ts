// LogstashSink and GelfSink over HTTP driven by the real engine: a destination that fails every request is backed off
// as a whole (whole-batch retries hold later batches back), and refused credentials (401/403) keep records pending,
// reported as ERR_SINK_AUTH, until the destination accepts them again.
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, GelfSink, LogstashSink, type RetryEvent, type Sink } from "../../../src/index.js";
import { HttpReceiver, type ReceivedRequest, type Responder } from "../../helpers/receivers/http.js";
import { waitFor } from "../../helpers/wait-for.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

type Kind = "logstash" | "gelf" | "gelf-bulk";
const KINDS: Kind[] = ["logstash", "gelf", "gelf-bulk"];

function makeSink(kind: Kind, port: number): Sink {
  if (kind === "logstash") return new LogstashSink({ name: "s", url: `http://127.0.0.1:${port}/` });
  return new GelfSink({ name: "s", url: `http://127.0.0.1:${port}/gelf`, bulk: kind === "gelf-bulk" });
}

/** The `n` of every record a request carried (a JSON array, or GELF lines; GELF extras are `_`-prefixed). */
function numbers(req: ReceivedRequest): number[] {
  const text = req.body.toString("utf8");
  if (text.startsWith("[")) return (JSON.parse(text) as Array<{ n: number }>).map((o) => o.n);
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => {
      const o = JSON.parse(l) as { n?: number; _n?: number };
      return o.n ?? o._n!;
    });
}

async function setup(kind: Kind, responder: Responder, retry: { baseDelayMs: number; maxDelayMs: number }) {
  const rx = await HttpReceiver.start(responder);
  const agg = new Aggregator({ batch: { maxRecords: 20, maxWaitMs: 5 }, retry });
  agg.addSink(makeSink(kind, rx.port));
  const retries: RetryEvent[] = [];
  const codes: string[] = [];
  agg.on("retry", (e) => retries.push(e));
  agg.on("sink:error", (e) => codes.push(e.error.code));
  cleanups.push(() => rx.close(), () => agg.stop({ timeoutMs: 200 }));
  await agg.start();
  return { rx, agg, retries, codes };
}

// LogstashSink sends one request per batch and already answered a 503 with one whole-batch outcome.
describe.each<Kind>(["gelf", "gelf-bulk"])("%s over HTTP through the engine", (kind) => {
  it("a destination answering 503 to everything: one whole-batch retry, and no further batch during the backoff", async () => {
    // Retry-After is a floor for the engine's backoff: five minutes, so no retry can happen within the test.
    const { rx, agg, retries } = await setup(kind, () => ({ status: 503, headers: { "retry-after": "300" } }), { baseDelayMs: 1, maxDelayMs: 10 });
    await agg.write(Array.from({ length: 100 }, (_x, i) => ({ message: `m${i}`, n: i })));
    await waitFor(() => retries.length > 0, { timeout: 10_000, message: "a retry event for the first failed batch" });
    expect(retries[0]).toMatchObject({ sink: "s", reason: "http_503", wholeBatch: true, count: 20 });
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(300_000);
    const m = agg.metrics().sinks.s!;
    expect(m.state).toBe("backoff");
    expect(m.inFlightBatches).toBe(0);
    // At most the requests of one batch that were in flight together (GELF single mode: concurrency 8), not 100.
    expect(rx.requests.length).toBeLessThanOrEqual(kind === "gelf" ? 8 : 1);
    expect(m).toMatchObject({ delivered: 0, droppedTotal: 0, deadLettered: 0, pending: 100 });
  });
});

describe.each(KINDS)("%s over HTTP through the engine", (kind) => {

  it.each([401, 403])("HTTP %i: records stay pending (retried with backoff, ERR_SINK_AUTH reported), delivered once the credentials are accepted", async (status) => {
    let answer: ReturnType<Responder> = { status, body: "denied" };
    const { rx, agg, retries, codes } = await setup(kind, () => answer, { baseDelayMs: 1, maxDelayMs: 20 });
    await agg.write(Array.from({ length: 30 }, (_x, i) => ({ message: `m${i}`, n: i })));
    await waitFor(() => retries.length >= 3, { timeout: 10_000, message: `three retry events for HTTP ${status}` });
    expect(retries.every((e) => e.reason === `http_${status}` && e.wholeBatch)).toBe(true);
    expect(codes).toContain("ERR_SINK_AUTH");
    expect(agg.metrics().sinks.s).toMatchObject({ delivered: 0, droppedTotal: 0, deadLettered: 0, pending: 30 });
    const refused = rx.requests.length;
    answer = { status: kind === "logstash" ? 200 : 202 };
    await waitFor(() => agg.metrics().sinks.s!.delivered === 30, {
      timeout: 10_000,
      message: () => `all 30 delivered after the credentials were accepted (${JSON.stringify(agg.metrics().sinks.s)})`,
    });
    // The responder answers as it records, so every request from `refused` on got the new answer.
    const got = rx.requests.slice(refused).flatMap(numbers);
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_x, i) => i));
    expect(agg.metrics().sinks.s).toMatchObject({ droppedTotal: 0, deadLettered: 0, pending: 0 });
  });
});
