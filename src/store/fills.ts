import type { FillFields } from './events';
import type { ReadQueries } from './read-query';

/** A stored fill as ListFills returns it. Decimals, seq and ns times are strings. */
export interface FillRecordRow {
  sourceId: string;
  seq: string;
  fillId: string;
  orderId: string;
  accountId: string;
  symbol: string;
  side: number;
  price: string;
  qty: string;
  tsNs: string;
  /** '' when the fill carried no fee. */
  fee: string;
  venue: string;
  busted: boolean;
  bustReason: string;
}

/** ListFills filters; absent fields do not filter. Times are ns since the epoch. */
export interface FillFilter {
  accountId?: string;
  orderId?: string;
  symbol?: string;
  fromTsNs?: bigint;
  toTsNs?: bigint;
}

/** Position in the newest-first order of ListFills: (ts_ns, source_id, seq), unique per fill. */
export interface FillCursor {
  tsNs: bigint;
  sourceId: string;
  seq: bigint;
}

/** Newest first; (source_id, seq) makes the order total, so keyset pages never skip or repeat a fill. */
const ORDER_BY = 'ORDER BY f.ts_ns DESC, f.source_id DESC, f.seq DESC';

/** ListFills lists busted fills too (audit), flagged with their reason (migration 004). */
const COLUMNS = `f.source_id, f.seq, f.fill_id, f.order_id, f.account_id, f.symbol, f.side,
       f.price::text AS price, f.qty::text AS qty, f.ts_ns, coalesce(f.fee::text, '') AS fee, f.venue,
       f.busted_at IS NOT NULL AS busted, coalesce(f.bust_reason, '') AS bust_reason`;

/** A fill as listed: the stored fields plus its source, seq and bust flag. */
interface FillDbRow extends FillFields {
  source_id: string;
  seq: string;
  busted: boolean;
  bust_reason: string;
}

/** Fill listing SQL. */
export class FillStore {
  constructor(private readonly queries: ReadQueries) {}

  /**
   * One page of fills, newest first, after `cursor` when given. With an
   * account but neither order nor symbol, the page is merged from the
   * account's symbols on the (account_id, symbol, ts_ns) index: each symbol
   * contributes at most `limit` rows, which spares ingest an
   * (account_id, ts_ns) index (see migration 003).
   */
  async listFills(filter: FillFilter, cursor: FillCursor | undefined, limit: number, signal: AbortSignal): Promise<FillRecordRow[]> {
    const params: unknown[] = [];
    const param = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    const where: string[] = [];
    const account = filter.accountId !== undefined ? param(filter.accountId) : undefined;
    if (account) where.push(`f.account_id = ${account}`);
    if (filter.orderId !== undefined) where.push(`f.order_id = ${param(filter.orderId)}`);
    if (filter.symbol !== undefined) where.push(`f.symbol = ${param(filter.symbol)}`);
    if (filter.fromTsNs !== undefined) where.push(`f.ts_ns >= ${param(filter.fromTsNs.toString())}::bigint`);
    if (filter.toTsNs !== undefined) where.push(`f.ts_ns < ${param(filter.toTsNs.toString())}::bigint`);
    if (cursor) {
      const ts = param(cursor.tsNs.toString());
      where.push(`f.ts_ns <= ${ts}::bigint`, `(f.ts_ns, f.source_id, f.seq) < (${ts}::bigint, ${param(cursor.sourceId)}::text, ${param(cursor.seq.toString())}::bigint)`);
    }
    const limitParam = param(limit);
    let sql: string;
    if (account && filter.orderId === undefined && filter.symbol === undefined) {
      // Loose index scan over the account's distinct symbols, then a top-N merge.
      sql = `
WITH RECURSIVE symbols(symbol) AS (
  (SELECT s.symbol FROM fills s WHERE s.account_id = ${account} ORDER BY s.symbol LIMIT 1)
  UNION ALL
  SELECT (SELECT s.symbol FROM fills s WHERE s.account_id = ${account} AND s.symbol > symbols.symbol ORDER BY s.symbol LIMIT 1)
    FROM symbols WHERE symbols.symbol IS NOT NULL
)
SELECT p.* FROM symbols
 CROSS JOIN LATERAL (
        SELECT ${COLUMNS} FROM fills f
         WHERE f.symbol = symbols.symbol AND ${where.join(' AND ')}
         ${ORDER_BY}
         LIMIT ${limitParam}) p
 WHERE symbols.symbol IS NOT NULL
 ORDER BY p.ts_ns DESC, p.source_id DESC, p.seq DESC
 LIMIT ${limitParam}`;
    } else {
      sql = `SELECT ${COLUMNS} FROM fills f${where.length > 0 ? `\n WHERE ${where.join(' AND ')}` : ''}\n ${ORDER_BY}\n LIMIT ${limitParam}`;
    }
    const rows = await this.queries.run<FillDbRow>('fills.list', sql, params, signal);
    return rows.map((row) => ({
      sourceId: row.source_id,
      seq: row.seq,
      fillId: row.fill_id,
      orderId: row.order_id,
      accountId: row.account_id,
      symbol: row.symbol,
      side: row.side,
      price: row.price,
      qty: row.qty,
      tsNs: row.ts_ns,
      fee: row.fee,
      venue: row.venue,
      busted: row.busted,
      bustReason: row.bust_reason,
    }));
  }
}
