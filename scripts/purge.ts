import { parsePurgeArgs, PURGE_USAGE } from '../src/cli/args';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, runCommand } from '../src/cli/command';
import { CLI_SLOW_QUERY_MS, openDatabase } from '../src/cli/database';
import { ProgressReporter } from '../src/cli/progress';
import { formatPurgeReport } from '../src/cli/report';
import { purge } from '../src/store/purge';

// `npm run purge -- --before <date> [--dry-run] [--concurrency N] [--batch-size N]`
void runCommand('purge', PURGE_USAGE, async ({ config, logger, signal }) => {
  const args = parsePurgeArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(PURGE_USAGE);
    return EXIT_OK;
  }
  const db = await openDatabase(config, logger, {
    max: Math.max(config.pool.max, args.concurrency + 1),
    slowQueryMs: Math.max(config.pool.slowQueryMs, CLI_SLOW_QUERY_MS),
  });
  try {
    const progress = new ProgressReporter('purge', process.stderr);
    const report = await purge(db.pool, {
      beforeNs: args.beforeNs,
      dryRun: args.dryRun,
      batchRows: args.batchRows,
      concurrency: args.concurrency,
      signal,
      onProgress: (p) => {
        progress.restart(`purge ${p.table}`);
        progress.update(p.pagesDone, p.pagesTotal, p.rows);
      },
    });
    progress.finish();
    process.stdout.write(formatPurgeReport(report));
    if (report.outcome === 'aborted') return EXIT_INTERRUPTED;
    return report.outcome === 'completed' ? EXIT_OK : EXIT_FAILED;
  } finally {
    await db.close();
  }
});
