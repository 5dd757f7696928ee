// The file collector: tails globs (rotation- and truncation-safe), parses and joins lines per file, and commits
// a file's checkpoint only when the host says every record up to it is settled (ACK) — so a crash replays.
//
//   FileTailer ──lines──▶ per-file multiline ──▶ parse ──▶ record ──push──▶ channel (seq n)
//       ▲                                                   └─ pending positions: (seq n, fileKey, end)
//       └─ credit spent: "took k lines" (the tailer pauses and reads the rest again on resume)
//   host ACK(seq) ──▶ commit the positions of every record below seq ──▶ CheckpointStore (atomic, debounced)
//
// The credit is checked before each line, so the collector stops at it exactly, not at the end of a read (which, with
// tiny lines, was tens of thousands of records past it). Out of credit, multiline idle timers stop too (the next
// lines are waiting, not late), and after it they count only once the file is read to its end again: the rewound
// read comes back whenever the host lets it, and an event open meanwhile must not go out without its next lines.
// Only a file that closes or is truncated meanwhile sends its open event past the credit: one record (and any blank
// lines its joiner held) per such file.
import { CheckpointStore } from "../checkpoint-store.js";
import { ContainerJoiner, containerMetadata, type ContainerLine, type ContainerStats, type ContainerStream } from "../container-log.js";
import { MultilineJoiner } from "../multiline.js";
import { fastJsonRecordBytes, planFastRecord, type FastRecordPlan } from "../parse/fast-json-record.js";
import { buildRecord, createParser, flagRecord, mergeFields, type RecordContext } from "../parse/index.js";
import { DEFAULT_MAX_LINE_BYTES, DEFAULT_PARTIAL_LINE_TIMEOUT_MS } from "../tail/options.js";
import { FileTailer } from "../tail/tailer.js";
import type { TailLine, TailProblem } from "../tail/types.js";
import { FrameType } from "../../channel/protocol.js";
import type { FileSpec } from "../../sources/specs.js";
import type { ChildChannel } from "./channel.js";
import { stringifyRecord } from "./line-pipeline.js";
import { PendingPositions } from "./pending-positions.js";
import type { CollectorRun } from "./run.js";
import { errorText } from "../../util/text.js";

/** The least the tailer keeps of a container log's raw line (see the tailer's options in runFile). */
const CONTAINER_RAW_LINE_BYTES = 128 * 1024;

/** Which file a line or event came from: what its record says about the file, and the key its position commits to. */
type FileOrigin = Pick<TailLine, "path" | "fileKey" | "device" | "inode">;

/** A container log's app lines of one stream, or of none (lines not in the format), on their way to multiline. */
interface StreamJoiner {
  joiner: MultilineJoiner;
  /** The runtime's time of each line pushed and not emitted yet, by its start offset (in file order). */
  times: Map<number, string>;
}

/** A container log file (option `container`): its unwrapping, and per stream its multiline joining and fast plan. */
interface ContainerFile {
  file: FileOrigin;
  /** The source's `fields` over what the path says about the container (kubernetes.*, container.id). */
  fields: Record<string, unknown> | undefined;
  unwrap: ContainerJoiner;
  streams: Map<ContainerStream | undefined, StreamJoiner>;
  plans: Map<ContainerStream | undefined, FastRecordPlan | undefined>;
}

