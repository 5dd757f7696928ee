// LogstashSink: ships records to Logstash's `http` input (one request per batch, halved on 413) or `tcp` input (json_lines over TCP/TLS).
import { gzipSync } from "node:zlib";
import { inspect } from "node:util";
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import type { Batch, RecordOutcome, SendContext, SendResult, Sink, SinkCloseContext, SinkLifecycleContext, SinkMetrics } from "./sink.js";
import { Outcome } from "./sink.js";
import { SinkStats } from "./stats.js";
import type { HttpClient } from "./transport/http-post.js";
import { HttpBatchPoster, summarize } from "./transport/http-batch.js";
import type { Endpoint } from "./transport/options.js";
import { endpointOption, enumOption, nameOption } from "./transport/options.js";
import { checkKeys, optionKeys } from "../util/validate.js";
import { EntryBatch } from "../pipeline/batch.js";
import { STREAM_SEGMENT_BYTES, packRecords, recordBytes } from "./transport/segments.js";
import type { StreamConnection } from "./transport/stream-connection.js";
import { type ConnectionOptions, openHttp, openStream, resolveConnection } from "./transport/connection.js";

export interface LogstashSinkOptions extends ConnectionOptions {
  /** Unique sink name. */
  name: string;
  /**
   * `http://host:8080` / `https://…` for the `http` input (port 8080 by default; the path is sent as given), or
   * `tcp://host:5000` / `tls://host:5000` for the `tcp` input with `codec => json_lines` (the port is required).
   * HTTP userinfo (`http://user:pass@host`) becomes basic auth and is never printed.
   */
  url: string | URL;
  /**
   * HTTP body format: `json_array` (`application/json`, one array, which the `http` input's default `json` codec
   * splits into events) or `ndjson` (`application/x-ndjson`, one JSON document per line, every line ends with `\n`).
   * An `http` input takes `ndjson` only with `additional_codecs => { "application/json" => "json",
   * "application/x-ndjson" => "json_lines" }`: without it, its `plain` codec makes the whole body one event, and
   * answers 200. @default "json_array"
   */
  format?: "ndjson" | "json_array";
  /** HTTP: `Content-Encoding: gzip` bodies. @default "none" */
  compression?: "gzip" | "none";
}

// The http input answers with its `response_code` setting, which may be 200, 201, 202 or 204.
const isDelivered = (status: number): boolean => status >= 200 && status <= 204;

const KEYS = optionKeys<LogstashSinkOptions>()(["name", "url", "format", "compression", "auth", "headers", "tls", "connectTimeoutMs", "requestTimeoutMs", "reconnect", "resendWindowBytes"]);

export class LogstashSink implements Sink {
  readonly name: string;
  readonly pipelineDefaults: Sink["pipelineDefaults"];
  private readonly endpoint: Endpoint;
  private readonly format: "ndjson" | "json_array";
  private readonly gzip: boolean;
  private readonly stats = new SinkStats();
  private readonly stream: StreamConnection | undefined;
  private readonly http: HttpClient | undefined;
  private readonly poster: HttpBatchPoster | undefined;

  constructor(options: LogstashSinkOptions) {
    if (options === null || typeof options !== "object") {
      throw new InvalidOptionError(`Expected LogstashSink options to be an object, got ${describe(options)}`);
    }
    checkKeys("", options, KEYS);
    this.name = nameOption(options.name);
    const ep = endpointOption(options.url, ["http:", "https:", "tcp:", "tls:"], { "http:": 8080, "https:": 8080 });
    this.endpoint = ep;
    const isHttp = ep.protocol === "http:" || ep.protocol === "https:";
    if (!isHttp && ep.username !== undefined) {
      throw new InvalidOptionError(`Expected \`url\` without credentials for ${ep.protocol}// (the tcp input has no auth), got userinfo`);
    }
    this.format = enumOption("format", options.format, ["ndjson", "json_array"], "json_array");
    this.gzip = enumOption("compression", options.compression, ["gzip", "none"], "none") === "gzip";
    if (!isHttp && (options.format !== undefined || options.compression !== undefined)) {
      throw new InvalidOptionError(`Expected no \`format\`/\`compression\` with ${ep.protocol}// (json_lines is plain), got one`);
    }
    const conn = resolveConnection(options, ep);
    const { headers } = conn;

    if (isHttp) {
      headers["content-type"] ??= this.format === "ndjson" ? "application/x-ndjson" : "application/json";
      if (this.gzip) headers["content-encoding"] = "gzip";
      this.http = openHttp(this.name, ep, conn, this.stats, 4);
      this.poster = new HttpBatchPoster(this.http, this.name, ep.display, isDelivered);
    } else {
      this.stream = openStream(this.name, ep, conn, this.stats);
      this.pipelineDefaults = { concurrency: 1 };
    }
  }

