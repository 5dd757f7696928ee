// child-log-agg/collector: the kit for custom collectors that run inside a child process.
export {};
