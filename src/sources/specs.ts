// What the host sends a collector child in its INIT frame: plain JSON, one shape per source kind.
import type { CommandSourceOptions } from "./command-source.js";
import type { TailOptions } from "./file-source.js";
import type { ContainerFormat } from "../collector/container-log.js";
import type { MultilineSpec } from "../collector/multiline.js";

/** Parsers that can cross the process boundary (functions only exist in ScriptSource modules). */
export type WireParserSpec = "json" | "logfmt" | "plain" | "syslog" | { syslog: { timezone?: string } } | { regex: string; flags?: string };

export interface BaseSpec {
  name: string;
  hostName: string;
  /** First seq this incarnation numbers its records from. */
  seq: number;
  /** Initial credit. */
  credit: { records: number; bytes: number };
  fields?: Record<string, unknown>;
  parser?: WireParserSpec;
  multiline?: MultilineSpec;
  maxLineBytes?: number;
  killAfterMs: number;
}

/** Schemes a NetworkSource listens on. */
export type NetworkProtocol = "gelf+udp" | "gelf+tcp" | "gelf+tls" | "gelf+http" | "gelf+https" | "udp" | "tcp" | "tls" | "http" | "https";

/** One listener, resolved from its URL by NetworkSource. */
export interface NetworkListenerSpec {
  protocol: NetworkProtocol;
  host: string;
  port: number;
  /** HTTP: the one path that takes POSTs. */
  path?: string;
  /** For `port: 0`: the port an earlier incarnation bound, tried first so senders keep working across restarts. */
  preferPort?: number;
}

/** NetworkSourceOptions resolved (defaults applied) for the child. TLS strings are PEM text or file paths. */
export interface NetworkSpec extends BaseSpec {
  kind: "network";
  listeners: NetworkListenerSpec[];
  /** Explicit limit; undefined = per-protocol defaults. */
  maxMessageBytes: number | undefined;
  maxConnections: number;
  /** TCP/TLS: a connection without a byte for this long is closed. */
  idleTimeoutMs: number;
  /** TCP/TLS: bytes of partial messages held across all connections. */
  maxPartialBytes: number;
  gelf: { chunkTimeoutMs: number; maxPendingMessages: number; maxPendingBytes: number };
  http: { maxBodyBytes: number; creditWaitMs: number; bodyIdleTimeoutMs: number; bodyTimeoutMs: number; headersTimeoutMs: number };
  tls?: { cert: string; key: string; ca?: string; passphrase?: string; requireClientCert: boolean; handshakeTimeoutMs: number };
}

/** The command half of CommandSourceOptions, as sent to the child (the public options are the source of truth). */
export interface CommandSpec
  extends BaseSpec,
    Pick<CommandSourceOptions, "command" | "args" | "shell" | "cwd" | "env" | "inheritEnv" | "stderrLevel"> {
  kind: "command";
}

/** The tail half of FileSourceOptions, plus where checkpoints live. */
export interface FileSpec extends BaseSpec, TailOptions {
  kind: "file";
  container?: ContainerFormat;
  checkpointDir: string | undefined;
  checkpointIntervalMs: number;
}

/** What ScriptSource sends: the user's defineCollector() module and the JSON options for its function. */
export interface ScriptSpec extends BaseSpec {
  kind: "script";
  /** `file:` URL of the module (resolved and checked by the ScriptSource constructor). */
  module: string;
  /** The source's `options`, handed to the collector function as they are. */
  options: unknown;
  /** Where committed cursors are kept (none: `commit()` keeps nothing). */
  checkpointDir: string | undefined;
  checkpointIntervalMs: number;
}

export type CollectorSpec = CommandSpec | FileSpec | ScriptSpec | NetworkSpec;