export async function runFile(spec: FileSpec, channel: ChildChannel): Promise<CollectorRun> {
  const parser = createParser(spec.parser ?? "plain");
  const store = spec.checkpointDir === undefined ? undefined : new CheckpointStore({ dir: spec.checkpointDir, source: spec.name, flushIntervalMs: spec.checkpointIntervalMs });
  const pending = new PendingPositions();
  const joiners = new Map<string, MultilineJoiner>();
  const ctx: RecordContext = { now: "", source: spec.name, host: spec.hostName, fields: spec.fields };
  let parseErrors = 0;
  let droppedKeys = 0;
  let blankLines = 0;
  /** Multiline events cut at maxLines/maxBytes (flagged `log.flags: ["truncated"]`). */
  let multilineTruncated = 0;
  /** Files whose last line was a piece of a longer one: their next line is its continuation. */
  const splitOpen = new Set<string>();
  let paused = false;
  /** Option `container`: per file key, its unwrapping and per-stream state. */
  const containerFiles = spec.container === undefined ? undefined : new Map<string, ContainerFile>();
  const containerStats: ContainerStats = { invalid: 0, joined: 0, unfinished: 0 };
  /** Paths whose lines were found not in the container format: said once per path (the counter has each line). */
  const notContainer = new Set<string>();
  /** When the lines being handled were read: the time of a record whose line carries none. */
  let arrival = "";
  // The json parser's fast path, with one plan per file key: the file's path, device and inode are in every record,
  // and a rotated file's successor at the same path is another file (another key) with another identity.
  const fastPlans = spec.parser === "json" ? new Map<string, FastRecordPlan | undefined>() : undefined;

  /** Out of credit: stop reading. A multiline event open now is not idle: its next lines wait to be read. */
  const pause = (): void => {
    paused = true;
    tailer.pause();
    for (const j of allJoiners()) j.pauseIdle();
    if (containerFiles !== undefined) for (const c of containerFiles.values()) c.unwrap.pauseIdle();
  };
  /** Every open multiline joiner: one per file, or one per stream of each container log file. */
  function* allJoiners(): Generator<MultilineJoiner> {
    yield* joiners.values();
    if (containerFiles !== undefined) for (const c of containerFiles.values()) for (const s of c.streams.values()) yield s.joiner;
  }
  const afterPush = (): void => {
    if (!channel.hasCredit && !paused) pause();
  };
  const send = (json: string, fileKey: string, end: number): void => {
    pending.add(channel.nextSeq, fileKey, end);
    channel.push(json);
    afterPush();
  };

  /** The json parser's fast path plan for a file (its key never changes path or identity), or undefined. */
  const planFor = (file: FileOrigin): FastRecordPlan | undefined => {
    let plan = fastPlans!.get(file.fileKey);
    if (plan === undefined && !fastPlans!.has(file.fileKey)) {
      if (fastPlans!.size >= 1024) fastPlans!.clear();
      plan = planFastRecord({
        source: spec.name,
        host: spec.hostName,
        fields: spec.fields,
        filePath: file.path,
        fileDeviceId: file.device,
        fileInode: file.inode,
      });
      fastPlans!.set(file.fileKey, plan);
    }
    return plan;
  };

  /** A container log's fast path plan per stream: its records carry the stream (and stderr's default level). */
  const containerPlan = (c: ContainerFile, stream: ContainerStream | undefined): FastRecordPlan | undefined => {
    if (c.plans.has(stream)) return c.plans.get(stream);
    const plan = planFastRecord({
      source: spec.name,
      host: spec.hostName,
      fields: c.fields,
      filePath: c.file.path,
      fileDeviceId: c.file.device,
      fileInode: c.file.inode,
      stream,
    });
    c.plans.set(stream, plan);
    return plan;
  };

  /**
   * How far a record of a container log file may commit: not past the first piece of a line still open in either
   * stream, nor past a multiline event still open in either (a crash then replays them whole).
   */
  const containerCommit = (c: ContainerFile, end: number): number => {
    let at = end;
    const open = c.unwrap.openStart;
    if (open !== undefined && open < at) at = open;
    for (const s of c.streams.values()) {
      const o = s.joiner.openStart;
      if (o !== undefined && o < at) at = o;
    }
    return at;
  };

  /** A container log's app line (or multiline event) as a record, with its stream and the runtime's time. */
  const containerRecord = (
    c: ContainerFile,
    stream: ContainerStream | undefined,
    time: string,
    bytes: Buffer,
    s: number,
    e: number,
    start: number,
    end: number,
    flag?: "truncated" | "split",
  ): void => {
    const commit = containerCommit(c, end);
    if (flag === undefined && fastPlans !== undefined) {
      const plan = containerPlan(c, stream);
      const seq = channel.nextSeq;
      if (plan !== undefined && fastJsonRecordBytes(bytes, s, e, plan, time, start, channel)) {
        // (Dropped as oversized, its position rides with the next record, as a blank line's does.)
        pending.add(seq, c.file.fileKey, commit);
        afterPush();
        return;
      }
    }
    ctx.now = time;
    ctx.stream = stream;
    ctx.fields = c.fields;
    general(bytes.toString("utf8", s, e), c.file, start, commit, flag);
  };

  /** A container log's app line, unwrapped: to its stream's multiline joiner, or straight to a record. */
  const containerLine = (c: ContainerFile, l: ContainerLine): void => {
    if (l.stream === undefined && !notContainer.has(c.file.path)) {
      if (notContainer.size >= 1024) notContainer.clear();
      notContainer.add(c.file.path);
      channel.send(FrameType.LOG, {
        level: "warn",
        message: `${c.file.path} has lines that are not in the ${spec.container === "auto" ? "CRI or Docker json-file" : spec.container === "cri" ? "CRI" : "Docker json-file"} format: they are shipped as they are (counted as containerInvalidLines)`,
      });
    }
    const time = l.time ?? arrival;
    if (spec.multiline === undefined) {
      containerRecord(c, l.stream, time, l.bytes, l.bytesStart, l.bytesEnd, l.start, l.end, l.split ? "split" : undefined);
      return;
    }
    const sj = streamJoiner(c, l.stream);
    if (l.split) {
      // A piece of an overlong line: what its stream's joiner holds goes first, then the piece, flagged.
      sj.joiner.flush();
      containerRecord(c, l.stream, time, l.bytes, l.bytesStart, l.bytesEnd, l.start, l.end, "split");
      return;
    }
    sj.times.set(l.start, time);
    sj.joiner.push(l.bytes.toString("utf8", l.bytesStart, l.bytesEnd), l.start, l.end);
  };

  const streamJoiner = (c: ContainerFile, stream: ContainerStream | undefined): StreamJoiner => {
    let sj = c.streams.get(stream);
    if (sj !== undefined) return sj;
    const times = new Map<number, string>();
    const joiner = new MultilineJoiner(
      spec.multiline!,
      (e) => {
        // The event's time is its first line's; the times of the lines it took are done with.
        let time: string | undefined;
        for (const [at, t] of times) {
          if (at >= e.end) break;
          if (at === e.start) time = t;
          times.delete(at);
        }
        if (e.truncated) multilineTruncated++;
        const bytes = Buffer.from(e.text);
        containerRecord(c, stream, time ?? arrival, bytes, 0, bytes.length, e.start, e.end, e.truncated ? "truncated" : undefined);
      },
      undefined,
      () => !tailer.readToEnd(c.file.fileKey),
    );
    sj = { joiner, times };
    c.streams.set(stream, sj);
    return sj;
  };

  const containerFor = (line: TailLine): ContainerFile => {
    let c = containerFiles!.get(line.fileKey);
    if (c === undefined) {
      const file: FileOrigin = { path: line.path, fileKey: line.fileKey, device: line.device, inode: line.inode };
      const metadata = containerMetadata(line.path);
      const cf: ContainerFile = {
        file,
        fields: metadata === undefined ? spec.fields : mergeFields(metadata, spec.fields),
        unwrap: new ContainerJoiner(spec.container!, spec.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (l) => containerLine(cf, l), containerStats, {
          timeoutMs: spec.partialLineTimeoutMs ?? DEFAULT_PARTIAL_LINE_TIMEOUT_MS,
          reading: () => !tailer.readToEnd(file.fileKey),
        }),
        streams: new Map(),
        plans: new Map(),
      };
      c = cf;
      containerFiles!.set(line.fileKey, c);
    }
    return c;
  };

  /**
   * A line, as read: the fast path writes its record from the bytes; otherwise the text takes the general path.
   * Returns whether a record was queued (the channel drops one over its record limit). Its position is recorded
   * per chunk by the caller, not per line; so is the credit check.
   */
  const emitLine = (line: TailLine): boolean => {
    const seq = channel.nextSeq;
    // Every piece of a line longer than maxLineBytes, its last included, is flagged (the general path's job).
    const piece = line.split === true || (splitOpen.size > 0 && splitOpen.has(line.fileKey));
    if (piece) {
      if (line.split === true) splitOpen.add(line.fileKey);
      else splitOpen.delete(line.fileKey);
    } else if (fastPlans !== undefined) {
      // Consecutive lines usually share a file: its key is then the same string, compared by reference.
      const plan = line.fileKey === lastKey ? lastPlan : planFor(line);
      lastKey = line.fileKey;
      lastPlan = plan;
      if (plan !== undefined && fastJsonRecordBytes(line.bytes, line.bytesStart, line.bytesEnd, plan, ctx.now as string, line.offset, channel)) {
        return channel.nextSeq !== seq;
      }
    }
    const json = build(line.text, line, line.offset, piece ? "split" : undefined);
    if (json === undefined) return false;
    channel.push(json);
    return channel.nextSeq !== seq;
  };
  let lastKey: string | undefined;
  let lastPlan: FastRecordPlan | undefined;

  /** A joined multiline event (text only). */
  const emit = (text: string, file: FileOrigin, offset: number, end: number, truncated: boolean): void => {
    if (truncated) {
      // Flagged: the general path's job.
      multilineTruncated++;
      general(text, file, offset, end, "truncated");
      return;
    }
    if (fastPlans !== undefined) {
      const plan = planFor(file);
      const seq = channel.nextSeq;
      const bytes = Buffer.from(text);
      if (plan !== undefined && fastJsonRecordBytes(bytes, 0, bytes.length, plan, ctx.now as string, offset, channel)) {
        // (Dropped as oversized, its position rides with the next record, as a blank line's does.)
        pending.add(seq, file.fileKey, end);
        afterPush();
        return;
      }
    }
    general(text, file, offset, end);
  };

  const general = (text: string, file: FileOrigin, offset: number, end: number, flag?: "truncated" | "split"): void => {
    const json = build(text, file, offset, flag);
    if (json === undefined) {
      // Nothing to ship, but its bytes are consumed: let the checkpoint move past it with the next record.
      pending.add(channel.nextSeq, file.fileKey, end);
      return;
    }
    send(json, file.fileKey, end);
  };

  /** The general path's record JSON for a line, or undefined for a blank line or a record too long for a string (counted). */
  const build = (text: string, file: FileOrigin, offset: number, flag?: "truncated" | "split"): string | undefined => {
    const parsed = parser(text);
    if (parsed.blank) {
      blankLines++;
      return undefined;
    }
    if (parsed.error !== undefined) parseErrors++;
    if (parsed.droppedKeys !== undefined) droppedKeys += parsed.droppedKeys;
    ctx.filePath = file.path;
    ctx.fileDeviceId = file.device;
    ctx.fileInode = file.inode;
    ctx.offset = offset;
    const record = buildRecord(parsed, ctx);
    if (flag !== undefined) flagRecord(record, flag);
    const json = stringifyRecord(record);
    if (json === undefined) channel.dropOversized(text.length);
    return json;
  };

  const joinerFor = (line: TailLine): MultilineJoiner => {
    let j = joiners.get(line.fileKey);
    if (j === undefined) {
      // The line itself is valid only while the handler runs: keep just its file's identity.
      const file: FileOrigin = { path: line.path, fileKey: line.fileKey, device: line.device, inode: line.inode };
      // Not idle while its file is being read on: the read after a resume (or of the next chunk) may take longer
      // than the timeout on a busy host, and the event's next lines are in it.
      j = new MultilineJoiner(spec.multiline!, (e) => emit(e.text, file, e.start, e.end, e.truncated), undefined, () => !tailer.readToEnd(file.fileKey));
      joiners.set(file.fileKey, j);
    }
    return j;
  };

  const tailer = new FileTailer(
    {
      paths: spec.paths,
      exclude: spec.exclude,
      cwd: spec.cwd,
      startAt: spec.startAt,
      pollIntervalMs: spec.pollIntervalMs,
      globIntervalMs: spec.globIntervalMs,
      // A container log's raw line is the runtime's piece (16 KiB of text, up to six times that as Docker's escaped
      // JSON) plus its wrapper: never cut it below that, or the wrapper ends up in the message. `maxLineBytes` bounds
      // the container's own lines, joined.
      maxLineBytes: spec.container === undefined ? spec.maxLineBytes : Math.max(spec.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, CONTAINER_RAW_LINE_BYTES),
      fingerprintBytes: spec.fingerprintBytes,
      rotateWaitMs: spec.rotateWaitMs,
      partialLineTimeoutMs: spec.partialLineTimeoutMs,
      closeInactiveMs: spec.closeInactiveMs,
      checkpoints: store,
      // Lines are consumed synchronously below; the fast path never needs their text.
      lazyText: true,
    },
    (lines) => {
      ctx.now = new Date().toISOString();
      const n = lines.length;
      let i = 0;
      if (containerFiles !== undefined) {
        // Each app line's record has its own position (pieces of a line commit with it); see containerRecord.
        arrival = ctx.now as string;
        for (; i < n && channel.hasCredit; i++) {
          const line = lines[i]!;
          containerFor(line).unwrap.push(line);
        }
      } else if (spec.multiline !== undefined) {
        for (; i < n && channel.hasCredit; i++) {
          const line = lines[i]!;
          joinerFor(line).push(line.text, line.offset, line.end);
        }
      } else {
        // One checkpoint position per run of lines of a file (a read chunk), not one per line: it commits once the
        // run's last record is settled (or, when the run ends in blank lines, the next record).
        let run: TailLine | undefined;
        let recorded = false;
        for (; i < n && channel.hasCredit; i++) {
          const line = lines[i]!;
          if (run !== undefined && line.fileKey !== run.fileKey) pending.add(recorded ? channel.nextSeq - 1 : channel.nextSeq, run.fileKey, run.end);
          recorded = emitLine(line);
          run = line;
        }
        if (run !== undefined) pending.add(recorded ? channel.nextSeq - 1 : channel.nextSeq, run.fileKey, run.end);
      }
      // Out of credit: stop reading. The lines not taken are read again on resume.
      if (!channel.hasCredit && !paused) pause();
      return i;
    },
  );
  const report = (error: { code?: string; message: string }): void => {
    channel.send(FrameType.LOG, { level: "error", code: error.code, message: error.message });
  };
  tailer.on("checkpointError", report);
  // What keeps a file from being read, said once per path and kind (the tailer repeats no other kind; the counters
  // have every occurrence).
  const handlerFailed = new Set<string | undefined>();
  tailer.on("problem", (p) => {
    if (p.kind === "handler") {
      if (handlerFailed.has(p.path)) return;
      handlerFailed.add(p.path);
    }
    const level = p.kind === "handler" ? "error" : p.kind === "renamed-while-stopped" ? "info" : "warn";
    channel.send(FrameType.LOG, { level, message: describeProblem(p) });
  });
  /**
   * Set by stop() when the collector was held back for credit: an open event's next lines are then likely unread, so
   * shipped now it would be cut short and its end committed. With checkpoints it is left to the next run, which
   * reads it again whole.
   */
  let reread = false;
  /** Set by stop(): files retired now are not done with, only no longer read by this run. */
  let stopping = false;
  /** A file key that gets no more lines: emit what its joiner still holds (at its own key and end) and drop it. */
  const retire = (fileKey: string): void => {
    splitOpen.delete(fileKey);
    const c = containerFiles?.get(fileKey);
    if (c !== undefined) {
      if (reread) {
        c.unwrap.abandon();
        for (const s of c.streams.values()) s.joiner.abandon();
      } else if (stopping && store !== undefined) {
        // A line whose last piece is not written yet is left to the next run, as the tailer leaves an unfinished
        // line: no position passed its first piece. What the joiners hold goes now (its positions stop there too).
        for (const s of c.streams.values()) s.joiner.close();
        c.unwrap.abandon();
      } else {
        // The file gets no more lines (or no next run will read it): unfinished lines go out as pieces, flagged,
        // through their streams' joiners, then what the joiners hold.
        c.unwrap.flush();
        for (const s of c.streams.values()) s.joiner.close();
      }
      c.unwrap.close();
      containerFiles!.delete(fileKey);
    }
    const j = joiners.get(fileKey);
    if (j !== undefined) {
      if (reread) j.abandon();
      else j.close();
      joiners.delete(fileKey);
    }
  };
  // A closed file (rotated away, deleted, or stopped) gets no more lines.
  tailer.on("close", (info) => retire(info.fileKey));
  // A truncated file restarts at 0 under a new key without a `close`: its old content's key is done.
  tailer.on("truncate", (info) => {
    retire(info.previousFileKey);
    if (info.discardedBytes > 0) {
      // Counted (partialLinesDiscarded) and said once per truncation: the file no longer holds that line.
      channel.send(FrameType.LOG, {
        level: "warn",
        message: `${info.path} was truncated before its last line ended: its ${info.discardedBytes} bytes were discarded`,
      });
    }
  });
  // Counted (truncatedUnreadBytes) and said once per truncation: nothing can read those bytes any more.
  tailer.on("truncatedUnread", (info) => {
    channel.send(FrameType.LOG, {
      level: "warn",
      message: `${info.path} was truncated before ${info.bytes} bytes it held were read, and no copy of it under the source's paths was found: those bytes are lost (a copytruncate rotation whose copy the paths do not match, or a plain truncation)`,
    });
  });
  await tailer.start();

  let settled = false;
  const done = new Promise<never>(() => {
    // A file collector runs until it is stopped.
  });
  return {
    done,
    pause,
    resume() {
      paused = false;
      for (const j of allJoiners()) j.resumeIdle();
      if (containerFiles !== undefined) for (const c of containerFiles.values()) c.unwrap.resumeIdle();
      tailer.resume();
    },
    ack(seq: number) {
      // Commit the furthest settled position per file (the tailer keeps it contiguous per file).
      const commits = pending.settle(seq);
      if (commits !== undefined) for (const [k, end] of commits) tailer.commit(k, end);
    },
    async stop() {
      reread = paused && store !== undefined;
      stopping = true;
      await tailer.stop();
      for (const fileKey of [...joiners.keys(), ...(containerFiles?.keys() ?? [])]) retire(fileKey);
      channel.flush();
    },
    async close() {
      if (settled) return;
      settled = true;
      await tailer.stop();
      await tailer.flush();
      // Its last write, and the checkpoint file's lock let go (a later collector of this source takes it at once).
      await store?.close();
    },
    counters() {
      const t = tailer.stats();
      return {
        linesRead: t.linesEmitted,
        bytesRead: t.bytesRead,
        parseErrors,
        droppedKeys,
        blankLines,
        pollCycles: t.cycles,
        filesOpen: t.filesOpen,
        rotations: t.rotations,
        truncations: t.truncations,
        deletions: t.deletions,
        fingerprintMismatches: t.fingerprintMismatches,
        resumedFromCheckpoint: t.resumedFromCheckpoint,
        linesTruncated: t.linesTruncated,
        linesSplit: t.linesSplit,
        partialLinesDiscarded: t.partialLinesDiscarded,
        multilineTruncated,
        ...(containerFiles === undefined ? {} : { containerInvalidLines: containerStats.invalid, containerJoinedLines: containerStats.joined, containerUnfinishedLines: containerStats.unfinished }),
        truncatedUnreadBytes: t.truncatedUnreadBytes,
        heldFilesGone: t.heldFilesGone,
        invalidUtf8: t.invalidUtf8Lines,
        notRegularSkipped: t.notRegularSkipped,
        accessDenied: t.accessDenied,
        symlinkLoops: t.symlinkLoops,
        ioErrors: t.ioErrors,
        handlerErrors: t.handlerErrors,
        renamedWhileStopped: t.renamedWhileStopped,
        goneWhileStopped: t.goneWhileStopped,
      };
    },
  };
}

/** A tailer problem as a collector log line. */
function describeProblem(p: TailProblem): string {
  const where = p.path ?? "a watched path";
  const cause = p.error === undefined ? "" : errorText(p.error);
  switch (p.kind) {
    case "access-denied":
      return `${where} cannot be read (permission denied): it is skipped, and tried again at each scan`;
    case "not-regular":
      return `${where} is not a regular file: it is skipped`;
    case "symlink-loop":
      return `${where} is a symbolic link loop: it is skipped`;
    case "handler":
      return `lines of ${where} were lost: handling them failed (${cause})`;
    case "renamed-while-stopped":
      return `${where} was renamed while the source was stopped: reading the rest of it at ${cause}`;
    case "held-gone":
      return `${where} was deleted or renamed away while it was held as a possible copy of a file being read (the same first bytes): it was not read`;
    case "gone-while-stopped":
      return `${where} changed while the source was stopped: ${cause}. What was written to it after that was not read`;
    default:
      return `${where} could not be read: ${cause}`;
  }
}
