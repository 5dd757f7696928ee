// Credentials in a sink's options never appear in an error message, event payload, metrics or the report.
import { describe, expect, it } from "vitest";
import { Aggregator, type Batch, type Sink } from "../../../src/index.js";

const SECRET = "hunter2-s3cr3t";

/** A naive custom sink that puts its URL (with password) and auth header into its errors, as many clients do. */
class LeakySink implements Sink {
  readonly name = "leaky";
  readonly url = `https://elastic:${SECRET}@logs.example.invalid:9200/_bulk`;
  private calls = 0;
  async send(_batch: Batch) {
    this.calls++;
    if (this.calls === 1) throw new Error(`POST ${this.url} failed: headers {"authorization":"Basic ${Buffer.from(`elastic:${SECRET}`).toString("base64")}"}`);
    if (this.calls === 2) return { status: "retry" as const, reason: `upstream ${this.url} answered 503` };
    return { status: "rejected" as const, reason: `apiKey=${SECRET} not allowed for ${this.url}` };
  }
  metrics() {
    return { requests: this.calls };
  }
}

describe("credential redaction", () => {
  it("keeps the password out of errors, events, metrics, Prometheus text and the report", async () => {
    const seen: unknown[] = [];
    const agg = new Aggregator({ batch: { maxWaitMs: 0 }, retry: { baseDelayMs: 1, maxDelayMs: 1 } }).addSink(new LeakySink());
    for (const ev of ["drop", "retry", "sink:error", "deadLetter", "error"] as const) {
      agg.on(ev, (e: unknown) => seen.push(e));
    }
    await agg.start();
    await agg.write({ message: "hello" });
    await new Promise<void>((resolve) => agg.on("drop", () => resolve()));
    const report = await agg.stop();
    const dump = (v: unknown): string =>
      JSON.stringify(v, (_k, x) => (x instanceof Error ? { message: x.message, stack: x.stack, cause: x.cause } : x));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    const everything = [dump(seen), dump(report), dump(agg.metrics()), agg.prometheus()];
    for (const text of everything) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(Buffer.from(`elastic:${SECRET}`).toString("base64"));
    }
    // the messages stay useful: host and status survive
    expect(dump(seen)).toContain("logs.example.invalid");
    expect(report.sinks.leaky!.dropped).toEqual({ rejected: 1 });
  });
});
