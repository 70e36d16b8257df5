import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import type { BatchReport } from '../../src/db/batch';
import { batchDelete, batchInsert, batchSelect, batchUpdate } from '../../src/db/batch-ops';
import { EmbeddedPostgres } from '../../src/db/embedded';
import { createPool } from '../../src/db/pool';
import { silentLogger } from '../../src/telemetry/logger';

/**
 * Batch insert (COPY) / select / update / delete throughput:
 * `node dist/scripts/bench/batch.js [rows=200000]`. Uses DATABASE_URL when
 * set, else a throwaway embedded PostgreSQL (default settings, fsync on) in a
 * temp dir. Table: bench_batch (id bigint PRIMARY KEY, v numeric, label text).
 */
async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 200_000);
  const configs = [
    { chunkSize: 1_000, concurrency: 1 },
    { chunkSize: 1_000, concurrency: 4 },
    { chunkSize: 10_000, concurrency: 1 },
    { chunkSize: 10_000, concurrency: 4 },
  ];
  let url = loadConfig(process.env).databaseUrl;
  let embedded: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  if (url === undefined) {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'orderflow-bench-batch-'));
    await fs.chmod(dataDir, 0o755);
    embedded = new EmbeddedPostgres({ dataDir, port: await freePort(), logger: silentLogger });
    url = await embedded.start();
  }
  const pool = createPool({ connectionString: url, config: { ...loadConfig({ DATABASE_URL: url }).pool, max: 8, min: 0, slowQueryMs: 60_000 }, logger: silentLogger });
  try {
    const { rows: version } = await pool.query<{ v: string }>('bench.version', "SELECT split_part(version(), ' ', 2) AS v");
    process.stdout.write(`batch bench: ${rows.toLocaleString('en-US')} rows, PostgreSQL ${version[0]!.v}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}\n`);
    process.stdout.write('chunk   conc   insert rows/s   select rows/s   update rows/s   delete rows/s\n');
    const results = [];
    for (const c of configs) {
      await pool.query('bench.setup', 'DROP TABLE IF EXISTS bench_batch; CREATE TABLE bench_batch (id bigint PRIMARY KEY, v numeric NOT NULL, label text NOT NULL)');
      const ids = () => rangeOf(rows);
      const opts = { chunkSize: c.chunkSize, concurrency: c.concurrency, onError: 'stop' as const };
      const insert = await timed(() =>
        batchInsert(pool, (function* () {
          for (let i = 0; i < rows; i++) yield [i, (i % 1000) / 4, `label-${i}`];
        })(), { ...opts, op: 'bench.insert', table: 'bench_batch', columns: ['id', 'v', 'label'] }),
      );
      await pool.query('bench.analyze', 'VACUUM ANALYZE bench_batch');
      let selected = 0;
      const select = await timed(() =>
        batchSelect(pool, ids(), { ...opts, op: 'bench.select', table: 'bench_batch', key: { name: 'id', type: 'bigint' }, columns: ['id', 'v', 'label'], onRows: (r) => void (selected += r.length) }),
      );
      const update = await timed(() =>
        batchUpdate(pool, (function* () {
          for (let i = 0; i < rows; i++) yield [i, '1.5'];
        })(), { ...opts, op: 'bench.update', table: 'bench_batch', key: { name: 'id', type: 'bigint' }, set: [{ name: 'v', type: 'numeric' }] }),
      );
      const del = await timed(() => batchDelete(pool, ids(), { ...opts, op: 'bench.delete', table: 'bench_batch', key: { name: 'id', type: 'bigint' } }));
      for (const [name, r] of [['insert', insert], ['select', select], ['update', update], ['delete', del]] as const) {
        if (r.report.outcome !== 'completed' || r.report.rowsAffected !== rows) throw new Error(`${name} did not complete: ${JSON.stringify({ ...r.report, failures: r.report.failures.map((f) => f.message) })}`);
      }
      if (selected !== rows) throw new Error(`select returned ${selected} rows`);
      const rate = (r: { ms: number }) => Math.round(rows / (r.ms / 1_000));
      results.push({ ...c, insert: rate(insert), select: rate(select), update: rate(update), delete: rate(del) });
      const cell = (n: number) => n.toLocaleString('en-US').padStart(14);
      process.stdout.write(`${String(c.chunkSize).padEnd(8)}${String(c.concurrency).padEnd(5)}${cell(rate(insert))}  ${cell(rate(select))}  ${cell(rate(update))}  ${cell(rate(del))}\n`);
    }
    process.stdout.write(`${JSON.stringify({ bench: 'batch', rows, results, maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
  } finally {
    await pool.query('bench.cleanup', 'DROP TABLE IF EXISTS bench_batch').catch(() => undefined);
    await pool.close();
    await embedded?.stop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  }
}

function* rangeOf(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

async function timed(fn: () => Promise<BatchReport>): Promise<{ ms: number; report: BatchReport }> {
  const started = performance.now();
  const report = await fn();
  return { ms: performance.now() - started, report };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

void main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
