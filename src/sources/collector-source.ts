// Options every collector-backed source shares (parsing, enrichment, supervision), validated once.
import { InvalidOptionError } from "../errors.js";
import { checkInt, checkName, checkObject } from "../options.js";
import { describe } from "../pipeline/serialize.js";
import type { MultilineSpec } from "../collector/multiline.js";
import { createParser } from "../collector/parse/index.js";
import { MultilineJoiner } from "../collector/multiline.js";
import { type RestartOptions, type ResolvedRestart, resolveRestart } from "./restart-policy.js";
import type { BaseSpec, CollectorSpec, WireParserSpec } from "./specs.js";
import { CollectorRuntime } from "./collector-runtime.js";
import type { ExitStatus } from "./child-process.js";
import type { SourceDefinition, SourceHost, SourceRuntime } from "./runtime.js";

export interface CollectorSourceOptions {
  /** Unique source name; becomes `service.name` on records that lack one. */
  name: string;
  /**
   * How a line becomes fields: `"json"`, `"logfmt"`, `"plain"`, `"syslog"`, or `{ regex }` with named groups.
   * Lines that fail to parse are shipped as plain messages and counted as parse errors.
   * @default "plain"
   */
  parser?: WireParserSpec | { regex: RegExp | string; flags?: string };
  /** Join multi-line events (`"java"`, `"python"`, `"go"`, or `{ startPattern | continuePattern, maxLines, timeoutMs }`). */
  multiline?: MultilineSpec;
  /** Fields merged into every record (enrichment), e.g. `{ service: { environment: "prod" } }`. */
  fields?: Record<string, unknown>;
  /** Longer lines are split into pieces of this size (counted). @default 1_048_576 */
  maxLineBytes?: number;
  /** Restart policy of the collector process. */
  restart?: RestartOptions;
  /** The collector must say ready within this long. @default 10_000 */
  startTimeoutMs?: number;
  /**
   * On stop: the collector's grace to stop reading and hand over what it holds (the host waits 1.5 s more at most),
   * then SIGTERM, then SIGKILL to the whole process group after this long. @default 5_000
   */
  killAfterMs?: number;
  /** Node flags for the collector process (it never inherits the host's). @default [] */
  execArgv?: string[];
}

/** The option names every collector source takes (each source adds its own; see checkKeys). */
export const COLLECTOR_KEYS = [
  "name", "parser", "multiline", "fields", "maxLineBytes", "restart", "startTimeoutMs", "killAfterMs", "execArgv",
] as const satisfies ReadonlyArray<keyof CollectorSourceOptions>;

export interface ResolvedCollectorOptions {
  name: string;
  parser: WireParserSpec;
  multiline: MultilineSpec | undefined;
  fields: Record<string, unknown> | undefined;
  maxLineBytes: number | undefined;
  restart: ResolvedRestart;
  startTimeoutMs: number;
  killAfterMs: number;
  execArgv: string[];
}

