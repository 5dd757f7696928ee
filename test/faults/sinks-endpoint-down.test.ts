// A sink's endpoint goes away mid-stream and comes back: Elasticsearch refusing connections, a Logstash json_lines
// receiver shut down (and one reset), a GELF TCP receiver closed. Records come from agg.write() through the real
// engine; every scenario ends on the sequence counts at the receiver. Faults are timed by what the receiver has
// counted, recoveries by the retries the sink reported.
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, ElasticsearchSink, GelfSink, LogstashSink, type Sink } from "../../src/index.js";
import { FakeElasticsearch } from "../helpers/fake-elasticsearch.js";
import { StreamReceiver } from "../helpers/receivers/stream.js";
import { SequenceGenerator, SequenceTracker, recordScenario } from "../helpers/sequence.js";
import { waitFor } from "../helpers/wait-for.js";

const SENT = 10_000;
// The TCP receivers read about 5 MB (~4.5k padded records) of kernel backlog after each shutdown; 20k records with a
// shutdown every 2500 frames gives at least two shutdowns while the sender still has data.
const SENT_TCP = 20_000;
const CHUNK = 500;
const BATCH = 250;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** The engine with small, fast retries, and a bounded `block` queue so the generator is paced by delivery. */
function aggregatorWith(sink: Sink): Aggregator {
  const agg = new Aggregator({
    queue: { maxRecords: 2_000, whenFull: "block" },
    batch: { maxRecords: BATCH, maxWaitMs: 5 },
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
  }).addSink(sink);
  cleanups.push(() => agg.stop({ timeoutMs: 1_000 }));
  return agg;
}

// About 1 KiB per record for the TCP receivers: 20 MB is more than loopback socket buffers hold, so TCP flow control
// keeps the sender inside the stream when the receiver goes away (with small records it would already be done).
const PAD = "x".repeat(1_000);

async function generate(agg: Aggregator, gen: SequenceGenerator, total: number, pad = false): Promise<void> {
  const extra = pad ? () => ({ pad: PAD }) : undefined;
  while (gen.sent < total) await agg.write(gen.records(Math.min(CHUNK, total - gen.sent), extra));
}

/** Calls `restart` once `n` retries were reported while `down()` holds; one restart at a time. */
function restartAfterRetries(agg: Aggregator, n: number, down: () => boolean, restart: () => Promise<void>): { restarts: number } {
  const state = { restarts: 0 };
  let seen = 0;
  let busy = false;
  agg.on("retry", () => {
    if (busy || !down()) return;
    if (++seen < n) return;
    busy = true;
    seen = 0;
    void restart().then(() => {
      state.restarts++;
      busy = false;
    });
  });
  return state;
}

/**
 * 20,000 padded records through a LogstashSink (json_lines) into a receiver that resets every connection after
 * `resetAfter` new frames. With a replay window the receiver comes back by itself once generation is done (a sink
 * cannot resend to a receiver that stays down: what it still owed would count in records_resend_lost).
 */
async function resetScenario(name: string, resetAfter: number, resendWindowBytes: number | undefined) {
  const rx = await ResetReceiver.start(resetAfter);
  cleanups.push(() => rx.close());
  const sink = new LogstashSink({ name: "tcp", url: `tcp://127.0.0.1:${rx.port}`, reconnect: { initialDelayMs: 5, maxDelayMs: 50 }, resendWindowBytes });
  const agg = aggregatorWith(sink);
  const restarted = restartAfterRetries(agg, 5, () => !rx.listening, () => rx.listen());
  await agg.start();
  const gen = new SequenceGenerator();
  await generate(agg, gen, SENT_TCP, true);
  if (resendWindowBytes !== 0) {
    rx.autoRestart = true;
    if (!rx.listening) await rx.listen();
  }
  const report = await agg.stop({ timeoutMs: 30_000 });
  await waitFor(() => rx.open === 0, { timeout: 5_000, message: "the sink's last connection closed at the receiver" });
  const t = new SequenceTracker();
  t.addJson(rx.frames);
  const m = sink.metrics();
  const r = recordScenario(
    t.report(name, gen.sentSeqs(), {
      resets: rx.resets,
      restarts: restarted.restarts,
      recordsResent: m["records_resent"]!,
      resendLost: m["records_resend_lost"]!,
    }),
  );
  return { rx, sink, report, r, restarted };
}

