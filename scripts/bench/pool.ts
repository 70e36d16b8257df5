/**
 * Overhead of the monitored pool against raw node-postgres, for `SELECT 1`
 * (acquire + query + release) and for a 10,000-row COPY.
 *
 *   npm run build && node dist/scripts/bench/pool.js
 *
 * Env: DATABASE_URL (default: a throwaway embedded PostgreSQL), BENCH_QUERIES
 * (per variant and round, default 4,000), BENCH_ROUNDS (default 15). Prints a
 * table and a JSON line. Variants run in a rotating order within each round,
 * so drift and neighbours' load hit them alike; each figure is the median over
 * rounds (min in brackets: the least disturbed round), and the overhead is the
 * median of the per-round differences to raw pg.Client. "cpu" is this
 * process's CPU time per operation (user + system), the pool's own cost; wall
 * time is dominated by the round trip to the server.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config';
import { EmbeddedPostgres } from '../../src/db/embedded';
import { createPool } from '../../src/db/pool';
import type { Pool } from '../../src/db/types';
import { silentLogger } from '../../src/telemetry/logger';

const QUERIES = Number(process.env.BENCH_QUERIES ?? 4_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const CONCURRENCY = 8;
const COPY_ROWS = 10_000;

interface Sample {
  wallUsPerOp: number;
  cpuUsPerOp: number;
}

async function measure(ops: number, run: () => Promise<void>): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run();
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { wallUsPerOp: wallNs / 1_000 / ops, cpuUsPerOp: (cpu.user + cpu.system) / ops };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function sequential(n: number, fn: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) await fn();
}

async function parallel(n: number, workers: number, fn: (worker: number) => Promise<unknown>): Promise<void> {
  await Promise.all(Array.from({ length: workers }, (_, w) => sequential(Math.ceil(n / workers), () => fn(w))));
}

function copyRows(): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < COPY_ROWS; i += 500) {
    let text = '';
    for (let j = i; j < i + 500; j++) text += `${j}\tfill-${j}\tAAPL\t189.25\t100\n`;
    chunks.push(Buffer.from(text));
  }
  return chunks;
}

/** Discards spans: measures the cost of recording them, not of exporting them. */
const nullExporter: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => undefined };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  let url = process.env.DATABASE_URL;
  let embedded: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  if (!url) {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'orderflow-bench-pool-'));
    await fs.chmod(dataDir, 0o755);
    embedded = new EmbeddedPostgres({ dataDir, port: await freePort(), logger: silentLogger, database: 'bench', settings: { fsync: 'off' } });
    url = await embedded.start();
  }
  const config = loadConfig({ POOL_MIN: String(CONCURRENCY), POOL_MAX: String(CONCURRENCY) }).pool;
  const tracedProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(nullExporter)] });
  const ours: Pool = createPool({ connectionString: url, config, logger: silentLogger });
  const traced: Pool = createPool({ connectionString: url, config, logger: silentLogger, tracer: tracedProvider.getTracer('bench') });
  const pgPool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
  const raw = await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  try {
    const variants: Record<string, { seq: () => Promise<unknown>; par: (w: number) => Promise<unknown> }> = {
      'pg.Client (raw)': { seq: () => raw[0]!.query('SELECT 1'), par: (w) => raw[w]!.query('SELECT 1') },
      'pg.Pool': { seq: () => pgPool.query('SELECT 1'), par: () => pgPool.query('SELECT 1') },
      'orderflow pool': { seq: () => ours.query('bench.select1', 'SELECT 1'), par: () => ours.query('bench.select1', 'SELECT 1') },
      'orderflow pool, spans recorded': { seq: () => traced.query('bench.select1', 'SELECT 1'), par: () => traced.query('bench.select1', 'SELECT 1') },
    };
    // Warm-up: JIT, connections, prepared nothing.
    for (const v of Object.values(variants)) await parallel(2_000, CONCURRENCY, v.par);

    const names = Object.keys(variants);
    const seq: Record<string, Sample[]> = {};
    const par: Record<string, Sample[]> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + k) % names.length]!;
        const v = variants[name]!;
        (seq[name] ??= []).push(await measure(QUERIES, () => sequential(QUERIES, v.seq)));
        (par[name] ??= []).push(await measure(QUERIES, () => parallel(QUERIES, CONCURRENCY, v.par)));
      }
    }

    await ours.query('bench.ddl', 'CREATE UNLOGGED TABLE IF NOT EXISTS bench_copy (id int, fill_id text, symbol text, price numeric, qty numeric)');
    const rows = copyRows();
    const copyMs: Record<string, number[]> = { 'pg-copy-streams (raw)': [], 'orderflow pool.copyFrom': [] };
    const copyVariants: [string, () => Promise<number>][] = [
      [
        'pg-copy-streams (raw)',
        async () => {
          const stream = raw[0]!.query(copyFrom('COPY bench_copy FROM STDIN'));
          await pipeline(Readable.from(rows), stream);
          return stream.rowCount;
        },
      ],
      ['orderflow pool.copyFrom', () => ours.copyFrom('bench.copy', 'COPY bench_copy FROM STDIN', rows)],
    ];
    for (let round = 0; round < ROUNDS * 2; round++) {
      for (let k = 0; k < copyVariants.length; k++) {
        const [name, run] = copyVariants[(round + k) % copyVariants.length]!;
        await raw[0]!.query('TRUNCATE bench_copy');
        const t0 = performance.now();
        const n = await run();
        copyMs[name]!.push(performance.now() - t0);
        if (n !== COPY_ROWS) throw new Error(`${name} loaded ${n} rows, expected ${COPY_ROWS}`);
      }
    }

    const baseline = 'pg.Client (raw)';
    const summary = (samples: Sample[], key: keyof Sample) => ({
      median: +median(samples.map((x) => x[key])).toFixed(1),
      min: +Math.min(...samples.map((x) => x[key])).toFixed(1),
    });
    const overhead = (samples: Sample[], base: Sample[], key: keyof Sample) => +median(samples.map((x, i) => x[key] - base[i]![key])).toFixed(1);
    const result = {
      queriesPerVariantAndRound: QUERIES,
      rounds: ROUNDS,
      concurrency: CONCURRENCY,
      select1UsPerQuery: Object.fromEntries(
        names.map((name) => [
          name,
          {
            sequentialWall: summary(seq[name]!, 'wallUsPerOp'),
            sequentialCpu: summary(seq[name]!, 'cpuUsPerOp'),
            concurrentWall: summary(par[name]!, 'wallUsPerOp'),
            concurrentCpu: summary(par[name]!, 'cpuUsPerOp'),
            overheadVsRaw: {
              sequentialWall: overhead(seq[name]!, seq[baseline]!, 'wallUsPerOp'),
              sequentialCpu: overhead(seq[name]!, seq[baseline]!, 'cpuUsPerOp'),
              concurrentWall: overhead(par[name]!, par[baseline]!, 'wallUsPerOp'),
              concurrentCpu: overhead(par[name]!, par[baseline]!, 'cpuUsPerOp'),
            },
          },
        ]),
      ),
      copy10kRowsMs: Object.fromEntries(Object.entries(copyMs).map(([name, ms]) => [name, { median: +median(ms).toFixed(1), min: +Math.min(...ms).toFixed(1) }])),
    };
    const cell = (x: { median: number; min: number }, d: number) => `${x.median} [${x.min}] ${d >= 0 ? '+' : ''}${d}`.padStart(22);
    console.log(`SELECT 1: µs per query, median [min] over ${ROUNDS} rounds × ${QUERIES} queries, then the median difference to raw pg.Client`);
    console.log(`${'variant'.padEnd(32)}${'sequential wall'.padStart(22)}${'sequential cpu'.padStart(22)}${`${CONCURRENCY} in flight wall`.padStart(22)}${`${CONCURRENCY} in flight cpu`.padStart(22)}`);
    for (const [name, r] of Object.entries(result.select1UsPerQuery)) {
      const o = r.overheadVsRaw;
      console.log(
        `${name.padEnd(32)}${cell(r.sequentialWall, o.sequentialWall)}${cell(r.sequentialCpu, o.sequentialCpu)}${cell(r.concurrentWall, o.concurrentWall)}${cell(r.concurrentCpu, o.concurrentCpu)}`,
      );
    }
    console.log(`COPY of ${COPY_ROWS} rows, ms, median [min]: ${JSON.stringify(result.copy10kRowsMs)}`);
    console.log(JSON.stringify(result));
  } finally {
    await Promise.all(raw.map((c) => c.end()));
    await pgPool.end();
    await ours.close();
    await traced.close();
    await tracedProvider.shutdown();
    await embedded?.stop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
