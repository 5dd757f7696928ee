// NetworkSource through a real collector child and real client sockets on 127.0.0.1: GELF over UDP (plain,
// compressed, chunked out of order) and TCP, JSON lines over TCP and TLS, NDJSON over HTTP; malformed input is
// counted by reason while good input still arrives; a TCP sender blocks when the sink blocks.
// The GELF sender below is written from protocols.md §1.4 on purpose (not src/sinks/gelf-chunker.ts), so a bug
// shared by our sender and our receiver cannot hide.
import { randomBytes } from "node:crypto";
import { type Socket as UdpSocket, createSocket } from "node:dgram";
import { request } from "node:http";
import { type AddressInfo, type Socket, connect, createServer } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { deflateSync, gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { NetworkSource, type NetworkSourceOptions } from "../../../src/sources/network-source.js";
import { testPki } from "../../helpers/tls.js";
import { waitFor } from "../../helpers/wait-for.js";

// ---- a small GELF client, from the spec ----

function gelfJson(fields: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ version: "1.1", host: "web-1", timestamp: 1_700_000_000.25, level: 6, ...fields }));
}

/** Chunks of at most `datagram` bytes each (12-byte header included), as §1.4 describes. */
function chunk(payload: Buffer, datagram = 1420): Buffer[] {
  const per = datagram - 12;
  const count = Math.ceil(payload.length / per);
  if (count > 128) throw new Error("too many chunks");
  const id = randomBytes(8);
  return Array.from({ length: count }, (_, i) =>
    Buffer.concat([Buffer.from([0x1e, 0x0f]), id, Buffer.from([i, count]), payload.subarray(i * per, (i + 1) * per)]),
  );
}

/** A chunk datagram with the given header bytes (for malformed cases). */
function rawChunk(seq: number, count: number, data = "x"): Buffer {
  return Buffer.concat([Buffer.from([0x1e, 0x0f]), randomBytes(8), Buffer.from([seq, count]), Buffer.from(data)]);
}

async function udpClient(): Promise<UdpSocket> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  return s;
}

function send(s: UdpSocket, buf: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => s.send(buf, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
}

function tcpClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

function endSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    s.once("close", () => resolve());
    s.end();
  });
}

function post(
  port: number,
  path: string,
  body: Buffer | string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: options.method ?? "POST", headers: options.headers }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

// ---- aggregator plumbing ----

const running: Aggregator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop({ timeoutMs: 5_000 }).catch(() => undefined)));
});

async function start(
  options: NetworkSourceOptions,
  agg = new Aggregator({ batch: { maxWaitMs: 10 } }),
): Promise<{ agg: Aggregator; mem: MemorySink; source: NetworkSource; port: (i?: number) => number }> {
  const mem = new MemorySink({ name: "mem" });
  const source = new NetworkSource(options);
  agg.addSource(source).addSink(mem);
  running.push(agg);
  await agg.start();
  return { agg, mem, source, port: (i = 0) => source.addresses[i]!.port };
}

function collectorCounters(agg: Aggregator, name: string): Record<string, number> {
  return agg.metrics().sources[name]?.collector ?? {};
}

/** Poll until the collector's counters (sent once a second) include `expected`. */
async function waitForCounters(agg: Aggregator, name: string, expected: Record<string, number>): Promise<void> {
  await waitFor(
    () => Object.entries(expected).every(([k, v]) => collectorCounters(agg, name)[k] === v),
    {
      timeout: 10_000,
      message: () => `collector counters ${JSON.stringify(expected)}, got ${JSON.stringify(collectorCounters(agg, name))}`,
    },
  );
}

