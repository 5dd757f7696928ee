// The connection options every network sink shares (timeouts, TLS, auth, headers, reconnect), resolved once,
// and the one way to build a persistent stream connection from them.
import type * as tls from "node:tls";
import { InvalidOptionError } from "../../errors.js";
import { registerCredentials } from "../../util/redact.js";
import type { SinkStats } from "../stats.js";
import type { Endpoint, ReconnectOptions, ResolvedReconnect } from "./options.js";
import { headersOption, intOption, reconnectOption, resolveAuth } from "./options.js";
import { HttpClient } from "./http-post.js";
import { StreamConnection } from "./stream-connection.js";
import type { SinkTlsOptions } from "./tls.js";
import { resolveTls } from "./tls.js";

export interface ConnectionOptions {
  /** HTTP basic credentials (alternative to URL userinfo). */
  auth?: { username: string; password: string };
  /** HTTP: extra headers. Never printed. */
  headers?: Record<string, string>;
  /** TLS for `tls://` and `https://`; `cert` + `key` for mutual TLS. Verification is on unless `tls.insecureSkipVerify` is set. */
  tls?: SinkTlsOptions;
  /** Connect deadline. @default 10000 */
  connectTimeoutMs?: number;
  /** HTTP: deadline of a whole request. TCP/TLS: a write that makes no progress this long fails. @default 30000 */
  requestTimeoutMs?: number;
  /**
   * TCP/TLS reconnect backoff (a send during the backoff returns `retry` at once). It also paces the resend of the
   * replay window after a broken connection, which starts by itself, without waiting for the next send.
   */
  reconnect?: ReconnectOptions;
  /**
   * TCP/TLS: bytes of the most recent writes kept and written again after a broken connection (a reset discards
   * what the receiver had not read yet, and TCP cannot say how much). Turns such losses into duplicates as long as
   * the bytes in flight fit. `0` disables it.
   * @default 8388608 (8 MiB: loopback and LAN kernels can hold several MiB unread)
   */
  resendWindowBytes?: number;
}

export interface ResolvedConnection {
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  reconnect: ResolvedReconnect;
  resendWindowBytes: number;
  headers: Record<string, string>;
  tls: tls.ConnectionOptions | undefined;
  auth: ReturnType<typeof resolveAuth>;
}

export function resolveConnection(options: ConnectionOptions, ep: Endpoint): ResolvedConnection {
  // Its passwords and header values are redacted by value from every error and event from now on.
  registerCredentials(options);
  const needsTls = ep.protocol === "tls:" || ep.protocol === "https:";
  if (!needsTls && options.tls !== undefined) {
    throw new InvalidOptionError(`Expected no \`tls\` option with ${ep.protocol}// (use tls:// or https://), got an object`);
  }
  return {
    connectTimeoutMs: intOption("connectTimeoutMs", options.connectTimeoutMs, 10_000, 1, 600_000),
    requestTimeoutMs: intOption("requestTimeoutMs", options.requestTimeoutMs, 30_000, 1, 3_600_000),
    reconnect: reconnectOption(options.reconnect),
    resendWindowBytes: intOption("resendWindowBytes", options.resendWindowBytes, 8 * 1024 * 1024, 0, 1024 * 1024 * 1024),
    headers: headersOption(options.headers),
    tls: needsTls ? resolveTls(options.tls, ep.hostname) : undefined,
    auth: resolveAuth(options.auth, ep),
  };
}

/** A persistent TCP/TLS connection to `ep` (headers make no sense there and are refused). */
export function openStream(sink: string, ep: Endpoint, c: ResolvedConnection, stats: SinkStats): StreamConnection {
  if (Object.keys(c.headers).length > 0) throw new InvalidOptionError(`Expected no \`headers\` with ${ep.protocol}//, got some`);
  return new StreamConnection({
    sink,
    display: ep.display,
    host: ep.hostname,
    port: ep.port,
    tls: c.tls,
    connectTimeoutMs: c.connectTimeoutMs,
    writeTimeoutMs: c.requestTimeoutMs,
    reconnect: c.reconnect,
    stats,
    resendWindowBytes: c.resendWindowBytes,
  });
}

/** A keep-alive HTTP(S) client for `ep` with the resolved timeouts, TLS, auth and headers. */
export function openHttp(sink: string, ep: Endpoint, c: ResolvedConnection, stats: SinkStats, maxSockets: number): HttpClient {
  return new HttpClient({
    sink,
    endpoint: ep,
    tls: c.tls,
    headers: c.headers,
    auth: c.auth,
    requestTimeoutMs: c.requestTimeoutMs,
    connectTimeoutMs: c.connectTimeoutMs,
    maxSockets,
    stats,
  });
}
