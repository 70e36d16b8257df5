import type { FillFields } from '../../../src/store/events';

/**
 * Deterministic generators of realistic order flow (seeded PRNG): the same
 * seed gives the same rows in every scenario, so the limit, the alternatives
 * and orderflow load identical data.
 */

/** A 32-bit seeded PRNG (mulberry32): fast, deterministic, good enough for test data. */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** One fill as a row of the `fills` table; every value a string except `side`. */
export interface FillRow extends FillFields {
  source_id: string;
  /** Per-source sequence number (decimal string). */
  seq: string;
}

/** Columns of a FillRow in COPY / INSERT order. */
export const FILL_COLUMNS: readonly (keyof FillRow)[] = ['source_id', 'seq', 'fill_id', 'order_id', 'account_id', 'symbol', 'side', 'price', 'qty', 'ts_ns', 'fee', 'venue'];

/** PostgreSQL types of FILL_COLUMNS, for `unnest($n::type[])`. */
export const FILL_COLUMN_TYPES: Readonly<Record<keyof FillRow, string>> = {
  source_id: 'text',
  seq: 'bigint',
  fill_id: 'text',
  order_id: 'text',
  account_id: 'text',
  symbol: 'text',
  side: 'smallint',
  price: 'numeric',
  qty: 'numeric',
  ts_ns: 'bigint',
  fee: 'numeric',
  venue: 'text',
};

const SYMBOLS = [
  'AAPL', 'MSFT', 'AMZN', 'NVDA', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V', 'UNH', 'XOM', 'JNJ', 'PG', 'MA', 'HD', 'CVX', 'MRK', 'ABBV', 'PEP',
  'KO', 'AVGO', 'COST', 'WMT', 'MCD', 'CSCO', 'CRM', 'ACN', 'TMO', 'ABT', 'LIN', 'DHR', 'NKE', 'ADBE', 'TXN', 'NEE', 'PM', 'ORCL', 'AMD', 'INTC',
  'ESZ4', 'NQZ4', 'CLF5', 'GCG5', 'ZNH5', 'EURUSD', 'GBPUSD', 'USDJPY', 'BTC-USD', 'ETH-USD',
];
const VENUES = ['XNAS', 'XNYS', 'ARCX', 'BATS', 'IEXG', 'XCME', 'EDGX'];
/** 2024-03-09T16:00:00Z in ns: a fixed start so generated timestamps are reproducible. */
const BASE_TS_NS = 1_710_000_000_000_000_000n;

/** Options of createFillGenerator. */
export interface FillGeneratorOptions {
  seed: number;
  sourceId: string;
  /** Distinct accounts, default 200. */
  accounts?: number;
  /** First seq, default 1. */
  firstSeq?: number;
}

/**
 * An endless, deterministic stream of fills for one source. Order ids grow
 * over time and each fill executes one of the 256 most recent orders, as on a
 * real venue feed (so index inserts have the locality they have in production).
 */
export function createFillGenerator(options: FillGeneratorOptions): () => FillRow {
  const random = createRandom(options.seed);
  const accounts = options.accounts ?? 200;
  let seq = options.firstSeq ?? 1;
  let newestOrder = 1_000_000 + Math.floor(random() * 1_000_000);
  let tsNs = BASE_TS_NS + BigInt(Math.floor(random() * 1e9));
  const prefix = options.sourceId.replace(/[^A-Za-z0-9]/g, '').slice(-6).toUpperCase() || 'SRC';
  return () => {
    if (random() < 0.5) newestOrder += 1 + Math.floor(random() * 3);
    const orderNo = newestOrder - Math.floor(random() * random() * 256);
    // The order's account and symbol follow from its number, so all fills of one order agree.
    const account = (Math.imul(orderNo, 0x9e3779b1) >>> 0) % accounts;
    const symbol = SYMBOLS[(orderNo * 40_503) % SYMBOLS.length]!;
    const basePrice = 20 + ((orderNo * 7_919) % 480);
    const price = (basePrice + random() * 2).toFixed(4);
    const qty = String(1 + Math.floor(random() * random() * 1_000));
    const fee = random() < 0.2 ? `-${(random() * 0.01).toFixed(6)}` : (random() * 2).toFixed(4);
    tsNs += BigInt(1_000 + Math.floor(random() * 20_000));
    const row: FillRow = {
      source_id: options.sourceId,
      seq: String(seq),
      fill_id: `${prefix}-F${String(seq).padStart(12, '0')}`,
      order_id: `ORD-${orderNo.toString(36).toUpperCase().padStart(8, '0')}-${prefix}`,
      account_id: `ACCT-${String(account).padStart(6, '0')}`,
      symbol,
      side: (orderNo & 1) === 0 ? 1 : 2,
      price,
      qty,
      ts_ns: tsNs.toString(),
      fee,
      venue: VENUES[orderNo % VENUES.length]!,
    };
    seq++;
    return row;
  };
}

