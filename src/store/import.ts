import { runBatch, type BatchOutcome, type ChunkContext, type ChunkFailure } from '../db/batch';
import { CommitOrder } from '../db/batch-commit-order';
import { encodeCopyRows } from '../db/batch-copy';
import type { Pool, Transaction } from '../db/types';
import { FencedError, InvalidArgumentError } from '../errors';
import type { Event__Output } from '../generated/orderflow/v1/Event';
import { mapRecord, readLayout, type CsvLayout, type ImportType, type RejectCodeName } from '../import/csv-columns';
import { CsvError, parseCsv, type CsvRecord } from '../import/csv-parser';
import type { EventInput } from '../ingest/event';
import { rejectCodeName, validateEvent } from '../ingest/validate';
import { verifyResumePoint } from './import-resume';

export type { ImportType } from '../import/csv-columns';

/** Rows per chunk transaction when the caller does not say. */
export const DEFAULT_IMPORT_CHUNK_ROWS = 5_000;
/** Chunks loading at once when the caller does not say (commits stay in file order). */
export const DEFAULT_IMPORT_CONCURRENCY = 2;
/** Invalid and duplicate rows listed in the summary; more are counted, and all are in quarantine. */
export const DEFAULT_MAX_REPORTED_ROWS = 1_000;
/** Records between progress callbacks. */
const PROGRESS_EVERY_ROWS = 1_024;

const COPY_SQL: Record<ImportType, string> = {
  orders:
    'COPY order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns, client_order_id) FROM STDIN',
  fills: 'COPY fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns, fee, venue) FROM STDIN',
};
const COPY_QUARANTINE_SQL = 'COPY quarantine (source_id, seq, code, reason, raw) FROM STDIN';

/**
 * Removes this chunk's fills whose (order_id, fill_id) is already stored by
 * any other source or an earlier chunk, and returns their seqs. "This chunk"
 * is (source_id, seq between its first and last line). Both sides go through
 * the fills_order_id index.
 */
const DELETE_DUPLICATE_FILLS_SQL = `
DELETE FROM fills f
 WHERE f.order_id = ANY($4::text[]) AND f.source_id = $1 AND f.seq BETWEEN $2 AND $3
   AND EXISTS (SELECT 1 FROM fills g
                WHERE g.order_id = f.order_id AND g.fill_id = f.fill_id
                  AND NOT (g.source_id = $1 AND g.seq BETWEEN $2 AND $3))
RETURNING f.seq::text AS seq, f.fill_id`;

const INT64_MAX = 9_223_372_036_854_775_807n;

/** The verdict on one event: valid, or the reject code name (as stored in quarantine.code) and a reason naming the field. */
export type ValidationResult = { ok: true } | { ok: false; code: RejectCodeName; reason: string };

/** Judges one mapped CSV event. The import takes one of these so tests can substitute rules. */
export type EventValidator = (event: Event__Output) => ValidationResult;

/**
 * The ingest stream's validator (src/ingest/validate.ts), so an imported row
 * is refused exactly when Ingest would refuse it, with the same code name in
 * quarantine.code (rejectCodeName, as the flush writer stores it) and reason.
 */
export const validateImportEvent: EventValidator = (event) => {
  // On the wire ts_ns is an int64, so protobuf decoding guarantees its form
  // and the ingest validator does not check it; CSV text must be held to it here.
  const tsNs = event.payload === 'fill' ? event.fill?.ts_ns : event.order?.ts_ns;
  if (tsNs !== undefined && tsNs !== '') {
    if (!/^-?\d{1,19}$/.test(tsNs)) return { ok: false, code: 'REJECT_CODE_INVALID_FIELD', reason: `ts_ns is not a whole number of nanoseconds: ${JSON.stringify(tsNs)}` };
    const ns = BigInt(tsNs);
    if (ns > INT64_MAX || ns < -INT64_MAX - 1n) return { ok: false, code: 'REJECT_CODE_OUT_OF_RANGE', reason: 'ts_ns does not fit int64' };
  }
  // Event__Output is what proto-loader yields, the shape EventInput describes.
  const invalid = validateEvent(event as unknown as EventInput);
  return invalid === undefined ? { ok: true } : { ok: false, code: rejectCodeName(invalid.code) as RejectCodeName, reason: invalid.reason };
};