describe("NetworkSource", () => {
  it("GELF over UDP: plain, gzip, zlib and chunked (out of order) messages become ECS records with the sender's host", async () => {
    const { mem, source, port } = await start({ name: "gelf", listen: "gelf+udp://127.0.0.1:0" });
    expect(source.addresses).toEqual([{ url: `gelf+udp://127.0.0.1:${port()}`, protocol: "gelf+udp", address: "127.0.0.1", port: port() }]);
    const client = await udpClient();
    try {
      await send(client, gelfJson({ short_message: "plain", _user_id: 42, _request_id: "r-1" }), port());
      await send(client, gzipSync(gelfJson({ short_message: "gzip", level: 3 })), port());
      await send(client, deflateSync(gelfJson({ short_message: "zlib", level: 4 })), port());
      // Compressed as a whole, then sliced (§1.4); big enough for several chunks, sent in reverse order.
      const trace = Array.from({ length: 200 }, (_, i) => `  at frame${i} (${randomBytes(12).toString("hex")}.js:${i})`).join("\n");
      const big = gzipSync(gelfJson({ short_message: "chunked gzip", full_message: `chunked gzip\n${trace}`, level: 2 }));
      const gz = chunk(big);
      expect(gz.length).toBeGreaterThanOrEqual(3);
      for (const c of [...gz].reverse()) await send(client, c, port());
      const plainBig = gelfJson({ short_message: "chunked plain", _pad: "p".repeat(5000) });
      const pc = chunk(plainBig, 1000);
      for (const i of [2, 0, 4, 1, 3, 5].filter((x) => x < pc.length)) await send(client, pc[i]!, port());
      expect(pc.length).toBe(6);
      await mem.waitForCount(5, { timeout: 10_000 });
      const by = new Map(mem.records.map((r) => [String(r.message).split("\n")[0], r]));
      expect(by.get("plain")).toMatchObject({
        "@timestamp": "2023-11-14T22:13:20.250Z",
        message: "plain",
        log: { level: "info", syslog: { severity: { code: 6 } } },
        host: { name: "web-1" },
        service: { name: "gelf" },
        user_id: 42,
        request_id: "r-1",
        client: { ip: "127.0.0.1", port: client.address().port },
      });
      expect(by.get("plain")).not.toHaveProperty("version");
      expect(by.get("gzip")).toMatchObject({ log: { level: "error" } });
      expect(by.get("zlib")).toMatchObject({ log: { level: "warn" } });
      expect(by.get("chunked gzip")).toMatchObject({ message: `chunked gzip\n${trace}`, log: { level: "fatal" } });
      expect(by.get("chunked plain")).toMatchObject({ pad: "p".repeat(5000) });
    } finally {
      client.close();
    }
  });

  it("counts malformed datagrams by reason (garbage, bad chunk headers, invalid GELF, expired chunks) and still delivers good ones", async () => {
    const { agg, mem, port } = await start({ name: "udp", listen: "gelf+udp://127.0.0.1:0", gelf: { chunkTimeoutMs: 100 } });
    const client = await udpClient();
    try {
      const bad = [
        Buffer.from("not json at all"), // gelfInvalidJson
        Buffer.from('{"short_message": "cut'), // gelfInvalidJson
        Buffer.from("[1,2,3]"), // gelfNotAnObject
        gelfJson({ short_message: undefined }), // gelfMissingMessage (host, no message)
        gelfJson({ short_message: "x", host: "" }), // gelfInvalidHost
        Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(40)]), // gelfDecompressFailed
        Buffer.from([0x1e, 0x0f, 1, 2, 3]), // gelfChunkInvalid: shorter than a header
        rawChunk(0, 0), // gelfChunkInvalid: count 0
        rawChunk(0, 129), // gelfChunkInvalid: over 128
        rawChunk(3, 3), // gelfChunkInvalid: seq >= count
        chunk(gelfJson({ short_message: "never completed", _pad: "q".repeat(3000) }))[0]!, // gelfChunksExpired
      ];
      for (const b of bad) await send(client, b, port());
      await send(client, gelfJson({ short_message: "good one" }), port());
      await mem.waitForCount(1, { timeout: 10_000 });
      expect(mem.messages()).toEqual(["good one"]);
      await waitForCounters(agg, "udp", {
        gelfInvalidJson: 2,
        gelfNotAnObject: 1,
        gelfMissingMessage: 1,
        gelfInvalidHost: 1,
        gelfDecompressFailed: 1,
        gelfChunkInvalid: 4,
        gelfChunksExpired: 1,
        malformed: 10,
        datagrams: 12,
      });
      const report = await agg.stop({ timeoutMs: 5_000 });
      expect(report.sources.udp).toMatchObject({ kind: "network", emitted: 1, restarts: 0 });
      expect(report.sinks.mem).toMatchObject({ delivered: 1 });
    } finally {
      client.close();
    }
  });

  it("UDP without credit: finished messages are dropped and counted (udpDroppedNoCredit), the rest delivered", async () => {
    const agg = new Aggregator({ batch: { maxWaitMs: 10, maxRecords: 10 }, queue: { maxRecords: 10, whenFull: "block" }, credit: { records: 10 } });
    const { mem, port } = await start({ name: "udpbp", listen: "gelf+udp://127.0.0.1:0" }, agg);
    mem.block();
    const client = await udpClient();
    try {
      for (let i = 0; i < 60; i++) await send(client, gelfJson({ short_message: `m${i}`, _n: i }), port());
      await waitForCounters(agg, "udpbp", { datagrams: 60 });
      const dropped = collectorCounters(agg, "udpbp").udpDroppedNoCredit!;
      // Credit 10 plus a queue of 10 cannot take 60: the rest was dropped, and said so.
      expect(dropped).toBeGreaterThanOrEqual(30);
      mem.unblock();
      await mem.waitForCount(60 - dropped, { timeout: 10_000 });
      const report = await agg.stop({ timeoutMs: 5_000 });
      expect(report.sources.udpbp!.emitted + dropped).toBe(60);
      expect(mem.count).toBe(60 - dropped);
    } finally {
      client.close();
    }
  });

  it("GELF over TCP: NUL-framed (newline accepted), split across writes, oversized frames dropped and counted", async () => {
    const { agg, mem, port } = await start({ name: "gtcp", listen: ["gelf+tcp://127.0.0.1:0"], maxMessageBytes: 4096 });
    const s = await tcpClient(port());
    const frame = (m: string, extra: Record<string, unknown> = {}): string => gelfJson({ short_message: m, ...extra }).toString();
    s.write(`${frame("one")}\0${frame("two")}\0\n`);
    const three = frame("three", { _k: "v" });
    s.write(three.slice(0, 10));
    s.write(`${three.slice(10)}\0`);
    s.write(`${frame("too big", { _pad: "z".repeat(5000) })}\0`);
    s.write(`${frame("four")}\n`);
    s.write(frame("five, unterminated at close"));
    await endSocket(s);
    await mem.waitForCount(5, { timeout: 10_000 });
    expect(mem.messages()).toEqual(["one", "two", "three", "four", "five, unterminated at close"]);
    expect(mem.records[2]).toMatchObject({ k: "v", host: { name: "web-1" }, client: { ip: "127.0.0.1" } });
    await waitForCounters(agg, "gtcp", { gelfTooLarge: 1, connections: 1 });
  });

  it("JSON lines over TCP: 1000 lines across 4 connections, each once; invalid JSON still ships, flagged and counted", async () => {
    const { agg, mem, source, port } = await start({ name: "lines", listen: ["tcp://:0", "tcp://0"] });
    // No host named: loopback only.
    expect(source.addresses.map((a) => a.address)).toEqual(["127.0.0.1", "127.0.0.1"]);
    const clients = await Promise.all([0, 1, 0, 1].map((i) => tcpClient(port(i))));
    clients.forEach((c, k) => {
      let body = "";
      for (let i = k * 250; i < (k + 1) * 250; i++) body += JSON.stringify({ n: i, msg: `line ${i}`, level: "debug" }) + "\n";
      // Split mid-line so lines cross reads.
      c.write(body.slice(0, 777));
      c.write(body.slice(777));
    });
    clients[0]!.write("{not json}\n\n");
    await Promise.all(clients.map(endSocket));
    await mem.waitForCount(1001, { timeout: 15_000 });
    const ns = mem.records.filter((r) => typeof r.n === "number").map((r) => r.n as number);
    expect(ns.sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(mem.records.find((r) => r.n === 7)).toMatchObject({ message: "line 7", log: { level: "debug" }, client: { ip: "127.0.0.1" } });
    expect(mem.records.find((r) => r.message === "{not json}")).toMatchObject({ error: { type: "parse", message: "invalid_json" } });
    await waitForCounters(agg, "lines", { connections: 4, blankLines: 1 });
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.sources.lines).toMatchObject({ emitted: 1001, parseErrors: 1, linesRead: 1002 });
  });

  it("JSON lines over TCP as fast as the sender can write: 100k lines on one connection all arrive, each once", async () => {
    // A channel backed up behind a host still busy with the last frames must pause the listener, not spin on it.
    const { agg, mem, port } = await start({ name: "flood", listen: ["tcp://:0"] });
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) lines.push(`{"n":${i},"message":"flood line ${i}","pad":"${"x".repeat(100)}"}`);
    const client = await tcpClient(port());
    client.write(lines.join("\n") + "\n");
    await endSocket(client);
    await mem.waitForCount(100_000, { timeout: 30_000 });
    const seen = new Set(mem.records.map((r) => r.n as number));
    expect(seen.size).toBe(100_000);
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sources.flood).toMatchObject({ emitted: 100_000, linesRead: 100_000 });
  });

  it("JSON lines over TLS with a certificate given as PEM text", async () => {
    const pki = testPki();
    const { mem, port } = await start({ name: "tls", listen: "tls://127.0.0.1:0", tls: { cert: pki.serverCert, key: pki.serverKey } });
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = tlsConnect({ host: "127.0.0.1", port: port(), ca: pki.ca }, () => resolve(c));
      c.once("error", reject);
    });
    s.end('{"message":"secure 1"}\n{"message":"secure 2"}\n');
    await mem.waitForCount(2, { timeout: 10_000 });
    expect(mem.messages()).toEqual(["secure 1", "secure 2"]);
  });

  it("GELF over HTTP (Graylog's input): one message per body or one per line, gzip too, invalid GELF counted", async () => {
    const { agg, mem, source, port } = await start({ name: "gelfhttp", listen: "gelf+http://127.0.0.1:0" });
    expect(source.addresses[0]!.url).toBe(`gelf+http://127.0.0.1:${port()}/gelf`);
    expect((await post(port(), "/gelf", gelfJson({ short_message: "single", _user_id: 7 }))).status).toBe(202);
    const bulk = [gelfJson({ short_message: "bulk 1", level: 3 }), gelfJson({ short_message: "bulk 2" }), Buffer.from(""), gelfJson({ short_message: "bulk 3" })];
    const body = gzipSync(Buffer.concat(bulk.flatMap((b) => [b, Buffer.from("\n")])));
    expect((await post(port(), "/gelf", body, { headers: { "Content-Encoding": "gzip" } })).status).toBe(202);
    expect((await post(port(), "/gelf", gelfJson({ full_message: 42 }))).status).toBe(202);
    expect((await post(port(), "/other", gelfJson({ short_message: "lost" }))).status).toBe(404);
    await mem.waitForCount(4, { timeout: 10_000 });
    expect(mem.messages().sort()).toEqual(["bulk 1", "bulk 2", "bulk 3", "single"]);
    const single = mem.records.find((r) => r.message === "single");
    expect(single).toMatchObject({ host: { name: "web-1" }, user_id: 7, log: { level: "info" }, client: { ip: "127.0.0.1" } });
    expect(mem.records.find((r) => r.message === "bulk 1")).toMatchObject({ log: { level: "error" } });
    await waitForCounters(agg, "gelfhttp", { gelfMissingMessage: 1, blankLines: 1, httpBadRequest: 1, httpRequests: 4 });
  });

  it("NDJSON over HTTP: 202 on success (plain or gzip), 404 / 405 / 413 otherwise, each counted", async () => {
    const { agg, mem, port } = await start({ name: "http", listen: "http://127.0.0.1:0/ingest", http: { maxBodyBytes: 4096 } });
    const body = Array.from({ length: 20 }, (_, i) => JSON.stringify({ n: i, message: `req ${i}` })).join("\n") + "\n";
    expect((await post(port(), "/ingest", body)).status).toBe(202);
    expect((await post(port(), "/ingest?tag=x", gzipSync('{"message":"zipped"}\n'), { headers: { "Content-Encoding": "gzip" } })).status).toBe(202);
    expect((await post(port(), "/other", body)).status).toBe(404);
    const get = await post(port(), "/ingest", "", { method: "GET" });
    expect(get).toMatchObject({ status: 405, headers: { allow: "POST" } });
    expect((await post(port(), "/ingest", "x".repeat(5000))).status).toBe(413);
    await mem.waitForCount(21, { timeout: 10_000 });
    expect(mem.records.filter((r) => typeof r.n === "number").map((r) => r.n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(mem.records.find((r) => r.message === "zipped")).toMatchObject({ client: { ip: "127.0.0.1" } });
    await waitForCounters(agg, "http", { httpRequests: 5, httpBadRequest: 2, httpTooLarge: 1 });
  });

  it("HTTP holds a request while out of credit, then answers 429 with Retry-After; after unblocking it accepts again", async () => {
    const agg = new Aggregator({ batch: { maxWaitMs: 10, maxRecords: 10 }, queue: { maxRecords: 10, whenFull: "block" }, credit: { records: 10 } });
    const { mem, port } = await start({ name: "held", listen: "http://127.0.0.1:0/", http: { creditWaitMs: 300 } }, agg);
    mem.block();
    const body = Array.from({ length: 100 }, (_, i) => JSON.stringify({ n: i })).join("\n") + "\n";
    // Read with credit 10: shipped until the credit is spent, then it waits (unanswered) for more.
    let firstStatus: number | undefined;
    const first = post(port(), "/", body).then((r) => (firstStatus = r.status));
    await waitFor(() => (collectorCounters(agg, "held").pauses ?? 0) >= 1, { timeout: 10_000, message: "the collector to run out of credit" });
    const throttled = await post(port(), "/", '{"n":1000}\n');
    expect(throttled.status).toBe(429);
    expect(throttled.headers["retry-after"]).toBe("1");
    expect(firstStatus).toBeUndefined();
    mem.unblock();
    await first;
    expect(firstStatus).toBe(202);
    await mem.waitForCount(100, { timeout: 10_000 });
    expect((await post(port(), "/", '{"n":1001}\n')).status).toBe(202);
    await mem.waitForCount(101, { timeout: 10_000 });
    expect(mem.records.map((r) => r.n)).not.toContain(1000);
    await waitForCounters(agg, "held", { httpThrottled: 1 });
  });

  it("a restarted collector binds the same port it picked for port 0, so senders keep working", async () => {
    const { agg, mem, source, port } = await start({ name: "sticky", listen: "tcp://127.0.0.1:0", restart: { baseDelayMs: 10, maxDelayMs: 50 } });
    const first = port();
    const pid = agg.metrics().sources.sticky!.pid!;
    process.kill(pid, "SIGKILL");
    await waitFor(() => agg.metrics().sources.sticky!.state === "running" && agg.metrics().sources.sticky!.pid !== pid, {
      timeout: 10_000,
      message: "the collector to run again after SIGKILL",
    });
    expect(source.addresses[0]!.port).toBe(first);
    const s = await tcpClient(first);
    s.write('{"message":"after restart"}\n');
    await endSocket(s);
    await mem.waitForCount(1, { timeout: 10_000 });
    expect(mem.messages()).toEqual(["after restart"]);
  });

  it("a port already in use fails start with a coded error naming the address", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const taken = (blocker.address() as AddressInfo).port;
    try {
      const agg = new Aggregator();
      running.push(agg);
      agg.addSource(new NetworkSource({ name: "busy", listen: `tcp://127.0.0.1:${taken}`, restart: { maxRestarts: 0 } })).addSink(new MemorySink({ name: "mem" }));
      const error = await agg.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: "ERR_COLLECTOR_CRASHED" });
      expect(String((error as Error).message)).toContain(`cannot listen on tcp://127.0.0.1:${taken}: EADDRINUSE`);
    } finally {
      blocker.close();
    }
  });

  it("backpressure: a blocked sink stops the collector reading, the TCP sender's writes back up, and after unblocking all arrives", async () => {
    const maxRecords = 500;
    const agg = new Aggregator({
      batch: { maxWaitMs: 10, maxRecords: 100 },
      queue: { maxRecords, whenFull: "block" },
      credit: { records: 200, bytes: 1024 * 1024 },
    });
    const { mem, port } = await start({ name: "bp", listen: "tcp://127.0.0.1:0" }, agg);
    mem.block();
    // 48 MiB: more than the kernel can buffer on loopback (tcp_rmem max 32 MiB + tcp_wmem max 4 MiB here).
    const total = 48 * 1024;
    const pad = "x".repeat(1000);
    const client = await tcpClient(port());
    let acceptedAll = true;
    for (let i = 0; i < total; i += 1024) {
      let chunkText = "";
      for (let n = i; n < i + 1024; n++) chunkText += `{"n":${n},"pad":"${pad}"}\n`;
      if (!client.write(chunkText)) acceptedAll = false;
    }
    expect(acceptedAll).toBe(false);
    // The pipeline fills (queue at its bound) and the collector has paused its reading.
    await waitFor(() => agg.metrics().sinks.mem!.queueRecords >= maxRecords && (collectorCounters(agg, "bp").pauses ?? 0) >= 1, {
      timeout: 15_000,
      message: () => `a full queue and a paused collector, got ${JSON.stringify(agg.metrics().sinks.mem)} / ${JSON.stringify(collectorCounters(agg, "bp"))}`,
    });
    const m = agg.metrics();
    // The collector stopped far short of the input, and the sender still holds what the kernel would not take.
    expect(m.sources.bp!.emitted).toBeLessThan(total / 2);
    expect(m.sinks.mem!.queueRecords).toBeLessThanOrEqual(maxRecords);
    expect(client.writableLength).toBeGreaterThan(0);
    const drained = new Promise<void>((resolve) => client.once("drain", () => resolve()));
    mem.unblock();
    await drained;
    await endSocket(client);
    await mem.waitForCount(total, { timeout: 20_000 });
    const seen = new Set(mem.records.map((r) => r.n as number));
    expect(seen.size).toBe(total);
    expect(mem.count).toBe(total);
  });
});
