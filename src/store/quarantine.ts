import type { Queryable } from '../db/types';

/** One refused event as kept in quarantine. */
export interface QuarantineRow {
  sourceId: string;
  /** The event's seq as sent (0 up to 2⁶⁴ − 1), decimal string. */
  seq: string;
  /** Proto RejectCode name, e.g. `REJECT_CODE_INVALID_FIELD`. */
  code: string;
  reason: string;
  /** The event's protobuf bytes. */
  raw: Buffer;
}

/** Inserts quarantine rows in one statement (unnest of parallel arrays). */
export async function insertQuarantine(q: Queryable, rows: readonly QuarantineRow[]): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    { op: 'quarantine.insert', table: 'quarantine' },
    `INSERT INTO quarantine (source_id, seq, code, reason, raw)
     SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[], $4::text[], $5::bytea[])`,
    [rows.map((r) => r.sourceId), rows.map((r) => r.seq), rows.map((r) => r.code), rows.map((r) => r.reason), rows.map((r) => r.raw)],
  );
}
