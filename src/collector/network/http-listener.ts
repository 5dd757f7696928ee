// HTTP(S) listener: NDJSON bodies (or GELF messages, `gelf+http`/`gelf+https`) POSTed to one path. A request is read only while the host has credit and one of
// MAX_READING slots is free; otherwise it waits unread (the client's upload blocks: TCP backpressure) for up to
// `creditWaitMs`, then gets 429. A body is shipped in slices while credit lasts, and answered 202 once all of it is in.
//
//   POST path ─▶ slot and credit? ─yes─▶ read body ─▶ decode ─▶ lines, a slice at a time ─▶ all in ─▶ 202
//                  │no                    │ > maxBodyBytes: 413      │ out of credit: wait (slot kept);
//                  │                      │ < 1 KiB per              │ resume on credit
//                  │                      │ bodyIdleTimeoutMs, or    │ client gone / stop: counted (httpAborted)
//                  │                      │ read > bodyTimeoutMs: 408│
//                  └─▶ held, unread ──slot and credit──▶ (as above)
//                         └─creditWaitMs─▶ 429 + Retry-After: httpThrottled (no credit) or httpSlotsBusy (no slot)
import { type IncomingMessage, type Server, type ServerResponse, createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";
import type { NetworkListenerSpec, NetworkSpec } from "../../sources/specs.js";
import { LineFlags, LineSplitter } from "../line-splitter.js";
import { type Intake, type Peer, peerOf } from "./intake.js";
import { type BoundAddress, type Listener, type ListenerFailure, closeServer, listenServer, tlsServerOptions } from "./listener.js";
import { feedSlices } from "./slices.js";

/**
 * Bodies read or being shipped at once per listener. Bodies are buffered whole (≤ maxBodyBytes, and as much again
 * decoded) until shipped, so this bounds that memory; later requests wait unread, like requests waiting for credit.
 */
const MAX_READING = 8;
/** A body must bring at least this much per `bodyIdleTimeoutMs` (or end): a trickle would hold a slot for hours. */
const MIN_BODY_BYTES = 1024;
/** Slices shipped per turn of the event loop, so that one large body cannot starve the other listeners (UDP). */
const SLICES_PER_TURN = 32;

interface Held {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

/** A request in a slot: its body being read, then shipped. */
interface Job {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  chunks: Buffer[];
  size: number;
  /** Over maxBodyBytes: answered 413, the rest is read and discarded. */
  over: boolean;
  /** Bytes read since the body timer was armed. */
  recent: number;
  /** Time spent reading the body so far, in whole `bodyIdleTimeoutMs` windows (waits for credit not counted). */
  readMs: number;
  timer: NodeJS.Timeout | undefined;
  /** Set once the body is read and decoded: shipped from `pos` on. */
  body: Buffer | undefined;
  pos: number;
  lines: LineSplitter | undefined;
  arrived: string;
  /** Answered or given up: the slot is free. */
  done: boolean;
}

interface HttpLimits {
  maxBodyBytes: number;
  creditWaitMs: number;
  bodyIdleTimeoutMs: number;
  bodyTimeoutMs: number;
  maxLineBytes: number;
}

class HttpListener implements Listener {
  private readonly held: Held[] = [];
  private readonly jobs = new Set<Job>();
  /** Jobs whose body is read, in arrival order, shipped one after the other. */
  private readonly shipping: Job[] = [];
  private shipQueued = false;
  private paused = false;
  private closing = false;
  /** `gelf+http(s)`: lines are GELF messages, not lines in the source's parser. */
  private readonly gelf: boolean;

  constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly bound: BoundAddress,
    private readonly spec: NetworkListenerSpec,
    private readonly limits: HttpLimits,
    private readonly intake: Intake,
    onFailure: ListenerFailure,
  ) {
    this.gelf = spec.protocol === "gelf+http" || spec.protocol === "gelf+https";
    server.on("request", this.onRequest);
    server.on("error", (error) => onFailure(`${bound.url}: ${error.message}`));
    server.on("clientError", (error: Error & { code?: string }, socket) => {
      // Node's headers timeout (see listenHttp) is the only request timeout it runs here.
      if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") intake.counters.httpHeaderTimeouts++;
      else intake.counters.connectionErrors++;
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
    // Out of credit (or every slot taken): leave the body unread until there is room.
    req.pause();
    const h: Held = { req, res, timer: undefined };
    h.timer = setTimeout(() => {
      if (!this.unhold(h)) return;
      // Which of the two kept it waiting, now: the sinks (no credit) or other bodies (no slot).
      if (!this.paused && this.intake.hasCredit) c.httpSlotsBusy++;
      else c.httpThrottled++;
      this.reply(req, res, 429, { "Retry-After": String(Math.max(1, Math.ceil(this.limits.creditWaitMs / 1000))) });
    }, this.limits.creditWaitMs);
    res.once("close", () => {
      if (this.unhold(h)) clearTimeout(h.timer);
    });
    this.held.push(h);
  };

  private canRead(): boolean {
    return !this.paused && this.intake.hasCredit && this.jobs.size < MAX_READING;
  }

  /** Start reading held requests in arrival order, while credit and the slots allow. */
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
    const job: Job = {
      req,
      res,
      chunks: [],
      size: 0,
      over: false,
      recent: 0,
      readMs: 0,
      timer: undefined,
      body: undefined,
      pos: 0,
      lines: undefined,
      arrived: "",
      done: false,
    };
    this.jobs.add(job);
    req.on("data", (chunk: Buffer) => {
      job.recent += chunk.length;
      this.intake.counters.bytesRead += chunk.length;
      if (job.over) return;
      job.size += chunk.length;
      if (job.size > this.limits.maxBodyBytes) {
        job.over = true;
        job.chunks = [];
        this.intake.counters.httpTooLarge++;
        this.reply(req, res, 413); // the rest of the body is read and discarded, so the connection stays usable
        return;
      }
      job.chunks.push(chunk);
    });
    req.on("end", () => {
      this.disarm(job);
      if (job.done) return;
      if (job.over) this.finish(job);
      else this.accept(job);
    });
    req.on("error", () => this.intake.counters.connectionErrors++);
    // The response closes when we answered, or when the connection went away before that.
    res.once("close", () => {
      if (job.done) return;
      if (!res.writableEnded) this.intake.counters.httpAborted++;
      this.finish(job);
    });
    if (this.paused) req.pause();
    else {
      this.arm(job);
      req.resume();
    }
  }

  /**
   * The body timer: a window of `bodyIdleTimeoutMs` in which at least MIN_BODY_BYTES must arrive, and the windows
   * add up to at most `bodyTimeoutMs` (a window cut short by a wait for credit is not counted).
   */
  private arm(job: Job): void {
    clearTimeout(job.timer);
    job.recent = 0;
    job.timer = setTimeout(() => {
      job.timer = undefined;
      if (job.done || job.body !== undefined) return;
      job.readMs += this.limits.bodyIdleTimeoutMs;
      if (job.recent >= MIN_BODY_BYTES && job.readMs < this.limits.bodyTimeoutMs) this.arm(job);
      else this.stalled(job);
    }, this.limits.bodyIdleTimeoutMs);
  }

  private disarm(job: Job): void {
    clearTimeout(job.timer);
    job.timer = undefined;
  }

  /** A stalled, trickling or too slow body: 408, and the connection is closed (reading the rest could take forever). */
  private stalled(job: Job): void {
    this.intake.counters.httpBodyTimeouts++;
    const { req, res } = job;
    this.finish(job);
    const socket = req.socket;
    if (!res.headersSent) {
      res.writeHead(408, { "Content-Length": "0", Connection: "close" });
      res.end(() => socket.destroy());
    } else socket.destroy();
  }

  private accept(job: Job): void {
    const { req, res } = job;
    const raw = job.chunks.length === 1 ? job.chunks[0]! : Buffer.concat(job.chunks, job.size);
    job.chunks = [];
    const encoding = (req.headers["content-encoding"] ?? "identity").toLowerCase();
    let body = raw;
    if (encoding !== "identity") {
      try {
        const o = { maxOutputLength: this.limits.maxBodyBytes };
        body = encoding === "deflate" ? inflateSync(raw, o) : gunzipSync(raw, o);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
          this.intake.counters.httpTooLarge++;
          this.reply(req, res, 413);
        } else this.reject(req, res, 400);
        this.finish(job);
        return;
      }
    }
    const peer: Peer = peerOf(req.socket.remoteAddress, req.socket.remotePort);
    job.arrived = new Date().toISOString();
    job.body = body;
    const intake = this.intake;
    job.lines = this.gelf
      ? // GELF HTTP: a body holds one message, or one per line (Graylog's bulk receiving); a GELF JSON text has no raw
        // newline. A blank line between messages is not one.
        new LineSplitter({ maxLineBytes: this.limits.maxLineBytes, overlong: "truncate", lazyText: true }, (_line, _s, _e, flags, bytes, bytesStart, bytesEnd) => {
          if ((flags & LineFlags.TRUNCATED) !== 0) {
            intake.counters.linesRead++;
            intake.counters.gelfTooLarge++;
          } else if (isBlankBytes(bytes, bytesStart, bytesEnd)) intake.counters.blankLines++;
          else intake.gelf(bytes.subarray(bytesStart, bytesEnd), peer);
        })
      : new LineSplitter(
          { maxLineBytes: this.limits.maxLineBytes, overlong: "truncate", lazyText: intake.lazyLines },
          (line, _s, _e, flags, bytes, bytesStart, bytesEnd) => intake.line(line, flags, peer, bytes, bytesStart, bytesEnd),
        );
    this.shipping.push(job);
    this.ship();
  }

  /**
   * Ship read bodies in arrival order, a slice at a time, while there is credit; at most SLICES_PER_TURN slices per
   * turn of the event loop. Out of credit, it stops where it is: resume() calls it again.
   */
  private ship(): void {
    let slices = 0;
    const go = (): boolean => slices < SLICES_PER_TURN && !this.paused && this.intake.hasCredit;
    while (this.shipping.length > 0) {
      const job = this.shipping[0]!;
      if (job.done) {
        this.shipping.shift();
        continue;
      }
      if (!go()) break;
      const body = job.body!;
      const lines = job.lines!;
      this.intake.stamp(job.arrived);
      job.pos = feedSlices(
        body,
        job.pos,
        false,
        (slice) => {
          slices++;
          lines.push(slice);
        },
        go,
        this.intake.slices,
      );
      if (job.pos < body.length) continue; // out of credit or of this turn's slices: the loop stops above
      lines.flush();
      this.shipping.shift();
      this.reply(job.req, job.res, 202);
      this.finish(job);
    }
    if (this.shipping.length > 0 && slices >= SLICES_PER_TURN && !this.shipQueued) {
      this.shipQueued = true;
      setImmediate(() => {
        this.shipQueued = false;
        this.ship();
      });
    }
  }

  /** The job's slot is free (answered, given up, or the client left). */
  private finish(job: Job): void {
    if (job.done) return;
    job.done = true;
    this.disarm(job);
    this.jobs.delete(job);
    job.chunks = [];
    job.body = undefined;
    job.lines = undefined;
    if (!this.closing) this.admitHeld();
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
    for (const job of this.jobs) {
      if (job.body !== undefined) continue;
      job.req.pause();
      this.disarm(job); // the wait is ours, not the sender's
    }
  }

  resume(): void {
    this.paused = false;
    for (const job of this.jobs) {
      if (job.body !== undefined || job.done) continue;
      this.arm(job);
      job.req.resume();
    }
    this.ship();
    this.admitHeld();
  }

  close(): Promise<void> {
    this.closing = true;
    for (const h of this.held.splice(0)) {
      clearTimeout(h.timer);
      this.reply(h.req, h.res, 503, { "Retry-After": "1" });
    }
    // Bodies not (fully) shipped yet: no 202, so their senders retry. Counted.
    for (const job of [...this.jobs]) {
      if (job.body !== undefined) this.intake.counters.httpAborted++;
      this.reply(job.req, job.res, 503, { "Retry-After": "1" });
      this.finish(job);
    }
    this.shipping.length = 0;
    this.server.closeAllConnections();
    return closeServer(this.server, this.sockets);
  }
}

export async function listenHttp(
  spec: NetworkListenerSpec,
  network: Pick<NetworkSpec, "maxMessageBytes" | "maxConnections" | "tls" | "http">,
  intake: Intake,
  onFailure: ListenerFailure,
): Promise<Listener> {
  const tlsOptions = spec.protocol === "https" || spec.protocol === "gelf+https" ? await tlsServerOptions(network.tls) : undefined;
  const { server, bound, sockets } = await listenServer(
    spec,
    network,
    // Node's requestTimeout (300 s by default) would also count a body's waits for credit, and end the connection as
    // a client error (no answer; counted as a connection error): the body timers above, and creditWaitMs for requests
    // not read yet, stand in for it. Its headers timeout stays: without it (requestTimeout 0 turns it off too) a
    // connection that never sends a request would hold its slot for ever.
    () => {
      const timeouts = {
        requestTimeout: 0,
        headersTimeout: network.http.headersTimeoutMs,
        connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(network.http.headersTimeoutMs / 2))),
      };
      return tlsOptions === undefined ? createHttpServer(timeouts) : createHttpsServer({ ...tlsOptions, ...timeouts });
    },
    intake.counters,
    tlsOptions !== undefined,
  );
  const limits: HttpLimits = {
    maxBodyBytes: network.http.maxBodyBytes,
    creditWaitMs: network.http.creditWaitMs,
    bodyIdleTimeoutMs: network.http.bodyIdleTimeoutMs,
    bodyTimeoutMs: network.http.bodyTimeoutMs,
    maxLineBytes: network.maxMessageBytes ?? 1024 * 1024,
  };
  return new HttpListener(server, sockets, bound, spec, limits, intake, onFailure);
}

/** Only spaces, tabs and CRs (or nothing) in `bytes[start..end)`. */
function isBlankBytes(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}
