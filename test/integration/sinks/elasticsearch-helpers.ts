// Test-side stand-in for the engine: resend what the sink said to retry, until nothing is left (bounded).
import type { LogRecordInput } from "../../../src/record.js";
import type { ElasticsearchSink } from "../../../src/sinks/elasticsearch.js";
import type { RecordOutcome, SendResult } from "../../../src/sinks/sink.js";
import { Outcome } from "../../../src/sinks/sink.js";
import { createBatch } from "../../../src/testing/create-batch.js";

/** One outcome per record, whatever shape `send` returned. */
export function outcomesOf(result: SendResult, n: number): RecordOutcome[] {
  if (result === undefined) return new Array<RecordOutcome>(n).fill(Outcome.delivered);
  if ("outcomes" in result) {
    if (result.outcomes.length !== n) throw new Error(`expected ${n} outcomes, got ${result.outcomes.length}`);
    return [...result.outcomes];
  }
  return new Array<RecordOutcome>(n).fill(result);
}

export async function sendRecords(sink: ElasticsearchSink, records: readonly LogRecordInput[], source = "app", signal?: AbortSignal) {
  const batch = createBatch(records, { source });
  const result = await sink.send(batch, { signal: signal ?? new AbortController().signal });
  return outcomesOf(result, records.length);
}

/** Send, then resend only the records whose outcome was `retry`, until none is left or `maxRounds` passes. */
export async function deliverAll(sink: ElasticsearchSink, records: readonly LogRecordInput[], maxRounds = 10, source = "app") {
  let pending = [...records];
  const rejected: { record: LogRecordInput; reason: string }[] = [];
  const rounds: RecordOutcome[][] = [];
  for (let round = 0; round < maxRounds && pending.length > 0; round++) {
    const outcomes = await sendRecords(sink, pending, source);
    rounds.push(outcomes);
    const next: LogRecordInput[] = [];
    outcomes.forEach((o, i) => {
      if (o.status === "retry") next.push(pending[i]!);
      else if (o.status === "rejected") rejected.push({ record: pending[i]!, reason: o.reason });
    });
    pending = next;
  }
  if (pending.length > 0) throw new Error(`${pending.length} records still pending after ${maxRounds} rounds`);
  return { rejected, rounds };
}

export const ts = (i: number): string => new Date(Date.UTC(2024, 4, 1, 12, 0, 0, i)).toISOString();
