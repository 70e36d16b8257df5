/**
 * Prints the plans (EXPLAIN ANALYZE) of every read query shape over 200,000
 * fills and 200,000 order events, to check that each uses its index. A
 * development aid: `npm run build && node dist/scripts/bench/read-explain.js`.
 */
import type { QueryResultRow } from 'pg';
import { loadConfig } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import { FillStore } from '../../src/store/fills';
import { OrderStore } from '../../src/store/orders';
import { PositionStore } from '../../src/store/positions';
import { ReadQueries } from '../../src/store/read-query';
import { silentLogger } from '../../src/telemetry/logger';
import { startBenchDatabase } from './read-support';

class ExplainQueries extends ReadQueries {
  constructor(private readonly p: import('../../src/db/types').Pool) {
    super(p);
  }
  override async run<R extends QueryResultRow>(op: string, sql: string, params: readonly unknown[]): Promise<R[]> {
    const { rows } = await this.p.query<{ 'QUERY PLAN': string }>('explain', `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql}`, params);
    console.log(`\n=== ${op}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
    return [];
  }
}

async function main(): Promise<void> {
  const db = await startBenchDatabase('explain');
  const pool = createPool({ connectionString: db.url, config: loadConfig({ POOL_MIN: '0' }).pool, logger: silentLogger });
  try {
    await migrate(pool, silentLogger);
    const n = 200_000;
    const lines: string[] = [];
    const ev: string[] = [];
    for (let i = 0; i < n; i++) {
      // Orders of 4 events each, close in time; 1,000 accounts, 37 symbols.
      const order = Math.floor(i / 4);
      const acct = `acct-${order % 1000}`;
      const sym = `SYM${order % 37}`;
      const ts = 1_700_000_000_000_000_000n + BigInt(i) * 1000n;
      lines.push(['src', i, `F${i}`, `O${order}`, acct, sym, 1 + (i % 2), '10.5', '3', ts, '0.1', 'X'].join('\t'));
      ev.push(['src', n + i, `O${order}`, acct, sym, 1, 2, 1 + (i % 4 === 3 ? 3 : 0), '10.5', '100', 1, ts, 'c'].join('\t'));
    }
    await pool.copyFrom('x', 'COPY fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns, fee, venue) FROM STDIN', [Buffer.from(lines.join('\n') + '\n')]);
    await pool.copyFrom('x', 'COPY order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns, client_order_id) FROM STDIN', [Buffer.from(ev.join('\n') + '\n')]);
    await pool.query('x', 'VACUUM ANALYZE');
    const q = new ExplainQueries(pool);
    const signal = new AbortController().signal;
    const orders = new OrderStore(q);
    const fills = new FillStore(q);
    await orders.getOrders(['O1', 'O2', 'nope'], signal);
    await orders.listOrders({}, undefined, 101, signal);
    await orders.listOrders({}, { createdTsNs: 1_700_000_000_100_000_000n, orderId: 'O5' }, 101, signal);
    await orders.listOrders({ accountId: 'acct-7' }, undefined, 101, signal);
    await orders.listOrders({ accountId: 'acct-7', status: 5 }, undefined, 101, signal);
    await orders.listOrders({ symbol: 'SYM3' }, undefined, 101, signal);
    await fills.listFills({}, undefined, 101, signal);
    await fills.listFills({}, { tsNs: 1_700_000_000_100_000_000n, sourceId: 'src', seq: 5n }, 101, signal);
    await fills.listFills({ accountId: 'acct-7' }, undefined, 101, signal);
    await fills.listFills({ accountId: 'acct-7' }, { tsNs: 1_700_000_000_100_000_000n, sourceId: 'src', seq: 5n }, 101, signal);
    await fills.listFills({ accountId: 'acct-7', symbol: 'SYM7' }, undefined, 101, signal);
    await fills.listFills({ orderId: 'O7' }, undefined, 101, signal);
    await fills.listFills({ symbol: 'SYM7' }, undefined, 101, signal);
    await new PositionStore(q).getPosition('acct-7', 'SYM7', signal).catch(() => undefined);
  } finally {
    await pool.close();
    await db.stop();
  }
}
main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
