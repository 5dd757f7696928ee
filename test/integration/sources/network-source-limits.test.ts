// NetworkSource under hostile or careless senders, through a real collector child and real sockets on 127.0.0.1:
// a large (or inflating) HTTP body stays within the credit window; idle TCP connections, connections over the cap,
// partial lines over the shared budget, endless lines and partial lines at stop are closed or counted; TLS clients
// that never finish a handshake are closed and never hold stop(); slow HTTP bodies lose their slot; the kernel's UDP
// drops are counted. Timeouts are configured small; assertions are on counts and states, never on durations.
import { existsSync, readFileSync } from "node:fs";
import { type Socket as UdpSocket, createSocket } from "node:dgram";
import { type ClientRequest, request } from "node:http";
import { request as httpsRequest } from "node:https";
import { type Socket, connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { NetworkSource, type NetworkSourceOptions } from "../../../src/sources/network-source.js";
import { testPki } from "../../helpers/tls.js";
import { waitFor } from "../../helpers/wait-for.js";

const running: Aggregator[] = [];
const sockets: Array<{ destroy(): void }> = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(running.splice(0).map((a) => a.stop({ timeoutMs: 5_000 }).catch(() => undefined)));
});

async function start(
  options: NetworkSourceOptions,
  agg = new Aggregator({ batch: { maxWaitMs: 10 } }),
): Promise<{ agg: Aggregator; mem: MemorySink; port: (i?: number) => number; counters: () => Record<string, number> }> {
  const mem = new MemorySink({ name: "mem" });
  const source = new NetworkSource(options);
  agg.addSource(source).addSink(mem);
  running.push(agg);
  await agg.start();
  return {
    agg,
    mem,
    port: (i = 0) => source.addresses[i]!.port,
    counters: () => agg.metrics().sources[options.name]?.collector ?? {},
  };
}

/** Poll until the collector's counters (sent once a second) include `expected`. */
async function waitForCounters(counters: () => Record<string, number>, expected: Record<string, number>, timeout = 15_000): Promise<void> {
  await waitFor(() => Object.entries(expected).every(([k, v]) => counters()[k] === v), {
    timeout,
    message: () => `collector counters ${JSON.stringify(expected)}, got ${JSON.stringify(counters())}`,
  });
}

function tcpClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
    s.on("error", () => {}); // resets by the server are what some tests expect
    sockets.push(s);
  });
}

/** Resolves once every socket is closed (by the server: the tests never close them), or fails naming `what`. */
async function closed(list: Socket[], what: string): Promise<void> {
  await waitFor(() => list.every((s) => s.destroyed), {
    timeout: 15_000,
    message: () => `${what}: ${list.filter((s) => !s.destroyed).length} of ${list.length} still open`,
  });
}

/** A POST whose status is filled in when the answer comes (undefined until then). */
function post(port: number, path: string, body: Buffer | string, headers: Record<string, string> = {}): { req: ClientRequest; status: () => number | undefined; done: Promise<number> } {
  let status: number | undefined;
  let req!: ClientRequest;
  const done = new Promise<number>((resolve, reject) => {
    req = request({ host: "127.0.0.1", port, path, method: "POST", headers }, (res) => {
      status = res.statusCode ?? 0;
      res.resume();
      res.on("end", () => resolve(status!));
    });
    req.on("error", reject);
    req.end(body);
  });
  sockets.push(req);
  return { req, status: () => status, done };
}

/** An HTTPS POST trusting `ca`; resolves to its status. */
function httpsPost(port: number, ca: string, body: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path: "/in", method: "POST", ca }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
    sockets.push(req);
  });
}

/** A raw HTTP/1.1 POST that sends its headers and then only what `trickle` writes. */
async function slowPost(port: number, path: string): Promise<{ socket: Socket; answer: () => string }> {
  const s = await tcpClient(port);
  let answer = "";
  s.on("data", (d: Buffer) => (answer += d.toString("latin1")));
  s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
  return { socket: s, answer: () => answer };
}

const lines = (from: number, to: number): string => {
  let out = "";
  for (let i = from; i < to; i++) out += `{"n":${i}}\n`;
  return out;
};

