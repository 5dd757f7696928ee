// GelfSink: ships records to Graylog as GELF 1.1 over UDP (chunked), TCP/TLS (NUL-framed) or HTTP(S) (single or bulk).
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { gzipSync, deflateSync } from "node:zlib";
import { inspect } from "node:util";
import { InvalidOptionError, SinkError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import type { LogLevel, LogRecord } from "../record.js";
import { LOG_LEVELS } from "../record.js";
import type { Batch, RecordOutcome, SendContext, SendResult, Sink, SinkCloseContext, SinkLifecycleContext, SinkMetrics } from "./sink.js";
import { Outcome } from "./sink.js";
import { SinkStats } from "./stats.js";
import type { GelfCompression } from "./gelf-chunker.js";
import {
  CHUNK_SIZE_LAN,
  CHUNK_SIZE_WAN,
  MAX_DATAGRAM,
  MIN_CHUNK_SIZE,
  MessageIdPool,
  chunkPayload,
  compress,
  compressSync,
  maxPayloadBytes,
} from "./gelf-chunker.js";
import type { GelfMappingOptions } from "./gelf-message.js";
import { DEFAULT_GELF_LEVELS, defaultGelfMapping, fitGelf, toGelf } from "./gelf-message.js";
import { GelfBytesEncoder } from "./gelf-bytes.js";
import { type UdpBatchResult, UdpSender } from "./gelf-udp-sender.js";
import { EntryBatch } from "../pipeline/batch.js";
import type { HttpClient } from "./transport/http-post.js";
import { type BodyOf, HttpBatchPoster, summarize } from "./transport/http-batch.js";
import type { Endpoint } from "./transport/options.js";
import { boolOption, endpointOption, enumOption, intOption, nameOption } from "./transport/options.js";
import { checkKeys, optionKeys } from "../util/validate.js";
import { STREAM_SEGMENT_BYTES, packLines } from "./transport/segments.js";
import type { StreamConnection } from "./transport/stream-connection.js";
import { type ConnectionOptions, openHttp, openStream, resolveConnection } from "./transport/connection.js";

export interface GelfSinkOptions extends ConnectionOptions {
  /** Unique sink name. */
  name: string;
  /**
   * Where Graylog listens; the scheme picks the transport: `udp://host:12201`, `tcp://host:12201`,
   * `tls://host:12201`, `http://host:12202/gelf`, `https://…`. UDP/TCP/TLS default to port 12201; HTTP posts to
   * exactly the URL's path (`/gelf` when the URL has none). Basic credentials in an HTTP URL are sent as
   * `Authorization: Basic` and never printed.
   */
  url: string | URL;
  /** `host` for records without `host.name`. @default os.hostname() */
  host?: string;
  /** Syslog severity (0–7) per level; missing levels keep the default. @default { trace: 7, debug: 7, info: 6, warn: 4, error: 3, fatal: 2 } */
  levels?: Partial<Record<LogLevel, number>>;
  /** Object levels flattened into `_a_b` names; deeper values are sent as JSON text. @default 4 */
  flattenDepth?: number;
  /**
   * Compression. UDP: of a message's whole JSON before chunking (`gzip`, `zlib` or `none`); a message whose JSON
   * fits one datagram uncompressed is sent uncompressed. HTTP: `Content-Encoding: gzip`/`deflate`.
   * TCP/TLS: only `none` (compressed bytes could contain the NUL delimiter). @default "gzip" for UDP, else "none"
   */
  compression?: GelfCompression;
  /**
   * UDP datagram size, **including** the 12-byte chunk header: a number (64–65507), `"wan"` (1420) or `"lan"` (8192).
   * A message is cut into at most 128 chunks; see `fitGelf` for what happens to larger ones. @default "wan"
   */
  chunkSize?: number | "wan" | "lan";
  /** TCP/TLS: largest frame, matching Graylog's `max_message_size`. @default 2097152 */
  maxMessageBytes?: number;
  /** HTTP: largest request body before decoding, matching Graylog's `max_chunk_size`. @default 65536 */
  maxBodyBytes?: number;
  /** HTTP: send newline-separated bulk bodies (needs "Enable Bulk Receiving" on the input, Graylog 4.3+/6.1+). @default false */
  bulk?: boolean;
  /** HTTP: parallel requests inside one `send`. @default 8 */
  concurrency?: number;
}

type Transport = "udp" | "stream" | "http";

// Records encoded for UDP between two event-loop turns (a power of two): the host app gets a turn every ms or so.
const ENCODE_YIELD_EVERY = 256;
/** The largest a GELF message may decompress to: Graylog's `decompress_size_limit` default (8 MiB). */
const GELF_DECOMPRESSED_MAX = 8 * 1024 * 1024;
const DEFAULT_HTTP_PATH = "/gelf";
/** How often a UDP sink looks its host name up again (see refreshUdpAddress). */
const UDP_RESOLVE_EVERY_MS = 60_000;

const KEYS = optionKeys<GelfSinkOptions>()([
  "name", "url", "host", "levels", "flattenDepth", "compression", "chunkSize", "maxMessageBytes", "maxBodyBytes", "bulk",
  "concurrency", "auth", "headers", "tls", "connectTimeoutMs", "requestTimeoutMs", "reconnect", "resendWindowBytes",
]);

export class GelfSink implements Sink {
  readonly name: string;
  readonly pipelineDefaults: Sink["pipelineDefaults"];
  private readonly transport: Transport;
  private readonly endpoint: Endpoint;
  private readonly mapping: GelfMappingOptions;
  private readonly compression: GelfCompression;
  private readonly chunkSize: number;
  private readonly maxMessageBytes: number;
  private readonly maxBodyBytes: number;
  private readonly bulk: boolean;
  private readonly concurrency: number;
  private readonly stats = new SinkStats();
  private readonly counters = { truncated: 0, rejected_too_large: 0, datagrams: 0, udp_send_errors: 0, udp_readdressed: 0 };
  private readonly ids = new MessageIdPool();
  /** Builds GELF from records held as bytes, for the records it can (see gelf-bytes.ts). */
  private readonly encoder: GelfBytesEncoder;
  private readonly stream: StreamConnection | undefined;
  private readonly http: HttpClient | undefined;
  private readonly poster: HttpBatchPoster | undefined;
  private udp: UdpSender | undefined;
  private udpOpening: Promise<UdpSender> | undefined;
  private udpClosed = false;
  /** The address the sender's socket is connected to, and when the host name was last looked up. */
  private udpAddress: string | undefined;
  private udpResolvedAt = 0;

  constructor(options: GelfSinkOptions) {
    if (options === null || typeof options !== "object") {
      throw new InvalidOptionError(`Expected GelfSink options to be an object, got ${describe(options)}`);
    }
    checkKeys("", options, KEYS);
    this.name = nameOption(options.name);
    const ep = endpointOption(options.url, ["udp:", "tcp:", "tls:", "http:", "https:"], {
      "udp:": 12201,
      "tcp:": 12201,
      "tls:": 12201,
      "http:": 12202,
      "https:": 12202,
    });
    this.transport = ep.protocol === "udp:" ? "udp" : ep.protocol === "tcp:" || ep.protocol === "tls:" ? "stream" : "http";
    if (this.transport === "http" && (ep.path === "/" || ep.path === "")) ep.path = DEFAULT_HTTP_PATH;
    this.endpoint = ep;
    if (ep.username !== undefined && this.transport !== "http") {
      throw new InvalidOptionError(`Expected \`url\` without credentials for ${ep.protocol}// (GELF has no auth there), got userinfo`);
    }

    const mapping = defaultGelfMapping();
    if (options.host !== undefined) {
      if (typeof options.host !== "string" || options.host.trim().length === 0) {
        throw new InvalidOptionError(`Expected \`host\` to be a non-empty string, got ${describe(options.host)}`);
      }
      mapping.host = options.host;
    }
    mapping.levels = resolveLevels(options.levels);
    mapping.flattenDepth = intOption("flattenDepth", options.flattenDepth, 4, 1, 32);
    this.mapping = mapping;
    this.encoder = new GelfBytesEncoder(mapping);

    const defaultCompression: GelfCompression = this.transport === "udp" ? "gzip" : "none";
    this.compression = enumOption("compression", options.compression, ["gzip", "zlib", "none"], defaultCompression);
    if (this.transport === "stream" && this.compression !== "none") {
      throw new InvalidOptionError(
        `Expected \`compression\` to be "none" for GELF over TCP (compressed bytes can contain the NUL delimiter), got ${describe(this.compression)}`,
      );
    }
    const cs = options.chunkSize;
    this.chunkSize =
      cs === "wan" || cs === undefined ? CHUNK_SIZE_WAN : cs === "lan" ? CHUNK_SIZE_LAN : intOption("chunkSize", cs, CHUNK_SIZE_WAN, MIN_CHUNK_SIZE, MAX_DATAGRAM);
    this.maxMessageBytes = intOption("maxMessageBytes", options.maxMessageBytes, 2_097_152, 256, 1 << 30);
    this.maxBodyBytes = intOption("maxBodyBytes", options.maxBodyBytes, 65_536, 256, 1 << 30);
    this.bulk = boolOption("bulk", options.bulk, false);
    this.concurrency = intOption("concurrency", options.concurrency, 8, 1, 256);
    const conn = resolveConnection(options, ep);
    const { headers, auth } = conn;

    if (this.transport === "stream") {
      this.stream = openStream(this.name, ep, conn, this.stats);
      this.pipelineDefaults = { concurrency: 1 };
    } else if (this.transport === "http") {
      if (this.compression === "gzip") headers["content-encoding"] = "gzip";
      else if (this.compression === "zlib") headers["content-encoding"] = "deflate";
      headers["content-type"] ??= "application/json";
      this.http = openHttp(this.name, ep, conn, this.stats, this.concurrency);
      this.poster = new HttpBatchPoster(this.http, this.name, ep.display, (status) => status >= 200 && status <= 299);
    } else {
      if (auth !== undefined || Object.keys(headers).length > 0) {
        throw new InvalidOptionError("Expected no `auth` or `headers` with udp:// (GELF UDP has no auth), got some");
      }
      // Two batches in flight: the host builds the next one while the sender thread sends the current one.
      this.pipelineDefaults = { concurrency: 2 };
    }
  }

  /**
   * What `util.inspect()` (console.log, loggers, error trackers) shows of it: its name and endpoint, never the
   * credentials, headers and TLS keys its connection holds.
   */
  [inspect.custom](): string {
    return `GelfSink { name: ${JSON.stringify(this.name)}, url: ${JSON.stringify(this.endpoint.display)} }`;
  }

  /** What `JSON.stringify()` shows of it, for the same reason. */
  toJSON(): { name: string; url: string } {
    return { name: this.name, url: this.endpoint.display };
  }

  async open(ctx: SinkLifecycleContext): Promise<void> {
    if (this.transport === "udp") {
      try {
        await this.openUdp();
      } catch (error) {
        // A name that does not resolve (yet: DNS is often not ready when a pod starts) is the engine's to retry,
        // like a refused TCP connection: sends report it as `dns_error`. Failing start() would fail the sink for good.
        if ((error as { reason?: string }).reason === "dns_error") return;
        throw new SinkError("ERR_SINK_OPEN", `Cannot open UDP to ${this.endpoint.display}: ${(error as Error).message}`, {
          sink: this.name,
          cause: error,
        });
      }
    } else if (this.stream !== undefined) {
      try {
        await this.stream.open(ctx.signal);
      } catch (error) {
        // A wrong certificate will not heal by itself: fail start(). A server that is down is the engine's to retry.
        if ((error as SinkError).code === "ERR_TLS") throw error;
      }
    }
  }

  async send(batch: Batch, ctx: SendContext): Promise<SendResult> {
    if (batch.length === 0) return Outcome.delivered;
    if (this.transport === "udp") return this.sendUdp(batch, ctx.signal);
    if (this.transport === "stream") return this.sendStream(batch, ctx.signal);
    return this.bulk ? this.sendHttpBulk(batch, ctx.signal) : this.sendHttpSingle(batch, ctx.signal);
  }

  async close(ctx?: SinkCloseContext): Promise<void> {
    // The signal aborts at the aggregator's close deadline: resends of the replay window stop there.
    if (this.stream !== undefined) await this.stream.close(ctx?.signal, ctx?.lost);
    this.http?.close();
    this.udpClosed = true;
    const udp = this.udp;
    this.udp = undefined;
    await udp?.close();
  }

  metrics(): SinkMetrics {
    return { ...this.stats.snapshot(), ...this.counters, ...(this.poster === undefined ? {} : { requests_split_413: this.poster.splits }) };
  }

  // ---- UDP ----

  /** The sender thread, started on first use and again after it died. */
  private openUdp(): Promise<UdpSender> {
    if (this.udp?.alive === true) return Promise.resolve(this.udp);
    this.udpOpening ??= (async () => {
      // Resolve once: the socket is connected, so no name lookup per datagram (about half the CPU per datagram).
      const { address, family } = await lookup(this.endpoint.hostname).catch((error: unknown) => {
        throw Object.assign(new Error(`cannot resolve ${this.endpoint.hostname}: ${(error as Error).message}`), { reason: "dns_error" });
      });
      const sender = await UdpSender.open({ address, port: this.endpoint.port, family: family === 6 ? 6 : 4 });
      if (this.udpClosed) {
        await sender.close();
        throw new SinkError("ERR_SINK_SEND", `GelfSink "${this.name}" is closed`, { sink: this.name });
      }
      this.udp = sender;
      this.udpAddress = address;
      this.udpResolvedAt = Date.now();
      return sender;
    })().finally(() => (this.udpOpening = undefined));
    return this.udpOpening;
  }

  /**
   * Look the host name up again every UDP_RESOLVE_EVERY_MS: the socket is connected to one address, and UDP says
   * nothing when nobody listens there any more (a Graylog moved by DNS would otherwise get nothing, silently). On a
   * new address the current sender is retired after its batches and the next send connects anew. A failed lookup
   * keeps the current address.
   */
  private async refreshUdpAddress(): Promise<void> {
    if (this.udp === undefined || Date.now() - this.udpResolvedAt < UDP_RESOLVE_EVERY_MS || isIP(this.endpoint.hostname) !== 0) return;
    this.udpResolvedAt = Date.now();
    const found = await lookup(this.endpoint.hostname).catch(() => undefined);
    if (found === undefined || found.address === this.udpAddress || this.udp === undefined) return;
    this.udp.retire();
    this.udp = undefined;
    this.counters.udp_readdressed++;
  }

  private async sendUdp(batch: Batch, signal: AbortSignal): Promise<SendResult> {
    await this.refreshUdpAddress();
    let sender: UdpSender;
    try {
      sender = await this.openUdp();
    } catch (error) {
      const err = new SinkError("ERR_SINK_SEND", `Cannot open UDP to ${this.endpoint.display}: ${(error as Error).message}`, { sink: this.name, cause: error });
      this.stats.error();
      return Outcome.retry((error as { reason?: string }).reason ?? "udp_sender_failed", undefined, err);
    }
    const started = performance.now();
    const n = batch.length;
    const limit = maxPayloadBytes(this.chunkSize);
    const outcomes = new Array<RecordOutcome>(n);
    // The batch's datagrams, back to back in one buffer of its own (it is handed to the sender thread whole), the
    // end of each, and the record each belongs to.
    let data = Buffer.allocUnsafeSlow(Math.max(64 * 1024, batch.bytes + n * 64));
    let at = 0;
    const ends: number[] = [];
    const owners: number[] = [];
    const reserve = (k: number): void => {
      if (at + k <= data.length) return;
      const bigger = Buffer.allocUnsafeSlow(Math.max(2 * data.length, at + k));
      data.copy(bigger, 0, 0, at);
      data = bigger;
    };
    let encoded = n;
    for (let i = 0; i < n; i++) {
      if (signal.aborted) {
        encoded = i;
        break;
      }
      outcomes[i] = Outcome.delivered;
      // Most records: GELF straight from their bytes into the buffer, one uncompressed datagram.
      const size = this.fastSize(batch, i);
      if (size >= 0 && size <= this.chunkSize) {
        reserve(size);
        at = this.encoder.writeTo(data, at);
        ends.push(at);
        owners.push(i);
      } else {
        const payload = await this.udpPayload(recordAt(batch, i), limit);
        if (typeof payload === "string") {
          this.counters.rejected_too_large++;
          outcomes[i] = Outcome.reject("gelf_message_too_large", new SinkError("ERR_SINK_REJECTED", payload, { sink: this.name }));
          continue;
        }
        for (const d of chunkPayload(payload, this.chunkSize, this.ids)) {
          reserve(d.length);
          data.set(d, at);
          at += d.length;
          ends.push(at);
          owners.push(i);
        }
      }
      // Building a batch takes a few ms; the host's other work gets a turn in between.
      if ((i & (ENCODE_YIELD_EVERY - 1)) === ENCODE_YIELD_EVERY - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    for (let j = encoded; j < n; j++) outcomes[j] = Outcome.retry("aborted");

    const count = ends.length;
    let result: UdpBatchResult = { sent: 0, failed: [] };
    // Aborted while encoding: none of it is sent (below, the records encoded so far go again like the rest).
    if (count > 0 && !signal.aborted) {
      const offsets = new Int32Array(count + 1);
      for (let k = 0; k < count; k++) offsets[k + 1] = ends[k]!;
      try {
        result = await sender.send(data, offsets, signal);
      } catch (error) {
        // The thread died with the batch: nothing about it is known, so all of it goes again.
        const err = new SinkError("ERR_SINK_SEND", `Sending to ${this.endpoint.display} failed: ${(error as Error).message}`, { sink: this.name, cause: error });
        this.stats.error();
        for (let k = 0; k < count; k++) if (outcomes[owners[k]!] === Outcome.delivered) outcomes[owners[k]!] = Outcome.retry("udp_sender_failed", undefined, err);
        return allDelivered(outcomes) ? Outcome.delivered : Outcome.perRecord(outcomes);
      }
    }
    const bytes = at;
    const failed = result.failed;
    for (let f = 0; f < failed.length; f += 2) {
      const i = owners[failed[f] as number]!;
      this.counters.udp_send_errors++;
      if (outcomes[i] === Outcome.delivered) {
        outcomes[i] = Outcome.retry("udp_send_error", undefined, new SinkError("ERR_SINK_SEND", `Sending to ${this.endpoint.display} failed: ${String(failed[f + 1])}`, { sink: this.name }));
      }
    }
    // Aborted part-way: a record with a datagram that was not sent goes again (Graylog drops a partial message).
    if (result.sent < count) {
      for (let k = result.sent; k < count; k++) if (outcomes[owners[k]!] === Outcome.delivered) outcomes[owners[k]!] = Outcome.retry("aborted");
    }
    this.counters.datagrams += result.sent;
    this.stats.request("ok", bytes, performance.now() - started);
    return allDelivered(outcomes) ? Outcome.delivered : Outcome.perRecord(outcomes);
  }

  /**
   * The general path's UDP payload: the message's JSON, compressed when it does not fit one datagram, shrunk when
   * it needs more than 128 chunks (or decompresses past Graylog's limit). When even that does not fit: why, in words.
   */
  private async udpPayload(record: LogRecord, limit: number): Promise<Buffer | string> {
    let msg = toGelf(record, this.mapping);
    let json = JSON.stringify(msg);
    let cut = false;
    // Graylog drops a message that decompresses to more than 8 MiB (its inputs' `decompress_size_limit`) with no
    // word to the sender; one that compresses well would pass the chunk limit below. Shortened like any other.
    if (json.length > GELF_DECOMPRESSED_MAX / 3 && Buffer.byteLength(json) > GELF_DECOMPRESSED_MAX) {
      const fitted = fitGelf(msg, GELF_DECOMPRESSED_MAX, (text) => Buffer.byteLength(text));
      if (fitted === undefined) return `GELF message is larger than Graylog's ${GELF_DECOMPRESSED_MAX}-byte decompression limit even after truncation (its extra fields alone)`;
      msg = JSON.parse(fitted.json) as typeof msg;
      json = fitted.json;
      cut = true;
    }
    // A message that fits one datagram as it is goes uncompressed: zlib's per-call setup costs more (~100 µs) than
    // the bytes it saves, and Graylog detects the format per message.
    const payload = json.length * 3 <= this.chunkSize || Buffer.byteLength(json) <= this.chunkSize ? Buffer.from(json, "utf8") : await compress(json, this.compression);
    if (payload.length <= limit) {
      if (cut) this.counters.truncated++;
      return payload;
    }
    const mode = this.compression;
    const fitted = fitGelf(msg, limit, (json) => compressSync(json, mode).length);
    if (fitted === undefined) return `GELF message needs more than 128 chunks of ${this.chunkSize} bytes even after truncation`;
    this.counters.truncated++;
    return compress(fitted.json, mode);
  }

  /** The size of record `i`'s GELF JSON built from its bytes (then `encoder.writeTo` writes it), or -1. */
  private fastSize(batch: Batch, i: number): number {
    if (!(batch instanceof EntryBatch)) return -1;
    const entry = batch.entries[i]!;
    const frame = entry.frameBuffer;
    if (frame === undefined) return -1;
    const start = entry.frameOffset;
    return this.encoder.prepare(frame, start, start + entry.bytes);
  }

  /** GELF JSON built from record `i`'s bytes when it is held as bytes, the encoder accepts it and it fits `maxBytes`. */
  private fastGelf(batch: Batch, i: number, maxBytes: number): Buffer | undefined {
    const size = this.fastSize(batch, i);
    if (size < 0 || size > maxBytes) return undefined;
    const gelf = Buffer.allocUnsafe(size);
    this.encoder.writeTo(gelf, 0);
    return gelf;
  }

  // ---- TCP / TLS ----

  private async sendStream(batch: Batch, signal: AbortSignal): Promise<SendResult> {
    const { lines, sent, outcomes } = this.frameAll(batch, this.maxMessageBytes - 1);
    const segments = packLines(lines, "\0", STREAM_SEGMENT_BYTES);
    const r = await this.stream!.write(segments, signal);
    if (r.error === undefined && outcomes === undefined) return Outcome.delivered;
    if (r.error !== undefined && r.flushed === 0 && outcomes === undefined) {
      return Outcome.retry(r.reason ?? "connection_error", r.retryAfterMs, r.error);
    }
    const out = outcomes ?? new Array<RecordOutcome>(batch.length).fill(Outcome.delivered);
    if (r.error !== undefined) {
      const retry = Outcome.retry(r.reason ?? "connection_error", r.retryAfterMs, r.error);
      for (let k = r.flushed; k < sent.length; k++) out[sent[k]!] = retry;
    }
    return allDelivered(out) ? Outcome.delivered : Outcome.perRecord(out);
  }

  /**
   * GELF JSON for every record, shrunk to `maxBytes` (UTF-8) when needed. `sent` lists the indexes of `lines`;
   * `outcomes` is only allocated when a record was rejected as too large.
   */
  private frameAll(batch: Batch, maxBytes: number): { lines: (string | Buffer)[]; sent: number[]; outcomes: RecordOutcome[] | undefined } {
    const n = batch.length;
    const lines: (string | Buffer)[] = [];
    const sent: number[] = [];
    let outcomes: RecordOutcome[] | undefined;
    for (let i = 0; i < n; i++) {
      const fast = this.fastGelf(batch, i, maxBytes);
      if (fast !== undefined) {
        lines.push(fast);
        sent.push(i);
        continue;
      }
      const msg = toGelf(recordAt(batch, i), this.mapping);
      let json = JSON.stringify(msg);
      // Cheap pre-check: UTF-8 is at most 3 bytes per UTF-16 unit.
      if (json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes) {
        const fitted = fitGelf(msg, maxBytes, (j) => Buffer.byteLength(j));
        if (fitted === undefined) {
          this.counters.rejected_too_large++;
          outcomes ??= new Array<RecordOutcome>(n).fill(Outcome.delivered);
          outcomes[i] = Outcome.reject(
            "gelf_message_too_large",
            new SinkError("ERR_SINK_REJECTED", `GELF message exceeds ${maxBytes} bytes even after truncation`, { sink: this.name }),
          );
          continue;
        }
        this.counters.truncated++;
        json = fitted.json;
      }
      lines.push(json);
      sent.push(i);
    }
    return { lines, sent, outcomes };
  }

  // ---- HTTP ----

  private encodeBody(text: string | Buffer): Buffer {
    if (this.compression === "gzip") return gzipSync(text);
    if (this.compression === "zlib") return deflateSync(text);
    return typeof text === "string" ? Buffer.from(text, "utf8") : text;
  }

  private async sendHttpSingle(batch: Batch, signal: AbortSignal): Promise<SendResult> {
    const { lines, sent, outcomes: pre } = this.frameAll(batch, this.maxBodyBytes);
    const outcomes = pre ?? new Array<RecordOutcome>(batch.length).fill(Outcome.delivered);
    const ranges = new Int32Array(lines.length + 1);
    for (let k = 0; k <= lines.length; k++) ranges[k] = k;
    await this.postRanges(ranges, (lo) => this.encodeBody(lines[lo]!), sent, outcomes, signal);
    return summarize(outcomes);
  }

  private async sendHttpBulk(batch: Batch, signal: AbortSignal): Promise<SendResult> {
    // Every line ends with "\n", the last one too (Graylog issue #21551: an unterminated line is glued to the next request).
    const { lines, sent, outcomes: pre } = this.frameAll(batch, this.maxBodyBytes - 1);
    const bodies = packLines(lines, "\n", this.maxBodyBytes);
    const outcomes = pre ?? new Array<RecordOutcome>(batch.length).fill(Outcome.delivered);
    const ranges = new Int32Array(bodies.length + 1);
    const packed = new Map<number, (typeof bodies)[number]>();
    for (let k = 0; k < bodies.length; k++) {
      packed.set(ranges[k]!, bodies[k]!);
      ranges[k + 1] = ranges[k]! + bodies[k]!.records;
    }
    // A body packed above, or (after a 413) a part of one packed anew.
    const bodyOf: BodyOf = (lo, hi) => {
      const body = packed.get(lo);
      if (body !== undefined && body.records === hi - lo) return this.encodeBody(body.data);
      return this.encodeBody(packLines(lines.slice(lo, hi), "\n", Number.POSITIVE_INFINITY)[0]!.data);
    };
    await this.postRanges(ranges, bodyOf, sent, outcomes, signal);
    return summarize(outcomes);
  }

  /**
   * POST line ranges `[ranges[k], ranges[k+1])`, up to `concurrency` at a time. The first request that must be
   * retried stops the rest: the destination is unwell, and the lines not sent yet get the same retry. While the sink
   * is unwell from an earlier batch, one request goes first and the others follow only once it got through.
   */
  private async postRanges(ranges: Int32Array, bodyOf: BodyOf, sent: readonly number[], outcomes: RecordOutcome[], signal: AbortSignal): Promise<void> {
    const poster = this.poster!;
    const count = ranges.length - 1;
    const fill = (lo: number, hi: number, outcome: RecordOutcome): void => {
      for (let j = lo; j < hi; j++) outcomes[sent[j]!] = outcome;
    };
    let next = 0;
    let stop: RecordOutcome | undefined;
    const worker = async (once: boolean): Promise<void> => {
      while (stop === undefined && next < count) {
        const k = next++;
        const failed = await poster.postRange(ranges[k]!, ranges[k + 1]!, bodyOf, fill, signal);
        if (failed !== undefined) stop ??= failed;
        if (once) return;
      }
    };
    if (poster.unwell) await worker(true);
    const workers: Promise<void>[] = [];
    const fanOut = Math.min(this.concurrency, count - next);
    for (let w = 0; w < fanOut; w++) workers.push(worker(false));
    await Promise.all(workers);
    if (stop !== undefined && next < count) fill(ranges[next]!, ranges[count]!, stop);
  }
}

function recordAt(batch: Batch, i: number): LogRecord {
  // One record's object, without parsing the whole batch (batch.records would).
  return batch instanceof EntryBatch ? batch.entries[i]!.record : batch.records[i]!;
}

function allDelivered(outcomes: readonly RecordOutcome[]): boolean {
  for (const o of outcomes) if (o.status !== "delivered") return false;
  return true;
}

function resolveLevels(value: unknown): Readonly<Record<LogLevel, number>> {
  if (value === undefined) return DEFAULT_GELF_LEVELS;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidOptionError(`Expected \`levels\` to be an object mapping levels to 0–7, got ${describe(value)}`);
  }
  const out = { ...DEFAULT_GELF_LEVELS };
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (!(LOG_LEVELS as readonly string[]).includes(k)) {
      throw new InvalidOptionError(`Expected \`levels\` keys to be one of ${LOG_LEVELS.join(", ")}, got ${describe(k)}`);
    }
    out[k as LogLevel] = intOption(`levels.${k}`, v, 6, 0, 7);
  }
  return Object.freeze(out);
}
