// What the host sends a collector child in its INIT frame: plain JSON, one shape per source kind.
import type { LogLevel } from "../record.js";
import type { MultilineSpec } from "../collector/multiline.js";

/** Parsers that can cross the process boundary (functions only exist in ScriptSource modules). */
export type WireParserSpec = "json" | "logfmt" | "plain" | { regex: string; flags?: string };

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

export interface CommandSpec extends BaseSpec {
  kind: "command";
  command: string;
  args?: string[];
  shell?: boolean | string;
  cwd?: string;
  env?: Record<string, string>;
  inheritEnv?: boolean;
  stderrLevel?: LogLevel;
}

export type CollectorSpec = CommandSpec;
