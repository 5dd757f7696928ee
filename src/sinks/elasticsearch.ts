// Elasticsearch sink: one NDJSON bulk request per batch through the official client, judged item by item.
//
//   send(batch)
//     plan      per record: index name, _id, routing → action line (constant string when nothing varies), or reject
//     sendRange NDJSON body (one Buffer; records' UTF-8 copied as it came) → client.bulk (maxRetries 0, own deadline,
//               caller's abort signal)
//       ├─ 2xx    → classifyBulkResponse: outcome per item by position (never resend an accepted item)
//       ├─ 413    → halve the range and send each half (a single document still too large → rejected)
//       ├─ retry  → the whole range gets one retry outcome (connection, timeout, 429, 5xx, 401/403, protocol)
//       └─ reject → the whole range rejected (other request-level 4xx)
//     result    undefined (all delivered) | one shared outcome | { outcomes } per record
import type { Client, TransportRequestOptions } from "@elastic/elasticsearch";
import { InvalidOptionError, SinkError } from "../errors.js";
import type { LogRecord } from "../record.js";
import { redact } from "../util/redact.js";
import type { Batch, RecordOutcome, SendContext, SendResult, Sink, SinkLifecycleContext, SinkMetrics } from "./sink.js";
import { Outcome } from "./sink.js";
import { SinkStats } from "./stats.js";
import { BatchOutcomes, type ItemTally, classifyBulkResponse, uniformlyDelivered } from "./elasticsearch/bulk-response.js";
import { type BulkActions, bulkBody } from "./elasticsearch/bulk-body.js";
import { bulkAwareSerializer } from "./elasticsearch/bulk-serializer.js";
import { MAX_ID_BYTES, deterministicId } from "./elasticsearch/document-id.js";
import { type IndexPattern, indexNameProblem, recordTimestamp } from "./elasticsearch/index-name.js";
import { type ClientOptions, type ElasticsearchSinkOptions, type ResolvedEsOptions, resolveEsOptions } from "./elasticsearch/options.js";
import { type RequestFailure, classifyRequestError, safeCause } from "./elasticsearch/request-error.js";
import { errorText } from "../util/text.js";

export type { DataStreamName, ElasticsearchSinkOptions } from "./elasticsearch/options.js";

/**
 * The official client is loaded when the first sink that needs one opens, not when this library is imported:
 * it and its HTTP stack add about 33 MB and 300 ms of start-up to a host that ships elsewhere. Dynamic import
 * keeps one module instance with a user's own `import` (a `require` would load the CommonJS build beside it).
 */
let clientModule: Promise<typeof import("@elastic/elasticsearch")> | undefined;
const loadClientModule = (): Promise<typeof import("@elastic/elasticsearch")> => (clientModule ??= import("@elastic/elasticsearch"));

type BulkAnswer = { readonly ok: true; readonly body: unknown } | ({ readonly ok: false } & RequestFailure);

// After this many requests without a 413, forget the learned size ceiling (a proxy limit may have been raised).
const CEILING_TTL_REQUESTS = 1000;
/** Reused body buffers: at most this many, each at most this large (larger bodies are allocated per request). */
const BODY_POOL_SIZE = 2;
const BODY_POOL_MAX_BYTES = 16 * 1024 * 1024;

export class ElasticsearchSink implements Sink {
  readonly name: string;
  readonly pipelineDefaults = { batch: { maxBytes: 5 * 1024 * 1024 } } as const;

  readonly #o: ResolvedEsOptions;
  /** The client: the caller's, or ours once `#ready()` made it. */
  #client: Client | undefined;
  /** Options for the client we make (undefined with a caller's client). */
  readonly #clientOptions: ClientOptions | undefined;
  #making: Promise<Client> | undefined;
  readonly #stats = new SinkStats();
  readonly #tally: ItemTally = { statuses: new Map(), delivered: 0, duplicates: 0, retried: 0, rejected: 0 };
  readonly #actionCache = new Map<string, string>();
  readonly #validIndices = new Set<string>();
  #invalidRecords = 0;
  #splits = 0;
  #protocolErrors = 0;
  #maxRequestBytes = Infinity;
  #ceilingSetAt = 0;
  #openError: SinkError | undefined;
  #closed = false;
  /** Aborted by close(): requests still in flight end at once, and their records come back as retry. */
  readonly #closing = new AbortController();

