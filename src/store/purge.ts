import { runBatch, type BatchReport, type ChunkFailure } from '../db/batch';
import type { Pool } from '../db/types';
import { InvalidArgumentError } from '../errors';

/** Target rows per purge transaction when the caller does not say. */
export const DEFAULT_PURGE_BATCH_ROWS = 10_000;
/** Purge chunks running at once when the caller does not say. */
export const DEFAULT_PURGE_CONCURRENCY = 2;
/** Rows per heap page assumed for a table PostgreSQL has not analysed yet. */
const FALLBACK_ROWS_PER_PAGE = 60;
/** A tid above every real one (block numbers stop at 0xFFFFFFFE): the open end of the last range. */
const TID_END = '(4294967295,0)';

/** Tables the purge deletes from. */
export type PurgeTable = 'order_events' | 'fills' | 'quarantine';

interface TableSpec {
  table: PurgeTable;
  /** Age condition on `$3`, the cutoff (ns for events, µs since the epoch for quarantine). */
  predicate: string;
  cutoff: (beforeNs: bigint) => string;
}

const TABLES: readonly TableSpec[] = [
  { table: 'order_events', predicate: 'ts_ns < $3::bigint', cutoff: (ns) => ns.toString() },
  { table: 'fills', predicate: 'ts_ns < $3::bigint', cutoff: (ns) => ns.toString() },
  {
    // received_at has microsecond precision: t_us < ceil(ns / 1000) ⇔ t_us × 1000 < ns.
    table: 'quarantine',
    predicate: `received_at < 'epoch'::timestamptz + $3::bigint * interval '1 microsecond'`,
    cutoff: (ns) => ((ns + 999n) / 1000n).toString(),
  },
];

/** Options of purge. */
export interface PurgeOptions {
  /** Order events and fills with `ts_ns` below this, and quarantine rows received before it, go. */
  beforeNs: bigint;
  /** Count what would go instead of deleting it. */
  dryRun?: boolean;
  /** Target rows per transaction (turned into a range of heap pages). Default 10,000. */
  batchRows?: number;
  /** Chunks at once. Default 2. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after every chunk. */
  onProgress?: (progress: PurgeProgress) => void;
  /** Restricts the purge to these tables (default: all three). */
  tables?: readonly PurgeTable[];
}

/** Progress of the table being purged. */
export interface PurgeProgress {
  table: PurgeTable;
  /** Heap pages scanned so far and in total (as measured when the table's purge began). */
  pagesDone: number;
  pagesTotal: number;
  /** Rows deleted (or counted, in a dry run) so far in this table. */
  rows: number;
  elapsedMs: number;
}

/** What the purge did to one table. */
export interface PurgeTableReport {
  table: PurgeTable;
  /** Rows deleted, or in a dry run the rows that would be. */
  rows: number;
  pages: number;
  chunks: number;
  /** Longest chunk, ms. Each chunk is one autocommit statement, so this is the longest lock hold. */
  maxLockHoldMs: number;
  durationMs: number;
  outcome: BatchReport['outcome'];
  failures: ChunkFailure[];
}

/** What the purge did. */
export interface PurgeReport {
  dryRun: boolean;
  beforeNs: bigint;
  tables: PurgeTableReport[];
  /** `completed` only when every table completed. */
  outcome: BatchReport['outcome'];
}

/**
 * Retention purge: deletes order events and fills with `ts_ns < beforeNs` and
 * quarantine rows with `received_at` before the same instant.
 *
 * Each table is walked once, in ranges of heap pages (`ctid >= '(a,0)' AND
 * ctid < '(b,0)'`, a TID range scan), one autocommit DELETE per range, sized
 * so a range holds about `batchRows` rows. Why this and not "select LIMIT n,
 * then delete": with no index on the age columns, every LIMIT query would
 * rescan the dead rows left by the batches before it (quadratic); page ranges
 * visit each page once and need no index.
 *
 * Locks: a DELETE takes ROW EXCLUSIVE on the table, the same mode as ingest's
 * COPY, so the two never wait for each other; it locks only the old rows it
 * deletes, which ingest never touches. Each lock lasts one chunk (reported as
 * `maxLockHoldMs`). Rows appended while the purge runs are covered by the last,
 * open-ended range. A dry run runs the same ranges with `count(*)`.
 */
