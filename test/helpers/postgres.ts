import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config';
import { EmbeddedPostgres } from '../../src/db/embedded';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import { silentLogger } from '../../src/telemetry/logger';

/** The throwaway cluster of this test run (one per `npm test`). */
interface Cluster {
  embedded: EmbeddedPostgres;
  /** URL of the `postgres` maintenance database. */
  adminUrl: string;
  dataDir: string;
  port: number;
}

let cluster: Cluster | undefined;
let databaseCounter = 0;

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

/** A fresh directory under the system temp dir that the postgres user can reach. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `orderflow-${prefix}-`));
  await fs.chmod(dir, 0o755);
  return dir;
}

/** Starts the run's cluster (root hook). Never touches the developer's ./.data. */
export async function startTestCluster(): Promise<void> {
  if (cluster) return;
  const dataDir = await tempDir('test-pg');
  const port = await freePort();
  // fsync off only trades safety against an OS crash; a PostgreSQL crash
  // (-m immediate) still keeps every commit, since synchronous_commit stays on.
  const embedded = new EmbeddedPostgres({ dataDir, port, logger: silentLogger, database: 'postgres', settings: { fsync: 'off', full_page_writes: 'off' } });
  let url: string;
  try {
    url = await embedded.start();
  } catch (err) {
    throw new Error(`The test harness could not start embedded PostgreSQL in ${dataDir} on port ${port}.`, { cause: err });
  }
  cluster = { embedded, adminUrl: url, dataDir, port };
}

/** Stops the run's cluster and removes its files (root hook). */
export async function stopTestCluster(): Promise<void> {
  if (!cluster) return;
  const { embedded, dataDir } = cluster;
  cluster = undefined;
  await embedded.stop();
  await fs.rm(dataDir, { recursive: true, force: true });
}

function requireCluster(): Cluster {
  if (!cluster) throw new Error('The test PostgreSQL cluster is not running (root hook missing?).');
  return cluster;
}

/** Connection URL of the cluster's maintenance database. */
export function adminUrl(): string {
  return requireCluster().adminUrl;
}

/** A database of its own for one suite. */
export interface TestDatabase {
  name: string;
  url: string;
  /** Drops the database (terminating its sessions). */
  drop(): Promise<void>;
}

/** Creates `orderflow_test_<suite>_<n>` on the run's cluster. */
export async function createTestDatabase(suite: string): Promise<TestDatabase> {
  const { adminUrl: admin } = requireCluster();
  const name = `orderflow_test_${suite.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${++databaseCounter}`;
  await withAdmin(admin, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withAdmin(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)).then(() => undefined),
  };
}

/** Applies orderflow's migrations to the database at `url` through a short-lived pool. */
export async function migrateTestDatabase(url: string): Promise<void> {
  const pool = createPool({ connectionString: url, config: loadConfig({ DATABASE_URL: url, POOL_MIN: '0' }).pool, logger: silentLogger });
  try {
    await migrate(pool, silentLogger);
  } finally {
    await pool.close();
  }
}

/** Runs `fn` with a short-lived client of the maintenance database. */
export async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Runs `fn` with a short-lived client of `url`. */
export const withClient = withAdmin;
