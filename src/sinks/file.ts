// NDJSON file sink (dead letters, archives): one append per batch, never a duplicated line, optional size rotation.
//
//   send(batch) ─▶ body = json lines + "\n" ─▶ [lock] ─▶ open (mkdir -p, O_APPEND, mode) ─▶ fstat: size
//                                                   ─▶ the path no longer names the open file ? reopen (mkdir -p)
//                                                   ─▶ size + body > maxBytes ? rotate : ─▶ write(body) ─▶ fsync?
//                                                   └─ write/fsync failed ─▶ ftruncate(size) ─▶ Outcome.retry(errno)
//
// Sends are serialized by a lock: lines of concurrent batches never interleave, and rotation sees a quiet file.
import { mkdir, open, rename, stat, type FileHandle } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Batch, SendContext, SendResult, Sink, SinkLifecycleContext, SinkMetrics } from "./sink.js";
import { Outcome } from "./sink.js";
import { InvalidOptionError, SinkError } from "../errors.js";
import { checkInt, checkName, checkObject } from "../options.js";
import { checkKeys, optionKeys } from "../util/validate.js";
import { describe } from "../pipeline/serialize.js";
import { checkAborted, untilSettledOrAborted } from "./abort.js";
import { errorText } from "../util/text.js";

/** When the sink forces written data to the disk (survives power loss, not only a process crash). */
export type FsyncPolicy = "close" | "batch" | "never";

export interface FileRotateOptions {
  /** Rotate before a batch would take the file past this size. A single larger batch still goes whole into one file. */
  maxBytes: number;
  /** Rotated files kept (`path.1` newest … `path.N` oldest); older ones are deleted. @default 5 */
  maxFiles?: number;
}

export interface FileSinkOptions {
  /** Unique sink name. */
  name: string;
  /** File to append to (a path or a `file:` URL). Resolved against the working directory once, here. */
  path: string | URL;
  /** Permissions of a file the sink creates (an existing file keeps its own). @default 0o600 */
  mode?: number;
  /** Create missing parent directories (with `dirMode`). @default true */
  mkdir?: boolean;
  /** Permissions of the parent directories the sink creates. @default 0o700 */
  dirMode?: number;
  /**
   * `"close"`: fsync when the file is closed or rotated. `"batch"`: fsync every batch before it counts as
   * delivered (use it for dead letters you cannot afford to lose in a power cut). `"never"`: leave it to the OS.
   * A write counts as delivered once the OS has it, so a process crash loses nothing in any mode.
   * @default "close"
   */
  fsync?: FsyncPolicy;
  /** Size-based rotation. @default undefined (no rotation) */
  rotate?: FileRotateOptions;
}

interface ResolvedFileOptions {
  path: string;
  mode: number;
  mkdir: boolean;
  dirMode: number;
  fsync: FsyncPolicy;
  rotate: { maxBytes: number; maxFiles: number } | undefined;
}

const FSYNC: readonly FsyncPolicy[] = ["close", "batch", "never"];

/**
 * Appends each batch as newline-terminated JSON lines, in one write.
 *
 * A failed write (ENOSPC, EACCES, EIO…) answers `Outcome.retry(<errno code>)`. Before that, the file is
 * truncated back to its size before the write, so a partly written batch leaves no line behind and the
 * retry cannot duplicate any. If even the truncation fails, the sink refuses to write until a later
 * attempt has truncated the file back. The sink assumes it is the only writer of the file.
 */
export class FileSink implements Sink {
  readonly name: string;
  /** The absolute path written to. */
  readonly path: string;
  private readonly options: ResolvedFileOptions;

  private handle: FileHandle | undefined;
  private lock: Promise<void> = Promise.resolve();
  /** Set by close() and cleared by open(): a send in between must not reopen the file behind the owner's back. */
  private closed = false;
  /** Size the file must be cut back to before anything else is written (a failed write we could not undo). */
  private repairTo: number | undefined;

  private sendCount = 0;
  private recordCount = 0;
  private byteCount = 0;
  private writeErrors = 0;
  private rotations = 0;
  private fsyncs = 0;
  private reopens = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(options: FileSinkOptions) {
    this.options = resolveFileOptions(options);
    this.name = options.name;
    this.path = this.options.path;
  }

  metrics(): SinkMetrics {
    return {
      sends: this.sendCount,
      records: this.recordCount,
      bytes: this.byteCount,
      write_errors: this.writeErrors,
      rotations: this.rotations,
      fsyncs: this.fsyncs,
      reopens: this.reopens,
    };
  }

