import type { ImportSummary, ImportRowIssue } from '../store/import';
import type { PurgeReport } from '../store/purge';
import { formatCount } from './progress';
import { formatNs } from './time';

/** Rows of each list printed by the import summary; the rest are counted (and all are in quarantine). */
export const PRINTED_ROWS = 50;

/** The import summary as printed on stdout; `peakRssBytes` adds the process's peak resident memory. */
export function formatImportSummary(s: ImportSummary, fileName: string, peakRssBytes?: number): string {
  const seconds = s.durationMs / 1_000;
  const out: string[] = [];
  const ending = s.outcome === 'completed' && s.inputError === undefined ? 'completed' : s.outcome === 'aborted' ? 'interrupted' : 'STOPPED';
  out.push(`import of ${fileName} as source ${s.sourceId} (${s.type}): ${ending} in ${seconds.toFixed(1)} s`);
  const rows: [string, number, string?][] = [
    ['rows read', s.rowsRead],
    ['stored', s.stored],
    ['quarantined (invalid)', s.quarantined],
    ['duplicate fills (skipped)', s.duplicateFills],
    ['already imported (skipped)', s.alreadyImported, s.alreadyImported > 0 ? `lines up to ${formatCount(s.markBefore)}, from an earlier run` : undefined],
    ['not committed', s.notCommitted, s.notCommitted > 0 ? 'rerun the same command to resume' : undefined],
  ];
  for (const [label, n, note] of rows) out.push(`  ${label.padEnd(28)}${formatCount(n).padStart(12)}${note ? `   (${note})` : ''}`);
  out.push(`  source mark: line ${formatCount(s.markAfter)} (was ${formatCount(s.markBefore)})`);
  const rss = peakRssBytes === undefined ? '' : `, peak RSS ${Math.round(peakRssBytes / 1_048_576)} MiB`;
  if (seconds > 0) out.push(`  ${formatCount(s.rowsRead / seconds)} rows/s, ${(s.bytes / 1_048_576).toFixed(1)} MiB read${rss}`);
  if (s.inputError) out.push(`reading stopped: ${s.inputError}`);
  if (s.failure) {
    const f = s.failure;
    out.push(`failed at lines ${f.firstLine}–${f.lastLine}: ${f.code}${f.sqlState ? ` (SQLSTATE ${f.sqlState})` : ''}: ${f.message}`);
  }
  listRows(out, 'invalid rows (quarantined)', s.invalidRows, s.quarantined);
  listRows(out, 'duplicate fills (not stored)', s.duplicateRows, s.duplicateFills);
  if (s.rowsTruncated || s.quarantined > PRINTED_ROWS) {
    out.push(`every invalid row: SELECT seq AS line, code, reason FROM quarantine WHERE source_id = '${s.sourceId.replace(/'/g, "''")}' ORDER BY seq;`);
  }
  return `${out.join('\n')}\n`;
}

function listRows(out: string[], title: string, rows: readonly ImportRowIssue[], total: number): void {
  if (rows.length === 0) return;
  out.push(`${title}:`);
  for (const row of rows.slice(0, PRINTED_ROWS)) out.push(`  line ${row.line}: ${row.code}: ${row.reason}`);
  if (total > PRINTED_ROWS) out.push(`  … and ${formatCount(total - PRINTED_ROWS)} more`);
}

/** The purge report as printed on stdout. */
export function formatPurgeReport(r: PurgeReport): string {
  const out: string[] = [];
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const ending = r.outcome === 'completed' ? '' : r.outcome === 'aborted' ? ' (interrupted)' : ' (STOPPED)';
  out.push(`purge of rows before ${formatNs(r.beforeNs)}${r.dryRun ? ' (dry run: nothing deleted)' : ''}${ending}`);
  let total = 0;
  for (const t of r.tables) {
    total += t.rows;
    const details = `${formatCount(t.pages)} pages, ${formatCount(t.chunks)} batches, ${(t.durationMs / 1_000).toFixed(1)} s, longest batch ${Math.round(t.maxLockHoldMs)} ms`;
    out.push(`  ${t.table.padEnd(14)}${verb} ${formatCount(t.rows).padStart(12)} rows   (${details})`);
    for (const f of t.failures.slice(0, 5)) out.push(`    failed: ${f.code}${f.sqlState ? ` (SQLSTATE ${f.sqlState})` : ''}: ${f.message}`);
  }
  out.push(`  total ${verb} ${formatCount(total)} rows`);
  if (!r.dryRun && r.tables.some((t) => t.table === 'quarantine')) out.push('  (quarantine rows go by received_at; order events and fills by ts_ns)');
  return `${out.join('\n')}\n`;
}
