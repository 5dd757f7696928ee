// Public options of the Elasticsearch sink, and their one-time resolution into the strict shape `send` relies on.
import type { Client } from "@elastic/elasticsearch";
import { registerCredentials } from "../../util/redact.js";
import { checkKeys, nameOption, optionKeys } from "../../util/validate.js";
import { resolveTls } from "../transport/tls.js";
import { InvalidOptionError } from "../../errors.js";
import { describe } from "../../pipeline/serialize.js";
import type { LogRecord } from "../../record.js";
import type { IndexPattern } from "./index-name.js";
import { compileIndexPattern, indexNameProblem } from "./index-name.js";

/** The official client's constructor options (its package's ESM entry does not re-export the type). */
export type ClientOptions = NonNullable<ConstructorParameters<typeof Client>[0]>;

/** A data stream named by the `{type}-{dataset}-{namespace}` scheme. */
export interface DataStreamName {
  /** @default "logs" */
  type?: string;
  /** @default "generic" */
  dataset?: string;
  /** @default "default" */
  namespace?: string;
}

/**
 * Options of `ElasticsearchSink`. Every connection option of the official client (`node`, `nodes`, `cloud`,
 * `auth`, `tls`, `caFingerprint`, `proxy`, `headers`, `Connection`, …) is accepted and passed to it; or pass
 * a ready `client`. The sink owns `maxRetries` (always 0: the engine's retry policy rules) and the timeout.
 */
export interface ElasticsearchSinkOptions extends Omit<ClientOptions, "name" | "maxRetries" | "requestTimeout" | "tls"> {
  /** Unique sink name (events, metrics, `deadLetter` references). */
  name: string;
  /**
   * TLS for `https://` nodes: `ca`, `cert` + `key`, … Verification is on; turning it off takes
   * `insecureSkipVerify: true` (the same rule as every other sink; `rejectUnauthorized: false` is refused).
   */
  tls?: NonNullable<ClientOptions["tls"]> & { insecureSkipVerify?: boolean };
  /**
   * A client you created. The sink does not close it. Its retries are bypassed per request (`maxRetries: 0`).
   * Mutually exclusive with `node`, `nodes` and `cloud`.
   */
  client?: Client;
  /**
   * Target index: a static name (`"logs"`), a pattern (`"logs-%{+yyyy.MM.dd}"` formats the record's `@timestamp`
   * in UTC with Joda tokens yyyy/YYYY, yy, MM, dd, HH, xxxx, ww; `%{[service][name]}` inserts a field), or a function
   * of the record. A record whose index cannot be built or is not a valid index name is rejected with the reason.
   * Mutually exclusive with `dataStream`.
   */
  index?: string | ((record: LogRecord) => string);
  /**
   * Write to a data stream: a name (patterns as in `index` allowed) or `{ type, dataset, namespace }`.
   * Forces `opType: "create"`. Every record carries `@timestamp` (the engine fills in arrival time when the line
   * had none); one that still lacks a parseable `@timestamp` is rejected, not sent to fail.
   * @default "logs-generic-default" when neither `index` nor `dataStream` is given
   */
  dataStream?: string | DataStreamName;
  /**
   * `create` never overwrites, so with `id` a replayed record answers 409, counted as delivered.
   * `index` adds or replaces. Data streams accept only `create`.
   * @default "create"
   */
  opType?: "create" | "index";
  /** Ingest pipeline for every document (`pipeline` query parameter). */
  pipeline?: string;
  /** Routing: one value for the whole request, or per record (`undefined` → none). */
  routing?: string | ((record: LogRecord) => string | undefined);
  /**
   * Document `_id`: `"deterministic"` derives a stable id from the source and the record's file position
   * (or its canonical JSON), so retries and replays make no duplicates; or a function (`undefined` → auto id).
   * Without it Elasticsearch assigns ids and a replay after a crash can store a record twice.
   */
  id?: "deterministic" | ((record: LogRecord, source: string | undefined) => string | undefined);
  /**
   * Per-request deadline. A request that has not fully answered by then is abandoned and the batch retried
   * (client 9 has no default timeout; a silent server must not stall the pipeline).
   * @default 30000
   */
  requestTimeoutMs?: number;
  /**
   * `filter_path` for bulk responses (smaller responses). Must keep `errors` and `items.*.status`; `false` disables.
   * @default "errors,items.*.status,items.*.error"
   */
  filterPath?: string | false;
  /** `refresh` query parameter (tests; costly in production). @default undefined (server default: false) */
  refresh?: boolean | "wait_for";
  /**
   * Check the cluster once in `open()` (`GET /`). Wrong credentials (401/403) fail `open()` with `ERR_SINK_AUTH`;
   * a server that is not Elasticsearch or refuses the request fails it with `ERR_SINK_OPEN`. An unreachable
   * cluster does not fail `open()`: the shipper starts, buffers, and retries (see `lastOpenError`).
   * Set `false` for API keys without the `monitor` cluster privilege (`GET /` answers 403 to them).
   * @default true
   */
  verifyOnOpen?: boolean;
}

