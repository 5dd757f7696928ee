// FileTailer's public options (loose, documented) and their one-time resolution into a strict internal shape.
import path from "node:path";
import { InvalidOptionError } from "../../errors.js";
import { requireInt } from "../../util/validate.js";
import { describe } from "../../pipeline/serialize.js";
import type { CheckpointStore } from "../checkpoint-store.js";
import { expandBraces, globRegExp } from "./glob.js";

/** Lines longer than this are split (or truncated) when `maxLineBytes` is not given: 1 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 1_048_576;
/** `partialLineTimeoutMs` when not given. */
export const DEFAULT_PARTIAL_LINE_TIMEOUT_MS = 5000;

export interface FileTailerOptions {
  /**
   * Files to follow, as globs: `*`, `?`, `[abc]`, `**` (any depth), `{a,b}`. Relative globs resolve against `cwd`.
   * Rescanned every `globIntervalMs` for new files. To follow a file across rename rotation you only need its live
   * name (`app.log`); adding the rotated names (`app.log*`) is safe too: identity tracking never reads a renamed
   * file twice, and with copytruncate it lets the tailer pick up what was copied but not yet read.
   */
  paths: string[];
  /** Globs of paths to skip. A pattern without `/` matches the base name (`"*.gz"`). @default [] */
  exclude?: string[];
  /** Directory relative globs resolve against. @default process.cwd() */
  cwd?: string;
  /**
   * Where to start in a file found when the source first starts. Files that appear later are always read from
   * their first byte (as Filebeat does), since everything in them was written after we started watching. So are
   * files without a checkpoint once the source resumes from a checkpoint file (a host or collector restart): they
   * appeared while it was not running.
   * @default "beginning"
   */
  startAt?: "beginning" | "end";
  /** How often open files are stat'ed for growth, truncation, rotation and deletion. @default 250 */
  pollIntervalMs?: number;
  /** How often the globs are rescanned for new or renamed files. @default 2000 */
  globIntervalMs?: number;
  /** Bytes per read. Flow control can overshoot its byte budget by at most one chunk. @default 65536 */
  readChunkBytes?: number;
  /**
   * Longest line kept in memory, in bytes (terminator excluded). See `overlong` for what happens to longer ones.
   * Memory per file stays at maxLineBytes + one read chunk whatever the input. @default 1048576 (1 MiB)
   */
  maxLineBytes?: number;
  /**
   * Lines longer than `maxLineBytes`: `"split"` emits them in pieces flagged `split` (nothing lost, counted);
   * `"truncate"` keeps the first `maxLineBytes` bytes flagged `truncated` and skips the rest up to the newline
   * (counted, like Filebeat's `max_bytes`). Cuts never fall inside a UTF-8 character.
   * @default "split"
   */
  overlong?: "split" | "truncate";
  /**
   * Decode a line's `text` only when the handler reads it (lines that lie whole in a read of valid UTF-8). The text is
   * then valid only while the handler runs, like `bytes`: for handlers that consume lines synchronously.
   * @default false
   */
  lazyText?: boolean;
  /**
   * A last line without newline is held; after this long without new bytes it is emitted flagged `partial`, and
   * whatever is appended later starts a new line. `false` holds it until its newline (Filebeat/Vector behaviour).
   * A rotated or deleted file's held partial is emitted when the file closes.
   * @default 5000
   */
  partialLineTimeoutMs?: number | false;
  /**
   * Leading bytes hashed into a file's fingerprint. Identity is device + inode; the fingerprint detects inode
   * reuse (checkpoint for another file) and recognizes a copytruncate copy. Files shorter than this are
   * fingerprinted over what they have. @default 1024
   */
  fingerprintBytes?: number;
  /**
   * How long a new file that starts like a tracked one waits for that one to be truncated (copytruncate copies first:
   * a big file can take a while; if it is not, it is a distinct file, read from its start), and how long a truncated file's unread bytes wait for such a copy before they count as lost. Internal
   * (tests shorten it); FileSource does not set it. @default 30000
   */
  copyDecisionMs?: number;
  /**
   * A renamed-away or deleted file is read to EOF and closed once no new bytes arrived for this long (writers
   * may still write to it until they reopen). @default 5000
   */
  rotateWaitMs?: number;
  /**
   * A file still at its path is closed after this long without new bytes, to free the descriptor; a rescan that
   * sees it change reopens it where it left off. @default 300000 (5 min)
   */
  closeInactiveMs?: number;
  /** Use fs.watch on the files' directories as a hint to poll sooner. Polling alone is correct. @default true */
  watch?: boolean;
  /** Where acknowledged positions persist. Without it every start follows `startAt`. */
  checkpoints?: CheckpointStore;
  /**
   * Initial flow-control credit. Unset: unlimited (use pause()/resume() or none). Set: the tailer reads only while
   * both `lines` and `bytes` are positive; each emitted line costs 1 line and its byte length; `grant()` adds more.
   */
  credit?: { lines: number; bytes: number };
}

