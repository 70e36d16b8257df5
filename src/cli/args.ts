import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../errors';
import { DEFAULT_PURGE_BATCH_ROWS, DEFAULT_PURGE_CONCURRENCY } from '../store/purge';
import { DEFAULT_IMPORT_CHUNK_ROWS, DEFAULT_IMPORT_CONCURRENCY, type ImportType } from '../store/import';
import { parseCutoff } from './time';

/** Usage text of `npm run purge`. */
export const PURGE_USAGE = `usage: npm run purge -- --before <date> [--dry-run] [--concurrency N] [--batch-size N]

Deletes order events and fills with ts_ns before <date>, and quarantined events
received before it, in short batches that never block ingest.

  --before <date>     YYYY-MM-DD (midnight UTC) or ISO 8601 with a zone, e.g. 2024-01-31T00:00:00Z
  --dry-run           count the rows that would be deleted; delete nothing
  --concurrency N     batches at once (default ${DEFAULT_PURGE_CONCURRENCY})
  --batch-size N      target rows per batch transaction (default ${DEFAULT_PURGE_BATCH_ROWS})
`;

/** Usage text of `npm run import`. */
export const IMPORT_USAGE = `usage: npm run import -- <file.csv> [--type orders|fills] [--source NAME] [--concurrency N] [--batch-size N]

Loads historical order events or fills from a CSV file (one header row; see
README "Batch operations"). Invalid rows are reported and quarantined; rows
already imported are skipped, so running it again stores nothing new.

  --type orders|fills  what the file holds (default: detected from the header)
  --source NAME        source id suffix (default: the file's base name) → source "import:NAME"
  --concurrency N      chunks in flight (default ${DEFAULT_IMPORT_CONCURRENCY})
  --batch-size N       rows per chunk transaction (default ${DEFAULT_IMPORT_CHUNK_ROWS})
`;

/** Parsed `npm run purge` arguments. */
export interface PurgeArgs {
  help: boolean;
  beforeNs: bigint;
  dryRun: boolean;
  concurrency: number;
  batchRows: number;
}

/** Parsed `npm run import` arguments. */
export interface ImportArgs {
  help: boolean;
  file: string;
  type: ImportType | undefined;
  source: string | undefined;
  concurrency: number;
  chunkRows: number;
}

/** Parses purge arguments. Throws InvalidArgumentError naming the flag. */
export function parsePurgeArgs(argv: readonly string[], nowMs: number = Date.now()): PurgeArgs {
  const { values } = parse(argv, {
    before: { type: 'string' },
    'dry-run': { type: 'boolean' },
    concurrency: { type: 'string' },
    'batch-size': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) return { help: true, beforeNs: 0n, dryRun: false, concurrency: 0, batchRows: 0 };
  const before = values.before;
  if (typeof before !== 'string') throw new InvalidArgumentError('--before', 'is required');
  return {
    help: false,
    beforeNs: parseCutoff(before, nowMs),
    dryRun: values['dry-run'] === true,
    concurrency: positiveInt('--concurrency', values.concurrency, DEFAULT_PURGE_CONCURRENCY, 64),
    batchRows: positiveInt('--batch-size', values['batch-size'], DEFAULT_PURGE_BATCH_ROWS, 10_000_000),
  };
}

/** Parses import arguments. Throws InvalidArgumentError naming the flag. */
export function parseImportArgs(argv: readonly string[]): ImportArgs {
  const { values, positionals } = parse(argv, {
    type: { type: 'string' },
    source: { type: 'string' },
    concurrency: { type: 'string' },
    'batch-size': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, true);
  if (values.help) return { help: true, file: '', type: undefined, source: undefined, concurrency: 0, chunkRows: 0 };
  if (positionals.length !== 1) throw new InvalidArgumentError('<file>', positionals.length === 0 ? 'a CSV file is required' : 'give exactly one file');
  const type = values.type;
  if (type !== undefined && type !== 'orders' && type !== 'fills') throw new InvalidArgumentError('--type', `must be orders or fills, got ${JSON.stringify(type)}`);
  const source = typeof values.source === 'string' ? values.source : undefined;
  if (source !== undefined && !/^[\x21-\x7e]{1,57}$/.test(source)) {
    throw new InvalidArgumentError('--source', 'must be 1–57 printable ASCII characters without spaces (the source id is "import:" + it, at most 64)');
  }
  return {
    help: false,
    file: positionals[0]!,
    type: type as ImportType | undefined,
    source,
    concurrency: positiveInt('--concurrency', values.concurrency, DEFAULT_IMPORT_CONCURRENCY, 64),
    chunkRows: positiveInt('--batch-size', values['batch-size'], DEFAULT_IMPORT_CHUNK_ROWS, 1_000_000),
  };
}

type Options = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parse(argv: readonly string[], options: Options, allowPositionals: boolean) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals, strict: true }) as {
      values: Record<string, string | boolean | undefined>;
      positionals: string[];
    };
  } catch (err) {
    // node:util reports unknown flags and missing values with ERR_PARSE_ARGS_*.
    throw new InvalidArgumentError('arguments', (err as Error).message);
  }
}

function positiveInt(flag: string, raw: string | boolean | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const text = String(raw).replace(/_/g, '');
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(flag, `must be a whole number from 1 to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}
