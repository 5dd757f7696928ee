// NetworkSource: one aggregator as the central tier for many hosts. A supervised collector child listens for GELF
// (UDP, TCP), JSON lines (TCP, TLS) and NDJSON over HTTP; this file validates the options and tells the user where
// the child actually bound (port 0).
import { existsSync } from "node:fs";
import { isIP } from "node:net";
import { InvalidOptionError } from "../errors.js";
import { checkInt, checkObject } from "../options.js";
import { checkKeys, optionKeys } from "../util/validate.js";
import { describe } from "../pipeline/serialize.js";
import { defaultStreamMessageBytes } from "../collector/network/limits.js";
import { CollectorSource, type CollectorSourceOptions, resolveCollectorOptions } from "./collector-source.js";
import type { BaseSpec, NetworkListenerSpec, NetworkProtocol, NetworkSpec, WireParserSpec } from "./specs.js";

export type { NetworkProtocol } from "./specs.js";

/** TLS of the `tls://`, `gelf+tls://` and `https://` listeners. */
export interface NetworkTlsOptions {
  /**
   * Server certificate chain: PEM text, or the path of a PEM file. A path is read by the collector each time it
   * starts, so a renewed certificate is picked up by the next restart.
   */
  cert: string;
  /** Private key of `cert`: PEM text or a file path. */
  key: string;
  /** Passphrase of `key`. */
  passphrase?: string;
  /** CA certificate(s) that client certificates must chain to (PEM text or a file path). Needed by `requireClientCert`. */
  ca?: string;
  /**
   * Mutual TLS: refuse clients without a certificate signed by `ca`.
   * @default false
   */
  requireClientCert?: boolean;
  /**
   * A TLS handshake must finish this long after the connection was accepted; otherwise the connection is closed and
   * counted (`tlsErrors`). A client that connects and says nothing would hold a connection slot meanwhile.
   * @default 10_000
   */
  handshakeTimeoutMs?: number;
}

/** GELF chunk reassembly (UDP). Incomplete messages are bounded in number, bytes and time, and counted when dropped. */
export interface NetworkGelfOptions {
  /** A chunked message must be complete this long after its first chunk arrived (the GELF spec says 5 s). @default 5_000 */
  chunkTimeoutMs?: number;
  /** Chunked messages being reassembled at once; beyond it the oldest is dropped (counted `gelfChunksEvicted`). @default 1_000 */
  maxPendingMessages?: number;
  /** Bytes held by incomplete chunked messages; beyond it the oldest are dropped (counted). @default 33_554_432 (32 MiB) */
  maxPendingBytes?: number;
}

/** HTTP listeners (`http://`, `https://`): NDJSON bodies POSTed to the URL's path. */
export interface NetworkHttpOptions {
  /** Largest request body (after `Content-Encoding` decoding); larger requests get 413. @default 10_485_760 (10 MiB) */
  maxBodyBytes?: number;
  /**
   * Out of credit (the sinks are behind), or with every body-reading slot busy (8 per listener), a request is held
   * unread (TCP backpressure on the client) for up to this long; then it gets 429 with `Retry-After`, counted as
   * `httpThrottled` (no credit) or `httpSlotsBusy` (no slot).
   * @default 10_000
   */
  creditWaitMs?: number;
  /**
   * A body being read must bring at least 1 KiB (or end) every this long; a stalled or trickling upload is answered
   * 408, its connection closed and counted (`httpBodyTimeouts`), so that slow clients cannot hold the reading slots.
   * Time spent waiting for credit does not count. Shorter than `creditWaitMs` by default, so a slot a stalled body
   * held is free again before a request waiting for it gives up.
   * @default 5_000
   */
  bodyIdleTimeoutMs?: number;
  /**
   * A body may take this long in all to arrive, counting only the time it is being read (not time waiting for credit);
   * a slower one, however steady, is answered 408, its connection closed and counted (`httpBodyTimeouts`). Replaces
   * Node's own `requestTimeout`, which counted the waits for credit too and ended such a request's connection.
   * @default 300_000
   */
  bodyTimeoutMs?: number;
  /**
   * A connection must send a whole request's headers within this long of connecting (or of its previous request's
   * end), or it is closed and counted (`httpHeaderTimeouts`): silent or trickling connections cannot hold the
   * `maxConnections` slots. Checked every half of it, at most every 30 s, so a connection may last up to 1.5× as long.
   * @default 60_000
   */
  headersTimeoutMs?: number;
}

