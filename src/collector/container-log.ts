// Container runtime log files: each line wraps one piece of a line the container wrote, with the time the runtime
// read it and the stream it came from. The wrapper comes off here, and pieces of a line the runtime split (at 16 KiB,
// by default, in both formats) are joined again, per stream, before multiline joining and parsing see the app's line.
//
//   CRI (containerd, CRI-O: /var/log/pods/…, /var/log/containers/*.log):
//     2024-05-01T10:00:00.123456789Z stdout F {"level":30,"msg":"hi"}
//     <RFC 3339 time> <stdout|stderr> <P (partial) | F (full)>[:more tags] <content>
//   Docker json-file (/var/lib/docker/containers/<id>/<id>-json.log):
//     {"log":"{\"level\":30,\"msg\":\"hi\"}\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}
//     a piece without its trailing "\n" continues in the stream's next line.
//
// A line's file position commits only once every piece of it is in a record: a record of one stream that follows an
// unfinished line of the other commits no further than that line's first piece (see ContainerJoiner.openStart).
import type { TailLine } from "./tail/types.js";

/** How a file's lines are wrapped: `"auto"` tells the two apart per line (Docker's start with `{`). */
export type ContainerFormat = "cri" | "docker" | "auto";
export type ContainerStream = "stdout" | "stderr";

export const CONTAINER_FORMATS: readonly ContainerFormat[] = ["cri", "docker", "auto"];

/** One of the app's lines, unwrapped (and joined when the runtime had split it). */
export interface ContainerLine {
  /** The stream it was written to; undefined for a line not in the format (shipped whole, counted). */
  stream: ContainerStream | undefined;
  /** When the runtime read it (its first piece), ISO 8601 in milliseconds; undefined for a line not in the format. */
  time: string | undefined;
  /** Offset of its first piece's first byte. */
  start: number;
  /** Offset after its last piece's newline. */
  end: number;
  /**
   * Its UTF-8 in `bytes[bytesStart..bytesEnd)`: a view into the tailer's buffer for a line of one piece (valid only
   * during the call), or bytes of its own for joined pieces and Docker's decoded text.
   */
  bytes: Buffer;
  bytesStart: number;
  bytesEnd: number;
  /**
   * A piece, not the whole line: the joined pieces grew past `maxLineBytes` (every piece of such a line is flagged,
   * its last included), or its last piece never came (the file closed or was stopped first).
   */
  split: boolean;
}

/** Counters one joiner keeps; the file collector adds them up. */
export interface ContainerStats {
  /** Lines not in the format: shipped whole, as the app's line. */
  invalid: number;
  /** App lines joined from more than one piece. */
  joined: number;
  /** Lines shipped without their last piece (flagged `split`): idle past the timeout, or their file closed. */
  unfinished: number;
}

/** When an unfinished line is shipped without its last piece (see ContainerJoiner). */
export interface ContainerIdle {
  /** Idle time, as the tailer's `partialLineTimeoutMs` (`false`: never, only when the file closes). */
  timeoutMs: number | false;
  /** True while the file has more to read right now: its next pieces are on their way, not late. */
  reading: () => boolean;
}

type Piece = { stream: ContainerStream; time: string; partial: boolean; bytes: Buffer; s: number; e: number };

interface Open {
  start: number;
  /** After its last piece read so far. */
  end: number;
  time: string;
  chunks: Buffer[];
  bytes: number;
  /** More than one piece (counted once). */
  joined: boolean;
  /** The line already went out in part (past maxLineBytes): its rest goes out flagged too. */
  split: boolean;
}

/** Joins one file's pieces back into the app's lines, per stream. */
export class ContainerJoiner {
  readonly stats: ContainerStats;
  readonly #format: ContainerFormat;
  readonly #maxBytes: number;
  readonly #onLine: (line: ContainerLine) => void;
  readonly #open: { stdout: Open | undefined; stderr: Open | undefined } = { stdout: undefined, stderr: undefined };
  readonly #idle: ContainerIdle | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastPiece = 0;
  #idlePaused = false;
  #closed = false;

  /**
   * `stats` may be shared by the joiners of one source. With `idle`, a line left unfinished that long (a container
   * killed in the middle of a long line, or Docker's last line without its newline) is shipped as a flagged piece,
   * as the tailer ships a file's last line without its newline; what comes after it starts a new line.
   */
  constructor(
    format: ContainerFormat,
    maxLineBytes: number,
    onLine: (line: ContainerLine) => void,
    stats: ContainerStats = { invalid: 0, joined: 0, unfinished: 0 },
    idle?: ContainerIdle,
  ) {
    this.stats = stats;
    this.#format = format;
    this.#maxBytes = maxLineBytes;
    this.#onLine = onLine;
    this.#idle = idle?.timeoutMs === false ? undefined : idle;
  }

  /** The first byte of a line still open (its pieces not all read), or undefined: positions past it must not commit. */
  get openStart(): number | undefined {
    const a = this.#open.stdout?.start;
    const b = this.#open.stderr?.start;
    return a === undefined ? b : b === undefined || a < b ? a : b;
  }

