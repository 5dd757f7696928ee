// Sequence counting for fault tests: every generated record carries a unique `seq`, receivers say which seqs
// arrived, and a report states what was proven (sent, unique, duplicates, missing ranges) in one line per
// scenario, also collected in test/faults/.results/summary.json so a reader sees the figures without the logs.
//
//   SequenceGenerator ── records { message, seq } ──▶ system under test ──▶ receiver
//                                                                           │ tracker.add(seq) / addJsonLines(frames)
//   tracker.onCount(k, fault) ◀── counter hooks fire once the receiver has K ──┘
//   tracker.report(sent) ──▶ { sent, unique, duplicates, missing, missingRanges } ──▶ recordScenario()
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where scenario figures are collected (one JSON object keyed by scenario name). */
export const SUMMARY_FILE = join(dirname(fileURLToPath(import.meta.url)), "..", "faults", ".results", "summary.json");

export interface SequencedRecord {
  message: string;
  seq: number;
  [field: string]: unknown;
}

/** Hands out consecutive sequence numbers, so "sent" is exactly the range [first, next). */
export class SequenceGenerator {
  private nextSeq: number;

  constructor(readonly first = 0) {
    this.nextSeq = first;
  }

  /** How many seqs were handed out. */
  get sent(): number {
    return this.nextSeq - this.first;
  }

  /** The seqs handed out so far, in order. */
  sentSeqs(): number[] {
    return range(this.first, this.nextSeq);
  }

  /**
   * `count` records with the next seqs. A fixed `@timestamp` per seq keeps a record's canonical JSON the same
   * on every run (and therefore its deterministic Elasticsearch `_id`).
   */
  records(count: number, extra?: (seq: number) => Record<string, unknown>): SequencedRecord[] {
    const out = new Array<SequencedRecord>(count);
    for (let i = 0; i < count; i++) {
      const seq = this.nextSeq++;
      out[i] = { "@timestamp": new Date(Date.UTC(2024, 0, 1) + seq).toISOString(), message: `seq ${seq}`, seq, ...extra?.(seq) };
    }
    return out;
  }

  /** Plain text lines `seq <n>` (for files, commands and stream clients). */
  lines(count: number): string {
    let s = "";
    for (let i = 0; i < count; i++) s += `seq ${this.nextSeq++}\n`;
    return s;
  }
}

export interface SequenceReport {
  scenario: string;
  /** Seqs the generator produced. */
  sent: number;
  /** Distinct sent seqs seen at least once. */
  unique: number;
  /** Extra copies: arrivals beyond the first of each seq. */
  duplicates: number;
  /** Distinct seqs that arrived more than once. */
  duplicatedSeqs: number;
  missing: number;
  /** Missing seqs as ranges, e.g. "100-199, 305" ("" when none). */
  missingRanges: string;
  /** Arrivals of seqs that were never sent (a corrupt or foreign record). */
  unexpected: number;
  /** Scenario-specific figures (retries, drops, pending…), printed after the counts. */
  extra?: Record<string, number | string>;
}

type Hook = { at: number; fn: () => void; fired: boolean };

/** Counts seq arrivals at a receiver. `onCount` hooks drive fault timing from what actually arrived. */
export class SequenceTracker {
  private readonly counts = new Map<number, number>();
  private total = 0;
  private readonly hooks: Hook[] = [];

  /** Arrivals so far, duplicates included. */
  get arrivals(): number {
    return this.total;
  }

  /** Distinct seqs so far. */
  get unique(): number {
    return this.counts.size;
  }

  /** Copies of one seq received so far. */
  countOf(seq: number): number {
    return this.counts.get(seq) ?? 0;
  }

  /** Run `fn` once, as soon as `at` arrivals (duplicates included) were seen. */
  onCount(at: number, fn: () => void): this {
    this.hooks.push({ at, fn, fired: false });
    this.fire();
    return this;
  }

  add(seq: number): void {
    this.counts.set(seq, (this.counts.get(seq) ?? 0) + 1);
    this.total++;
    if (this.hooks.length > 0) this.fire();
  }

  addAll(seqs: Iterable<number>): void {
    for (const s of seqs) this.add(s);
  }

