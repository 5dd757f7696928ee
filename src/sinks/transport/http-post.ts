// POST a body over node:http/https with a keep-alive agent, a hard deadline and abort, and classify the answer.
import * as http from "node:http";
import * as https from "node:https";
import type { ConnectionOptions } from "node:tls";
import { SinkError } from "../../errors.js";
import type { RecordOutcome } from "../sink.js";
import { Outcome } from "../sink.js";
import type { SinkStats } from "../stats.js";
import type { Endpoint } from "./options.js";
import { isTlsError, tlsError } from "./tls.js";

export interface HttpClientOptions {
  sink: string;
  endpoint: Endpoint;
  /** node:tls options for https. */
  tls: ConnectionOptions | undefined;
  /** Headers sent with every request (lower-case names). Never echoed in errors. */
  headers: Record<string, string>;
  /** Basic credentials (from the URL or the `auth` option). */
  auth: { username: string; password: string } | undefined;
  /** Deadline of a whole request, connect to last response byte. */
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  /** Sockets kept per host. */
  maxSockets: number;
  stats: SinkStats;
}

export type HttpPostResult =
  | { readonly ok: true; readonly status: number; readonly headers: http.IncomingHttpHeaders; readonly body: string }
  | { readonly ok: false; readonly reason: string; readonly error: SinkError };

// Keep only the start of a response body: enough for an error reason, bounded against a hostile server.
const MAX_RESPONSE_TEXT = 4096;

export class HttpClient {
  private readonly agent: http.Agent;
  private readonly baseHeaders: Record<string, string>;
  private readonly isHttps: boolean;

  constructor(private readonly o: HttpClientOptions) {
    this.isHttps = o.endpoint.protocol === "https:";
    const agentOptions = { keepAlive: true, maxSockets: o.maxSockets, scheduling: "lifo" as const };
    this.agent = this.isHttps ? new https.Agent({ ...agentOptions, ...o.tls }) : new http.Agent(agentOptions);
    this.baseHeaders = { ...o.headers };
    if (o.auth !== undefined) {
      this.baseHeaders.authorization = `Basic ${Buffer.from(`${o.auth.username}:${o.auth.password}`).toString("base64")}`;
    }
  }

