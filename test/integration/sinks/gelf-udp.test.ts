// GELF over UDP on 127.0.0.1, every datagram checked by the test's own decoder (test/helpers/receivers/gelf-udp.ts).
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LogRecordInput } from "../../../src/record.js";
import { Aggregator } from "../../../src/aggregator.js";
import type { DropEvent, RetryEvent } from "../../../src/events.js";
import { GelfSink, type GelfSinkOptions } from "../../../src/sinks/gelf.js";
import { UdpSender } from "../../../src/sinks/gelf-udp-sender.js";
import { DEFAULT_GELF_LEVELS, toGelf } from "../../../src/sinks/gelf-message.js";
import type { RecordOutcome, SendResult } from "../../../src/sinks/sink.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { GelfUdpReceiver } from "../../helpers/receivers/gelf-udp.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(o: Partial<GelfSinkOptions> = {}, maxDatagram = 1420): Promise<{ sink: GelfSink; rx: GelfUdpReceiver }> {
  const rx = await GelfUdpReceiver.start({ maxDatagram });
  const sink = new GelfSink({ name: "gelf", url: `udp://127.0.0.1:${rx.port}`, host: "test-host", ...o });
  await sink.open({ signal: new AbortController().signal });
  cleanups.push(() => rx.close(), () => sink.close());
  return { sink, rx };
}

/** Incompressible-ish printable text (base64 of random bytes) of `n` characters. */
const noise = (n: number): string => randomBytes(Math.ceil((n * 3) / 4) + 3).toString("base64").slice(0, n);
const record = (message: string, extra: Record<string, unknown> = {}): LogRecordInput => ({
  "@timestamp": "2024-05-01T12:00:00.123Z",
  message,
  log: { level: "warn" },
  ...extra,
});
const expectedJson = (r: LogRecordInput): string =>
  JSON.stringify(toGelf(createBatch([r]).records[0]!, { host: "test-host", levels: DEFAULT_GELF_LEVELS, flattenDepth: 4 }));

function outcomesOf(result: SendResult, n: number): RecordOutcome[] {
  if (result === undefined) return new Array<RecordOutcome>(n).fill({ status: "delivered" });
  if ("outcomes" in result) return [...result.outcomes];
  return new Array<RecordOutcome>(n).fill(result);
}

async function received(rx: GelfUdpReceiver, n: number): Promise<void> {
  await vi.waitFor(
    () => {
      if (rx.messages.length < n) throw new Error(`receiver decoded ${rx.messages.length}/${n} messages (${rx.incomplete} incomplete, errors: ${rx.errors.slice(0, 3).join("; ")})`);
    },
    { timeout: 10_000, interval: 5 },
  );
}

