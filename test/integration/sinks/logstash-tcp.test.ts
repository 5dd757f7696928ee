// Logstash tcp input (json_lines) on 127.0.0.1: framing of 100k records, a receiver killed and restarted mid-stream,
// and mutual TLS (Logstash's tcp input requires a client certificate by default).
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { LogRecordInput } from "../../../src/record.js";
import { LogstashSink, type LogstashSinkOptions } from "../../../src/sinks/logstash.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { deliverAll, outcomesOf } from "../../helpers/receivers/deliver-all.js";
import { StreamReceiver, restartIfKilled, type StreamReceiverOptions } from "../../helpers/receivers/stream.js";
import { testPki } from "../../helpers/tls.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const signal = (): AbortSignal => new AbortController().signal;
const makeRecords = (n: number): LogRecordInput[] => {
  const out: LogRecordInput[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ "@timestamp": new Date(1_714_564_800_000 + i).toISOString(), message: `event ${i} "quoted"\nsecond line`, n: i, service: { name: "api" } });
  }
  return out;
};

async function start(o: Partial<LogstashSinkOptions> = {}, rxOptions: Partial<StreamReceiverOptions> = {}) {
  const rx = await StreamReceiver.start({ delimiter: "\n", ...rxOptions });
  const sink = new LogstashSink({
    name: "logstash-tcp",
    url: `${rxOptions.tls === undefined ? "tcp" : "tls"}://127.0.0.1:${rx.port}`,
    reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 10_000,
    ...o,
  });
  cleanups.push(() => rx.close(), () => sink.close());
  return { rx, sink };
}

describe("LogstashSink over TCP (json_lines)", () => {
  it("writes 100k records as the canonical JSON, one per line, every line terminated", async () => {
    const { rx, sink } = await start();
    const records = makeRecords(100_000);
    const batches = [];
    for (let b = 0; b < records.length; b += 5_000) batches.push(createBatch(records.slice(b, b + 5_000)));
    for (const batch of batches) {
      const result = await sink.send(batch, { signal: signal() });
      expect(outcomesOf(result, batch.length).every((o) => o.status === "delivered")).toBe(true);
    }
    await sink.close();
    await expect.poll(() => rx.frames.length, { timeout: 10_000 }).toBe(100_000);
    expect(rx.tails).toEqual([]);
    expect(rx.connections).toBe(1);
    const expected = batches.flatMap((b) => b.json);
    for (let i = 0; i < expected.length; i++) {
      if (rx.frames[i] !== expected[i]) throw new Error(`line ${i} differs: ${rx.frames[i]!.slice(0, 120)}`);
    }
    expect(JSON.parse(rx.frames[7]!)).toMatchObject({ message: 'event 7 "quoted"\nsecond line', n: 7, service: { name: "api" } });
  });

  it("a reset in a quiet period: the replay window goes out again without another send", async () => {
    const { rx, sink } = await start();
    const batch = createBatch(makeRecords(300));
    expect(outcomesOf(await sink.send(batch, { signal: signal() }), 300).every((o) => o.status === "delivered")).toBe(true);
    await expect.poll(() => rx.frames.length, { timeout: 10_000, message: "frames before the reset" }).toBe(300);
    rx.resetAll();
    await expect.poll(() => rx.frames.length, { timeout: 10_000, message: "frames after the reset, with no further send" }).toBe(600);
    await expect.poll(() => sink.metrics().records_resend_pending, { timeout: 5_000, message: "records_resend_pending" }).toBe(0);
    expect(rx.frames.slice(300)).toEqual(batch.json);
    expect(sink.metrics()).toMatchObject({ records_resent: 300, records_resend_lost: 0, reconnects: 1 });
    expect(rx.connections).toBe(2);
  });

  it("receiver killed mid-stream and restarted: nothing reported delivered is missing, the rest is retried", async () => {
    const { rx, sink } = await start({}, { killAfterFrames: 40_000 });
    const records = makeRecords(100_000);
    const report = await deliverAll(sink, records, { batchSize: 3_000, onRetry: () => restartIfKilled(rx) });
    expect(rx.kills).toBeGreaterThanOrEqual(1);
    expect([...report.retryReasons.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    await sink.close();
    const got = new Set<number>();
    await expect
      .poll(() => {
        for (const f of rx.frames.splice(0)) got.add((JSON.parse(f) as { n: number }).n);
        return got.size;
      }, { timeout: 10_000 })
      .toBe(100_000);
    expect([...report.delivered].filter((n) => !got.has(n))).toEqual([]);
    expect(report.delivered.size).toBe(100_000);
  });
});

describe("LogstashSink over TCP, hostile receiver", () => {
  it("a receiver that stops reading: the write stalls, times out, flushed records delivered, the rest retried", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      s.pause(); // never read: the kernel buffers fill, then the sink's writes stop completing
      sockets.push(s);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const sink = new LogstashSink({ name: "stall", url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`, requestTimeoutMs: 300 });
    cleanups.push(() => sink.close());
    const big = "x".repeat(10_000);
    const records = Array.from({ length: 5_000 }, (_x, i) => ({ "@timestamp": "2024-05-01T12:00:00Z", message: big, n: i }));
    const outcomes = outcomesOf(await sink.send(createBatch(records), { signal: signal() }), records.length);
    const firstRetry = outcomes.findIndex((o) => o.status !== "delivered");
    expect(firstRetry).toBeGreaterThanOrEqual(0);
    // Delivered ones form a prefix (they were flushed in order), everything after is a retry.
    expect(outcomes.slice(firstRetry).every((o) => o.status === "retry" && o.reason === "write_timeout")).toBe(true);
    expect((outcomes[firstRetry] as { error: { code: string } }).error.code).toBe("ERR_SINK_TIMEOUT");
  });
});

describe("LogstashSink over TLS", () => {
  const mtlsServer = (): StreamReceiverOptions["tls"] => {
    const pki = testPki();
    return { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true };
  };

  it("mutual TLS: with the client certificate it delivers", async () => {
    const pki = testPki();
    const { rx, sink } = await start({ tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }, { tls: mtlsServer() });
    await sink.open({ signal: signal() });
    const result = await sink.send(createBatch(makeRecords(500)), { signal: signal() });
    expect(outcomesOf(result, 500).every((o) => o.status === "delivered")).toBe(true);
    await sink.close();
    await expect.poll(() => rx.frames.length, { timeout: 10_000 }).toBe(500);
  });

  it("mutual TLS: without a client certificate it fails with ERR_TLS and reports nothing delivered", async () => {
    const pki = testPki();
    const { rx, sink } = await start({ tls: { ca: pki.ca } }, { tls: mtlsServer() });
    await expect(sink.open({ signal: signal() })).rejects.toMatchObject({ code: "ERR_TLS" });
    const result = await sink.send(createBatch(makeRecords(3)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "tls_error" });
    expect((result as { error: { code: string } }).error.code).toBe("ERR_TLS");
    expect(rx.frames).toEqual([]);
  });

  it("without the CA the server certificate is refused with ERR_TLS", async () => {
    const pki = testPki();
    const { sink } = await start({ tls: { cert: pki.clientCert, key: pki.clientKey } }, { tls: mtlsServer() });
    await expect(sink.open({ signal: signal() })).rejects.toMatchObject({ code: "ERR_TLS" });
  });
});
