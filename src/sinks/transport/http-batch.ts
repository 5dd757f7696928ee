// Posts a batch's records to an HTTP endpoint as one or more bodies and turns the answers into the engine's outcomes.
//
//   postRange(records lo..hi)
//     body over the ceiling learned from a 413, more than one record ─────────────▶ halve (as below, without asking)
//     POST ─┬─ 2xx               → delivered
//           ├─ 413, > 1 record   → learn the ceiling; post [lo, mid), then [mid, hi) unless the first half must be retried
//           ├─ 413, one record   → rejected `http_413`: it will never fit
//           ├─ retry             → the whole range: transport error, 408/425/429/5xx, 401/403 (see classifyResponse)
//           └─ any other status  → the range rejected
//
// A retry says the destination is unwell, not the records. The sink stops sending the rest of its batch (those records
// get the same retry), and `summarize` turns "every record goes again" into one whole-batch outcome, so the engine
// holds the sink's next batches back too. While unwell, a sink's next batch sends one request before it fans out.
import { SinkError } from "../../errors.js";
import type { RecordOutcome, SendResult } from "../sink.js";
import { Outcome } from "../sink.js";
import { type HttpClient, classifyResponse } from "./http-post.js";

/** After this many requests without a 413, forget the learned size ceiling (the server's limit may have been raised). */
const CEILING_TTL_REQUESTS = 1000;

/** Builds the body of records `[lo, hi)`. */
export type BodyOf = (lo: number, hi: number) => Buffer;
/** Sets the outcome of records `[lo, hi)` (called only for records not delivered). */
export type FillOutcome = (lo: number, hi: number, outcome: RecordOutcome) => void;

export class HttpBatchPoster {
  /** Requests halved because of a 413 or the ceiling learned from one (metric `requests_split_413`). */
  splits = 0;
  /** The last answer was a retry: the next batch probes with one request (see the sinks' send loops). */
  unwell = false;
  #requests = 0;
  #maxBodyBytes = Infinity;
  #ceilingSetAt = 0;

  constructor(
    private readonly http: HttpClient,
    private readonly sink: string,
    private readonly display: string,
    private readonly isDelivered: (status: number) => boolean,
  ) {}

  /**
   * POST records `[lo, hi)` as one body, halving on 413. Every record not delivered gets its outcome through `fill`.
   * Returns the retry outcome when a request failed in a way that says the destination is unwell; the caller then
   * sends nothing more of this batch and gives its unsent records that outcome.
   */
  async postRange(lo: number, hi: number, bodyOf: BodyOf, fill: FillOutcome, signal: AbortSignal): Promise<RecordOutcome | undefined> {
    if (this.#maxBodyBytes !== Infinity && this.#requests - this.#ceilingSetAt > CEILING_TTL_REQUESTS) this.#maxBodyBytes = Infinity;
    const body = bodyOf(lo, hi);
    if (hi - lo > 1 && body.length > this.#maxBodyBytes) return this.#split(lo, hi, bodyOf, fill, signal);
    this.#requests++;
    const res = await this.http.post(body, {}, signal);
    if (res.ok && res.status === 413) {
      this.unwell = false;
      if (hi - lo > 1) {
        this.#maxBodyBytes = Math.min(this.#maxBodyBytes, body.length - 1);
        this.#ceilingSetAt = this.#requests;
        return this.#split(lo, hi, bodyOf, fill, signal);
      }
      const err = new SinkError(
        "ERR_SINK_REJECTED",
        `POST ${this.display} answered 413 to a single record (${body.length} bytes): it exceeds the server's body limit (Logstash \`max_content_length\`, Graylog \`max_chunk_size\`, or a proxy's)`,
        { sink: this.sink },
      );
      err.statusCode = 413;
      err.retryable = false;
      fill(lo, hi, Outcome.reject("http_413", err));
      return undefined;
    }
    const outcome = classifyResponse(this.sink, this.display, res, this.isDelivered);
    this.unwell = outcome.status === "retry";
    if (outcome.status === "delivered") return undefined;
    fill(lo, hi, outcome);
    return outcome.status === "retry" ? outcome : undefined;
  }

  async #split(lo: number, hi: number, bodyOf: BodyOf, fill: FillOutcome, signal: AbortSignal): Promise<RecordOutcome | undefined> {
    this.splits++;
    const mid = lo + Math.ceil((hi - lo) / 2);
    const first = await this.postRange(lo, mid, bodyOf, fill, signal);
    if (first !== undefined) {
      // Not into the same outage: the second half waits with the first.
      fill(mid, hi, first);
      return first;
    }
    return this.postRange(mid, hi, bodyOf, fill, signal);
  }
}

/**
 * The smallest result that says the same: the one outcome every record shares; one whole-batch retry when every
 * record goes again (for different reasons: requests in flight together fail each their own way), so that the
 * engine backs the sink off; otherwise one outcome per record.
 */
export function summarize(outcomes: readonly RecordOutcome[]): SendResult {
  const first = outcomes[0]!;
  let same = true;
  let allRetry = true;
  let retryAfterMs: number | undefined;
  for (const o of outcomes) {
    if (o !== first) same = false;
    if (o.status !== "retry") allRetry = false;
    else if (o.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, o.retryAfterMs);
  }
  if (same) return first;
  if (!allRetry || first.status !== "retry") return Outcome.perRecord(outcomes);
  return first.retryAfterMs === retryAfterMs ? first : Outcome.retry(first.reason, retryAfterMs, first.error);
}