describe("GelfSink over UDP", () => {
  it.each([
    ["100 B, unchunked", 100, {} as Partial<GelfSinkOptions>, 1420, (c: number) => c === 1] as const,
    ["10 KB, chunked at the WAN size", 10_000, {}, 1420, (c: number) => c > 1 && c <= 128],
    ["1 MB, chunked at the LAN size", 1_000_000, { chunkSize: "lan" as const }, 8192, (c: number) => c > 64 && c <= 128],
    ["10 KB, zlib", 10_000, { compression: "zlib" as const }, 1420, (c: number) => c > 1],
    ["10 KB, uncompressed", 10_000, { compression: "none" as const }, 1420, (c: number) => c > 5],
  ] as [string, number, Partial<GelfSinkOptions>, number, (c: number) => boolean][])("%s: headers, ids and payload are correct", async (_name, size, o, maxDatagram, chunksOk) => {
    const { sink, rx } = await setup(o, maxDatagram);
    const r = record(noise(size), { seq: 1, "user.ok": true });
    const result = await sink.send(createBatch([r]), { signal: new AbortController().signal });
    expect(outcomesOf(result, 1).map((x) => x.status)).toEqual(["delivered"]);
    await received(rx, 1);
    expect(rx.errors).toEqual([]);
    const m = rx.messages[0]!;
    expect(m.text).toBe(expectedJson(r));
    expect(chunksOk(m.chunks)).toBe(true);
    // Messages that fit one datagram uncompressed are sent uncompressed (documented on `compression`).
    expect(m.compression).toBe(m.chunks === 1 ? "none" : (o.compression ?? "gzip"));
    expect(m.message).toMatchObject({ version: "1.1", host: "test-host", level: 4, timestamp: 1714564800.123, _seq: 1, _user_ok: "true" });
    expect(m.message.short_message).toBe(r.message);
    expect(rx.datagrams).toBe(m.chunks);
    expect(sink.metrics().datagrams).toBe(m.chunks);
  });

  it("an exact multiple of the chunk data size yields no empty trailing chunk", async () => {
    const chunkSize = 512;
    const { sink, rx } = await setup({ chunkSize, compression: "none" }, chunkSize);
    const baseLen = expectedJson(record("")).length;
    // The "-" placeholder is replaced by the message itself: adjust so the JSON is exactly 5 × 500 bytes.
    const r = record("m".repeat(5 * (chunkSize - 12) - baseLen + 1));
    expect(Buffer.byteLength(expectedJson(r))).toBe(5 * (chunkSize - 12));
    await sink.send(createBatch([r]), { signal: new AbortController().signal });
    await received(rx, 1);
    expect(rx.errors).toEqual([]);
    expect(rx.messages[0]!.chunks).toBe(5);
    expect(rx.messages[0]!.datagramSizes).toEqual([512, 512, 512, 512, 512]);
    expect(rx.datagrams).toBe(5);
  });

  it("a message needing more than 128 chunks is truncated by the documented rule, never sent broken", async () => {
    const { sink, rx } = await setup();
    const original = noise(1_000_000);
    const r = record(`${original.slice(0, 200)}\n${original}`);
    const result = await sink.send(createBatch([r]), { signal: new AbortController().signal });
    expect(outcomesOf(result, 1)[0]!.status).toBe("delivered");
    await received(rx, 1);
    expect(rx.errors).toEqual([]);
    const m = rx.messages[0]!;
    expect(m.chunks).toBeLessThanOrEqual(128);
    expect(m.chunks).toBeGreaterThan(64);
    expect(m.message._gelf_truncated).toBe("true");
    // full_message is cut first; the short first line survives intact.
    expect(m.message.short_message).toBe(original.slice(0, 200));
    const full = m.message.full_message as string | undefined;
    if (full !== undefined) {
      expect(full.endsWith("…")).toBe(true);
      expect(r.message!.startsWith(full.slice(0, -1))).toBe(true);
    }
    expect(sink.metrics().truncated).toBe(1);
  });

  it("a message that compresses into few chunks but decompresses past Graylog's 8 MiB limit is truncated to fit it", async () => {
    const { sink, rx } = await setup();
    const r = record(`the first line\n${"lorem ipsum dolor sit amet ".repeat(450_000)}`); // 12.2 MB, a few hundred KB gzipped
    const result = await sink.send(createBatch([r]), { signal: new AbortController().signal });
    expect(outcomesOf(result, 1)[0]!.status).toBe("delivered");
    await received(rx, 1);
    expect(rx.errors).toEqual([]);
    const m = rx.messages[0]!;
    expect(Buffer.byteLength(m.text)).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect(Buffer.byteLength(m.text)).toBeGreaterThan(6 * 1024 * 1024);
    expect(m.message._gelf_truncated).toBe("true");
    expect(m.message.short_message).toBe("the first line");
    expect((m.message.full_message as string).endsWith("…")).toBe(true);
    expect(sink.metrics().truncated).toBe(1);
  });

  it("a message too large even after truncation is rejected with a counted reason and nothing is sent for it", async () => {
    const { sink, rx } = await setup();
    const huge = record("small", { blob: noise(1_000_000) });
    const fine = record("fine");
    const result = await sink.send(createBatch([huge, fine]), { signal: new AbortController().signal });
    const outcomes = outcomesOf(result, 2);
    expect(outcomes[0]).toMatchObject({ status: "rejected", reason: "gelf_message_too_large" });
    expect(outcomes[1]!.status).toBe("delivered");
    await received(rx, 1);
    expect(rx.messages.map((m) => m.message.short_message)).toEqual(["fine"]);
    expect(rx.datagrams).toBe(1);
    expect(sink.metrics().rejected_too_large).toBe(1);
    expect((outcomes[0] as { error: Error }).error.message).toMatch(/needs more than 128 chunks of 1420 bytes even after truncation/);
  });

  it("a message whose extra fields alone decompress past Graylog's 8 MiB limit is rejected, saying so", async () => {
    const { sink, rx } = await setup();
    const result = await sink.send(createBatch([record("small", { blob: "a".repeat(9_000_000) })]), { signal: new AbortController().signal });
    const [outcome] = outcomesOf(result, 1);
    expect(outcome).toMatchObject({ status: "rejected", reason: "gelf_message_too_large" });
    expect((outcome as { error: Error }).error.message).toMatch(/larger than Graylog's 8388608-byte decompression limit even after truncation/);
    expect(rx.datagrams).toBe(0);
  });

  it("100k chunked messages: every id unique, every message reassembled, no loss", async () => {
    // A tiny chunk size makes every small message chunked, so 100k messages exercise 100k ids.
    const chunkSize = 100;
    // Uncompressed keeps it fast (zlib setup per tiny message dominates otherwise); ids do not depend on compression.
    const { sink, rx } = await setup({ chunkSize, compression: "none" }, chunkSize);
    const total = 100_000;
    const perBatch = 1_000; // about 4,000 datagrams: far below what the receive buffer holds
    for (let b = 0; b < total / perBatch; b++) {
      const records: LogRecordInput[] = [];
      for (let i = 0; i < perBatch; i++) records.push(record(`m${b * perBatch + i}`, { n: b * perBatch + i }));
      const result = await sink.send(createBatch(records), { signal: new AbortController().signal });
      expect(result === undefined || ("status" in result && result.status === "delivered")).toBe(true);
      // UDP has no flow control, and the sink's sender thread outruns this in-process receiver (about 80k
      // datagrams/s): let it catch up between batches, as a receiver with its own core would.
      await received(rx, (b + 1) * perBatch);
    }
    expect(rx.errors).toEqual([]);
    expect(rx.incomplete).toBe(0);
    expect(rx.messages).toHaveLength(total);
    expect(rx.ids.size).toBe(total);
    expect(rx.messages.every((m) => m.chunks >= 2)).toBe(true);
    const seen = new Set(rx.messages.map((m) => m.message._n as number));
    expect(seen.size).toBe(total);
    expect(sink.metrics().datagrams).toBe(rx.datagrams);
  });
});

describe("GelfSink over UDP: the sender thread", () => {
  const statusOf = (o: RecordOutcome): string => (o.status === "retry" ? `retry:${o.reason}` : o.status);

  it("nobody listening: ICMP port unreachable comes back as send errors, and those records are retried", async () => {
    // A port that was just free: bind, note it, close.
    const probe = await GelfUdpReceiver.start();
    const port = probe.port;
    await probe.close();
    const sink = new GelfSink({ name: "gelf", url: `udp://127.0.0.1:${port}`, host: "h" });
    cleanups.push(() => sink.close());
    await sink.open({ signal: new AbortController().signal });
    const records = Array.from({ length: 200 }, (_, i) => record(`m${i}`, { n: i }));
    const outcomes = outcomesOf(await sink.send(createBatch(records), { signal: new AbortController().signal }), 200);
    const statuses = new Set(outcomes.map(statusOf));
    // The first datagram leaves before the kernel hears of the closed port; the ones after it fail.
    expect(statuses.has("retry:udp_send_error")).toBe(true);
    expect([...statuses].every((s) => s === "delivered" || s === "retry:udp_send_error")).toBe(true);
    expect(sink.metrics().udp_send_errors).toBe(outcomes.filter((o) => statusOf(o) === "retry:udp_send_error").length);
  });

  it("an abort stops the batch: what was not sent is retried, what arrived is exactly what was reported delivered", async () => {
    const { sink, rx } = await setup();
    const total = 20_000;
    const records = Array.from({ length: total }, (_, i) => record(`m${i}`, { n: i }));
    const ac = new AbortController();
    const pending = sink.send(createBatch(records), { signal: ac.signal });
    await vi.waitFor(() => {
      if (rx.messages.length === 0) throw new Error("nothing arrived yet");
    }, { timeout: 10_000, interval: 1 });
    ac.abort();
    const outcomes = outcomesOf(await pending, total);
    const delivered = new Set<number>();
    outcomes.forEach((o, i) => {
      expect(["delivered", "retry:aborted"]).toContain(statusOf(o));
      if (o.status === "delivered") delivered.add(i);
    });
    expect(delivered.size).toBeLessThan(total);
    // A last message through the same socket: everything sent before it has arrived once it has.
    await sink.send(createBatch([record("sentinel", { n: -1 })]), { signal: new AbortController().signal });
    await received(rx, delivered.size + 1);
    const got = new Set(rx.messages.map((m) => m.message._n as number));
    got.delete(-1);
    expect([...got].sort((a, b) => a - b)).toEqual([...delivered].sort((a, b) => a - b));
  });

  it("a batch whose signal is already aborted sends nothing", async () => {
    const { sink, rx } = await setup();
    const ac = new AbortController();
    ac.abort();
    const outcomes = outcomesOf(await sink.send(createBatch([record("a"), record("b")]), { signal: ac.signal }), 2);
    expect(outcomes.map(statusOf)).toEqual(["retry:aborted", "retry:aborted"]);
    await sink.send(createBatch([record("after")]), { signal: new AbortController().signal });
    await received(rx, 1);
    expect(rx.messages.map((m) => m.message.short_message)).toEqual(["after"]);
  });

  it("a sender thread that cannot connect its socket makes open() reject", async () => {
    await expect(UdpSender.open({ address: "127.0.0.1", port: 0, family: 4 })).rejects.toThrow(/port/i);
  });

  it("an abort while the batch is being built sends none of it", async () => {
    const { sink, rx } = await setup();
    const ac = new AbortController();
    const records = Array.from({ length: 2_000 }, (_, i) => record(`m${i}`, { n: i }));
    const pending = sink.send(createBatch(records), { signal: ac.signal });
    // Runs at the encoder's first turn to the event loop (every 256 records), before it builds on.
    setImmediate(() => ac.abort());
    const outcomes = outcomesOf(await pending, records.length);
    expect(new Set(outcomes.map(statusOf))).toEqual(new Set(["retry:aborted"]));
    await sink.send(createBatch([record("sentinel", { n: -1 })]), { signal: new AbortController().signal });
    await received(rx, 1);
    expect(rx.messages.map((m) => m.message.short_message)).toEqual(["sentinel"]);
  });

  it("a sender thread that dies fails the batch it held as a retry, and the next send starts a new one", async () => {
    const { sink, rx } = await setup();
    await sink.send(createBatch([record("first")]), { signal: new AbortController().signal });
    const sender = (sink as unknown as { udp: { alive: boolean; worker: { terminate(): Promise<number> } } }).udp;
    // Kill the thread while it holds a large batch.
    const records = Array.from({ length: 20_000 }, (_, i) => record(`m${i}`, { n: i }));
    const pending = sink.send(createBatch(records), { signal: new AbortController().signal });
    await vi.waitFor(() => {
      if (rx.messages.length < 2) throw new Error("the large batch has not started");
    }, { timeout: 10_000, interval: 1 });
    await sender.worker.terminate();
    expect(sender.alive).toBe(false);
    const outcomes = outcomesOf(await pending, records.length);
    expect(new Set(outcomes.map(statusOf))).toEqual(new Set(["retry:udp_sender_failed"]));
    const next = outcomesOf(await sink.send(createBatch([record("after")]), { signal: new AbortController().signal }), 1);
    expect(next.map(statusOf)).toEqual(["delivered"]);
    await vi.waitFor(() => {
      if (!rx.messages.some((m) => m.message.short_message === "after")) throw new Error("'after' has not arrived");
    }, { timeout: 10_000, interval: 5 });
  });
});

describe("UdpSender.retire", () => {
  it("finishes the batches it already holds, then closes", async () => {
    const rx = await GelfUdpReceiver.start();
    cleanups.push(() => rx.close());
    const sender = await UdpSender.open({ address: "127.0.0.1", port: rx.port, family: 4 });
    cleanups.push(() => sender.close());
    const n = 5000;
    const datagrams = Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ version: "1.1", host: "h", short_message: `m${i}` })));
    const offsets = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + datagrams[i]!.length;
    const pending = sender.send(new Uint8Array(Buffer.concat(datagrams)), offsets, new AbortController().signal);
    sender.retire();
    expect(sender.alive).toBe(false);
    expect(await pending).toEqual({ sent: n, failed: [] });
    await received(rx, n);
    const again = new Uint8Array(datagrams[0]!);
    await expect(sender.send(again, new Int32Array([0, again.length]), new AbortController().signal)).rejects.toThrow(/closed|exited/);
  });
});

