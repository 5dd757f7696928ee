// Elasticsearch under partial failure, through agg.write() → engine → ElasticsearchSink → the official client →
// a loopback bulk API: item-level 429 storms, request-level 503s, answers lost after storing, 400 rejections to a
// dead-letter sink, and stop() with a deadline in the middle of a 503 storm. Each ends on sequence counts.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Aggregator, ElasticsearchSink, MemorySink } from "../../src/index.js";
import { FakeElasticsearch, type BulkOperation, type RequestBehavior } from "../helpers/fake-elasticsearch.js";
import { SequenceGenerator, SequenceTracker, recordScenario } from "../helpers/sequence.js";
import { waitFor } from "../helpers/wait-for.js";

const SENT = 10_000;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup(queueMaxRecords = 2_000) {
  const fake = await FakeElasticsearch.start();
  cleanups.push(() => fake.close());
  const es = new ElasticsearchSink({ name: "es", node: fake.url, index: "logs", id: "deterministic", requestTimeoutMs: 5_000 });
  const agg = new Aggregator({
    queue: { maxRecords: queueMaxRecords, whenFull: "block" },
    batch: { maxRecords: 250, maxWaitMs: 5 },
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
  });
  cleanups.push(() => agg.stop({ timeoutMs: 1_000 }));
  // Every attempt of every item, as the server saw it (counter hooks and per-seq attempt numbers).
  const attempts = new SequenceTracker();
  return { fake, es, agg, attempts };
}

async function generate(agg: Aggregator, gen: SequenceGenerator, total: number): Promise<void> {
  while (gen.sent < total) await agg.write(gen.records(Math.min(500, total - gen.sent)));
}

const seqOf = (op: BulkOperation): number => op.doc!.seq as number;

/** Stored documents counted by seq, and how many `_id`s were stored more than once. */
function storedCounts(fake: FakeElasticsearch): { stored: SequenceTracker; duplicateDocs: number } {
  const stored = new SequenceTracker();
  const perId = new Map<string, number>();
  for (const op of fake.stored) {
    stored.add(seqOf(op));
    const key = `${op.index}/${String(op.meta._id)}`;
    perId.set(key, (perId.get(key) ?? 0) + 1);
  }
  let duplicateDocs = 0;
  for (const n of perId.values()) duplicateDocs += n - 1;
  return { stored, duplicateDocs };
}