export interface ResolvedTailerOptions {
  patterns: string[];
  exclude: { full: RegExp[]; base: RegExp[] };
  cwd: string;
  startAt: "beginning" | "end";
  pollIntervalMs: number;
  globIntervalMs: number;
  readChunkBytes: number;
  maxLineBytes: number;
  overlong: "split" | "truncate";
  lazyText: boolean;
  partialLineTimeoutMs: number | false;
  fingerprintBytes: number;
  copyDecisionMs: number;
  rotateWaitMs: number;
  closeInactiveMs: number;
  watch: boolean;
  checkpoints: CheckpointStore | undefined;
  credit: { lines: number; bytes: number };
}

export function resolveTailerOptions(options: FileTailerOptions): ResolvedTailerOptions {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError(`Expected FileTailer options to be an object, got ${describe(options)}`);
  }
  const cwd = options.cwd ?? process.cwd();
  if (typeof cwd !== "string" || cwd === "") {
    throw new InvalidOptionError(`Expected \`cwd\` to be a non-empty string, got ${describe(options.cwd)}`);
  }
  const patterns = stringList("paths", options.paths, false);
  const excludes = stringList("exclude", options.exclude ?? [], true);
  const exclude = { full: [] as RegExp[], base: [] as RegExp[] };
  for (const pattern of excludes) {
    if (pattern.includes("/")) exclude.full.push(compile("exclude", path.resolve(cwd, pattern)));
    else exclude.base.push(compile("exclude", pattern));
  }
  for (const pattern of patterns) compile("paths", pattern);
  const startAt = options.startAt ?? "beginning";
  if (startAt !== "beginning" && startAt !== "end") {
    throw new InvalidOptionError(`Expected \`startAt\` to be "beginning" or "end", got ${describe(options.startAt)}`);
  }
  const partial = options.partialLineTimeoutMs ?? DEFAULT_PARTIAL_LINE_TIMEOUT_MS;
  if (partial !== false) requireInt("partialLineTimeoutMs", partial, 1, 86_400_000);
  const credit = options.credit ?? { lines: Infinity, bytes: Infinity };
  if (typeof credit !== "object" || credit === null || !(credit.lines >= 0) || !(credit.bytes >= 0)) {
    throw new InvalidOptionError(
      `Expected \`credit\` to be { lines, bytes } with non-negative numbers, got ${describe(options.credit)}`,
    );
  }
  const overlong = options.overlong ?? "split";
  if (overlong !== "split" && overlong !== "truncate") {
    throw new InvalidOptionError(`Expected \`overlong\` to be "split" or "truncate", got ${describe(options.overlong)}`);
  }
  const watch = options.watch ?? true;
  if (typeof watch !== "boolean") throw new InvalidOptionError(`Expected \`watch\` to be a boolean, got ${describe(watch)}`);
  return {
    patterns,
    exclude,
    cwd: path.resolve(cwd),
    startAt,
    pollIntervalMs: requireInt("pollIntervalMs", options.pollIntervalMs ?? 250, 1, 60_000),
    globIntervalMs: requireInt("globIntervalMs", options.globIntervalMs ?? 2000, 1, 3_600_000),
    readChunkBytes: requireInt("readChunkBytes", options.readChunkBytes ?? 65_536, 64, 16 * 1024 * 1024),
    maxLineBytes: requireInt("maxLineBytes", options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, 16, 256 * 1024 * 1024),
    overlong,
    lazyText: options.lazyText === true,
    partialLineTimeoutMs: partial,
    fingerprintBytes: requireInt("fingerprintBytes", options.fingerprintBytes ?? 1024, 1, 65_536),
    copyDecisionMs: requireInt("copyDecisionMs", options.copyDecisionMs ?? 30_000, 0, 3_600_000),
    rotateWaitMs: requireInt("rotateWaitMs", options.rotateWaitMs ?? 5000, 0, 3_600_000),
    closeInactiveMs: requireInt("closeInactiveMs", options.closeInactiveMs ?? 300_000, 1, 86_400_000),
    watch,
    checkpoints: options.checkpoints,
    credit: { lines: credit.lines, bytes: credit.bytes },
  };
}

function stringList(name: string, value: unknown, allowEmpty: boolean): string[] {
  if (!Array.isArray(value) || (!allowEmpty && value.length === 0)) {
    throw new InvalidOptionError(
      `Expected \`${name}\` to be ${allowEmpty ? "an" : "a non-empty"} array of glob strings, got ${describe(value)}`,
    );
  }
  for (const item of value) {
    if (typeof item !== "string" || item === "") {
      throw new InvalidOptionError(`Expected every \`${name}\` entry to be a non-empty string, got ${describe(item)}`);
    }
  }
  return [...(value as string[])];
}

function compile(name: string, pattern: string): RegExp {
  try {
    expandBraces(pattern);
    return globRegExp(pattern);
  } catch (error) {
    throw new InvalidOptionError(`Expected \`${name}\` entry to be a valid glob, got ${describe(pattern)}`, { cause: error });
  }
}

