// When to restart a collector: exponential backoff with full jitter, reset after a stable run, and a breaker
// that marks the source failed after `maxRestarts` exits inside `windowMs` (a crash loop).
import { checkInt, checkObject } from "../options.js";
import { checkKeys, optionKeys } from "../util/validate.js";

export interface RestartOptions {
  /** First backoff ceiling. @default 500 */
  baseDelayMs?: number;
  /** Backoff cap. @default 30_000 */
  maxDelayMs?: number;
  /** A run this long resets the backoff to the base. @default 30_000 */
  resetAfterMs?: number;
  /** Exits within `windowMs` that trip the breaker (the source is marked failed). @default 5 */
  maxRestarts?: number;
  /** @default 60_000 */
  windowMs?: number;
}

export type ResolvedRestart = Required<RestartOptions>;

const RESTART_KEYS = optionKeys<RestartOptions>()(["baseDelayMs", "maxDelayMs", "resetAfterMs", "maxRestarts", "windowMs"]);

export function resolveRestart(path: string, o: RestartOptions | undefined): ResolvedRestart {
  checkObject(path, o);
  checkKeys(path, o, RESTART_KEYS);
  checkInt(`${path}.baseDelayMs`, o?.baseDelayMs, 0);
  checkInt(`${path}.maxDelayMs`, o?.maxDelayMs, 0);
  checkInt(`${path}.resetAfterMs`, o?.resetAfterMs, 0);
  checkInt(`${path}.maxRestarts`, o?.maxRestarts, 0);
  checkInt(`${path}.windowMs`, o?.windowMs, 1);
  return {
    baseDelayMs: o?.baseDelayMs ?? 500,
    maxDelayMs: o?.maxDelayMs ?? 30_000,
    resetAfterMs: o?.resetAfterMs ?? 30_000,
    maxRestarts: o?.maxRestarts ?? 5,
    windowMs: o?.windowMs ?? 60_000,
  };
}

export class RestartPolicy {
  private exits: number[] = [];
  private streak = 0;

  constructor(
    private readonly o: ResolvedRestart,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Record an unexpected exit after a run of `ranMs`. Returns the delay before the next start, or `undefined`
   * when the breaker tripped.
   */
  onExit(now: number, ranMs: number): number | undefined {
    this.exits = this.exits.filter((t) => now - t < this.o.windowMs);
    this.exits.push(now);
    if (this.exits.length > this.o.maxRestarts) return undefined;
    this.streak = ranMs >= this.o.resetAfterMs ? 1 : this.streak + 1;
    const ceiling = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (this.streak - 1));
    // Full jitter, but never less than half the ceiling: a crash loop must actually slow down.
    return Math.floor(ceiling / 2 + (this.random() * ceiling) / 2);
  }
}