export type IndexTarget =
  | { readonly kind: "pattern"; readonly pattern: IndexPattern }
  | { readonly kind: "function"; readonly fn: (record: LogRecord) => string };

/** The strict shape: every default applied, every choice made. */
export interface ResolvedEsOptions {
  readonly name: string;
  readonly index: IndexTarget;
  readonly dataStream: boolean;
  readonly opType: "create" | "index";
  readonly routingFn: ((record: LogRecord) => string | undefined) | undefined;
  readonly id: "none" | "deterministic" | ((record: LogRecord, source: string | undefined) => string | undefined);
  readonly requestTimeoutMs: number;
  readonly compression: boolean | undefined;
  readonly verifyOnOpen: boolean;
  /** Query parameters sent with every bulk request. */
  readonly query: Readonly<Record<string, string | boolean>>;
}

const SINK_KEYS = [
  "name", "client", "index", "dataStream", "opType", "pipeline", "routing", "id",
  "requestTimeoutMs", "filterPath", "refresh", "verifyOnOpen",
] as const;

/** Every option name: the sink's and the client's (checked both ways by the compiler against the types). */
const ES_KEYS = optionKeys<ElasticsearchSinkOptions>()([
  ...SINK_KEYS,
  "node", "nodes", "Connection", "ConnectionPool", "Transport", "Serializer", "pingTimeout", "sniffInterval",
  "sniffOnStart", "sniffEndpoint", "sniffOnConnectionFault", "resurrectStrategy", "compression", "tls", "agent",
  "nodeFilter", "nodeSelector", "headers", "opaqueIdPrefix", "generateRequestId", "auth", "context", "proxy",
  "enableMetaHeader", "cloud", "disablePrototypePoisoningProtection", "caFingerprint", "maxResponseSize",
  "maxCompressedResponseSize", "maxPathLength", "redaction", "serverMode",
]);

/** Client options the sink sets itself, and what to use instead. */
const OWNED_KEYS: Readonly<Record<string, string>> = {
  maxRetries: "the sink sends with maxRetries: 0, as the engine retries (set the sink's `retry` options instead)",
  requestTimeout: "use `requestTimeoutMs`",
};

