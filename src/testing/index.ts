// child-log-agg/testing: what users import to test their pipelines and custom sinks.
export { createBatch } from "./create-batch.js";
export type { CreateBatchOptions } from "./create-batch.js";
export { waitFor, WaitForTimeoutError } from "./wait-for.js";
export type { Truthy, WaitForOptions } from "./wait-for.js";
export { MemorySink } from "../sinks/memory.js";
export type { MemorySinkOptions, FailNextOptions, RuleOptions, RecordPredicate, WaitForCountOptions } from "../sinks/memory.js";