export interface NetworkSourceOptions extends Omit<CollectorSourceOptions, "multiline" | "maxLineBytes" | "parser"> {
  /**
   * Where to listen, as URLs; the scheme picks the protocol:
   * - `gelf+udp://host:port`: GELF datagrams (uncompressed, gzip or zlib; chunked or not).
   * - `gelf+tcp://host:port`, `gelf+tls://host:port`: GELF, one JSON object per frame ending in NUL (a newline is
   *   accepted as a frame end too).
   * - `tcp://host:port`, `tls://host:port`: lines (JSON by default, see `parser`).
   * - `udp://host:port`: one message per datagram (a trailing newline or NUL is dropped), parsed as a line is: with
   *   `parser: "syslog"`, syslog over UDP (RFC 5426); no credit, no record (counted, `udpDroppedNoCredit`).
   * - `http://host:port/path`, `https://host:port/path`: POST of NDJSON bodies to exactly `path` (default `/`).
   * - `gelf+http://host:port/path`, `gelf+https://…`: POST of GELF, one message per body or one per line (Graylog's
   *   bulk receiving), to exactly `path` (default `/gelf`).
   *
   * `host` defaults to 127.0.0.1 (`tcp://:5170`): name `0.0.0.0` or `[::]` to accept other machines. Port 0 picks a
   * free port (read it from {@link NetworkSource.addresses}); GELF schemes default to port 12201.
   */
  listen: string | readonly string[];
  /**
   * How a line of `tcp://`, `tls://` and `http://` input, or a `udp://` datagram, becomes fields (GELF is always
   * GELF). `"syslog"` reads RFC 5424 and BSD syslog; over TCP and TLS a connection is framed by newlines, or by
   * octet counting (RFC 6587, as RFC 5425 has it over TLS) when its first byte is a digit.
   * @default "json"
   */
  parser?: WireParserSpec | { regex: RegExp | string; flags?: string };
  /**
   * Largest single message in bytes: a line, a GELF TCP frame, or a GELF UDP message after reassembly and
   * decompression. Larger ones are dropped and counted (`oversizedLines`, `gelfTooLarge`); memory stays bounded.
   * @default 1_048_576 (1 MiB) for lines; 2_097_152 (2 MiB) for GELF TCP frames and 8_388_608 (8 MiB) for
   * decompressed GELF UDP messages (Graylog's defaults)
   */
  maxMessageBytes?: number;
  /** Certificate and key of the TLS listeners (required when one is configured, refused when none is). */
  tls?: NetworkTlsOptions;
  /**
   * Open connections per TCP, TLS or HTTP listener; further ones are closed as soon as they are accepted (counted,
   * `connectionsRefused`).
   * @default 1_024
   */
  maxConnections?: number;
  /**
   * A TCP or TLS connection that sends nothing for this long is closed (counted, `idleTimeouts`), so idle or
   * abandoned senders cannot hold connection slots and partial messages forever. Time spent waiting for credit
   * does not count. (HTTP connections: see `http.headersTimeoutMs`; an idle one between requests is closed after 5 s.)
   * @default 300_000 (5 minutes)
   */
  idleTimeoutMs?: number;
  /**
   * Bytes of partial (not yet ended) lines and GELF frames held across all TCP and TLS connections of the source. A
   * connection whose partial message would take the total over it is closed (counted, `partialOverBudget`). At least
   * the largest message a TCP/TLS listener takes.
   * @default 67_108_864 (64 MiB)
   */
  maxPartialBytes?: number;
  gelf?: NetworkGelfOptions;
  http?: NetworkHttpOptions;
}

/** A listener as bound by the collector. */
export interface NetworkAddress {
  /** The listen URL with the actual port, e.g. `gelf+udp://127.0.0.1:40123`. */
  url: string;
  protocol: NetworkProtocol;
  address: string;
  port: number;
}

const PROTOCOLS: readonly NetworkProtocol[] = ["gelf+udp", "gelf+tcp", "gelf+tls", "gelf+http", "gelf+https", "udp", "tcp", "tls", "http", "https"];
const TLS_PROTOCOLS = new Set<NetworkProtocol>(["gelf+tls", "gelf+https", "tls", "https"]);
const HTTP_PROTOCOLS = new Set<NetworkProtocol>(["http", "https", "gelf+http", "gelf+https"]);
const GELF_DEFAULT_PORT = 12201;
const DEFAULT_HOST = "127.0.0.1";
const URL_SHAPE = /^([a-z+]+):\/\/(\[[^\]]*\]|[^/:[\]]*)(?::([^/]*))?(\/.*)?$/i;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const HTTP_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

