/** Reconnect backoff: exponential growth, capped, with jitter. */
export interface BackoffOptions {
  /** Delay before the first retry, ms. Default 100. */
  initialDelayMs: number;
  /** Cap of the delay, ms. Default 5,000. */
  maxDelayMs: number;
  /** Growth per attempt. Default 2. */
  multiplier: number;
}

/** Defaults of BackoffOptions. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2 };

/**
 * Delay before retry number `attempt` (0-based), ms. "Equal jitter": half the
 * exponential delay plus a random half, so producers that lost the same
 * server do not reconnect in lockstep, yet every delay still grows.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponential = Math.min(options.maxDelayMs, options.initialDelayMs * options.multiplier ** Math.max(0, attempt));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