/** Split the sink's own options from the client's, and validate both sets. */
export function resolveEsOptions(options: ElasticsearchSinkOptions): { resolved: ResolvedEsOptions; clientOptions: ClientOptions | undefined } {
  if (options === null || typeof options !== "object") {
    throw new InvalidOptionError(`Expected ElasticsearchSink options to be an object, got ${describe(options)}`);
  }
  const name = nameOption(options.name);
  for (const [key, why] of Object.entries(OWNED_KEYS)) {
    if ((options as object as Record<string, unknown>)[key] !== undefined) throw new InvalidOptionError(`Unknown option \`${key}\` for ElasticsearchSink: ${why}`);
  }
  // A misspelled option would go to the client, which ignores what it does not know.
  checkKeys("", options, ES_KEYS);
  // Its passwords, keys and header values are redacted by value from every error and event from now on.
  registerCredentials(options);
  const clientOptions: Record<string, unknown> = { ...options };
  for (const key of SINK_KEYS) delete clientOptions[key];
  // One TLS policy for all sinks (checks, insecureSkipVerify); the client still gets any other node:tls option.
  // "0.0.0.0" keeps resolveTls from choosing an SNI name: the client sets it per node.
  const tlsPolicy = (tls: NonNullable<ElasticsearchSinkOptions["tls"]>) => {
    const { insecureSkipVerify: _skip, ...rest } = tls;
    return { ...rest, ...resolveTls(tls, "0.0.0.0") };
  };
  if (options.tls !== undefined) clientOptions.tls = tlsPolicy(options.tls);
  // The client hands `agent` to its HTTP library as it is: a `rejectUnauthorized: false` there (or in its `connect`)
  // would turn verification off behind the policy's back.
  const agent = options.agent as { rejectUnauthorized?: unknown; connect?: { rejectUnauthorized?: unknown } } | undefined;
  if (typeof agent === "object" && agent !== null && (agent.rejectUnauthorized === false || agent.connect?.rejectUnauthorized === false)) {
    throw new InvalidOptionError(
      "Expected `agent` to leave TLS verification on (set `tls.insecureSkipVerify: true` to turn it off), got `rejectUnauthorized: false` in it",
    );
  }
  // A node given as an object may carry its own `tls`: the same policy (else `rejectUnauthorized: false` there
  // would turn verification off without `insecureSkipVerify`).
  const nodeTls = (node: unknown): unknown => {
    if (typeof node !== "object" || node === null || node instanceof URL) return node;
    const n = node as { tls?: ElasticsearchSinkOptions["tls"]; ssl?: ElasticsearchSinkOptions["tls"] };
    if (n.tls === undefined && n.ssl === undefined) return node;
    return { ...n, ...(n.tls === undefined ? {} : { tls: tlsPolicy(n.tls) }), ...(n.ssl === undefined ? {} : { ssl: tlsPolicy(n.ssl) }) };
  };
  if (options.node !== undefined) clientOptions.node = Array.isArray(options.node) ? options.node.map(nodeTls) : nodeTls(options.node);
  if (options.nodes !== undefined) clientOptions.nodes = Array.isArray(options.nodes) ? options.nodes.map(nodeTls) : nodeTls(options.nodes);

  const hasEndpoint = options.node !== undefined || options.nodes !== undefined || options.cloud !== undefined;
  if (options.client !== undefined) {
    if (typeof (options.client as { bulk?: unknown })?.bulk !== "function") {
      throw new InvalidOptionError(`Expected \`client\` to be an @elastic/elasticsearch Client, got ${describe(options.client)}`);
    }
    if (hasEndpoint) {
      throw new InvalidOptionError("Expected either `client` or `node`/`nodes`/`cloud`, got both (the ready client already knows its nodes)");
    }
  } else if (!hasEndpoint) {
    throw new InvalidOptionError("Expected `node`, `nodes`, `cloud` or a ready `client` for the Elasticsearch sink, got none of them");
  }

  if (options.index !== undefined && options.dataStream !== undefined) {
    throw new InvalidOptionError("Expected either `index` or `dataStream`, got both");
  }
  const opType = options.opType ?? "create";
  if (opType !== "create" && opType !== "index") {
    throw new InvalidOptionError(`Expected \`opType\` to be "create" or "index", got ${describe(opType)}`);
  }

  let index: IndexTarget;
  let dataStream = false;
  if (typeof options.index === "function") {
    index = { kind: "function", fn: options.index };
  } else if (options.index !== undefined) {
    index = { kind: "pattern", pattern: compileIndexPattern(options.index, "index") };
  } else {
    dataStream = true;
    if (opType !== "create") {
      throw new InvalidOptionError(`Expected \`opType\` to be "create" with a data stream (data streams reject other writes), got ${describe(opType)}`);
    }
    index = { kind: "pattern", pattern: compileIndexPattern(dataStreamName(options.dataStream ?? "logs-generic-default"), "dataStream") };
  }

  const routing = options.routing;
  if (routing !== undefined && typeof routing !== "function" && (typeof routing !== "string" || routing.length === 0)) {
    throw new InvalidOptionError(`Expected \`routing\` to be a non-empty string or a function, got ${describe(routing)}`);
  }
  const id = options.id ?? "none";
  if (id !== "none" && id !== "deterministic" && typeof id !== "function") {
    throw new InvalidOptionError(`Expected \`id\` to be "deterministic" or a function, got ${describe(id)}`);
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1 || requestTimeoutMs > 2_147_483_647) {
    throw new InvalidOptionError(`Expected \`requestTimeoutMs\` to be a positive integer (milliseconds), got ${describe(requestTimeoutMs)}`);
  }
  if (options.compression !== undefined && typeof options.compression !== "boolean") {
    throw new InvalidOptionError(`Expected \`compression\` to be a boolean, got ${describe(options.compression)}`);
  }
  const verifyOnOpen = options.verifyOnOpen ?? true;
  if (typeof verifyOnOpen !== "boolean") {
    throw new InvalidOptionError(`Expected \`verifyOnOpen\` to be a boolean, got ${describe(verifyOnOpen)}`);
  }

  const query: Record<string, string | boolean> = {};
  if (options.pipeline !== undefined) {
    if (typeof options.pipeline !== "string" || options.pipeline.length === 0) {
      throw new InvalidOptionError(`Expected \`pipeline\` to be a non-empty string, got ${describe(options.pipeline)}`);
    }
    query.pipeline = options.pipeline;
  }
  if (typeof routing === "string") query.routing = routing;
  if (options.refresh !== undefined) {
    if (options.refresh !== true && options.refresh !== false && options.refresh !== "wait_for") {
      throw new InvalidOptionError(`Expected \`refresh\` to be true, false or "wait_for", got ${describe(options.refresh)}`);
    }
    query.refresh = options.refresh;
  }
  const filterPath = options.filterPath ?? "errors,items.*.status,items.*.error";
  if (filterPath !== false) {
    const parts = typeof filterPath === "string" ? filterPath.split(",").map((s) => s.trim()) : [];
    const keepsStatus = parts.some((p) => ["items", "items.*", "items.**", "items.*.*", "items.*.status", "**"].includes(p));
    if (typeof filterPath !== "string" || !(parts.includes("errors") || parts.includes("**")) || !keepsStatus) {
      throw new InvalidOptionError(
        `Expected \`filterPath\` to keep \`errors\` and \`items.*.status\` (items are matched by position), got ${describe(filterPath)}`,
      );
    }
    query.filter_path = filterPath;
  }

  return {
    resolved: {
      name,
      index,
      dataStream,
      opType: dataStream ? "create" : opType,
      routingFn: typeof routing === "function" ? routing : undefined,
      id,
      requestTimeoutMs,
      compression: options.compression,
      verifyOnOpen,
      query,
    },
    clientOptions: options.client === undefined ? (clientOptions as ClientOptions) : undefined,
  };
}

function dataStreamName(value: string | DataStreamName): string {
  if (typeof value === "string") return value;
  if (value === null || typeof value !== "object") {
    throw new InvalidOptionError(`Expected \`dataStream\` to be a string or { type, dataset, namespace }, got ${describe(value)}`);
  }
  const parts: [string, string][] = [
    ["type", value.type ?? "logs"],
    ["dataset", value.dataset ?? "generic"],
    ["namespace", value.namespace ?? "default"],
  ];
  for (const [key, part] of parts) {
    const problem =
      typeof part !== "string" ? "must be a string"
      : part.includes("-") ? "must not contain -"
      : part.length > 100 ? "must be at most 100 characters"
      : indexNameProblem(part);
    if (problem !== undefined) {
      throw new InvalidOptionError(`Expected \`dataStream.${key}\` to be a valid data stream part (${problem}), got ${describe(part)}`);
    }
  }
  return parts.map(([, p]) => p).join("-");
}
