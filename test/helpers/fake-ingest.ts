import type { Pool } from '../../src/db/types';
import type { FillFields, OrderEventFields } from '../../src/store/events';
import { ChangeSetBuilder, type ChangeSet, type FlushHooks } from '../../src/store/change-set';

/** An order event row for the fake ingest: the stored row's fields ('' price stores NULL). */
export type FakeOrderEvent = OrderEventFields;

/** A fill row for the fake ingest ('' fee stores NULL). */
export type FakeFill = FillFields;

let tsCounter = 1_700_000_000_000_000_000n;
/** A fresh, increasing nanosecond timestamp (as a string). */
export function nextTsNs(): string {
  tsCounter += 1_000n;
  return tsCounter.toString();
}

/** An order event with defaults (a NEW limit buy of 100 at 10.5, GTC). */
export function orderEvent(fields: Partial<FakeOrderEvent> & { order_id: string }): FakeOrderEvent {
  return { account_id: 'acct-1', symbol: 'AAPL', side: 1, order_type: 2, event_type: 1, price: '10.5', qty: '100', time_in_force: 2, ts_ns: nextTsNs(), client_order_id: '', ...fields };
}

/** A fill with defaults (buy 10 at 10.5 on acct-1/AAPL). */
export function fill(fields: Partial<FakeFill> & { fill_id: string; order_id: string }): FakeFill {
  return { account_id: 'acct-1', symbol: 'AAPL', side: 1, price: '10.5', qty: '10', ts_ns: nextTsNs(), fee: '0.01', venue: 'XNAS', ...fields };
}

/**
 * Stands in for the Ingest RPC until it lands: writes rows with plain
 * INSERTs in one transaction and calls the FlushHooks exactly as the flush
 * will (beforeCommit inside the transaction, afterCommit after COMMIT). When
 * `flush` resolves, afterCommit has returned: that is the moment the real
 * service would send the ack. TODO(#4): swap for a real Ingest stream.
 */
export class FakeIngest {
  private seq = 0n;

  constructor(
    private readonly pool: Pool,
    private readonly hooks: FlushHooks,
    readonly sourceId = 'fake-ingest',
  ) {}

  /** Commits one flush; resolves when it is "acked". Returns the ChangeSet the hooks saw. */
  async flush(rows: { orders?: readonly FakeOrderEvent[]; fills?: readonly FakeFill[] }): Promise<ChangeSet> {
    const orders = rows.orders ?? [];
    const fills = rows.fills ?? [];
    const builder = new ChangeSetBuilder();
    for (const o of orders) builder.addOrderEvent(o.order_id, o.account_id);
    for (const f of fills) builder.addFill(f.order_id, f.account_id, f.symbol);
    const changes = builder.build();
    const orderSeqs = orders.map(() => (++this.seq).toString());
    const fillSeqs = fills.map(() => (++this.seq).toString());
    await this.pool.withTransaction(
      async (tx) => {
        if (orders.length > 0) {
          await tx.query(
            'fake_ingest.orders',
            `INSERT INTO order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns, client_order_id)
             SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::smallint[], $8::smallint[],
                                      $9::numeric[], $10::numeric[], $11::smallint[], $12::bigint[], $13::text[])`,
            [
              this.sourceId,
              orderSeqs,
              orders.map((o) => o.order_id),
              orders.map((o) => o.account_id),
              orders.map((o) => o.symbol),
              orders.map((o) => o.side),
              orders.map((o) => o.order_type),
              orders.map((o) => o.event_type),
              orders.map((o) => (o.price === '' ? null : o.price)),
              orders.map((o) => o.qty),
              orders.map((o) => o.time_in_force),
              orders.map((o) => o.ts_ns),
              orders.map((o) => o.client_order_id),
            ],
          );
        }
        if (fills.length > 0) {
          await tx.query(
            'fake_ingest.fills',
            `INSERT INTO fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns, fee, venue)
             SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::smallint[],
                                      $8::numeric[], $9::numeric[], $10::bigint[], $11::numeric[], $12::text[])`,
            [
              this.sourceId,
              fillSeqs,
              fills.map((f) => f.fill_id),
              fills.map((f) => f.order_id),
              fills.map((f) => f.account_id),
              fills.map((f) => f.symbol),
              fills.map((f) => f.side),
              fills.map((f) => f.price),
              fills.map((f) => f.qty),
              fills.map((f) => f.ts_ns),
              fills.map((f) => (f.fee === '' ? null : f.fee)),
              fills.map((f) => f.venue),
            ],
          );
        }
        await tx.query(
          'fake_ingest.source',
          `INSERT INTO sources (source_id, last_seq) VALUES ($1, $2)
           ON CONFLICT (source_id) DO UPDATE SET last_seq = greatest(sources.last_seq, EXCLUDED.last_seq), updated_at = now()`,
          [this.sourceId, this.seq.toString()],
        );
        await this.hooks.beforeCommit?.(tx, changes);
      },
      { op: 'fake_ingest.flush' },
    );
    this.hooks.afterCommit?.(changes);
    return changes;
  }
}
