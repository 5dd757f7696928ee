// Plays the engine against a real receiver: sends batches through `sink.send`, resends what came back as `retry`
// (after its retryAfterMs, capped) until everything is delivered, and records which records each send reported delivered.
import type { LogRecordInput } from "../../../src/record.js";
import type { RecordOutcome, SendResult, Sink } from "../../../src/sinks/sink.js";
import { createBatch } from "../../../src/testing/create-batch.js";

export function outcomesOf(result: SendResult, n: number): RecordOutcome[] {
  if (result === undefined) return new Array<RecordOutcome>(n).fill({ status: "delivered" });
  if ("outcomes" in result) {
    if (result.outcomes.length !== n) throw new Error(`sink returned ${result.outcomes.length} outcomes for ${n} records`);
    return [...result.outcomes];
  }
  return new Array<RecordOutcome>(n).fill(result);
}

export interface DeliverReport {
  /** Indexes of records reported delivered (each once). */
  readonly delivered: Set<number>;
  /** Retry outcomes seen, by reason. */
  readonly retryReasons: Map<string, number>;
  readonly sends: number;
}

export async function deliverAll(
  sink: Sink,
  records: readonly LogRecordInput[],
  options: {
    batchSize: number;
    /** Called after a send that returned at least one retry (e.g. to restart a killed receiver). */
    onRetry?: () => Promise<void> | void;
    maxSends?: number;
    maxWaitMs?: number;
  },
): Promise<DeliverReport> {
  const delivered = new Set<number>();
  const retryReasons = new Map<string, number>();
  let pending = records.map((_r, i) => i);
  let sends = 0;
  const maxSends = options.maxSends ?? 10_000;
  while (pending.length > 0) {
    if (++sends > maxSends) throw new Error(`still ${pending.length} records pending after ${maxSends} sends`);
    const take = pending.slice(0, options.batchSize);
    const result = await sink.send(createBatch(take.map((i) => records[i]!)), { signal: new AbortController().signal });
    const outcomes = outcomesOf(result, take.length);
    const again: number[] = [];
    let wait = 0;
    outcomes.forEach((o, k) => {
      if (o.status === "delivered") {
        if (delivered.has(take[k]!)) throw new Error(`record ${take[k]} reported delivered twice`);
        delivered.add(take[k]!);
      } else if (o.status === "retry") {
        again.push(take[k]!);
        retryReasons.set(o.reason ?? "?", (retryReasons.get(o.reason ?? "?") ?? 0) + 1);
        wait = Math.max(wait, o.retryAfterMs ?? 0);
      } else {
        throw new Error(`record ${take[k]} rejected: ${o.reason}`);
      }
    });
    pending = again.concat(pending.slice(take.length));
    if (again.length > 0) {
      await options.onRetry?.();
      // The engine's backoff, not a synchronization sleep: what it waits for is the sink's own retryAfterMs.
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, options.maxWaitMs ?? 100)));
    }
  }
  return { delivered, retryReasons, sends };
}
