// FileTailer: follows the files matched by globs inside a collector child, across rotation and truncation, and
// hands out lines with exact byte offsets so that acknowledged positions can be checkpointed.
//
//   start()                                      one loop, no concurrent I/O on a file:
//     │  load checkpoints, initial scan          ┌─▶ scan globs (every globIntervalMs, or sooner on a hint)
//     ▼                                          │   poll open files: fstat → truncation / fingerprint / deleted;
//   loop ───────────────────────────────────────┤         stat(path) → renamed away (rotation)
//     ▲  sleep pollIntervalMs (fs.watch, resume, │   read round-robin, one chunk per file per turn, while
//     │  grant, stop wake it early)              │         not paused and credit remains → handler(lines)
//     │                                          │         (takes fewer? pause, and read the rest again later)
//     └──────────────────────────────────────────┴── housekeeping: partial-line timeout, close rotated at EOF
//
// Identity: device + inode while the file exists, plus a fingerprint of its first bytes (file-identity.ts). A
// renamed file keeps its identity, so a glob that also matches `app.log.1` never reads it twice; a fingerprint
// mismatch against a checkpoint means the inode was reused: the file starts at 0.
//
// Truncation (copytruncate): fstat size < read offset, or the leading bytes changed → restart at 0 under a new
// fileKey (late acks for the old content cannot move the new one's checkpoint). The pre-truncation fingerprint and
// position are remembered for a while: if the copy (`app.log.1`) is matched by the globs, it is recognized by its
// fingerprint and read from where the original stopped, so only lines written between the copy and the truncate
// that the tailer had not read are lost (the copytruncate window, inherent to that rotation method). A new file
// still too short to fingerprint (a copy caught being written) that starts like a live file waits until it can tell.
//
// Offsets: `offset` is a line's first byte, `end` the byte after its newline. Commit `end` values (a contiguous
// acknowledged watermark) through `commit(fileKey, end)`; only those reach the checkpoint file.
//
// A handler out of room (a collector out of credit) returns how many lines it took: the tailer pauses and moves the
// file's read position back to the first line not taken, as if the rest had never been read. It is read again
// after resume(), from the file (the page cache): its bytes are still there, and the open handle keeps a rotated or
// deleted file readable. Read buffers stay two reused ones, with nothing held across a pause.
//
// Usage inside a collector child (credits in lines/bytes from the host, acks back from the host):
//   const store = new CheckpointStore({ dir: checkpointDir, source: name });
//   const tailer = new FileTailer({ paths, startAt, checkpoints: store, credit: { lines: 0, bytes: 0 } },
//     (lines) => channel.write(lines));     // a returned promise holds the next read
//   tailer.on("problem", report).on("checkpointError", report);
//   await tailer.start();                   // initial scan done → say "ready"
//   onCredit: tailer.grant(lines, bytes)    onAck: tailer.commit(fileKey, end)    onStop: await tailer.stop()
import { constants } from "node:fs";
import { open, readdir, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { EventEmitter } from "eventemitter3";
import { type CheckpointError, InvalidOptionError, StateError } from "../../errors.js";
import type { CheckpointEntry, CheckpointStore } from "../checkpoint-store.js";
import { DirWatcher } from "./dir-watcher.js";
import { bornApart, bornOf, fingerprintOf, identityKey, prefixMatches, readPrefix, type Fingerprint } from "./file-identity.js";
import { globRegExp, scanGlobs, type GlobProblem } from "./glob.js";
import { LineAssembler, type AssembledLine } from "./line-assembler.js";
import { resolveTailerOptions, type FileTailerOptions, type ResolvedTailerOptions } from "./options.js";

import type { FileTailerEvents, FileTailerStats, OpenReason, TailFileInfo, TailHandler, TailLine, TailProblem } from "./types.js";

export type { FileTailerOptions } from "./options.js";
export type { FileTailerEvents, FileTailerStats, OpenReason, TailFileInfo, TailHandler, TailLine, TailProblem } from "./types.js";

interface TrackedFile {
  id: string;
  device: string;
  inode: string;
  fileKey: string;
  /** Path lines report (where the file was discovered). */
  path: string;
  /** A path known to lead to this file, or undefined once it was renamed away to somewhere unmatched. */
  currentPath: string | undefined;
  handle: FileHandle | undefined;
  assembler: LineAssembler;
  fingerprint: Fingerprint;
  /** Birth time (statx btime, ns, decimal; "0" where unknown): what tells this file from a later one on its inode. */
  born: string;
  /** The leading bytes the fingerprint covers: a copy too short to fingerprint yet is compared with them. */
  head: Buffer;
  lastSize: number;
  lastMtimeNs: bigint;
  /** Read returned 0 bytes since the last growth. */
  eof: boolean;
  lastDataAt: number;
  /** Polls in a row that found it unchanged, and when it is due next (idle files are polled less often). */
  idlePolls: number;
  nextPollAt: number;
  partialSince: number;
  rotated: boolean;
  deleted: boolean;
  committed: number;
  lastSeen: number;
}

interface Prefetch {
  file: TrackedFile;
  handle: FileHandle;
  position: number;
  buffer: Buffer;
  read: Promise<number>;
}

interface Retired {
  hash: string;
  /** Where its next line began: its copy is read from here. */
  offset: number;
  /** Its key, and how far the sinks had settled its lines: its copy goes on under that key, from there. */
  fileKey: string;
  committed: number;
  at: number;
  path: string;
  /** Where the truncated file ended, as far as its last size showed. */
  end: number;
  /** Bytes it held beyond what was read: lost unless its copy is found (see #sweepRetired); 0 once announced. */
  unread: number;
}

interface PendingCopy {
  path: string;
  /** Fingerprint of a possible copy; undefined while it is shorter than fingerprintBytes (see #discover). */
  hash: string | undefined;
  /** Its size when last looked at (a short one is looked at again when it changes). */
  size: number;
  since: number;
}

/** How far a new file that begins like a file being read is compared with it, to tell a copy from a file of its own. */
const COMPARE_BYTES = 64 * 1024;

/** How many chunks one file may read per cycle before the others (and rotation checks) get a turn. */
const MAX_CHUNKS_PER_FILE_PER_CYCLE = 16;
/** How long a truncated file's old fingerprint is remembered to recognize its copytruncate copy. */
const RETIRED_TTL_MS = 5 * 60_000;
const MAX_RETIRED = 32;
/** The head of a file that has no fingerprint (yet). */
const EMPTY = Buffer.alloc(0);
/** Polls of an unchanged file at the usual pace before they are spaced out, and the longest space between them. */
const IDLE_POLLS = 8;
const IDLE_POLL_MAX_MS = 2_000;
/** Closed files that no scan matched for this long are forgotten (the checkpoint store remembers longer). */
const FORGET_CLOSED_MS = 60 * 60_000;
/** Names looked at per directory for files renamed while the source was stopped (once, at start). */
const RENAME_LOOKUP_LIMIT = 10_000;
/**
 * A file whose checkpoint was touched this close to the newest one (plus a glob interval) was in use when the last run
 * stopped. Files read to their end and closed before that (an older rotation) are not announced when they are gone.
 */
const IN_USE_AT_STOP_MS = 10_000;

export class FileTailer extends EventEmitter<FileTailerEvents> {
  readonly #o: ResolvedTailerOptions;
  readonly #handler: TailHandler;
  readonly #store: CheckpointStore | undefined;
  /** identityKey → file. Insertion order = discovery order, so older (rotated) files are read first. */
  readonly #files = new Map<string, TrackedFile>();
  readonly #byKey = new Map<string, TrackedFile>();
  /** Held files found gone from their path (by #resolvePending), for the next scan to judge. */
  readonly #heldVanished = new Map<string, string>();
  /** Paths watch events named since the last pass (their files are polled then), or: poll every file. */
  #changedPaths = new Set<string>();
  #pollAll = false;
  readonly #pending = new Map<string, PendingCopy>();
  /**
   * During the first scan of a source resuming from its checkpoints: what the last run saved, and the entries a
   * copy found for them has taken (#copiedWhileStopped).
   */
  #saved: { entries: readonly CheckpointEntry[]; taken: Set<string> } | undefined;
  #retired: Retired[] = [];
  /** path → kind of the problem already reported for it (report once until it changes). */
  readonly #reported = new Map<string, TailProblem["kind"]>();
  /** Two read buffers: one being parsed while the next chunk is read into the other (see #readChunk). */
  readonly #buffer: Buffer;
  readonly #spare: Buffer;
  /** The next chunk of one file, read ahead while the current one was parsed. */
  #prefetch: Prefetch | undefined;
  readonly #watcher: DirWatcher | undefined;
  readonly #credit: { lines: number; bytes: number };
  readonly #stats: Omit<FileTailerStats, "filesOpen" | "filesTracked">;
  #state: "idle" | "running" | "stopping" | "stopped" = "idle";
  #paused = false;
  #loop: Promise<void> | undefined;
  #nextScanAt = 0;
  #scanRequested = false;
  #woken = false;
  #wake: (() => void) | undefined;
  #sleepTimer: NodeJS.Timeout | undefined;
  #keySeq = 0;
  readonly #onStoreError = (error: CheckpointError): void => {
    this.emit("checkpointError", error);
  };

  constructor(options: FileTailerOptions, handler: TailHandler) {
    super();
    this.#o = resolveTailerOptions(options);
    if (typeof handler !== "function") {
      throw new InvalidOptionError("Expected the FileTailer handler to be a function");
    }
    this.#handler = handler;
    this.#store = this.#o.checkpoints;
    this.#buffer = Buffer.allocUnsafe(this.#o.readChunkBytes);
    this.#spare = Buffer.allocUnsafe(this.#o.readChunkBytes);
    this.#credit = { ...this.#o.credit };
    this.#watcher = this.#o.watch ? new DirWatcher((eventType, changedPath) => this.#hint(eventType, changedPath)) : undefined;
    this.#stats = {
      cycles: 0, filePolls: 0, scans: 0, opened: 0, closed: 0, rotations: 0, truncations: 0, deletions: 0, fingerprintMismatches: 0,
      copytruncateCopies: 0, resumedFromCheckpoint: 0, linesEmitted: 0, bytesRead: 0, linesTruncated: 0, linesSplit: 0,
      partialLinesEmitted: 0, partialLinesDiscarded: 0, partialBytesDiscarded: 0, truncatedUnreadBytes: 0, heldFilesGone: 0, invalidUtf8Lines: 0, notRegularSkipped: 0,
      accessDenied: 0, symlinkLoops: 0, ioErrors: 0, handlerErrors: 0, renamedWhileStopped: 0, goneWhileStopped: 0,
    };
  }

  /**
   * Loads checkpoints, opens the files the globs match now (at their checkpoint, else per `startAt`) and starts
   * following. Resolves once the initial scan is done (a good moment for the collector to say "ready").
   */
  async start(): Promise<void> {
    if (this.#state !== "idle") {
      throw new StateError("ERR_INVALID_STATE", `FileTailer.start() called while ${this.#state}`);
    }
    this.#state = "running";
    // Whether birth times are real here (see bornOf): the directories the tailer works in were changed after they
    // were made.
    for (const dir of [this.#o.cwd, this.#store === undefined ? undefined : path.dirname(this.#store.file)]) {
      if (dir === undefined) continue;
      try {
        bornOf(await stat(dir, { bigint: true }));
      } catch {
        // not there (yet): the files' own times tell later
      }
    }
    if (this.#store !== undefined) {
      this.#store.on("error", this.#onStoreError);
      await this.#store.load();
    }
    await this.#scan(true);
    this.#nextScanAt = Date.now() + this.#o.globIntervalMs;
    this.#loop = this.#run();
  }

  /**
   * Stops reading, closes every descriptor and flushes checkpoints. Complete lines are handed out as they are
   * read, so none is left behind (lines the handler did not take count as unread); an unterminated last line is not
   * emitted (on restart it is re-read from the checkpoint, by then perhaps complete). Resolves true when checkpoints
   * are on disk (or there is no store).
   */
  async stop(): Promise<boolean> {
    if (this.#state === "stopped") return true;
    const wasRunning = this.#state === "running";
    this.#state = "stopping";
    this.#wakeUp();
    if (wasRunning) await this.#loop;
    await this.#dropPrefetch();
    for (const file of this.#files.values()) await this.#closeHandle(file, "stopped");
    this.#watcher?.close();
    this.#state = "stopped";
    if (this.#store === undefined) return true;
    const ok = await this.#store.flush();
    this.#store.off("error", this.#onStoreError);
    return ok;
  }

  /**
   * No reads start while paused (a read in flight completes); stat polling and rescans go on. A handler that takes
   * fewer lines than it was given pauses the tailer too.
   */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#wakeUp();
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * The file of `fileKey` has been read to its end as its last poll found it, and the handler took every line: until
   * it grows, nothing more of it is coming. False while it has bytes to read: it grew, a read of it is under way or
   * due, or a handler out of room left lines to read again after resume(). True for a key no longer read (the file
   * closed, or truncated under a new key).
   */
  readToEnd(fileKey: string): boolean {
    const file = this.#byKey.get(fileKey);
    return file === undefined || file.handle === undefined || file.eof;
  }

  /**
   * Adds flow-control credit (see the `credit` option). Reading stops when either count reaches 0; the last read
   * may overshoot by the lines of one chunk. Without the `credit` option credit is unlimited and this is a no-op.
   */
  grant(lines: number, bytes: number): void {
    if (!(lines >= 0) || !(bytes >= 0)) {
      throw new InvalidOptionError(`Expected grant(lines, bytes) to be non-negative, got ${lines}, ${bytes}`);
    }
    this.#credit.lines += lines;
    this.#credit.bytes += bytes;
    this.#wakeUp();
  }

  /** Remaining credit. */
  get credit(): { lines: number; bytes: number } {
    return { ...this.#credit };
  }

  /**
   * Records that every line of `fileKey` with `end ≤ endOffset` was acknowledged. Persisted (debounced) by the
   * checkpoint store. Returns false for an unknown key (the file was deleted or truncated since: nothing to keep).
   */
  commit(fileKey: string, endOffset: number): boolean {
    const file = this.#byKey.get(fileKey);
    if (file !== undefined && endOffset > file.committed) file.committed = endOffset;
    if (file === undefined) {
      // Lines of a truncated file whose copy is not found yet: its copy starts from here (see #truncated).
      for (const r of this.#retired) if (r.fileKey === fileKey && endOffset > r.committed) r.committed = endOffset;
    }
    return this.#store?.commit(fileKey, endOffset) ?? file !== undefined;
  }

  /** Writes pending checkpoints now. */
  async flush(): Promise<boolean> {
    return this.#store?.flush() ?? true;
  }

  stats(): FileTailerStats {
    let open = 0;
    for (const file of this.#files.values()) if (file.handle !== undefined) open++;
    return { filesOpen: open, filesTracked: this.#files.size, ...this.#stats };
  }

  files(): TailFileInfo[] {
    return [...this.#files.values()].map((f) => ({
      fileKey: f.fileKey,
      path: f.path,
      device: f.device,
      inode: f.inode,
      open: f.handle !== undefined,
      position: f.assembler.position,
      lineStart: f.assembler.lineStart,
      heldBytes: f.assembler.heldBytes,
      committed: f.committed,
      rotated: f.rotated,
      deleted: f.deleted,
    }));
  }

  // ── loop ────────────────────────────────────────────────────────────────────────────────────────────────────

  async #run(): Promise<void> {
    while (this.#state === "running") {
      this.#woken = false;
      let more = false;
      try {
        more = await this.#cycle();
      } catch (error) {
        // Per-file errors are handled where they happen; this is a last line of defence so the loop never dies.
        this.#problem({ kind: "io", error });
      }
      if (this.#state !== "running") break;
      if (more && this.#canRead()) {
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else if (!this.#woken) {
        await this.#sleep(this.#o.pollIntervalMs);
      }
    }
  }

  /** One pass. Returns true when a file still has unread bytes and reading was cut short to share the loop. */
  async #cycle(): Promise<boolean> {
    const now = Date.now();
    if (this.#scanRequested || now >= this.#nextScanAt) {
      this.#scanRequested = false;
      this.#nextScanAt = now + this.#o.globIntervalMs;
      await this.#scan(false);
    }
    await this.#resolvePending();
    // An open file is polled every pollIntervalMs while it changes, and less often once it has not for a while (up to
    // IDLE_POLL_MAX_MS): thousands of idle files would otherwise cost a core in fstat calls. A watch event that names
    // it (or names nothing) makes it due at once.
    const changed = this.#changedPaths;
    const all = this.#pollAll;
    this.#changedPaths = new Set();
    this.#pollAll = false;
    for (const file of [...this.#files.values()]) {
      if (file.handle === undefined || this.#state !== "running") continue;
      if (all || now >= file.nextPollAt || (file.currentPath !== undefined && changed.has(file.currentPath)) || changed.has(file.path)) {
        await this.#poll(file);
      }
    }
    const more = await this.#readAll();
    await this.#housekeeping();
    this.#stats.cycles++;
    return more;
  }

  #canRead(): boolean {
    return this.#state === "running" && !this.#paused && this.#credit.lines > 0 && this.#credit.bytes > 0;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
    });
  }

  #wakeUp(): void {
    this.#woken = true;
    if (this.#sleepTimer !== undefined) clearTimeout(this.#sleepTimer);
    this.#sleepTimer = undefined;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #hint(eventType: string, changedPath: string | undefined): void {
    // "change": a file grew, a poll suffices. "rename": an entry appeared, vanished or moved: rescan now, so new
    // files and rotations show up promptly (a rescan per write would be wasteful under load).
    if (eventType === "rename") this.#scanRequested = true;
    // The file it names is polled at the next pass whatever its idle backoff; one that names nothing, every file.
    if (changedPath === undefined) this.#pollAll = true;
    else if (this.#changedPaths.size < 100_000) this.#changedPaths.add(changedPath);
    else this.#pollAll = true;
    this.#wakeUp();
  }

  // ── discovery ───────────────────────────────────────────────────────────────────────────────────────────────

  async #scan(initial: boolean): Promise<void> {
    const now = Date.now();
    // What the last run saved, before discovery replaces an entry whose inode now holds another file.
    const saved = initial && this.#store?.resumed === true ? this.#store.entries() : undefined;
    this.#saved = saved === undefined ? undefined : { entries: saved, taken: new Set() };
    this.#stats.scans++;
    const seenPaths = new Set<string>();
    // A path the glob walk itself reports (a looping or unreadable directory) is never among the matches: keep it as
    // seen, or the pruning below would forget it and count the same problem again at every rescan.
    const paths = await scanGlobs(this.#o.patterns, this.#o.cwd, (p) => {
      if (p.path !== undefined) seenPaths.add(p.path);
      this.#globProblem(p);
    });
    const pathOwner = new Map<string, string>();
    for (const p of paths) {
      if (this.#excluded(p)) continue;
      seenPaths.add(p);
      let s;
      try {
        s = await stat(p, { bigint: true });
      } catch (error) {
        this.#fsProblem(p, error);
        continue;
      }
      if (!s.isFile()) {
        this.#problem({ kind: "not-regular", path: p });
        continue;
      }
      const id = identityKey(s.dev, s.ino);
      pathOwner.set(p, id);
      let known = this.#files.get(id);
      if (known !== undefined && known.handle === undefined && bornApart(known.born, bornOf(s))) {
        // The closed file this inode was is gone (deleted), and a new file has its inode: forget the old one, and
        // read the new one as new, not from the old one's position.
        known.deleted = true;
        this.#forget(known);
        known = undefined;
      }
      if (known !== undefined) {
        known.lastSeen = now;
        this.#store?.touch(known.fileKey);
        if (known.currentPath !== p && !(known.currentPath !== undefined && (await this.#leadsTo(known.currentPath, id)))) {
          // Renamed to another matched name (app.log → app.log.1): same identity, so it is not read again.
          known.currentPath = p;
          this.#markRotated(known, p);
          this.#upsertStore(known);
        }
        if (known.handle === undefined && !known.deleted && (Number(s.size) !== known.assembler.position || s.mtimeNs !== known.lastMtimeNs)) {
          await this.#reopen(known, p);
        }
        continue;
      }
      if (this.#pending.has(id)) continue;
      await this.#discover(p, initial);
    }
    // Closed files whose path now leads elsewhere are no longer at that path.
    for (const file of [...this.#files.values()]) {
      if (file.handle !== undefined) continue;
      if (file.currentPath !== undefined && pathOwner.get(file.currentPath) !== file.id) {
        const former = file.currentPath;
        file.currentPath = undefined;
        if (!file.deleted) await this.#followClosedRename(file, former);
      }
      if (file.currentPath === undefined && file.handle === undefined && now - file.lastSeen > FORGET_CLOSED_MS) this.#forget(file);
    }
    // Files held as possible copies that left their path: one no matched path leads to now was never read.
    for (const [id, p] of this.#heldVanished) {
      if (this.#files.has(id) || this.#pending.has(id)) continue;
      this.#stats.heldFilesGone++;
      this.#problem({ kind: "held-gone", path: p });
    }
    this.#heldVanished.clear();
    if (saved !== undefined) await this.#findRenamedWhileStopped(saved.filter((e) => !this.#saved!.taken.has(e.fileKey)));
    this.#saved = undefined;
    for (const p of [...this.#reported.keys()]) if (!seenPaths.has(p)) this.#reported.delete(p);
    this.#syncWatcher();
  }

  /**
   * Files the last run was reading that the globs no longer find: renamed while the source was stopped (logrotate
   * moved app.log to app.log.1, and the pattern is app.log). Each is looked for by identity in the directory it was
   * in. Found, with the same first bytes and more than was read, its rest is read, as it would have been had the
   * rename come while the source ran. Not there (compressed, deleted, moved away), that is announced, if the file was
   * in use when the last run stopped: what was written to it after the saved position was not read.
   */
  async #findRenamedWhileStopped(entries: readonly CheckpointEntry[]): Promise<void> {
    const store = this.#store!;
    const seen = (e: CheckpointEntry): number => store.savedLastSeen(e.fileKey) ?? e.lastSeen;
    let newest = 0;
    for (const e of entries) newest = Math.max(newest, seen(e));
    // Still in use when the last run stopped (seen in its last scans), and gone now. Said once: its entry goes, so a
    // quick restart (a collector's, after a crash) does not say it again.
    const gone = (e: CheckpointEntry, how: string): void => {
      store.remove(e.fileKey);
      if (newest - seen(e) > IN_USE_AT_STOP_MS + this.#o.globIntervalMs) return;
      this.#stats.goneWhileStopped++;
      this.#problem({ kind: "gone-while-stopped", path: e.path, error: how });
    };
    const byDir = new Map<string, Map<string, CheckpointEntry>>();
    for (const e of entries) {
      // Only the names the paths still ask for: a file the user no longer tails is none of our business.
      if (!this.#matchesPaths(e.path) || this.#excluded(e.path)) continue;
      const id = identityKey(e.device, e.inode);
      const tracked = this.#files.get(id);
      if (tracked !== undefined) {
        // Resumed; or truncated (counted as such); or too short to tell a truncation from new content.
        if (tracked.fileKey === e.fileKey || (tracked.head.length < e.fingerprintBytes && !bornApart(e.born, tracked.born))) continue;
        if (bornApart(e.born, tracked.born) || !prefixMatches(tracked.head, { bytes: e.fingerprintBytes, hash: e.fingerprint })) {
          gone(e, `it holds other content now, truncated and rewritten or a new file on its inode (the old content was read up to byte ${e.offset})`);
        }
        continue;
      }
      if (this.#pending.has(id)) continue;
      const dir = path.dirname(e.path);
      let ids = byDir.get(dir);
      if (ids === undefined) byDir.set(dir, (ids = new Map()));
      const other = ids.get(id);
      if (other === undefined || seen(other) < seen(e)) ids.set(id, e);
    }
    for (const [dir, wanted] of byDir) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        // The directory is gone: so are its files. Unreadable for now: say nothing, keep the positions for later.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") continue;
        names = [];
      }
      for (let i = 0; i < names.length && i < RENAME_LOOKUP_LIMIT && wanted.size > 0; i++) {
        const q = path.join(dir, names[i]!);
        let s;
        try {
          s = await stat(q, { bigint: true });
        } catch {
          continue;
        }
        const id = identityKey(s.dev, s.ino);
        const e = wanted.get(id);
        if (e === undefined || !s.isFile()) continue;
        wanted.delete(id);
        // At its own name it did not move (and the scan would have found it); nothing new, or other content: leave it.
        if (q === e.path || Number(s.size) <= e.offset || this.#excluded(q) || !(await this.#holds(q, e))) continue;
        await this.#discover(q, true, true);
        const file = this.#files.get(id);
        if (file === undefined) continue;
        // Its lines keep the name they were written under, as a file renamed while running does.
        file.path = e.path;
        file.currentPath = undefined;
        // Saved under that name too (#discover saved the new one): a run stopped again before this file's end would
        // otherwise find an entry the paths do not match, and leave its rest unread without a word.
        this.#upsertStore(file);
        this.#markRotated(file, q);
        this.#stats.renamedWhileStopped++;
        this.#problem({ kind: "renamed-while-stopped", path: e.path, error: `${q}, from byte ${e.offset}` });
      }
      for (const e of wanted.values()) {
        gone(e, `it was renamed or removed and is not in its directory any more (it was read up to byte ${e.offset}; paths that match the rotated names too, such as app.log*, would have read the rest)`);
      }
    }
  }

  /**
   * A new file found at a resuming source's first scan that begins like a file the last run was reading, at the same
   * path still under that file's identity but truncated since (copytruncate while the source was stopped): the last
   * run's entry, for the copy to be read from its offset instead of again from 0. Each entry is taken once.
   */
  async #copiedWhileStopped(fingerprint: Fingerprint, size: number): Promise<CheckpointEntry | undefined> {
    const saved = this.#saved;
    if (saved === undefined || fingerprint.bytes !== this.#o.fingerprintBytes) return undefined;
    for (const e of saved.entries) {
      if (saved.taken.has(e.fileKey) || e.fingerprintBytes !== fingerprint.bytes || e.fingerprint !== fingerprint.hash || e.offset > size) continue;
      let s;
      try {
        s = await stat(e.path, { bigint: true });
      } catch {
        continue; // gone: not a copytruncate (its rename, if any, is #findRenamedWhileStopped's)
      }
      if (identityKey(s.dev, s.ino) !== identityKey(e.device, e.inode) || bornApart(e.born, bornOf(s))) continue;
      // Still the original's identity: truncated since (shorter than what was read, or other first bytes)?
      if (Number(s.size) >= e.offset && (await this.#holds(e.path, e))) continue;
      saved.taken.add(e.fileKey);
      return e;
    }
    return undefined;
  }

  /** Whether `p` begins with the bytes `e` was fingerprinted by. */
  async #holds(p: string, e: CheckpointEntry): Promise<boolean> {
    const handle = await this.#openRegular(p);
    if (handle === undefined) return false;
    try {
      return prefixMatches(await readPrefix(handle, e.fingerprintBytes), { bytes: e.fingerprintBytes, hash: e.fingerprint });
    } catch {
      return false;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async #leadsTo(p: string, id: string): Promise<boolean> {
    try {
      const s = await stat(p, { bigint: true });
      return identityKey(s.dev, s.ino) === id;
    } catch {
      return false;
    }
  }

  /**
   * Opens a file not tracked yet and decides where to start reading. `since`: when it was first found (a possible
   * copy looked at again keeps waiting from then).
   */
  async #discover(p: string, initial: boolean, skipCopyCheck = false, since = Date.now()): Promise<void> {
    const handle = await this.#openRegular(p);
    if (handle === undefined) return;
    let keep = false;
    try {
      const s = await handle.stat({ bigint: true });
      const id = identityKey(s.dev, s.ino);
      // Between the scan's stat and open() the path may have been replaced by an already tracked file.
      if (this.#files.has(id)) return;
      const size = Number(s.size);
      const n = this.#o.fingerprintBytes;
      const prefix = await readPrefix(handle, n);
      const fingerprint = fingerprintOf(prefix, n);
      const device = String(s.dev);
      const inode = String(s.ino);
      let offset: number;
      let reason: OpenReason;
      let fileKey: string | undefined;
      /** The checkpoint to save: where reading starts, but for a copytruncate copy, what its original had settled. */
      let committed: number | undefined;
      const born = bornOf(s);
      const entry = this.#store?.findByIdentity(device, inode);
      // Born after the file the entry saved: a new file on a reused inode, whatever its first bytes (a shared banner).
      const reborn = entry !== undefined && bornApart(entry.born, born);
      const sameContent = entry !== undefined && !reborn && prefixMatches(prefix, { bytes: entry.fingerprintBytes, hash: entry.fingerprint });
      // Shorter than what was fingerprinted: truncated (or replaced by a shorter file; either way start at 0).
      const shrunk = entry !== undefined && !reborn && prefix.length < entry.fingerprintBytes;
      if (entry !== undefined && (sameContent || shrunk)) {
        if (sameContent && entry.offset <= size) {
          offset = entry.offset;
          reason = "checkpoint";
          fileKey = entry.fileKey;
          this.#stats.resumedFromCheckpoint++;
        } else {
          // Truncated while we were not running.
          offset = 0;
          reason = "checkpoint-truncated";
          this.#stats.truncations++;
        }
      } else if (entry !== undefined) {
        // Same device+inode, different content: the inode was reused by a new file.
        offset = 0;
        reason = "fingerprint-mismatch";
        this.#stats.fingerprintMismatches++;
      } else {
        const copy = skipCopyCheck || fingerprint.bytes < n ? undefined : this.#takeRetired(fingerprint.hash);
        const copiedWhileStopped = copy === undefined && !skipCopyCheck && initial ? await this.#copiedWhileStopped(fingerprint, size) : undefined;
        if (copiedWhileStopped !== undefined) {
          // The copy of a file truncated while the source was stopped (copytruncate): read from where the original was.
          offset = copiedWhileStopped.offset;
          reason = "copytruncate-copy";
          this.#stats.copytruncateCopies++;
        } else if (copy !== undefined) {
          // The original's lines go on in the copy at the same offsets: under its key, so the settling of those read
          // before the truncation moves the copy's checkpoint, which starts where the original's was.
          offset = Math.min(copy.offset, size);
          fileKey = copy.fileKey;
          committed = Math.min(copy.committed, offset);
          // What the original held past the copy (written between the copy and the truncate) is lost all the same.
          if (copy.unread > 0) this.#lostUnread({ path: copy.path, unread: Math.max(0, copy.end - size) });
          reason = "copytruncate-copy";
          this.#stats.copytruncateCopies++;
        } else if (
          !skipCopyCheck &&
          fingerprint.bytes === n &&
          this.#liveWithFingerprint(fingerprint.hash) &&
          !(await this.#differsFromLive(handle, fingerprint.hash, size))
        ) {
          // Looks like a copy of a file we are reading that has not been truncated (yet). Decide once the
          // original is truncated (copytruncate) or after copyDecisionMs (a distinct file with the same start).
          this.#pending.set(id, { path: p, hash: fingerprint.hash, size, since });
          return;
        } else if (!skipCopyCheck && !initial && fingerprint.bytes < n && this.#liveStartingWith(prefix)) {
          // Copytruncate creates the copy empty and then fills it: caught early, it is too short to be recognized,
          // and read from 0 it would deliver the whole original again. Look again once it has grown.
          this.#pending.set(id, { path: p, hash: undefined, size, since });
          return;
        } else if (initial && this.#store?.resumed !== true) {
          // startAt is for a source's first start. A source resuming from its checkpoints (a host restart, or this
          // collector restarted after a crash) has no position for this file because it appeared since: read it
          // all, as a file that appears while running is (a rotation during the restart's backoff, for example).
          offset = this.#o.startAt === "end" ? size : 0;
          reason = this.#o.startAt === "end" ? "start-end" : "start-beginning";
        } else {
          offset = 0;
          reason = "new-file";
        }
      }
      const now = Date.now();
      const file: TrackedFile = {
        id,
        device,
        inode,
        fileKey: fileKey ?? this.#newKey(id),
        path: p,
        currentPath: p,
        handle,
        assembler: new LineAssembler(this.#o.maxLineBytes, this.#o.overlong, offset, this.#o.lazyText),
        fingerprint,
        born,
        head: prefix,
        lastSize: size,
        lastMtimeNs: s.mtimeNs,
        eof: offset >= size,
        lastDataAt: now,
        idlePolls: 0,
        nextPollAt: 0,
        partialSince: now,
        rotated: false,
        deleted: false,
        committed: committed ?? offset,
        lastSeen: now,
      };
      this.#files.set(id, file);
      this.#byKey.set(file.fileKey, file);
      this.#upsertStore(file, file.committed);
      keep = true;
      this.#stats.opened++;
      this.emit("open", { path: p, fileKey: file.fileKey, offset, reason });
    } catch (error) {
      this.#fsProblem(p, error);
    } finally {
      if (!keep) await handle.close().catch(() => undefined);
    }
  }

  /** Reopens a closed file that a scan found changed; verifies it is still the same content. */
  async #reopen(file: TrackedFile, p: string): Promise<void> {
    const handle = await this.#openRegular(p);
    if (handle === undefined) return;
    try {
      const s = await handle.stat({ bigint: true });
      if (identityKey(s.dev, s.ino) !== file.id || bornApart(file.born, bornOf(s))) {
        await handle.close();
        return;
      }
      file.handle = handle;
      file.eof = false;
      file.lastDataAt = Date.now();
      file.lastSize = -1; // forces the fingerprint check in poll()
      this.#stats.opened++;
      this.emit("open", { path: p, fileKey: file.fileKey, offset: file.assembler.position, reason: "reopen" });
    } catch (error) {
      await handle.close().catch(() => undefined);
      this.#fsProblem(p, error);
    }
  }

  /**
   * A file closed for inactivity whose name now leads elsewhere, to a name the paths do not match (logrotate's
   * `create` renamed it app.log.1 and made a new app.log): a writer that has not reopened yet still appends to it.
   * Found in its directory by identity, it is opened there and read to its end, then closed after rotateWaitMs, as
   * an open file renamed is. Not found (deleted, compressed, moved out): what was appended since it closed is lost,
   * as it is for Filebeat's `close_inactive`.
   */
  async #followClosedRename(file: TrackedFile, former: string): Promise<void> {
    const dir = path.dirname(former);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (let i = 0; i < names.length && i < RENAME_LOOKUP_LIMIT; i++) {
      const q = path.join(dir, names[i]!);
      if (q === former) continue;
      let s;
      try {
        s = await stat(q, { bigint: true });
      } catch {
        continue;
      }
      if (identityKey(s.dev, s.ino) !== file.id || !s.isFile() || bornApart(file.born, bornOf(s))) continue;
      if (this.#excluded(q)) return;
      await this.#reopen(file, q);
      if (file.handle !== undefined) this.#markRotated(file, q);
      return;
    }
  }

  /** open() that never blocks on a FIFO and never keeps a descriptor to anything but a regular file. */
  async #openRegular(p: string): Promise<FileHandle | undefined> {
    let handle: FileHandle;
    try {
      // O_NONBLOCK: if a FIFO slipped in between stat and open, open() must not wait for a writer.
      handle = await open(p, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      this.#fsProblem(p, error);
      return undefined;
    }
    try {
      const s = await handle.stat();
      if (!s.isFile()) {
        await handle.close();
        this.#problem({ kind: "not-regular", path: p });
        return undefined;
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      this.#fsProblem(p, error);
      return undefined;
    }
    this.#reported.delete(p);
    return handle;
  }

  async #resolvePending(): Promise<void> {
    if (this.#pending.size === 0) return;
    const now = Date.now();
    for (const [id, pending] of [...this.#pending]) {
      const expired = now - pending.since >= this.#o.copyDecisionMs;
      if (pending.hash === undefined) {
        if (!expired && !(await this.#changedSize(pending))) continue;
        this.#pending.delete(id);
        await this.#discover(pending.path, false, expired, pending.since);
        continue;
      }
      if (!(await this.#leadsTo(pending.path, id))) {
        // Deleted, or renamed away, while held: the next scan tells (a matched new name is read from there).
        this.#pending.delete(id);
        this.#heldVanished.set(id, pending.path);
        this.#scanRequested = true;
        continue;
      }
      const retired = this.#retired.some((r) => r.hash === pending.hash);
      if (!retired && !expired && this.#liveWithFingerprint(pending.hash)) continue;
      this.#pending.delete(id);
      // The original was truncated → read the copy from where the original stopped; otherwise it is a distinct
      // file that happens to start like another one (or the original vanished): read it from the start.
      await this.#discover(pending.path, false, !retired);
    }
  }

  /** True also when the path is gone or unreadable: discovering it again sorts that out. */
  async #changedSize(pending: PendingCopy): Promise<boolean> {
    try {
      return Number((await stat(pending.path)).size) !== pending.size;
    } catch {
      return true;
    }
  }

  /** Is `prefix` (shorter than fingerprintBytes, possibly empty) how a fingerprinted live file starts? */
  #liveStartingWith(prefix: Buffer): boolean {
    for (const file of this.#files.values()) {
      if (file.fingerprint.bytes !== this.#o.fingerprintBytes || file.deleted) continue;
      if (file.head.subarray(0, prefix.length).equals(prefix)) return true;
    }
    return false;
  }

  /**
   * Whether a new file that begins like a file being read (the same first fingerprintBytes) differs from it further
   * on, within the first COMPARE_BYTES: then it is a file of its own (a CSV header, a JVM's flags, a banner in front
   * of other lines), read at once, not held for copyDecisionMs as a possible copy, where a deletion in that window
   * would leave it unread. A copy holds the original's bytes.
   */
  async #differsFromLive(handle: FileHandle, hash: string, size: number): Promise<boolean> {
    // A copy of any of them (several files may share a header) is held: it must differ from every one.
    for (const file of [...this.#files.values()]) {
      if (file.deleted || file.fingerprint.hash !== hash || file.fingerprint.bytes !== this.#o.fingerprintBytes) continue;
      // A closed one (idle, or rotated away) is looked at through its path. Not there any more, it is not the original
      // of a copy: copytruncate leaves the original where it was.
      let theirHandle = file.handle;
      let opened: FileHandle | undefined;
      try {
        if (theirHandle === undefined) {
          if (file.currentPath === undefined) continue;
          try {
            opened = await open(file.currentPath, constants.O_RDONLY | constants.O_NONBLOCK);
            const s = await opened.stat({ bigint: true });
            if (identityKey(s.dev, s.ino) !== file.id || bornApart(file.born, bornOf(s))) continue;
          } catch {
            continue;
          }
          theirHandle = opened;
        }
        // Shorter than what was read from it: truncated since (not noticed yet), so its bytes now are not the ones
        // a copy would hold. Held, to be matched once the truncation is seen.
        const now = Number((await theirHandle.stat()).size);
        const len = Math.min(size, now, COMPARE_BYTES);
        if (now < file.assembler.position || len <= this.#o.fingerprintBytes) return false;
        const [mine, theirs] = await Promise.all([readPrefix(handle, len), readPrefix(theirHandle, len)]);
        if (mine.length < len || theirs.length < len || mine.equals(theirs)) return false;
      } catch {
        return false;
      } finally {
        await opened?.close().catch(() => undefined);
      }
    }
    return true;
  }

  #liveWithFingerprint(hash: string): boolean {
    for (const file of this.#files.values()) {
      if (file.fingerprint.bytes === this.#o.fingerprintBytes && file.fingerprint.hash === hash && !file.deleted) return true;
    }
    return false;
  }

  /**
   * Truncated files whose copy was not found within copyDecisionMs (a copytruncate whose copy the paths do not
   * match, or a plain truncation): what they held unread is lost, counted and announced once. They stay remembered
   * (a copy found later is still read from where the original stopped) until RETIRED_TTL_MS.
   */
  #sweepRetired(now: number): void {
    for (const r of this.#retired) {
      if (r.unread > 0 && now - r.at >= this.#o.copyDecisionMs) {
        this.#lostUnread(r);
        r.unread = 0;
      }
    }
  }

  #lostUnread(r: { path: string; unread: number }): void {
    if (r.unread <= 0) return;
    this.#stats.truncatedUnreadBytes += r.unread;
    this.emit("truncatedUnread", { path: r.path, bytes: r.unread });
  }

  #takeRetired(hash: string): Retired | undefined {
    const now = Date.now();
    // The copy is looked for before this pass sweeps. (A copy found only after copyDecisionMs, when the sweep of an
    // earlier pass has announced its original's unread bytes as lost, is still read from where the original was:
    // copytruncate makes the copy before it truncates, so that takes a copy made by hand, long after.)
    const index = this.#retired.findIndex((r) => r.hash === hash && now - r.at < RETIRED_TTL_MS);
    const found = index === -1 ? undefined : this.#retired.splice(index, 1)[0];
    this.#sweepRetired(now);
    this.#retired = this.#retired.filter((r) => now - r.at < RETIRED_TTL_MS);
    return found;
  }

  // ── polling ─────────────────────────────────────────────────────────────────────────────────────────────────

  async #poll(file: TrackedFile): Promise<void> {
    const handle = file.handle!;
    let s;
    try {
      s = await handle.stat({ bigint: true });
    } catch (error) {
      this.#fsProblem(file.path, error);
      await this.#closeHandle(file, "error");
      return;
    }
    const size = Number(s.size);
    this.#store?.touch(file.fileKey);
    this.#stats.filePolls++;
    if (size !== file.lastSize || s.mtimeNs !== file.lastMtimeNs || size > file.assembler.position) {
      file.idlePolls = 0;
      file.nextPollAt = 0;
    } else {
      file.idlePolls++;
      // The first IDLE_POLLS polls at the usual pace, then twice the wait each time, up to IDLE_POLL_MAX_MS.
      const extra = file.idlePolls - IDLE_POLLS;
      if (extra > 0) file.nextPollAt = Date.now() + Math.min(this.#o.pollIntervalMs * 2 ** Math.min(extra, 16), Math.max(IDLE_POLL_MAX_MS, this.#o.pollIntervalMs));
    }
    if (size < file.assembler.position) {
      this.#truncated(file, size);
      // What it holds now is known by its first bytes at once: a fingerprint left empty until the file next changed
      // would match nothing at a restart, and its committed lines would be read again.
      if (size > 0) await this.#checkFingerprint(file, handle, size);
    } else if (size !== file.lastSize || s.mtimeNs !== file.lastMtimeNs) {
      await this.#checkFingerprint(file, handle, size);
    }
    file.lastSize = size;
    file.lastMtimeNs = s.mtimeNs;
    if (size > file.assembler.position) file.eof = false;

    if (!file.deleted && s.nlink === 0n) {
      this.#markDeleted(file);
      return;
    }
    const formerPath = file.currentPath;
    if (formerPath !== undefined && !(await this.#leadsTo(formerPath, file.id))) {
      // Deleted between the fstat above and that look: a deletion, not a rotation (a rotated file is kept, and
      // tracked, for an hour).
      try {
        if ((await handle.stat({ bigint: true })).nlink === 0n) {
          this.#markDeleted(file);
          return;
        }
      } catch {
        // Gone with its handle: the next poll closes it.
      }
      file.currentPath = undefined;
      this.#markRotated(file, undefined);
      // Pick up the replacement now rather than at the next rescan, and find where the old file went.
      this.#scanRequested = true;
      if (!this.#excluded(formerPath)) {
        try {
          const replacement = await stat(formerPath, { bigint: true });
          const id = identityKey(replacement.dev, replacement.ino);
          if (replacement.isFile() && !this.#files.has(id) && !this.#pending.has(id)) await this.#discover(formerPath, false);
        } catch {
          // Nothing there yet; the rescan will see it when it appears.
        }
      }
    }
  }

  /** The file has no name left (nlink 0): it is read to its end and closed, and forgotten then. */
  #markDeleted(file: TrackedFile): void {
    file.deleted = true;
    file.rotated = true;
    file.currentPath = undefined;
    this.#stats.deletions++;
    this.emit("delete", { path: file.path, fileKey: file.fileKey });
    this.#scanRequested = true;
  }

  /** The path the file was discovered at no longer leads to it. Counted once per file. */
  #markRotated(file: TrackedFile, newPath: string | undefined): void {
    if (file.rotated || newPath === file.path) return;
    file.rotated = true;
    this.#stats.rotations++;
    this.emit("rotate", { path: file.path, fileKey: file.fileKey, ...(newPath === undefined ? {} : { newPath }) });
  }

  /**
   * Copytruncate followed by fast writes can leave the size above our offset: the changed first bytes give it away.
   * Also grows a short file's fingerprint toward fingerprintBytes.
   */
  async #checkFingerprint(file: TrackedFile, handle: FileHandle, size: number): Promise<void> {
    let prefix: Buffer;
    try {
      prefix = await readPrefix(handle, this.#o.fingerprintBytes);
    } catch (error) {
      this.#fsProblem(file.path, error);
      return;
    }
    if (file.fingerprint.bytes > 0 && !prefixMatches(prefix, file.fingerprint)) {
      this.#truncated(file, size);
      file.fingerprint = fingerprintOf(prefix, this.#o.fingerprintBytes);
      file.head = prefix;
      this.#upsertStore(file);
      return;
    }
    if (prefix.length > file.fingerprint.bytes) {
      file.fingerprint = fingerprintOf(prefix, this.#o.fingerprintBytes);
      file.head = prefix;
      this.#upsertStore(file);
    }
  }

  #truncated(file: TrackedFile, size: number): void {
    const previousOffset = file.assembler.position;
    const lineStart = file.assembler.lineStart;
    const discardedBytes = file.assembler.hasPartial ? previousOffset - lineStart : 0;
    if (discardedBytes > 0) {
      this.#stats.partialLinesDiscarded++;
      this.#stats.partialBytesDiscarded += discardedBytes;
    }
    // What its last size showed beyond what was read. A copy of it under the paths is read from `lineStart`;
    // without one (no fingerprint to know it by, or none found in time: #sweepRetired) those bytes are lost.
    const unread = Math.max(0, file.lastSize - previousOffset);
    if (file.fingerprint.bytes === this.#o.fingerprintBytes) {
      this.#retired.push({ hash: file.fingerprint.hash, offset: lineStart, fileKey: file.fileKey, committed: file.committed, at: Date.now(), path: file.path, end: file.lastSize, unread });
      if (this.#retired.length > MAX_RETIRED) this.#lostUnread(this.#retired.shift()!);
    } else if (unread > 0) {
      this.#lostUnread({ path: file.path, unread });
    }
    const previousFileKey = file.fileKey;
    this.#byKey.delete(previousFileKey);
    this.#store?.remove(previousFileKey);
    file.fileKey = this.#newKey(file.id);
    this.#byKey.set(file.fileKey, file);
    file.assembler.reset(0);
    file.committed = 0;
    file.fingerprint = { bytes: 0, hash: "" };
    file.head = EMPTY;
    file.lastSize = -1;
    file.eof = false;
    file.partialSince = Date.now();
    this.#stats.truncations++;
    this.#upsertStore(file, 0);
    this.emit("truncate", { path: file.path, fileKey: file.fileKey, previousFileKey, previousOffset, size, discardedBytes });
  }

  // ── reading ─────────────────────────────────────────────────────────────────────────────────────────────────

  /** Round-robin: one chunk per file per turn. Returns true when some file was left with unread bytes. */
  async #readAll(): Promise<boolean> {
    const chunks = new Map<TrackedFile, number>();
    let progressed = true;
    while (progressed) {
      progressed = false;
      // Reading ahead pays when one file is being read: its next chunk is the next read. With several, the
      // round-robin reads another file next and the chunk read ahead would be read again later.
      let readable = 0;
      for (const file of this.#files.values()) if (file.handle !== undefined && !file.eof) readable++;
      for (const file of this.#files.values()) {
        if (!this.#canRead()) return this.#anyUnread();
        if (file.handle === undefined || file.eof) continue;
        const count = chunks.get(file) ?? 0;
        if (count >= MAX_CHUNKS_PER_FILE_PER_CYCLE) continue;
        chunks.set(file, count + 1);
        if (await this.#readChunk(file, readable === 1)) progressed = true;
      }
    }
    return this.#anyUnread();
  }

  /** Wait out a read-ahead nobody will use (its buffer must be idle before anything reads into it again). */
  async #dropPrefetch(): Promise<void> {
    const pre = this.#prefetch;
    this.#prefetch = undefined;
    if (pre !== undefined) await pre.read.catch(() => 0);
  }

  #anyUnread(): boolean {
    for (const file of this.#files.values()) if (file.handle !== undefined && !file.eof) return true;
    return false;
  }

  /**
   * Read and parse the file's next chunk. With `readAhead`, a full chunk starts the read of the one after it (into
   * the other buffer) before it is parsed, so the read's round trip through libuv's thread pool overlaps the
   * parsing. The chunk read ahead is used only if the file, its handle and the position still match.
   */
  async #readChunk(file: TrackedFile, readAhead = false): Promise<boolean> {
    const position = file.assembler.position;
    const handle = file.handle!;
    let buffer: Buffer;
    let bytesRead: number;
    try {
      const pre = this.#prefetch;
      if (pre !== undefined && pre.file === file && pre.handle === handle && pre.position === position) {
        this.#prefetch = undefined;
        buffer = pre.buffer;
        bytesRead = await pre.read;
      } else {
        await this.#dropPrefetch();
        buffer = this.#buffer;
        ({ bytesRead } = await handle.read(buffer, 0, buffer.length, position));
      }
    } catch (error) {
      this.#fsProblem(file.path, error);
      await this.#closeHandle(file, "error");
      return false;
    }
    if (bytesRead === 0) {
      file.eof = true;
      return false;
    }
    // A short read from a regular file means we reached its end; the next poll sees any growth.
    if (bytesRead < buffer.length) file.eof = true;
    else if (readAhead && file.handle === handle) {
      const next = buffer === this.#buffer ? this.#spare : this.#buffer;
      const read = handle.read(next, 0, next.length, position + bytesRead).then((r) => r.bytesRead);
      read.catch(() => undefined); // consumed (or dropped) later; never an unhandled rejection
      this.#prefetch = { file, handle, position: position + bytesRead, buffer: next, read };
    }
    const now = Date.now();
    file.lastDataAt = now;
    this.#stats.bytesRead += bytesRead;
    const out: AssembledLine[] = [];
    file.assembler.push(buffer.subarray(0, bytesRead), out);
    if (file.assembler.hasPartial) file.partialSince = now;
    if (out.length > 0) await this.#deliver(file, out);
    return true;
  }

  /**
   * The handler's lines for `lines` of `file`. A loop of its own: V8 optimizes a loop that runs long in its first
   * call while it runs (on-stack replacement), and #deliver optimized that way had never called the handler yet, so it
   * was thrown away and compiled again at the handler's first lines.
   */
  #tailLines(file: TrackedFile, lines: AssembledLine[]): TailLine[] {
    const batch: TailLine[] = new Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      const line: TailLine = l.lazy
        ? new LazyLine(l.bytes, l.bytesStart, l.bytesEnd, file.path, file.fileKey, file.device, file.inode, l.offset, l.end)
        : {
            text: l.text,
            bytes: l.bytes,
            bytesStart: l.bytesStart,
            bytesEnd: l.bytesEnd,
            path: file.path,
            fileKey: file.fileKey,
            device: file.device,
            inode: file.inode,
            offset: l.offset,
            end: l.end,
          };
      if (l.truncated) {
        line.truncated = true;
        this.#stats.linesTruncated++;
      }
      if (l.split) {
        line.split = true;
        this.#stats.linesSplit++;
      }
      if (l.partial) {
        line.partial = true;
        this.#stats.partialLinesEmitted++;
      }
      if (l.invalidUtf8) {
        line.invalidUtf8 = true;
        this.#stats.invalidUtf8Lines++;
      }
      batch[i] = line;
    }
    return batch;
  }

  /** Hands `lines` (contiguous, of one file) to the handler. False when it did not take them all (see #unread). */
  async #deliver(file: TrackedFile, lines: AssembledLine[]): Promise<boolean> {
    const batch = this.#tailLines(file, lines);
    this.#stats.linesEmitted += lines.length;
    this.#credit.lines -= lines.length;
    // Lines are contiguous: their bytes run from the first one's offset to the last one's end.
    this.#credit.bytes -= lines[lines.length - 1]!.end - lines[0]!.offset;
    let taken = lines.length;
    try {
      const result = this.#handler(batch);
      if (typeof result === "number") taken = result;
      else if (result !== undefined && typeof (result as Promise<unknown>).then === "function") await result;
    } catch (error) {
      this.#stats.handlerErrors++;
      this.emit("problem", { kind: "handler", path: file.path, error });
    }
    if (!(taken < lines.length)) return true;
    this.#unread(file, lines, Math.max(0, Math.floor(taken)));
    return false;
  }

  /**
   * The handler took only `lines[0..taken)`: pause, and move the file back to the first line not taken, so that the
   * rest is read again (and counted once) after resume(). The splitter starts afresh there, which is where it was
   * after that line: it held nothing then.
   */
  #unread(file: TrackedFile, lines: AssembledLine[], taken: number): void {
    this.#paused = true;
    const from = lines[taken]!.offset;
    for (let i = taken; i < lines.length; i++) {
      const l = lines[i]!;
      if (l.truncated) this.#stats.linesTruncated--;
      if (l.split) this.#stats.linesSplit--;
      if (l.partial) this.#stats.partialLinesEmitted--;
      if (l.invalidUtf8) this.#stats.invalidUtf8Lines--;
    }
    this.#stats.linesEmitted -= lines.length - taken;
    this.#credit.lines += lines.length - taken;
    this.#credit.bytes += lines[lines.length - 1]!.end - from;
    this.#stats.bytesRead -= file.assembler.position - from;
    file.assembler.reset(from);
    file.eof = false;
  }

  // ── housekeeping ────────────────────────────────────────────────────────────────────────────────────────────

  async #housekeeping(): Promise<void> {
    const now = Date.now();
    if (this.#retired.length > 0) this.#sweepRetired(now);
    for (const file of [...this.#files.values()]) {
      if (file.handle === undefined || !file.eof || this.#state !== "running") continue;
      const timeout = this.#o.partialLineTimeoutMs;
      if (timeout !== false && file.assembler.hasPartial && now - file.partialSince >= timeout) {
        // Not taken (out of credit), it is read again, and times out again.
        if (!(await this.#emitPartial(file))) continue;
      }
      const idle = now - file.lastDataAt;
      if (file.rotated && idle >= this.#o.rotateWaitMs) {
        // Nothing more will be appended (the writer has moved on): its unterminated tail is a line of its own.
        if (!(await this.#emitPartial(file))) continue;
        await this.#closeHandle(file, file.deleted ? "deleted" : "rotated");
        if (file.deleted) this.#forget(file);
      } else if (!file.rotated && idle >= this.#o.closeInactiveMs) {
        await this.#closeHandle(file, "inactive");
      }
    }
  }

  /** Hands out the unterminated tail as a line; false when the handler did not take it. */
  async #emitPartial(file: TrackedFile): Promise<boolean> {
    const line = file.assembler.takePartial();
    return line === undefined || (await this.#deliver(file, [line]));
  }

  async #closeHandle(file: TrackedFile, reason: "rotated" | "deleted" | "inactive" | "error" | "stopped"): Promise<void> {
    const handle = file.handle;
    if (handle === undefined) return;
    file.handle = undefined;
    await handle.close().catch(() => undefined);
    this.#stats.closed++;
    this.emit("close", { path: file.path, fileKey: file.fileKey, offset: file.assembler.position, reason });
  }

  #forget(file: TrackedFile): void {
    this.#files.delete(file.id);
    this.#byKey.delete(file.fileKey);
    // A deleted file cannot come back; its position is useless. Renamed-away files keep their checkpoint until
    // the store forgets it.
    if (file.deleted) this.#store?.remove(file.fileKey);
  }

  // ── helpers ─────────────────────────────────────────────────────────────────────────────────────────────────

  #newKey(id: string): string {
    return `${id}:${Date.now().toString(36)}${(this.#keySeq++).toString(36)}`;
  }

  #upsertStore(file: TrackedFile, offset?: number): void {
    this.#store?.upsert({
      fileKey: file.fileKey,
      path: file.currentPath ?? file.path,
      device: file.device,
      inode: file.inode,
      fingerprint: file.fingerprint.hash,
      fingerprintBytes: file.fingerprint.bytes,
      born: file.born,
      ...(offset === undefined ? {} : { offset }),
    });
  }

  /** Whether the paths' globs match `p` (an absolute path), whether or not it exists. */
  #matchesPaths(p: string): boolean {
    this.#pathRegExps ??= this.#o.patterns.map((pattern) => globRegExp(path.resolve(this.#o.cwd, pattern)));
    return this.#pathRegExps.some((re) => re.test(p));
  }

  #pathRegExps: RegExp[] | undefined;

  #excluded(p: string): boolean {
    const { full, base } = this.#o.exclude;
    if (full.some((re) => re.test(p))) return true;
    if (base.length === 0) return false;
    const name = path.basename(p);
    return base.some((re) => re.test(name));
  }

  #syncWatcher(): void {
    if (this.#watcher === undefined) return;
    const dirs = new Set<string>();
    for (const file of this.#files.values()) {
      if (file.currentPath !== undefined) dirs.add(path.dirname(file.currentPath));
    }
    for (const pending of this.#pending.values()) dirs.add(path.dirname(pending.path));
    this.#watcher.sync(dirs);
  }

  #globProblem(problem: GlobProblem): void {
    this.#problem({ kind: problem.kind, path: problem.path, error: problem.error });
  }

  #fsProblem(p: string, error: unknown): void {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code === "ENOENT") return; // gone between scan and open: not a problem
    const kind: TailProblem["kind"] =
      code === "EACCES" || code === "EPERM" ? "access-denied" : code === "ELOOP" ? "symlink-loop" : code === "EISDIR" ? "not-regular" : "io";
    this.#problem({ kind, path: p, error });
  }

  #problem(problem: TailProblem): void {
    if (problem.path !== undefined) {
      if (this.#reported.get(problem.path) === problem.kind) return;
      this.#reported.set(problem.path, problem.kind);
    }
    switch (problem.kind) {
      case "access-denied":
        this.#stats.accessDenied++;
        break;
      case "not-regular":
        this.#stats.notRegularSkipped++;
        break;
      case "symlink-loop":
        this.#stats.symlinkLoops++;
        break;
      case "handler":
        this.#stats.handlerErrors++;
        break;
      case "renamed-while-stopped":
      case "gone-while-stopped":
        break; // counted where they are found
      default:
        this.#stats.ioErrors++;
    }
    this.emit("problem", problem);
  }
}

/** A line whose text is decoded from its bytes when first read (option `lazyText`): valid while the handler runs. */
class LazyLine implements TailLine {
  #text: string | undefined;

  constructor(
    readonly bytes: Buffer,
    readonly bytesStart: number,
    readonly bytesEnd: number,
    readonly path: string,
    readonly fileKey: string,
    readonly device: string,
    readonly inode: string,
    readonly offset: number,
    readonly end: number,
  ) {}

  get text(): string {
    return (this.#text ??= this.bytes.toString("utf8", this.bytesStart, this.bytesEnd));
  }
}
