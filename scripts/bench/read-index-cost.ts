/**
 * What each read-path index (migration 003) costs ingest: COPY of 200,000
 * rows, in 20 batches of 10,000 like ingest windows, into a table that has
 * the migration 001 indexes, with vs without the index. Median of 3 rounds,
 * configurations interleaved so drift hits all alike.
 *
 *   npm run bench:read-indexes        (DATABASE_URL unset: throwaway embedded PostgreSQL)
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import type { Pool } from '../../src/db/types';
import { silentLogger } from '../../src/telemetry/logger';
import { median, startBenchDatabase } from './read-support';

const TOTAL_ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const BATCH_ROWS = 10_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface IndexDef {
  name: string;
  ddl: string;
  /** False for a candidate that was measured and left out of migration 003. */
  adopted: boolean;
}

/** The indexes migration 003 adds, per table, plus the candidates it rejected. */
const CANDIDATES: Record<'fills' | 'order_events', IndexDef[]> = {
  fills: [
    { name: 'fills_ts', ddl: 'CREATE INDEX fills_ts ON fills (ts_ns)', adopted: true },
    { name: 'fills_account_ts', ddl: 'CREATE INDEX fills_account_ts ON fills (account_id, ts_ns)', adopted: false },
  ],
  order_events: [
    { name: 'order_events_ts', ddl: 'CREATE INDEX order_events_ts ON order_events (ts_ns)', adopted: true },
    { name: 'order_events_account_ts', ddl: 'CREATE INDEX order_events_account_ts ON order_events (account_id, ts_ns)', adopted: true },
  ],
};

const COPY_SQL = {
  fills: 'COPY fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns, fee, venue) FROM STDIN',
  order_events: 'COPY order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns, client_order_id) FROM STDIN',
};

/** Rows in COPY text format, shaped like real flow: 8 sources, 1,000 accounts, 200 symbols, time mostly increasing. */
function makeBatches(table: 'fills' | 'order_events'): Buffer[] {
  const batches: Buffer[] = [];
  const baseTs = 1_700_000_000_000_000_000n;
  const seqs = new Array<number>(8).fill(0);
  for (let b = 0; b < TOTAL_ROWS / BATCH_ROWS; b++) {
    const lines: string[] = [];
    for (let i = 0; i < BATCH_ROWS; i++) {
      const n = b * BATCH_ROWS + i;
      const src = n % 8;
      const seq = ++seqs[src]!;
      const ts = baseTs + BigInt(n) * 1_000_000n + BigInt(Math.floor(Math.random() * 5_000_000));
      const account = `acct-${String(Math.floor(Math.random() * 1_000)).padStart(4, '0')}`;
      const symbol = `SYM${Math.floor(Math.random() * 200)}`;
      const orderId = `O-${randomBytes(8).toString('hex')}`;
      const side = 1 + (n % 2);
      const price = (100 + Math.random() * 50).toFixed(8);
      if (table === 'fills') {
        lines.push([`venue-${src}`, seq, `F-${randomBytes(8).toString('hex')}`, orderId, account, symbol, side, price, '100', ts, '0.35', 'XNAS'].join('\t'));
      } else {
        lines.push([`engine-${src}`, seq, orderId, account, symbol, side, 2, 1, price, '100', 1, ts, `c-${n}`].join('\t'));
      }
    }
    batches.push(Buffer.from(lines.join('\n') + '\n'));
  }
  return batches;
}

async function resetTable(pool: Pool, table: 'fills' | 'order_events', withIndexes: IndexDef[]): Promise<void> {
  for (const idx of CANDIDATES[table]) await pool.query('bench.drop_index', `DROP INDEX IF EXISTS ${idx.name}`);
  await pool.query('bench.truncate', `TRUNCATE ${table}`);
  for (const idx of withIndexes) await pool.query('bench.create_index', idx.ddl);
  await pool.query('bench.vacuum', `VACUUM ANALYZE ${table}`);
  await pool.query('bench.checkpoint', 'CHECKPOINT');
}

async function copyAll(pool: Pool, table: 'fills' | 'order_events', batches: Buffer[]): Promise<number> {
  const started = performance.now();
  for (const batch of batches) {
    await pool.withTransaction((tx) => tx.copyFrom('bench.copy', COPY_SQL[table], [batch]));
  }
  return performance.now() - started;
}

async function main(): Promise<void> {
  const db = await startBenchDatabase('index-cost');
  const pool = createPool({ connectionString: db.url, config: loadConfig({ POOL_MIN: '0', POOL_STATEMENT_TIMEOUT_MS: '0' }).pool, logger: silentLogger });
  try {
    await migrate(pool, silentLogger);
    console.log(`COPY of ${TOTAL_ROWS} rows in batches of ${BATCH_ROWS}, median of ${ROUNDS} rounds`);
    for (const table of ['fills', 'order_events'] as const) {
      const batches = makeBatches(table);
      const configs: { label: string; indexes: IndexDef[] }[] = [
        { label: 'migration 001 indexes only', indexes: [] },
        ...CANDIDATES[table].map((idx) => ({ label: `+ ${idx.name}${idx.adopted ? '' : ' (rejected)'}`, indexes: [idx] })),
        { label: '+ all adopted by 003', indexes: CANDIDATES[table].filter((idx) => idx.adopted) },
      ];
      const times = new Map<string, number[]>(configs.map((c) => [c.label, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const config of configs) {
          await resetTable(pool, table, config.indexes);
          times.get(config.label)!.push(await copyAll(pool, table, batches));
        }
      }
      const baseMs = median(times.get(configs[0]!.label)!);
      console.log(`\n${table}`);
      for (const config of configs) {
        const ms = median(times.get(config.label)!);
        const rowsPerSec = Math.round((TOTAL_ROWS / ms) * 1000);
        const extra = config.indexes.length === 0 ? '' : `  (+${(((ms - baseMs) / baseMs) * 100).toFixed(1)}%)`;
        console.log(`  ${config.label.padEnd(34)} ${ms.toFixed(0).padStart(6)} ms  ${String(rowsPerSec).padStart(8)} rows/s${extra}`);
      }
      await resetTable(pool, table, CANDIDATES[table].filter((idx) => idx.adopted));
    }
  } finally {
    await pool.close();
    await db.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
