import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../../src/config';
import { EmbeddedPostgres } from '../../../src/db/embedded';
import { migrate } from '../../../src/db/migrate';
import { createPool } from '../../../src/db/pool';
import { silentLogger } from '../../../src/telemetry/logger';
import { FILL_COLUMNS } from './rows';

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A fresh directory under the system temp dir that the postgres user can reach (PostgreSQL runs as `postgres` under root). */
export async function benchTempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `orderflow-bench-${prefix}-`));
  await fs.chmod(dir, 0o755);
  return dir;
}

/** One database of the bench cluster. */
export interface BenchDatabase {
  name: string;
  url: string;
  /** Drops the database (ending its sessions). */
  drop(): Promise<void>;
}

/**
 * The benchmark's own PostgreSQL: the same embedded binaries orderflow ships,
 * with PostgreSQL's default durability (fsync on, synchronous_commit on), on
 * a free port in a temp dir. Every measurement gets a fresh database.
 */
export class BenchCluster {
  private counter = 0;
  private stopped = false;

  private constructor(
    private readonly embedded: EmbeddedPostgres,
    /** URL of the `postgres` maintenance database. */
    readonly adminUrl: string,
    readonly dataDir: string,
    readonly port: number,
  ) {}

  /** Starts a new cluster. Throws with the server log tail when PostgreSQL does not start. */
  static async start(): Promise<BenchCluster> {
    const dataDir = await benchTempDir('pg');
    const port = await freePort();
    // The service's own embedded settings (EMBEDDED_WRITE_SETTINGS): durability stays at PostgreSQL's defaults.
    const embedded = new EmbeddedPostgres({ dataDir, port, logger: silentLogger, database: 'postgres' });
    const adminUrl = await embedded.start();
    return new BenchCluster(embedded, adminUrl, dataDir, port);
  }

  /** PID of the postmaster (root of every PostgreSQL process, for CPU accounting). */
  async postmasterPid(): Promise<number> {
    const text = await fs.readFile(path.join(this.embedded.dataDirectory, 'postmaster.pid'), 'utf8');
    return Number(text.split('\n')[0]);
  }

  /** `SELECT version()` and the settings that decide durability. */
  async describe(): Promise<{ version: string; fsync: string; synchronousCommit: string; sharedBuffers: string }> {
    return withClient(this.adminUrl, async (c) => {
      const { rows } = await c.query<{ version: string; fsync: string; sc: string; sb: string }>(
        "SELECT version() AS version, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc, current_setting('shared_buffers') AS sb",
      );
      const r = rows[0]!;
      return { version: r.version, fsync: r.fsync, synchronousCommit: r.sc, sharedBuffers: r.sb };
    });
  }

  /**
   * Creates `bench_<label>_<n>`; with `migrated` runs orderflow's migrations
   * (src/db/migrate.ts) on it, so its schema and indexes are exactly the
   * service's at this commit.
   */
  async createDatabase(label: string, migrated: boolean): Promise<BenchDatabase> {
    const name = `bench_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${++this.counter}`;
    await withClient(this.adminUrl, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
    const url = new URL(this.adminUrl);
    url.pathname = `/${name}`;
    const db: BenchDatabase = {
      name,
      url: url.toString(),
      drop: () => withClient(this.adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)).then(() => undefined),
    };
    if (migrated) await migrateDatabase(db.url);
    return db;
  }

  /** Stops PostgreSQL and removes its files. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.embedded.stop();
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }
}

/** Applies every orderflow migration to the database at `url`. */
export async function migrateDatabase(url: string): Promise<void> {
  const pool = createPool({ connectionString: url, config: loadConfig({}).pool, logger: silentLogger });
  try {
    await migrate(pool, silentLogger);
  } finally {
    await pool.close();
  }
}

/** Runs `fn` with a short-lived client of `url`. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The fills table as the migrations left it: columns and index definitions. */
export interface FillsSchema {
  columns: Array<{ name: string; notNull: boolean; hasDefault: boolean }>;
  indexes: string[];
}

/** Reads the fills table's columns and indexes (for the report and the compatibility check). */
export async function describeFills(client: pg.Client): Promise<FillsSchema> {
  const columns = await client.query<{ name: string; not_null: boolean; has_default: boolean }>(
    `SELECT a.attname AS name, a.attnotnull AS not_null, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default
       FROM pg_attribute a WHERE a.attrelid = 'fills'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
  );
  const indexes = await client.query<{ def: string }>(`SELECT indexdef AS def FROM pg_indexes WHERE tablename = 'fills' ORDER BY indexname`);
  return { columns: columns.rows.map((r) => ({ name: r.name, notNull: r.not_null, hasDefault: r.has_default })), indexes: indexes.rows.map((r) => r.def) };
}

/**
 * Throws when the fills table has a required column the generated rows do
 * not fill, or lacks one they do: the schema moved on and the limit and
 * alternatives scenarios must follow it.
 */
export function assertFillsCompatible(schema: FillsSchema): void {
  const names = new Set(schema.columns.map((c) => c.name));
  const missing = FILL_COLUMNS.filter((c) => !names.has(c));
  const unfilled = schema.columns.filter((c) => c.notNull && !c.hasDefault && !(FILL_COLUMNS as readonly string[]).includes(c.name)).map((c) => c.name);
  if (missing.length || unfilled.length) {
    throw new Error(
      `The fills table no longer matches the benchmark's rows (missing: ${missing.join(', ') || 'none'}; required but not generated: ${unfilled.join(', ') || 'none'}). Update scripts/bench/lib/rows.ts.`,
    );
  }
}