  /** Add the seq of each JSON text (a json_lines frame, a GELF frame: `field` may be `_seq`). */
  addJson(texts: Iterable<string>, field = "seq"): void {
    for (const t of texts) {
      const v = (JSON.parse(t) as Record<string, unknown>)[field];
      if (typeof v !== "number") throw new Error(`no numeric \`${field}\` in received text: ${t.slice(0, 120)}`);
      this.add(v);
    }
  }

  /** Compare with what was sent: `sent` is a count (seqs 0..sent-1) or the exact seqs. */
  report(scenario: string, sent: number | readonly number[], extra?: SequenceReport["extra"]): SequenceReport {
    const sentSeqs = typeof sent === "number" ? range(0, sent) : sent;
    const sentSet = new Set(sentSeqs);
    const missing: number[] = [];
    for (const s of sentSeqs) if (!this.counts.has(s)) missing.push(s);
    let duplicates = 0;
    let duplicatedSeqs = 0;
    let unexpected = 0;
    for (const [seq, n] of this.counts) {
      if (!sentSet.has(seq)) unexpected += n;
      else if (n > 1) {
        duplicates += n - 1;
        duplicatedSeqs++;
      }
    }
    const report: SequenceReport = {
      scenario,
      sent: sentSet.size,
      unique: sentSet.size - missing.length,
      duplicates,
      duplicatedSeqs,
      missing: missing.length,
      missingRanges: formatRanges(missing),
      unexpected,
    };
    if (extra !== undefined) report.extra = extra;
    return report;
  }

  private fire(): void {
    for (const h of this.hooks) {
      if (!h.fired && this.total >= h.at) {
        h.fired = true;
        h.fn();
      }
    }
  }
}

/** Seqs [from, to). */
export function range(from: number, to: number): number[] {
  const out = new Array<number>(Math.max(0, to - from));
  for (let i = 0; i < out.length; i++) out[i] = from + i;
  return out;
}

/** "100-199, 305" for [100..199, 305]; input in any order; long lists are cut after 20 ranges. */
export function formatRanges(seqs: readonly number[]): string {
  const sorted = [...seqs].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.length > 20 ? `${parts.slice(0, 20).join(", ")}, … (${parts.length} ranges)` : parts.join(", ");
}

/** The one-line form: `[scenario] sent N, unique U, duplicates D, missing M (ranges) · extra…`. */
export function formatReport(r: SequenceReport): string {
  let line = `[${r.scenario}] sent ${r.sent}, unique ${r.unique}, duplicates ${r.duplicates}, missing ${r.missing}`;
  if (r.missing > 0) line += ` (${r.missingRanges})`;
  if (r.unexpected > 0) line += `, unexpected ${r.unexpected}`;
  if (r.extra !== undefined) line += ` · ${Object.entries(r.extra).map(([k, v]) => `${k} ${v}`).join(", ")}`;
  return line;
}

/**
 * Print the scenario's line and merge it into the summary file. Test files run in parallel processes, so the
 * read-modify-write is done under an exclusive lock file (stale after 10 s, e.g. a killed run).
 */
export function recordScenario(r: SequenceReport): SequenceReport {
  console.info(formatReport(r));
  mkdirSync(dirname(SUMMARY_FILE), { recursive: true });
  withLock(`${SUMMARY_FILE}.lock`, () => {
    let all: Record<string, unknown> = {};
    try {
      all = JSON.parse(readFileSync(SUMMARY_FILE, "utf8")) as Record<string, unknown>;
    } catch {
      all = {};
    }
    all[r.scenario] = { ...r, at: new Date().toISOString() };
    const tmp = `${SUMMARY_FILE}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(all, null, 2) + "\n");
    renameSync(tmp, SUMMARY_FILE);
  });
  return r;
}

function withLock(path: string, fn: () => void): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let tries = 0; ; tries++) {
    try {
      closeSync(openSync(path, "wx"));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      try {
        if (Date.now() - statSync(path).mtimeMs > 10_000) rmSync(path, { force: true });
      } catch {
        // removed by its owner meanwhile
      }
      if (tries > 2_000) throw new Error(`could not lock ${path}`);
      Atomics.wait(pause, 0, 0, 5); // a few ms between tries; the holder only rewrites one small file
    }
  }
  try {
    fn();
  } finally {
    rmSync(path, { force: true });
  }
}
