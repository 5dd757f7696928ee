// HTTP(S) listener: NDJSON bodies POSTed to one path. A request is read only while the host has credit; without
// it the request waits unread (the client's upload blocks: TCP backpressure) for up to `creditWaitMs`, then gets 429.
//
//   POST path ─▶ credit? ──yes──▶ read body (≤ maxBodyBytes, else 413) ─▶ decode ─▶ lines ─▶ records ─▶ 202
//                  │no
//                  └─▶ held, unread ──credit──▶ (as above)
//                          └──creditWaitMs──▶ 429 + Retry-After
import { type IncomingMessage, type Server, type ServerResponse, createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { gunzipSync, inflateSync } from "node:zlib";
import type { NetworkListenerSpec, NetworkSpec } from "../../sources/specs.js";
import { LineSplitter } from "../line-splitter.js";
import { type Intake, peerOf } from "./intake.js";
import { type BoundAddress, type Listener, type ListenerFailure, listenServer, tlsServerOptions } from "./listener.js";

/**
 * Bodies read at once per listener. Bodies are buffered whole (≤ maxBodyBytes) before they are decoded, so this
 * bounds that memory; later requests wait unread, like requests waiting for credit.
 */
const MAX_READING = 8;

interface Held {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

class HttpListener implements Listener {
  private readonly held: Held[] = [];
  private readonly reading = new Set<IncomingMessage>();
  private paused = false;
  private closing = false;

  constructor(
    private readonly server: Server,
    readonly bound: BoundAddress,
    private readonly spec: NetworkListenerSpec,
    private readonly limits: { maxBodyBytes: number; creditWaitMs: number; maxLineBytes: number },
    private readonly intake: Intake,
    onFailure: ListenerFailure,
  ) {
    server.on("request", this.onRequest);
    server.on("error", (error) => onFailure(`${bound.url}: ${error.message}`));
    server.on("clientError", (_error, socket) => {
      intake.counters.connectionErrors++;
      socket.destroy();
    });
    server.on("connection", () => intake.counters.connections++);
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const c = this.intake.counters;
    c.httpRequests++;
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    if ((q === -1 ? url : url.slice(0, q)) !== this.spec.path) return this.reject(req, res, 404);
    if (req.method !== "POST") return this.reject(req, res, 405, { Allow: "POST" });
    const encoding = (req.headers["content-encoding"] ?? "identity").toLowerCase();
    if (encoding !== "identity" && encoding !== "gzip" && encoding !== "x-gzip" && encoding !== "deflate") {
      return this.reject(req, res, 415);
    }
    const declared = Number(req.headers["content-length"]);
    if (declared > this.limits.maxBodyBytes) {
      c.httpTooLarge++;
      return this.reply(req, res, 413);
    }
    if (this.closing) return this.reply(req, res, 503, { "Retry-After": "1" });
    if (this.canRead()) return this.read(req, res);
    // Out of credit (or enough bodies in memory): leave the body unread until there is room.
    req.pause();
    const h: Held = { req, res, timer: undefined };
    h.timer = setTimeout(() => {
      if (!this.unhold(h)) return;
      c.httpThrottled++;
      this.reply(req, res, 429, { "Retry-After": String(Math.max(1, Math.ceil(this.limits.creditWaitMs / 1000))) });
    }, this.limits.creditWaitMs);
    req.once("close", () => {
      if (this.unhold(h)) clearTimeout(h.timer);
    });
    this.held.push(h);
  };

  private canRead(): boolean {
    return !this.paused && this.intake.hasCredit && this.reading.size < MAX_READING;
  }

  /** Start reading held requests in arrival order, while credit and the reading bound allow. */
  private admitHeld(): void {
    while (this.held.length > 0 && this.canRead()) {
      const h = this.held.shift()!;
      clearTimeout(h.timer);
      this.read(h.req, h.res);
    }
  }

  private unhold(h: Held): boolean {
    const i = this.held.indexOf(h);
    if (i === -1) return false;
    this.held.splice(i, 1);
    return true;
  }

  private read(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    this.reading.add(req);
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      this.intake.counters.bytesRead += chunk.length;
      if (size > this.limits.maxBodyBytes) {
        over = true;
        chunks.length = 0;
        this.intake.counters.httpTooLarge++;
        this.reply(req, res, 413); // the rest of the body is read and discarded, so the connection stays usable
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      this.reading.delete(req);
      if (!over) this.accept(req, res, Buffer.concat(chunks, size));
      this.admitHeld();
    });
    req.on("close", () => {
      if (this.reading.delete(req)) this.admitHeld();
    });
    req.on("error", () => this.intake.counters.connectionErrors++);
    if (this.paused) req.pause();
    else req.resume();
  }

  private accept(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    const encoding = (req.headers["content-encoding"] ?? "identity").toLowerCase();
    let body = raw;
    if (encoding !== "identity") {
      try {
        const o = { maxOutputLength: this.limits.maxBodyBytes };
        body = encoding === "deflate" ? inflateSync(raw, o) : gunzipSync(raw, o);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
          this.intake.counters.httpTooLarge++;
          return this.reply(req, res, 413);
        }
        return this.reject(req, res, 400);
      }
    }
    const peer = peerOf(req.socket.remoteAddress, req.socket.remotePort);
    this.intake.stamp();
    const lines = new LineSplitter({ maxLineBytes: this.limits.maxLineBytes, overlong: "truncate" }, (line, _s, _e, flags) =>
      this.intake.line(line, flags, peer),
    );
    lines.push(body);
    lines.flush();
    this.reply(req, res, 202);
  }

  private reject(req: IncomingMessage, res: ServerResponse, status: number, headers?: Record<string, string>): void {
    this.intake.counters.httpBadRequest++;
    this.reply(req, res, status, headers);
  }

  private reply(req: IncomingMessage, res: ServerResponse, status: number, headers?: Record<string, string>): void {
    if (res.headersSent) return;
    res.writeHead(status, { "Content-Length": "0", ...headers });
    res.end();
    // Discard an unread body so keep-alive goes on (Node's server does this too, but not for a paused request).
    req.resume();
  }

  pause(): void {
    this.paused = true;
    for (const r of this.reading) r.pause();
  }

  resume(): void {
    this.paused = false;
    for (const r of this.reading) r.resume();
    this.admitHeld();
  }

  close(): Promise<void> {
    this.closing = true;
    for (const h of this.held.splice(0)) {
      clearTimeout(h.timer);
      this.reply(h.req, h.res, 503, { "Retry-After": "1" });
    }
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    return closed;
  }
}

export async function listenHttp(
  spec: NetworkListenerSpec,
  network: Pick<NetworkSpec, "maxMessageBytes" | "maxConnections" | "tls" | "http">,
  intake: Intake,
  onFailure: ListenerFailure,
): Promise<Listener> {
  const tlsOptions = spec.protocol === "https" ? await tlsServerOptions(network.tls) : undefined;
  const { server, bound } = await listenServer(
    spec,
    network,
    () => (tlsOptions === undefined ? createHttpServer() : createHttpsServer(tlsOptions)),
    tlsOptions === undefined ? undefined : () => intake.counters.tlsErrors++,
  );
  const limits = {
    maxBodyBytes: network.http.maxBodyBytes,
    creditWaitMs: network.http.creditWaitMs,
    maxLineBytes: network.maxMessageBytes ?? 1024 * 1024,
  };
  return new HttpListener(server, bound, spec, limits, intake, onFailure);
}
