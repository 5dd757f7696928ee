// Persists per-file positions that the sinks have acknowledged, so a restarted collector replays instead of losing.
//
// File: `<dir>/<encoded source>.json`, written atomically: temp file (mode 0600) → write → fsync → rename → fsync dir.
// A crash at any point leaves either the old or the new file, never a torn one.
//
// Only acknowledged offsets are stored: the tailer registers a file at the offset it starts reading from (nothing
// before it needs delivering), then only `commit()` (called from the ack path) moves it forward. Offsets are
// monotonic per fileKey; after a truncation the tailer registers a new fileKey at 0, so a late ack for the old
// content cannot move the new content's position.
//
// A ScriptSource keeps one opaque `cursor` (any JSON value its collector commits) in the same file, by the same rules:
// the script runtime stores only cursors whose records every sink has settled.
//
// Writes are debounced (`flushIntervalMs`) plus explicit `flush()` / `close()`. A failed write (disk full, directory
// gone or not writable) never throws into the tailer: it is reported as an ERR_CHECKPOINT error (event + `lastError`
// + `stats().writeErrors`), the state stays dirty, and the write is retried with backoff and on every flush().
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { EventEmitter } from "eventemitter3";
import { CheckpointError, InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import { takeLock } from "../util/lock.js";

/** Bytes a second, on average, that rewriting the checkpoint file may take (see CheckpointStore's interval). */
const WRITE_BUDGET = 64 * 1024;

/** One file's persisted position and identity. */
export interface CheckpointEntry {
  /** Opaque key the tailer hands out with every line; stable for one file's content generation. */
  fileKey: string;
  /** Path the file was last seen at. Informational: matching is by identity, never by path. */
  path: string;
  /** st_dev as a decimal string. */
  device: string;
  /** st_ino as a decimal string (may exceed 2^53). */
  inode: string;
  /** Hash of the file's first `fingerprintBytes` bytes (see file-identity.ts). */
  fingerprint: string;
  fingerprintBytes: number;
  /**
   * The file's birth time (statx `btime`, in ns, decimal), when the file system keeps one: a file that takes the inode
   * of a deleted one is born later, whatever its first bytes. Absent or "0" where unknown.
   */
  born?: string;
  /** Byte offset up to which every line was acknowledged: the resume point. */
  offset: number;
  /** Epoch ms the tailer last saw the file (matched by the glob or still open). */
  lastSeen: number;
}

export interface CheckpointStoreOptions {
  /** Directory that holds the checkpoint files; created (mode 0700) on first write. */
  dir: string;
  /** Source name; the file is `<dir>/<encodeURIComponent(source)>.json`. */
  source: string;
  /**
   * Debounce for writes after a commit: at most one write per interval (plus flush()/close()).
   * @default 1000
   */
  flushIntervalMs?: number;
  /**
   * Entries of files not seen for this long are dropped at the next write (the file is gone or no longer matched).
   * @default 86_400_000 (24 h)
   */
  forgetAfterMs?: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
  /**
   * When the file's lock is taken: `"load"` (a tailer: its positions are what it reads by), or `"write"`, at the first
   * write, without waiting (a script collector, which may never commit a cursor: then it takes no lock at all). A
   * `"write"` lock held by another live process is reported and this store writes nothing.
   * @default "load"
   */
  lock?: "load" | "write";
}

export interface CheckpointStoreEvents {
  /** A load or write failed (code ERR_CHECKPOINT). Tailing goes on; the write is retried. */
  error: [error: CheckpointError];
  /** A write completed. */
  write: [info: { entries: number; file: string }];
}

export interface CheckpointStoreStats {
  entries: number;
  writes: number;
  writeErrors: number;
  commits: number;
  forgotten: number;
  dirty: boolean;
}

interface ResolvedOptions {
  dir: string;
  source: string;
  file: string;
  flushIntervalMs: number;
  forgetAfterMs: number;
  now: () => number;
  lock: "load" | "write";
}

const FORMAT_VERSION = 1;
const MAX_RETRY_DELAY_MS = 30_000;

/** How long a lock held by a live process is waited for before load() gives up. */
const LOCK_WAIT_MS = 5_000;
const LOCK_RETRY_MS = 100;

export class CheckpointStore extends EventEmitter<CheckpointStoreEvents> {
  readonly #options: ResolvedOptions;
  readonly #entries = new Map<string, CheckpointEntry>();
  /** A script collector's committed cursor, as JSON text (undefined: none). */
  #cursor: string | undefined;
  /** identityKey (dev:ino) → fileKey. */
  readonly #byIdentity = new Map<string, string>();
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<boolean> | undefined;
  #failures = 0;
  #closed = false;
  #loaded = false;
  /** The lock file this store holds (see #lock), until close(). */
  #lockPath: string | undefined;
  /** With `lock: "write"`: another live process held the lock at the first write. */
  #lockRefused: boolean | undefined;
  #stats = { writes: 0, writeErrors: 0, commits: 0, forgotten: 0 };
  /** The last write or load error, cleared by a successful write. */
  lastError: CheckpointError | undefined;

  constructor(options: CheckpointStoreOptions) {
    super();
    this.#options = resolveOptions(options);
  }

  /** Absolute path of the checkpoint file. */
  get file(): string {
    return this.#options.file;
  }

  /**
   * Takes the file's lock, then reads it. A missing file is an empty store. A corrupt one is moved aside to
   * `<file>.corrupt`, reported, and the store starts as after an earlier run with no positions (so every file is read
   * from its beginning: duplicates rather than a loss, whatever `startAt` says). Rejects (ERR_CHECKPOINT) only when
   * another live process holds the lock.
   */
  async load(): Promise<void> {
    if (this.#loaded) return;
    this.#loaded = true;
    if (this.#options.lock === "load") await this.#lock(true);
    let text: string;
    try {
      text = await readFile(this.#options.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.#report("read", error);
      return;
    }
    try {
      const data = JSON.parse(text) as { version?: unknown; files?: unknown; cursor?: unknown };
      if (data.version !== FORMAT_VERSION || !Array.isArray(data.files)) throw new TypeError("unknown format");
      if (data.cursor !== undefined) this.#cursor = JSON.stringify(data.cursor);
      // Forgetting counts the time this store ran without seeing a file, not the time since the stored lastSeen:
      // a host down for a day (or a file idle for a day, whose lastSeen no write refreshed) must not lose its
      // positions to the first write of the first scan, before the scan reached those files.
      const loadedAt = this.#options.now();
      for (const raw of data.files) {
        const entry = parseEntry(raw);
        if (entry === undefined) continue;
        this.#savedLastSeen.set(entry.fileKey, entry.lastSeen);
        entry.lastSeen = loadedAt;
        this.#entries.set(entry.fileKey, entry);
        this.#byIdentity.set(`${entry.device}:${entry.inode}`, entry.fileKey);
      }
      this.#resumed = true;
    } catch (error) {
      this.#report("parse", error);
      await rename(this.#options.file, `${this.#options.file}.corrupt`).catch(() => undefined);
      // It held positions once: files without one are read from their beginning, not skipped to their end.
      this.#resumed = true;
    }
  }

  /**
   * One process per checkpoint file: two aggregators running a source of the same name with the same checkpointDir
   * (every worker of a cluster with one config) would each commit positions the other's sinks never had. A lock held
   * by a live process is waited for a while (a crashed collector's successor may start before it is reaped), then
   * refused; one left by a process that is gone is taken over. A lock that cannot be written is reported, and
   * collecting goes on without it.
   */
  async #lock(wait: boolean): Promise<boolean> {
    const { dir, file, source } = this.#options;
    const lockPath = `${file}.lock`;
    const until = this.#options.now() + LOCK_WAIT_MS;
    for (;;) {
      let holder;
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        // One held by an earlier store of this process is ours to take (a collector holds one per source; an
        // earlier one was left behind without close()).
        holder = takeLock(lockPath, (h) => h.pid === process.pid);
      } catch (error) {
        this.#report("lock", error);
        return true; // not lockable here: go on as before locks
      }
      if (holder === undefined) {
        this.#lockPath = lockPath;
        return true;
      }
      if (!wait || this.#options.now() >= until) {
        const error = new CheckpointError(
          `checkpoint file ${file} is in use by process ${holder.pid}: another aggregator runs a source named "${source}" with the same checkpointDir (give each process its own checkpointDir, or its sources their own names)${wait ? "" : "; this run's cursors are not saved"}`,
          { source },
        );
        if (wait) throw error;
        this.lastError = error;
        this.emit("error", error);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    }
  }

  /**
   * True once load() read a checkpoint file of this source (even one listing no files): the source ran before with
   * this directory, so a file without an entry appeared since and is new, whatever `startAt` says.
   */
  get resumed(): boolean {
    return this.#resumed;
  }

  #resumed = false;
  readonly #savedLastSeen = new Map<string, number>();

  /**
   * When the run that saved the loaded file last saw this file (its `lastSeen` as saved; load() restarts the clock of
   * every entry), or undefined for an entry that was not loaded.
   */
  savedLastSeen(fileKey: string): number | undefined {
    return this.#savedLastSeen.get(fileKey);
  }

  /** The committed cursor (a fresh copy of the JSON value), or undefined when none was committed. */
  get cursor(): unknown {
    return this.#cursor === undefined ? undefined : JSON.parse(this.#cursor);
  }

  /** Store `json` (a JSON text) as the cursor; written like a position (debounced, atomic). */
  setCursor(json: string): void {
    if (json === this.#cursor) return;
    this.#cursor = json;
    this.#stats.commits++;
    this.#markDirty();
  }

  get(fileKey: string): CheckpointEntry | undefined {
    return this.#entries.get(fileKey);
  }

  findByIdentity(device: string, inode: string): CheckpointEntry | undefined {
    const key = this.#byIdentity.get(`${device}:${inode}`);
    return key === undefined ? undefined : this.#entries.get(key);
  }

  entries(): CheckpointEntry[] {
    return [...this.#entries.values()].map((e) => ({ ...e }));
  }

  /**
   * Registers a file or updates its identity/path. An existing entry keeps its offset unless `offset` is given
   * (the tailer passes the start offset when it first opens a file). Any other entry with the same device+inode is
   * replaced: one inode holds one file at a time.
   */
  upsert(entry: Omit<CheckpointEntry, "offset" | "lastSeen"> & { offset?: number; lastSeen?: number }): void {
    const identity = `${entry.device}:${entry.inode}`;
    const previousKey = this.#byIdentity.get(identity);
    if (previousKey !== undefined && previousKey !== entry.fileKey) this.#entries.delete(previousKey);
    const existing = this.#entries.get(entry.fileKey);
    const next: CheckpointEntry = {
      fileKey: entry.fileKey,
      path: entry.path,
      device: entry.device,
      inode: entry.inode,
      fingerprint: entry.fingerprint,
      fingerprintBytes: entry.fingerprintBytes,
      ...(entry.born === undefined || entry.born === "0" ? {} : { born: entry.born }),
      offset: entry.offset ?? existing?.offset ?? 0,
      lastSeen: entry.lastSeen ?? this.#options.now(),
    };
    this.#entries.set(entry.fileKey, next);
    this.#byIdentity.set(identity, entry.fileKey);
    if (!sameEntry(existing, next)) this.#markDirty();
  }

  /**
   * Records that every line of `fileKey` ending at or before `offset` was acknowledged. Call it with a contiguous
   * watermark (the ack tracker's job). Lower offsets than the stored one are ignored; unknown keys (a file that was
   * deleted or truncated since) return false.
   */
  commit(fileKey: string, offset: number): boolean {
    const entry = this.#entries.get(fileKey);
    if (entry === undefined) return false;
    this.#stats.commits++;
    if (offset > entry.offset) {
      entry.offset = offset;
      this.#markDirty();
    }
    return true;
  }

  /** Marks files as still present so they are not forgotten. Does not by itself cause a write. */
  touch(fileKey: string): void {
    const entry = this.#entries.get(fileKey);
    if (entry !== undefined) entry.lastSeen = this.#options.now();
  }

  remove(fileKey: string): void {
    const entry = this.#entries.get(fileKey);
    if (entry === undefined) return;
    this.#entries.delete(fileKey);
    const identity = `${entry.device}:${entry.inode}`;
    if (this.#byIdentity.get(identity) === fileKey) this.#byIdentity.delete(identity);
    this.#markDirty();
  }

  /**
   * Writes now if anything changed. Resolves true when the state on disk is current, false when the write failed
   * (the error was reported; the state stays dirty and will be retried). Never rejects.
   */
  async flush(): Promise<boolean> {
    while (this.#writing !== undefined) await this.#writing;
    this.#forgetStale();
    this.#clearTimer();
    if (!this.#dirty) return true;
    this.#lastWriteAt = this.#options.now();
    this.#writing = this.#write();
    try {
      return await this.#writing;
    } finally {
      this.#writing = undefined;
    }
  }

  /** Final flush; no timers afterwards. Resolves like flush(). */
  async close(): Promise<boolean> {
    this.#closed = true;
    const flushed = await this.flush();
    if (this.#lockPath !== undefined) await unlink(this.#lockPath).catch(() => undefined);
    this.#lockPath = undefined;
    return flushed;
  }

  stats(): CheckpointStoreStats {
    return { entries: this.#entries.size, dirty: this.#dirty, ...this.#stats };
  }

  #markDirty(): void {
    this.#dirty = true;
    if (this.#timer === undefined && !this.#closed && this.#writing === undefined) {
      // Leading edge: after a quiet interval the first change is written at once, so a collector that dies soon after
      // it started has still saved its progress (else each short-lived incarnation replays from the same old point);
      // then at most one write per interval.
      this.#schedule(Math.max(0, this.#lastWriteAt + this.#interval() - this.#options.now()));
    }
  }

  /** When the last write started (clock of `options.now`), and how long its file was. */
  #lastWriteAt = Number.NEGATIVE_INFINITY;
  #lastBytes = 0;

  /**
   * The time between writes: `flushIntervalMs`, or longer for a large state. Every write is the whole file, fsynced:
   * with thousands of files tracked (half a megabyte) four writes a second are some 100 GB a day, for a few lines. So
   * the file is written at most WRITE_BUDGET bytes a second on average. 0 (every acknowledgement) is kept as asked.
   */
  #interval(): number {
    const ms = this.#options.flushIntervalMs;
    return ms === 0 ? 0 : Math.max(ms, Math.ceil((this.#lastBytes * 1000) / WRITE_BUDGET));
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delayMs);
    // A pending debounce must not keep a process alive; close() writes what is left.
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #forgetStale(): void {
    const cutoff = this.#options.now() - this.#options.forgetAfterMs;
    for (const entry of [...this.#entries.values()]) {
      if (entry.lastSeen < cutoff) {
        this.remove(entry.fileKey);
        this.#stats.forgotten++;
      }
    }
  }

  async #write(): Promise<boolean> {
    const { dir, file, source } = this.#options;
    if (this.#options.lock === "write" && this.#lockPath === undefined) {
      // Taken at the first write; refused once (another process's), it is not asked for again: nothing is written.
      this.#lockRefused ??= !(await this.#lock(false));
      if (this.#lockRefused) {
        this.#dirty = false;
        return false;
      }
    }
    // Snapshot first: commits that arrive during the write make the state dirty again and trigger another write.
    this.#dirty = false;
    const state: { version: number; source: string; files: CheckpointEntry[]; cursor?: unknown } = {
      version: FORMAT_VERSION,
      source,
      files: [...this.#entries.values()],
    };
    if (this.#cursor !== undefined) state.cursor = JSON.parse(this.#cursor);
    const body = JSON.stringify(state);
    this.#lastBytes = Buffer.byteLength(body);
    const tmp = `${file}.tmp`;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await unlink(tmp).catch(() => undefined);
      const handle = await open(tmp, "wx", 0o600);
      try {
        await handle.writeFile(body, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
      await syncDirectory(dir);
      this.#stats.writes++;
      this.#failures = 0;
      this.lastError = undefined;
      this.emit("write", { entries: this.#entries.size, file });
      if (this.#dirty && !this.#closed) this.#schedule(this.#interval());
      return true;
    } catch (error) {
      this.#dirty = true;
      this.#stats.writeErrors++;
      this.#failures++;
      await unlink(tmp).catch(() => undefined);
      this.#report("write", error);
      if (!this.#closed) {
        const delay = Math.min(MAX_RETRY_DELAY_MS, this.#options.flushIntervalMs * 2 ** Math.min(this.#failures, 16));
        this.#schedule(delay);
      }
      return false;
    }
  }

  #report(action: "read" | "parse" | "write" | "lock", cause: unknown): void {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const error = new CheckpointError(
      `Could not ${action} checkpoint file ${this.#options.file}${code === undefined ? "" : ` (${code})`}; collecting continues${action === "write" ? " and the write is retried" : action === "parse" ? ", and its files are read again from their beginning" : ""}`,
      { cause, source: this.#options.source },
    );
    this.lastError = error;
    this.emit("error", error);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename durable. Some file systems refuse fsync on a directory: the rename is still atomic there.
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw error;
  } finally {
    await handle?.close();
  }
}

function sameEntry(a: CheckpointEntry | undefined, b: CheckpointEntry): boolean {
  return (
    a !== undefined &&
    a.path === b.path &&
    a.offset === b.offset &&
    a.fingerprint === b.fingerprint &&
    a.fingerprintBytes === b.fingerprintBytes &&
    a.device === b.device &&
    a.inode === b.inode &&
    a.born === b.born
  );
}

function parseEntry(raw: unknown): CheckpointEntry | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const ok =
    typeof r.fileKey === "string" &&
    typeof r.path === "string" &&
    typeof r.device === "string" &&
    typeof r.inode === "string" &&
    typeof r.fingerprint === "string" &&
    Number.isSafeInteger(r.fingerprintBytes) &&
    Number.isSafeInteger(r.offset) &&
    (r.offset as number) >= 0;
  if (!ok) return undefined;
  return {
    fileKey: r.fileKey as string,
    path: r.path as string,
    device: r.device as string,
    inode: r.inode as string,
    fingerprint: r.fingerprint as string,
    fingerprintBytes: r.fingerprintBytes as number,
    ...(typeof r.born === "string" && /^[1-9]\d*$/.test(r.born) ? { born: r.born } : {}),
    offset: r.offset as number,
    lastSeen: typeof r.lastSeen === "number" ? r.lastSeen : 0,
  };
}

function resolveOptions(options: CheckpointStoreOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError(`Expected CheckpointStore options to be an object, got ${describe(options)}`);
  }
  if (typeof options.dir !== "string" || options.dir === "") {
    throw new InvalidOptionError(`Expected \`dir\` to be a non-empty string, got ${describe(options.dir)}`);
  }
  if (typeof options.source !== "string" || options.source === "") {
    throw new InvalidOptionError(`Expected \`source\` to be a non-empty string, got ${describe(options.source)}`);
  }
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 0 || flushIntervalMs > 3_600_000) {
    throw new InvalidOptionError(
      `Expected \`flushIntervalMs\` to be an integer between 0 and 3600000, got ${describe(options.flushIntervalMs)}`,
    );
  }
  const forgetAfterMs = options.forgetAfterMs ?? 86_400_000;
  if (typeof forgetAfterMs !== "number" || !(forgetAfterMs > 0)) {
    throw new InvalidOptionError(`Expected \`forgetAfterMs\` to be a positive number, got ${describe(options.forgetAfterMs)}`);
  }
  // encodeURIComponent keeps names like "nginx" readable and makes "/" or ".." harmless.
  let base = encodeURIComponent(options.source);
  if (base === "." || base === "..") base = base.replace(/\./g, "%2E");
  const dir = path.resolve(options.dir);
  return {
    dir,
    source: options.source,
    file: path.join(dir, `${base}.json`),
    flushIntervalMs,
    forgetAfterMs,
    now: options.now ?? Date.now,
    lock: options.lock ?? "load",
  };
}
