// A custom collector (TypeScript): polls an HTTP health endpoint and ships one ECS record per poll.
// In your project, import from "child-log-agg/collector".
import { setTimeout as sleep } from "node:timers/promises";
import { defineCollector } from "../../src/collector.js";

export interface HealthCheckOptions {
  /** The endpoint to poll. */
  url: string;
  /** Milliseconds between two polls. */
  everyMs: number;
  /** A poll that takes longer fails. */
  timeoutMs: number;
}

export default defineCollector<HealthCheckOptions>(async ({ emit, signal, options, log }) => {
  log.info("polling", { url: options.url, everyMs: options.everyMs });
  while (!signal.aborted) {
    const started = process.hrtime.bigint();
    try {
      // Abort on stop as well as on the poll timeout, so stop() never waits for a slow endpoint.
      const res = await fetch(options.url, { signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]) });
      const body = await res.text();
      await emit({
        message: res.ok ? "health ok" : `health degraded: ${body}`,
        level: res.ok ? "info" : "warn",
        url: { full: options.url },
        http: { response: { status_code: res.status } },
        event: { duration: Number(process.hrtime.bigint() - started) }, // ECS: nanoseconds
      });
    } catch (error) {
      if (signal.aborted) break;
      await emit({ message: `health check failed: ${(error as Error).message}`, level: "error", url: { full: options.url } });
    }
    // Awaiting emit() above is the backpressure; this wait is the polling interval.
    await sleep(options.everyMs, undefined, { signal }).catch(() => undefined);
  }
  log.info("stopped");
});
