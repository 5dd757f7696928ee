// child-log-agg: public named exports only.
export { Aggregator } from "./aggregator.js";
export type { AggregatorState, StopOptions, WriteOptions } from "./aggregator.js";
export type {
  AggregatorOptions,
  SinkOptions,
  SourceOptions,
  QueueOptions,
  BatchOptions,
  RetryOptions,
  WhenFull,
  DiskQueueOptions,
} from "./options.js";
export type {
  AggregatorEvents,
  DropReason,
  DropEvent,
  RetryEvent,
  DeadLetterEvent,
  DeliveredEvent,
  SourceReadyEvent,
  SourceExitEvent,
  SourceRestartEvent,
  SourceFailedEvent,
  SourceErrorEvent,
  SinkErrorEvent,
  SourceLogEvent,
} from "./events.js";
export type {
  DeliveryReport,
  MetricsSnapshot,
  SinkCounters,
  SinkMetricsSnapshot,
  SourceCounters,
  SourceMetricsSnapshot,
  DropCounts,
  DiskQueueMetrics,
} from "./report.js";
export {
  AggregatorError,
  InvalidOptionError,
  DuplicateNameError,
  UnknownSinkError,
  StateError,
  RecordError,
  CollectorError,
  CheckpointError,
  SinkError,
  ListenerError,
  DiskQueueError,
  isAggregatorError,
} from "./errors.js";
export type { ErrorCode, AggregatorErrorOptions, SinkErrorOptions } from "./errors.js";
export type { LogRecord, LogRecordInput, LogLevel, RecordShape } from "./record.js";
export { normalizeLevel, parseTimestamp, syslogSeverity, LOG_LEVELS } from "./record.js";
export { Outcome } from "./sinks/sink.js";
export type { Sink, Batch, SendResult, RecordOutcome, SendContext, SinkLifecycleContext, SinkCloseContext, SinkMetrics } from "./sinks/sink.js";
export { inspectDiskQueue } from "./pipeline/disk-queue.js";
export type { DiskQueueInspection, DiskQueueSegmentInspection } from "./pipeline/disk-queue.js";
export { MemorySink } from "./sinks/memory.js";
export type { MemorySinkOptions, FailNextOptions, RuleOptions, RecordPredicate, WaitForCountOptions } from "./sinks/memory.js";
export { FileSink } from "./sinks/file.js";
export type { FileSinkOptions, FileRotateOptions, FsyncPolicy } from "./sinks/file.js";
export { ConsoleSink } from "./sinks/console.js";
export type { ConsoleSinkOptions, ConsoleFormat } from "./sinks/console.js";
export { ElasticsearchSink } from "./sinks/elasticsearch.js";
export type { ElasticsearchSinkOptions, DataStreamName } from "./sinks/elasticsearch.js";
export { GelfSink } from "./sinks/gelf.js";
export type { GelfSinkOptions } from "./sinks/gelf.js";
export type { GelfCompression } from "./sinks/gelf-chunker.js";
export { LogstashSink } from "./sinks/logstash.js";
export type { LogstashSinkOptions } from "./sinks/logstash.js";
export type { SinkTlsOptions } from "./sinks/transport/tls.js";
export type { ReconnectOptions } from "./sinks/transport/options.js";
export type { ParserSpec, RegexParserSpec } from "./collector/parse/index.js";
export type { MultilineSpec, MultilinePreset } from "./collector/multiline.js";
export type { SourceDefinition } from "./sources/runtime.js";
export { CommandSource } from "./sources/command-source.js";
export { FileSource } from "./sources/file-source.js";
export { ScriptSource } from "./sources/script-source.js";
export { NetworkSource } from "./sources/network-source.js";
export type {
  NetworkSourceOptions,
  NetworkTlsOptions,
  NetworkGelfOptions,
  NetworkHttpOptions,
  NetworkAddress,
  NetworkProtocol,
} from "./sources/network-source.js";
export type { ScriptSourceOptions } from "./sources/script-source.js";
export type { FileSourceOptions } from "./sources/file-source.js";
export type { ContainerFormat } from "./collector/container-log.js";
export type { CommandSourceOptions } from "./sources/command-source.js";
export type { RestartOnExit } from "./sources/collector-source.js";
export type { CollectorSourceOptions } from "./sources/collector-source.js";
export type { RestartOptions } from "./sources/restart-policy.js";
