// A loopback Elasticsearch that speaks the real bulk wire protocol, so sink tests run the official client end to end.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

/** One action (+ source) line pair as the server parsed it. */
export interface BulkOperation {
  /** `create`, `index`, `update` or `delete`. */
  readonly op: string;
  /** The action's metadata (`_index`, `_id`, `routing`, `pipeline`, …). */
  readonly meta: Record<string, unknown>;
  /** The parsed source line (undefined for `delete`). */
  readonly doc: Record<string, unknown> | undefined;
  /** The raw action line text. */
  readonly actionLine: string;
  /** Index the operation targets (action `_index`, else the path's). */
  readonly index: string | undefined;
  /** Which bulk request (0-based) carried it. */
  readonly request: number;
}

/** Every request the server received (bulk or not). */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage["headers"];
  /** Body after gzip decoding. */
  readonly body: string;
  /** Raw body byte length on the wire. */
  readonly wireBytes: number;
}

/** What one bulk item answers. A number is a bare status (errors get a generic body for 4xx/5xx). */
export type ItemReply = number | { status: number; error?: { type: string; reason: string; caused_by?: unknown } };

/** A request-level behaviour, taken from `behaviors` for the next bulk request (FIFO), or computed by `onBulk`. */
export type RequestBehavior =
  /** An HTTP error with an Elasticsearch error body (no product header needed on non-2xx). */
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: unknown }
  /** A raw answer; `product` false drops `x-elastic-product`. Nothing is stored. */
  | { kind: "raw"; status?: number; contentType?: string; body: string; product?: boolean }
  /** Store the documents as usual, then rewrite the JSON answer (wrong item count, missing items, …). */
  | { kind: "mutate"; mutate: (response: BulkResponseBody) => unknown }
  /** Read the request and never answer (sockets are destroyed on `close()`). */
  | { kind: "hang" }
  /** Send headers and then one byte every `intervalMs` forever (slow loris). */
  | { kind: "drip"; intervalMs: number }
  /** Destroy the connection without an answer. */
  | { kind: "reset" };

export interface BulkResponseBody {
  took: number;
  errors: boolean;
  items: Record<string, Record<string, unknown>>[];
}

export interface FakeElasticsearchOptions {
  /** Answer 413 to bulk bodies above this many (decoded) bytes (`http.max_content_length`). */
  maxContentLength?: number;
  /** Required `authorization` header value; others get 401. */
  authorization?: string;
  /** Index names that behave as data streams (only `create`, `@timestamp` required). Default: `logs-*-*`. */
  isDataStream?: (index: string) => boolean;
  /** Reported `version.number`. @default "9.1.0" */
  version?: string;
}

const PRODUCT = { "x-elastic-product": "Elasticsearch" };

export class FakeElasticsearch {
  /** All requests, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Every operation the server stored (accepted with a 2xx item status). */
  readonly stored: BulkOperation[] = [];
  /** Every operation that arrived in a bulk request, whatever its item status. */
  readonly received: BulkOperation[] = [];
  /** FIFO of request-level behaviours for the next bulk requests. */
  readonly behaviors: RequestBehavior[] = [];
  /** Per-item answer; `undefined` → normal processing (store; 409 on `create` of an existing `_id`). */
  itemReply: ((op: BulkOperation) => ItemReply | undefined) | undefined;
  /** Per-request behaviour; wins over `behaviors` when it returns one. */
  onBulk: ((req: RecordedRequest, index: number) => RequestBehavior | undefined) | undefined;
  /** Count of bulk requests seen. */
  bulkRequests = 0;
  /**
   * A write thread pool: at most this many bulk requests are worked on at once, each for `writeLatencyMs`; one that
   * finds them all busy is answered at once with every item 429 es_rejected_execution_exception, as Elasticsearch
   * does when its write queue is full. Undefined: requests are answered as they come.
   */
  writeCapacity: number | undefined;
  writeLatencyMs = 0;
  activeWrites = 0;
  maxActiveWrites = 0;
  /** Bulk requests refused whole by the write pool. */
  rejectedRequests = 0;

