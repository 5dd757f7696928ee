// Child-process entry point forked by the supervisor.
export {};
