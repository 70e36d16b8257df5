import { runBatch } from '../db/batch';
import { CancelledError } from '../errors';
import type { ReadQueries } from './read-query';

/** Order ids per state query: BatchGetOrders misses beyond this are split into chunks (batch select path). */
export const ORDER_STATE_CHUNK_SIZE = 500;
/** Order state chunks queried at once. */
export const ORDER_STATE_CONCURRENCY = 2;

/** Current state of an order, as derived from its events and counted fills. Decimals and ns times are strings. */
export interface OrderState {
  orderId: string;
  clientOrderId: string;
  accountId: string;
  symbol: string;
  side: number;
  orderType: number;
  timeInForce: number;
  /** OrderStatus enum number. */
  status: number;
  /** Limit price of the latest event; '' for market orders. */
  price: string;
  qty: string;
  filledQty: string;
  /** VWAP of the counted fills, rounded half up to 8 fractional digits; '' without fills. */
  avgFillPrice: string;
  createdTsNs: string;
  updatedTsNs: string;
}

/** ListOrders filters; absent fields do not filter. Times are ns since the epoch. */
export interface OrderFilter {
  accountId?: string;
  symbol?: string;
  /** OrderStatus enum number. */
  status?: number;
  fromTsNs?: bigint;
  toTsNs?: bigint;
}

/** Position in the newest-first order of ListOrders: the order's creation time, then its id. */
export interface OrderCursor {
  createdTsNs: bigint;
  orderId: string;
}

/**
 * Status from the latest event (`l`) and the counted fills (`f`), in the
 * order the rules apply: filled quantity reaching the order quantity means
 * FILLED even after a cancel or expiry (the cancel lost the race); otherwise
 * a terminal event wins; otherwise fills make it PARTIALLY_FILLED; otherwise
 * the event decides (REPLACED is a live, accepted order).
 */
const STATUS_SQL = `CASE
    WHEN f.filled_qty >= l.qty THEN 4
    WHEN l.event_type = 4 THEN 5
    WHEN l.event_type = 5 THEN 6
    WHEN l.event_type = 6 THEN 7
    WHEN f.filled_qty > 0 THEN 3
    WHEN l.event_type = 1 THEN 1
    WHEN l.event_type IN (2, 3) THEN 2
    ELSE 0
  END`;

/**
 * The state of each order `c` (a row with its order_id and creation time):
 * latest event by (ts_ns, source_id, seq), counted fills folded in with
 * exact numeric arithmetic. Busted fills are excluded by the counted_fills view.
 */
const STATE_SQL = `
SELECT c.order_id, l.client_order_id, l.account_id, l.symbol, l.side, l.order_type, l.time_in_force,
       st.status,
       coalesce(l.price::text, '') AS price,
       l.qty::text AS qty,
       trim_scale(coalesce(f.filled_qty, 0))::text AS filled_qty,
       coalesce(orderflow_vwap(f.notional, f.filled_qty)::text, '') AS avg_fill_price,
       c.ts_ns AS created_ts_ns,
       greatest(l.ts_ns, f.last_fill_ts_ns) AS updated_ts_ns
  FROM %SOURCE%
 CROSS JOIN LATERAL (
        SELECT e.* FROM order_events e
         WHERE e.order_id = c.order_id
         ORDER BY e.ts_ns DESC, e.source_id DESC, e.seq DESC
         LIMIT 1) l
 CROSS JOIN LATERAL (
        SELECT sum(cf.qty) AS filled_qty, sum(cf.price * cf.qty) AS notional, max(cf.ts_ns) AS last_fill_ts_ns
          FROM counted_fills cf
         WHERE cf.order_id = c.order_id) f
 CROSS JOIN LATERAL (SELECT ${STATUS_SQL} AS status) st`;

/** The first event of each requested order (creation time); unknown ids produce no row. */
const BY_IDS_SOURCE = `unnest($1::text[]) AS ids(order_id)
 CROSS JOIN LATERAL (
        SELECT e.order_id, e.ts_ns FROM order_events e
         WHERE e.order_id = ids.order_id
         ORDER BY e.ts_ns, e.source_id, e.seq
         LIMIT 1) c`;

interface OrderRow {
  order_id: string;
  client_order_id: string;
  account_id: string;
  symbol: string;
  side: number;
  order_type: number;
  time_in_force: number;
  status: number;
  price: string;
  qty: string;
  filled_qty: string;
  avg_fill_price: string;
  created_ts_ns: string;
  updated_ts_ns: string;
}