describe("Elasticsearch under partial failure", () => {
  it("429 on 10 % of items (1 % of them twice) and 503 on 5 % of requests: 0 missing, 0 duplicate documents", async () => {
    const { fake, es, agg, attempts } = await setup();
    fake.itemReply = (op) => {
      const seq = seqOf(op);
      attempts.add(seq);
      const attempt = attempts.countOf(seq);
      if (seq % 10 === 3 && attempt === 1) return 429;
      if (seq % 100 === 3 && attempt === 2) return 429;
      return undefined;
    };
    const unavailable: RequestBehavior = { kind: "status", status: 503 };
    fake.onBulk = (_req, index) => (index % 20 === 7 ? unavailable : undefined);
    agg.addSink(es);
    let retried = 0;
    agg.on("retry", (e) => (retried += e.count));
    await agg.start();
    const gen = new SequenceGenerator();
    await generate(agg, gen, SENT);
    const report = await agg.stop({ timeoutMs: 30_000 });

    const { stored, duplicateDocs } = storedCounts(fake);
    const m = es.metrics();
    const r = recordScenario(
      stored.report("es 429 on 10% items, 503 on 5% requests", gen.sentSeqs(), {
        bulkRequests: fake.bulkRequests,
        requests503: m.status_503 ?? 0,
        items429: m.item_status_429 ?? 0,
        retriedRecords: retried,
        duplicateDocs,
      }),
    );
    expect(r).toMatchObject({ sent: SENT, unique: SENT, missing: 0, duplicates: 0, unexpected: 0 });
    expect(duplicateDocs).toBe(0);
    expect(fake.documentCount).toBe(SENT);
    // The storm happened as designed: 1000 items once, 100 of them twice; and whole requests were refused.
    expect(m.item_status_429).toBe(1_100);
    let every20th = 0;
    for (let i = 0; i < fake.bulkRequests; i++) if (i % 20 === 7) every20th++;
    expect(m.status_503).toBe(every20th);
    expect(every20th).toBeGreaterThan(0);
    expect(report.sinks.es).toMatchObject({ received: SENT, delivered: SENT, pending: 0, droppedTotal: 0, deadLettered: 0 });
    // Only failed items were resent: an item's attempts at the server = 1 + its own 429s + its requests' 503s.
    expect(attempts.arrivals).toBe(SENT + 1_100);
  });

  it("answers lost after the documents were stored (4 % of requests): resends answer 409, 0 duplicate documents", async () => {
    const { fake, es, agg } = await setup();
    // Store as usual, then send an answer the sink cannot use: the records come back as retry, although stored.
    const lost: RequestBehavior = { kind: "mutate", mutate: () => ({ took: 1, errors: false }) };
    fake.onBulk = (_req, index) => (index % 25 === 11 ? lost : undefined);
    agg.addSink(es);
    await agg.start();
    const gen = new SequenceGenerator();
    await generate(agg, gen, SENT);
    const report = await agg.stop({ timeoutMs: 30_000 });

    const { stored, duplicateDocs } = storedCounts(fake);
    const received = new SequenceTracker();
    received.addAll(fake.received.map(seqOf));
    const m = es.metrics();
    const r = recordScenario(
      stored.report("es answer lost after storing (4% of requests)", gen.sentSeqs(), {
        resentItems: received.arrivals - SENT,
        conflicts409: m.item_status_409 ?? 0,
        duplicateDocs,
      }),
    );
    expect(received.arrivals - SENT).toBeGreaterThan(0); // the resends did happen…
    expect(m.item_status_409).toBe(received.arrivals - SENT); // …and each was a 409, counted as delivered
    expect(r).toMatchObject({ sent: SENT, unique: SENT, missing: 0, duplicates: 0, unexpected: 0 });
    expect(duplicateDocs).toBe(0);
    expect(report.sinks.es).toMatchObject({ received: SENT, delivered: SENT, pending: 0, droppedTotal: 0 });
  });

  it("400 on 1 % of items (after a 429): exactly those in the dead-letter sink with their reasons, the rest delivered", async () => {
    const { fake, es, agg, attempts } = await setup();
    const isBad = (seq: number): boolean => seq % 100 === 42;
    const reason = (seq: number): string => `failed to parse field [seq] of type [long] in document ${seq}`;
    fake.itemReply = (op) => {
      const seq = seqOf(op);
      attempts.add(seq);
      if (!isBad(seq)) return undefined;
      // First a 429 (retried), then the final word: a mapping error that can never succeed.
      return attempts.countOf(seq) === 1 ? 429 : { status: 400, error: { type: "document_parsing_exception", reason: reason(seq) } };
    };
    const dlq = new MemorySink({ name: "dlq" });
    agg.addSink(es, { deadLetter: "dlq" }).addSink(dlq);
    await agg.start();
    const gen = new SequenceGenerator();
    await generate(agg, gen, SENT);
    const report = await agg.stop({ timeoutMs: 30_000 });

    const bad = gen.sentSeqs().filter(isBad);
    const good = gen.sentSeqs().filter((s) => !isBad(s));
    const { stored, duplicateDocs } = storedCounts(fake);
    const dead = new SequenceTracker();
    dead.addAll(dlq.records.map((rec) => rec.seq as number));
    const r = recordScenario(
      stored.report("es 400 on 1% items → dead letter", good, {
        deadLettered: dead.arrivals,
        deadLetterMissing: dead.report("", bad).missing,
        duplicateDocs,
      }),
    );
    expect(r).toMatchObject({ sent: good.length, unique: good.length, missing: 0, duplicates: 0, unexpected: 0 });
    expect(duplicateDocs).toBe(0);
    // Exactly the rejected ones, once each, none stored in Elasticsearch.
    expect(dead.report("dlq", bad)).toMatchObject({ sent: 100, unique: 100, duplicates: 0, missing: 0, unexpected: 0 });
    expect(bad.filter((s) => stored.countOf(s) > 0)).toEqual([]);
    for (const rec of dlq.records) {
      const seq = rec.seq as number;
      expect(rec.dead_letter).toMatchObject({ sink: "es", reason: `document_parsing_exception: ${reason(seq)}`, attempts: 2 });
      expect(rec.message).toBe(`seq ${seq}`); // the original record, unchanged apart from dead_letter
    }
    expect(report.sinks.es).toMatchObject({ received: SENT, delivered: SENT - 100, deadLettered: 100, droppedTotal: 0, pending: 0 });
    expect(report.sinks.dlq).toMatchObject({ received: 100, delivered: 100, pending: 0 });
  });

  it("a document answered 500 at every attempt is retried on its own and holds back none of the documents after it", async () => {
    // Backoffs at their ceilings (3 s, then 6 s), so the order below does not depend on jitter.
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const fake = await FakeElasticsearch.start();
    cleanups.push(() => fake.close());
    const poison = 3;
    const attempts = new SequenceTracker();
    fake.itemReply = (op) => {
      attempts.add(seqOf(op));
      return seqOf(op) === poison ? { status: 500, error: { type: "exception", reason: "boom" } } : undefined;
    };
    const agg = new Aggregator({ batch: { maxRecords: 250, maxWaitMs: 5 }, retry: { baseDelayMs: 3_000 } }).addSink(
      new ElasticsearchSink({ name: "es", node: fake.url, index: "logs" }),
    );
    cleanups.push(() => agg.stop({ timeoutMs: 1_000 }));
    await agg.start();
    const gen = new SequenceGenerator();
    await generate(agg, gen, 500);
    // Its first attempt came with its batch, the second alone (a bulk request of one item that failed): the next is
    // about 6 s away, far more than storing the 500 documents below takes.
    await waitFor(() => attempts.countOf(poison) === 2, { timeout: 10_000, message: () => `a second attempt of the failing document, have ${attempts.countOf(poison)}` });
    await generate(agg, gen, 1_000);
    const others = gen.sentSeqs().filter((s) => s !== poison);
    await waitFor(() => fake.stored.length >= others.length, { timeout: 10_000, message: () => `${others.length} documents stored, have ${fake.stored.length}` });
    // Stored before that next attempt: they did not wait for it.
    expect(attempts.countOf(poison)).toBe(2);
    const { stored } = storedCounts(fake);
    expect(stored.report("es one document 500 forever", others)).toMatchObject({ missing: 0, duplicates: 0, unexpected: 0 });
    const report = await agg.stop({ timeoutMs: 0 });
    expect(report.sinks.es).toMatchObject({ received: 1_000, delivered: 999, pending: 1 });
    vi.restoreAllMocks();
  });

  it("stop({ timeoutMs }) during a 503 storm returns; pending equals exactly what the receiver is missing", async () => {
    // A queue that takes everything, so the generator is done before the storm and the rest waits in the engine.
    const { fake, es, agg, attempts } = await setup(SENT);
    let storm = false;
    fake.itemReply = (op) => {
      attempts.add(seqOf(op));
      return undefined;
    };
    attempts.onCount(3_000, () => (storm = true));
    const unavailable: RequestBehavior = { kind: "status", status: 503 };
    fake.onBulk = () => (storm ? unavailable : undefined);
    agg.addSink(es);
    let retryEvents = 0;
    agg.on("retry", () => retryEvents++);
    await agg.start();
    const gen = new SequenceGenerator();
    await generate(agg, gen, SENT);
    await waitFor(() => storm && retryEvents >= 20, { timeout: 20_000, message: () => `20 retries into the storm, have ${retryEvents}` });
    const report = await agg.stop({ timeoutMs: 300 });

    const { stored, duplicateDocs } = storedCounts(fake);
    const es1 = report.sinks.es!;
    const r = recordScenario(
      stored.report("es stop({timeoutMs:300}) during 503 storm", gen.sentSeqs(), {
        pending: es1.pending,
        delivered: es1.delivered,
        timedOut: String(report.timedOut),
        retryEvents,
      }),
    );
    expect(report.timedOut).toBe(true);
    expect(r.missing).toBeGreaterThan(0);
    expect(es1.pending).toBe(r.missing);
    expect(es1.delivered).toBe(r.unique);
    expect(es1.received).toBe(es1.delivered + es1.deadLettered + es1.droppedTotal + es1.pending);
    expect(r).toMatchObject({ duplicates: 0, unexpected: 0 });
    expect(duplicateDocs).toBe(0);
  });
});
