// Tests poll real I/O with the same waitFor users get from child-log-agg/testing (one implementation, tested once).
export { waitFor, WaitForTimeoutError } from "../../src/testing/wait-for.js";
export type { WaitForOptions } from "../../src/testing/wait-for.js";
