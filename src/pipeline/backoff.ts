// One backoff policy for every sink: exponential ceiling, full jitter, a cap, and Retry-After honoured.
import type { ResolvedRetry } from "../options.js";

/**
 * Delay before attempt `attempt + 1`, after `attempt` failed (attempt ≥ 1).
 * Full jitter: uniform in [0, min(maxDelayMs, baseDelayMs · factor^(attempt−1))]. A server's Retry-After
 * (clamped to `maxRetryAfterMs`) is a floor: we never come back sooner than it asked.
 */
export function backoffDelay(
  attempt: number,
  policy: ResolvedRetry,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * Math.pow(policy.factor, Math.max(0, attempt - 1)));
  const jittered = Math.floor(random() * ceiling);
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0) {
    return Math.max(jittered, Math.min(Math.ceil(retryAfterMs), policy.maxRetryAfterMs));
  }
  return jittered;
}
