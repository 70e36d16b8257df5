/**
 * GetOrder latency (p50/p99) and throughput over real gRPC on loopback, for
 * cache hits and for cache misses (each miss reads a cold order: one query),
 * at concurrency 1 and 16; and a cache hit inside the process, without gRPC. The service runs in-process on a throwaway
 * embedded PostgreSQL (or DATABASE_URL).
 *
 *   npm run bench:read          BENCH_SECONDS (default 5) per scenario, BENCH_ORDERS (default 50,000)
 */
import os from 'node:os';
import { App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { cacheKey } from '../../src/db/cache';
import { orderTag } from '../../src/store/cache-tags';
import type { OrderFlowClient } from '../../src/generated/orderflow/v1/OrderFlow';
import { loadOrderflowProto } from '../../src/rpc/proto';
import { silentLogger } from '../../src/telemetry/logger';
import * as grpc from '@grpc/grpc-js';
import { quantile, startBenchDatabase } from './read-support';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ORDERS = Number(process.env.BENCH_ORDERS ?? 50_000);
const HOT_ORDERS = 1_000;

async function seed(app: App): Promise<void> {
  const events: string[] = [];
  const fills: string[] = [];
  const baseTs = 1_700_000_000_000_000_000n;
  for (let i = 0; i < ORDERS; i++) {
    const ts = baseTs + BigInt(i) * 1_000n;
    const account = `acct-${i % 500}`;
    events.push(['bench', i * 3 + 1, `order-${i}`, account, 'AAPL', 1, 2, 1, '101.25', '10', 2, ts, `c-${i}`].join('\t'));
    for (let f = 0; f < 2; f++) fills.push(['bench', i * 3 + 2 + f, `fill-${i}-${f}`, `order-${i}`, account, 'AAPL', 1, '101.2' + f, '3', ts + BigInt(f + 1), '0.01', 'XNAS'].join('\t'));
  }
  await app.pool.copyFrom('bench.seed', 'COPY order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns, client_order_id) FROM STDIN', [Buffer.from(events.join('\n') + '\n')]);
  await app.pool.copyFrom('bench.seed', 'COPY fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns, fee, venue) FROM STDIN', [Buffer.from(fills.join('\n') + '\n')]);
  await app.pool.query({ op: 'bench.analyze', timeoutMs: 120_000 }, 'VACUUM ANALYZE');
}

function getOrder(client: OrderFlowClient, orderId: string): Promise<void> {
  return new Promise((resolve, reject) => client.GetOrder({ order_id: orderId }, (err) => (err ? reject(err) : resolve())));
}

/** Runs `concurrency` workers for SECONDS, each calling GetOrder on `nextId()`; returns latencies in ms. */
async function run(client: OrderFlowClient, concurrency: number, nextId: () => string): Promise<{ latenciesMs: number[]; elapsedMs: number }> {
  const latenciesMs: number[] = [];
  const started = performance.now();
  const until = started + SECONDS * 1_000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        await getOrder(client, nextId());
        latenciesMs.push(performance.now() - t);
      }
    }),
  );
  return { latenciesMs, elapsedMs: performance.now() - started };
}

function report(label: string, { latenciesMs, elapsedMs }: { latenciesMs: number[]; elapsedMs: number }): void {
  latenciesMs.sort((a, b) => a - b);
  const rate = Math.round((latenciesMs.length / elapsedMs) * 1_000);
  console.log(`${label.padEnd(28)} p50 ${quantile(latenciesMs, 0.5).toFixed(3).padStart(8)} ms   p99 ${quantile(latenciesMs, 0.99).toFixed(3).padStart(8)} ms   ${String(rate).padStart(6)} calls/s   (${latenciesMs.length} calls)`);
}

async function main(): Promise<void> {
  const db = await startBenchDatabase('read');
  const app = new App(loadConfig({ DATABASE_URL: db.url, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', LOG_LEVEL: 'silent' }), silentLogger);
  await app.start();
  const { proto } = loadOrderflowProto();
  const client = new proto.orderflow.v1.OrderFlow(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure());
  try {
    while (app.readPath.listener.state !== 'LISTENING') await new Promise((resolve) => setTimeout(resolve, 50));
    await seed(app);
    console.log(`GetOrder over gRPC on loopback; ${ORDERS} orders with 2 fills each; ${SECONDS} s per scenario`);
    console.log(`host: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (shared machine: compare runs, not absolutes)\n`);

    for (let i = 0; i < HOT_ORDERS; i++) await getOrder(client, `order-${i}`);
    let cold = HOT_ORDERS;
    const nextCold = () => {
      if (cold >= ORDERS) {
        cold = HOT_ORDERS;
        app.readPath.cache.invalidateAll('local');
      }
      return `order-${cold++}`;
    };
    const hot = () => `order-${Math.floor(Math.random() * HOT_ORDERS)}`;
    for (const concurrency of [1, 16]) {
      const queriesBefore = app.readPath.queries.count('orders.get');
      report(`hits, concurrency ${concurrency}`, await run(client, concurrency, hot));
      if (app.readPath.queries.count('orders.get') !== queriesBefore) console.log('  (warning: some "hits" queried the database)');
      report(`misses, concurrency ${concurrency}`, await run(client, concurrency, nextCold));
    }
    // The cache alone, without gRPC: what a hit costs inside the service.
    const cache = app.readPath.cache;
    const latenciesMs: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 200_000; i++) {
      const id = hot();
      const t = performance.now();
      await cache.get('order', { key: cacheKey('orders.get', { order_id: id }), tags: [orderTag(id)] }, () => Promise.reject(new Error('not a hit')));
      latenciesMs.push(performance.now() - t);
    }
    report('in-process cache hit', { latenciesMs, elapsedMs: performance.now() - started });
  } finally {
    client.close();
    await app.close();
    await db.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
