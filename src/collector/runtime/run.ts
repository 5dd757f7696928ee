// What every collector kind (command, file, script, network) gives the child's main loop to drive it.

export interface CollectorRun {
  /** Out of credit: stop reading input (the channel said no to the last push). */
  pause(): void;
  /** Credit arrived: read again. */
  resume(): void;
  /** Stop reading; resolves when everything read so far is pushed to the channel. */
  stop(killAfterMs: number): Promise<void>;
  /**
   * Resolves when the collector ended by itself (a command exited, a script's function returned). A collector
   * that only ends when stopped never resolves it. `error` set means a crash (the supervisor restarts it).
   * `code`, `signal` and `stderrTail` (a command's last stderr lines) are what the host reports for the exit.
   */
  /**
   * Resolves when what the collector runs ended. `beforeStop`: it ended by itself before a stop was asked for, though
   * `done` resolved later (a command's last output waited for credit): its exit is still reported.
   */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string; stderrTail?: string[]; beforeStop?: boolean }>;
  /**
   * Process groups it started outside the collector's own (a command's) and has not killed yet. They do not die
   * with the collector's group: main kills them on its way out, and the host (told in READY) if the collector is
   * killed before it can.
   */
  processGroups?(): number[];
  /** Every record pushed with a seq below `seq` is settled by every sink: commit their positions. */
  ack?(seq: number): void;
  /** Last words before the process exits (the host is done): persist final positions. */
  close?(): Promise<void>;
  /** Sent with READY and handed to the host-side source (e.g. the addresses a network collector bound). */
  readonly info?: unknown;
  /** Counters for STATS frames: linesRead, bytesRead and parseErrors are summed into the source's report. */
  counters(): Record<string, number>;
}
