import type { Logger } from '../telemetry/logger';
import { migrations as allMigrations, type Migration } from './migrations';
import type { Pool } from './types';

/** Advisory lock key shared by every orderflow instance: "orderflow" as ASCII bytes. */
const MIGRATION_LOCK_KEY = 0x6f72_6465_72666c6fn;

/** Result of a migration run. */
export interface MigrateResult {
  /** Versions applied by this run (empty when the schema was current). */
  applied: number[];
  /** Highest version now in the database. */
  current: number;
}

/**
 * Applies pending migrations in one transaction, under a transaction-level
 * advisory lock, so two instances starting at once apply each version exactly
 * once (the second waits, then finds nothing to do).
 */
export async function migrate(pool: Pool, logger: Logger, migrations: readonly Migration[] = allMigrations): Promise<MigrateResult> {
  return pool.withTransaction(
    async (tx) => {
      await tx.query('migrations.lock', 'SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
      await tx.query(
        'migrations.create_table',
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version integer PRIMARY KEY,
           name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await tx.query<{ version: number }>('migrations.applied', 'SELECT version FROM schema_migrations');
      const done = new Set(rows.map((r) => r.version));
      const applied: number[] = [];
      for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(migration.version)) continue;
        await tx.query({ op: 'migrations.apply', timeoutMs: 600_000 }, migration.sql);
        await tx.query('migrations.record', 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        applied.push(migration.version);
        logger.info({ version: migration.version, name: migration.name }, 'migration applied');
      }
      const current = Math.max(0, ...done, ...applied);
      return { applied, current };
    },
    { op: 'migrations', maxRetries: 0 },
  );
}