  /** Opens (and creates) the file now, so a path that cannot work fails `start()` instead of every send. */
  async open(ctx?: SinkLifecycleContext): Promise<void> {
    this.closed = false;
    try {
      await this.exclusive(() => this.ensureOpen(), ctx?.signal);
    } catch (error) {
      if (error instanceof SinkError) throw error;
      throw new SinkError("ERR_SINK_OPEN", `FileSink "${this.name}": cannot open ${this.path}: ${errorText(error)}`, {
        sink: this.name,
        cause: error,
      });
    }
  }

  async send(batch: Batch, ctx?: SendContext): Promise<SendResult> {
    this.sendCount++;
    const n = batch.length;
    if (n === 0) return Outcome.delivered;
    // Built before taking the lock: the CPU work of one batch overlaps the previous batch's write.
    const body = Buffer.from(batch.json.join("\n") + "\n", "utf8");
    return this.exclusive(async () => {
      // Past this check the write goes ahead even if the signal fires: a write cannot be taken back halfway.
      checkAborted(this.name, ctx?.signal);
      if (this.closed) {
        return Outcome.retry("closed", undefined, new SinkError("ERR_SINK_SEND", `FileSink "${this.name}" is closed`, { sink: this.name }));
      }
      try {
        await this.append(body);
      } catch (error) {
        this.writeErrors++;
        const code = errnoCode(error) ?? "write_failed";
        const wrapped = new SinkError("ERR_SINK_SEND", `FileSink "${this.name}": cannot write ${this.path}: ${errorText(error)}`, {
          sink: this.name,
          cause: error,
        });
        return Outcome.retry(code, undefined, wrapped);
      }
      this.recordCount += n;
      this.byteCount += body.length;
      this.closeWhenIdle();
      return Outcome.delivered;
    }, ctx?.signal);
  }

  /**
   * A file that gets no batch for IDLE_CLOSE_MS is closed (and synced, as its fsync policy says): a dead-letter file
   * written once a week, rotated away or deleted meanwhile, must not keep its disk space while the sink holds it.
   * The next batch opens the path again.
   */
  private closeWhenIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      void this.exclusive(() => this.closeHandle(), undefined).catch(() => undefined);
    }, IDLE_CLOSE_MS);
    this.idleTimer.unref();
  }

  /** Waits for the write in progress, fsyncs (unless `fsync: "never"`) and closes. Calling it again is a no-op. */
  async close(ctx?: SinkLifecycleContext): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    // Not abortable once queued: if the deadline passes we stop waiting, and the close still runs after the write.
    const closing = this.exclusive(() => this.closeHandle(), undefined);
    await untilSettledOrAborted(this.name, closing, ctx?.signal);
  }

  // ── internals ───────────────────────────────────────────────────────────────────────────────────

  /** Runs `fn` after every earlier locked operation; leaves the queue early (rejecting) if `signal` aborts. */
  private async exclusive<T>(fn: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((resolve) => (release = resolve));
    try {
      await untilSettledOrAborted(this.name, previous, signal);
    } catch (error) {
      // Keep the chain in order for those queued behind us.
      void previous.then(release);
      throw error;
    }
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    const { path, mode, dirMode } = this.options;
    if (this.options.mkdir) {
      try {
        await mkdir(dirname(path), { recursive: true, mode: dirMode });
      } catch (error) {
        // EEXIST: the parent is a file. Let open() report it as the clearer ENOTDIR.
        if (errnoCode(error) !== "EEXIST") throw error;
      }
    }
    const handle = await open(path, "a", mode);
    if (this.repairTo !== undefined) {
      try {
        const { size } = await handle.stat();
        if (size > this.repairTo) await handle.truncate(this.repairTo);
        this.repairTo = undefined;
      } catch (error) {
        await handle.close().catch(() => {});
        throw error;
      }
    }
    this.handle = handle;
    return handle;
  }

  private async append(body: Buffer): Promise<void> {
    let handle = await this.ensureOpen();
    // fstat per batch (not a tracked counter): stays right if someone truncated the file meanwhile.
    let opened = await handle.stat();
    if (!(await this.stillAtPath(opened))) {
      // Deleted, renamed or replaced under us (a temp cleaner, an operator, a rename rotation): what we wrote to the
      // old file now would vanish with it while counting as delivered. Write to what the path names now.
      await this.closeHandle();
      this.reopens++;
      handle = await this.ensureOpen();
      opened = await handle.stat();
    }
    let before = opened.size;
    const rotate = this.options.rotate;
    if (rotate !== undefined && before > 0 && before + body.length > rotate.maxBytes) {
      await this.rotate(rotate.maxFiles);
      handle = await this.ensureOpen();
      before = (await handle.stat()).size;
    }
    let written = 0;
    try {
      while (written < body.length) {
        const { bytesWritten } = await handle.write(body, written, body.length - written);
        if (bytesWritten <= 0) throw new Error(`short write: ${written} of ${body.length} bytes`);
        written += bytesWritten;
      }
      if (this.options.fsync === "batch") {
        await handle.datasync();
        this.fsyncs++;
      }
    } catch (error) {
      // Undo a partial (or un-synced) batch so the retry writes each line exactly once.
      try {
        await handle.truncate(before);
      } catch {
        this.repairTo = before;
        this.handle = undefined;
        await handle.close().catch(() => {});
      }
      throw error;
    }
  }

  /** Whether the sink's path still names the file open as `opened` (same device and inode). */
  private async stillAtPath(opened: { dev: number; ino: number }): Promise<boolean> {
    try {
      const now = await stat(this.options.path);
      return now.dev === opened.dev && now.ino === opened.ino;
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return false;
      throw error;
    }
  }

  /** path → path.1 → … → path.maxFiles (the oldest is overwritten). The next write creates a fresh file. */
  private async rotate(maxFiles: number): Promise<void> {
    await this.closeHandle();
    const path = this.options.path;
    for (let i = maxFiles - 1; i >= 1; i--) await renameIfExists(`${path}.${i}`, `${path}.${i + 1}`);
    await rename(path, `${path}.1`);
    this.rotations++;
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) return;
    this.handle = undefined;
    try {
      if (this.options.fsync !== "never") {
        await handle.datasync();
        this.fsyncs++;
      }
    } finally {
      await handle.close();
    }
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if (errnoCode(error) !== "ENOENT") throw error;
  }
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.length > 0 ? code : undefined;
}