  /**
   * What `util.inspect()` (console.log, loggers, error trackers) shows of it: its name and endpoint, never the
   * credentials, headers and TLS keys its connection holds.
   */
  [inspect.custom](): string {
    return `LogstashSink { name: ${JSON.stringify(this.name)}, url: ${JSON.stringify(this.endpoint.display)} }`;
  }

  /** What `JSON.stringify()` shows of it, for the same reason. */
  toJSON(): { name: string; url: string } {
    return { name: this.name, url: this.endpoint.display };
  }

  async open(ctx: SinkLifecycleContext): Promise<void> {
    if (this.stream === undefined) return;
    try {
      await this.stream.open(ctx.signal);
    } catch (error) {
      // A certificate problem (including a refused client certificate) will not heal by itself: fail start().
      if ((error as { code?: unknown }).code === "ERR_TLS") throw error;
    }
  }

  async send(batch: Batch, ctx: SendContext): Promise<SendResult> {
    if (batch.length === 0) return Outcome.delivered;
    if (this.poster !== undefined) return this.sendHttp(batch, ctx.signal);
    const r = await this.stream!.write(packRecords(batch, "\n", STREAM_SEGMENT_BYTES), ctx.signal);
    if (r.error === undefined) return Outcome.delivered;
    if (r.flushed === 0) return Outcome.retry(r.reason ?? "connection_error", r.retryAfterMs, r.error);
    const out = new Array<RecordOutcome>(batch.length);
    const retry = Outcome.retry(r.reason ?? "connection_error", r.retryAfterMs, r.error);
    for (let i = 0; i < batch.length; i++) out[i] = i < r.flushed ? Outcome.delivered : retry;
    return Outcome.perRecord(out);
  }

  /** One request for the batch; a 413 halves it (see http-batch.ts). */
  private async sendHttp(batch: Batch, signal: AbortSignal): Promise<SendResult> {
    const n = batch.length;
    let outcomes: RecordOutcome[] | undefined;
    const fill = (lo: number, hi: number, outcome: RecordOutcome): void => {
      outcomes ??= new Array<RecordOutcome>(n).fill(Outcome.delivered);
      for (let i = lo; i < hi; i++) outcomes[i] = outcome;
    };
    // Canonical JSON is reused as-is: records that arrived as bytes are copied, never decoded or re-serialized.
    const bodyOf = (lo: number, hi: number): Buffer => {
      const raw = this.format === "ndjson" ? ndjsonBody(batch, lo, hi) : jsonArrayBody(batch, lo, hi);
      return this.gzip ? gzipSync(raw) : raw;
    };
    await this.poster!.postRange(0, n, bodyOf, fill, signal);
    return outcomes === undefined ? Outcome.delivered : summarize(outcomes);
  }

  async close(ctx?: SinkCloseContext): Promise<void> {
    // The signal aborts at the aggregator's close deadline: resends of the replay window stop there.
    if (this.stream !== undefined) await this.stream.close(ctx?.signal, ctx?.lost);
    this.http?.close();
  }

  metrics(): SinkMetrics {
    const out = this.stats.snapshot();
    if (this.poster !== undefined) out.requests_split_413 = this.poster.splits;
    return out;
  }
}

/** Records `[lo, hi)`, each followed by "\n" (the last one too). */
function ndjsonBody(batch: Batch, lo: number, hi: number): Buffer {
  if (!(batch instanceof EntryBatch)) return Buffer.from(sliceOf(batch.json, lo, hi).join("\n") + "\n", "utf8");
  return recordBytes(batch.entries, lo, hi, 0x0a, rangeBytes(batch, lo, hi));
}

/** `[r_lo,…,r_hi-1]`. */
function jsonArrayBody(batch: Batch, lo: number, hi: number): Buffer {
  if (!(batch instanceof EntryBatch)) return Buffer.from(`[${sliceOf(batch.json, lo, hi).join(",")}]`, "utf8");
  // The records each followed by ",", then the last "," becomes "]" behind a "[".
  const joined = recordBytes(batch.entries, lo, hi, 0x2c, rangeBytes(batch, lo, hi));
  const out = Buffer.allocUnsafe(joined.length + 1);
  out[0] = 0x5b;
  joined.copy(out, 1);
  out[out.length - 1] = 0x5d;
  return out;
}

/** UTF-8 bytes of records `[lo, hi)` plus one terminator each. */
function rangeBytes(batch: EntryBatch, lo: number, hi: number): number {
  if (lo === 0 && hi === batch.length) return batch.bytes + batch.length;
  let size = hi - lo;
  for (let i = lo; i < hi; i++) size += batch.entries[i]!.bytes;
  return size;
}

function sliceOf(json: readonly string[], lo: number, hi: number): readonly string[] {
  return lo === 0 && hi === json.length ? json : json.slice(lo, hi);
}
