// Judges a bulk response item by item, by position: the only place that decides which documents Elasticsearch kept.
import { SinkError } from "../../errors.js";
import { redact } from "../../util/redact.js";
import type { RecordOutcome, SendResult } from "../sink.js";
import { Outcome } from "../sink.js";
import { UniformBulkAnswer } from "./bulk-serializer.js";

/** Tallies the caller keeps across responses. */
export interface ItemTally {
  /** Count per item status (`201`, `409`, `429`, …). */
  readonly statuses: Map<number, number>;
  delivered: number;
  duplicates: number;
  retried: number;
  rejected: number;
}

/**
 * The outcome of each record of one batch. The per-record array is made only when records fare differently: a batch
 * answered all-delivered by one request (the usual case) allocates nothing per record.
 */
export class BatchOutcomes {
  #each: RecordOutcome[] | undefined;
  #allDelivered = false;

  constructor(readonly length: number) {}

  /** One slot per record of the batch, for writing (made on first use). */
  get each(): RecordOutcome[] {
    if (this.#each === undefined) {
      this.#each = new Array<RecordOutcome>(this.length);
      if (this.#allDelivered) this.#each.fill(Outcome.delivered);
    }
    return this.#each;
  }

  /** Every record of the batch was delivered. */
  deliverAll(): void {
    if (this.#each === undefined) this.#allDelivered = true;
    else this.#each.fill(Outcome.delivered);
  }

  /**
   * The smallest result that says the same: nothing (all delivered), one shared outcome, or one per record. A
   * record without an outcome is a bug here, and would otherwise read as delivered: it throws, so the batch is retried.
   */
  result(): SendResult {
    const each = this.#each;
    if (each === undefined) {
      if (this.#allDelivered || this.length === 0) return undefined;
      throw new Error("Elasticsearch sink: a batch was judged without an outcome per record");
    }
    const first = each[0];
    let same = true;
    for (let i = 0; i < each.length; i++) {
      const outcome = each[i];
      if (outcome === undefined) throw new Error(`Elasticsearch sink: record ${i} of a batch was judged without an outcome`);
      if (outcome !== first) same = false;
    }
    if (!same) return Outcome.perRecord(each);
    return first === Outcome.delivered ? undefined : first;
  }
}

/**
 * The usual answer, judged at once: when `body` is a uniform answer (see bulk-serializer.ts) of `expected` items
 * that each mean delivered, tally them and return true. Anything else returns false and tallies nothing; the caller
 * then judges it item by item (classifyBulkResponse).
 */
export function uniformlyDelivered(body: unknown, expected: number, opType: "create" | "index", tally: ItemTally): boolean {
  if (!(body instanceof UniformBulkAnswer) || body.count !== expected) return false;
  let status = -1;
  for (const key in body.item) {
    const value = (body.item as Record<string, { status?: unknown } | undefined>)[key]?.status;
    if (typeof value === "number") status = value;
    break;
  }
  if (!storedStatus(status, opType)) return false;
  tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + expected);
  tally.delivered += expected;
  if (status === 409) tally.duplicates += expected;
  return true;
}

/**
 * Write one outcome per sent record into `outcomes` (at `idx[lo..hi)`), or return a protocol error and write
 * nothing when the response cannot be matched to the request: not an object, no `items` array, or a different
 * number of items than actions sent. Matching is positional, as the bulk API guarantees; a response that
 * breaks that guarantee cannot tell which documents were stored, so the whole request is retried (with
 * `create` and deterministic ids the stored ones then answer 409 and count as delivered).
 *
 * Item rules: 2xx delivered; 409 on `create` delivered (already stored); 408, 429 and 5xx retried;
 * any other status rejected with `type: reason` of the item's error.
 */
export function classifyBulkResponse(
  body: unknown,
  idx: Int32Array,
  lo: number,
  hi: number,
  opType: "create" | "index",
  outcomes: RecordOutcome[],
  tally: ItemTally,
  sink: string,
): SinkError | undefined {
  const expected = hi - lo;
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return protocolError(sink, `bulk response is not a JSON object (got ${typeof body === "string" ? "text" : Array.isArray(body) ? "an array" : String(body)})`);
  }
  const items = (body as { items?: unknown }).items;
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(items)) {
    return protocolError(sink, `bulk response has no \`items\` array (errors: ${JSON.stringify(errors ?? null)}), ${expected} expected`);
  }
  if (items.length !== expected) {
    return protocolError(sink, `bulk response has ${items.length} items for ${expected} actions`);
  }