/** Options of importCsv. */
export interface ImportOptions {
  /** Source id the rows are stored under, `import:<name>`; at most 64 characters. */
  sourceId: string;
  /** What the file holds; default: detected from the header. */
  type?: ImportType;
  /** Rows per chunk transaction. Default 5,000. */
  chunkRows?: number;
  /**
   * Chunks loading at once. Default 2. Each holds a pooled connection while it
   * waits for its turn to commit, so the pool needs this many connections.
   */
  concurrency?: number;
  signal?: AbortSignal;
  /** Default: validateImportEvent (the ingest stream's validator). */
  validator?: EventValidator;
  /** Called every ~1,000 records and after every commit. */
  onProgress?: (progress: ImportProgress) => void;
  /** Default 1,000. */
  maxReportedRows?: number;
}

/** Progress of an import. */
export interface ImportProgress {
  /** Bytes of the file read so far. */
  bytes: number;
  /** Data records read so far. */
  rowsRead: number;
  /** Rows committed so far (stored, quarantined or found duplicate). */
  rowsCommitted: number;
}

/** A row the summary names. */
export interface ImportRowIssue {
  line: number;
  code: RejectCodeName | 'DUPLICATE_FILL';
  reason: string;
}

/** What an import did. Counts cover committed chunks only. */
export interface ImportSummary {
  sourceId: string;
  type: ImportType;
  outcome: BatchOutcome;
  /** Data records read (header and blank lines excluded). */
  rowsRead: number;
  /** Rows written to order_events or fills. */
  stored: number;
  /** Invalid rows, written to quarantine. */
  quarantined: number;
  /** Rows at or below the source's mark from an earlier run: skipped without a look. */
  alreadyImported: number;
  /** Fills whose (order_id, fill_id) was already stored (by any source or an earlier line): not stored again. */
  duplicateFills: number;
  /** Rows read but in chunks that did not commit (failed, aborted, or after a failure). */
  notCommitted: number;
  /** The source's mark (last line committed) before and after this run. */
  markBefore: number;
  markAfter: number;
  /** Invalid rows then duplicate fills, each in line order, at most maxReportedRows each. */
  invalidRows: ImportRowIssue[];
  duplicateRows: ImportRowIssue[];
  /** True when more rows were invalid or duplicate than listed. */
  rowsTruncated: boolean;
  /** Why reading the file stopped early (a record over the size limit, a read error). */
  inputError: string | undefined;
  /** The failure that stopped the import, with the file lines of its chunk. */
  failure: (ChunkFailure & { firstLine: number; lastLine: number }) | undefined;
  bytes: number;
  durationMs: number;
}

/** A data row ready for COPY, or an invalid one bound for quarantine. */
type PreparedRow =
  | { line: number; valid: true; values: unknown[]; orderId: string; fillId: string }
  | { line: number; valid: false; code: RejectCodeName; reason: string; raw: string };

/**
 * Imports a CSV file of order events or fills (README "Batch operations").
 *
 * Identity: the file is source `sourceId` and each row's seq is its line
 * number, so a row is the same row on every run. The source's high-water mark
 * moves in the same transaction as each chunk's rows, and chunks commit in
 * line order (CommitOrder), so after any crash the mark is exactly the last
 * line handled and a rerun skips what is at or below it: running the same file
 * twice stores nothing the second time. The row on the mark's line is checked
 * against what was stored there (import-resume.ts), so a different file under
 * the same name is refused instead of having its first lines skipped. Fills are also checked one by one
 * against fills already stored (same order_id and fill_id, any source), so a
 * backfill overlapping what a venue session already streamed does not double
 * a fill.
 *
 * Each row is validated as Ingest would; invalid rows are quarantined (raw
 * CSV text, code, reason) in their chunk's transaction. A database error stops
 * the import (later chunks roll back); committed chunks stay, and a rerun
 * resumes after the mark. Memory is bounded by (concurrency + 1) × chunkRows.
 */
