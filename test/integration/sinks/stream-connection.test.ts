// StreamConnection on 127.0.0.1 after a broken connection: the replay window is resent in the background, without
// waiting for another write, and the pending-resend gauge follows it; a close that would resend its replay window (the
// receiver reset the connection, then went away or stopped answering) stops at once when its signal aborts and leaves
// no socket or timer.
import * as net from "node:net";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SinkStats } from "../../../src/sinks/stats.js";
import { StreamConnection } from "../../../src/sinks/transport/stream-connection.js";
import { testPki } from "../../helpers/tls.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const WATCHED = ["TCPSocketWrap", "TCPConnectWrap", "TLSWrap", "Timeout"] as const;
const activeCounts = (): Record<string, number> => {
  const out: Record<string, number> = Object.fromEntries(WATCHED.map((t) => [t, 0]));
  for (const r of process.getActiveResourcesInfo()) if (r in out) out[r]!++;
  return out;
};

/** Poll `cond` (no timer of ours is pending while it runs) until it holds; throw `message` after `ms`. */
async function waitFor(cond: () => boolean, ms: number, message: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(message());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A receiver on 127.0.0.1:0: TLS (or plain TCP) while `answering`, then accepts and stays silent. */
class Receiver {
  accepts = 0;
  answering = true;
  readonly open = new Set<net.Socket>();
  private constructor(
    readonly server: net.Server,
    private readonly tlsOptions: tls.TlsOptions | undefined,
  ) {}

  static async start(tlsOptions?: tls.TlsOptions): Promise<Receiver> {
    const server = net.createServer();
    const rx = new Receiver(server, tlsOptions);
    server.on("connection", (raw) => rx.onSocket(raw));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return rx;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Reset every connection (the client's window becomes its replay). */
  resetAll(): void {
    for (const s of this.open) s.resetAndDestroy();
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onSocket(raw: net.Socket): void {
    this.accepts++;
    this.open.add(raw);
    raw.on("error", () => undefined);
    raw.on("close", () => this.open.delete(raw));
    // Silent: reads and discards (so the client's close is seen) but never answers, so a TLS handshake hangs.
    if (!this.answering || this.tlsOptions === undefined) {
      raw.resume();
      return;
    }
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: tls.createSecureContext(this.tlsOptions) });
    s.on("error", () => undefined);
    s.resume();
  }
}

/**
 * A json_lines-like receiver on 127.0.0.1:0 that counts lines. Its first connection is not read until `resetFirst`,
 * which reads `keep` lines of it and then resets it (the rest is discarded unread) and stops listening, so the
 * sender's next connects are refused until `listen()` again.
 */
class LineReceiver {
  readonly lines: string[] = [];
  connections = 0;
  private first: net.Socket | undefined;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private constructor(public port: number) {}

  static async start(): Promise<LineReceiver> {
    const rx = new LineReceiver(0);
    await rx.listen();
    return rx;
  }

  async listen(): Promise<void> {
    const server = net.createServer((s) => this.onSocket(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  resetFirst(keep: number): void {
    const s = this.first!;
    let kept = 0;
    let buffered = "";
    s.on("data", (chunk: string) => {
      if (s.destroyed) return;
      buffered += chunk;
      let at = buffered.indexOf("\n");
      while (at !== -1 && kept < keep) {
        this.lines.push(buffered.slice(0, at));
        kept++;
        buffered = buffered.slice(at + 1);
        at = buffered.indexOf("\n");
      }
      if (kept < keep) return;
      this.stopListening();
      s.resetAndDestroy();
    });
    s.resume();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await this.stopListening();
  }

  private stopListening(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    return server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onSocket(s: net.Socket): void {
    this.connections++;
    this.sockets.add(s);
    s.setEncoding("utf8");
    s.on("error", () => undefined);
    s.on("close", () => this.sockets.delete(s));
    if (this.first === undefined) {
      this.first = s;
      s.pause();
      return;
    }
    let buffered = "";
    s.on("data", (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      this.lines.push(...parts);
    });
  }
}

/** `n` records of about 50 bytes, in segments of 50 records (small enough for the kernel to hold unread). */
function lineSegments(n: number): { data: string; records: number }[] {
  const out: { data: string; records: number }[] = [];
  for (let i = 0; i < n; i += 50) {
    let data = "";
    const end = Math.min(n, i + 50);
    for (let j = i; j < end; j++) data += `{"message":"r${j}","pad":"${"p".repeat(20)}"}\n`;
    out.push({ data, records: end - i });
  }
  return out;
}

function connection(port: number, stats: SinkStats, tlsOptions?: tls.ConnectionOptions, reconnect = { initialDelayMs: 30_000, maxDelayMs: 30_000 }): StreamConnection {
  return new StreamConnection({
    sink: "stream-test",
    display: `tcp://127.0.0.1:${port}`,
    host: "127.0.0.1",
    port,
    tls: tlsOptions,
    // Long enough that a close ignoring its signal is still connecting or backing off when the checks give up.
    connectTimeoutMs: 30_000,
    writeTimeoutMs: 30_000,
    reconnect,
    stats,
    resendWindowBytes: 1024 * 1024,
  });
}

/** Write 5 records, then have the receiver reset the connection: the connection now owes them a resend. */
async function owingResend(conn: StreamConnection, rx: Receiver, beforeReset?: () => void): Promise<void> {
  await conn.open(new AbortController().signal);
  const r = await conn.write([{ data: "a\nb\nc\nd\ne\n", records: 5 }], new AbortController().signal);
  expect(r).toEqual({ flushed: 5 });
  await waitFor(() => rx.open.size === 1, 5_000, () => `receiver holds ${rx.open.size} connections, expected 1`);
  beforeReset?.();
  rx.resetAll();
  await waitFor(() => !conn.connected && conn.pendingResend === 5, 5_000,
    () => `no broken connection seen: connected=${conn.connected}, pendingResend=${conn.pendingResend}`);
}

/** Call close(signal) after `ready` holds, abort, and check close settles and nothing of the connection stays active. */
async function closeAndAbort(conn: StreamConnection, stats: SinkStats, baseline: Record<string, number>, ready: () => boolean, what: string) {
  expect(stats.recordsResendPending).toBe(5);
  const controller = new AbortController();
  let settled = false;
  const closing = conn.close(controller.signal).finally(() => (settled = true));
  await waitFor(ready, 5_000, () => `close() never reached the state under test (${what})`);
  expect(settled).toBe(false);
  controller.abort();
  await waitFor(() => settled, 5_000, () => `close() did not settle within 5 s of its signal aborting (${what})`);
  await closing;
  await waitFor(() => WATCHED.every((t) => activeCounts()[t]! <= baseline[t]!), 5_000,
    () => `resources still active after the aborted close (${what}): ${JSON.stringify(activeCounts())}, before: ${JSON.stringify(baseline)}`);
  // The replay never went out: it counts as possibly lost, and nothing waits for a resend any more.
  expect(stats.recordsResendLost).toBe(5);
  expect(stats.recordsResendPending).toBe(0);
}

describe("StreamConnection.close(signal)", () => {
  it("a close past its deadline on a healthy connection counts what it last wrote as resend-lost, not forgotten", async () => {
    const rx = await Receiver.start();
    cleanups.push(() => rx.close());
    const stats = new SinkStats();
    const conn = connection(rx.port, stats);
    await conn.open(new AbortController().signal);
    expect(await conn.write([{ data: "a\nb\nc\n", records: 3 }], new AbortController().signal)).toEqual({ flushed: 3 });
    await waitFor(() => rx.open.size === 1, 5_000, () => `receiver holds ${rx.open.size} connections, expected 1`);
    const controller = new AbortController();
    controller.abort();
    await conn.close(controller.signal);
    // Destroyed without a clean close, the 3 records it reported delivered are in doubt: counted, nothing pending.
    expect(stats.recordsResendLost).toBe(3);
    expect(stats.recordsResendPending).toBe(0);
    expect(conn.connected).toBe(false);
  });

  it("receiver gone (connects refused): an abort during the reconnect backoff ends close at once, no timer left", async () => {
    const baseline = activeCounts();
    const rx = await Receiver.start();
    cleanups.push(() => rx.close());
    const stats = new SinkStats();
    const conn = connection(rx.port, stats);
    cleanups.push(() => conn.close(AbortSignal.abort()));
    await owingResend(conn, rx);
    await rx.close(); // connects are refused from now on
    const errorsBefore = stats.requestErrors;
    // The first resend attempt is refused; close() then waits out the 30 s backoff before the next one.
    await closeAndAbort(conn, stats, baseline, () => stats.requestErrors > errorsBefore, "backoff");
  });

  it("receiver stops answering (TLS handshake hangs): an abort destroys the socket being connected", async () => {
    const pki = testPki();
    const baseline = activeCounts();
    const rx = await Receiver.start({ key: pki.serverKey, cert: pki.serverCert });
    cleanups.push(() => rx.close());
    const stats = new SinkStats();
    const conn = connection(rx.port, stats, { ca: pki.ca });
    cleanups.push(() => conn.close(AbortSignal.abort()));
    await owingResend(conn, rx);
    rx.answering = false;
    const acceptsBefore = rx.accepts;
    await closeAndAbort(conn, stats, baseline, () => rx.accepts > acceptsBefore && rx.open.size === 1, "connect");
    // Only the client can have closed the silent receiver's side: the connect was destroyed, not left to time out.
    expect(rx.open.size).toBe(0);
    expect(rx.accepts).toBe(acceptsBefore + 1);
  });

  it("a background resend stuck connecting (TLS handshake hangs): an abort ends close and that connect at once", async () => {
    const pki = testPki();
    const baseline = activeCounts();
    const rx = await Receiver.start({ key: pki.serverKey, cert: pki.serverCert });
    cleanups.push(() => rx.close());
    const stats = new SinkStats();
    // A short backoff: the resend starts by itself, long before close() is called.
    const conn = connection(rx.port, stats, { ca: pki.ca }, { initialDelayMs: 5, maxDelayMs: 50 });
    cleanups.push(() => conn.close(AbortSignal.abort()));
    let acceptsBefore = 0;
    await owingResend(conn, rx, () => {
      rx.answering = false;
      acceptsBefore = rx.accepts;
    });
    await waitFor(() => rx.accepts > acceptsBefore && rx.open.size === 1, 5_000,
      () => `no background resend connected without a write: accepts=${rx.accepts} (before: ${acceptsBefore}), open=${rx.open.size}`);
    // close() queues behind the background resend; only its deadline can end that connect before its 30 s timeout.
    await closeAndAbort(conn, stats, baseline, () => true, "background connect");
    expect(rx.open.size).toBe(0);
    expect(rx.accepts).toBe(acceptsBefore + 1);
  });
});

describe("StreamConnection background resend", () => {
  it("receiver resets a connection in a quiet period and returns later: every record arrives with no further write", async () => {
    const rx = await LineReceiver.start();
    cleanups.push(() => rx.close());
    const stats = new SinkStats();
    const conn = connection(rx.port, stats, undefined, { initialDelayMs: 5, maxDelayMs: 50 });
    cleanups.push(() => conn.close(AbortSignal.abort()));
    await conn.open(new AbortController().signal);
    const n = 400;
    const segments = lineSegments(n);
    // The kernel takes it all: reported delivered, though the receiver has read none of it.
    expect(await conn.write(segments, new AbortController().signal)).toEqual({ flushed: n });
    await waitFor(() => rx.connections === 1, 5_000, () => `receiver saw ${rx.connections} connections, expected 1`);
    rx.resetFirst(100);
    // The receiver is gone: each background attempt is refused, and the records reported delivered wait for it.
    await waitFor(() => stats.requestErrors >= 2, 10_000,
      () => `no background resend attempts without a write: request_errors=${stats.requestErrors}, pending=${stats.recordsResendPending}`);
    expect(stats.recordsResendPending).toBe(n);
    expect(conn.pendingResend).toBe(n);
    expect(rx.lines).toHaveLength(100);
    await rx.listen();
    await waitFor(() => new Set(rx.lines).size === n, 10_000,
      () => `receiver has ${new Set(rx.lines).size} of ${n} records after it came back (connections=${rx.connections}, pending=${stats.recordsResendPending})`);
    await waitFor(() => stats.recordsResendPending === 0, 5_000, () => `records_resend_pending is ${stats.recordsResendPending}, expected 0`);
    // The whole window went out once more, whole lines in the original order, on one new connection.
    expect(rx.lines.slice(100)).toEqual(segments.flatMap((s) => s.data.split("\n").slice(0, -1)));
    expect(rx.connections).toBe(2);
    expect(stats.recordsResent).toBe(n);
    expect(stats.recordsResendLost).toBe(0);
  });
});

describe("StreamConnection.write(signal)", () => {
  it("a write queued behind a stuck one answers aborted as soon as its own signal aborts", async () => {
    // The receiver accepts and never reads: the first write fills the kernel's buffers and waits (for 30 s).
    const rx = await LineReceiver.start();
    cleanups.push(() => rx.close());
    const stats = new SinkStats();
    const conn = connection(rx.port, stats);
    cleanups.push(() => conn.close(AbortSignal.abort()));
    await conn.open(new AbortController().signal);
    const line = `{"message":"${"x".repeat(1000)}"}\n`;
    const big = Array.from({ length: 16 }, () => ({ data: line.repeat(4096), records: 4096 })); // 64 MiB
    const first = new AbortController();
    let firstSettled = false;
    const stuck = conn.write(big, first.signal).finally(() => (firstSettled = true));
    await waitFor(() => rx.connections === 1, 5_000, () => `receiver saw ${rx.connections} connections, expected 1`);
    const queued = new AbortController();
    let result: unknown;
    const second = conn.write([{ data: '{"message":"queued"}\n', records: 1 }], queued.signal).then((r) => (result = r));
    queued.abort();
    await waitFor(() => result !== undefined, 5_000, () => "the queued write did not answer within 5 s of its signal aborting");
    expect(result).toMatchObject({ flushed: 0, reason: "aborted" });
    expect(firstSettled).toBe(false); // the stuck write still holds the connection
    first.abort();
    const r1 = await stuck;
    expect(r1.reason).toBe("aborted");
    expect(r1.flushed).toBeLessThan(16 * 4096);
    await second;
    // An already aborted signal answers at once as well, with nothing written.
    expect(await conn.write([{ data: '{"message":"late"}\n', records: 1 }], AbortSignal.abort())).toMatchObject({ flushed: 0, reason: "aborted" });
  });
});
