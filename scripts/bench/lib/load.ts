import { performance } from 'node:perf_hooks';
import { LatencyRecorder } from './stats';

/**
 * Load generators. Open loop sends at a fixed offered rate, scheduled by
 * intended send time: latency is measured from when a request *should* have
 * left, so a stalled server or a late sender shows up in the tail instead of
 * silently lowering the rate (no coordinated omission). Closed loop keeps a
 * fixed number of calls in flight, for throughput.
 */

/** Intended send time of the i-th request (0-based) of an open loop started at `startMs`, ms. */
export function intendedSendTimeMs(index: number, startMs: number, ratePerSec: number): number {
  return startMs + (index * 1_000) / ratePerSec;
}

/** How many requests an open loop should have sent `elapsedMs` after its start (request 0 is due at once). */
export function dueCount(elapsedMs: number, ratePerSec: number): number {
  if (elapsedMs < 0) return 0;
  return Math.floor((elapsedMs * ratePerSec) / 1_000) + 1;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Hooks called at the edges of the measured window (after warm-up), e.g. to sample server CPU. */
export interface WindowHooks {
  onWindowStart?: () => void;
  onWindowEnd?: () => void;
}

/** Options of runOpenLoop. */
export interface OpenLoopOptions extends WindowHooks {
  ratePerSec: number;
  /** Measured time after warm-up, ms. */
  durationMs: number;
  /** Requests sent during warm-up are not recorded, ms. */
  warmupMs: number;
  /** Sends request `index`; resolves when it completed. Rejections count as errors. */
  call: (index: number) => Promise<void>;
  /** How long to wait for outstanding requests at the end, ms. Default 10,000. */
  drainTimeoutMs?: number;
}

/** What a load run measured. */
export interface LoadResult {
  /** Requests completed in the measured window. */
  completed: number;
  errors: number;
  /** First error message seen, for the report. */
  firstError?: string;
  /** Requests still outstanding when the drain timeout passed (open loop). */
  timedOut: number;
  /** Length of the measured window, ms. */
  elapsedMs: number;
  /** Completed requests per second over the window. */
  ratePerSec: number;
  latency: LatencyRecorder;
}

/**
 * Sends `call(i)` at `ratePerSec` for warmup + duration, recording each
 * measured request's latency from its intended send time.
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<LoadResult> {
  const latency = new LatencyRecorder(Math.ceil((options.ratePerSec * options.durationMs) / 1_000) + 16);
  const start = performance.now();
  const windowStart = start + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  let sent = 0;
  let outstanding = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let windowStarted = false;
  let allDone: (() => void) | undefined;
  /** Intended send times of measured requests still unanswered, by index. */
  const pendingMeasured = new Map<number, number>();
  let drainEnded = false;

  const fire = (index: number) => {
    const intended = intendedSendTimeMs(index, start, options.ratePerSec);
    const measured = intended >= windowStart && intended < windowEnd;
    outstanding++;
    if (measured) pendingMeasured.set(index, intended);
    options.call(index).then(
      () => {
        if (measured && !drainEnded) {
          latency.record(performance.now() - intended);
          completed++;
        }
      },
      (err: unknown) => {
        if (measured && !drainEnded) errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      },
    ).finally(() => {
      pendingMeasured.delete(index);
      outstanding--;
      if (outstanding === 0 && allDone) allDone();
    });
  };

  const total = dueCount(options.warmupMs + options.durationMs - 1e-9, options.ratePerSec);
  while (sent < total) {
    const now = performance.now();
    if (!windowStarted && now >= windowStart) {
      windowStarted = true;
      options.onWindowStart?.();
    }
    const due = Math.min(total, dueCount(now - start, options.ratePerSec));
    while (sent < due) fire(sent++);
    if (sent < total) {
      const next = intendedSendTimeMs(sent, start, options.ratePerSec) - performance.now();
      await sleep(Math.max(0, Math.min(next, 5)));
    }
  }
  if (!windowStarted) options.onWindowStart?.();
  const now = performance.now();
  if (now < windowEnd) await sleep(windowEnd - now);
  options.onWindowEnd?.();
  const drained = outstanding === 0 ? Promise.resolve() : new Promise<void>((resolve) => (allDone = resolve));
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs)))]);
  clearTimeout(timer);
  // Requests still unanswered count in the latency at what they waited so far (a lower
  // bound), so an overloaded run cannot report only the lucky ones.
  drainEnded = true;
  const end = performance.now();
  for (const intended of pendingMeasured.values()) latency.record(end - intended);
  return { completed, errors, firstError, timedOut: pendingMeasured.size, elapsedMs: options.durationMs, ratePerSec: (completed * 1_000) / options.durationMs, latency };
}

/** Options of runClosedLoop. */
export interface ClosedLoopOptions extends WindowHooks {
  /** Requests kept in flight. */
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  /** Sends one request; resolves when it completed. */
  call: (index: number) => Promise<void>;
}

/** Keeps `concurrency` requests in flight for warmup + duration; counts the requests that completed inside the window. */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<LoadResult> {
  const latency = new LatencyRecorder();
  const start = performance.now();
  const windowStart = start + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  let index = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let windowStarted = false;
  let windowEnded = false;
  let actualStart = windowStart;
  let actualEnd = windowEnd;

  const markEdges = (now: number) => {
    if (!windowStarted && now >= windowStart) {
      windowStarted = true;
      actualStart = now;
      options.onWindowStart?.();
    }
    if (!windowEnded && now >= windowEnd) {
      windowEnded = true;
      actualEnd = now;
      options.onWindowEnd?.();
    }
  };
  // A timer marks the window edges even when every request is stuck.
  const edgeTimer = setInterval(() => markEdges(performance.now()), 5);

  const worker = async () => {
    for (;;) {
      const sentAt = performance.now();
      if (sentAt >= windowEnd) return;
      try {
        await options.call(index++);
        const done = performance.now();
        // Counted by completion time: the window's throughput is what completed in it.
        if (done >= windowStart && done <= windowEnd) {
          latency.record(done - sentAt);
          completed++;
        }
      } catch (err) {
        const done = performance.now();
        if (done >= windowStart && done <= windowEnd) errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        // A failing call returns at once; do not spin.
        await sleep(1);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  clearInterval(edgeTimer);
  markEdges(Math.max(performance.now(), windowEnd));
  const elapsedMs = actualEnd - actualStart;
  return { completed, errors, firstError, timedOut: 0, elapsedMs, ratePerSec: (completed * 1_000) / elapsedMs, latency };
}