export async function importCsv(pool: Pool, file: AsyncIterable<Buffer> | Iterable<Buffer>, options: ImportOptions): Promise<ImportSummary> {
  const started = performance.now();
  if (!/^[\x21-\x7e]{1,64}$/.test(options.sourceId)) throw new InvalidArgumentError('sourceId', 'must be 1–64 printable ASCII characters');
  const validator = options.validator ?? validateImportEvent;
  const maxReported = options.maxReportedRows ?? DEFAULT_MAX_REPORTED_ROWS;
  const read = { bytes: 0 };
  const records = parseCsv(file, read);
  const header = await records.next();
  if (header.done) throw new InvalidArgumentError('file', 'is empty: the first line must be the header');
  let layout: CsvLayout;
  try {
    layout = readLayout(header.value, options.type);
  } catch (err) {
    await records.return(undefined);
    throw err;
  }
  let claim: { mark: number; epoch: string };
  try {
    claim = await claimSource(pool, options.sourceId, options.signal);
  } catch (err) {
    await records.return(undefined);
    throw err;
  }
  const summary: ImportSummary = {
    sourceId: options.sourceId,
    type: layout.type,
    outcome: 'completed',
    rowsRead: 0,
    stored: 0,
    quarantined: 0,
    alreadyImported: 0,
    duplicateFills: 0,
    notCommitted: 0,
    markBefore: claim.mark,
    markAfter: claim.mark,
    invalidRows: [],
    duplicateRows: [],
    rowsTruncated: false,
    inputError: undefined,
    failure: undefined,
    bytes: 0,
    durationMs: 0,
  };
  const progress = (): void => options.onProgress?.({ bytes: read.bytes, rowsRead: summary.rowsRead, rowsCommitted: committedRows(summary) });

  async function* prepare(): AsyncGenerator<PreparedRow> {
    let resumeVerified = claim.mark === 0;
    for await (const record of records) {
      summary.rowsRead++;
      if (summary.rowsRead % PROGRESS_EVERY_ROWS === 0) progress();
      if (record.line <= claim.mark) {
        summary.alreadyImported++;
        if (record.line === claim.mark) {
          await verifyResumePoint(pool, layout, options.sourceId, claim.mark, record, options.signal);
          resumeVerified = true;
        }
        continue;
      }
      // No record starts on the mark's line: not the file the mark came from.
      if (!resumeVerified) await verifyResumePoint(pool, layout, options.sourceId, claim.mark, undefined, options.signal);
      yield prepareRow(record, layout, options.sourceId, validator);
    }
  }

  const order = new CommitOrder();
  const writer = new ChunkWriter(pool, layout.type, options.sourceId, claim.epoch);
  let report;
  try {
    report = await runBatch(
      prepare(),
      async (rows, ctx) => {
        try {
          const result = await writer.write(rows, ctx, order);
          order.committed(ctx.index);
          writer.lines.delete(ctx.index);
          book(summary, rows, result, maxReported);
          progress();
          return rows.length;
        } catch (err) {
          order.failed(ctx.index);
          throw err;
        }
      },
      { op: `import.${layout.type}`, chunkSize: options.chunkRows ?? DEFAULT_IMPORT_CHUNK_ROWS, concurrency: options.concurrency ?? DEFAULT_IMPORT_CONCURRENCY, onError: 'stop', signal: options.signal },
    );
  } catch (err) {
    // The file itself failed (unreadable, or a record past the size limit):
    // what committed before stays; the summary says where reading stopped.
    if (!(err instanceof CsvError) && (err as NodeJS.ErrnoException).syscall === undefined) throw err;
    summary.inputError = (err as Error).message;
  }
  summary.outcome = report?.outcome ?? 'stopped';
  // The first failure in file order that is not just "an earlier chunk failed".
  const failures = report?.failures ?? [];
  const first = [...failures].sort((a, b) => a.index - b.index).find((f) => f.code !== 'CANCELLED') ?? failures[0];
  if (first) summary.failure = { ...first, firstLine: writer.lines.get(first.index)?.[0] ?? 0, lastLine: writer.lines.get(first.index)?.[1] ?? 0 };
  summary.notCommitted = summary.rowsRead - summary.alreadyImported - committedRows(summary);
  summary.bytes = read.bytes;
  summary.durationMs = performance.now() - started;
  progress();
  return summary;
}