/** Parse and validate one listen URL (exported for the unit tests). */
export function parseListenUrl(value: unknown, path = "listen"): NetworkListenerSpec {
  if (typeof value !== "string") {
    throw new InvalidOptionError(`Expected \`${path}\` to be a URL string such as "gelf+udp://127.0.0.1:12201", got ${describe(value)}`);
  }
  const m = URL_SHAPE.exec(value.trim());
  if (m === null) {
    throw new InvalidOptionError(`Expected \`${path}\` to be a URL of the form scheme://host:port, got ${describe(value)}`);
  }
  const protocol = m[1]!.toLowerCase() as NetworkProtocol;
  if (!PROTOCOLS.includes(protocol)) {
    throw new InvalidOptionError(
      `Expected the scheme of \`${path}\` to be one of ${PROTOCOLS.map((p) => `${p}://`).join(", ")}, got ${describe(value)}`,
    );
  }
  let authority = m[2]!;
  let portText = m[3];
  // `tcp://5170`: a bare port.
  if (portText === undefined && /^\d+$/.test(authority)) {
    portText = authority;
    authority = "";
  }
  let host: string;
  if (authority === "") host = DEFAULT_HOST;
  else if (authority.startsWith("[")) {
    host = authority.slice(1, -1);
    if (isIP(host) !== 6) throw new InvalidOptionError(`Expected an IPv6 address inside [] in \`${path}\`, got ${describe(value)}`);
  } else {
    host = authority;
    if (isIP(host) === 0 && !HOSTNAME.test(host)) {
      throw new InvalidOptionError(`Expected the host of \`${path}\` to be an IP address or a host name, got ${describe(value)}`);
    }
  }
  let port: number;
  if (portText === undefined || portText === "") {
    if (!protocol.startsWith("gelf+")) {
      throw new InvalidOptionError(`Expected \`${path}\` to name a port (0 picks a free one), got ${describe(value)}`);
    }
    port = GELF_DEFAULT_PORT;
  } else {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (!(port >= 0 && port <= 65535)) {
      throw new InvalidOptionError(`Expected the port of \`${path}\` to be an integer between 0 and 65535, got ${describe(value)}`);
    }
  }
  const urlPath = m[4];
  const spec: NetworkListenerSpec = { protocol, host, port };
  if (HTTP_PROTOCOLS.has(protocol)) {
    // Graylog's GELF HTTP input takes POSTs to /gelf.
    const p = urlPath ?? (protocol.startsWith("gelf+") ? "/gelf" : "/");
    if (!HTTP_PATH.test(p)) {
      throw new InvalidOptionError(`Expected the path of \`${path}\` to be a plain path without query or fragment, got ${describe(value)}`);
    }
    spec.path = p;
  } else if (urlPath !== undefined && urlPath !== "/") {
    throw new InvalidOptionError(`Expected \`${path}\` to have no path (only HTTP listeners take one), got ${describe(value)}`);
  }
  return spec;
}

/** The URL of a listener (IPv6 in brackets), as shown in `addresses` and messages. */
export function listenerUrl(l: { protocol: string; host: string; port: number; path?: string | undefined }): string {
  const host = isIP(l.host) === 6 ? `[${l.host}]` : l.host;
  return `${l.protocol}://${host}:${l.port}${l.path ?? ""}`;
}

function pemOrPath(path: string, value: unknown): string {
  if (typeof value !== "string" || value.trim().length === 0) {
    throw new InvalidOptionError(`Expected \`${path}\` to be PEM text or the path of a PEM file, got ${describe(value)}`);
  }
  if (!value.includes("-----BEGIN") && !existsSync(value)) {
    // Not PEM, so it is a path: check it now rather than fail in the child at every restart.
    throw new InvalidOptionError(`Expected \`${path}\` to be PEM text or the path of an existing file, got a path that does not exist`);
  }
  return value;
}

const KEYS = optionKeys<NetworkSourceOptions>()([
  "name", "parser", "fields", "restart", "startTimeoutMs", "killAfterMs", "execArgv",
  "listen", "maxMessageBytes", "tls", "maxConnections", "idleTimeoutMs", "maxPartialBytes", "gelf", "http",
]);
const TLS_KEYS = optionKeys<NetworkTlsOptions>()(["cert", "key", "passphrase", "ca", "requireClientCert", "handshakeTimeoutMs"]);
const GELF_KEYS = optionKeys<NetworkGelfOptions>()(["chunkTimeoutMs", "maxPendingMessages", "maxPendingBytes"]);
const HTTP_KEYS = optionKeys<NetworkHttpOptions>()(["maxBodyBytes", "creditWaitMs", "bodyIdleTimeoutMs", "bodyTimeoutMs", "headersTimeoutMs"]);

