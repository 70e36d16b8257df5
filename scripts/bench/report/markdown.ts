import type { BenchResults, FigureResult, ScenarioResult, TargetResult } from '../lib/results';

/** Formats a value for the table: digits by unit (rates whole, µs and ms with two decimals). */
export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  const digits = /\/s$/.test(unit) || unit === 'MB' ? 0 : Math.abs(value) >= 100 ? 1 : 2;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** "±3.1% (98,000–104,000)" for a figure's spread over its runs; "1 run" when there is nothing to spread. */
export function formatSpread(f: FigureResult): string {
  const { summary, unit } = f;
  const measured = summary.runs.filter((v) => Number.isFinite(v)).length;
  // Runs that produced no value (nothing completed) are named, not hidden in a tidy ±0%.
  const partial = measured < summary.runs.length ? `; ${measured} of ${summary.runs.length} runs had a value` : '';
  if (measured < 2) return `${measured} run${partial}`;
  const pct = summary.min === summary.max ? '±0.0%' : Number.isFinite(summary.spreadPct) ? `±${summary.spreadPct.toFixed(1)}%` : '±n/a';
  return `${pct} (${formatValue(summary.min, unit)}–${formatValue(summary.max, unit)})${partial}`;
}

/** "0.42× limit" / "1.12× floor" for a figure with a resolved ratio; empty otherwise. */
export function formatRatio(f: FigureResult): string {
  if (f.ratio === undefined || !f.ratioTo) return '';
  const ref = f.ratioTo.split('.')[0];
  const name = ref === 'limit' ? 'limit' : ref === 'floor' ? 'floor' : f.ratioTo;
  return `${f.ratio >= 10 ? f.ratio.toFixed(0) : f.ratio.toFixed(2)}× ${name}`;
}

/** Escapes a table cell (pipes). */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The table of one scenario's figures. */
export function figureTable(figures: readonly FigureResult[]): string {
  const lines = ['| figure | median | unit | spread over runs | ratio |', '| --- | ---: | --- | --- | --- |'];
  for (const f of figures) lines.push(`| ${cell(f.label)} | ${formatValue(f.summary.median, f.unit)} | ${f.unit} | ${formatSpread(f)} | ${formatRatio(f)} |`);
  return lines.join('\n');
}

/** The targets table: met / NOT met / not measured. */
export function targetTable(targets: readonly TargetResult[]): string {
  const lines = ['| target | measured | verdict |', '| --- | --- | --- |'];
  for (const t of targets) lines.push(`| ${cell(t.text)} | ${cell(t.measured)} | ${t.met === null ? 'not measured' : t.met ? '**met**' : '**NOT met**'} |`);
  return lines.join('\n');
}

function statusLine(s: ScenarioResult): string {
  if (s.status === 'ok') return s.reason ? `Partly available: ${s.reason}` : '';
  if (s.status === 'unavailable') return `**Not available on this build:** ${s.reason ?? ''}`;
  return `**Failed:** ${s.reason ?? ''}`;
}

/** The whole results.md. `plots` are file names (relative to results.md) of the images written beside it. */
export function renderMarkdown(results: BenchResults, plots: ReadonlyArray<{ file: string; title: string }>): string {
  const { meta } = results;
  const out: string[] = [];
  out.push('# orderflow benchmark results', '');
  out.push(
    `Measured ${meta.finishedAt} in ${Math.round(meta.elapsedMs / 1_000)} s on ${meta.cpus} × ${meta.cpuModel}, ${Math.round(meta.memoryBytes / 2 ** 30)} GiB; ` +
      `Node ${meta.node}; ${meta.postgres.split(' on ')[0]} (fsync ${meta.postgresSettings.fsync}, synchronous_commit ${meta.postgresSettings.synchronous_commit}, shared_buffers ${meta.postgresSettings.shared_buffers}); ` +
      `psql ${meta.psql ?? 'not installed'}. Commit \`${meta.gitCommit.slice(0, 12)}\` (${meta.gitBranch}). ` +
      `Each figure is the median of ${meta.runs} run${meta.runs === 1 ? '' : 's'}${meta.quick ? ' of a --quick smoke run (small sizes: not comparable with full runs)' : ''}; ` +
      `scenarios: ${meta.only.join(', ')}; ingest client: ${meta.ingestClient}; service: \`${meta.serviceMain}\`. ` +
      `Load average (1 min) ${meta.loadAverage.start.toFixed(2)} at the start, ${meta.loadAverage.end.toFixed(2)} at the end${meta.loadAverage.start > 0.5 || meta.loadAverage.end > 2.5 ? ': other work shared the machine, so absolute figures are low and noisy' : ''}.`,
  );
  out.push('', 'Ratios: write figures are divided by the COPY limit measured in this run; read figures by the trivial grpc-js handler (the floor) measured in this run.');
  out.push('', '## Targets (issue #9)', '', targetTable(results.targets));
  for (const s of results.scenarios) {
    out.push('', `## ${s.title}`, '');
    const status = statusLine(s);
    if (status) out.push(status, '');
    if (s.figures.length > 0) out.push(figureTable(s.figures), '');
    if (s.sweep && s.sweep.length > 0) {
      out.push('| INGEST_BATCH_MAX_MS | events/s (4 streams) | spread | server CPU µs/event |', '| ---: | ---: | --- | ---: |');
      for (const p of s.sweep) {
        const spread = p.eventsPerSec.runs.length < 2 ? '1 run' : `±${p.eventsPerSec.spreadPct.toFixed(1)}%`;
        out.push(`| ${p.batchMaxMs} | ${formatValue(p.eventsPerSec.median, 'events/s')} | ${spread} | ${formatValue(p.cpuMicrosPerEvent.median, 'µs/event')} |`);
      }
      out.push('');
    }
    for (const note of s.notes ?? []) out.push(`- ${note}`);
    if (s.notes?.length) out.push('');
    out.push(`_${Math.round(s.elapsedMs / 1_000)} s._`);
  }
  if (plots.length > 0) {
    out.push('', '## Plots', '');
    for (const p of plots) out.push(`![${p.title}](${p.file})`, '');
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}