function committedRows(s: ImportSummary): number {
  return s.stored + s.quarantined + s.duplicateFills;
}

/** Maps, validates and encodes one record. */
function prepareRow(record: CsvRecord, layout: CsvLayout, sourceId: string, validator: EventValidator): PreparedRow {
  const mapped = mapRecord(record, layout);
  const verdict = mapped.ok ? validator(mapped.event) : mapped;
  if (!verdict.ok) return { line: record.line, valid: false, code: verdict.code, reason: verdict.reason, raw: record.raw };
  const event = (mapped as { event: Event__Output }).event;
  if (layout.type === 'fills') {
    const f = event.fill!;
    const values = [sourceId, record.line, f.fill_id, f.order_id, f.account_id, f.symbol, f.side, f.price, f.qty, f.ts_ns, f.fee || null, f.venue];
    return { line: record.line, valid: true, values, orderId: f.order_id, fillId: f.fill_id };
  }
  const o = event.order!;
  const values = [sourceId, record.line, o.order_id, o.account_id, o.symbol, o.side, o.order_type, o.event_type, o.price || null, o.qty, o.time_in_force, o.ts_ns, o.client_order_id];
  return { line: record.line, valid: true, values, orderId: o.order_id, fillId: '' };
}

/**
 * Takes the source over for this run: creates it or bumps its epoch, and
 * reads its mark. A second import of the same source started later bumps the
 * epoch again, and this run's next commit fails with FencedError.
 */
async function claimSource(pool: Pool, sourceId: string, signal: AbortSignal | undefined): Promise<{ mark: number; epoch: string }> {
  const { rows } = await pool.query<{ last_seq: string; epoch: string }>(
    { op: 'import.claim_source', signal, table: 'sources' },
    `INSERT INTO sources (source_id) VALUES ($1)
     ON CONFLICT (source_id) DO UPDATE SET epoch = sources.epoch + 1, updated_at = now()
     RETURNING last_seq::text, epoch::text`,
    [sourceId],
  );
  const mark = Number(rows[0]!.last_seq);
  return { mark, epoch: rows[0]!.epoch };
}

interface ChunkResultRows {
  /** Lines of fills not stored because their fill id was already stored. */
  duplicates: ImportRowIssue[];
}

/** Writes one chunk in one transaction: rows, quarantine, duplicate check, mark. */
class ChunkWriter {
  /** First and last line of each chunk, to report a failure in file terms. Small: one entry per chunk. */
  readonly lines = new Map<number, [number, number]>();

  constructor(
    private readonly pool: Pool,
    private readonly type: ImportType,
    private readonly sourceId: string,
    private readonly epoch: string,
  ) {}

