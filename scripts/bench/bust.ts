import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { batchInsert } from '../../src/db/batch-ops';
import { QueryCache } from '../../src/db/cache';
import { EmbeddedPostgres } from '../../src/db/embedded';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import { FillBuster } from '../../src/store/busts';
import { createFlushHooks } from '../../src/store/invalidation';
import { silentLogger } from '../../src/telemetry/logger';
import { freePort } from './lib/postgres';

/**
 * BustFills throughput: `node dist/scripts/bench/bust.js [tableFills=200000] [bustIds=10000]`.
 * Loads `tableFills` fills (COPY), then busts `bustIds` of them, spread over
 * the table, through FillBuster (the handler's code: chunked UPDATE, NOTIFY
 * and cache invalidation per chunk) at several chunk sizes; fills are
 * un-busted between runs. Uses DATABASE_URL when set, else a throwaway
 * embedded PostgreSQL (default settings) in a temp dir.
 */
async function main(): Promise<void> {
  const tableFills = Number(process.argv[2] ?? 200_000);
  const bustIds = Math.min(tableFills, Number(process.argv[3] ?? 10_000));
  const configs = [
    { chunkSize: 1_000, concurrency: 2 },
    { chunkSize: 2_500, concurrency: 2 },
    { chunkSize: 10_000, concurrency: 1 },
  ];
  let url = loadConfig(process.env).databaseUrl;
  let embedded: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  if (url === undefined) {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'orderflow-bench-bust-'));
    await fs.chmod(dataDir, 0o755);
    embedded = new EmbeddedPostgres({ dataDir, port: await freePort(), logger: silentLogger });
    url = await embedded.start();
  }
  const config = loadConfig({ DATABASE_URL: url });
  const pool = createPool({ connectionString: url, config: { ...config.pool, max: 8, min: 0, slowQueryMs: 60_000 }, logger: silentLogger });
  const cache = new QueryCache({ ...config.cache, logger: silentLogger });
  try {
    await migrate(pool, silentLogger);
    await pool.query('bench.reset', "DELETE FROM fills WHERE source_id = 'bench-bust'");
    const load = await batchInsert(
      pool,
      (function* () {
        for (let i = 0; i < tableFills; i++) yield ['bench-bust', i + 1, `bf-${i}`, `bo-${i % 5_000}`, `acc-${i % 50}`, `S${i % 20}`, 1 + (i % 2), '100.25', '3', String(1_700_000_000_000_000_000n + BigInt(i)), '0.01', 'XNAS'];
      })(),
      {
        op: 'bench.fills_load',
        table: 'fills',
        columns: ['source_id', 'seq', 'fill_id', 'order_id', 'account_id', 'symbol', 'side', 'price', 'qty', 'ts_ns', 'fee', 'venue'],
        chunkSize: 10_000,
        concurrency: 2,
      },
    );
    if (load.rowsAffected !== tableFills) throw new Error(`loaded ${load.rowsAffected} of ${tableFills} fills`);
    await pool.query('bench.analyze', 'VACUUM ANALYZE fills');
    const step = Math.floor(tableFills / bustIds);
    const ids = Array.from({ length: bustIds }, (_, i) => `bf-${i * step}`);
    const { rows: version } = await pool.query<{ v: string }>('bench.version', "SELECT split_part(version(), ' ', 2) AS v");
    process.stdout.write(`bust bench: ${bustIds.toLocaleString('en-US')} ids in a table of ${tableFills.toLocaleString('en-US')} fills, PostgreSQL ${version[0]!.v}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}\n`);
    process.stdout.write('chunk    conc   ms        fills/s\n');
    const results = [];
    for (const c of configs) {
      await pool.query('bench.unbust', "UPDATE fills SET busted_at = NULL, bust_reason = NULL WHERE source_id = 'bench-bust' AND busted_at IS NOT NULL");
      await pool.query('bench.vacuum', 'VACUUM fills');
      const buster = new FillBuster({ pool, hooks: createFlushHooks(cache, 'bench', silentLogger), ...c });
      const started = performance.now();
      const result = await buster.bust(ids, 'bench bust');
      const ms = performance.now() - started;
      if (result.busted !== bustIds || result.notFound.length !== 0) throw new Error(`busted ${result.busted}, not found ${result.notFound.length}`);
      const rate = Math.round(bustIds / (ms / 1_000));
      results.push({ ...c, ms: Math.round(ms), fillsPerSecond: rate });
      process.stdout.write(`${String(c.chunkSize).padEnd(9)}${String(c.concurrency).padEnd(7)}${String(Math.round(ms)).padEnd(10)}${rate.toLocaleString('en-US')}\n`);
    }
    process.stdout.write(`${JSON.stringify({ bench: 'bust', tableFills, bustIds, results })}\n`);
  } finally {
    await pool.query('bench.cleanup', "DELETE FROM fills WHERE source_id = 'bench-bust'").catch(() => undefined);
    await cache.close();
    await pool.close();
    await embedded?.stop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