export async function purge(pool: Pool, options: PurgeOptions): Promise<PurgeReport> {
  const batchRows = options.batchRows ?? DEFAULT_PURGE_BATCH_ROWS;
  const concurrency = options.concurrency ?? DEFAULT_PURGE_CONCURRENCY;
  if (!Number.isSafeInteger(batchRows) || batchRows < 1) throw new InvalidArgumentError('batchRows', 'must be a whole number ≥ 1');
  if (options.beforeNs <= 0n) throw new InvalidArgumentError('beforeNs', 'must be after the epoch');
  const wanted = options.tables ?? TABLES.map((t) => t.table);
  const report: PurgeReport = { dryRun: options.dryRun ?? false, beforeNs: options.beforeNs, tables: [], outcome: 'completed' };
  for (const spec of TABLES) {
    if (!wanted.includes(spec.table)) continue;
    const tableReport = await purgeTable(pool, spec, { ...options, batchRows, concurrency });
    report.tables.push(tableReport);
    if (tableReport.outcome !== 'completed') {
      report.outcome = tableReport.outcome;
      break;
    }
  }
  return report;
}

interface PageRange {
  from: number;
  /** Exclusive; undefined for the open-ended last range. */
  to: number | undefined;
}

async function purgeTable(pool: Pool, spec: TableSpec, options: PurgeOptions & { batchRows: number; concurrency: number }): Promise<PurgeTableReport> {
  const started = performance.now();
  const { pages, rowsPerPage } = await measure(pool, spec.table, options.signal);
  const pagesPerChunk = Math.max(1, Math.floor(options.batchRows / rowsPerPage));
  const dryRun = options.dryRun ?? false;
  const what = dryRun ? 'SELECT count(*)::bigint AS n FROM' : 'DELETE FROM';
  const sql = `${what} ${spec.table} WHERE ctid >= $1::tid AND ctid < $2::tid AND ${spec.predicate}`;
  const cutoff = spec.cutoff(options.beforeNs);
  let pagesDone = 0;
  let rows = 0;

  const result = await runBatch(
    pageRanges(pages, pagesPerChunk),
    async ([range], ctx) => {
      const params = [`(${range!.from},0)`, range!.to === undefined ? TID_END : `(${range!.to},0)`, cutoff];
      const op = { op: dryRun ? `purge.count_${spec.table}` : `purge.delete_${spec.table}`, signal: ctx.signal, table: spec.table };
      const res = await pool.query<{ n: string }>(op, sql, params);
      const n = dryRun ? Number(res.rows[0]!.n) : (res.rowCount ?? 0);
      rows += n;
      pagesDone += Math.max(0, (range!.to ?? pages) - range!.from);
      options.onProgress?.({ table: spec.table, pagesDone, pagesTotal: pages, rows, elapsedMs: performance.now() - started });
      return n;
    },
    { op: dryRun ? `purge.count_${spec.table}` : `purge.delete_${spec.table}`, chunkSize: 1, concurrency: options.concurrency, onError: 'stop', signal: options.signal },
  );
  return {
    table: spec.table,
    rows: result.rowsAffected,
    pages,
    chunks: result.chunksDone,
    maxLockHoldMs: result.maxChunkMs,
    durationMs: performance.now() - started,
    outcome: result.outcome,
    failures: result.failures,
  };
}

/** Heap pages now, and rows per page from the planner's statistics. */
async function measure(pool: Pool, table: PurgeTable, signal: AbortSignal | undefined): Promise<{ pages: number; rowsPerPage: number }> {
  const { rows } = await pool.query<{ pages: string; reltuples: number; relpages: number }>(
    { op: 'purge.measure', signal, table },
    `SELECT (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint AS pages, c.reltuples::float8 AS reltuples, c.relpages
       FROM pg_class c WHERE c.oid = $1::regclass`,
    [table],
  );
  const row = rows[0]!;
  // reltuples is -1 before the first ANALYZE / VACUUM.
  const rowsPerPage = row.relpages > 0 && row.reltuples > 0 ? row.reltuples / row.relpages : FALLBACK_ROWS_PER_PAGE;
  return { pages: Number(row.pages), rowsPerPage: Math.max(1, rowsPerPage) };
}

/** [0, n), [n, 2n) … and finally [k·n, ∞), pulled lazily. */
function* pageRanges(pages: number, pagesPerChunk: number): Generator<PageRange> {
  let from = 0;
  for (; from + pagesPerChunk < pages; from += pagesPerChunk) yield { from, to: from + pagesPerChunk };
  yield { from, to: undefined };
}
