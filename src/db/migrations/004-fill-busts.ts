import type { Migration } from './migration';

/**
 * Trade busts (issue #8): a busted fill stays in `fills` for audit and stops
 * counting toward order state and positions.
 *
 * - `busted_at`, `bust_reason`: nullable columns without a default, so
 *   ADD COLUMN only changes the catalog (no table rewrite, no long lock).
 *   COPY path cost: none measurable. The ingest COPY names its columns, so
 *   the new ones are NULL; a NULL costs one bit in the tuple's null bitmap,
 *   and fills already carry one (fee is nullable). A separate `fill_busts`
 *   table was rejected: every aggregate would pay an anti-join per fill to
 *   exclude busts, where a column is a plain filter.
 * - No index on fill_id: it would cost every ingest COPY (an index on fills
 *   measured +13% to +25% in migration 003) for a rare operator action. A
 *   bust chunk therefore scans `fills` once (a hash join against its ids);
 *   store/busts.ts keeps chunks large so 10,000 ids cost a few scans.
 * - `counted_fills` (migration 003) becomes the fills with `busted_at IS
 *   NULL`: the one place every aggregate (order state, positions) reads.
 *   CREATE OR REPLACE VIEW may only append columns, and `SELECT *` now
 *   appends the two new ones, so the view stays compatible.
 */
export const migration004: Migration = {
  version: 4,
  name: 'fill_busts',
  sql: `
ALTER TABLE fills ADD COLUMN busted_at timestamptz, ADD COLUMN bust_reason text;
COMMENT ON COLUMN fills.busted_at IS 'When the fill was busted (BustFills); NULL while it counts.';

CREATE OR REPLACE VIEW counted_fills AS
  SELECT * FROM fills WHERE busted_at IS NULL;
COMMENT ON VIEW counted_fills IS 'Fills that count toward order state and positions: busted fills excluded.';
`,
};