  /** Unwrap one line of the file (synchronously: its bytes are the tailer's). */
  push(line: TailLine): void {
    const piece = line.split === true ? undefined : decode(this.#format, line);
    if (piece === undefined) {
      this.stats.invalid++;
      this.#onLine({ stream: undefined, time: undefined, start: line.offset, end: line.end, bytes: line.bytes, bytesStart: line.bytesStart, bytesEnd: line.bytesEnd, split: false });
      return;
    }
    const { stream } = piece;
    const open = this.#open[stream];
    if (open === undefined && !piece.partial) {
      this.#onLine({ stream, time: piece.time, start: line.offset, end: line.end, bytes: piece.bytes, bytesStart: piece.s, bytesEnd: piece.e, split: false });
      return;
    }
    const chunk = Buffer.from(piece.bytes.subarray(piece.s, piece.e));
    if (open === undefined) {
      this.#open[stream] = { start: line.offset, end: line.end, time: piece.time, chunks: [chunk], bytes: chunk.length, joined: false, split: false };
    } else {
      if (!open.joined) {
        open.joined = true;
        this.stats.joined++;
      }
      open.chunks.push(chunk);
      open.bytes += chunk.length;
      open.end = line.end;
    }
    const last = !piece.partial;
    if (this.#open[stream]!.bytes > this.#maxBytes) this.#overflow(stream, line.end, last);
    else if (last) this.#close(stream, line.end, this.#open[stream]!.split);
    if (this.#idle !== undefined && this.openStart !== undefined) {
      this.#lastPiece = Date.now();
      this.#arm(this.#idle.timeoutMs as number);
    }
  }

  /** The file is held back for credit: its next pieces wait to be read, so an open line is not idle. */
  pauseIdle(): void {
    this.#idlePaused = true;
  }

  /** Read again: an open line gets a full timeout from now. */
  resumeIdle(): void {
    if (!this.#idlePaused) return;
    this.#idlePaused = false;
    this.#lastPiece = Date.now();
    if (this.#idle !== undefined && this.openStart !== undefined) this.#arm(this.#idle.timeoutMs as number);
  }

  /** No timer any more, and none armed again (the file is retired). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    if (this.#timer !== undefined || this.#closed || this.#idlePaused) return;
    this.#timer = setTimeout(() => this.#timerFired(), ms);
    this.#timer.unref();
  }

  #timerFired(): void {
    this.#timer = undefined;
    if (this.openStart === undefined || this.#closed || this.#idlePaused) return;
    const timeoutMs = this.#idle!.timeoutMs as number;
    const now = Date.now();
    if (this.#idle!.reading()) this.#lastPiece = now;
    const idle = now - this.#lastPiece;
    if (idle >= timeoutMs) this.flush();
    else this.#arm(timeoutMs - idle);
  }

  /** Emit what is open, flagged as pieces (the file closed, was truncated or the source stops). */
  flush(): void {
    for (const stream of ["stdout", "stderr"] as const) {
      const open = this.#open[stream];
      if (open === undefined) continue;
      this.stats.unfinished++;
      this.#close(stream, open.end, true);
    }
  }

  /** Forget what is open: the next run reads it again from a position that never passed it. */
  abandon(): void {
    this.#open.stdout = undefined;
    this.#open.stderr = undefined;
  }

  /**
   * The open line grew past maxLineBytes: it goes out in maxLineBytes pieces, each flagged, as the tailer splits an
   * overlong line. The rest stays open (or goes out too, flagged, when this was the line's last piece).
   */
  #overflow(stream: ContainerStream, end: number, last: boolean): void {
    const open = this.#open[stream]!;
    let all = Buffer.concat(open.chunks);
    while (all.length > this.#maxBytes) {
      // Cut at maxLineBytes, and not inside a UTF-8 sequence: the rest starts the next piece.
      let cut = this.#maxBytes;
      while (cut > 0 && (all[cut]! & 0xc0) === 0x80) cut--;
      if (cut === 0) cut = this.#maxBytes;
      this.#onLine({ stream, time: open.time, start: open.start, end, bytes: all, bytesStart: 0, bytesEnd: cut, split: true });
      all = all.subarray(cut);
    }
    if (last) {
      this.#open[stream] = undefined;
      if (all.length > 0) this.#onLine({ stream, time: open.time, start: open.start, end, bytes: all, bytesStart: 0, bytesEnd: all.length, split: true });
      return;
    }
    // Its position stays at the line's first piece: a crash before the rest is read replays the whole line
    // (at-least-once) rather than losing its head.
    this.#open[stream] = { start: open.start, end, time: open.time, chunks: [all], bytes: all.length, joined: true, split: true };
  }

  #close(stream: ContainerStream, end: number, split: boolean): void {
    const open = this.#open[stream]!;
    this.#open[stream] = undefined;
    const all = open.chunks.length === 1 ? open.chunks[0]! : Buffer.concat(open.chunks);
    this.#onLine({ stream, time: open.time, start: open.start, end, bytes: all, bytesStart: 0, bytesEnd: all.length, split });
  }
}

function decode(format: ContainerFormat, line: TailLine): Piece | undefined {
  if (format === "cri") return decodeCri(line.bytes, line.bytesStart, line.bytesEnd);
  if (format === "docker") return decodeDocker(line.text);
  return line.bytesEnd > line.bytesStart && line.bytes[line.bytesStart] === 0x7b /* { */
    ? decodeDocker(line.text)
    : decodeCri(line.bytes, line.bytesStart, line.bytesEnd);
}

const SPACE = 0x20;

/** `<time> <stream> <tag>[ <content>]`: the content as a view of `bytes`, or undefined when the line is not CRI. */
export function decodeCri(bytes: Buffer, s: number, e: number): Piece | undefined {
  // The time: at most 40 bytes (RFC 3339 with nanoseconds and an offset is 35).
  let t = s;
  const limit = Math.min(e, s + 40);
  while (t < limit && bytes[t] !== SPACE) t++;
  if (t === limit) return undefined;
  const time = rfc3339Ms(bytes.toString("latin1", s, t));
  if (time === undefined) return undefined;
  // The stream word, one space, then the tag.
  if (e - t < 9 || bytes[t + 7] !== SPACE) return undefined;
  const word = bytes.toString("latin1", t + 1, t + 7);
  if (word !== "stdout" && word !== "stderr") return undefined;
  const stream: ContainerStream = word;
  // The tag: P or F, then any further `:`-separated tags.
  const tagStart = t + 8;
  const flag = bytes[tagStart];
  if (flag !== 0x50 /* P */ && flag !== 0x46 /* F */) return undefined;
  let i = tagStart + 1;
  if (i < e && bytes[i] === 0x3a /* : */) {
    while (i < e && bytes[i] !== SPACE) i++;
  } else if (i < e && bytes[i] !== SPACE) return undefined;
  // One space, then the content (a full line may be empty, with or without the space).
  const contentStart = i < e ? i + 1 : e;
  return { stream, time, partial: flag === 0x50, bytes, s: contentStart, e };
}

/** `{"log": …, "stream": …, "time": …}`: the text as bytes of their own, or undefined when the line is not that. */
export function decodeDocker(text: string): Piece | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (o === null || typeof o !== "object") return undefined;
  const { log, stream, time } = o as { log?: unknown; stream?: unknown; time?: unknown };
  if (typeof log !== "string" || (stream !== "stdout" && stream !== "stderr") || typeof time !== "string") return undefined;
  const ms = rfc3339Ms(time);
  if (ms === undefined) return undefined;
  const partial = !log.endsWith("\n");
  const bytes = Buffer.from(partial ? log : log.slice(0, -1));
  return { stream, time: ms, partial, bytes, s: 0, e: bytes.length };
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:[.,](\d+))?(Z|z|[+-]\d\d:\d\d)$/;

/** An RFC 3339 time (nanoseconds and all) as ISO 8601 in milliseconds, in UTC; undefined when it is not one. */
export function rfc3339Ms(value: string): string | undefined {
  const m = RFC3339.exec(value);
  if (m === null) return undefined;
  const ms = (m[2] ?? "").padEnd(3, "0").slice(0, 3);
  if (m[3] === "Z" || m[3] === "z") {
    const iso = `${m[1]}.${ms}Z`;
    // Reject what only looks like a time (month 13, hour 25): Date reads it as invalid.
    return Number.isNaN(Date.parse(iso)) ? undefined : iso;
  }
  const d = Date.parse(`${m[1]}.${ms}${m[3]}`);
  return Number.isNaN(d) ? undefined : new Date(d).toISOString();
}

// Kubernetes names: DNS labels and subdomains (lowercase, digits, `-`, and `.` in pod names), never `_`.
const K8S_CONTAINERS = /^([a-z0-9][a-z0-9.-]*)_([a-z0-9][a-z0-9-]*)_([a-z0-9][a-z0-9-]*)-([0-9a-f]{64})\.log$/;
const K8S_PODS = /\/([a-z0-9][a-z0-9-]*)_([a-z0-9][a-z0-9.-]*)_([0-9a-f-]{36})\/([a-z0-9][a-z0-9-]*)\/\d+\.log(?:\.\d{8}-\d{6})?$/;
const DOCKER = /\/([0-9a-f]{64})\/\1-json\.log(?:\.\d+)?$/;

/**
 * What a container log's path says about its container, as Filebeat names it: kubelet's
 * `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` links, `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`
 * files, and Docker's `/var/lib/docker/containers/<id>/<id>-json.log`. Undefined for other paths.
 */
export function containerMetadata(path: string): Record<string, unknown> | undefined {
  const slash = path.lastIndexOf("/");
  let m = K8S_CONTAINERS.exec(path.slice(slash + 1));
  if (m !== null) {
    return { kubernetes: { pod: { name: m[1] }, namespace: m[2], container: { name: m[3] } }, container: { id: m[4] } };
  }
  m = K8S_PODS.exec(path);
  if (m !== null) return { kubernetes: { namespace: m[1], pod: { name: m[2], uid: m[3] }, container: { name: m[4] } } };
  m = DOCKER.exec(path);
  if (m !== null) return { container: { id: m[1] } };
  return undefined;
}