describe("GelfSink over UDP to a name that does not resolve", () => {
  // RFC 6761: `.invalid` never resolves, so the lookup fails (ENOTFOUND) wherever the suite runs.
  const url = "udp://gelf.example.invalid:12201";

  it("opens anyway and reports each send as a retry with reason dns_error", async () => {
    const sink = new GelfSink({ name: "gelf", url });
    cleanups.push(() => sink.close());
    await sink.open({ signal: new AbortController().signal });
    const result = await sink.send(createBatch([record("a"), record("b")]), { signal: new AbortController().signal });
    expect(result).toMatchObject({ status: "retry", reason: "dns_error", error: { code: "ERR_SINK_SEND" } });
    expect((result as { error: Error }).error.message).toContain("cannot resolve gelf.example.invalid");
  });

  it("does not fail start(): the engine retries, then drops with a counted reason", async () => {
    const agg = new Aggregator({ retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const retries: RetryEvent[] = [];
    const drops: DropEvent[] = [];
    agg.on("retry", (e) => retries.push(e));
    agg.on("drop", (e) => drops.push(e));
    agg.addSink(new GelfSink({ name: "gelf", url }));
    await agg.start();
    await agg.write({ message: "nowhere to go" });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(retries.map((r) => r.reason)).toEqual(["dns_error"]);
    expect(drops.map((d) => [d.reason, d.count])).toEqual([["retriesExhausted", 1]]);
    expect(report.sinks.gelf).toMatchObject({ delivered: 0, dropped: { retriesExhausted: 1 } });
  });
});