describe("NetworkSource limits", () => {
  it("an HTTP body is shipped within the credit window (a small gzip body inflating to 20,000 lines too); 202 once all of it is in", async () => {
    const credit = 200;
    const agg = new Aggregator({ batch: { maxWaitMs: 10, maxRecords: 50 }, queue: { maxRecords: 100, whenFull: "block" }, credit: { records: credit } });
    const { agg: a, mem, port, counters } = await start({ name: "body", listen: "http://127.0.0.1:0/" }, agg);
    mem.block();
    const total = 20_000;
    const body = gzipSync(lines(0, total));
    const p = post(port(), "/", body, { "Content-Encoding": "gzip" });
    // Paused for credit (its STATS say so), or past the window already (then the checks below say by how much).
    await waitFor(() => (counters().pauses ?? 0) >= 1 || a.metrics().sources.body!.emitted > credit + 100 + 65, {
      timeout: 15_000,
      message: () => `the collector to pause for credit, ${JSON.stringify(counters())}`,
    });
    const m = a.metrics();
    // The host holds at most its window (plus the slice in which the credit ran out), not the body.
    expect(m.sources.body!.waiting).toBeLessThanOrEqual(credit + 64 + 1);
    expect(m.sources.body!.emitted).toBeLessThan(1_000);
    expect(p.status()).toBeUndefined(); // no 202 before the whole body is in
    mem.unblock();
    expect(await p.done).toBe(202);
    await mem.waitForCount(total, { timeout: 30_000 });
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it("idle TCP connections are closed after idleTimeoutMs (their partial line counted); time spent waiting for credit does not count", async () => {
    const agg = new Aggregator({ batch: { maxWaitMs: 10, maxRecords: 10 }, queue: { maxRecords: 10, whenFull: "block" }, credit: { records: 10 } });
    const { mem, port, counters } = await start({ name: "idle", listen: "tcp://127.0.0.1:0", idleTimeoutMs: 300 }, agg);
    mem.block();
    // A sender that goes on writing while the collector waits for credit: it must not be taken for idle.
    const busy = await tcpClient(port());
    busy.write(lines(0, 200));
    await waitFor(() => (counters().pauses ?? 0) >= 1, { timeout: 15_000, message: "the collector to pause for credit" });
    // Paused for three idle timeouts: still open.
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(busy.destroyed).toBe(false);
    expect(counters().idleTimeouts).toBe(0);
    mem.unblock();
    await mem.waitForCount(200, { timeout: 15_000 });
    // Now idle, as are a silent client and one with half a line.
    const silent = await tcpClient(port());
    const half = await tcpClient(port());
    half.write('{"message":"half a li');
    await closed([busy, silent, half], "the server to close the idle connections");
    await waitForCounters(counters, { idleTimeouts: 3, partialDiscarded: 1, connections: 3 });
    expect(mem.count).toBe(200);
  });

  it("connections over maxConnections are refused and counted", async () => {
    const { port, counters } = await start({ name: "cap", listen: "tcp://127.0.0.1:0", maxConnections: 2 });
    const a = await tcpClient(port());
    const b = await tcpClient(port());
    await waitForCounters(counters, { connections: 2 });
    const c = await tcpClient(port());
    await closed([c], "the server to close the connection over maxConnections");
    await waitForCounters(counters, { connectionsRefused: 1, connections: 2 });
    expect(a.destroyed || b.destroyed).toBe(false);
  });

  it.each(["http", "https"])("%s: connections that send no request, or trickle its headers, are closed after http.headersTimeoutMs; the slots serve senders again", async (proto) => {
    const pki = proto === "https" ? testPki() : undefined;
    const { port, counters, mem } = await start({
      name: "hdr",
      listen: `${proto}://127.0.0.1:0/in`,
      maxConnections: 2,
      http: { headersTimeoutMs: 300 },
      ...(pki === undefined ? {} : { tls: { cert: pki.serverCert, key: pki.serverKey } }),
    });
    // Both slots taken (over TLS, handshaken): one connection says nothing, the other sends a header byte every 50 ms.
    const client = async (): Promise<Socket> => {
      if (pki === undefined) return tcpClient(port());
      const s = await new Promise<Socket>((resolve, reject) => {
        const t = tlsConnect({ port: port(), host: "127.0.0.1", ca: pki.ca }, () => resolve(t));
        t.once("error", reject);
      });
      s.on("error", () => {});
      sockets.push(s);
      return s;
    };
    const silent = await client();
    const drip = await client();
    const head = "POST /in HTTP/1.1\r\nHost: x\r\nX-Long: " + "y".repeat(1000);
    let i = 0;
    const timer = setInterval(() => {
      if (!drip.destroyed) drip.write(head[i++ % head.length]!);
    }, 50);
    try {
      await closed([silent, drip], "the server to close connections that sent no whole request headers");
    } finally {
      clearInterval(timer);
    }
    // Before, with Node's headers timeout off (requestTimeout: 0), both stayed open and every POST was refused.
    await waitForCounters(counters, { httpHeaderTimeouts: 2, connectionErrors: 0 });
    const ok = pki === undefined ? post(port(), "/in", lines(0, 3)).done : httpsPost(port(), pki.ca, lines(0, 3));
    expect(await ok).toBe(202);
    await mem.waitForCount(3, { timeout: 15_000 });
  });

  it("partial lines share one byte budget (maxPartialBytes): the connection that would exceed it is closed, counted", async () => {
    const { mem, port, counters } = await start({ name: "budget", listen: "tcp://127.0.0.1:0", maxMessageBytes: 1_024, maxPartialBytes: 4_096 });
    const clients = await Promise.all(Array.from({ length: 6 }, () => tcpClient(port())));
    const head = (i: number) => `{"n":${i},"pad":"${"p".repeat(990)}`; // 1,000 bytes or so, no newline
    for (const [i, c] of clients.entries()) c.write(head(i));
    // 6 partial lines of 1 KB cannot all fit in 4 KiB: at least two connections go, each counted.
    await waitFor(
      () => {
        const over = counters().partialOverBudget ?? 0;
        return over >= 2 && clients.filter((c) => c.destroyed).length === over && counters().partialDiscarded === over;
      },
      { timeout: 15_000, message: () => `connections closed over budget, ${JSON.stringify(counters())}` },
    );
    const open = clients.filter((c) => !c.destroyed);
    expect(open.length).toBeGreaterThanOrEqual(3);
    for (const c of open) c.end('"}\n');
    await mem.waitForCount(open.length, { timeout: 10_000 });
  });

  it("an endless line is counted when it goes over maxMessageBytes, not when (if ever) its newline comes; a GELF TCP frame too", async () => {
    const { agg, mem, port, counters } = await start({ name: "endless", listen: ["tcp://127.0.0.1:0", "gelf+tcp://127.0.0.1:0"], maxMessageBytes: 1_024 });
    const line = await tcpClient(port(0));
    const frame = await tcpClient(port(1));
    line.write("x".repeat(5_000));
    frame.write("y".repeat(5_000));
    await waitForCounters(counters, { oversizedLines: 1, gelfTooLarge: 1 });
    line.write('still the same line\n{"message":"next"}\n');
    frame.write(`\0${JSON.stringify({ version: "1.1", host: "h", short_message: "next frame" })}\0`);
    await mem.waitForCount(2, { timeout: 10_000 });
    expect(mem.messages().sort()).toEqual(["next", "next frame"]);
    await waitFor(() => agg.metrics().sources.endless!.linesRead === 4, { timeout: 10_000, message: "4 messages read: 2 oversized, 2 good" });
    expect(counters()).toMatchObject({ oversizedLines: 1, gelfTooLarge: 1 });
  });

  it("a partial line still held at stop is counted as discarded", async () => {
    const { agg, mem, port } = await start({ name: "atstop", listen: "tcp://127.0.0.1:0" });
    const s = await tcpClient(port());
    const text = '{"message":"whole"}\n{"message":"never fini';
    s.write(text);
    await mem.waitForCount(1, { timeout: 10_000 });
    await waitFor(() => agg.metrics().sources.atstop!.bytesRead === Buffer.byteLength(text), { timeout: 10_000, message: "the collector to read the partial line" });
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.sources.atstop!.collector.partialDiscarded).toBe(1);
    expect(mem.messages()).toEqual(["whole"]);
  });

  it("a TLS client that never finishes its handshake is closed after tls.handshakeTimeoutMs and counted", async () => {
    const pki = testPki();
    const { port, counters } = await start({
      name: "lurk",
      listen: ["tls://127.0.0.1:0", "https://127.0.0.1:0/in"],
      tls: { cert: pki.serverCert, key: pki.serverKey, handshakeTimeoutMs: 300 },
    });
    const a = await tcpClient(port(0));
    const b = await tcpClient(port(1));
    await closed([a, b], "the server to close the connections whose TLS handshake never finished");
    await waitForCounters(counters, { tlsErrors: 2 });
  });

  it("stop() does not wait for clients that never start a TLS handshake", async () => {
    const pki = testPki();
    const { agg, port } = await start({
      name: "lurkstop",
      listen: ["tls://127.0.0.1:0", "https://127.0.0.1:0/in"],
      // Far longer than this test: only stop() itself can close them.
      tls: { cert: pki.serverCert, key: pki.serverKey, handshakeTimeoutMs: 3_600_000 },
      killAfterMs: 600_000,
    });
    const a = await tcpClient(port(0));
    const b = await tcpClient(port(1));
    let report: Awaited<ReturnType<Aggregator["stop"]>> | undefined;
    void agg.stop({ timeoutMs: 600_000 }).then((r) => (report = r));
    await waitFor(() => report !== undefined, { timeout: 20_000, message: "stop() to finish although two clients never started their TLS handshake" });
    expect(report!.timedOut).toBe(false);
    await closed([a, b], "the lurkers to be closed at stop");
  });

  it("slow HTTP bodies lose their reading slot (408, counted); a waiting sender is read as soon as a slot frees", async () => {
    const { mem, port, counters } = await start({
      name: "slow",
      listen: "http://127.0.0.1:0/in",
      http: { bodyIdleTimeoutMs: 300, creditWaitMs: 600_000 },
    });
    const slow = await Promise.all(Array.from({ length: 8 }, () => slowPost(port(), "/in")));
    const drip = setInterval(() => {
      for (const s of slow) if (!s.socket.destroyed) s.socket.write("1\r\n \r\n"); // a byte every 50 ms: a trickle
    }, 50);
    try {
      await waitForCounters(counters, { httpRequests: 8 });
      const legit = post(port(), "/in", '{"message":"legit"}\n');
      await waitFor(() => legit.status() !== undefined, { timeout: 20_000, message: "the waiting sender to be answered once the slow bodies lost their slots" });
      expect(legit.status()).toBe(202);
      await mem.waitForCount(1, { timeout: 10_000 });
      await waitForCounters(counters, { httpBodyTimeouts: 8, httpThrottled: 0, httpSlotsBusy: 0 });
      await closed(slow.map((s) => s.socket), "the server to close the slow bodies' connections");
      expect(slow.every((s) => s.answer().startsWith("HTTP/1.1 408"))).toBe(true);
    } finally {
      clearInterval(drip);
    }
  });

  it("a body that keeps coming, but slower than http.bodyTimeoutMs allows in all, loses its slot (408, counted)", async () => {
    const { mem, port, counters } = await start({
      name: "steady",
      listen: "http://127.0.0.1:0/in",
      // 2 KiB every 20 ms clears the idle check (1 KiB per 100 ms) every time; only the total limit can end it.
      http: { bodyIdleTimeoutMs: 100, bodyTimeoutMs: 500 },
    });
    const slow = await slowPost(port(), "/in");
    const chunk = `${(2048).toString(16)}\r\n${`{"message":"${"x".repeat(2048 - 15)}"}\n`}\r\n`;
    const drip = setInterval(() => {
      if (!slow.socket.destroyed) slow.socket.write(chunk);
    }, 20);
    try {
      await closed([slow.socket], "the server to close the connection of a body read for longer than bodyTimeoutMs");
      expect(slow.answer()).toMatch(/^HTTP\/1\.1 408/);
      await waitForCounters(counters, { httpBodyTimeouts: 1, httpAborted: 0 });
      // Nothing of the unfinished body is shipped; the listener still takes the next one.
      const next = post(port(), "/in", '{"message":"after"}\n');
      expect(await next.done).toBe(202);
      await mem.waitForCount(1, { timeout: 10_000 });
      expect(mem.messages()).toEqual(["after"]);
    } finally {
      clearInterval(drip);
    }
  });

  it("a request that waited because every slot was busy (credit was free) is counted as httpSlotsBusy, not httpThrottled", async () => {
    const { port, counters } = await start({
      name: "busy",
      listen: "http://127.0.0.1:0/in",
      http: { bodyIdleTimeoutMs: 600_000, creditWaitMs: 300 },
    });
    const stalled = await Promise.all(Array.from({ length: 8 }, () => slowPost(port(), "/in")));
    for (const s of stalled) s.socket.write("1\r\n{\r\n"); // a first byte, then nothing more
    await waitForCounters(counters, { httpRequests: 8 });
    const refused = post(port(), "/in", '{"message":"no slot"}\n');
    expect(await refused.done).toBe(429);
    await waitForCounters(counters, { httpSlotsBusy: 1, httpThrottled: 0 });
  });

  it.each([
    [400, 20], // the reserve: an eighth (50) plus a slice (25 messages)
    [64, 8], // a small window: slices of 4 messages, a reserve of 12
  ])("a TCP stream that fills a %i-record window leaves a reserve for UDP: %i datagrams sent meanwhile are shipped, not dropped", async (credit, sent) => {
    const agg = new Aggregator({ batch: { maxWaitMs: 10, maxRecords: 50 }, queue: { maxRecords: 100, whenFull: "block" }, credit: { records: credit } });
    const { agg: a, mem, port, counters } = await start({ name: "mix", listen: ["tcp://127.0.0.1:0", "gelf+udp://127.0.0.1:0"] }, agg);
    mem.block();
    const total = 20_000;
    const tcp = await tcpClient(port(0));
    tcp.write(lines(0, total));
    // TCP stops reading at the reserve; with the sink blocked and the queue full, no credit comes back meanwhile.
    await waitFor(() => (counters().pauses ?? 0) >= 1, { timeout: 15_000, message: () => `the TCP intake to pause, ${JSON.stringify(counters())}` });
    const udp: UdpSocket = createSocket("udp4");
    sockets.push({ destroy: () => udp.close() });
    for (let i = 0; i < sent; i++) {
      const datagram = Buffer.from(JSON.stringify({ version: "1.1", host: "h", short_message: `udp ${i}` }));
      await new Promise<void>((resolve, reject) => udp.send(datagram, port(1), "127.0.0.1", (e) => (e ? reject(e) : resolve())));
    }
    await waitForCounters(counters, { datagrams: sent });
    expect(counters().udpDroppedNoCredit ?? 0).toBe(0);
    expect(a.metrics().sources.mix!.waiting).toBeLessThanOrEqual(credit + Math.min(64, credit / 16)); // the window, plus a slice
    mem.unblock();
    await mem.waitForCount(total + sent, { timeout: 30_000 });
    const udpMessages = mem.records.filter((r) => typeof r.message === "string" && r.message.startsWith("udp ")).map((r) => r.message);
    expect(udpMessages).toEqual(Array.from({ length: sent }, (_, i) => `udp ${i}`));
    expect(mem.records.filter((r) => r.n !== undefined).map((r) => r.n)).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it.skipIf(!existsSync("/proc/net/udp"))("GELF datagrams the kernel dropped while the collector did not read are counted (udpKernelDrops)", async () => {
    const { agg, port, counters } = await start({ name: "kdrop", listen: "gelf+udp://127.0.0.1:0" });
    const pid = agg.metrics().sources.kdrop!.pid!;
    // Enough to overflow the largest receive buffer the collector can get (it asks for 4 MiB, capped at rmem_max,
    // doubled by the kernel; each datagram costs its size plus overhead).
    const rmemMax = Number(readFileSync("/proc/sys/net/core/rmem_max", "utf8").trim());
    const sent = Math.ceil((2 * Math.min(rmemMax, 4 * 1024 * 1024)) / 1_024) + 2_000;
    const client: UdpSocket = createSocket("udp4");
    sockets.push({ destroy: () => client.close() });
    await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", resolve));
    const datagram = Buffer.from(JSON.stringify({ version: "1.1", host: "h", short_message: "m", _pad: "p".repeat(960) }));
    process.kill(pid, "SIGSTOP"); // a collector too busy to read, deterministically
    try {
      for (let i = 0; i < sent; i++) {
        await new Promise<void>((resolve, reject) => client.send(datagram, port(), "127.0.0.1", (e) => (e ? reject(e) : resolve())));
      }
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await waitFor(() => (counters().datagrams ?? 0) + (counters().udpKernelDrops ?? 0) === sent, {
      timeout: 20_000,
      message: () => `datagrams + udpKernelDrops = ${sent}, got ${JSON.stringify(counters(), ["datagrams", "udpKernelDrops", "udpDroppedNoCredit"])}`,
    });
    expect(counters().udpKernelDrops).toBeGreaterThan(0);
  });
});
