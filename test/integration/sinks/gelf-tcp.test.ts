// GELF over TCP and TLS on 127.0.0.1: NUL framing of 100k records, a receiver killed and restarted mid-stream, and
// certificate verification with a CA made at run time.
import { afterEach, describe, expect, it } from "vitest";
import type { LogRecordInput } from "../../../src/record.js";
import { GelfSink, type GelfSinkOptions } from "../../../src/sinks/gelf.js";
import { DEFAULT_GELF_LEVELS, toGelf } from "../../../src/sinks/gelf-message.js";
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
    out.push({
      "@timestamp": new Date(1_714_564_800_000 + i).toISOString(),
      message: i % 10 === 0 ? `line one of ${i}\n\tat frame two` : `record ${i}`,
      log: { level: i % 2 === 0 ? "info" : "error", file: { path: "/var/log/app.log" } },
      n: i,
    });
  }
  return out;
};
const mapping = { host: "tcp-host", levels: DEFAULT_GELF_LEVELS, flattenDepth: 4 };

async function start(o: Partial<GelfSinkOptions> = {}, rxOptions: Partial<StreamReceiverOptions> = {}) {
  const rx = await StreamReceiver.start({ delimiter: "\0", ...rxOptions });
  const sink = new GelfSink({
    name: "gelf-tcp",
    url: `${o.tls === undefined ? "tcp" : "tls"}://127.0.0.1:${rx.port}`,
    host: "tcp-host",
    reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 10_000,
    ...o,
  });
  cleanups.push(() => rx.close(), () => sink.close());
  return { rx, sink };
}

describe("GelfSink over TCP", () => {
  it("frames 100k records with a NUL after every message, in order, with the exact GELF JSON", async () => {
    const { rx, sink } = await start();
    const records = makeRecords(100_000);
    for (let b = 0; b < records.length; b += 5_000) {
      const result = await sink.send(createBatch(records.slice(b, b + 5_000)), { signal: signal() });
      expect(outcomesOf(result, 5_000).every((o) => o.status === "delivered")).toBe(true);
    }
    await sink.close();
    await expect.poll(() => rx.frames.length, { timeout: 10_000, message: "receiver frame count" }).toBe(100_000);
    expect(rx.tails).toEqual([]); // the last message is NUL-terminated too
    expect(rx.connections).toBe(1); // one persistent connection
    const expected = createBatch(records).records;
    for (let i = 0; i < records.length; i++) {
      if (rx.frames[i] !== JSON.stringify(toGelf(expected[i]!, mapping))) {
        throw new Error(`frame ${i} differs: ${rx.frames[i]!.slice(0, 120)}`);
      }
    }
    const first = JSON.parse(rx.frames[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ version: "1.1", host: "tcp-host", short_message: "line one of 0", level: 6, _log_file_path: "/var/log/app.log" });
    expect(first.timestamp).toBe(1714564800);
  });

  it("receiver killed mid-stream and restarted: nothing reported delivered is missing, the rest is retried", async () => {
    const { rx, sink } = await start({}, { killAfterFrames: 30_000 });
    const records = makeRecords(100_000);
    const report = await deliverAll(sink, records, { batchSize: 2_000, onRetry: () => restartIfKilled(rx) });
    expect(rx.kills).toBeGreaterThanOrEqual(1); // once per 30k frames received in one incarnation
    const retried = [...report.retryReasons.values()].reduce((a, b) => a + b, 0);
    expect(retried).toBeGreaterThan(0);
    expect([...report.retryReasons.keys()].every((r) => ["connection_closed", "connection_error", "connect_error"].includes(r))).toBe(true);
    await sink.close();
    await expect.poll(() => new Set(rx.frames).size, { timeout: 10_000 }).toBeGreaterThanOrEqual(100_000);
    const got = new Set<number>();
    for (const f of rx.frames) got.add((JSON.parse(f) as { _n: number })._n);
    const missing = [...report.delivered].filter((n) => !got.has(n));
    expect(missing).toEqual([]);
    expect(report.delivered.size).toBe(100_000);
    expect(got.size).toBe(100_000);
    expect(sink.metrics().reconnects).toBeGreaterThanOrEqual(1);
  });

  it("a refused connection is a retry with the reconnect backoff, not an exception", async () => {
    const { rx, sink } = await start();
    await rx.close();
    const result = await sink.send(createBatch(makeRecords(3)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "connect_error" });
    expect((result as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
    expect((result as { error?: { code?: string } }).error?.code).toBe("ERR_SINK_SEND");
  });

  it("an aborted send reports retry and never hangs", async () => {
    const { sink } = await start();
    const ac = new AbortController();
    ac.abort();
    const result = await sink.send(createBatch(makeRecords(3)), { signal: ac.signal });
    expect(result).toMatchObject({ status: "retry", reason: "aborted" });
  });
});

describe("GelfSink over TLS", () => {
  it("verifies the server with the configured CA and delivers", async () => {
    const pki = testPki();
    const { rx, sink } = await start({ tls: { ca: pki.ca } }, { tls: { key: pki.serverKey, cert: pki.serverCert } });
    await sink.open({ signal: signal() });
    const result = await sink.send(createBatch(makeRecords(1_000)), { signal: signal() });
    expect(outcomesOf(result, 1_000).every((o) => o.status === "delivered")).toBe(true);
    await sink.close();
    await expect.poll(() => rx.frames.length, { timeout: 10_000 }).toBe(1_000);
  });

  it("without the CA: open() throws ERR_TLS and send() reports a retry carrying ERR_TLS", async () => {
    const pki = testPki();
    const { rx, sink } = await start({ tls: {} }, { tls: { key: pki.serverKey, cert: pki.serverCert } });
    await expect(sink.open({ signal: signal() })).rejects.toMatchObject({ code: "ERR_TLS" });
    const result = await sink.send(createBatch(makeRecords(2)), { signal: signal() });
    expect(result).toMatchObject({ status: "retry", reason: "tls_error" });
    expect((result as { error: { code: string; message: string } }).error.code).toBe("ERR_TLS");
    expect((result as { error: { message: string } }).error.message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|issuer/i);
    expect(rx.frames).toEqual([]);
  });

  it("insecureSkipVerify connects without the CA", async () => {
    const pki = testPki();
    const { rx, sink } = await start({ tls: { insecureSkipVerify: true } }, { tls: { key: pki.serverKey, cert: pki.serverCert } });
    const result = await sink.send(createBatch(makeRecords(5)), { signal: signal() });
    expect(outcomesOf(result, 5).every((o) => o.status === "delivered")).toBe(true);
    await sink.close();
    await expect.poll(() => rx.frames.length, { timeout: 10_000 }).toBe(5);
  });
});