  /** Send one POST; resolves (never rejects) with the response or a classified transport failure. */
  post(body: Buffer, headers: Record<string, string>, signal: AbortSignal): Promise<HttpPostResult> {
    const { endpoint, requestTimeoutMs, stats } = this.o;
    const display = endpoint.display;
    const started = performance.now();
    return new Promise<HttpPostResult>((resolve) => {
      let settled = false;
      const settle = (result: HttpPostResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        const latency = performance.now() - started;
        if (result.ok) stats.request(result.status, body.length, latency);
        else {
          stats.request(result.reason, body.length, latency);
          stats.error();
        }
        resolve(result);
      };
      const fail = (reason: string, error: SinkError): void => {
        settle({ ok: false, reason, error });
        req.destroy();
      };
      if (signal.aborted) {
        settled = true;
        resolve({ ok: false, reason: "aborted", error: new SinkError("ERR_SINK_SEND", "The send was aborted", { sink: this.o.sink }) });
        return;
      }
      const transport = this.isHttps ? https : http;
      const req = transport.request({
        method: "POST",
        host: endpoint.hostname,
        port: endpoint.port,
        path: endpoint.path,
        agent: this.agent,
        headers: { ...this.baseHeaders, ...headers, "content-length": String(body.length) },
      });
      const timer = setTimeout(
        () =>
          fail(
            "timeout",
            new SinkError("ERR_SINK_TIMEOUT", `POST ${display} got no complete answer within ${requestTimeoutMs} ms`, { sink: this.o.sink }),
          ),
        requestTimeoutMs,
      );
      const onAbort = (): void => fail("aborted", new SinkError("ERR_SINK_SEND", "The send was aborted", { sink: this.o.sink }));
      signal.addEventListener("abort", onAbort, { once: true });
      // A fresh socket that cannot connect in time is a connect timeout, not a slow server.
      req.once("socket", (socket) => {
        if ((socket as { connecting?: boolean }).connecting !== true) return;
        const t = setTimeout(
          () => fail("connect_timeout", new SinkError("ERR_SINK_TIMEOUT", `Connecting to ${display} timed out after ${this.o.connectTimeoutMs} ms`, { sink: this.o.sink })),
          this.o.connectTimeoutMs,
        );
        socket.once(this.isHttps ? "secureConnect" : "connect", () => clearTimeout(t));
        socket.once("close", () => clearTimeout(t));
      });
      req.on("error", (err) => {
        if (settled) return;
        if (isTlsError(err)) return fail("tls_error", tlsError(this.o.sink, display, err));
        const code = (err as { code?: unknown }).code;
        fail(
          "network_error",
          new SinkError("ERR_SINK_SEND", `POST ${display} failed: ${typeof code === "string" ? code : err.message}`, { sink: this.o.sink, cause: err }),
        );
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on("data", (chunk: Buffer) => {
          // Read everything (so the socket can be reused) but keep only the head.
          if (kept < MAX_RESPONSE_TEXT) {
            chunks.push(chunk);
            kept += chunk.length;
          }
        });
        res.on("end", () =>
          settle({
            ok: true,
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_TEXT).toString("utf8"),
          }),
        );
        res.on("error", (err) =>
          fail("network_error", new SinkError("ERR_SINK_SEND", `Reading the answer of ${display} failed: ${err.message}`, { sink: this.o.sink, cause: err })),
        );
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Parse `Retry-After` (delta seconds or an HTTP date) into milliseconds from now.
 * Returns undefined when absent or unparseable; negative dates become 0.
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Math.min(Number(s), 86_400) * 1000;
  const at = Date.parse(s);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.min(at - now, 86_400_000));
}

/**
 * Classify an HTTP answer for the engine: `isDelivered(status)` → delivered; 408, 425, 429 and 5xx → retry
 * (honouring Retry-After); 401/403 → retry with ERR_SINK_AUTH; any other status (413 included: splitting is the
 * caller's, see http-batch.ts) → rejected with ERR_SINK_REJECTED.
 *
 * Credentials are configuration, and they get fixed (a rotated password, a new header value) without a restart:
 * rejecting on 401/403 would drop or dead-letter every record meanwhile, and let file checkpoints move past them.
 * Retried, they wait under the engine's backoff, and the coded error reaches the host as `sink:error`
 * (the Elasticsearch sink does the same).
 */
export function classifyResponse(
  sink: string,
  display: string,
  result: HttpPostResult,
  isDelivered: (status: number) => boolean,
): RecordOutcome {
  if (!result.ok) return Outcome.retry(result.reason, undefined, result.error);
  const { status } = result;
  if (isDelivered(status)) return Outcome.delivered;
  const snippet = result.body.replace(/\s+/g, " ").trim().slice(0, 200);
  const text = `POST ${display} answered ${status}${snippet.length > 0 ? `: ${snippet}` : ""}`;
  const auth = status === 401 || status === 403;
  if (auth || status === 408 || status === 425 || status === 429 || (status >= 500 && status <= 599)) {
    const retryAfterMs = parseRetryAfter(result.headers["retry-after"]);
    const err = new SinkError(auth ? "ERR_SINK_AUTH" : "ERR_SINK_SEND", auth ? `${text} (authentication/authorization failed; retried until the credentials are accepted)` : text, { sink });
    err.statusCode = status;
    if (retryAfterMs !== undefined) err.retryAfterMs = retryAfterMs;
    return Outcome.retry(`http_${status}`, retryAfterMs, err);
  }
  const err = new SinkError("ERR_SINK_REJECTED", text, { sink });
  err.statusCode = status;
  err.retryable = false;
  return Outcome.reject(`http_${status}`, err);
}
