import type { Pool } from '../db/types';
import { InvalidArgumentError } from '../errors';
import { mapRecord, type CsvLayout } from '../import/csv-columns';
import type { CsvRecord } from '../import/csv-parser';

/**
 * Checks that the file being imported is the one the source's mark belongs
 * to, before any line after the mark is stored: the record on line `mark`
 * must be what an earlier run handled there. Without it, a different file
 * with the same name (a daily `fills.csv`) would have its first `mark` lines
 * skipped as "already imported".
 *
 * The row at the mark is found where an earlier run put it: quarantine (same
 * raw CSV text), fills (same order_id and fill_id, from any source, since a
 * duplicate fill is not stored again) or order_events (same source, line and
 * order id). Lookups go through the order_id indexes; quarantine is scanned
 * for one source, which is small. Throws InvalidArgumentError('source').
 */
export async function verifyResumePoint(pool: Pool, layout: CsvLayout, sourceId: string, mark: number, record: CsvRecord | undefined, signal?: AbortSignal): Promise<void> {
  if (record !== undefined && (await sameRowAt(pool, layout, sourceId, mark, record, signal))) return;
  throw new InvalidArgumentError(
    'source',
    `${sourceId} already holds lines up to ${mark} of a file whose line ${mark} differs from this one's; ` +
      'if this is a different file, import it under a new name with --source',
  );
}

async function sameRowAt(pool: Pool, layout: CsvLayout, sourceId: string, mark: number, record: CsvRecord, signal: AbortSignal | undefined): Promise<boolean> {
  const opts = (op: string, table: string) => ({ op, signal, table });
  const quarantined = await pool.query(opts('import.verify_quarantine', 'quarantine'), 'SELECT 1 FROM quarantine WHERE source_id = $1 AND seq = $2 AND raw = $3 LIMIT 1', [
    sourceId,
    mark,
    Buffer.from(record.raw, 'utf8'),
  ]);
  if ((quarantined.rowCount ?? 0) > 0) return true;
  const mapped = mapRecord(record, layout);
  if (!mapped.ok) return false;
  if (mapped.event.fill) {
    const { order_id, fill_id } = mapped.event.fill;
    const found = await pool.query(opts('import.verify_fill', 'fills'), 'SELECT 1 FROM fills WHERE order_id = $1 AND fill_id = $2 LIMIT 1', [order_id, fill_id]);
    return (found.rowCount ?? 0) > 0;
  }
  const order = mapped.event.order!;
  const found = await pool.query(opts('import.verify_order', 'order_events'), 'SELECT 1 FROM order_events WHERE order_id = $1 AND source_id = $2 AND seq = $3 LIMIT 1', [
    order.order_id,
    sourceId,
    mark,
  ]);
  return (found.rowCount ?? 0) > 0;
}
