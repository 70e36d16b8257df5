import fs from 'node:fs/promises';
import path from 'node:path';
import type { BenchResults, Distribution } from '../lib/results';

/** A Vega-Lite spec (kept loose: vega-lite is an ES module, loaded with import() at render time). */
export type VegaLiteSpec = Record<string, unknown>;

/** One plot: file name under the results directory, title and spec. */
export interface PlotSpec {
  file: string;
  title: string;
  spec: VegaLiteSpec;
}

const WIDTH = 560;
const HEIGHT = 300;
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Percentile labels for the x axis of latency distributions ("p50", "p99.9", "max"). */
export function percentileLabel(p: number): string {
  return p === 100 ? 'max' : p === 0 ? 'min' : `p${p}`;
}

function latencySpec(title: string, distributions: readonly Distribution[]): VegaLiteSpec {
  const order = [...new Set(distributions.flatMap((d) => d.points.map(([p]) => p)))].sort((a, b) => a - b).map(percentileLabel);
  const values = distributions.flatMap((d) => d.points.filter(([, ms]) => Number.isFinite(ms)).map(([p, ms]) => ({ series: `${d.label} (n=${d.count.toLocaleString('en-US')})`, percentile: percentileLabel(p), ms: Math.max(ms, 0.001) })));
  return {
    $schema: SCHEMA,
    title,
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'percentile', type: 'ordinal', sort: order, title: 'percentile (all runs merged)', axis: { labelAngle: 0 } },
      y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency, ms (log scale)' },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 500 } },
    },
  };
}

/** The specs of every plot the results allow (a plot whose data is missing is left out). */
export function plotSpecs(results: BenchResults): PlotSpec[] {
  const plots: PlotSpec[] = [];
  const scenario = (id: string) => results.scenarios.find((s) => s.id === id && s.status === 'ok');

  // Write throughput of every approach, log scale, with the min–max of the runs.
  const writeIds: Array<[string, string]> = [
    ['limit.psql_noindex_rows_per_sec', 'psql \\copy, no indexes'],
    ['limit.psql_rows_per_sec', 'psql \\copy'],
    ['limit.copy_rows_per_sec', 'bare COPY (Node)'],
    ['ingest.s1.events_per_sec', 'orderflow, 1 stream'],
    ['ingest.s4.events_per_sec', 'orderflow, 4 streams'],
    ['ingest.s16.events_per_sec', 'orderflow, 16 streams'],
    ['alternatives.multi_row_rows_per_sec', '1,000-row INSERT'],
    ['alternatives.per_row_rows_per_sec', 'INSERT per row'],
  ];
  const all = new Map(results.scenarios.flatMap((s) => s.figures).map((f) => [f.id, f]));
  const bars = writeIds.flatMap(([id, label]) => {
    const f = all.get(id);
    return f ? [{ approach: label, median: f.summary.median, min: f.summary.min, max: f.summary.max }] : [];
  });
  if (bars.length > 0) {
    // A log-scale bar needs an explicit base: its default base, zero, has no logarithm.
    const lows = bars.map((b) => (Number.isFinite(b.min) ? b.min : b.median)).filter((v) => v > 0);
    const highs = bars.map((b) => (Number.isFinite(b.max) ? b.max : b.median)).filter((v) => v > 0);
    const domainMin = 10 ** Math.floor(Math.log10(Math.min(...lows, 1e3)));
    const domainMax = 10 ** Math.ceil(Math.log10(Math.max(...highs, 1e4) * 1.5));
    const x = { type: 'quantitative', scale: { type: 'log', domain: [domainMin, domainMax] } };
    plots.push({
      file: 'write-throughput.svg',
      title: 'Write throughput: the same fill rows, same schema',
      spec: {
        $schema: SCHEMA,
        title: 'Fill rows per second into the orderflow schema (log scale; whiskers: min–max of runs)',
        width: WIDTH,
        height: 32 * bars.length,
        data: { values: bars },
        encoding: { y: { field: 'approach', type: 'nominal', sort: null, title: null, axis: { labelLimit: 300 } } },
        layer: [
          { mark: { type: 'bar', opacity: 0.8 }, encoding: { x: { field: 'median', ...x, title: 'rows/s (median of runs, log scale)' }, x2: { datum: domainMin } } },
          { mark: { type: 'rule', strokeWidth: 2 }, encoding: { x: { field: 'min', ...x }, x2: { field: 'max' } } },
          { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { x: { field: 'max', ...x }, text: { field: 'median', type: 'quantitative', format: ',.0f' } } },
        ],
      },
    });
  }

  const sweep = scenario('sweep')?.sweep ?? [];
  if (sweep.length > 0) {
    const values = sweep.map((p) => ({ batchMaxMs: p.batchMaxMs, median: p.eventsPerSec.median, min: p.eventsPerSec.min, max: p.eventsPerSec.max }));
    plots.push({
      file: 'throughput-vs-batch-window.svg',
      title: 'Ingest throughput vs batch window (4 streams)',
      spec: {
        $schema: SCHEMA,
        title: 'Acked events/s at saturation, 4 streams, by INGEST_BATCH_MAX_MS (whiskers: min–max of runs)',
        width: WIDTH,
        height: HEIGHT,
        data: { values },
        encoding: { x: { field: 'batchMaxMs', type: 'ordinal', title: 'INGEST_BATCH_MAX_MS', axis: { labelAngle: 0 } } },
        layer: [
          { mark: { type: 'line', point: true }, encoding: { y: { field: 'median', type: 'quantitative', title: 'acked events/s', scale: { zero: true } } } },
          { mark: 'rule', encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
        ],
      },
    });
  }

  const ingestDists = scenario('ingest')?.distributions ?? [];
  if (ingestDists.length > 0) plots.push({ file: 'ingest-latency.svg', title: 'Ingest receive→ack latency at fixed offered loads', spec: latencySpec('Receive→ack latency (write of the batch → Ack covering it), 4 streams, open loop', ingestDists) });

  const readDists = [...(scenario('floor')?.distributions ?? []), ...(scenario('reads')?.distributions ?? [])];
  if (readDists.length > 0) plots.push({ file: 'read-latency.svg', title: 'Read latency at 1,000 calls/s offered', spec: latencySpec('Unary call latency at a fixed offered rate (open loop, from intended send time)', readDists) });
  return plots;
}

/** Renders a Vega-Lite spec to SVG text in pure JS (no browser, no native canvas). */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const vegaLite = (await import('vega-lite')) as unknown as { compile(spec: unknown): { spec: unknown } };
  const vega = (await import('vega')) as unknown as {
    parse(spec: unknown): unknown;
    View: new (runtime: unknown, options: { renderer: string }) => { toSVG(): Promise<string>; finalize(): void };
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes every plot the results allow into `outDir`; returns what was written. Stale plots of the same names are removed first. */
export async function writePlots(results: BenchResults, outDir: string): Promise<Array<{ file: string; title: string }>> {
  for (const name of ['write-throughput.svg', 'throughput-vs-batch-window.svg', 'ingest-latency.svg', 'read-latency.svg']) {
    await fs.rm(path.join(outDir, name), { force: true });
  }
  const written: Array<{ file: string; title: string }> = [];
  for (const plot of plotSpecs(results)) {
    const svg = await renderSvg({ ...plot.spec, background: 'white', config: { font: 'sans-serif' } });
    await fs.writeFile(path.join(outDir, plot.file), svg);
    written.push({ file: plot.file, title: plot.title });
  }
  return written;
}