/** A FileSink's file is closed after this long without a batch (see closeWhenIdle). */
const IDLE_CLOSE_MS = 30_000;

const FILE_KEYS = optionKeys<FileSinkOptions>()(["name", "path", "mode", "mkdir", "dirMode", "fsync", "rotate"]);
const ROTATE_KEYS = optionKeys<FileRotateOptions>()(["maxBytes", "maxFiles"]);

function resolveFileOptions(options: FileSinkOptions): ResolvedFileOptions {
  if (options === undefined) throw new InvalidOptionError("Expected `options` to be an object, got `undefined`");
  checkObject("options", options);
  checkKeys("", options, FILE_KEYS);
  checkName("name", options.name);
  const p = options.path;
  let path: string;
  if (typeof p === "string" && p.length > 0) path = resolve(p);
  else if (p instanceof URL && p.protocol === "file:") path = fileURLToPath(p);
  else throw new InvalidOptionError(`Expected \`path\` to be a non-empty path string or a file: URL, got ${describe(p)}`);
  checkMode("mode", options.mode);
  checkMode("dirMode", options.dirMode);
  if (options.mkdir !== undefined && typeof options.mkdir !== "boolean") {
    throw new InvalidOptionError(`Expected \`mkdir\` to be a boolean, got ${describe(options.mkdir)}`);
  }
  const fsync = options.fsync ?? "close";
  if (!FSYNC.includes(fsync)) {
    throw new InvalidOptionError(`Expected \`fsync\` to be one of "close", "batch", "never", got ${describe(fsync)}`);
  }
  let rotate: ResolvedFileOptions["rotate"];
  if (options.rotate !== undefined) {
    checkObject("rotate", options.rotate);
    checkKeys("rotate", options.rotate, ROTATE_KEYS);
    if (options.rotate.maxBytes === undefined) {
      throw new InvalidOptionError("Expected `rotate.maxBytes` to be a positive integer, got `undefined`");
    }
    checkInt("rotate.maxBytes", options.rotate.maxBytes, 1);
    checkInt("rotate.maxFiles", options.rotate.maxFiles, 1);
    rotate = { maxBytes: options.rotate.maxBytes, maxFiles: options.rotate.maxFiles ?? 5 };
  }
  return {
    path,
    mode: options.mode ?? 0o600,
    mkdir: options.mkdir ?? true,
    dirMode: options.dirMode ?? 0o700,
    fsync,
    rotate,
  };
}

function checkMode(path: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0o7777) {
    throw new InvalidOptionError(`Expected \`${path}\` to be a file mode between 0 and 0o7777, got ${describe(value)}`);
  }
}