function resolveTlsOption(value: unknown): NonNullable<NetworkSpec["tls"]> {
  checkObject("tls", value);
  checkKeys("tls", value, TLS_KEYS);
  const t = value as NetworkTlsOptions;
  const cert = pemOrPath("tls.cert", t.cert);
  const key = pemOrPath("tls.key", t.key);
  if (t.passphrase !== undefined && typeof t.passphrase !== "string") {
    throw new InvalidOptionError(`Expected \`tls.passphrase\` to be a string, got a ${typeof t.passphrase}`);
  }
  const ca = t.ca === undefined ? undefined : pemOrPath("tls.ca", t.ca);
  if (t.requireClientCert !== undefined && typeof t.requireClientCert !== "boolean") {
    throw new InvalidOptionError(`Expected \`tls.requireClientCert\` to be a boolean, got ${describe(t.requireClientCert)}`);
  }
  const requireClientCert = t.requireClientCert ?? false;
  if (requireClientCert && ca === undefined) {
    throw new InvalidOptionError("Expected `tls.ca` to be set when `tls.requireClientCert` is true, got `undefined`");
  }
  checkInt("tls.handshakeTimeoutMs", t.handshakeTimeoutMs, 1);
  const out: NonNullable<NetworkSpec["tls"]> = { cert, key, requireClientCert, handshakeTimeoutMs: t.handshakeTimeoutMs ?? 10_000 };
  if (ca !== undefined) out.ca = ca;
  if (t.passphrase !== undefined) out.passphrase = t.passphrase;
  return out;
}

// TCP-based protocols share the port space; UDP has its own.
function transportOf(p: NetworkProtocol): "udp" | "tcp" {
  return p === "gelf+udp" || p === "udp" ? "udp" : "tcp";
}

type NetworkPart = Omit<NetworkSpec, keyof BaseSpec | "kind">;

/**
 * Receives logs from other machines: GELF over UDP (chunked, compressed) and TCP, JSON lines over TCP or TLS, and
 * NDJSON over HTTP. One source may listen on several URLs. Runs in its own collector process like every source.
 *
 * Malformed input (bad JSON, bad GELF, bad chunk headers, oversized messages) is dropped or shipped with a parse
 * error, and counted by reason in `report.sources[name].collector`; it is never fatal. Backpressure: out of credit,
 * TCP, TLS and HTTP connections stop being read (senders block on their sockets); UDP messages are dropped and
 * counted (`udpDroppedNoCredit`), since UDP has no way to slow a sender.
 *
 * Records: GELF `full_message` (or `short_message`) → `message`, `timestamp` → `@timestamp`, `level` → `log.level`,
 * `host` → `host.name` (the sender's), `_foo` → `foo`; the peer → `client.ip` / `client.port`. A network source
 * never stamps the aggregator's own host name on records: they come from other machines.
 */
export class NetworkSource extends CollectorSource {
  readonly kind = "network";
  private readonly network: NetworkPart;
  private bound: NetworkAddress[] = [];

