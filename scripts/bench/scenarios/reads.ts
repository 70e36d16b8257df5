import { performance } from 'node:perf_hooks';
import type { ChildServer } from '../lib/child';
import { createIngestDriver, type IngestEvent } from '../lib/ingest-driver';
import { fmt, progress } from '../lib/progress';
import { FigureCollector, type Distribution } from '../lib/results';
import { BENCH_SYMBOLS, generateSeedOrders, type SeedOrder } from '../lib/rows';
import type { BenchContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { LatencyRecorder } from '../lib/stats';
import { ScenarioUnavailableError } from '../lib/unavailable';
import { addUnaryRun, defineUnaryFigures, measureUnary, UnaryLoadClient, probeUnary, reportUnary, waitQuiet } from '../lib/unary-bench';
import { FLOOR_PREFIX } from './floor';
import { withFreshService } from './orderflow-ingest';

/** Orders whose GetOrder is warmed into the cache before the hit runs. */
const HOT_ORDERS = 1_000;
/** Accounts the seeded orders spread over. */
const SEED_ACCOUNTS = 50;
/** Fills per ListFills page. */
const LIST_PAGE_SIZE = 100;

/**
 * orderflow's read RPCs beside the floor: GetOrder served from the cache
 * (hit) and from PostgreSQL (miss: every call a never-read id), a ListFills
 * page, GetPosition. Data is seeded through the Ingest RPC, the public
 * contract, so the scenario follows whatever schema the service has.
 */
export const readsScenario: Scenario = {
  id: 'reads',
  title: 'orderflow reads: GetOrder (cache hit and miss), ListFills page, GetPosition',
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const { plan, options } = ctx;
    return withFreshService(ctx, 'reads', {}, async (server) => {
      const client = new UnaryLoadClient(server.port);
      try {
        await probeUnary(client, 'GetOrder', { order_id: 'bench-probe' });
        const orders = generateSeedOrders(7, plan.readSeedOrders, SEED_ACCOUNTS);
        progress('reads', `seeding ${fmt(orders.length)} orders through Ingest`);
        const seeded = await seed(ctx, server, orders);
        progress('reads', `seeded ${fmt(seeded.events)} events in ${fmt(seeded.ms / 1_000, 1)} s`);
        await probeUnary(client, 'ListFills', { account_id: orders[0]!.account_id, page_size: LIST_PAGE_SIZE });
        await probeUnary(client, 'GetPosition', { account_id: orders[0]!.account_id, symbol: orders[0]!.symbol });

        const figures = new FigureCollector();
        const workloads: Array<{ prefix: string; title: string; call: (i: number) => Promise<unknown>; prepare?: () => Promise<void> }> = [];
        const hot = orders.slice(0, HOT_ORDERS).map((o) => o.order_id);
        // Re-read the hot set right before each hit measurement: cache entries
        // expire CACHE_TTL_MS (default 60 s) after they were loaded, and the
        // read runs take longer than that.
        const warmHotSet = async () => {
          for (let i = 0; i < hot.length; i += 16) await Promise.all(hot.slice(i, i + 16).map((id) => client.call('GetOrder', { order_id: id })));
        };
        // Misses: every call reads an id no call has read before (the pool is never reused).
        let missCursor = HOT_ORDERS;
        let missWrapped = false;
        const nextMiss = () => {
          if (missCursor >= orders.length) {
            missCursor = HOT_ORDERS;
            missWrapped = true;
          }
          return orders[missCursor++]!.order_id;
        };
        const pairs = positionPairs(orders);
        workloads.push({ prefix: 'reads.get_order_hit', title: 'GetOrder, cache hit', call: (i) => client.call('GetOrder', { order_id: hot[i % hot.length] }), prepare: warmHotSet });
        workloads.push({ prefix: 'reads.get_order_miss', title: 'GetOrder, cache miss', call: () => client.call('GetOrder', { order_id: nextMiss() }) });
        workloads.push({
          prefix: 'reads.list_fills',
          title: `ListFills, first page of ${LIST_PAGE_SIZE} by account`,
          call: (i) => client.call('ListFills', { account_id: `ACCT-${String(i % SEED_ACCOUNTS).padStart(6, '0')}`, page_size: LIST_PAGE_SIZE }),
        });
        workloads.push({ prefix: 'reads.get_position', title: 'GetPosition', call: (i) => client.call('GetPosition', pairs[i % pairs.length]!) });
        for (const w of workloads) defineUnaryFigures(figures, w.prefix, w.title, plan, FLOOR_PREFIX);

        const runs: Array<Record<string, unknown>> = [];
        const merged = new Map(workloads.map((w) => [w.prefix, new LatencyRecorder()]));
        for (let run = 1; run <= options.runs; run++) {
          for (const w of workloads) {
            // Quiet first (the previous workload's abandoned calls, autovacuum after seeding), then warm.
            const settledMs = await waitQuiet(server, ctx.postmasterPid);
            await w.prepare?.();
            const m = await measureUnary(server, ctx.postmasterPid, plan, w.call);
            runs.push({ run, workload: w.prefix, settledMs, ...addUnaryRun(figures, w.prefix, m, true) });
            merged.get(w.prefix)!.merge(m.open.latency);
            reportUnary('reads', w.title, run, options.runs, m);
          }
        }
        const distributions: Distribution[] = workloads.map((w) => {
          const s = merged.get(w.prefix)!.summary();
          return { label: `orderflow: ${w.title}`, points: s.distribution, count: s.count };
        });
        const notes = [
          `Seeded through Ingest: ${fmt(orders.length)} orders (one NEW event each) over ${SEED_ACCOUNTS} accounts with ${fmt(seeded.events - orders.length)} fills; one service process for all read runs (its cache stays warm for the hot set).`,
          `Hit: GetOrder over ${fmt(HOT_ORDERS)} orders, all read again right before each hit measurement (so no entry reaches its TTL inside it). Miss: each call reads an order id never read before.`,
          'Each workload starts once the service and PostgreSQL have been quiet (< 5% of a core each over 0.5 s, waiting at most 30 s; `settledMs` in the raw runs), so no measurement pays for calls an earlier overloaded one left queued, or for autovacuum after seeding.',
          `Closed loop: ${plan.readConcurrency} calls in flight on one connection; server CPU = the service process, PostgreSQL CPU = postmaster and children. Open loop: ${fmt(plan.readOpenRate)} calls/s offered, latency from intended send time.`,
        ];
        if (missWrapped) notes.push('WARNING: the miss pool ran out and wrapped, so some "miss" calls may have been cache hits; raise readSeedOrders.');
        return { figures: figures.results(), runs, distributions, notes };
      } finally {
        client.close();
      }
    });
  },
};

