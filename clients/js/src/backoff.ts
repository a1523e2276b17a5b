/** How long a client waits between reconnection attempts. */
export interface Backoff {
  /** The first wait, before jitter (ms). */
  minMs: number;
  /** The longest wait, before jitter (ms). */
  maxMs: number;
}

/** The defaults of protocol.md section 1: 1 s doubling to 60 s. */
export const DEFAULT_BACKOFF: Backoff = { minMs: 1000, maxMs: 60000 };

/**
 * backoffDelay is the wait before reconnection attempt number attempt + 1
 * (attempt 0 is the first wait after a lost connection): minMs doubling per
 * attempt up to maxMs, multiplied by a random factor in [0.5, 1.5) so that
 * clients that lost the same broker do not come back in the same second.
 * It is at least 1 ms. random defaults to Math.random.
 */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.minMs * 2 ** Math.max(0, attempt));
  return Math.max(1, Math.round(base * (0.5 + random())));
}
