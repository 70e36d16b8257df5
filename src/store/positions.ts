import type { ReadQueries } from './read-query';

/** Position of one account in one symbol. Decimals and ns times are strings. */
export interface PositionState {
  accountId: string;
  symbol: string;
  /** buyQty - sellQty. */
  netQty: string;
  buyQty: string;
  sellQty: string;
  /** VWAP of the buys, rounded half up to 8 fractional digits; '' without buys. */
  avgBuyPrice: string;
  avgSellPrice: string;
  fillCount: number;
  /** Time of the latest counted fill; '0' without fills. */
  updatedTsNs: string;
}

interface PositionRow {
  net_qty: string;
  buy_qty: string;
  sell_qty: string;
  avg_buy_price: string;
  avg_sell_price: string;
  fill_count: number;
  updated_ts_ns: string;
}

/** Side numbers as stored (proto Side). */
const SIDE_BUY = 1;
const SIDE_SELL = 2;

/**
 * Sums in numeric (exact); busted fills are excluded by counted_fills. The
 * (account_id, symbol, ts_ns) index of migration 001 finds the rows.
 */
const POSITION_SQL = `
SELECT trim_scale(coalesce(t.buy_qty, 0) - coalesce(t.sell_qty, 0))::text AS net_qty,
       trim_scale(coalesce(t.buy_qty, 0))::text AS buy_qty,
       trim_scale(coalesce(t.sell_qty, 0))::text AS sell_qty,
       coalesce(orderflow_vwap(t.buy_notional, t.buy_qty)::text, '') AS avg_buy_price,
       coalesce(orderflow_vwap(t.sell_notional, t.sell_qty)::text, '') AS avg_sell_price,
       t.fill_count,
       coalesce(t.updated_ts_ns, 0) AS updated_ts_ns
  FROM (SELECT sum(f.qty) FILTER (WHERE f.side = ${SIDE_BUY}) AS buy_qty,
               sum(f.price * f.qty) FILTER (WHERE f.side = ${SIDE_BUY}) AS buy_notional,
               sum(f.qty) FILTER (WHERE f.side = ${SIDE_SELL}) AS sell_qty,
               sum(f.price * f.qty) FILTER (WHERE f.side = ${SIDE_SELL}) AS sell_notional,
               count(*)::integer AS fill_count,
               max(f.ts_ns) AS updated_ts_ns
          FROM counted_fills f
         WHERE f.account_id = $1 AND f.symbol = $2) t`;

/** Position SQL. */
export class PositionStore {
  constructor(private readonly queries: ReadQueries) {}

  /** The position; all zeros (not an error) when the account has no fills in the symbol. */
  async getPosition(accountId: string, symbol: string, signal: AbortSignal): Promise<PositionState> {
    const [row] = await this.queries.run<PositionRow>('positions.get', POSITION_SQL, [accountId, symbol], signal);
    return {
      accountId,
      symbol,
      netQty: row!.net_qty,
      buyQty: row!.buy_qty,
      sellQty: row!.sell_qty,
      avgBuyPrice: row!.avg_buy_price,
      avgSellPrice: row!.avg_sell_price,
      fillCount: row!.fill_count,
      updatedTsNs: row!.updated_ts_ns,
    };
  }
}
