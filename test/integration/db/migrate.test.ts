import { expect } from 'chai';
import { migrate } from '../../../src/db/migrate';
import { migrations } from '../../../src/db/migrations';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import { loadConfig } from '../../../src/config';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';

describe('db/migrate (integration)', () => {
  let db: TestDatabase;
  const pools: Pool[] = [];
  const newPool = () => {
    const pool = createPool({ connectionString: db.url, config: loadConfig({ POOL_MIN: '0' }).pool, logger: silentLogger });
    pools.push(pool);
    return pool;
  };

  beforeEach(async () => {
    db = await createTestDatabase('migrate');
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    await db.drop();
  });

  it('applies every migration once and records it', async () => {
    const pool = newPool();
    const first = await migrate(pool, silentLogger);
    expect(first.applied).to.deep.equal(migrations.map((m) => m.version));
    const { rows } = await pool.query<{ version: number }>('test', 'SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).to.deep.equal(migrations.map((m) => m.version));
    const tables = await pool.query<{ relname: string }>('test', "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname");
    expect(tables.rows.map((r) => r.relname)).to.include.members(['fills', 'order_events', 'quarantine', 'sources']);
  });

  it('is idempotent: a second run applies nothing', async () => {
    const pool = newPool();
    await migrate(pool, silentLogger);
    const second = await migrate(pool, silentLogger);
    expect(second.applied).to.deep.equal([]);
    expect(second.current).to.equal(migrations[migrations.length - 1]!.version);
  });

  it('two instances migrating at once apply each version exactly once', async () => {
    const results = await Promise.all([newPool(), newPool(), newPool()].map((pool) => migrate(pool, silentLogger)));
    const appliedCounts = results.map((r) => r.applied.length).sort();
    expect(appliedCounts).to.deep.equal([0, 0, migrations.length]);
    const { rows } = await pools[0]!.query<{ n: string }>('test', 'SELECT count(*) AS n FROM schema_migrations');
    expect(Number(rows[0]!.n)).to.equal(migrations.length);
  });

  it('rolls back a failing migration entirely', async () => {
    const pool = newPool();
    const broken = [...migrations, { version: 9_999, name: 'broken', sql: 'CREATE TABLE half_done (x int); SELECT * FROM no_such_table;' }];
    let failed = false;
    try {
      await migrate(pool, silentLogger, broken);
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
    const { rows } = await pool.query<{ n: string }>('test', "SELECT count(*) AS n FROM pg_class WHERE relname IN ('half_done', 'schema_migrations')");
    expect(Number(rows[0]!.n)).to.equal(0);
  });
});
