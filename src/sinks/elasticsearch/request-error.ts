// Turns a failed bulk request (the client's error classes) into a decision for the whole request, with nothing secret attached.
import { SinkError } from "../../errors.js";
import { redact } from "../../util/redact.js";

/** What to do with every record of a request that failed as a whole. */
export type RequestFailure =
  /** 413: the body is larger than the server (or a proxy) accepts; the caller splits. */
  | { readonly kind: "too_large"; readonly status: number; readonly error: SinkError }
  | { readonly kind: "retry"; readonly status: number | string; readonly reason: string; readonly retryAfterMs?: number; readonly error: SinkError }
  | { readonly kind: "reject"; readonly status: number | string; readonly reason: string; readonly error: SinkError };

interface ClientErrorShape {
  name?: string;
  message?: string;
  statusCode?: number;
  meta?: { statusCode?: number; headers?: Record<string, string | string[] | undefined>; body?: unknown };
}

/**
 * Classify a request-level failure.
 * - connection errors, timeouts, 408, 429, 5xx → retry (with `Retry-After` when the server sent one);
 * - 401/403 → retry with `ERR_SINK_AUTH`: credentials are configuration, and they get fixed (a rotated API key,
 *   a role granted) without a restart; rejecting would dead-letter every record meanwhile. The engine's backoff
 *   caps the request rate, and the coded error reaches the user through the engine's retry events;
 * - 413 → split (see the sink);
 * - a server that is not Elasticsearch, or an answer the client cannot parse → retry with `ERR_SINK_PROTOCOL`;
 * - any other 4xx → reject the whole request (it can never succeed as it is; the dead letter keeps the records).
 */
export function classifyRequestError(err: unknown, sink: string, why: "timeout" | "aborted" | undefined): RequestFailure {
  const e = (typeof err === "object" && err !== null ? err : {}) as ClientErrorShape;
  const cause = safeCause(err);
  const make = (code: SinkError["code"], message: string, status: number | undefined, retryable: boolean, retryAfterMs?: number): SinkError => {
    const error = new SinkError(code, `Elasticsearch sink "${sink}": ${message}`, { sink, cause });
    if (status !== undefined) error.statusCode = status;
    error.retryable = retryable;
    if (retryAfterMs !== undefined) error.retryAfterMs = retryAfterMs;
    return error;
  };

  if (why === "timeout" || e.name === "TimeoutError") {
    return { kind: "retry", status: "timeout", reason: "timeout", error: make("ERR_SINK_TIMEOUT", "bulk request timed out", undefined, true) };
  }
  if (why === "aborted" || e.name === "RequestAbortedError") {
    return { kind: "retry", status: "aborted", reason: "aborted", error: make("ERR_SINK_SEND", "bulk request aborted", undefined, true) };
  }
  if (e.name === "ResponseError") {
    const status = e.meta?.statusCode ?? e.statusCode ?? 0;
    const detail = errorDetail(e.meta?.body);
    if (status === 413) {
      return { kind: "too_large", status, error: make("ERR_SINK_SEND", "HTTP 413: bulk request body too large", status, true) };
    }
    if (status === 401 || status === 403) {
      const error = make("ERR_SINK_AUTH", `HTTP ${status}: authentication/authorization failed${detail ? ` (${detail})` : ""}`, status, true);
      return { kind: "retry", status, reason: `http_${status}`, error };
    }
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(e.meta?.headers?.["retry-after"]);
      const error = make("ERR_SINK_SEND", `HTTP ${status}${detail ? `: ${detail}` : ""}`, status, true, retryAfterMs);
      return { kind: "retry", status, reason: `http_${status}`, retryAfterMs, error };
    }
    const reason = `http_${status}${detail ? `: ${detail}` : ""}`;
    return { kind: "reject", status, reason: redact(reason), error: make("ERR_SINK_REJECTED", `HTTP ${status} for the whole bulk request${detail ? `: ${detail}` : ""}`, status, false) };
  }
  if (e.name === "ProductNotSupportedError") {
    const error = make("ERR_SINK_PROTOCOL", "the server answered without `x-elastic-product: Elasticsearch` (not Elasticsearch, or a proxy strips the header)", undefined, true);
    return { kind: "retry", status: "protocol", reason: "not_elasticsearch", error };
  }
  if (e.name === "DeserializationError") {
    return { kind: "retry", status: "protocol", reason: "malformed_response", error: make("ERR_SINK_PROTOCOL", "bulk response is not valid JSON", undefined, true) };
  }
  const tls = /certificate|self[- ]signed|SSL|TLS|CERT_/i.test(e.message ?? "");
  const code: SinkError["code"] = tls ? "ERR_TLS" : "ERR_SINK_SEND";
  const error = make(code, `${e.name ?? "Error"}: ${e.message ?? String(err)}`, undefined, true);
  return { kind: "retry", status: "error", reason: tls ? "tls_error" : "connection_error", error };
}

/** `type: reason` of an Elasticsearch error body, when the body has one. */
export function errorDetail(body: unknown): string {
  if (typeof body === "string") return redact(body.slice(0, 200));
  if (body === null || typeof body !== "object") return "";
  const error = (body as { error?: unknown }).error;
  if (typeof error === "string") return redact(error.slice(0, 500));
  if (error === null || typeof error !== "object") return "";
  const { type, reason } = error as { type?: unknown; reason?: unknown };
  return redact(`${String(type ?? "error")}: ${String(reason ?? "")}`.slice(0, 500));
}

/** Retry-After: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === "") return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * A stand-in for the client's error: name and redacted message only. The client's errors carry `meta`
 * (request headers, the connection with its URL, the whole request body); none of that may travel in an
 * outcome that ends up in events, reports or dead letters.
 */
export function safeCause(err: unknown): Error | undefined {
  if (!(err instanceof Error)) return err === undefined ? undefined : new Error(redact(String(err)));
  const copy = new Error(redact(err.message));
  copy.name = err.name;
  copy.stack = `${err.name}: ${copy.message}`;
  return copy;
}