  constructor(options: NetworkSourceOptions) {
    checkObject("options", options);
    if (options === undefined) throw new InvalidOptionError("Expected source options, got `undefined`");
    const loose = options as NetworkSourceOptions & { multiline?: unknown; maxLineBytes?: unknown };
    if (loose.multiline !== undefined) {
      throw new InvalidOptionError("Expected no `multiline` on a NetworkSource (senders ship whole events), got " + describe(loose.multiline));
    }
    if (loose.maxLineBytes !== undefined) {
      throw new InvalidOptionError(`Expected \`maxMessageBytes\` rather than \`maxLineBytes\` on a NetworkSource, got ${describe(loose.maxLineBytes)}`);
    }
    super(resolveCollectorOptions({ ...options, parser: options.parser ?? "json" }));
    checkKeys("", options, KEYS);
    const list = typeof options.listen === "string" ? [options.listen] : options.listen;
    if (!Array.isArray(list) || list.length === 0) {
      throw new InvalidOptionError(`Expected \`listen\` to be a URL or a non-empty array of URLs, got ${describe(options.listen)}`);
    }
    const listeners = list.map((u: unknown, i: number) => parseListenUrl(u, typeof options.listen === "string" ? "listen" : `listen[${i}]`));
    const seen = new Set<string>();
    for (const l of listeners) {
      if (l.port === 0) continue;
      const key = `${transportOf(l.protocol)} ${l.host} ${l.port}`;
      if (seen.has(key)) {
        throw new InvalidOptionError(`Expected each \`listen\` address to be used once per transport, got ${describe(listenerUrl(l))} twice`);
      }
      seen.add(key);
    }
    checkInt("maxMessageBytes", options.maxMessageBytes, 16);
    checkInt("maxConnections", options.maxConnections, 1);
    checkObject("gelf", options.gelf);
    checkObject("http", options.http);
    checkKeys("gelf", options.gelf, GELF_KEYS);
    checkKeys("http", options.http, HTTP_KEYS);
    checkInt("gelf.chunkTimeoutMs", options.gelf?.chunkTimeoutMs, 1);
    checkInt("gelf.maxPendingMessages", options.gelf?.maxPendingMessages, 1);
    checkInt("gelf.maxPendingBytes", options.gelf?.maxPendingBytes, 1);
    checkInt("http.maxBodyBytes", options.http?.maxBodyBytes, 16);
    checkInt("http.creditWaitMs", options.http?.creditWaitMs, 0);
    checkInt("http.bodyIdleTimeoutMs", options.http?.bodyIdleTimeoutMs, 1);
    checkInt("http.bodyTimeoutMs", options.http?.bodyTimeoutMs, 1);
    checkInt("http.headersTimeoutMs", options.http?.headersTimeoutMs, 1);
    checkInt("idleTimeoutMs", options.idleTimeoutMs, 1);
    checkInt("maxPartialBytes", options.maxPartialBytes, 16);
    const maxPartialBytes = options.maxPartialBytes ?? 64 * 1024 * 1024;
    for (const l of listeners) {
      if (transportOf(l.protocol) === "udp" || HTTP_PROTOCOLS.has(l.protocol)) continue;
      const largest = options.maxMessageBytes ?? defaultStreamMessageBytes(l.protocol);
      if (maxPartialBytes < largest) {
        throw new InvalidOptionError(
          `Expected \`maxPartialBytes\` to be at least the largest message a ${l.protocol}:// listener takes (${largest} bytes), got ${describe(maxPartialBytes)}`,
        );
      }
    }
    const needsTls = listeners.some((l) => TLS_PROTOCOLS.has(l.protocol));
    if (needsTls && options.tls === undefined) {
      throw new InvalidOptionError("Expected `tls` ({ cert, key }) for the tls://, gelf+tls:// or https:// listeners, got `undefined`");
    }
    if (!needsTls && options.tls !== undefined) {
      throw new InvalidOptionError(
        "Expected a tls://, gelf+tls:// or https:// listener when `tls` is set (tcp:// and http:// are plain text), got none",
      );
    }
    this.network = {
      listeners,
      maxMessageBytes: options.maxMessageBytes,
      maxConnections: options.maxConnections ?? 1_024,
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      maxPartialBytes,
      gelf: {
        chunkTimeoutMs: options.gelf?.chunkTimeoutMs ?? 5_000,
        maxPendingMessages: options.gelf?.maxPendingMessages ?? 1_000,
        maxPendingBytes: options.gelf?.maxPendingBytes ?? 32 * 1024 * 1024,
      },
      http: {
        maxBodyBytes: options.http?.maxBodyBytes ?? 10 * 1024 * 1024,
        creditWaitMs: options.http?.creditWaitMs ?? 10_000,
        bodyIdleTimeoutMs: options.http?.bodyIdleTimeoutMs ?? 5_000,
        bodyTimeoutMs: options.http?.bodyTimeoutMs ?? 300_000,
        headersTimeoutMs: options.http?.headersTimeoutMs ?? 60_000,
      },
    };
    if (options.tls !== undefined) this.network.tls = resolveTlsOption(options.tls);
  }

  /**
   * Where the collector listens, one entry per `listen` URL in the same order, with the ports it actually bound.
   * Empty until the source started (after `await aggregator.start()`). Updated by every (re)start; a restarted
   * collector binds the same ports again when it can.
   */
  get addresses(): readonly NetworkAddress[] {
    return this.bound;
  }

  protected override onReady(info: unknown): void {
    const addresses = (info as { addresses?: unknown } | undefined)?.addresses;
    if (Array.isArray(addresses)) this.bound = addresses as NetworkAddress[];
  }

  protected spec(base: BaseSpec): NetworkSpec {
    return {
      ...base,
      kind: "network",
      ...this.network,
      // Port 0 picked a free port last time: ask for it again, so senders keep working across restarts.
      listeners: this.network.listeners.map((l, i) => {
        const prev = this.bound[i];
        return l.port === 0 && prev !== undefined && prev.port > 0 ? { ...l, preferPort: prev.port } : l;
      }),
    };
  }
}