  readonly #options: FakeElasticsearchOptions;
  readonly #docs = new Map<string, Record<string, unknown>>();
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #server: Server | undefined;
  #port = 0;
  #autoId = 0;

  private constructor(options: FakeElasticsearchOptions) {
    this.#options = options;
  }

  static async start(options: FakeElasticsearchOptions = {}): Promise<FakeElasticsearch> {
    const fake = new FakeElasticsearch(options);
    await fake.listen();
    return fake;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Documents stored per index+id (what a search would find). */
  get documentCount(): number {
    return this.#docs.size;
  }

  /** Listen (again) on the same port as before, or on a fresh one the first time. */
  async listen(): Promise<void> {
    if (this.#server !== undefined) return;
    const server = createServer((req, res) => this.#handle(req, res));
    server.keepAliveTimeout = 60_000;
    server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stop listening and destroy every open connection: clients now get ECONNREFUSED. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stored documents whose source has `field` equal to `value`, e.g. count copies of one message. */
  storedWhere(predicate: (op: BulkOperation) => boolean): BulkOperation[] {
    return this.stored.filter(predicate);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      let body: string;
      try {
        body = (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
      } catch {
        return this.#error(res, 400, "parse_exception", "request body is not valid gzip");
      }
      const url = new URL(req.url ?? "/", "http://localhost");
      const recorded: RecordedRequest = {
        method: req.method ?? "GET",
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        wireBytes: raw.length,
      };
      this.requests.push(recorded);
      if (this.#options.authorization !== undefined && req.headers.authorization !== this.#options.authorization) {
        res.setHeader("www-authenticate", 'Basic realm="security", ApiKey');
        return this.#error(res, 401, "security_exception", "missing authentication credentials for REST request");
      }
      const bulk = /^(?:\/([^/]+))?\/_bulk$/.exec(url.pathname);
      if (bulk !== null && (req.method === "POST" || req.method === "PUT")) {
        return this.#bulk(recorded, bulk[1] === undefined ? undefined : decodeURIComponent(bulk[1]), req, res);
      }
      if (url.pathname === "/" && req.method === "HEAD") {
        res.writeHead(200, { ...PRODUCT, "content-type": "application/json" });
        return res.end();
      }
      if (url.pathname === "/" && req.method === "GET") {
        return this.#json(res, 200, {
          name: "fake-node",
          cluster_name: "fake-cluster",
          cluster_uuid: "fake-uuid",
          version: {
            number: this.#options.version ?? "9.1.0",
            build_flavor: "default",
            build_type: "docker",
            build_hash: "0000000",
            build_date: "2025-01-01T00:00:00.000Z",
            build_snapshot: false,
            lucene_version: "10.1.0",
            minimum_wire_compatibility_version: "8.18.0",
            minimum_index_compatibility_version: "8.0.0",
          },
          tagline: "You Know, for Search",
        });
      }
      this.#error(res, 404, "resource_not_found_exception", `no handler for ${req.method} ${url.pathname}`);
    });
  }

  #bulk(recorded: RecordedRequest, pathIndex: string | undefined, req: IncomingMessage, res: ServerResponse): void {
    const requestNo = this.bulkRequests++;
    const behavior = this.onBulk?.(recorded, requestNo) ?? this.behaviors.shift();
    if (behavior !== undefined && behavior.kind !== "mutate") return this.#misbehave(behavior, req, res);
    const max = this.#options.maxContentLength;
    if (max !== undefined && Buffer.byteLength(recorded.body) > max) {
      // Real Elasticsearch answers 413 with an empty body before reading the content.
      res.writeHead(413, { "content-length": "0" });
      res.end();
      return;
    }
    if (recorded.body.length > 0 && !recorded.body.endsWith("\n")) {
      return this.#error(res, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]");
    }
    const lines = recorded.body.split("\n").filter((l) => l.length > 0);
    const ops: BulkOperation[] = [];
    for (let i = 0; i < lines.length; ) {
      let action: Record<string, Record<string, unknown>>;
      try {
        action = JSON.parse(lines[i]!) as typeof action;
      } catch {
        return this.#error(res, 400, "x_content_parse_exception", `Malformed action/metadata line [${i + 1}]`);
      }
      const op = Object.keys(action)[0];
      if (op === undefined || !["create", "index", "update", "delete"].includes(op)) {
        return this.#error(res, 400, "illegal_argument_exception", `Malformed action/metadata line [${i + 1}], expected a simple value for field [${op}]`);
      }
      const meta = action[op] ?? {};
      let doc: Record<string, unknown> | undefined;
      if (op !== "delete") {
        const line = lines[i + 1];
        if (line === undefined) return this.#error(res, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]");
        try {
          doc = JSON.parse(line) as Record<string, unknown>;
        } catch {
          doc = { __unparseable: line };
        }
        i += 2;
      } else i += 1;
      const index = typeof meta._index === "string" ? meta._index : pathIndex;
      ops.push({ op, meta, doc, actionLine: lines[i - (op === "delete" ? 1 : 2)]!, index, request: requestNo });
    }
    if (this.writeCapacity !== undefined) {
      if (this.activeWrites >= this.writeCapacity) {
        this.rejectedRequests++;
        this.received.push(...ops);
        const rejected: BulkResponseBody = { took: 1, errors: true, items: ops.map((o) => ({ [o.op]: { _index: o.index, status: 429, error: genericError(429) } })) };
        return this.#answer(recorded, res, rejected, behavior);
      }
      this.activeWrites++;
      this.maxActiveWrites = Math.max(this.maxActiveWrites, this.activeWrites);
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.activeWrites--;
        this.#applyAll(recorded, ops, res, behavior);
      }, this.writeLatencyMs);
      this.#timers.add(timer);
      return;
    }
    this.#applyAll(recorded, ops, res, behavior);
  }

  #applyAll(recorded: RecordedRequest, ops: BulkOperation[], res: ServerResponse, behavior: RequestBehavior | undefined): void {
    const response: BulkResponseBody = { took: 1, errors: false, items: [] };
    for (const operation of ops) {
      this.received.push(operation);
      const item = this.#apply(operation);
      if ((item.status as number) >= 300) response.errors = true;
      response.items.push({ [operation.op]: item });
    }
    this.#answer(recorded, res, response, behavior);
  }

  #answer(recorded: RecordedRequest, res: ServerResponse, response: BulkResponseBody, behavior: RequestBehavior | undefined): void {
    const out = behavior?.kind === "mutate" ? behavior.mutate(response) : response;
    // Like Elasticsearch, honour `filter_path` (the sink asks for `errors,items.*.status,items.*.error`).
    const filter = recorded.query.get("filter_path");
    this.#json(res, 200, filter === null ? out : (applyFilterPath(out, filter) ?? {}));
  }

  /** Normal Elasticsearch semantics for one operation, unless `itemReply` overrides it. */
  #apply(op: BulkOperation): Record<string, unknown> {
    const index = op.index ?? "";
    const override = this.itemReply?.(op);
    if (override !== undefined) {
      const reply = typeof override === "number" ? { status: override } : override;
      if (reply.status >= 200 && reply.status < 300) return this.#store(op, index, reply.status);
      return { _index: index, status: reply.status, error: reply.error ?? genericError(reply.status) };
    }
    if (op.doc !== undefined && "__unparseable" in op.doc) {
      return { _index: index, status: 400, error: { type: "document_parsing_exception", reason: "[1:1] failed to parse" } };
    }
    if (index === "") return { status: 400, error: { type: "action_request_validation_exception", reason: "Validation Failed: 1: index is missing;" } };
    const isDataStream = this.#options.isDataStream ?? ((name: string) => /^logs-[^-]+-[^-]+$/.test(name));
    if (isDataStream(index)) {
      if (op.op !== "create") {
        return { _index: index, status: 400, error: { type: "illegal_argument_exception", reason: `only write ops with an op_type of create are allowed in data streams` } };
      }
      if (typeof op.doc?.["@timestamp"] !== "string") {
        return { _index: index, status: 400, error: { type: "document_parsing_exception", reason: "data stream timestamp field [@timestamp] is missing" } };
      }
    }
    const id = typeof op.meta._id === "string" ? op.meta._id : undefined;
    if (op.op === "create" && id !== undefined && this.#docs.has(`${index}/${id}`)) {
      return {
        _index: index,
        _id: id,
        status: 409,
        error: { type: "version_conflict_engine_exception", reason: `[${id}]: version conflict, document already exists (current version [1])` },
      };
    }
    return this.#store(op, index, id !== undefined && this.#docs.has(`${index}/${id}`) ? 200 : 201);
  }

  #store(op: BulkOperation, index: string, status: number): Record<string, unknown> {
    const id = typeof op.meta._id === "string" ? op.meta._id : `auto-${++this.#autoId}`;
    this.#docs.set(`${index}/${id}`, op.doc ?? {});
    this.stored.push(op);
    return { _index: index, _id: id, _version: 1, result: status === 200 ? "updated" : "created", status };
  }

  #misbehave(behavior: Exclude<RequestBehavior, { kind: "mutate" }>, req: IncomingMessage, res: ServerResponse): void {
    switch (behavior.kind) {
      case "status":
        if (behavior.status === 413 && behavior.body === undefined) {
          res.writeHead(413, { "content-length": "0", ...behavior.headers });
          return void res.end();
        }
        return this.#json(res, behavior.status, behavior.body ?? errorBody(behavior.status), behavior.headers);
      case "raw": {
        const headers: Record<string, string> = { "content-type": behavior.contentType ?? "text/plain" };
        if (behavior.product !== false) Object.assign(headers, PRODUCT);
        res.writeHead(behavior.status ?? 200, headers);
        return void res.end(behavior.body);
      }
      case "hang":
        return;
      case "drip": {
        res.writeHead(200, { ...PRODUCT, "content-type": "application/json" });
        res.write("{");
        const timer = setInterval(() => {
          if (res.destroyed) {
            clearInterval(timer);
            this.#timers.delete(timer);
          } else res.write(" ");
        }, behavior.intervalMs);
        this.#timers.add(timer);
        return;
      }
      case "reset":
        return void req.socket.destroy();
    }
  }

  #json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...(status < 300 ? PRODUCT : {}),
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  }

  #error(res: ServerResponse, status: number, type: string, reason: string): void {
    this.#json(res, status, { error: { root_cause: [{ type, reason }], type, reason }, status });
  }
}

