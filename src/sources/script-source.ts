// ScriptSource: runs the user's own collector module (its default export is `defineCollector(fn)`) in a supervised
// child process, with the same restarts, credits and reports as the built-in collectors.
import { statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import { safeUrl } from "../util/redact.js";
import { checkInt, checkKeys, optionKeys } from "../util/validate.js";
import { CollectorSource, type CollectorSourceOptions, type RestartOnExit, resolveCollectorOptions, resolveRestartOnExit } from "./collector-source.js";
import type { SourceHost } from "./runtime.js";
import type { BaseSpec, ScriptSpec } from "./specs.js";

export interface ScriptSourceOptions extends Omit<CollectorSourceOptions, "multiline" | "maxLineBytes"> {
  /**
   * The collector module: a `file:` URL (`new URL("./my-collector.js", import.meta.url)`) or an absolute path.
   * Its default export must be `defineCollector(…)` from `child-log-agg/collector`. It runs in the child under
   * plain Node, so it must be JavaScript, unless `execArgv` loads a TypeScript loader, e.g.
   * `execArgv: ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href]` (an absolute URL:
   * a bare `tsx` would be resolved from the child's working directory).
   */
  module: URL | string;
  /**
   * Handed to the collector function as `options`. Must be JSON (null, booleans, finite numbers, strings, arrays
   * and plain objects): it crosses into the child process.
   * @default {}
   */
  options?: unknown;
  /**
   * How strings passed to `emit` become fields: `"json"`, `"logfmt"`, `"plain"`, `"syslog"` or `{ regex }`. A `parse`
   * function given to `defineCollector` takes precedence. Record objects are never parsed.
   * @default "plain"
   */
  parser?: CollectorSourceOptions["parser"];
  /**
   * Cursors the collector `commit()`s are written to the aggregator's `checkpointDir` at most this often, once their
   * records are settled (the first after a quiet spell at once). `0` writes at every acknowledgement.
   * @default 250
   */
  checkpointIntervalMs?: number;
  /**
   * When the collector function returns (or throws) before the source is stopped: `"always"` runs it again (after the
   * `restart` backoff, within its breaker), `"on-failure"` only when it threw, `"never"` not at all. A function that
   * is not run again ends the source: its `source:exit` is its last event (a return is no `source:error`), and its
   * state is `stopped`. A collector process that crashes is restarted in any case.
   * @default "always"
   */
  restartOnExit?: RestartOnExit;
}

/** Deeper option trees than this are refused (they are configuration, not data). */
const MAX_OPTIONS_DEPTH = 64;

const KEYS = optionKeys<ScriptSourceOptions>()([
  "name", "parser", "fields", "restart", "startTimeoutMs", "killAfterMs", "execArgv",
  "module", "options", "checkpointIntervalMs", "restartOnExit",
]);

export class ScriptSource extends CollectorSource {
  readonly kind = "script";
  private readonly module: string;
  private readonly options: unknown;
  private readonly checkpointIntervalMs: number;

  constructor(options: ScriptSourceOptions) {
    super(resolveCollectorOptions(options));
    for (const key of ["multiline", "maxLineBytes"] as const) {
      if ((options as CollectorSourceOptions)[key] !== undefined) {
        throw new InvalidOptionError(
          `Expected no \`${key}\` on a ScriptSource (its collector emits whole records), got ${describe((options as CollectorSourceOptions)[key])}`,
        );
      }
    }
    checkKeys("", options, KEYS);
    this.module = resolveModule(options.module);
    checkJson("options", options.options, 0, new Set());
    this.options = options.options === undefined ? {} : (JSON.parse(JSON.stringify(options.options)) as unknown);
    checkInt("checkpointIntervalMs", options.checkpointIntervalMs, 0);
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? 250;
    this.restartOnExit = resolveRestartOnExit(options.restartOnExit);
  }

  protected spec(base: BaseSpec, host: SourceHost): ScriptSpec {
    return {
      ...base,
      kind: "script",
      module: this.module,
      options: this.options,
      checkpointDir: host.checkpointDir,
      checkpointIntervalMs: this.checkpointIntervalMs,
    };
  }
}

/** A file URL or absolute path of an existing file → its `file:` URL (what the child imports). */
function resolveModule(value: unknown): string {
  let url: URL;
  if (value instanceof URL) {
    url = value;
  } else if (typeof value === "string" && value.startsWith("file:")) {
    try {
      url = new URL(value);
    } catch {
      throw new InvalidOptionError(`Expected \`module\` to be a valid file URL, got ${describe(value)}`);
    }
  } else if (typeof value === "string" && isAbsolute(value)) {
    url = pathToFileURL(value);
  } else {
    throw new InvalidOptionError(
      `Expected \`module\` to be a file URL or an absolute path (e.g. new URL("./my-collector.js", import.meta.url)), got ${describe(value)}`,
    );
  }
  if (url.protocol !== "file:") {
    throw new InvalidOptionError(`Expected \`module\` to be a file: URL, got ${describe(safeUrl(url))}`);
  }
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (error) {
    throw new InvalidOptionError(`Expected \`module\` to be a local file URL, got ${describe(url.href)}: ${(error as Error).message}`);
  }
  if (statSync(path, { throwIfNoEntry: false })?.isFile() !== true) {
    throw new InvalidOptionError(`Expected \`module\` to name an existing file, got ${describe(path)}`);
  }
  return url.href;
}

/** Throws unless `value` survives JSON unchanged (the child gets a JSON copy), naming the offending path. */
function checkJson(path: string, value: unknown, depth: number, seen: Set<object>): void {
  const fail = (what: string): never => {
    throw new InvalidOptionError(
      `Expected \`${path}\` to be JSON (null, a boolean, a finite number, a string, an array or a plain object), got ${what}`,
    );
  };
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (value === undefined) {
    if (depth === 0) return;
    fail("`undefined`"); // in an array (JSON would turn it into null); object properties are skipped below
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail(describe(value));
    return;
  }
  if (typeof value !== "object") fail(describe(value));
  const obj = value as object;
  if (seen.has(obj)) fail("a circular reference");
  if (depth >= MAX_OPTIONS_DEPTH) fail(`a value nested deeper than ${MAX_OPTIONS_DEPTH} levels`);
  seen.add(obj);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) checkJson(`${path}[${i}]`, obj[i], depth + 1, seen);
  } else {
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      fail(`an instance of ${(obj as { constructor?: { name?: string } }).constructor?.name ?? "a class"}`);
    }
    // An `undefined` property is dropped by JSON, as it would be by any JSON config: allowed.
    for (const [k, v] of Object.entries(obj)) if (v !== undefined) checkJson(`${path}.${k}`, v, depth + 1, seen);
  }
  seen.delete(obj);
}
