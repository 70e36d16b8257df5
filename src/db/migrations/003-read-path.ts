import type { Migration } from './migration';

/**
 * What the read RPCs need beyond migration 001 (issue #5).
 *
 * - `counted_fills`: the ONE place that decides which fills count toward
 *   order state and positions. Busting (issue #8, migration 004) redefines
 *   it to exclude busted fills; every aggregate reads this view, while
 *   ListFills reads `fills` itself (busted fills stay listed for audit).
 * - `orderflow_vwap(notional, qty)`: volume-weighted average price, exact:
 *   numeric `div` is an exact integer quotient, so the result is
 *   notional/qty rounded half up to 8 fractional digits (prices have at most
 *   8), trailing zeros trimmed. A plain `round(a / b, 8)` would round twice
 *   (numeric division already rounds to its own scale). Inputs are > 0.
 * - `page_token_keys`: the HMAC secret of ListOrders/ListFills page tokens,
 *   generated once here, so every instance on this database signs and checks
 *   tokens alike. 244 random bits (two v4 UUIDs) hashed to 32 bytes.
 * - Indexes for keyset pagination newest first. Orders are not a table: an
 *   order is listed through its first event, so ListOrders walks order events
 *   newest first and keeps each order's first event (an anti-join on the
 *   order_id index); that costs about (events per order) index probes per
 *   listed order and needs no extra write-side structure. A summary table
 *   maintained at ingest would make ListOrders cheaper but cost every COPY.
 *   Cost to ingest, measured with `npm run bench:read-indexes`: COPY of
 *   200,000 rows in 20 batches of 10,000 into a table that has the 001
 *   indexes, with vs without the index (embedded PostgreSQL 18, fsync off,
 *   2 shared cores under heavy load from other jobs, so ranges of two runs,
 *   median of 3 and of 5 rounds):
 *     fills (ts_ns)                     +13% to +25%   ListFills unfiltered, by time, by symbol alone
 *     order_events (ts_ns)              +22% to +23%   ListOrders unfiltered, by time, by symbol alone
 *     order_events (account_id, ts_ns)  +50% to +78%   ListOrders by account
 *     both order_events indexes         +92% to +101%
 *   Measured and not adopted (issue #9): fills_ts as a BRIN (int8_minmax_multi_ops,
 *   pages_per_range 32, ListFills walking exact time windows down from the heap's
 *   tail). COPY of the bench's 1,000,000 fills: PostgreSQL CPU per row 16.2 µs with
 *   this B-tree, 13.6 µs with the BRIN (-16%), but summarizing the ranges costs
 *   ~1.1 µs per row later (net ~-9%), while ListFills got 4-6x slower unfiltered
 *   (7-11 ms vs 1.7-2.6 ms per page), 35x slower for a liquid symbol (74 vs 2.1 ms),
 *   and every window rescans the ranges autovacuum has not summarized yet (up to a
 *   minute of ingest; 160 ms per window with 100,000 such fills).
 *   Rejected: fills (account_id, ts_ns), +25% to +50%. ListFills by account
 *   alone instead merges the account's symbols on the 001 index
 *   (account_id, symbol, ts_ns) (store/fills.ts), at most page-size rows per
 *   symbol. Not indexed on purpose: symbol without account (walks the ts_ns
 *   index and filters: fine for liquid symbols, slow for rare ones) and order
 *   status (derived from events and fills, so it cannot be indexed).
 */
export const migration003: Migration = {
  version: 3,
  name: 'read_path',
  sql: `
CREATE VIEW counted_fills AS
  SELECT * FROM fills; -- busted fills are excluded by migration 004
COMMENT ON VIEW counted_fills IS 'Fills that count toward order state and positions (busted fills excluded once they exist).';

CREATE FUNCTION orderflow_vwap(notional numeric, qty numeric) RETURNS numeric
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT CASE WHEN qty > 0 THEN trim_scale(div(notional * 200000000 + qty, qty * 2) * 0.00000001) END $$;

CREATE TABLE page_token_keys (
  key_id  smallint PRIMARY KEY,
  secret  bytea NOT NULL
);
INSERT INTO page_token_keys (key_id, secret)
  VALUES (1, sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')));

CREATE INDEX fills_ts ON fills (ts_ns);
CREATE INDEX order_events_ts ON order_events (ts_ns);
CREATE INDEX order_events_account_ts ON order_events (account_id, ts_ns);
`,
};
