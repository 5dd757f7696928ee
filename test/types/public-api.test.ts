// Type tests of the public API: what users' editors and compilers see. Checked by `tsc --noEmit` (npm run typecheck);
// at run time they are no-ops, except that listeners get registered on an idle Aggregator.
import { describe, expectTypeOf, it } from "vitest";
import {
  Aggregator,
  AggregatorError,
  CheckpointError,
  CollectorError,
  ConsoleSink,
  FileSink,
  MemorySink,
  Outcome,
  ListenerError,
  RecordError,
  SinkError,
  StateError,
  isAggregatorError,
  type AggregatorEvents,
  type AggregatorOptions,
  type CommandSourceOptions,
  type AggregatorState,
  type Batch,
  type DeadLetterEvent,
  type DeliveredEvent,
  type DeliveryReport,
  type DropEvent,
  type DropReason,
  type ErrorCode,
  type LogRecord,
  type LogRecordInput,
  type LogLevel,
  type MetricsSnapshot,
  type QueueOptions,
  type RecordOutcome,
  type RetryEvent,
  type SendContext,
  type SendResult,
  type Sink,
  type SinkCounters,
  type SinkErrorEvent,
  type SinkMetricsSnapshot,
  type SinkOptions,
  type SourceDefinition,
  type SourceOptions,
  type SourceCounters,
  type SourceErrorEvent,
  type SourceExitEvent,
  type SourceFailedEvent,
  type SourceLogEvent,
  type SourceReadyEvent,
  type SourceRestartEvent,
  type StopOptions,
  type WhenFull,
} from "../../src/index.js";
import { createBatch, waitFor } from "../../src/testing/index.js";

