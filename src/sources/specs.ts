// What the host sends a collector child in its INIT frame: plain JSON, one shape per source kind.
import type { CommandSourceOptions } from "./command-source.js";
import type { FileSourceOptions } from "./file-source.js";
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

/** The command half of CommandSourceOptions, as sent to the child (the public options are the source of truth). */
export interface CommandSpec
  extends BaseSpec,
    Pick<CommandSourceOptions, "command" | "args" | "shell" | "cwd" | "env" | "inheritEnv" | "stderrLevel"> {
  kind: "command";
}

/** The tail half of FileSourceOptions, plus where checkpoints live. */
export interface FileSpec
  extends BaseSpec,
    Pick<
      FileSourceOptions,
      "paths" | "exclude" | "cwd" | "startAt" | "pollIntervalMs" | "globIntervalMs" | "fingerprintBytes" | "rotateWaitMs"
    > {
  kind: "file";
  checkpointDir: string | undefined;
}

export type CollectorSpec = CommandSpec | FileSpec;
