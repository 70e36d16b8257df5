import fs from 'node:fs';
import path from 'node:path';
import { IMPORT_USAGE, parseImportArgs } from '../src/cli/args';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_ROWS_QUARANTINED, runCommand } from '../src/cli/command';
import { CLI_SLOW_QUERY_MS, openDatabase } from '../src/cli/database';
import { ProgressReporter } from '../src/cli/progress';
import { formatImportSummary } from '../src/cli/report';
import { InvalidArgumentError } from '../src/errors';
import { importCsv } from '../src/store/import';

/** File read size: large reads keep the parser busy between syscalls. */
const READ_CHUNK_BYTES = 256 * 1024;

// `npm run import -- <file.csv> [--type orders|fills] [--source NAME] [--concurrency N] [--batch-size N]`
void runCommand('import', IMPORT_USAGE, async ({ config, logger, signal }) => {
  const args = parseImportArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(IMPORT_USAGE);
    return EXIT_OK;
  }
  const file = path.resolve(args.file);
  const stat = await fs.promises.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new InvalidArgumentError('<file>', `cannot read ${file}`);
  const name = args.source ?? path.basename(file);
  if (!/^[\x21-\x7e]{1,57}$/.test(name)) {
    throw new InvalidArgumentError('--source', `the file name ${JSON.stringify(name)} cannot be a source id (printable ASCII, no spaces, ≤ 57 characters): pass --source`);
  }
  const db = await openDatabase(config, logger, {
    max: Math.max(config.pool.max, args.concurrency + 1),
    slowQueryMs: Math.max(config.pool.slowQueryMs, CLI_SLOW_QUERY_MS),
  });
  try {
    const progress = new ProgressReporter(`import ${path.basename(file)}`, process.stderr);
    const summary = await importCsv(db.pool, fs.createReadStream(file, { highWaterMark: READ_CHUNK_BYTES }), {
      sourceId: `import:${name}`,
      type: args.type,
      chunkRows: args.chunkRows,
      concurrency: args.concurrency,
      signal,
      onProgress: (p) => progress.update(p.bytes, stat.size, p.rowsRead),
    });
    progress.finish();
    // maxRSS is in KiB: the process's peak, the figure that shows memory stays constant.
    process.stdout.write(formatImportSummary(summary, args.file, process.resourceUsage().maxRSS * 1024));
    if (summary.outcome === 'aborted') return EXIT_INTERRUPTED;
    if (summary.outcome !== 'completed' || summary.inputError !== undefined) return EXIT_FAILED;
    return summary.quarantined > 0 ? EXIT_ROWS_QUARANTINED : EXIT_OK;
  } finally {
    await db.close();
  }
});