describe("event map", () => {
  it("gives every listener its typed payload", () => {
    const agg = new Aggregator();
    agg
      .on("drop", (e) => expectTypeOf(e).toEqualTypeOf<DropEvent>())
      .on("retry", (e) => expectTypeOf(e).toEqualTypeOf<RetryEvent>())
      .on("deadLetter", (e) => expectTypeOf(e).toEqualTypeOf<DeadLetterEvent>())
      .on("delivered", (e) => expectTypeOf(e).toEqualTypeOf<DeliveredEvent>())
      .on("source:ready", (e) => expectTypeOf(e).toEqualTypeOf<SourceReadyEvent>())
      .on("source:exit", (e) => expectTypeOf(e).toEqualTypeOf<SourceExitEvent>())
      .on("source:restart", (e) => expectTypeOf(e).toEqualTypeOf<SourceRestartEvent>())
      .on("source:failed", (e) => expectTypeOf(e).toEqualTypeOf<SourceFailedEvent>())
      .on("source:log", (e) => expectTypeOf(e).toEqualTypeOf<SourceLogEvent>())
      .on("source:error", (e) => expectTypeOf(e).toEqualTypeOf<SourceErrorEvent>())
      .on("sink:error", (e) => expectTypeOf(e).toEqualTypeOf<SinkErrorEvent>())
      .on("error", (e) => expectTypeOf(e).toEqualTypeOf<AggregatorError>());
    agg.once("source:exit", (e) => expectTypeOf(e.signal).toEqualTypeOf<NodeJS.Signals | null>());

    // @ts-expect-error an event that does not exist
    agg.on("dropped", () => undefined);
    // @ts-expect-error a listener for another event's payload
    agg.on("drop", (e: RetryEvent) => void e.delayMs);
  });

  it("names exactly the documented events, each with one payload", () => {
    expectTypeOf<keyof AggregatorEvents>().toEqualTypeOf<
      | "drop"
      | "retry"
      | "deadLetter"
      | "delivered"
      | "source:ready"
      | "source:exit"
      | "source:restart"
      | "source:failed"
      | "source:error"
      | "source:log"
      | "sink:error"
      | "error"
    >();
    expectTypeOf<AggregatorEvents["drop"]>().toEqualTypeOf<[DropEvent]>();
    expectTypeOf<AggregatorEvents["source:exit"]>().toEqualTypeOf<[SourceExitEvent]>();
  });

  it("payload fields carry the documented types", () => {
    expectTypeOf<DropEvent["reason"]>().toEqualTypeOf<DropReason>();
    expectTypeOf<DropReason>().toEqualTypeOf<
      "queueFull" | "tooLarge" | "rejected" | "retriesExhausted" | "deadLetterFailed" | "unserializable" | "writeRefused" | "sinkRemoved" | "sourceRemoved" | "diskCorrupt" | "lostAtClose" | "collector"
    >();
    expectTypeOf<DropEvent>().toHaveProperty("count").toEqualTypeOf<number>();
    expectTypeOf<DropEvent["sink"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf<RetryEvent>().toExtend<{ sink: string; count: number; attempt: number; delayMs: number; wholeBatch: boolean }>();
    expectTypeOf<SourceExitEvent>().toExtend<{
      source: string;
      exitCode: number | null;
      forceKilled: boolean;
      expected: boolean;
      stderrTail: string[];
    }>();
    expectTypeOf<SinkErrorEvent["error"]>().toExtend<AggregatorError>();
  });
});

describe("options", () => {
  it("whenFull is the union of the three policies", () => {
    expectTypeOf<WhenFull>().toEqualTypeOf<"block" | "dropNewest" | "dropOldest">();
    expectTypeOf<QueueOptions["whenFull"]>().toEqualTypeOf<WhenFull | undefined>();
    expectTypeOf<AggregatorOptions["queue"]>().toEqualTypeOf<QueueOptions | undefined>();
    expectTypeOf<SinkOptions["queue"]>().toEqualTypeOf<QueueOptions | undefined>();

    // @ts-expect-error not a policy
    const bad: QueueOptions = { whenFull: "dropAll" };
    void bad;
  });

  it("CommandSource restartOnExit is one of three words", () => {
    expectTypeOf<CommandSourceOptions["restartOnExit"]>().toEqualTypeOf<"always" | "on-failure" | "never" | undefined>();
    // @ts-expect-error a boolean is not one of them
    const yes: CommandSourceOptions = { name: "c", command: "true", restartOnExit: true };
    void yes;
  });

  it("filter takes a LogRecord and returns a boolean; deadLetter names a sink", () => {
    type Filter = NonNullable<SinkOptions["filter"]>;
    expectTypeOf<Filter>().parameters.toEqualTypeOf<[LogRecord]>();
    expectTypeOf<Filter>().returns.toEqualTypeOf<boolean>();
    expectTypeOf<SinkOptions["deadLetter"]>().toEqualTypeOf<string | undefined>();

    const level: SinkOptions = { filter: (r) => r.log?.level === "error", deadLetter: "dlq" };
    void level;
    // @ts-expect-error the filter receives a record, not a string
    const wrongParam: SinkOptions = { filter: (line: string) => line.length > 0 };
    // @ts-expect-error the filter must say yes or no
    const wrongReturn: SinkOptions = { filter: (r: LogRecord) => r.message };
    void wrongParam;
    void wrongReturn;
  });

  it("every option of the documented example type-checks; wrong types do not", () => {
    const options = {
      checkpointDir: "./.log-agg",
      queue: { maxRecords: 100_000, maxBytes: 64 * 1024 * 1024, whenFull: "block" },
      batch: { maxRecords: 5_000, maxBytes: 5 * 1024 * 1024, maxWaitMs: 1_000 },
      retry: { baseDelayMs: 500, maxDelayMs: 30_000, factor: 2, maxAttempts: Infinity, maxRetryAfterMs: 300_000 },
      hostName: "web-1",
      credit: { records: 8_192, bytes: 8 * 1024 * 1024 },
    } satisfies AggregatorOptions;
    expectTypeOf(options).toExtend<AggregatorOptions>();
    expectTypeOf(Aggregator).constructorParameters.toEqualTypeOf<[options?: AggregatorOptions]>();

    // @ts-expect-error sizes are numbers
    const wrongSize: AggregatorOptions = { batch: { maxRecords: "5000" } };
    // @ts-expect-error unknown options are caught by the compiler too
    const unknownOption: AggregatorOptions = { queueSize: 10 };
    void wrongSize;
    void unknownOption;
  });
});

describe("Aggregator methods", () => {
  it("stop() resolves to a DeliveryReport; metrics() is a MetricsSnapshot; prometheus() is text", () => {
    expectTypeOf<Aggregator["stop"]>().parameters.toEqualTypeOf<[options?: StopOptions]>();
    expectTypeOf<Aggregator["stop"]>().returns.toEqualTypeOf<Promise<DeliveryReport>>();
    expectTypeOf<Aggregator["start"]>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<Aggregator["metrics"]>().returns.toEqualTypeOf<MetricsSnapshot>();
    expectTypeOf<Aggregator["prometheus"]>().returns.toEqualTypeOf<string>();
    expectTypeOf<Aggregator["state"]>().toEqualTypeOf<AggregatorState>();
    expectTypeOf<Aggregator>().toExtend<AsyncDisposable>();
  });

  it("addSource/addSink chain; removeSource/removeSink settle with counters; write accepts one or many records", () => {
    expectTypeOf<Aggregator["addSink"]>().parameters.toEqualTypeOf<[sink: Sink, options?: SinkOptions]>();
    expectTypeOf<Aggregator["addSink"]>().returns.toEqualTypeOf<Aggregator>();
    expectTypeOf<Aggregator["addSource"]>().returns.toEqualTypeOf<Aggregator>();
    expectTypeOf<Aggregator["addSource"]>().parameters.toEqualTypeOf<[source: SourceDefinition, options?: SourceOptions]>();
    expectTypeOf<SourceOptions["sinks"]>().toEqualTypeOf<readonly string[] | undefined>();
    expectTypeOf<Aggregator["removeSink"]>().returns.toEqualTypeOf<Promise<SinkCounters>>();
    expectTypeOf<Aggregator["removeSource"]>().returns.toEqualTypeOf<Promise<SourceCounters>>();
    expectTypeOf<Aggregator["write"]>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<Aggregator["write"]>().toBeCallableWith({ message: "one" });
    expectTypeOf<Aggregator["write"]>().toBeCallableWith([{ message: "a" }, { message: "b", "log.level": "warn" }]);
    expectTypeOf<Aggregator["write"]>().toBeCallableWith({ message: "x" }, { source: "jobs" });
    expectTypeOf<LogRecordInput>().toExtend<Record<string, unknown>>();
    // Input takes any level word (it is normalized); a record's level is one of the six.
    expectTypeOf<Aggregator["write"]>().toBeCallableWith({ message: "x", log: { level: "WARNING" } });
    expectTypeOf<NonNullable<LogRecord["log"]>["level"]>().toEqualTypeOf<LogLevel | undefined>();
    // @ts-expect-error a level word is not a LogRecord's level
    const record: LogRecord = { "@timestamp": "2024-01-01T00:00:00.000Z", message: "x", log: { level: "WARNING" } };
    void record;
    // @ts-expect-error the known fields keep their types in input: a message is a string
    const wrongMessage = (agg: Aggregator) => agg.write({ message: 5 });
    void wrongMessage;
  });

  it("the report and the snapshot have per-sink counters that add up to totals", () => {
    expectTypeOf<DeliveryReport["sinks"][string]>().toEqualTypeOf<SinkCounters>();
    expectTypeOf<DeliveryReport["totals"]>().toEqualTypeOf<{
      received: number;
      delivered: number;
      deadLettered: number;
      dropped: number;
      pending: number;
    }>();
    expectTypeOf<DeliveryReport["timedOut"]>().toEqualTypeOf<boolean>();
    expectTypeOf<MetricsSnapshot["sinks"][string]>().toEqualTypeOf<SinkMetricsSnapshot>();
    expectTypeOf<SinkMetricsSnapshot>().toExtend<SinkCounters>();
  });

  it("errors carry a stable code and narrow with isAggregatorError", () => {
    expectTypeOf<AggregatorError["code"]>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<SinkError>().toExtend<AggregatorError>();
    expectTypeOf<SinkError["retryable"]>().toEqualTypeOf<boolean>();
    expectTypeOf(isAggregatorError).guards.toEqualTypeOf<AggregatorError>();
  });

  it("each error class types `code` as its own codes, and makes errors of those codes only", () => {
    expectTypeOf<StateError["code"]>().toEqualTypeOf<"ERR_INVALID_STATE" | "ERR_AGGREGATOR_STOPPED" | "ERR_BACKLOG_FULL">();
    expectTypeOf<RecordError["code"]>().toEqualTypeOf<"ERR_RECORD_UNSERIALIZABLE">();
    expectTypeOf<CheckpointError["code"]>().toEqualTypeOf<"ERR_CHECKPOINT">();
    expectTypeOf<ListenerError["code"]>().toEqualTypeOf<"ERR_LISTENER">();
    expectTypeOf<CollectorError["code"]>().toExtend<ErrorCode>();
    expectTypeOf<"ERR_TLS" | "ERR_SINK_OPEN" | "ERR_SINK_FILTER">().toExtend<SinkError["code"]>();
    for (const C of [StateError, RecordError, CheckpointError, ListenerError]) expectTypeOf<InstanceType<typeof C>>().toExtend<AggregatorError>();
    // A sink reports its failures as SinkErrors with a sink code; other codes have their own classes.
    // @ts-expect-error ERR_INVALID_STATE is a StateError's code
    void new SinkError("ERR_INVALID_STATE", "closed");
    // @ts-expect-error ERR_SINK_SEND is a SinkError's code
    void new StateError("ERR_SINK_SEND", "failed");
    const error: unknown = undefined;
    if (error instanceof SinkError) expectTypeOf(error.code).toEqualTypeOf<SinkError["code"]>();
  });
});

describe("Sink interface", () => {
  it("an object literal with name and send is a sink; outcomes are per batch or per record", () => {
    const perRecord = {
      name: "callback",
      async send(batch, ctx) {
        expectTypeOf(batch).toEqualTypeOf<Batch>();
        expectTypeOf(ctx).toEqualTypeOf<SendContext>();
        expectTypeOf(batch.json).toEqualTypeOf<readonly string[]>();
        expectTypeOf(batch.records).toEqualTypeOf<readonly LogRecord[]>();
        ctx.signal.throwIfAborted();
        return Outcome.perRecord(batch.records.map((r) => (r.message === "" ? Outcome.reject("empty") : Outcome.delivered)));
      },
    } satisfies Sink;
    const minimal: Sink = { name: "void", send: () => undefined };
    const lifecycle: Sink = {
      name: "full",
      open: async ({ signal }) => void signal,
      send: () => Outcome.retry("http_503", 1_000),
      close: () => undefined,
      metrics: () => ({ requests: 1 }),
      pipelineDefaults: { batch: { maxRecords: 500 }, concurrency: 2 },
    };
    void [perRecord, minimal, lifecycle];

    expectTypeOf<Sink["send"]>().parameters.toEqualTypeOf<[batch: Batch, ctx: SendContext]>();
    expectTypeOf<Sink["send"]>().returns.toEqualTypeOf<Promise<SendResult> | SendResult>();
    expectTypeOf<RecordOutcome["status"]>().toEqualTypeOf<"delivered" | "retry" | "rejected">();
    expectTypeOf(Outcome.delivered).toExtend<RecordOutcome>();
    expectTypeOf(Outcome.retry).returns.toEqualTypeOf<RecordOutcome>();
    expectTypeOf(Outcome.reject).parameters.toEqualTypeOf<[reason: string, error?: unknown]>();
    expectTypeOf(Outcome.perRecord).returns.toExtend<SendResult>();
  });

  it("a wrong sink is a compile error", () => {
    // @ts-expect-error no send
    const noSend: Sink = { name: "x" };
    // @ts-expect-error send answers with an outcome, not a status string
    const stringResult: Sink = { name: "x", send: () => "ok" };
    // @ts-expect-error a rejection needs a reason
    const noReason: Sink = { name: "x", send: () => ({ status: "rejected" }) };
    // @ts-expect-error per-record outcomes are RecordOutcome objects
    const badOutcomes: Sink = { name: "x", send: () => ({ outcomes: [true] }) };
    // @ts-expect-error the name is a string
    const badName: Sink = { name: 1, send: () => undefined };
    void [noSend, stringResult, noReason, badOutcomes, badName];
  });

  it("the built-in sinks implement Sink", () => {
    expectTypeOf<MemorySink>().toExtend<Sink>();
    expectTypeOf<FileSink>().toExtend<Sink>();
    expectTypeOf<ConsoleSink>().toExtend<Sink>();
  });
});

describe("child-log-agg/testing", () => {
  it("waitFor resolves with the predicate's value; createBatch builds a Batch", () => {
    const probe = () => waitFor(() => 42 as const);
    expectTypeOf(probe).returns.toEqualTypeOf<Promise<42>>();
    // A lookup resolves with what it found, never with the `undefined` it returns while waiting.
    const lookup = () => waitFor(() => [{ message: "ready" }].find((r) => r.message === "ready"));
    expectTypeOf(lookup).returns.toEqualTypeOf<Promise<{ message: string }>>();
    const flag = () => waitFor((): boolean | number => 1);
    expectTypeOf(flag).returns.toEqualTypeOf<Promise<true | number>>();
    expectTypeOf(createBatch).returns.toEqualTypeOf<Batch>();
    expectTypeOf(createBatch).parameter(0).toEqualTypeOf<readonly LogRecordInput[]>();
  });
});