  let retryByReason: Map<string, RecordOutcome> | undefined;
  for (let k = 0; k < expected; k++) {
    const item: unknown = items[k];
    let entry: { status?: unknown; error?: unknown } | undefined;
    if (item !== null && typeof item === "object") {
      for (const key in item) {
        entry = (item as Record<string, typeof entry>)[key];
        break;
      }
    }
    const status = typeof entry?.status === "number" ? entry.status : -1;
    tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1);
    const i = idx[lo + k]!;
    if (storedStatus(status, opType)) {
      if (status === 409) tally.duplicates++;
      tally.delivered++;
      outcomes[i] = Outcome.delivered;
      continue;
    }
    const err = entry?.error;
    const type = errorField(err, "type");
    // A 403 write block on the index (`cluster_block_exception`: `index.blocks.write`, an ILM shrink step) lifts, so
    // its records wait rather than go to the dead letters. Another 403 (a key without write privilege on that index)
    // lasts: rejected.
    if (status === -1 || status === 408 || status === 429 || status >= 500 || (status === 403 && type === "cluster_block_exception")) {
      const reason = status === -1 ? "malformed_item" : type ?? `item_${status}`;
      retryByReason ??= new Map();
      let outcome = retryByReason.get(reason);
      if (outcome === undefined) {
        outcome = Outcome.retry(reason);
        retryByReason.set(reason, outcome);
      }
      tally.retried++;
      outcomes[i] = outcome;
      continue;
    }
    tally.rejected++;
    const reason = itemReason(err, status);
    const error = new SinkError("ERR_SINK_REJECTED", `Elasticsearch sink "${sink}": document rejected with status ${status}: ${reason}`, { sink });
    error.statusCode = status;
    error.retryable = false;
    outcomes[i] = Outcome.reject(reason, error);
  }
  return undefined;
}

/** The item's document is in the index: 2xx, or 409 on `create` (stored before, by an earlier attempt). */
function storedStatus(status: number, opType: "create" | "index"): boolean {
  return (status >= 200 && status < 300) || (status === 409 && opType === "create");
}

function errorField(err: unknown, key: string): string | undefined {
  if (err === null || typeof err !== "object") return undefined;
  const v = (err as Record<string, unknown>)[key];
  return typeof v === "string" ? v : undefined;
}

/** `type: reason`, plus the first `caused_by` (mapping errors put the useful part there). Redacted, bounded. */
function itemReason(err: unknown, status: number): string {
  const type = errorField(err, "type") ?? `status_${status}`;
  const reason = errorField(err, "reason") ?? (typeof err === "string" ? err : "");
  let text = `${type}: ${reason}`;
  const causedBy = err !== null && typeof err === "object" ? (err as { caused_by?: unknown }).caused_by : undefined;
  const cType = errorField(causedBy, "type");
  if (cType !== undefined) text += ` [caused_by: ${cType}: ${errorField(causedBy, "reason") ?? ""}]`;
  return redact(text.length > 1000 ? `${text.slice(0, 1000)}…` : text);
}

function protocolError(sink: string, message: string): SinkError {
  const error = new SinkError("ERR_SINK_PROTOCOL", `Elasticsearch sink "${sink}": ${message}`, { sink });
  error.retryable = true;
  return error;
}
