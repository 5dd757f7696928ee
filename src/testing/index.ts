// child-log-agg/testing: what users import to test their pipelines and custom sinks.
export { createBatch } from "./create-batch.js";
export type { CreateBatchOptions } from "./create-batch.js";
