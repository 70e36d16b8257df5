import type { Metric, Registry } from 'prom-client';

/** One label set of a FastHistogram; observe() allocates nothing. */
export interface HistogramSeries {
  observe(value: number): void;
}

interface Series extends HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** Options of a FastHistogram (names follow Prometheus conventions). */
export interface FastHistogramOptions {
  name: string;
  help: string;
  /** Upper bounds, ascending; +Inf is implied. */
  buckets: readonly number[];
  registry: Registry;
}

/**
 * A Prometheus histogram for the per-statement hot path. prom-client's
 * Histogram builds a label object and a label hash on every observe() (about
 * 1.5 µs each on the CI machine, twice per query); here the caller keeps a
 * series per label set and observe() is a bucket scan and three additions.
 * The registry reads it through get(), in prom-client's own format.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  private readonly series = new Map<string, Series>();

  constructor(options: FastHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.bounds = [...options.buckets];
    options.registry.registerMetric(this as unknown as Metric);
  }

  /** The series of `labels` (created on first use); keep it, lookups are for set-up, not for each observation. */
  labels(labels: Readonly<Record<string, string>> = {}): HistogramSeries {
    const key = JSON.stringify(labels);
    let series = this.series.get(key);
    if (series === undefined) {
      const bounds = this.bounds;
      const counts = new Float64Array(bounds.length);
      const created: Series = {
        labels: { ...labels },
        counts,
        sum: 0,
        count: 0,
        observe(value: number): void {
          let i = 0;
          while (i < bounds.length && value > bounds[i]!) i++;
          if (i < counts.length) counts[i]!++;
          created.sum += value;
          created.count++;
        },
      };
      series = created;
      this.series.set(key, series);
    }
    return series;
  }

  /** Prometheus data: cumulative `_bucket` series, `_sum` and `_count`. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] }> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const series of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i]!;
        values.push({ labels: { ...series.labels, le: this.bounds[i]! }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Zeroes every series (prom-client's registry.resetMetrics()). */
  reset(): void {
    for (const series of this.series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
