// A TCP/TLS receiver for delimiter-framed protocols (GELF TCP: NUL; Logstash json_lines: "\n") that can be "killed" and
// restarted on the same port. A kill is a server shutdown: it closes its side (FIN) and stops accepting, but keeps
// reading what the kernel already accepted until the client closes, like a receiver that exits cleanly. (A hard crash
// that discards unread kernel buffers can lose bytes any TCP client already handed over; no ack-less protocol can tell.)
import * as net from "node:net";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";

export interface StreamReceiverOptions {
  delimiter: "\0" | "\n";
  tls?: tls.TlsOptions;
  /** Kill (as described above) once this many frames arrived in the current incarnation. */
  killAfterFrames?: number;
}

export class StreamReceiver {
  /** Complete frames, in arrival order, across restarts. */
  readonly frames: string[] = [];
  /** Unterminated bytes left when a connection closed (a frame cut by a broken connection). */
  readonly tails: string[] = [];
  /** Errors on server-side sockets (TLS handshake failures show up here). */
  readonly socketErrors: Error[] = [];
  connections = 0;
  kills = 0;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private framesThisLife = 0;
  private readonly seen = new Set<string>();
  private killing: Promise<void> | undefined;

  private constructor(
    private readonly o: StreamReceiverOptions,
    public port: number,
  ) {}

  static async start(o: StreamReceiverOptions): Promise<StreamReceiver> {
    const r = new StreamReceiver(o, 0);
    await r.listen();
    return r;
  }

  /** Listen again (on the same port after a kill). */
  async listen(): Promise<void> {
    this.framesThisLife = 0;
    const server =
      this.o.tls === undefined ? net.createServer((s) => this.onSocket(s)) : tls.createServer(this.o.tls, (s) => this.onSocket(s));
    server.on("tlsClientError", (err: Error) => this.socketErrors.push(err));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Shut down: stop accepting, send FIN on every connection, read until each client closes. */
  kill(): Promise<void> {
    if (this.server === undefined && this.killing === undefined) return Promise.resolve();
    this.killing ??= (async () => {
      const server = this.server;
      this.server = undefined;
      this.kills++;
      const closed = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of this.sockets) s.end();
      await closed;
    })().finally(() => (this.killing = undefined));
    return this.killing;
  }

  /** Reset every connection (RST: what the kernel holds unread is discarded) and keep listening. */
  resetAll(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onSocket(socket: net.Socket): void {
    this.connections++;
    this.sockets.add(socket);
    let buffered = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      let at = buffered.indexOf(this.o.delimiter);
      let start = 0;
      while (at !== -1) {
        const frame = buffered.slice(start, at);
        this.frames.push(frame);
        // A receiver that crashes after K records it had not seen: a resent record does not bring the crash nearer.
        if (!this.seen.has(frame)) {
          this.seen.add(frame);
          this.framesThisLife++;
        }
        start = at + 1;
        at = buffered.indexOf(this.o.delimiter, start);
      }
      buffered = buffered.slice(start);
      if (this.o.killAfterFrames !== undefined && this.framesThisLife >= this.o.killAfterFrames && this.server !== undefined) {
        void this.kill();
      }
    });
    socket.on("error", (err) => this.socketErrors.push(err));
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (buffered.length > 0) this.tails.push(buffered);
    });
  }
}

/** Restart a killed receiver on its port (helper for `deliverAll`'s onRetry). */
export async function restartIfKilled(rx: StreamReceiver): Promise<void> {
  if (rx.listening) return;
  await rx.kill(); // resolves once the previous server has fully closed
  await rx.listen();
}
