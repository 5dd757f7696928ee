import type { Aggregator } from "../../src/index.js";

/**
 * How the sources of `agg` end, as it announces it: the state each is in when its first `source:exit` fires
 * (`stopped` for one that ended there), the sources that reported a `source:error`, and those restarted.
 */
export function watchSourceEnds(agg: Aggregator): { stateAtExit: Map<string, string>; errors: string[]; restarted: Set<string> } {
  const stateAtExit = new Map<string, string>();
  agg.on("source:exit", (e) => {
    if (!stateAtExit.has(e.source)) stateAtExit.set(e.source, agg.metrics().sources[e.source]!.state);
  });
  const errors: string[] = [];
  agg.on("source:error", (e) => errors.push(e.source));
  const restarted = new Set<string>();
  agg.on("source:restart", (e) => restarted.add(e.source));
  return { stateAtExit, errors, restarted };
}