function genericError(status: number): { type: string; reason: string } {
  if (status === 429) return { type: "es_rejected_execution_exception", reason: "rejected execution of coordinating operation" };
  if (status === 503) return { type: "unavailable_shards_exception", reason: "primary shard is not active" };
  if (status === 409) return { type: "version_conflict_engine_exception", reason: "version conflict, document already exists" };
  if (status === 404) return { type: "index_not_found_exception", reason: "no such index" };
  return { type: status >= 500 ? "internal_server_error" : "illegal_argument_exception", reason: `status ${status}` };
}

function errorBody(status: number): unknown {
  const e = genericError(status);
  return { error: { root_cause: [e], ...e }, status };
}

/**
 * Elasticsearch's response filtering, for the paths a client sends: comma-separated dotted paths where `*` matches
 * any one key and arrays are transparent. Only matching leaves survive; objects and arrays left empty disappear.
 */
export function applyFilterPath(value: unknown, filter: string): unknown {
  return filterBy(value, filter.split(",").map((p) => p.trim().split(".")));
}

function filterBy(value: unknown, paths: string[][]): unknown {
  if (Array.isArray(value)) {
    const kept = value.map((v) => filterBy(v, paths)).filter((v) => v !== undefined);
    return kept.length === 0 ? undefined : kept;
  }
  if (value === null || typeof value !== "object") return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [key, v] of Object.entries(value)) {
    const rest = paths.filter((p) => p[0] === key || p[0] === "*").map((p) => p.slice(1));
    if (rest.length === 0) continue;
    const kept = rest.some((p) => p.length === 0) ? v : filterBy(v, rest);
    if (kept === undefined) continue;
    out[key] = kept;
    any = true;
  }
  return any ? out : undefined;
}
