// ElasticsearchSink with `concurrency: "adaptive"` through the engine, over the official client, against a fake
// Elasticsearch whose write pool takes 2 bulk requests at once and answers the rest with 429
// es_rejected_execution_exception items: the sink opens more than one request when batches wait, the 429 items count
// as push-back and are retried, and every document is stored exactly once.
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, ElasticsearchSink, type RetryEvent } from "../../../src/index.js";
import { FakeElasticsearch } from "../../helpers/fake-elasticsearch.js";
import { waitFor } from "../../helpers/wait-for.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('ElasticsearchSink with concurrency: "adaptive"', () => {
  it("grows past one request while batches wait, takes 429 items as push-back, and stores every document once", async () => {
    const es = await FakeElasticsearch.start();
    cleanups.push(() => es.close());
    es.writeCapacity = 2;
    // Long enough that requests sent together are worked on together, however busy this machine is.
    es.writeLatencyMs = 250;
    const agg = new Aggregator({ retry: { baseDelayMs: 5, maxDelayMs: 50 } });
    agg.addSink(new ElasticsearchSink({ name: "es", node: `http://127.0.0.1:${es.port}`, index: "logs" }), {
      concurrency: "adaptive",
      maxConcurrency: 6,
      batch: { maxRecords: 100, maxWaitMs: 5 },
    });
    const retries: RetryEvent[] = [];
    agg.on("retry", (e) => retries.push(e));
    cleanups.push(() => agg.stop({ timeoutMs: 500 }));
    await agg.start();
    const n = 2_000;
    // All at once: batches wait for a slot from the start, which is what lets the limit grow.
    await agg.write(Array.from({ length: n }, (_x, i) => ({ message: `m${i}`, n: i })));
    let maxLimit = 0;
    await waitFor(
      () => {
        maxLimit = Math.max(maxLimit, agg.metrics().sinks.es!.concurrencyLimit);
        return es.stored.length >= n;
      },
      { timeout: 30_000, message: () => `${es.stored.length} of ${n} documents stored (limit reached ${maxLimit})` },
    );
    const report = await agg.stop();
    expect(report.sinks.es).toMatchObject({ received: n, delivered: n, droppedTotal: 0, pending: 0 });
    expect(new Set(es.stored.map((op) => op.doc!.n)).size).toBe(n);
    expect(es.stored).toHaveLength(n);
    // More than one request at a time (a fixed concurrency of 1 never does), never more than the pool worked on.
    expect(es.maxActiveWrites).toBe(2);
    expect(maxLimit).toBeGreaterThanOrEqual(2);
    // Probing for a third request got some refused; those came back as per-item retries and were sent again.
    expect(es.rejectedRequests).toBeGreaterThan(0);
    // Once pushed back it stays near the pool's size: a fixed 6 requests at once would have most of them refused.
    expect(es.rejectedRequests).toBeLessThan(es.bulkRequests / 3);
    const refused = es.received.length - es.stored.length;
    expect(refused).toBe(es.rejectedRequests * 100);
    expect(retries.filter((r) => r.reason === "es_rejected_execution_exception").reduce((a, r) => a + r.count, 0)).toBe(refused);
  });
});
