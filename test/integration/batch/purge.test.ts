import { expect } from 'chai';
import pg from 'pg';
import { loadConfig } from '../../../src/config';
import { migrate } from '../../../src/db/migrate';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import { purge } from '../../../src/store/purge';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

const SECOND_NS = 1_000_000_000n;
/** 2023-11-14T22:13:20Z: event i is at BASE + i seconds. */
const BASE_NS = 1_700_000_000n * SECOND_NS;

describe('store/purge retention (integration)', () => {
  let db: TestDatabase;
  let pool: Pool;

  before(async () => {
    db = await createTestDatabase('purge');
    const config = loadConfig({ DATABASE_URL: db.url, POOL_MIN: '0', POOL_MAX: '8' });
    pool = createPool({ connectionString: db.url, config: config.pool, logger: silentLogger });
    await migrate(pool, silentLogger);
  });

  after(async () => {
    await pool?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    await pool.query('test.reset', 'TRUNCATE fills, order_events, quarantine, sources');
  });

  /** `rows` order events and fills at BASE + i s (i < rows), and rows/10 quarantine rows received at BASE + 10·j s. */
  async function seed(rows: number): Promise<void> {
    await pool.query(
      'test.seed',
      `INSERT INTO order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns)
         SELECT 'seed', g, 'o-' || g, 'acc', 'AAPL', 1, 2, 1, 10.5, 1, 1, $1::bigint + g * $2::bigint FROM generate_series(0, $3::int - 1) g;
       INSERT INTO fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns)
         SELECT 'seed', g, 'f-' || g, 'o-' || g, 'acc', 'AAPL', 1, 10.5, 1, $1::bigint + g * $2::bigint FROM generate_series(0, $3::int - 1) g;
       INSERT INTO quarantine (source_id, seq, code, reason, raw, received_at)
         SELECT 'seed', g, 'X', 'x', '\\x00', 'epoch'::timestamptz + ($1::bigint / 1000 + g * 10 * $2::bigint / 1000) * interval '1 microsecond'
           FROM generate_series(0, $3::int / 10 - 1) g;
       ANALYZE order_events, fills, quarantine`
        .replace(/\$1::bigint/g, `${BASE_NS}::bigint`)
        .replace(/\$2::bigint/g, `${SECOND_NS}::bigint`)
        .replace(/\$3::int/g, String(rows)),
    );
  }

  async function counts(cutoffNs: bigint): Promise<Record<string, number>> {
    const { rows } = await pool.query<Record<string, string>>(
      'test.counts',
      `SELECT (SELECT count(*) FROM order_events WHERE ts_ns < $1) AS old_orders, (SELECT count(*) FROM order_events WHERE ts_ns >= $1) AS new_orders,
              (SELECT count(*) FROM fills WHERE ts_ns < $1) AS old_fills, (SELECT count(*) FROM fills WHERE ts_ns >= $1) AS new_fills,
              (SELECT count(*) FROM quarantine WHERE received_at < 'epoch'::timestamptz + ($1 / 1000) * interval '1 microsecond') AS old_quarantine,
              (SELECT count(*) FROM quarantine WHERE received_at >= 'epoch'::timestamptz + ($1 / 1000) * interval '1 microsecond') AS new_quarantine`,
      [cutoffNs.toString()],
    );
    return Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, Number(v)]));
  }

  it('dry run counts exactly what goes; the purge deletes rows before the cutoff and keeps the rest, the boundary row included', async () => {
    await seed(6_000);
    const cutoff = BASE_NS + 4_000n * SECOND_NS; // rows 0 … 3,999 are older
    expect(await counts(cutoff)).to.deep.equal({ old_orders: 4_000, new_orders: 2_000, old_fills: 4_000, new_fills: 2_000, old_quarantine: 400, new_quarantine: 200 });

    const dry = await purge(pool, { beforeNs: cutoff, dryRun: true, batchRows: 500, concurrency: 3 });
    expect(dry.outcome).to.equal('completed');
    expect(dry.tables.map((t) => [t.table, t.rows])).to.deep.equal([
      ['order_events', 4_000],
      ['fills', 4_000],
      ['quarantine', 400],
    ]);
    expect(dry.tables[0]!.chunks).to.be.greaterThan(3);
    expect(await counts(cutoff)).to.include({ old_orders: 4_000, old_fills: 4_000, old_quarantine: 400 });

    const progress: number[] = [];
    const real = await purge(pool, { beforeNs: cutoff, batchRows: 500, concurrency: 3, onProgress: (p) => progress.push(p.pagesDone) });
    expect(real.tables.map((t) => [t.table, t.rows])).to.deep.equal([
      ['order_events', 4_000],
      ['fills', 4_000],
      ['quarantine', 400],
    ]);
    expect(progress.length).to.be.greaterThan(3);
    expect(await counts(cutoff)).to.deep.equal({ old_orders: 0, new_orders: 2_000, old_fills: 0, new_fills: 2_000, old_quarantine: 0, new_quarantine: 200 });
    const { rows } = await pool.query<{ min: string }>('test.min', 'SELECT min(ts_ns)::text AS min FROM fills');
    expect(rows[0]!.min).to.equal(cutoff.toString());

    const again = await purge(pool, { beforeNs: cutoff, batchRows: 500 });
    expect(again.tables.every((t) => t.rows === 0)).to.equal(true);
  });

  it('ingest-like COPY transactions in another connection keep committing while the purge runs, never waiting on a lock', async () => {
    await seed(20_000);
    const cutoff = BASE_NS + 15_000n * SECOND_NS;
    const writer = new pg.Client({ connectionString: db.url, application_name: 'ingest-sim' });
    await writer.connect();
    const commits: number[] = [];
    const commitMs: number[] = [];
    let writing = true;
    let writerError: unknown;
    let seq = 0;
    // Stands in for the ingest flush: COPY a batch of new fills and move the source mark, one transaction each.
    const loop = (async () => {
      try {
        while (writing) {
          const started = performance.now();
          await writer.query('BEGIN');
          const lines = Array.from({ length: 50 }, () => {
            seq++;
            return `ingest\t${seq}\tlive-${seq}\to-live\tacc\tAAPL\t1\t10\t1\t${BASE_NS + 50_000n * SECOND_NS + BigInt(seq)}\n`;
          });
          await pipeline(Readable.from([Buffer.from(lines.join(''))]), writer.query(copyFrom('COPY fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns) FROM STDIN')));
          await writer.query(
            "INSERT INTO sources (source_id, last_seq) VALUES ('ingest', $1) ON CONFLICT (source_id) DO UPDATE SET last_seq = EXCLUDED.last_seq",
            [seq],
          );
          await writer.query('COMMIT');
          commits.push(performance.now());
          commitMs.push(performance.now() - started);
        }
      } catch (err) {
        writerError = err;
      }
    })();
    // Lock waits of the writer, sampled from another connection while the purge runs.
    let lockWaits = 0;
    let sampling = true;
    const sampler = (async () => {
      const probe = new pg.Client({ connectionString: db.url });
      await probe.connect();
      try {
        while (sampling) {
          const { rows } = await probe.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ingest-sim' AND wait_event_type = 'Lock'");
          lockWaits += rows[0].n as number;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        await probe.end();
      }
    })();

    while (commits.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    const purgeStart = performance.now();
    const report = await purge(pool, { beforeNs: cutoff, batchRows: 250, concurrency: 2 });
    const purgeEnd = performance.now();
    writing = false;
    sampling = false;
    await loop;
    await sampler;
    await writer.end();

    expect(writerError).to.equal(undefined);
    expect(report.outcome).to.equal('completed');
    expect(report.tables.find((t) => t.table === 'fills')!.rows).to.equal(15_000);
    expect(report.tables.find((t) => t.table === 'order_events')!.rows).to.equal(15_000);
    const during = commits.filter((t) => t > purgeStart && t < purgeEnd).length;
    expect(during, 'writer commits while the purge ran').to.be.greaterThan(2);
    expect(lockWaits, 'samples of the writer waiting on a lock').to.equal(0);
    // Every row the writer committed is there; only old rows went.
    const { rows } = await pool.query<{ live: string; kept: string }>(
      'test.after',
      "SELECT count(*) FILTER (WHERE source_id = 'ingest')::text AS live, count(*) FILTER (WHERE source_id = 'seed')::text AS kept FROM fills",
    );
    expect(rows[0]).to.deep.equal({ live: String(seq), kept: '5000' });
    const maxChunk = Math.max(...report.tables.map((t) => t.maxLockHoldMs));
    console.log(
      `      purge ${Math.round(purgeEnd - purgeStart)} ms; writer: ${during} commits during it, longest commit ${Math.round(Math.max(...commitMs))} ms; longest purge batch ${Math.round(maxChunk)} ms`,
    );
  });

  it('refuses a batch size below 1 and a cutoff at or before the epoch', async () => {
    for (const bad of [{ beforeNs: 0n }, { beforeNs: BASE_NS, batchRows: 0 }]) {
      let error: unknown;
      try {
        await purge(pool, bad);
      } catch (err) {
        error = err;
      }
      expect(error).to.have.property('code', 'INVALID_ARGUMENT');
    }
  });
});
