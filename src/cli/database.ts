import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config, PoolConfig } from '../config';
import { EmbeddedPostgres } from '../db/embedded';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import type { Pool } from '../db/types';
import type { Logger } from '../telemetry/logger';

/**
 * Slow-query threshold of the CLIs' pool, ms: a chunk of thousands of rows
 * routinely takes longer than the service's SLOW_QUERY_MS, and a log line per
 * chunk would drown the progress bar. Only a stall this long is logged.
 */
export const CLI_SLOW_QUERY_MS = 10_000;
/** How long a CLI waits for the database to answer, ms. */
const DATABASE_WAIT_MS = 30_000;

/** A database opened for a command-line tool. */
export interface CliDatabase {
  pool: Pool;
  /** Where it came from, for the log. */
  origin: 'DATABASE_URL' | 'embedded (already running)' | 'embedded (started)';
  /** Closes the pool and stops the embedded database if this tool started it. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the database the service uses: DATABASE_URL when set; otherwise the
 * embedded PostgreSQL under DATA_DIR. When the service is running it already
 * owns that cluster: starting it again would "take over" (stop) the service's
 * postmaster, so a live postmaster is connected to instead and left running.
 * Only a cluster this tool started is stopped by `close()`. Runs pending
 * migrations (idempotent, under the migration advisory lock).
 */
export async function openDatabase(config: Config, logger: Logger, pool: Partial<PoolConfig> = {}): Promise<CliDatabase> {
  let url = config.databaseUrl;
  let origin: CliDatabase['origin'] = 'DATABASE_URL';
  let embedded: EmbeddedPostgres | undefined;
  if (url === undefined) {
    url = await runningEmbeddedUrl(config.dataDir);
    origin = 'embedded (already running)';
    if (url === undefined) {
      embedded = new EmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
      url = await embedded.start();
      origin = 'embedded (started)';
    }
  }
  const created = createPool({ connectionString: url, config: { ...config.pool, min: 0, ...pool }, logger });
  let closePromise: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      await created.close().catch((err: unknown) => logger.error({ err }, 'closing the pool failed'));
      await embedded?.stop().catch((err: unknown) => logger.error({ err }, 'stopping embedded PostgreSQL failed'));
    })();
    return closePromise;
  };
  try {
    await waitForDatabase(created);
    await migrate(created, logger);
  } catch (err) {
    await close();
    throw err;
  }
  logger.debug({ origin }, 'database open');
  return { pool: created, origin, close };
}

/**
 * URL of the embedded cluster under `dataDir` when its postmaster is alive.
 * Reads the port from postmaster.pid (line 4) and the credentials the
 * embedded launcher keeps in `<dataDir>/embedded.json` (src/db/embedded.ts).
 */
async function runningEmbeddedUrl(dataDir: string): Promise<string | undefined> {
  let pidText: string;
  let credentials: { user: string; password: string };
  try {
    pidText = await fs.readFile(path.join(path.resolve(dataDir), 'pg', 'postmaster.pid'), 'utf8');
    credentials = JSON.parse(await fs.readFile(path.join(path.resolve(dataDir), 'embedded.json'), 'utf8')) as typeof credentials;
  } catch {
    return undefined;
  }
  const lines = pidText.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || !isAlive(pid)) return undefined;
  return `postgres://${credentials.user}:${encodeURIComponent(credentials.password)}@127.0.0.1:${port}/orderflow`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, owned by the postgres user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForDatabase(pool: Pool): Promise<void> {
  const deadline = Date.now() + DATABASE_WAIT_MS;
  for (;;) {
    try {
      await pool.query('cli.ping', 'SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`The database did not answer within ${DATABASE_WAIT_MS} ms.`, { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
