import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Event } from '../../../src/generated/orderflow/v1/Event';
import type { IngestRequest } from '../../../src/generated/orderflow/v1/IngestRequest';
import type { IngestResponse__Output } from '../../../src/generated/orderflow/v1/IngestResponse';
import type { OrderFlowClient } from '../../../src/generated/orderflow/v1/OrderFlow';
import { orderFlowClient, waitForHealth } from '../../helpers/grpc';
import { OtlpReceiver } from '../../helpers/otlp-receiver';
import { createTestDatabase, freePort, withClient, type TestDatabase } from '../../helpers/postgres';
import { startService, waitForExit, type ServiceProcess } from '../../helpers/process';
import { DOCKER_DIR, requirePromtool, runPromtool } from './promtool';

/** One sample line of the Prometheus text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text format: families (name → type) and samples. Enough for our own output. */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { types, samples };
}

/** Sum of the samples of `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

/** Metric names a PromQL text refers to (orderflow_* only), histogram suffixes stripped when the family is a histogram. */
function referencedFamilies(promql: string, types: Map<string, string>): Set<string> {
  const names = new Set<string>();
  for (const [name] of promql.matchAll(/\borderflow_[a-z0-9_]+/g)) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    names.add(base !== name && types.get(base) === 'histogram' ? base : name);
  }
  return names;
}

/** The PromQL of every alert rule and every dashboard panel target. */
function promqlExpressions(): string[] {
  const alerts = parseYaml(fs.readFileSync(path.join(DOCKER_DIR, 'prometheus/alerts.yml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] };
  const exprs = alerts.groups.flatMap((g) => g.rules.map((r) => String(r.expr)));
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'expr' && typeof value === 'string') exprs.push(value);
        else walk(value);
      }
    }
  };
  walk(JSON.parse(fs.readFileSync(path.join(DOCKER_DIR, 'grafana/dashboards/orderflow.json'), 'utf8')));
  return exprs;
}

function getOrder(client: OrderFlowClient, orderId: string): Promise<number> {
  return new Promise((resolve) => client.GetOrder({ order_id: orderId }, { deadline: Date.now() + 5_000 }, (err) => resolve(err ? err.code : grpc.status.OK)));
}

