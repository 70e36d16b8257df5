import type { Migration } from './migration';

/**
 * What the read RPCs need beyond migration 001 (issue #5).
 *
 * - `counted_fills`: the ONE place that decides which fills count toward
 *   order state and positions. Busting (issue #8) adds `WHERE NOT busted`
 *   here with CREATE OR REPLACE VIEW; every aggregate reads this view, while
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
 *   in (ts_ns DESC) order and keeps the first event of each order. Cost to
 *   ingest, measured with `npm run bench:read-indexes` (COPY of 200,000 rows
 *   in 20 batches of 10,000 into a table that has the 001 indexes, with
 *   vs without the new index; embedded PostgreSQL 18, 2 cores, fsync off,
 *   median of 3; see the numbers in the report of issue #5):
 *     fills (ts_ns)                   ListFills unfiltered / by time / by symbol
 *     fills (account_id, ts_ns)       ListFills by account (across symbols)
 *     order_events (ts_ns)            ListOrders unfiltered / by time / by symbol
 *     order_events (account_id, ts_ns) ListOrders by account
 *   COST_TABLE_PLACEHOLDER
 *   Not indexed on purpose: symbol without account (walks the ts_ns index
 *   and filters; fine for liquid symbols, slow for rare ones) and order
 *   status (derived from events and fills, so it cannot be indexed; the
 *   ListOrders status filter walks candidates and checks each).
 */
export const migration003: Migration = {
  version: 3,
  name: 'read_path',
  sql: `
CREATE VIEW counted_fills AS
  SELECT * FROM fills; -- TODO(#8): WHERE NOT busted

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
