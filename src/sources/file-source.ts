// FileSource: tails files matched by globs in a supervised collector, rotation- and truncation-safe, with
// checkpoints (in the aggregator's checkpointDir) that only ever hold positions every sink has settled.
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import { checkInt, checkKeys, optionKeys } from "../util/validate.js";
import { CONTAINER_FORMATS, type ContainerFormat } from "../collector/container-log.js";
import { type FileTailerOptions, resolveTailerOptions } from "../collector/tail/options.js";
import { COLLECTOR_KEYS, CollectorSource, type CollectorSourceOptions, resolveCollectorOptions } from "./collector-source.js";
import type { BaseSpec, FileSpec } from "./specs.js";
import type { SourceHost } from "./runtime.js";

/** The tail options users set (documented once, on the tailer's options); the rest are the collector's. */
export type TailOptions = Pick<
  FileTailerOptions,
  "paths" | "exclude" | "cwd" | "startAt" | "pollIntervalMs" | "globIntervalMs" | "fingerprintBytes" | "rotateWaitMs" | "partialLineTimeoutMs" | "closeInactiveMs"
>;

export interface FileSourceOptions extends CollectorSourceOptions, TailOptions {
  /**
   * Acknowledged positions are written to `checkpointDir` at most this often (the first change after a quiet spell at
   * once). Lower means fewer lines replayed after a crash, at the price of more small writes (each fsynced).
   * @default 250
   */
  checkpointIntervalMs?: number;
  /**
   * The files are a container runtime's logs, each line wrapping a piece of a line the container wrote:
   * - `"cri"`: containerd and CRI-O (Kubernetes' `/var/log/containers/*.log`): `<time> <stdout|stderr> <P|F> <text>`;
   * - `"docker"`: Docker's json-file driver: `{"log":"<text>\n","stream":"stdout","time":"<time>"}`;
   * - `"auto"`: either, told apart per line.
   *
   * The wrapper comes off and the pieces of a line the runtime split (at 16 KiB) are joined again, per stream. Then
   * `multiline` and `parser` see the container's own line. Its record has the runtime's time as `@timestamp` unless
   * the line has its own, and the stream as `stream` (stderr lines without a level get `warn`, as CommandSource's).
   * A line not in the format is shipped as it is, counted as `containerInvalidLines`, and said once per file.
   * @default undefined (plain lines)
   */
  container?: ContainerFormat;
}

const KEYS = optionKeys<FileSourceOptions>()([
  ...COLLECTOR_KEYS,
  "paths", "exclude", "cwd", "startAt", "pollIntervalMs", "globIntervalMs", "fingerprintBytes", "rotateWaitMs",
  "partialLineTimeoutMs", "closeInactiveMs", "checkpointIntervalMs", "container",
]);

export class FileSource extends CollectorSource {
  readonly kind = "file";
  private readonly tail: TailOptions;
  private readonly checkpointIntervalMs: number;
  private readonly container: ContainerFormat | undefined;

  constructor(options: FileSourceOptions) {
    super(resolveCollectorOptions(options));
    checkKeys("", options, KEYS);
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
      partialLineTimeoutMs: options.partialLineTimeoutMs,
      closeInactiveMs: options.closeInactiveMs,
    };
    checkInt("checkpointIntervalMs", options.checkpointIntervalMs, 0);
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? 250;
    if (options.container !== undefined && !CONTAINER_FORMATS.includes(options.container)) {
      throw new InvalidOptionError(`Expected \`container\` to be "cri", "docker" or "auto", got ${describe(options.container)}`);
    }
    this.container = options.container;
    // Validate the tail options here, in the host, so a mistake throws from the constructor and not in the child.
    resolveTailerOptions({ ...this.tail, maxLineBytes: options.maxLineBytes });
  }

  protected spec(base: BaseSpec, host: SourceHost): FileSpec {
    return {
      ...base,
      kind: "file",
      checkpointDir: host.checkpointDir,
      checkpointIntervalMs: this.checkpointIntervalMs,
      ...this.tail,
      ...(this.container === undefined ? {} : { container: this.container }),
    };
  }
}