describe("sink endpoint down, then back", () => {
  it("Elasticsearch refuses connections after 3000 items, reopens on the same port after 10 retries: 0 missing, 0 duplicate documents", async () => {
    const fake = await FakeElasticsearch.start();
    cleanups.push(() => fake.close());
    const arrived = new SequenceTracker();
    fake.itemReply = (op) => {
      arrived.add(op.doc!.seq as number);
      return undefined; // normal semantics: store, or 409 for a create of an existing _id
    };
    let down = false;
    // Closed from inside a request: the items of that request are stored but the answer is lost, so the engine
    // resends them; deterministic ids turn the resend into 409s.
    arrived.onCount(3_000, () => {
      down = true;
      void fake.close();
    });
    const sink = new ElasticsearchSink({ name: "es", node: fake.url, index: "logs", id: "deterministic", requestTimeoutMs: 5_000 });
    const agg = aggregatorWith(sink);
    const retried = { events: 0 };
    agg.on("retry", () => retried.events++);
    const reopened = restartAfterRetries(agg, 10, () => down, async () => {
      await fake.listen();
      down = false;
    });
    await agg.start();
    const gen = new SequenceGenerator();
    await generate(agg, gen, SENT);
    const report = await agg.stop({ timeoutMs: 30_000 });

    const stored = new SequenceTracker();
    const perId = new Map<string, number>();
    for (const op of fake.stored) {
      stored.add(op.doc!.seq as number);
      const id = String(op.meta._id);
      perId.set(id, (perId.get(id) ?? 0) + 1);
    }
    const duplicateDocs = [...perId.values()].reduce((n, c) => n + c - 1, 0);
    const r = recordScenario(
      stored.report("es connection refused, then back", gen.sentSeqs(), {
        restarts: reopened.restarts,
        retryEvents: retried.events,
        itemsReceived: arrived.arrivals,
        duplicateDocs,
      }),
    );
    expect(reopened.restarts).toBe(1);
    expect(retried.events).toBeGreaterThanOrEqual(10);
    expect(r).toMatchObject({ sent: SENT, unique: SENT, missing: 0, duplicates: 0, unexpected: 0 });
    expect(duplicateDocs).toBe(0);
    expect(fake.documentCount).toBe(SENT);
    expect(report.sinks.es).toMatchObject({ received: SENT, delivered: SENT, pending: 0, droppedTotal: 0 });
  });

  for (const proto of ["logstash", "gelf"] as const) {
    it(`${proto === "logstash" ? "Logstash json_lines" : "GELF TCP"}: receiver shut down after every 2500 frames, restarted after 5 retries: 0 missing`, async () => {
      const rx = await StreamReceiver.start({ delimiter: proto === "logstash" ? "\n" : "\0", killAfterFrames: 2_500 });
      cleanups.push(() => rx.close());
      const common = { reconnect: { initialDelayMs: 5, maxDelayMs: 50 }, connectTimeoutMs: 5_000, requestTimeoutMs: 5_000 };
      const sink =
        proto === "logstash"
          ? new LogstashSink({ name: "tcp", url: `tcp://127.0.0.1:${rx.port}`, ...common })
          : new GelfSink({ name: "tcp", url: `tcp://127.0.0.1:${rx.port}`, ...common });
      const agg = aggregatorWith(sink);
      const framesAtRestart: number[] = [];
      const restarted = restartAfterRetries(agg, 5, () => !rx.listening, async () => {
        await rx.kill(); // resolves once the previous server has fully closed
        framesAtRestart.push(rx.frames.length);
        await rx.listen();
      });
      await agg.start();
      const gen = new SequenceGenerator();
      await generate(agg, gen, SENT_TCP, true);
      const report = await agg.stop({ timeoutMs: 30_000 });

      // stop() closed the sink's connection (FIN); the receiver may still be reading what the kernel holds.
      const field = proto === "logstash" ? "seq" : "_seq";
      const seen = (): SequenceTracker => {
        const t = new SequenceTracker();
        t.addJson(rx.frames, field);
        return t;
      };
      await waitFor(() => seen().unique === SENT_TCP, { timeout: 5_000, message: () => `${SENT_TCP} seqs at the receiver, have ${seen().unique}` }).catch(
        () => undefined, // the counts below say what is missing
      );
      const r = recordScenario(
        seen().report(`${proto} tcp receiver shut down (FIN) and restarted`, gen.sentSeqs(), {
          kills: rx.kills,
          restarts: restarted.restarts,
          connections: rx.connections,
          cutFrames: rx.tails.length,
          framesAtRestart: framesAtRestart.join("/"),
        }),
      );
      expect(rx.kills).toBeGreaterThanOrEqual(2);
      expect(restarted.restarts).toBeGreaterThanOrEqual(1); // the sender was cut off mid-stream and had to retry
      expect(r).toMatchObject({ sent: SENT_TCP, unique: SENT_TCP, missing: 0, unexpected: 0 });
      // No acknowledgements: the batch being written when the connection broke is retried, and the replay window
      // (what the receiver may not have read) is written again; nothing else arrives twice.
      const resent = sink.metrics()["records_resent"]!;
      expect(resent).toBeGreaterThan(0);
      expect(r.duplicates).toBeLessThanOrEqual(resent + rx.kills * BATCH);
      expect(report.sinks.tcp).toMatchObject({ received: SENT_TCP, delivered: SENT_TCP, pending: 0, droppedTotal: 0 });
    });
  }

  // json_lines has no acknowledgements: bytes the receiver's kernel accepted but the receiver never read die with a
  // reset, after the sender was told they were written. The sink's replay window writes its most recent bytes again
  // on the next connection, so a reset costs duplicates instead of records.
  it("Logstash json_lines: receiver RESETS after every 2300 new frames (unread kernel bytes discarded): the replay window makes it 0 missing", async () => {
    const { rx, sink, report, r, restarted } = await resetScenario("logstash tcp receiver reset (RST), replay window", 2_300, undefined);
    const m = sink.metrics();
    expect(rx.resets).toBeGreaterThanOrEqual(2);
    expect(restarted.restarts).toBeGreaterThanOrEqual(1);
    expect(report.sinks.tcp).toMatchObject({ received: SENT_TCP, delivered: SENT_TCP, pending: 0, droppedTotal: 0 });
    expect(r).toMatchObject({ sent: SENT_TCP, unique: SENT_TCP, missing: 0, unexpected: 0 });
    expect(m["records_resent"]).toBeGreaterThan(0);
    expect(m["records_resend_lost"]).toBe(0);
    // Duplicates come from the resends and from the batch being written at each reset (retried whole).
    expect(r.duplicates).toBeLessThanOrEqual(m["records_resent"]! + rx.resets * BATCH);
  });

  // The same receiver with the window turned off: what was in flight at each reset is lost, and only there.
  it("Logstash json_lines with resendWindowBytes: 0: loss only right after the last record read before each reset", async () => {
    const { rx, sink, report, r } = await resetScenario("logstash tcp receiver reset (RST), no replay window", 2_500, 0);
    expect(rx.resets).toBeGreaterThanOrEqual(2);
    expect(sink.metrics()["records_resent"]).toBe(0);
    // The engine cannot know: everything was handed to the kernel, so everything counts as delivered.
    expect(report.sinks.tcp).toMatchObject({ received: SENT_TCP, delivered: SENT_TCP, pending: 0, droppedTotal: 0 });
    expect(r.unexpected).toBe(0);
    expect(r.duplicates).toBeLessThanOrEqual(rx.resets * BATCH);
    // Every gap starts right after the last record read before a reset: nothing is lost anywhere else.
    const gapStarts = r.missingRanges === "" ? [] : r.missingRanges.split(", ").map((g) => Number(g.split("-")[0]));
    expect(gapStarts.length).toBeLessThanOrEqual(rx.resets);
    for (const start of gapStarts) expect(rx.lastSeqAtReset).toContain(start - 1);
  });
});

