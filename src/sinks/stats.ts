// Shared request counters and a latency histogram for the built-in network sinks.

/** Upper bounds (ms) of the latency buckets, Prometheus-style (cumulative when exported). */
export const LATENCY_BUCKETS_MS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;

export class SinkStats {
  requests = 0;
  requestErrors = 0;
  bytesSent = 0;
  reconnects = 0;
  /** Records written again after a broken connection (TCP/TLS replay window): duplicates, not losses. */
  recordsResent = 0;
  /** Records still waiting for that resend when the sink closed (reported delivered, possibly lost). */
  recordsResendLost = 0;
  /** Records reported delivered that a broken connection left waiting for that resend right now (a level). */
  recordsResendPending = 0;
  private readonly statuses = new Map<string, number>();
  private readonly buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  private latencySumMs = 0;

  /** Record one request: its status (HTTP code, or a word such as `ok` / `error`), bytes and latency. */
  request(status: number | string, bytes: number, latencyMs: number): void {
    this.requests++;
    this.bytesSent += bytes;
    const key = String(status);
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
    this.latencySumMs += latencyMs;
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && latencyMs > LATENCY_BUCKETS_MS[i]!) i++;
    this.buckets[i]!++;
  }

  error(): void {
    this.requestErrors++;
  }

  /** Flat metrics: `requests`, `request_errors`, `bytes_sent`, `status_<code>`, `latency_ms_le_<b>`, `latency_ms_sum`. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {
      requests: this.requests,
      request_errors: this.requestErrors,
      bytes_sent: this.bytesSent,
      reconnects: this.reconnects,
      records_resent: this.recordsResent,
      records_resend_lost: this.recordsResendLost,
      records_resend_pending: this.recordsResendPending,
      latency_ms_sum: this.latencySumMs,
    };
    for (const [status, n] of this.statuses) out[`status_${status}`] = n;
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
      cumulative += this.buckets[i]!;
      out[`latency_ms_le_${LATENCY_BUCKETS_MS[i]}`] = cumulative;
    }
    out.latency_ms_le_inf = cumulative + this.buckets[LATENCY_BUCKETS_MS.length]!;
    return out;
  }
}
