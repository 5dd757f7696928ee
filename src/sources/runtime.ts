// The host-side contract between the Aggregator and a running source (a supervised collector child, or an
// in-process writer). The aggregator only sees this; supervision, channels and checkpoints live behind it.
import type { Producer } from "../pipeline/router.js";
import type { SourceCounters, SourceMetricsSnapshot } from "../report.js";
import type { AggregatorEvents } from "../events.js";
import type { Router } from "../pipeline/router.js";
import type { AckTracker } from "../pipeline/ack-tracker.js";

export interface SourceHost {
  readonly router: Router;
  readonly checkpointDir: string | undefined;
  readonly hostName: string;
  readonly credit: { records: number; bytes: number };
  emit<K extends keyof AggregatorEvents>(event: K, ...args: AggregatorEvents[K]): void;
  /** A record arrived that could not be serialized / was malformed: count and announce. */
  dropUnserializable(source: string, count: number, detail: string): void;
  /** The collector reported `count` more records dropped under its counter `key` (COLLECTOR_DROP_KEYS): count and announce. */
  dropInCollector(source: string, count: number, key: string): void;
}

export interface SourceRuntime extends Producer {
  readonly kind: string;
  readonly acks: AckTracker;
  /**
   * Optional: get ready to start without starting (a collector boots its process). The aggregator calls it while
   * its sinks open; start() follows, or close() when the aggregator stops first.
   */
  prepare?(): void;
  /** Resolves once the collector said ready; rejects with a coded error otherwise. */
  start(): Promise<void>;
  /** Stop reading input; resolves when everything read so far is in the inbox (or at the deadline). */
  stopInput(deadline: number): Promise<void>;
  /** After the queues drained: commit final positions and end the process. Never outlives the deadline. */
  close(deadline: number): Promise<void>;
  counters(): SourceCounters;
  snapshot(): SourceMetricsSnapshot;
  /** Let go of what waits for queue room (removeSource() at its deadline drops it); returns how many records. */
  discardWaiting(): number;
}

/** Implemented by every source definition (FileSource, CommandSource…). */
export interface SourceDefinition {
  readonly name: string;
  readonly kind: string;
  /** @internal Build the runtime when the aggregator starts the source. */
  createRuntime(host: SourceHost): SourceRuntime;
}