export function resolveCollectorOptions(o: CollectorSourceOptions): ResolvedCollectorOptions {
  checkObject("options", o);
  if (o === undefined) throw new InvalidOptionError("Expected source options, got `undefined`");
  checkName("name", o.name);
  checkInt("maxLineBytes", o.maxLineBytes, 16);
  checkInt("startTimeoutMs", o.startTimeoutMs, 1);
  checkInt("killAfterMs", o.killAfterMs, 0);
  checkObject("fields", o.fields);
  if (o.execArgv !== undefined && (!Array.isArray(o.execArgv) || o.execArgv.some((a) => typeof a !== "string"))) {
    throw new InvalidOptionError(`Expected \`execArgv\` to be an array of strings, got ${describe(o.execArgv)}`);
  }
  let parser: WireParserSpec = "plain";
  if (o.parser !== undefined) {
    if (typeof o.parser === "function") {
      throw new InvalidOptionError("Expected `parser` to be \"json\", \"logfmt\", \"plain\", \"syslog\" or { regex }; parse functions belong in a ScriptSource collector");
    }
    // Compile once here so a bad parser fails in the constructor, not in the child.
    createParser(o.parser as never);
    parser =
      typeof o.parser === "object" && o.parser !== null && "regex" in o.parser
        ? {
            regex: o.parser.regex instanceof RegExp ? o.parser.regex.source : String(o.parser.regex),
            flags: o.parser.flags ?? (o.parser.regex instanceof RegExp ? o.parser.regex.flags : undefined),
          }
        : typeof o.parser === "object" && o.parser !== null
          ? { syslog: { ...o.parser.syslog } }
          : o.parser;
  }
  let multiline = o.multiline;
  if (multiline !== undefined) {
    new MultilineJoiner(multiline, () => {}).close(); // validates
    // The spec crosses into the collector process as JSON: a RegExp goes as its source and flags.
    if (typeof multiline === "object" && multiline !== null && !("preset" in multiline)) {
      const pattern = multiline.startPattern ?? multiline.continuePattern;
      if (pattern instanceof RegExp) {
        const key = multiline.startPattern !== undefined ? "startPattern" : "continuePattern";
        multiline = { ...multiline, [key]: pattern.source, flags: pattern.flags.replace(/[gy]/g, "") };
      }
    }
  }
  try {
    JSON.stringify(o.fields);
  } catch (error) {
    throw new InvalidOptionError(`Expected \`fields\` to be JSON-serializable: ${(error as Error).message}`);
  }
  return {
    name: o.name,
    parser,
    multiline,
    fields: o.fields,
    maxLineBytes: o.maxLineBytes,
    restart: resolveRestart("restart", o.restart),
    startTimeoutMs: o.startTimeoutMs ?? 10_000,
    killAfterMs: o.killAfterMs ?? 5_000,
    execArgv: o.execArgv ?? [],
  };
}

/** Whether what a source runs (a command, a script's function) runs again after it ended by itself. */
export type RestartOnExit = "always" | "on-failure" | "never";
const RESTART_ON_EXIT: readonly RestartOnExit[] = ["always", "on-failure", "never"];

/** The `restartOnExit` option, checked. @default "always" */
export function resolveRestartOnExit(value: unknown): RestartOnExit {
  if (value === undefined) return "always";
  if (!RESTART_ON_EXIT.includes(value as RestartOnExit)) {
    throw new InvalidOptionError(`Expected \`restartOnExit\` to be one of ${RESTART_ON_EXIT.join(", ")}, got ${describe(value)}`);
  }
  return value as RestartOnExit;
}

/**
 * What every collector-backed source shares: the resolved options, and how its runtime (a supervised child) is
 * built. A subclass only says what its INIT spec adds to the common part, and may read READY info.
 */
export abstract class CollectorSource implements SourceDefinition {
  abstract readonly kind: CollectorSpec["kind"];

  constructor(protected readonly o: ResolvedCollectorOptions) {}

  get name(): string {
    return this.o.name;
  }

  /** The INIT spec of one incarnation: `base` holds the common fields; add the kind and its own. */
  protected abstract spec(base: BaseSpec, host: SourceHost): CollectorSpec;

  /** READY info of each incarnation (e.g. the ports a network collector bound). */
  protected onReady(_info: unknown): void {}

  /** What runs again after what it ran ended by itself (a command's exit, a script's return or throw). */
  protected restartOnExit: RestartOnExit = "always";

  /** "on-failure" runs it again only after a code other than 0 (a script that threw) or a signal. */
  private restartsAfterEnd(exit: ExitStatus): boolean {
    const policy = this.restartOnExit;
    return policy === "always" || (policy === "on-failure" && (exit.code !== 0 || exit.signal !== null));
  }

  /** @internal */
  createRuntime(host: SourceHost): SourceRuntime {
    const o = this.o;
    return new CollectorRuntime(host, {
      name: o.name,
      kind: this.kind,
      restart: o.restart,
      startTimeoutMs: o.startTimeoutMs,
      killAfterMs: o.killAfterMs,
      execArgv: o.execArgv,
      onReady: (info) => this.onReady(info),
      restartsAfterEnd: (exit) => this.restartsAfterEnd(exit),
      spec: (base) =>
        this.spec({ ...base, parser: o.parser, multiline: o.multiline, fields: o.fields, maxLineBytes: o.maxLineBytes }, host),
    });
  }
}