/**
 * A json_lines receiver that crashes the hard way: after K frames it resets every connection (RST), which makes
 * the kernel discard whatever it had accepted but the receiver had not read yet.
 */
class ResetReceiver {
  readonly frames: string[] = [];
  /** The seq of the last frame read before each reset. */
  readonly lastSeqAtReset: number[] = [];
  resets = 0;
  open = 0;
  /** Listen again right after each reset (the crashed receiver is restarted by its supervisor). */
  autoRestart = false;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private framesThisLife = 0;
  private readonly seen = new Set<string>();

  private constructor(
    private readonly killAfterFrames: number,
    public port: number,
  ) {}

  static async start(killAfterFrames: number): Promise<ResetReceiver> {
    const r = new ResetReceiver(killAfterFrames, 0);
    await r.listen();
    return r;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  async listen(): Promise<void> {
    this.framesThisLife = 0;
    const server = net.createServer((s) => this.onSocket(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private reset(): void {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.resets++;
    this.lastSeqAtReset.push((JSON.parse(this.frames.at(-1)!) as { seq: number }).seq);
    server.close();
    for (const s of this.sockets) s.resetAndDestroy();
    if (this.autoRestart) void this.listen();
  }

  private onSocket(socket: net.Socket): void {
    this.sockets.add(socket);
    this.open++;
    let buffered = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      if (this.server === undefined) return; // reset: nothing more is read
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const f of parts) {
        this.frames.push(f);
        // It crashes after K records it had not seen: a resent record does not bring the crash nearer.
        if (!this.seen.has(f)) {
          this.seen.add(f);
          this.framesThisLife++;
        }
      }
      if (this.framesThisLife >= this.killAfterFrames) this.reset();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.sockets.delete(socket);
      this.open--;
    });
  }
}