/**
 * Order state SQL. An order exists once it has an order event: fills that
 * arrive before their order's first event count in ListFills and positions,
 * but GetOrder answers NOT_FOUND until the event is stored (an order without
 * side, type and quantity would be a guess).
 */
export class OrderStore {
  constructor(private readonly queries: ReadQueries) {}

  /**
   * States of `orderIds`; `null` where the order is unknown. Same order as
   * the input. Up to ORDER_STATE_CHUNK_SIZE ids are one query (one round
   * trip; GetOrder's hot path pays no batch bookkeeping). More go through
   * the batch module: one query per chunk, ORDER_STATE_CONCURRENCY chunks at
   * once, and any failed chunk fails the call.
   */
  async getOrders(orderIds: readonly string[], signal: AbortSignal): Promise<(OrderState | null)[]> {
    const sql = STATE_SQL.replace('%SOURCE%', BY_IDS_SOURCE);
    const byId = new Map<string, OrderState>();
    if (orderIds.length <= ORDER_STATE_CHUNK_SIZE) {
      const rows = await this.queries.run<OrderRow>('orders.get', sql, [orderIds], signal);
      for (const row of rows) byId.set(row.order_id, toOrderState(row));
      return orderIds.map((id) => byId.get(id) ?? null);
    }
    const report = await runBatch(
      orderIds,
      async (chunk, ctx) => {
        const rows = await this.queries.run<OrderRow>('orders.get', sql, [chunk], ctx.signal);
        for (const row of rows) byId.set(row.order_id, toOrderState(row));
        return rows.length;
      },
      { op: 'orders.get', chunkSize: ORDER_STATE_CHUNK_SIZE, concurrency: ORDER_STATE_CONCURRENCY, onError: 'stop', signal },
    );
    const failure = report.failures[0];
    if (failure) throw failure.error;
    if (report.outcome === 'aborted') throw new CancelledError({ cause: signal.reason });
    return orderIds.map((id) => byId.get(id) ?? null);
  }

  /**
   * One page of orders, newest first by (creation time, order id), after
   * `cursor` when given. An order is found through its first event, so the
   * account and symbol filters apply to the order as created.
   */
  async listOrders(filter: OrderFilter, cursor: OrderCursor | undefined, limit: number, signal: AbortSignal): Promise<OrderState[]> {
    const params: unknown[] = [];
    const where: string[] = [];
    const param = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    if (filter.accountId !== undefined) where.push(`c.account_id = ${param(filter.accountId)}`);
    if (filter.symbol !== undefined) where.push(`c.symbol = ${param(filter.symbol)}`);
    if (filter.fromTsNs !== undefined) where.push(`c.ts_ns >= ${param(filter.fromTsNs.toString())}::bigint`);
    if (filter.toTsNs !== undefined) where.push(`c.ts_ns < ${param(filter.toTsNs.toString())}::bigint`);
    if (cursor) {
      const ts = param(cursor.createdTsNs.toString());
      // The redundant `ts_ns <=` lets the planner bound the index scan.
      where.push(`c.ts_ns <= ${ts}::bigint`, `(c.ts_ns, c.order_id) < (${ts}::bigint, ${param(cursor.orderId)}::text)`);
    }
    if (filter.status !== undefined) where.push(`st.status = ${param(filter.status)}`);
    // Only the first event of each order stands for the order.
    where.push(`NOT EXISTS (SELECT 1 FROM order_events p
                             WHERE p.order_id = c.order_id
                               AND (p.ts_ns, p.source_id, p.seq) < (c.ts_ns, c.source_id, c.seq))`);
    const sql = `${STATE_SQL.replace('%SOURCE%', 'order_events c')}
 WHERE ${where.join('\n   AND ')}
 ORDER BY c.ts_ns DESC, c.order_id DESC
 LIMIT ${param(limit)}`;
    const rows = await this.queries.run<OrderRow>('orders.list', sql, params, signal);
    return rows.map(toOrderState);
  }
}

function toOrderState(row: OrderRow): OrderState {
  return {
    orderId: row.order_id,
    clientOrderId: row.client_order_id,
    accountId: row.account_id,
    symbol: row.symbol,
    side: row.side,
    orderType: row.order_type,
    timeInForce: row.time_in_force,
    status: row.status,
    price: row.price,
    qty: row.qty,
    filledQty: row.filled_qty,
    avgFillPrice: row.avg_fill_price,
    createdTsNs: row.created_ts_ns,
    updatedTsNs: row.updated_ts_ns,
  };
}