describe('/metrics of the real service process (integration)', function () {
  this.timeout(60_000);
  const CALLS = 5;
  let db: TestDatabase;
  let receiver: OtlpReceiver;
  let proc: ServiceProcess | undefined;
  let client: OrderFlowClient;
  let metricsUrl: string;
  let getOrderCode: number;
  let body: string;

  before(async () => {
    db = await createTestDatabase('metrics');
    receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    const grpcPort = await freePort();
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    proc = startService({
      DATABASE_URL: db.url,
      GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      POOL_MIN: '0',
      SHUTDOWN_GRACE_MS: '2000',
      // Tracing off, with an endpoint that would receive spans if it were not.
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    expect(await waitForHealth(grpcPort, 'SERVING', 30_000), proc.output()).to.equal('SERVING');
    client = orderFlowClient(grpcPort);
    const codes = new Set<number>();
    for (let i = 0; i < CALLS; i++) codes.add(await getOrder(client, `o-metrics-${i}`));
    expect(codes.size, 'every GetOrder ends with the same status').to.equal(1);
    getOrderCode = [...codes][0]!;
    body = await (await fetch(metricsUrl)).text();
  });
  after(async () => {
    client?.close();
    if (proc && proc.child.exitCode === null) {
      proc.child.kill('SIGTERM');
      await waitForExit(proc, 20_000).catch(() => proc?.child.kill('SIGKILL'));
    }
    await receiver?.close();
    await db?.drop();
  });

  it('counts gRPC calls by method and status name, with a duration histogram', () => {
    const { types, samples } = parseExposition(body);
    const code = grpc.status[getOrderCode]!;
    expect(types.get('orderflow_grpc_server_handled_total')).to.equal('counter');
    expect(types.get('orderflow_grpc_server_handling_seconds')).to.equal('histogram');
    expect(total(samples, 'orderflow_grpc_server_handled_total', { method: 'GetOrder', code })).to.equal(CALLS);
    expect(total(samples, 'orderflow_grpc_server_handled_total', { method: 'GetOrder' })).to.equal(CALLS);
    expect(total(samples, 'orderflow_grpc_server_started_total', { method: 'GetOrder' })).to.equal(CALLS);
    expect(total(samples, 'orderflow_grpc_server_handling_seconds_count', { method: 'GetOrder' })).to.equal(CALLS);
    expect(total(samples, 'orderflow_grpc_server_handling_seconds_bucket', { method: 'GetOrder', le: '+Inf' })).to.equal(CALLS);
    // Every RPC of the contract is listed before its first call; labels stay low-cardinality.
    const methods = new Set(samples.filter((s) => s.name === 'orderflow_grpc_server_handled_total').map((s) => s.labels.method));
    expect([...methods]).to.include.members(['Ingest', 'GetOrder', 'BatchGetOrders', 'ListOrders', 'ListFills', 'GetPosition']);
  });

  it('reports the database up (1) while the health probe passes', () => {
    const { types, samples } = parseExposition(body);
    expect(types.get('orderflow_database_up')).to.equal('gauge');
    expect(total(samples, 'orderflow_database_up')).to.equal(1);
  });

  it('exports process and runtime figures under the orderflow_ prefix', () => {
    const { types } = parseExposition(body);
    for (const name of ['orderflow_process_cpu_seconds_total', 'orderflow_process_resident_memory_bytes', 'orderflow_process_open_fds', 'orderflow_nodejs_eventloop_lag_seconds', 'orderflow_nodejs_heap_size_used_bytes', 'orderflow_nodejs_gc_duration_seconds']) {
      expect(types.has(name), name).to.equal(true);
    }
    expect([...types.keys()].filter((name) => !name.startsWith('orderflow_'))).to.deep.equal([]);
  });

  it('passes `promtool check metrics` on the whole live output', async function () {
    requirePromtool(this);
    const { code, output } = await runPromtool(['check', 'metrics'], { stdin: body });
    expect(output.trim(), 'promtool lint findings').to.equal('');
    expect(code).to.equal(0);
  });

  it('with OTEL_TRACES_EXPORTER=none sends no span and loads no SDK, even through SIGTERM', async () => {
    client.close();
    proc!.child.kill('SIGTERM');
    expect(await waitForExit(proc!, 20_000)).to.equal(0);
    expect(receiver.requests).to.deep.equal([]);
    expect(proc!.output()).to.not.include('tracing started');
  });
});

/** Every family issue #7 asks for, by group (pool, queries, cache, ingest, gRPC, process/runtime). */
const REQUIRED_FAMILIES = {
  pool: [
    'orderflow_db_pool_connections',
    'orderflow_db_pool_pending_acquires',
    'orderflow_db_pool_acquire_wait_seconds',
    'orderflow_db_pool_acquire_timeouts_total',
    'orderflow_db_pool_connections_opened_total',
    'orderflow_db_pool_connections_destroyed_total',
  ],
  queries: ['orderflow_db_query_duration_seconds', 'orderflow_db_query_errors_total', 'orderflow_db_slow_queries_total'],
  cache: ['orderflow_cache_hits_total', 'orderflow_cache_misses_total', 'orderflow_cache_evictions_total', 'orderflow_cache_entries', 'orderflow_cache_bytes', 'orderflow_cache_invalidations_total'],
  ingest: [
    'orderflow_ingest_events_total',
    'orderflow_ingest_batch_rows',
    'orderflow_ingest_batch_bytes',
    'orderflow_ingest_flush_duration_seconds',
    'orderflow_ingest_ack_latency_seconds',
    'orderflow_ingest_buffered_events',
    'orderflow_ingest_open_streams',
    'orderflow_ingest_backpressure_pauses_total',
    'orderflow_ingest_fenced_streams_total',
  ],
  grpc: ['orderflow_grpc_server_handled_total', 'orderflow_grpc_server_started_total', 'orderflow_grpc_server_handling_seconds'],
  process: ['orderflow_process_cpu_seconds_total', 'orderflow_process_resident_memory_bytes', 'orderflow_nodejs_eventloop_lag_seconds', 'orderflow_nodejs_heap_size_used_bytes'],
} as const;

const STORED = 7;
const WORKLOAD_FILL = { order_id: 'metrics-o', account_id: 'metrics-acc', symbol: 'MTRX', side: 1 as const, price: '1.5', qty: '2', fee: '0', venue: 'XTST' };

/** An open Ingest stream that collects what the server sends and how the call ended. */
function openIngest(client: OrderFlowClient, sourceId: string): { call: grpc.ClientDuplexStream<IngestRequest, IngestResponse__Output>; received: IngestResponse__Output[]; ended: Promise<number> } {
  const call = client.Ingest({ deadline: Date.now() + 20_000 });
  const received: IngestResponse__Output[] = [];
  call.on('data', (msg: IngestResponse__Output) => received.push(msg));
  const ended = new Promise<number>((resolve) => {
    call.on('error', (err: grpc.ServiceError) => resolve(err.code));
    call.on('status', (st: grpc.StatusObject) => resolve(st.code));
  });
  call.write({ hello: { source_id: sourceId } });
  return { call, received, ended };
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function getPosition(client: OrderFlowClient): Promise<number> {
  return new Promise((resolve) =>
    client.GetPosition({ account_id: WORKLOAD_FILL.account_id, symbol: WORKLOAD_FILL.symbol }, { deadline: Date.now() + 5_000 }, (err) => resolve(err ? err.code : grpc.status.OK)),
  );
}

// After a workload of known size (ingest with a reject, a duplicate, a
// backpressure pause and a fenced stream; reads that miss then hit the
// cache), /metrics must show every family of issue #7 with matching values,
// and the alerts and dashboard may only name families that exist.
describe('/metrics after a workload: every family of #7, values matching it (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let proc: ServiceProcess | undefined;
  let grpcPort: number;
  let metricsUrl: string;
  let baseline: Sample[];
  let body: string;
  let fencedEnd: number;
  let secondEnd: number;

  before(async function () {
    db = await createTestDatabase('metrics_refs');
    grpcPort = await freePort();
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    proc = startService({
      DATABASE_URL: db.url,
      GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      POOL_MIN: '0',
      SHUTDOWN_GRACE_MS: '2000',
      OTEL_TRACES_EXPORTER: 'none',
      // A batch of 8 events pauses its stream (bound 5); every statement counts as slow; connections recycle after 3 uses.
      INGEST_STREAM_MAX_BUFFERED: '5',
      SLOW_QUERY_MS: '0',
      POOL_MAX_USES: '3',
      LOG_LEVEL: 'warn',
    });
    expect(await waitForHealth(grpcPort, 'SERVING', 30_000), proc.output()).to.equal('SERVING');
    baseline = parseExposition(await (await fetch(metricsUrl)).text()).samples;

    const client = orderFlowClient(grpcPort);
    try {
      // Seqs 1..7 valid, seq 8 invalid (qty 0): 7 stored, 1 rejected; then seq 3 again: 1 duplicate.
      const first = openIngest(client, 'metrics-source');
      const events: Event[] = Array.from({ length: STORED }, (_, i) => ({ seq: String(i + 1), fill: { ...WORKLOAD_FILL, fill_id: `metrics-f-${i}`, ts_ns: `17000000000000000${10 + i}` } }));
      events.push({ seq: String(STORED + 1), fill: { ...WORKLOAD_FILL, fill_id: 'metrics-bad', qty: '0', ts_ns: '1700000000000000099' } });
      first.call.write({ batch: { events } });
      await until(() => first.received.some((m) => m.ack?.committed_seq === String(STORED + 1)), 'the ack of seq 8');
      const acks = first.received.length;
      first.call.write({ batch: { events: [events[2]!] } });
      await until(() => first.received.length > acks && first.received.some((m) => m.ack?.duplicates === 1), 'the ack of the duplicate');
      // A second Hello for the same source fences the first stream (ABORTED); the second half-closes (OK).
      const second = openIngest(client, 'metrics-source');
      await until(() => second.received.some((m) => m.welcome !== null && m.welcome !== undefined), 'the Welcome of the second stream');
      fencedEnd = await first.ended;
      second.call.end();
      secondEnd = await second.ended;
      // The first read misses the cache, the second hits it.
      expect(await getPosition(client)).to.equal(grpc.status.OK);
      expect(await getPosition(client)).to.equal(grpc.status.OK);
    } finally {
      client.close();
    }
    // open_streams drops when the server sends the status; give the server side a moment to get there.
    const deadline = Date.now() + 5_000;
    do {
      body = await (await fetch(metricsUrl)).text();
    } while (total(parseExposition(body).samples, 'orderflow_ingest_open_streams') !== 0 && Date.now() < deadline);
  });
  after(async () => {
    if (proc && proc.child.exitCode === null) {
      proc.child.kill('SIGTERM');
      await waitForExit(proc, 20_000).catch(() => proc?.child.kill('SIGKILL'));
    }
    await db?.drop();
  });

  /** Change of a sum since before the workload. */
  function delta(name: string, labels: Record<string, string> = {}): number {
    return total(parseExposition(body).samples, name, labels) - total(baseline, name, labels);
  }

  it('exports every family issue #7 lists', () => {
    const { types } = parseExposition(body);
    const missing = Object.values(REQUIRED_FAMILIES)
      .flat()
      .filter((name) => !types.has(name));
    expect(missing).to.deep.equal([]);
  });

  it('ingest: events by outcome match what was sent, stored, rejected and dropped as duplicate', async () => {
    expect(fencedEnd, 'the fenced stream ends ABORTED').to.equal(grpc.status.ABORTED);
    expect(secondEnd).to.equal(grpc.status.OK);
    expect(delta('orderflow_ingest_events_total', { outcome: 'received' })).to.equal(STORED + 2);
    expect(delta('orderflow_ingest_events_total', { outcome: 'stored' })).to.equal(STORED);
    expect(delta('orderflow_ingest_events_total', { outcome: 'rejected' })).to.equal(1);
    expect(delta('orderflow_ingest_events_total', { outcome: 'duplicate' })).to.equal(1);
    const stored = await withClient(db.url, (c) => c.query<{ n: number }>("SELECT count(*)::int AS n FROM fills WHERE account_id = 'metrics-acc'"));
    expect(stored.rows[0]!.n, 'events stored in the database').to.equal(STORED);
    // Every received event went through a flushed window (the duplicate never enters one).
    expect(delta('orderflow_ingest_batch_rows_sum')).to.equal(STORED + 1);
    expect(delta('orderflow_ingest_batch_rows_count')).to.equal(delta('orderflow_ingest_batch_bytes_count'));
    expect(delta('orderflow_ingest_batch_bytes_sum')).to.be.greaterThan(0);
    expect(delta('orderflow_ingest_flush_duration_seconds_count', { outcome: 'committed' })).to.be.at.least(1);
    expect(delta('orderflow_ingest_flush_duration_seconds_count', { outcome: 'failed' })).to.equal(0);
    expect(delta('orderflow_ingest_ack_latency_seconds_count')).to.be.at.least(1);
    expect(total(parseExposition(body).samples, 'orderflow_ingest_buffered_events')).to.equal(0);
    expect(total(parseExposition(body).samples, 'orderflow_ingest_open_streams')).to.equal(0);
    expect(delta('orderflow_ingest_backpressure_pauses_total'), 'the 8-event batch exceeded the bound of 5').to.be.at.least(1);
    expect(delta('orderflow_ingest_fenced_streams_total')).to.equal(1);
  });

  it('gRPC: calls by method and status name match the workload', () => {
    expect(delta('orderflow_grpc_server_handled_total', { method: 'Ingest', code: 'ABORTED' })).to.equal(1);
    expect(delta('orderflow_grpc_server_handled_total', { method: 'Ingest', code: 'OK' })).to.equal(1);
    expect(delta('orderflow_grpc_server_started_total', { method: 'Ingest' })).to.equal(2);
    expect(delta('orderflow_grpc_server_handled_total', { method: 'GetPosition', code: 'OK' })).to.equal(2);
  });

  it('cache: one miss then one hit for the position, an invalidation per committed flush, entries and bytes', () => {
    expect(delta('orderflow_cache_misses_total', { cache: 'position' })).to.equal(1);
    expect(delta('orderflow_cache_hits_total', { cache: 'position' })).to.equal(1);
    expect(delta('orderflow_cache_invalidations_total', { origin: 'local' })).to.be.at.least(1);
    const { samples } = parseExposition(body);
    expect(total(samples, 'orderflow_cache_entries')).to.be.at.least(1);
    expect(total(samples, 'orderflow_cache_bytes')).to.be.greaterThan(0);
    expect(delta('orderflow_cache_evictions_total'), 'nothing reached a size bound or TTL').to.equal(0);
  });

  it('pool and queries: acquires, opens, destroys by reason, durations by operation, slow queries', () => {
    const { samples } = parseExposition(body);
    const states = samples.filter((s) => s.name === 'orderflow_db_pool_connections').map((s) => s.labels.state);
    expect(states).to.have.members(['idle', 'in_use', 'connecting']);
    expect(total(samples, 'orderflow_db_pool_pending_acquires')).to.equal(0);
    expect(delta('orderflow_db_pool_acquire_wait_seconds_count')).to.equal(delta('orderflow_db_pool_acquires_total'));
    expect(delta('orderflow_db_pool_acquires_total')).to.be.greaterThan(0);
    expect(delta('orderflow_db_pool_acquire_timeouts_total')).to.equal(0);
    expect(delta('orderflow_db_pool_connections_opened_total')).to.be.at.least(1);
    // POOL_MAX_USES=3: connections are recycled as the workload uses them.
    expect(delta('orderflow_db_pool_connections_destroyed_total', { reason: 'max_uses' })).to.be.at.least(1);
    expect(delta('orderflow_db_query_duration_seconds_count', { operation: 'fills.copy' })).to.be.at.least(1);
    expect(delta('orderflow_db_query_duration_seconds_count', { operation: 'ingest.flush.commit' })).to.equal(delta('orderflow_ingest_flush_duration_seconds_count', { outcome: 'committed' }));
    // SLOW_QUERY_MS=0: every statement that took any time at all is slow, and never more than ran.
    const slow = delta('orderflow_db_slow_queries_total');
    expect(slow).to.be.greaterThan(0);
    expect(slow).to.be.at.most(delta('orderflow_db_query_duration_seconds_count'));
    expect(delta('orderflow_db_query_errors_total'), 'no statement failed').to.equal(0);
  });

  it('passes `promtool check metrics` on the project families after the workload', async function () {
    requirePromtool(this);
    const { code, output } = await runPromtool(['check', 'metrics'], { stdin: body });
    expect(output.trim(), 'promtool lint findings').to.equal('');
    expect(code).to.equal(0);
  });

  it('every orderflow_* family named in alerts.yml and the Grafana dashboard is exported', () => {
    const { types } = parseExposition(body);
    const alerts = fs.readFileSync(path.join(DOCKER_DIR, 'prometheus/alerts.yml'), 'utf8');
    const dashboard = fs.readFileSync(path.join(DOCKER_DIR, 'grafana/dashboards/orderflow.json'), 'utf8');
    const referenced = new Set([...referencedFamilies(alerts, types), ...referencedFamilies(dashboard, types)]);
    expect(referenced.size).to.be.greaterThan(10);
    expect([...referenced].filter((name) => !types.has(name)).sort()).to.deep.equal([]);
  });

  it('every label the alerts and dashboard select or group by exists on a family of the same expression', () => {
    const { types, samples } = parseExposition(body);
    // Added by Prometheus at scrape time or by histogram_quantile, never by the service.
    const external = new Set(['instance', 'job', 'le']);
    const problems: string[] = [];
    for (const expr of promqlExpressions()) {
      const families = referencedFamilies(expr, types);
      const known = new Set(external);
      for (const s of samples) if (families.has(s.name.replace(/_(bucket|sum|count)$/, '')) || families.has(s.name)) for (const label of Object.keys(s.labels)) known.add(label);
      for (const [, selector] of expr.matchAll(/\borderflow_[a-z0-9_]+\{([^}]*)\}/g)) {
        for (const [, label] of selector!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) if (!known.has(label!)) problems.push(`${label} in ${expr.trim()}`);
      }
      for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
        for (const label of list!.split(',').map((l) => l.trim()).filter(Boolean)) if (!known.has(label)) problems.push(`${label} in ${expr.trim()}`);
      }
    }
    expect(problems).to.deep.equal([]);
  });

});