  constructor(options: ElasticsearchSinkOptions) {
    const { resolved, clientOptions } = resolveEsOptions(options);
    this.#o = resolved;
    this.name = resolved.name;
    if (clientOptions === undefined) {
      this.#client = options.client!;
    } else {
      // The client is made in open() (see loadClientModule); node URLs are checked now, as the client would.
      checkNodeUrls(clientOptions, resolved.name);
      this.#clientOptions = {
        ...clientOptions,
        name: `child-log-agg:${resolved.name}`,
        maxRetries: 0,
        requestTimeout: resolved.requestTimeoutMs,
      };
    }
  }

  /** The client, made on first use when the sink owns it. Rejects with ERR_INVALID_OPTION when the client refuses its options. */
  #ready(): Promise<Client> {
    if (this.#client !== undefined) return Promise.resolve(this.#client);
    this.#making ??= loadClientModule().then((m) => {
      try {
        // Reads the usual all-success bulk answer without a generic JSON parse (see bulk-serializer.ts).
        this.#client = new m.Client({ Serializer: bulkAwareSerializer(m.Serializer), ...this.#clientOptions });
        return this.#client;
      } catch (error) {
        // The client's message can quote the node URL, password included.
        throw new InvalidOptionError(`Elasticsearch client options were refused: ${redact(errorText(error))}`, {
          sink: this.name,
          cause: safeCause(error),
        });
      }
    });
    return this.#making;
  }

  /** Why the cluster check in `open()` could not reach the cluster (the sink started anyway), if it could not. */
  get lastOpenError(): SinkError | undefined {
    return this.#openError;
  }

  async open(ctx?: SinkLifecycleContext): Promise<void> {
    const client = await this.#ready();
    if (!this.#o.verifyOnOpen) return;
    const answer = await this.#request(ctx?.signal, 0, (signal) => client.info(undefined, this.#requestOptions(signal)));
    if (answer.ok) {
      this.#openError = undefined;
      return;
    }
    const status = answer.status;
    if (status === 401 || status === 403) {
      const error = new SinkError(
        "ERR_SINK_AUTH",
        `Elasticsearch sink "${this.name}": the cluster refused the credentials (HTTP ${status}) on GET /` +
          (status === 403 ? "; an API key without the `monitor` privilege needs `verifyOnOpen: false`" : ""),
        { sink: this.name, cause: answer.error },
      );
      error.statusCode = status;
      error.retryable = false;
      throw error;
    }
    const unreachable =
      status === "error" || status === "timeout" || status === "aborted" || status === 408 || status === 429 || (typeof status === "number" && status >= 500);
    if (unreachable) {
      // A shipper must start while the cluster is down: records queue up and the engine retries them.
      this.#openError = answer.error;
      return;
    }
    const error = new SinkError("ERR_SINK_OPEN", `Elasticsearch sink "${this.name}": cluster check failed: ${answer.error.message}`, {
      sink: this.name,
      cause: answer.error,
    });
    if (typeof status === "number") error.statusCode = status;
    error.retryable = false;
    throw error;
  }

  async send(batch: Batch, ctx?: SendContext): Promise<SendResult> {
    const n = batch.length;
    if (n === 0) return undefined;
    if (this.#closed) {
      const error = new SinkError("ERR_SINK_SEND", `Elasticsearch sink "${this.name}" is closed`, { sink: this.name });
      return Outcome.retry("closed", undefined, error);
    }
    if (this.#client === undefined) await this.#ready();
    const outcomes = new BatchOutcomes(n);
    const { actions, included } = this.#plan(batch, outcomes);
    if (included.length > 0) await this.#sendRange(batch, actions, included, 0, included.length, outcomes, ctx?.signal);
    return outcomes.result();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // The client's close waits for the requests in flight: a server that never answers would hold it for
    // requestTimeoutMs.
    this.#closing.abort();
    if (this.#clientOptions === undefined) return; // the caller's client is the caller's to close
    const client = this.#client ?? (await this.#making?.catch(() => undefined));
    await client?.close();
  }

  metrics(): SinkMetrics {
    const out = this.#stats.snapshot();
    const t = this.#tally;
    out.records_delivered = t.delivered;
    out.records_duplicate = t.duplicates;
    out.records_retried = t.retried;
    out.records_rejected = t.rejected + this.#invalidRecords;
    out.records_invalid = this.#invalidRecords;
    out.requests_split_413 = this.#splits;
    out.protocol_errors = this.#protocolErrors;
    out.max_request_bytes = Number.isFinite(this.#maxRequestBytes) ? this.#maxRequestBytes : 0;
    out.open_unreachable = this.#openError === undefined ? 0 : 1;
    for (const [status, count] of t.statuses) out[`item_status_${status < 0 ? "malformed" : status}`] = count;
    return out;
  }

  /** 0, 1, 2, …: the positions of a batch every record of which goes into the request (read only, shared). */
  #identity = new Int32Array(0);

  #allPositions(n: number): Int32Array {
    if (this.#identity.length < n) {
      const next = new Int32Array(Math.max(n, this.#identity.length * 2));
      for (let i = 0; i < next.length; i++) next[i] = i;
      this.#identity = next;
    }
    return this.#identity.subarray(0, n);
  }

  /**
   * Decide the action line of every record. Records whose target cannot be built are rejected here and left out
   * of the body. Returns the actions (one string when it is the same for every record) and the batch positions
   * that go into the request, in order.
   */
  #plan(batch: Batch, outcomes: BatchOutcomes): { actions: BulkActions; included: Int32Array } {
    const o = this.#o;
    const n = batch.length;
    const sources = batch.sources;
    const pattern = o.index.kind === "pattern" ? o.index.pattern : undefined;
    const perRecordAction = o.id !== "none" || o.routingFn !== undefined;
    // Fast path: one index, nothing per record → the same action string for every record, no record objects.
    if (pattern?.isStatic === true && !perRecordAction && !o.dataStream) {
      return { actions: this.#actionFor(pattern.render("", undefined) as string), included: this.#allPositions(n) };
    }

    // Texts (decoded here, not on the fast path above) and one getter per batch: records are parsed only when
    // something needs them.
    const json = batch.json;
    let cur = 0;
    const getRecord = (): LogRecord => batch.records[cur]!;
    const nowIso = new Date().toISOString();
    const needsTimestamp = o.dataStream || pattern?.needsTimestamp === true;
    const actions = new Array<string | undefined>(n);
    const included = new Int32Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) {
      cur = i;
      const line = json[i]!;
      let problem: string | undefined;
      let ts = "";
      if (needsTimestamp) {
        const found = recordTimestamp(line, getRecord);
        if (found !== undefined) ts = found;
        else if (o.dataStream) problem = "missing or unparseable @timestamp (data streams require it)";
        else ts = nowIso; // a date index for a record without a usable time: file it under arrival time
      }
      let index: string | undefined;
      if (problem === undefined) {
        const built = this.#indexFor(pattern, ts, getRecord);
        if (typeof built === "string") index = built;
        else problem = built.problem;
      }
      let action: string | undefined;
      if (problem === undefined) {
        if (!perRecordAction) action = this.#actionFor(index!);
        else {
          const built = this.#perRecordAction(index!, sources[i], line, getRecord);
          if (built.startsWith("{")) action = built;
          else problem = built;
        }
      }
      if (problem !== undefined) {
        this.#invalidRecords++;
        const reason = redact(problem);
        const error = new SinkError("ERR_SINK_REJECTED", `Elasticsearch sink "${this.name}": record not sent: ${reason}`, { sink: this.name });
        error.retryable = false;
        outcomes.each[i] = Outcome.reject(reason, error);
        continue;
      }
      actions[i] = action;
      included[m++] = i;
    }
    return { actions, included: included.subarray(0, m) };
  }

  #indexFor(pattern: IndexPattern | undefined, ts: string, getRecord: () => LogRecord): string | { problem: string } {
    if (pattern !== undefined) return pattern.render(ts, pattern.needsRecord ? getRecord() : undefined);
    let name: unknown;
    try {
      name = (this.#o.index as { fn: (r: LogRecord) => string }).fn(getRecord());
    } catch (error) {
      return { problem: `index function threw: ${errorText(error)}` };
    }
    if (typeof name !== "string") return { problem: `index function returned ${typeof name}, expected a string` };
    if (this.#validIndices.has(name)) return name;
    const bad = indexNameProblem(name);
    if (bad !== undefined) return { problem: `invalid index name ${JSON.stringify(name.slice(0, 300))}: ${bad}` };
    if (this.#validIndices.size >= 4096) this.#validIndices.clear();
    this.#validIndices.add(name);
    return name;
  }

  /** The action line for an index when no per-record metadata varies (cached: few distinct indices per day). */
  #actionFor(index: string): string {
    let action = this.#actionCache.get(index);
    if (action === undefined) {
      action = `{"${this.#o.opType}":{"_index":${JSON.stringify(index)}}}\n`;
      if (this.#actionCache.size >= 1024) this.#actionCache.clear();
      this.#actionCache.set(index, action);
    }
    return action;
  }

  /** An action line with `_id`/`routing`, or (a string not starting with `{`) why the record cannot be sent. */
  #perRecordAction(index: string, source: string | undefined, json: string, getRecord: () => LogRecord): string {
    const o = this.#o;
    let id: unknown;
    if (o.id === "deterministic") id = deterministicId(source, json, getRecord);
    else if (typeof o.id === "function") {
      try {
        id = o.id(getRecord(), source);
      } catch (error) {
        return `id function threw: ${errorText(error)}`;
      }
      if (id !== undefined && (typeof id !== "string" || id.length === 0 || Buffer.byteLength(id) > MAX_ID_BYTES)) {
        return `id function returned an invalid _id (expected a non-empty string of at most ${MAX_ID_BYTES} bytes, got ${typeof id})`;
      }
    }
    let routing: unknown;
    if (o.routingFn !== undefined) {
      try {
        routing = o.routingFn(getRecord());
      } catch (error) {
        return `routing function threw: ${errorText(error)}`;
      }
      if (routing !== undefined && (typeof routing !== "string" || routing.length === 0)) {
        return `routing function returned an invalid routing value (expected a non-empty string, got ${typeof routing})`;
      }
    }
    let meta = `{"${o.opType}":{"_index":${JSON.stringify(index)}`;
    if (id !== undefined) meta += `,"_id":${JSON.stringify(id)}`;
    if (routing !== undefined) meta += `,"routing":${JSON.stringify(routing)}`;
    return `${meta}}}\n`;
  }

  /**
   * Send `included[lo..hi)` as one request and write their outcomes. Returns the failure when the request failed
   * as a whole with a retryable cause, so a caller that split the batch does not send the other half into the
   * same outage.
   */
  async #sendRange(
    batch: Batch,
    actions: BulkActions,
    included: Int32Array,
    lo: number,
    hi: number,
    outcomes: BatchOutcomes,
    signal: AbortSignal | undefined,
  ): Promise<RequestFailure | undefined> {
    const body = bulkBody(batch, actions, included, lo, hi, this.#allocBody);
    const bytes = body.length;
    if (this.#maxRequestBytes !== Infinity && this.#stats.requests - this.#ceilingSetAt > CEILING_TTL_REQUESTS) {
      this.#maxRequestBytes = Infinity;
    }
    if (hi - lo > 1 && bytes > this.#maxRequestBytes) return this.#split(batch, actions, included, lo, hi, outcomes, signal);

    const answer = await this.#request(signal, bytes, (s) =>
      this.#client!.bulk({ ...this.#o.query, operations: body as unknown as [] }, this.#requestOptions(s)),
    );
    if (answer.ok) {
      // Answered: the server read the whole body, so the client is done with it and the buffer can carry the next.
      this.#recycleBody(body);
      // The usual answer to a whole batch: every record delivered, judged without an outcome or item per record.
      if (lo === 0 && hi === outcomes.length && uniformlyDelivered(answer.body, hi, this.#o.opType, this.#tally)) {
        outcomes.deliverAll();
        return undefined;
      }
      const error = classifyBulkResponse(answer.body, included, lo, hi, this.#o.opType, outcomes.each, this.#tally, this.name);
      if (error === undefined) return undefined;
      this.#protocolErrors++;
      this.#fill(included, lo, hi, outcomes, Outcome.retry("malformed_response", undefined, error), true);
      return undefined;
    }
    if (answer.kind === "too_large") {
      if (hi - lo > 1) {
        this.#maxRequestBytes = Math.min(this.#maxRequestBytes, bytes - 1);
        this.#ceilingSetAt = this.#stats.requests;
        return this.#split(batch, actions, included, lo, hi, outcomes, signal);
      }
      const reason = `request_entity_too_large: a single document of ${bytes} bytes exceeds the server's request size limit (http.max_content_length or a proxy's)`;
      answer.error.retryable = false;
      this.#fill(included, lo, hi, outcomes, Outcome.reject(reason, answer.error), false);
      return undefined;
    }
    if (answer.kind === "reject") {
      this.#fill(included, lo, hi, outcomes, Outcome.reject(answer.reason, answer.error), false);
      return undefined;
    }
    this.#fill(included, lo, hi, outcomes, Outcome.retry(answer.reason, answer.retryAfterMs, answer.error), true);
    return answer;
  }

  /**
   * Buffers of answered requests, reused for later bodies. Each new ArrayBuffer counts toward the young
   * generation's external bytes, and every 32 MiB of those forces a scavenge here: at a few hundred MB of bodies
   * a second that promoted queued records to the old generation and brought on the mark-compacts that stall the
   * event loop. Buffers of failed or abandoned requests are never reused (the client may still hold them).
   */
  #bodyPool: Buffer[] = [];
  /** The ArrayBuffers #allocBody made: only those go back to the pool (never Node's shared small-buffer pool). */
  readonly #ownBodies = new WeakSet<ArrayBufferLike>();

  readonly #allocBody = (size: number): Buffer => {
    const pool = this.#bodyPool;
    for (let i = pool.length - 1; i >= 0; i--) {
      const b = pool[i]!;
      if (b.length >= size) {
        pool.splice(i, 1);
        return b.subarray(0, size);
      }
    }
    // Room to grow, so a slightly larger next body still fits; bodies past the cap are one-offs.
    if (size > BODY_POOL_MAX_BYTES) return Buffer.allocUnsafe(size);
    const fresh = Buffer.allocUnsafeSlow(Math.min(BODY_POOL_MAX_BYTES, size + (size >>> 2)));
    this.#ownBodies.add(fresh.buffer);
    return fresh.subarray(0, size);
  };

  #recycleBody(body: Buffer): void {
    if (!this.#ownBodies.has(body.buffer) || this.#bodyPool.length >= BODY_POOL_SIZE) return;
    this.#bodyPool.push(Buffer.from(body.buffer, 0, body.buffer.byteLength));
  }

  async #split(
    batch: Batch,
    actions: BulkActions,
    included: Int32Array,
    lo: number,
    hi: number,
    outcomes: BatchOutcomes,
    signal: AbortSignal | undefined,
  ): Promise<RequestFailure | undefined> {
    this.#splits++;
    const mid = lo + Math.ceil((hi - lo) / 2);
    const first = await this.#sendRange(batch, actions, included, lo, mid, outcomes, signal);
    if (first !== undefined) {
      this.#fill(included, mid, hi, outcomes, Outcome.retry(first.kind === "retry" ? first.reason : "split", first.kind === "retry" ? first.retryAfterMs : undefined, first.error), true);
      return first;
    }
    return this.#sendRange(batch, actions, included, mid, hi, outcomes, signal);
  }

  #fill(included: Int32Array, lo: number, hi: number, outcomes: BatchOutcomes, outcome: RecordOutcome, retry: boolean): void {
    const each = outcomes.each;
    for (let k = lo; k < hi; k++) each[included[k]!] = outcome;
    if (retry) this.#tally.retried += hi - lo;
    else this.#tally.rejected += hi - lo;
  }

  #requestOptions(signal: AbortSignal): TransportRequestOptions & { meta: true } {
    const options: TransportRequestOptions & { meta: true } = {
      meta: true,
      maxRetries: 0,
      requestTimeout: this.#o.requestTimeoutMs,
      signal,
      // The transport's default ("replace") deep-copies an error's metadata to redact it, request body included:
      // Object.entries over every byte of a Buffer body, which froze the event loop for 10 s and took 880 MB for a
      // 5 MiB bulk answered 429. classifyRequestError reads only the status, headers and error body, and safeCause
      // keeps nothing else, so no metadata leaves the sink and there is nothing to redact.
      redaction: { type: "off" },
    };
    if (this.#o.compression !== undefined) options.compression = this.#o.compression;
    return options;
  }

  /**
   * Run one client call under the sink's own deadline and the caller's abort signal. The client's timeout only
   * covers gaps between bytes; this deadline covers the whole exchange, so a trickling server cannot hold a send.
   */
  async #request(
    outer: AbortSignal | undefined,
    bytes: number,
    call: (signal: AbortSignal) => Promise<{ statusCode?: number | undefined; body: unknown }>,
  ): Promise<BulkAnswer> {
    const controller = new AbortController();
    let why: "timeout" | "aborted" | undefined;
    const onAbort = (): void => {
      why ??= "aborted";
      controller.abort();
    };
    const started = performance.now();
    if (outer?.aborted === true || this.#closing.signal.aborted) {
      return { ok: false, ...classifyRequestError(undefined, this.name, "aborted") };
    }
    outer?.addEventListener("abort", onAbort, { once: true });
    this.#closing.signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      why ??= "timeout";
      controller.abort();
    }, this.#o.requestTimeoutMs);
    try {
      const result = await call(controller.signal);
      this.#stats.request(result.statusCode ?? 200, bytes, performance.now() - started);
      return { ok: true, body: result.body };
    } catch (error) {
      const failure = classifyRequestError(error, this.name, why);
      this.#stats.request(failure.status, bytes, performance.now() - started);
      this.#stats.error();
      return { ok: false, ...failure };
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
      this.#closing.signal.removeEventListener("abort", onAbort);
    }
  }
}

/** Throw ERR_INVALID_OPTION for a node URL the client would refuse: not a WHATWG URL, or not http(s). */
function checkNodeUrls(options: ClientOptions, sink: string): void {
  const nodes = [options.node, ...(Array.isArray(options.nodes) ? options.nodes : [options.nodes])];
  for (const node of nodes) {
    const raw = typeof node === "string" || node instanceof URL ? node : (node as { url?: unknown } | undefined)?.url;
    if (typeof raw !== "string" && !(raw instanceof URL)) continue;
    let problem: string | undefined;
    try {
      const { protocol } = new URL(raw);
      if (protocol !== "http:" && protocol !== "https:") problem = `Invalid protocol '${protocol}'`;
    } catch (error) {
      problem = (error as Error).message;
    }
    if (problem !== undefined) {
      throw new InvalidOptionError(`Elasticsearch client options were refused: ${redact(problem)} (${redact(String(raw))})`, { sink });
    }
  }
}
