// FileSource: tails files matched by globs in a supervised collector, rotation- and truncation-safe, with
// checkpoints (in the aggregator's checkpointDir) that only ever hold positions every sink has settled.
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import { resolveTailerOptions } from "../collector/tail/options.js";
import { CollectorSource, type CollectorSourceOptions, resolveCollectorOptions } from "./collector-source.js";
import type { BaseSpec, FileSpec } from "./specs.js";
import type { SourceHost } from "./runtime.js";

export interface FileSourceOptions extends CollectorSourceOptions {
  /** Files to tail: paths or globs (`*`, `?`, `**`, `{a,b}`), re-scanned for new files. */
  paths: string[];
  /** Globs to leave out (e.g. `"*.gz"`). */
  exclude?: string[];
  /** Base for relative paths. @default the host's cwd */
  cwd?: string;
  /**
   * Where to start in a file that has no checkpoint. Files that appear after start are always read from the beginning.
   * @default "beginning"
   */
  startAt?: "beginning" | "end";
  /** How often open files are checked for growth. @default 250 */
  pollIntervalMs?: number;
  /** How often the globs are re-scanned for new files. @default 2000 */
  globIntervalMs?: number;
  /** Bytes hashed from a file's start to tell files apart when an inode is reused. @default 1024 */
  fingerprintBytes?: number;
  /** A rotated (renamed) file is read to its end, then closed after this long without growth. @default 5000 */
  rotateWaitMs?: number;
}

export class FileSource extends CollectorSource {
  readonly kind = "file";
  private readonly tail: Pick<
    FileSourceOptions,
    "paths" | "exclude" | "cwd" | "startAt" | "pollIntervalMs" | "globIntervalMs" | "fingerprintBytes" | "rotateWaitMs"
  >;

  constructor(options: FileSourceOptions) {
    super(resolveCollectorOptions(options));
    if (!Array.isArray(options.paths) || options.paths.length === 0) {
      throw new InvalidOptionError(`Expected \`paths\` to be a non-empty array of paths or globs, got ${describe(options.paths)}`);
    }
    this.tail = {
      paths: options.paths,
      exclude: options.exclude,
      cwd: options.cwd,
      startAt: options.startAt,
      pollIntervalMs: options.pollIntervalMs,
      globIntervalMs: options.globIntervalMs,
      fingerprintBytes: options.fingerprintBytes,
      rotateWaitMs: options.rotateWaitMs,
    };
    // Validate the tail options here, in the host, so a mistake throws from the constructor and not in the child.
    resolveTailerOptions({ ...this.tail, maxLineBytes: options.maxLineBytes });
  }

  protected spec(base: BaseSpec, host: SourceHost): FileSpec {
    return { ...base, kind: "file", checkpointDir: host.checkpointDir, ...this.tail };
  }
}
