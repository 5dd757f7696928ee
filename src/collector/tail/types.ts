// Public types of the FileTailer: the line shape handed to the handler, events, counters and the file snapshot.
import type { AggregatorError } from "../../errors.js";

/** One line read from a file. */
export interface TailLine {
  /** The line without its `\n` (and one `\r` before it). Invalid UTF-8 is replaced by U+FFFD. */
  text: string;
  /**
   * The same line as read, UTF-8 in `bytes[bytesStart..bytesEnd)`. A view into the tailer's read buffer: valid only
   * until the handler returns (or its promise settles), so read it synchronously and never keep it.
   */
  bytes: Buffer;
  bytesStart: number;
  bytesEnd: number;
  /** Path the file was discovered at (stays the same after the file is renamed by rotation). */
  path: string;
  /** Opaque identity of the file's current content generation; pass it back to commit(). */
  fileKey: string;
  /** The file's device (`st_dev`, decimal): with `inode`, what tells a rotated file from its successor at `path`. */
  device: string;
  /** The file's inode (`st_ino`, decimal: it can exceed 2^53). */
  inode: string;
  /** Byte offset of the line's first byte. */
  offset: number;
  /** Byte offset just after the line's newline: the value to commit once the line is acknowledged. */
  end: number;
  /** The line was longer than maxLineBytes and was cut (overlong "truncate"). */
  truncated?: true;
  /** A maxLineBytes piece of a longer line (overlong "split"); the line continues in the next one. */
  split?: true;
  /** Emitted without a newline (idle timeout, or the rotated file closed). */
  partial?: true;
  /** The line had invalid UTF-8 (replaced by U+FFFD). */
  invalidUtf8?: true;
}

/**
 * Receives lines in file order per file. A returned promise is awaited before the next read (backpressure). A
 * returned number is how many of the lines it took, when fewer (it ran out of room): the tailer pauses, and reads
 * the rest again after resume().
 */
export type TailHandler = (lines: TailLine[]) => void | number | Promise<unknown>;

export type OpenReason =
  | "start-beginning"
  | "start-end"
  | "new-file"
  | "checkpoint"
  | "checkpoint-truncated"
  | "fingerprint-mismatch"
  | "copytruncate-copy"
  | "reopen";

export interface TailProblem {
  kind: "access-denied" | "not-regular" | "symlink-loop" | "io" | "handler" | "renamed-while-stopped" | "gone-while-stopped" | "held-gone";
  path?: string;
  error?: unknown;
}

export interface FileTailerEvents {
  open: [info: { path: string; fileKey: string; offset: number; reason: OpenReason }];
  /**
   * The path the file was discovered at no longer leads to it (renamed away or replaced). It is read to EOF and
   * closed after rotateWaitMs without growth; if the glob matches its new name (`newPath`), a rescan reopens it
   * when it grows, at its position.
   */
  rotate: [info: { path: string; fileKey: string; newPath?: string }];
  /** The file shrank below the read offset or its first bytes changed: reading restarts at 0 under a new key. */
  truncate: [
    info: {
      path: string;
      fileKey: string;
      previousFileKey: string;
      previousOffset: number;
      size: number;
      /** Bytes of an unterminated last line the truncation took away (0 when the content ended in a newline). */
      discardedBytes: number;
    },
  ];
  /**
   * A file was truncated (copytruncate) with bytes it held that had not been read yet (`bytes`, at least: what its
   * last size showed), and no copy of it under the paths was found to read them from (within copyDecisionMs), or
   * its copy ends before them (written between the copy and the truncate): they are lost. Counted in `truncatedUnreadBytes`.
   */
  truncatedUnread: [info: { path: string; bytes: number }];
  /** The file was unlinked. It is read to EOF, then closed and its checkpoint dropped. */
  delete: [info: { path: string; fileKey: string }];
  close: [info: { path: string; fileKey: string; offset: number; reason: "rotated" | "deleted" | "inactive" | "error" | "stopped" }];
  /** Something could not be read. Counted in stats(); reported once per path until it changes. Never fatal. */
  problem: [problem: TailProblem];
  /** A checkpoint write failed (code ERR_CHECKPOINT); forwarded from the store. Tailing continues. */
  checkpointError: [error: AggregatorError];
}

export interface FileTailerStats {
  /** Loop passes so far (tests and health checks can wait for "n more passes" instead of sleeping). */
  cycles: number;
  /** Polls of open files (fstat): every pollIntervalMs while a file changes, less often once it has been idle. */
  filePolls: number;
  /** Glob rescans so far. */
  scans: number;
  filesOpen: number;
  filesTracked: number;
  opened: number;
  closed: number;
  rotations: number;
  truncations: number;
  deletions: number;
  fingerprintMismatches: number;
  copytruncateCopies: number;
  resumedFromCheckpoint: number;
  linesEmitted: number;
  bytesRead: number;
  linesTruncated: number;
  /** Pieces of overlong lines (overlong "split") that continue in the next line. */
  linesSplit: number;
  partialLinesEmitted: number;
  /** Unterminated lines dropped when their file was truncated under them, and their bytes. */
  partialLinesDiscarded: number;
  partialBytesDiscarded: number;
  /** Bytes a truncation took away before they were read, with no copy found to read them from (see truncatedUnread). */
  truncatedUnreadBytes: number;
  /**
   * New files held as a possible copytruncate copy (their first KiB matches a file being read) that were deleted or
   * renamed away before that was decided: never read.
   */
  heldFilesGone: number;
  invalidUtf8Lines: number;
  notRegularSkipped: number;
  accessDenied: number;
  symlinkLoops: number;
  ioErrors: number;
  handlerErrors: number;
  /** Files renamed to a name the globs do not match while the source was stopped, whose rest was then read. */
  renamedWhileStopped: number;
  /** Files the last run was reading that were gone from their directory at start (compressed, deleted, moved). */
  goneWhileStopped: number;
}

export interface TailFileInfo {
  fileKey: string;
  path: string;
  device: string;
  inode: string;
  open: boolean;
  /** Bytes consumed (read offset). */
  position: number;
  /** Start of the first byte not yet emitted as a line. */
  lineStart: number;
  /** Bytes of the unterminated line held in memory. */
  heldBytes: number;
  /** Highest committed (acknowledged) end offset seen by commit(). */
  committed: number;
  rotated: boolean;
  deleted: boolean;
}