  async write(rows: readonly PreparedRow[], ctx: ChunkContext, order: CommitOrder): Promise<ChunkResultRows> {
    const firstLine = rows[0]!.line;
    const lastLine = rows[rows.length - 1]!.line;
    this.lines.set(ctx.index, [firstLine, lastLine]);
    const duplicates: ImportRowIssue[] = [];
    // The same fill twice within one chunk: the later line is the duplicate
    // (the database check below only sees other chunks and other sources).
    const valid: Extract<PreparedRow, { valid: true }>[] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      if (!row.valid) continue;
      if (this.type === 'fills') {
        const key = `${row.orderId}\u0000${row.fillId}`;
        if (seen.has(key)) {
          duplicates.push({ line: row.line, code: 'DUPLICATE_FILL', reason: `fill ${row.fillId} of order ${row.orderId} appears earlier in the file` });
          continue;
        }
        seen.add(key);
      }
      valid.push(row);
    }
    const invalid = rows.filter((r): r is Extract<PreparedRow, { valid: false }> => !r.valid);
    const op = `import.${this.type}`;
    const signal = ctx.signal;
    await this.pool.withTransaction(
      async (tx) => {
        if (valid.length > 0) await tx.copyFrom({ op, signal, table: this.type === 'fills' ? 'fills' : 'order_events' }, COPY_SQL[this.type], [...encodeCopyRows(valid, (r) => r.values)]);
        if (invalid.length > 0) {
          const data = [...encodeCopyRows(invalid, (r) => [this.sourceId, r.line, r.code, r.reason, Buffer.from(r.raw, 'utf8')])];
          await tx.copyFrom({ op: 'import.quarantine', signal, table: 'quarantine' }, COPY_QUARANTINE_SQL, data);
        }
        // Everything before this line runs in parallel with other chunks;
        // from here on, chunks go one at a time in file order.
        await order.turn(ctx.index, signal);
        if (this.type === 'fills' && valid.length > 0) duplicates.push(...(await this.deleteDuplicateFills(tx, valid, firstLine, lastLine, signal)));
        await this.advanceMark(tx, lastLine, signal);
      },
      { op: 'import.chunk', signal, maxRetries: 0 },
    );
    return { duplicates };
  }

  private async deleteDuplicateFills(tx: Transaction, valid: readonly { orderId: string }[], firstLine: number, lastLine: number, signal: AbortSignal): Promise<ImportRowIssue[]> {
    const orderIds = [...new Set(valid.map((r) => r.orderId))];
    const { rows } = await tx.query<{ seq: string; fill_id: string }>({ op: 'import.duplicate_fills', signal, table: 'fills' }, DELETE_DUPLICATE_FILLS_SQL, [
      this.sourceId,
      firstLine,
      lastLine,
      orderIds,
    ]);
    return rows.map((r) => ({ line: Number(r.seq), code: 'DUPLICATE_FILL' as const, reason: `fill ${r.fill_id} is already stored` }));
  }

  private async advanceMark(tx: Transaction, lastLine: number, signal: AbortSignal): Promise<void> {
    const result = await tx.query(
      { op: 'import.advance_mark', signal, table: 'sources' },
      'UPDATE sources SET last_seq = $2, updated_at = now() WHERE source_id = $1 AND epoch = $3 AND last_seq < $2',
      [this.sourceId, lastLine, this.epoch],
    );
    if (result.rowCount !== 1) throw new FencedError(this.sourceId);
  }
}

/** Adds a committed chunk's counts and listed rows to the summary. */
function book(summary: ImportSummary, rows: readonly PreparedRow[], result: ChunkResultRows, maxReported: number): void {
  let invalid = 0;
  for (const row of rows) {
    if (row.valid) continue;
    invalid++;
    if (summary.invalidRows.length < maxReported) summary.invalidRows.push({ line: row.line, code: row.code, reason: row.reason });
    else summary.rowsTruncated = true;
  }
  const duplicates = [...result.duplicates].sort((a, b) => a.line - b.line);
  for (const d of duplicates) {
    if (summary.duplicateRows.length < maxReported) summary.duplicateRows.push(d);
    else summary.rowsTruncated = true;
  }
  summary.quarantined += invalid;
  summary.duplicateFills += duplicates.length;
  summary.stored += rows.length - invalid - duplicates.length;
  summary.markAfter = Math.max(summary.markAfter, rows[rows.length - 1]!.line);
}