/** Distinct (account, symbol) pairs that have fills, for GetPosition. */
function positionPairs(orders: readonly SeedOrder[]): Array<{ account_id: string; symbol: string }> {
  const seen = new Map<string, { account_id: string; symbol: string }>();
  for (const o of orders) if (o.fills.length > 0) seen.set(`${o.account_id}\u0000${o.symbol}`, { account_id: o.account_id, symbol: o.symbol });
  return seen.size > 0 ? [...seen.values()] : [{ account_id: 'ACCT-000000', symbol: BENCH_SYMBOLS[0]! }];
}

/** Streams the seed orders (an order event, then its fills) through one Ingest stream and waits for the final Ack. */
async function seed(ctx: BenchContext, server: ChildServer, orders: readonly SeedOrder[]): Promise<{ events: number; ms: number }> {
  const t0 = performance.now();
  const driver = createIngestDriver(ctx.options.ingestClient, server.port);
  try {
    let stream;
    try {
      stream = await driver.open('bench-read-seed');
    } catch (err) {
      if (err instanceof ScenarioUnavailableError) throw new ScenarioUnavailableError(`the read scenarios seed their data through Ingest, and ${err.reason}`);
      throw err;
    }
    let seq = Number(stream.lastCommittedSeq);
    let committed = seq;
    let done: (() => void) | undefined;
    stream.onAck((s) => {
      committed = Number(s);
      done?.();
    });
    let batch: IngestEvent[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const ok = stream.sendBatch(batch);
      batch = [];
      if (!ok) await stream.waitDrain();
    };
    for (const o of orders) {
      batch.push({
        seq: String(++seq),
        order: { order_id: o.order_id, account_id: o.account_id, symbol: o.symbol, side: o.side, order_type: 2, event_type: 1, price: o.price, qty: o.qty, time_in_force: 1, ts_ns: o.ts_ns, client_order_id: `cl-${o.order_id}` },
      });
      for (const f of o.fills) {
        batch.push({ seq: String(++seq), fill: { fill_id: f.fill_id, order_id: o.order_id, account_id: o.account_id, symbol: o.symbol, side: o.side, price: f.price, qty: f.qty, ts_ns: f.ts_ns, fee: f.fee, venue: f.venue } });
      }
      if (batch.length >= 100) await flush();
    }
    await flush();
    const deadline = Date.now() + 120_000;
    while (committed < seq) {
      if (stream.error) throw new Error(`seeding failed: ${stream.error.message}`);
      if (Date.now() > deadline) throw new Error(`seeding: only seq ${committed} of ${seq} acked after 120 s`);
      await new Promise<void>((resolve) => {
        done = resolve;
        setTimeout(resolve, 200).unref();
      });
    }
    if (stream.rejects > 0) throw new Error(`seeding: the service rejected ${stream.rejects} seed events`);
    await stream.close(10_000);
    return { events: seq, ms: performance.now() - t0 };
  } finally {
    driver.close();
  }
}
