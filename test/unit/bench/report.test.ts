import { expect } from 'chai';
import { FigureCollector, resolveRatios, type BenchMeta, type BenchResults, type FigureResult } from '../../../scripts/bench/lib/results';
import { summarize } from '../../../scripts/bench/lib/stats';
import { figureTable, formatRatio, formatSpread, formatValue, renderMarkdown, targetTable } from '../../../scripts/bench/report/markdown';
import { percentileLabel, plotSpecs, renderSvg } from '../../../scripts/bench/report/plots';
import { evaluateTargets, TARGET_FIGURES, TARGETS } from '../../../scripts/bench/report/targets';

function figure(id: string, runs: number[], extra: Partial<FigureResult> = {}): FigureResult {
  return { id, label: id, unit: 'rows/s', better: 'higher', summary: summarize(runs), ...extra };
}

const META: BenchMeta = {
  startedAt: '2025-01-01T00:00:00.000Z',
  finishedAt: '2025-01-01T00:10:00.000Z',
  elapsedMs: 600_000,
  gitCommit: '0123456789abcdef',
  gitBranch: 'bench',
  hostname: 'h',
  cpus: 2,
  cpuModel: 'Test CPU',
  memoryBytes: 24 * 2 ** 30,
  node: 'v20.0.0',
  postgres: 'PostgreSQL 18.4 on x86_64-linux',
  postgresSettings: { fsync: 'on', synchronous_commit: 'on', shared_buffers: '128MB' },
  psql: '15.18',
  runs: 3,
  quick: false,
  only: ['limit', 'alternatives'],
  ingestClient: 'raw-stub',
  serviceMain: 'dist/src/main.js',
  loadAverage: { start: 0.1, end: 1.9 },
};

