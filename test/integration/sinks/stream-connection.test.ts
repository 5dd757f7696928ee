// StreamConnection.close(signal) on 127.0.0.1: a close that would resend its replay window (the receiver reset the
// connection, then went away or stopped answering) stops at once when its signal aborts and leaves no socket or timer.
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

function connection(port: number, stats: SinkStats, tlsOptions?: tls.ConnectionOptions): StreamConnection {
  return new StreamConnection({
    sink: "stream-test",
    display: `tcp://127.0.0.1:${port}`,
    host: "127.0.0.1",
    port,
    tls: tlsOptions,
    // Long enough that a close ignoring its signal is still connecting or backing off when the checks give up.
    connectTimeoutMs: 30_000,
    writeTimeoutMs: 30_000,
    reconnect: { initialDelayMs: 30_000, maxDelayMs: 30_000 },
    stats,
    resendWindowBytes: 1024 * 1024,
  });
}

/** Write 5 records, then have the receiver reset the connection: the connection now owes them a resend. */
async function owingResend(conn: StreamConnection, rx: Receiver): Promise<void> {
  await conn.open(new AbortController().signal);
  const r = await conn.write([{ data: "a\nb\nc\nd\ne\n", records: 5 }], new AbortController().signal);
  expect(r).toEqual({ flushed: 5 });
  await waitFor(() => rx.open.size === 1, 5_000, () => `receiver holds ${rx.open.size} connections, expected 1`);
  rx.resetAll();
  await waitFor(() => !conn.connected && conn.pendingResend === 5, 5_000,
    () => `no broken connection seen: connected=${conn.connected}, pendingResend=${conn.pendingResend}`);
}

/** Call close(signal) after `ready` holds, abort, and check close settles and nothing of the connection stays active. */
async function closeAndAbort(conn: StreamConnection, stats: SinkStats, baseline: Record<string, number>, ready: () => boolean, what: string) {
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
  // The replay never went out: it counts as possibly lost.
  expect(stats.recordsResendLost).toBe(5);
}

describe("StreamConnection.close(signal)", () => {
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
});
