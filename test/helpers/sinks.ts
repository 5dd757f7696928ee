// Tiny test sinks written against the public Sink contract (a recording sink with scripted outcomes).
import type { Batch, LogRecord, SendResult, Sink } from "../../src/index.js";

export interface Call {
  ids: number[];
  attempt: number;
}

/** Records every send; `script` decides each send's result from the batch. Records must carry a numeric `n`. */
export class ScriptedSink implements Sink {
  readonly calls: Call[] = [];
  constructor(
    readonly name: string,
    private readonly script: (batch: Batch, call: number) => SendResult | Promise<SendResult>,
  ) {}

  async send(batch: Batch): Promise<SendResult> {
    const ids = batch.records.map((r: LogRecord) => r.n as number);
    this.calls.push({ ids, attempt: batch.attempt });
    return this.script(batch, this.calls.length - 1);
  }

  /** How many times each id was sent. */
  sendCounts(): Map<number, number> {
    const m = new Map<number, number>();
    for (const c of this.calls) for (const id of c.ids) m.set(id, (m.get(id) ?? 0) + 1);
    return m;
  }
}

export function numbered(n: number, from = 0): Array<{ message: string; n: number }> {
  return Array.from({ length: n }, (_, i) => ({ message: `line ${from + i}`, n: from + i }));
}