describe('bench/report', () => {
  it('formats rates as whole numbers and latencies and µs with two decimals', () => {
    expect(formatValue(123_456.7, 'rows/s')).to.equal('123,457');
    expect(formatValue(3.14159, 'ms')).to.equal('3.14');
    expect(formatValue(210.44, 'µs/call')).to.equal('210.4');
    expect(formatValue(Number.NaN, 'ms')).to.equal('n/a');
  });

  it('shows the spread over runs, or says there was one run', () => {
    expect(formatSpread(figure('x', [90, 100, 110]))).to.equal('±10.0% (90–110)');
    expect(formatSpread(figure('x', [100]))).to.equal('1 run');
    expect(formatSpread(figure('x', [0, 0, 0]))).to.equal('±0.0% (0–0)');
    expect(formatSpread(figure('x', [Number.NaN, 100, Number.NaN]))).to.equal('1 run; 1 of 3 runs had a value');
    expect(formatSpread(figure('x', [90, Number.NaN, 110]))).to.equal('±10.0% (90–110); 2 of 3 runs had a value');
  });

  it('resolves ratios to the referenced figure and names the limit and the floor', () => {
    const figs = [figure('limit.best_rows_per_sec', [200_000]), figure('alternatives.per_row_rows_per_sec', [2_000], { ratioTo: 'limit.best_rows_per_sec' }), figure('reads.x.open_p99_ms', [30], { ratioTo: 'floor.open_p99_ms' }), figure('floor.open_p99_ms', [20])];
    resolveRatios(figs);
    expect(figs[1]!.ratio).to.be.closeTo(0.01, 1e-12);
    expect(formatRatio(figs[1]!)).to.equal('0.01× limit');
    expect(formatRatio(figs[2]!)).to.equal('1.50× floor');
    expect(formatRatio(figs[0]!)).to.equal('');
  });

  it('leaves the ratio out when the referenced figure was not measured', () => {
    const figs = [figure('ingest.s4.events_per_sec', [100_000], { ratioTo: 'limit.best_rows_per_sec' })];
    resolveRatios(figs);
    expect(figs[0]!.ratio).to.equal(undefined);
  });

  it('collects per-run values and refuses undefined or duplicate figures', () => {
    const c = new FigureCollector();
    c.define({ id: 'a.x', label: 'x', unit: 'ms', better: 'lower' });
    c.define({ id: 'a.y', label: 'y', unit: 'ms', better: 'lower' });
    c.add('a.x', 2);
    c.add('a.x', 4);
    expect(() => c.add('a.z', 1)).to.throw(/not defined/);
    expect(() => c.define({ id: 'a.x', label: 'x', unit: 'ms', better: 'lower' })).to.throw(/twice/);
    const results = c.results();
    expect(results.map((f) => f.id)).to.deep.equal(['a.x']);
    expect(results[0]!.summary.median).to.equal(3);
  });

  it('marks each target met, not met, or not measured (with the reason)', () => {
    const figs = [
      figure(TARGET_FIGURES.limit, [200_000]),
      figure(TARGET_FIGURES.ingest4, [180_000]),
      figure(TARGET_FIGURES.perRow, [2_000]),
      figure(TARGET_FIGURES.multiRow, [60_000]),
      figure(TARGET_FIGURES.lat10kP99, [25]),
    ];
    const results = evaluateTargets(figs, new Map([['reads', 'the GetOrder RPC answers UNIMPLEMENTED on this build']]));
    expect(results).to.have.length(TARGETS.length);
    const byId = new Map(results.map((t) => [t.id, t]));
    expect(byId.get('ingest_vs_limit')!.met).to.equal(true);
    expect(byId.get('ingest_vs_limit')!.measured).to.contain('90%');
    expect(byId.get('ingest_absolute')!.met).to.equal(true);
    expect(byId.get('vs_per_row_insert')!.met).to.equal(true);
    expect(byId.get('vs_multi_row_insert')!.met).to.equal(false);
    expect(byId.get('latency_10k_p99')!.met).to.equal(false);
    expect(byId.get('latency_10k_p50')!.met).to.equal(null);
    expect(byId.get('get_order_cpu')!.measured).to.contain('UNIMPLEMENTED');
    const table = targetTable(results);
    expect(table).to.contain('**met**').and.contain('**NOT met**').and.contain('not measured');
  });

  it('renders a Markdown report with the meta line, targets, figure tables, notes and plots', () => {
    const limit = figure(TARGET_FIGURES.limit, [190_000, 200_000, 210_000]);
    const perRow = figure(TARGET_FIGURES.perRow, [2_000, 2_100, 1_900], { label: 'one | INSERT per row', ratioTo: TARGET_FIGURES.limit });
    resolveRatios([limit, perRow]);
    const results: BenchResults = {
      meta: META,
      scenarios: [
        { id: 'limit', title: 'Limit', status: 'ok', figures: [limit], runs: [], notes: ['indexes: two'], elapsedMs: 1_000 },
        { id: 'alternatives', title: 'Alternatives', status: 'ok', figures: [perRow], runs: [], elapsedMs: 1_000 },
        { id: 'ingest', title: 'Ingest', status: 'unavailable', reason: 'the Ingest RPC answers UNIMPLEMENTED on this build', figures: [], runs: [], elapsedMs: 10 },
      ],
      targets: evaluateTargets([limit, perRow]),
    };
    const md = renderMarkdown(results, [{ file: 'write-throughput.svg', title: 'Write throughput' }]);
    expect(md).to.match(/^# orderflow benchmark results/);
    expect(md).to.contain('median of 3 runs');
    expect(md).to.contain('Commit `0123456789ab`');
    expect(md).to.contain('| one \\| INSERT per row | 2,000 | rows/s | ±5.0% (1,900–2,100) | 0.01× limit |');
    expect(md).to.contain('**Not available on this build:** the Ingest RPC answers UNIMPLEMENTED');
    expect(md).to.contain('- indexes: two');
    expect(md).to.contain('![Write throughput](write-throughput.svg)');
    expect(figureTable([limit]).split('\n')).to.have.length(3);
  });

  it('plans only the plots whose data exists, and renders them to SVG without a browser', async function () {
    this.timeout(20_000);
    const limit = figure('limit.psql_rows_per_sec', [200_000, 190_000]);
    const results: BenchResults = {
      meta: META,
      scenarios: [
        { id: 'limit', title: 'Limit', status: 'ok', figures: [limit], runs: [], elapsedMs: 1 },
        { id: 'floor', title: 'Floor', status: 'ok', figures: [], runs: [], distributions: [{ label: 'floor', count: 10, points: [[50, 1.2], [99, 20], [100, 30]] }], elapsedMs: 1 },
      ],
      targets: [],
    };
    const specs = plotSpecs(results);
    expect(specs.map((s) => s.file)).to.deep.equal(['write-throughput.svg', 'read-latency.svg']);
    const svg = await renderSvg(specs[0]!.spec);
    expect(svg).to.match(/^<svg/).and.contain('psql');
    expect(percentileLabel(99.9)).to.equal('p99.9');
    expect(percentileLabel(100)).to.equal('max');
  });
});
