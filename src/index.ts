// child-log-agg: public named exports only.
export {
  AggregatorError,
  InvalidOptionError,
  DuplicateNameError,
  UnknownSinkError,
  CollectorError,
  SinkError,
  isAggregatorError,
} from "./errors.js";
export type { ErrorCode, AggregatorErrorOptions } from "./errors.js";
export type { LogRecord, LogRecordInput, LogLevel } from "./record.js";
export { normalizeLevel, parseTimestamp, syslogSeverity, LOG_LEVELS } from "./record.js";
export { Outcome } from "./sinks/sink.js";
export type { Sink, Batch, SendResult, RecordOutcome, SendContext, SinkLifecycleContext, SinkMetrics } from "./sinks/sink.js";
