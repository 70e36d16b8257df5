/**
 * Pure statistics for the benchmark: percentiles of latency samples and the
 * median-with-spread summary every reported figure carries.
 */

/**
 * The p-th percentile (0 ≤ p ≤ 100) of ascending-sorted `sorted`, nearest-rank
 * method: the smallest sample with at least p% of samples at or below it.
 * NaN when there are no samples.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  if (p === 0) return sorted[0]!;
  // Nearest rank, so p99.9 of 1,000 samples is the largest one, never an
  // interpolation below what any request saw.
  // (The epsilon keeps 0.999 × 1000 = 999.0000000000001 at rank 999.)
  const rank = Math.ceil((p / 100) * n - 1e-9);
  return sorted[Math.min(n, Math.max(1, rank)) - 1]!;
}

/** Median of `values` (mean of the two middle values for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = finite.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

/** A figure measured over several runs. */
export interface Summary {
  /** Median over the runs (the reported value). */
  median: number;
  min: number;
  max: number;
  /** Half the min–max range relative to the median, percent (±). NaN with no runs or a zero median. */
  spreadPct: number;
  /** Every run's value, in run order. */
  runs: number[];
}

/** Summarises one figure's per-run values: median, min, max and ± spread. Non-finite runs are ignored. */
export function summarize(runs: readonly number[]): Summary {
  const finite = runs.filter((v) => Number.isFinite(v));
  const med = median(finite);
  const min = finite.length ? Math.min(...finite) : Number.NaN;
  const max = finite.length ? Math.max(...finite) : Number.NaN;
  const spreadPct = finite.length && med !== 0 ? ((max - min) / 2 / Math.abs(med)) * 100 : Number.NaN;
  return { median: med, min, max, spreadPct, runs: [...runs] };
}

/** Percentile points every latency distribution reports (and plots). */
export const DISTRIBUTION_PERCENTILES: readonly number[] = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100];

/** Latency percentiles of one measurement, ms. */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** [percentile, ms] at DISTRIBUTION_PERCENTILES. */
  distribution: Array<[number, number]>;
}

/**
 * Collects latency samples (ms) and answers percentiles. A sorted array, not a
 * histogram: a run records at most a few hundred thousand samples, and exact
 * ranks keep the tail honest.
 */
export class LatencyRecorder {
  private samples: Float64Array;
  private length = 0;
  private sorted = true;

  constructor(initialCapacity = 4_096) {
    this.samples = new Float64Array(Math.max(16, initialCapacity));
  }

  /** Number of samples recorded. */
  get count(): number {
    return this.length;
  }

  /** Records one latency, ms; `weight` records it that many times (one batch of events shares a latency). */
  record(latencyMs: number, weight = 1): void {
    for (let i = 0; i < weight; i++) {
      if (this.length === this.samples.length) {
        const grown = new Float64Array(this.samples.length * 2);
        grown.set(this.samples);
        this.samples = grown;
      }
      this.samples[this.length++] = latencyMs;
    }
    this.sorted = false;
  }

  /** Adds every sample of `other`. */
  merge(other: LatencyRecorder): void {
    const values = other.values();
    for (let i = 0; i < values.length; i++) this.record(values[i]!);
  }

  /** The samples recorded, ascending (a view; do not modify). */
  values(): Float64Array {
    const view = this.samples.subarray(0, this.length);
    if (!this.sorted) {
      view.sort();
      this.sorted = true;
    }
    return view;
  }

  /** p-th percentile in ms (NaN when empty). */
  percentile(p: number): number {
    return percentileOfSorted(this.values(), p);
  }

  /** p50, p99, p99.9, max and the distribution points. */
  summary(): LatencySummary {
    const v = this.values();
    return {
      count: v.length,
      p50Ms: percentileOfSorted(v, 50),
      p99Ms: percentileOfSorted(v, 99),
      p999Ms: percentileOfSorted(v, 99.9),
      maxMs: percentileOfSorted(v, 100),
      distribution: DISTRIBUTION_PERCENTILES.map((p) => [p, percentileOfSorted(v, p)]),
    };
  }
}