/** Escapes one value for PostgreSQL's COPY text format (backslash, tab, newline, carriage return). */
export function escapeCopyText(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : value;
}

/** One COPY text line (tab-separated, newline-terminated) of a fill in FILL_COLUMNS order. */
export function fillToCopyLine(row: FillRow): string {
  return (
    `${escapeCopyText(row.source_id)}\t${row.seq}\t${escapeCopyText(row.fill_id)}\t${escapeCopyText(row.order_id)}\t` +
    `${escapeCopyText(row.account_id)}\t${escapeCopyText(row.symbol)}\t${row.side}\t${row.price}\t${row.qty}\t${row.ts_ns}\t` +
    `${row.fee === '' ? '\\N' : row.fee}\t${escapeCopyText(row.venue)}\n`
  );
}

/** A fill as the proto `Event` the Ingest RPC takes (seq and ts_ns stay strings). */
export function fillToEvent(row: FillRow): { seq: string; fill: Record<string, string | number> } {
  return {
    seq: row.seq,
    fill: {
      fill_id: row.fill_id,
      order_id: row.order_id,
      account_id: row.account_id,
      symbol: row.symbol,
      side: row.side,
      price: row.price,
      qty: row.qty,
      ts_ns: row.ts_ns,
      fee: row.fee,
      venue: row.venue,
    },
  };
}

/** A seeded order with its fills, for the read scenarios. */
export interface SeedOrder {
  order_id: string;
  account_id: string;
  symbol: string;
  side: number;
  price: string;
  qty: string;
  ts_ns: string;
  fills: Array<{ fill_id: string; price: string; qty: string; ts_ns: string; fee: string; venue: string }>;
}

/**
 * Deterministic orders for the read scenarios: `count` limit orders over
 * `accounts` accounts and the symbol list, each with 0–3 fills.
 */
export function generateSeedOrders(seed: number, count: number, accounts = 50): SeedOrder[] {
  const random = createRandom(seed);
  const orders: SeedOrder[] = [];
  let tsNs = BASE_TS_NS;
  for (let i = 0; i < count; i++) {
    tsNs += BigInt(5_000 + Math.floor(random() * 50_000));
    const qtyNum = 10 + Math.floor(random() * 990);
    const price = (20 + random() * 480).toFixed(4);
    const fillCount = Math.floor(random() * 4);
    const fills: SeedOrder['fills'] = [];
    let left = qtyNum;
    for (let f = 0; f < fillCount && left > 0; f++) {
      const q = f === fillCount - 1 ? left : Math.max(1, Math.floor(left * random()));
      left -= q;
      fills.push({
        fill_id: `SEED-F${String(i).padStart(9, '0')}-${f}`,
        price,
        qty: String(q),
        ts_ns: (tsNs + BigInt(1_000 * (f + 1))).toString(),
        fee: (q * 0.0035).toFixed(4),
        venue: VENUES[i % VENUES.length]!,
      });
    }
    orders.push({
      order_id: `SEED-O${String(i).padStart(9, '0')}`,
      account_id: `ACCT-${String(i % accounts).padStart(6, '0')}`,
      symbol: SYMBOLS[Math.floor(random() * SYMBOLS.length)]!,
      side: random() < 0.5 ? 1 : 2,
      price,
      qty: String(qtyNum),
      ts_ns: tsNs.toString(),
      fills,
    });
  }
  return orders;
}

/** The symbol list the generators draw from (the read scenarios query by it). */
export const BENCH_SYMBOLS: readonly string[] = SYMBOLS;
