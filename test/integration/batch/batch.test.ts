import { expect } from 'chai';
import { runBatch } from '../../../src/db/batch';
import { batchByKeys, batchDelete, batchInsert, batchSelect, batchUpdate } from '../../../src/db/batch-ops';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import { loadConfig } from '../../../src/config';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

const ROWS = 100;
const CHUNK = 10;

describe('db/batch against PostgreSQL (integration)', () => {
  let db: TestDatabase;
  let pool: Pool;

  before(async () => {
    db = await createTestDatabase('batch');
    const config = loadConfig({ DATABASE_URL: db.url, POOL_MIN: '0', POOL_MAX: '8' });
    pool = createPool({ connectionString: db.url, config: config.pool, logger: silentLogger });
    await pool.query(
      'test.setup',
      `CREATE TABLE batch_items (id int PRIMARY KEY, v numeric NOT NULL CHECK (v >= 0), label text NOT NULL DEFAULT '');
       CREATE TABLE batch_refs (item_id int NOT NULL REFERENCES batch_items (id))`,
    );
  });

  after(async () => {
    await pool?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    await pool.query('test.reset', 'TRUNCATE batch_refs, batch_items');
  });

  async function ids(): Promise<number[]> {
    const { rows } = await pool.query<{ id: number }>('test.ids', 'SELECT id FROM batch_items ORDER BY id');
    return rows.map((r) => r.id);
  }

  async function seed(): Promise<void> {
    await pool.query('test.seed', `INSERT INTO batch_items (id, v, label) SELECT g, 1, 'x' FROM generate_series(0, ${ROWS - 1}) g`);
  }

  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  /** 100 rows where row 55 repeats id 54: chunk 5 (rows 50–59) violates the primary key. */
  function rowsWithDuplicateInChunk5(): [number, string, string][] {
    return range(0, ROWS).map((i) => [i === 55 ? 54 : i, '1.5', `label ${i}\twith tab`]);
  }

  describe('insert (COPY)', () => {
    it('continue mode: reports exactly the failing chunk (range, DUPLICATE, 23505) and applies every other chunk', async () => {
      const report = await batchInsert(pool, rowsWithDuplicateInChunk5(), {
        op: 'test.insert',
        table: 'batch_items',
        columns: ['id', 'v', 'label'],
        chunkSize: CHUNK,
        concurrency: 3,
        onError: 'continue',
      });
      expect(report.outcome).to.equal('completed');
      expect(report.failures).to.have.length(1);
      expect(report.failures[0]).to.include({ index: 5, firstRow: 50, lastRow: 59, code: 'DUPLICATE', sqlState: '23505', constraint: 'batch_items_pkey' });
      expect(report.failures[0]!.message).to.match(/duplicate key value violates unique constraint "batch_items_pkey"/);
      expect(report).to.include({ chunksDone: 9, chunksFailed: 1, rowsDone: 90, rowsAffected: 90, rowsFailed: 10 });
      expect(await ids()).to.deep.equal([...range(0, 50), ...range(60, 100)]);
      const { rows } = await pool.query<{ label: string; v: string }>('test.read', 'SELECT label, v::text FROM batch_items WHERE id = 7');
      expect(rows[0]).to.deep.equal({ label: 'label 7\twith tab', v: '1.5' });
    });

    it('stop mode: chunks before the failure applied, none started after it', async () => {
      const report = await batchInsert(pool, rowsWithDuplicateInChunk5(), {
        op: 'test.insert_stop',
        table: 'batch_items',
        columns: ['id', 'v', 'label'],
        chunkSize: CHUNK,
        concurrency: 1,
        onError: 'stop',
      });
      expect(report.outcome).to.equal('stopped');
      expect(report.chunksStarted).to.equal(6);
      expect(report.failures.map((f) => [f.index, f.firstRow, f.lastRow, f.code])).to.deep.equal([[5, 50, 59, 'DUPLICATE']]);
      expect(await ids()).to.deep.equal(range(0, 50));
    });

    it('stop mode with 3 chunks in flight: no chunk starts after the failure is seen', async () => {
      const started: number[] = [];
      let startedAtFailure: number | undefined;
      const report = await runBatch(
        rowsWithDuplicateInChunk5(),
        async (rows, ctx) => {
          started.push(ctx.index);
          return pool.copyFrom({ op: 'test.copy', signal: ctx.signal }, 'COPY batch_items (id, v, label) FROM STDIN', [
            Buffer.from(rows.map((r) => `${r[0]}\t${r[1]}\tx\n`).join('')),
          ]);
        },
        {
          op: 'test.insert_stop3',
          chunkSize: CHUNK,
          concurrency: 3,
          onError: 'stop',
          onChunk: (r) => {
            if (r.failure && startedAtFailure === undefined) startedAtFailure = started.length;
          },
        },
      );
      expect(report.outcome).to.equal('stopped');
      expect(started.length).to.equal(startedAtFailure);
      expect(report.failures.map((f) => f.index)).to.deep.equal([5]);
      // Every chunk that started and did not fail is applied entirely.
      const expected = started.filter((i) => i !== 5).flatMap((i) => range(i * CHUNK, i * CHUNK + CHUNK));
      expect(await ids()).to.deep.equal(expected.sort((a, b) => a - b));
    });
  });

  describe('update (unnest, one statement per chunk)', () => {
    it('continue mode: a CHECK violation in chunk 3 is reported with 23514 and its range; every other row updated', async () => {
      await seed();
      const report = await batchUpdate(
        pool,
        range(0, ROWS).map((i) => ({ id: i, v: i === 35 ? '-1' : '2.25', label: `u${i}` })),
        {
          op: 'test.update',
          table: 'batch_items',
          key: { name: 'id', type: 'int' },
          set: [
            { name: 'v', type: 'numeric' },
            { name: 'label', type: 'text' },
          ],
          chunkSize: CHUNK,
          concurrency: 4,
          onError: 'continue',
        },
      );
      expect(report.failures).to.have.length(1);
      expect(report.failures[0]).to.include({ index: 3, firstRow: 30, lastRow: 39, code: 'INTERNAL', sqlState: '23514', constraint: 'batch_items_v_check' });
      expect(report.rowsAffected).to.equal(90);
      const { rows } = await pool.query<{ id: number; v: string; label: string }>('test.read', 'SELECT id, v::text, label FROM batch_items ORDER BY id');
      for (const row of rows) {
        if (row.id >= 30 && row.id <= 39) expect(row).to.deep.include({ v: '1', label: 'x' });
        else expect(row).to.deep.include({ v: '2.25', label: `u${row.id}` });
      }
    });

    it('returns RETURNING rows per chunk and honours an extra condition', async () => {
      await seed();
      const returned: number[] = [];
      const report = await batchUpdate(pool, range(0, 20).map((i) => [i, '3']), {
        op: 'test.update_returning',
        table: 'batch_items',
        key: { name: 'id', type: 'int' },
        set: [{ name: 'v', type: 'numeric' }],
        where: 't.id % 2 = 0',
        returning: ['id'],
        onRows: (rows) => void returned.push(...rows.map((r) => r.id as number)),
        chunkSize: 7,
      });
      expect(report.rowsAffected).to.equal(10);
      expect(returned.sort((a, b) => a - b)).to.deep.equal(range(0, 20).filter((i) => i % 2 === 0));
    });
  });

  describe('delete (= ANY)', () => {
    it('continue mode: a foreign-key violation (23503) fails only its chunk; every other key deleted', async () => {
      await seed();
      await pool.query('test.ref', 'INSERT INTO batch_refs VALUES (25)');
      const report = await batchDelete(pool, range(0, ROWS), {
        op: 'test.delete',
        table: 'batch_items',
        key: { name: 'id', type: 'int' },
        chunkSize: CHUNK,
        concurrency: 3,
        onError: 'continue',
      });
      expect(report.failures.map((f) => [f.index, f.firstRow, f.lastRow, f.code, f.sqlState])).to.deep.equal([[2, 20, 29, 'INTERNAL', '23503']]);
      expect(report.rowsAffected).to.equal(90);
      expect(await ids()).to.deep.equal(range(20, 30));
    });
  });

  describe('select (= ANY)', () => {
    it('returns every requested row exactly once, through onRows', async () => {
      await seed();
      const seen: number[] = [];
      const report = await batchSelect(pool, [...range(0, ROWS), 1_000, 1_001], {
        op: 'test.select',
        table: 'batch_items',
        key: { name: 'id', type: 'int' },
        columns: ['id', 'v'],
        chunkSize: CHUNK,
        concurrency: 3,
        onRows: (rows) => void seen.push(...rows.map((r) => r.id as number)),
      });
      expect(report.rowsAffected).to.equal(ROWS);
      expect(seen.sort((a, b) => a - b)).to.deep.equal(range(0, ROWS));
    });

    it('a statement error in one chunk (division by zero, 22012) is reported with its range', async () => {
      await seed();
      const report = await batchByKeys(pool, range(0, ROWS), 'SELECT id, 1 / (id - 42) AS x FROM batch_items WHERE id = ANY($1::int[])', {
        op: 'test.select_error',
        chunkSize: CHUNK,
        onError: 'continue',
      });
      expect(report.failures.map((f) => [f.index, f.firstRow, f.lastRow, f.sqlState])).to.deep.equal([[4, 40, 49, '22012']]);
      expect(report.rowsAffected).to.equal(90);
    });
  });

  describe('concurrency and abort', () => {
    async function activeSleeps(): Promise<number> {
      return withClient(db.url, async (c) => {
        const { rows } = await c.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'SELECT pg_sleep%'`,
        );
        return Number(rows[0]!.n);
      });
    }

    it('never has more chunks in flight than configured (counter inside the chunk and pg_stat_activity)', async () => {
      let inFlight = 0;
      let maxInFlight = 0;
      let maxActive = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          maxActive = Math.max(maxActive, await activeSleeps());
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      const report = await runBatch(
        range(0, 12),
        async (_rows, ctx) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          try {
            await pool.query({ op: 'test.sleep', signal: ctx.signal }, 'SELECT pg_sleep(0.15)');
          } finally {
            inFlight--;
          }
        },
        { op: 'test.concurrency', chunkSize: 1, concurrency: 3 },
      );
      sampling = false;
      await sampler;
      expect(report.chunksDone).to.equal(12);
      expect(maxInFlight).to.equal(3);
      expect(report.maxInFlight).to.equal(3);
      expect(maxActive).to.be.within(1, 3);
    });

    it('abort: no new chunk starts and the running pg_sleep statements are cancelled on the server', async () => {
      const cancelling = pool;
      const controller = new AbortController();
      const started: number[] = [];
      const promise = runBatch(
        range(0, 10),
        async (_rows, ctx) => {
          started.push(ctx.index);
          await cancelling.query({ op: 'test.sleep', signal: ctx.signal }, 'SELECT pg_sleep(30)');
        },
        { op: 'test.abort', chunkSize: 1, concurrency: 2, signal: controller.signal },
      );
      for (let i = 0; i < 200 && (await activeSleeps()) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await activeSleeps()).to.equal(2);
      controller.abort();
      const report = await promise;
      expect(report.outcome).to.equal('aborted');
      expect(started).to.deep.equal([0, 1]);
      expect(report.failures.map((f) => [f.code, f.sqlState])).to.deep.equal([
        ['CANCELLED', '57014'],
        ['CANCELLED', '57014'],
      ]);
      expect(await activeSleeps()).to.equal(0);
      // The pool is usable again afterwards.
      expect((await pool.query<{ one: number }>('test.after', 'SELECT 1 AS one')).rows[0]!.one).to.equal(1);
    });
  });
});
