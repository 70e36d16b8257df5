import { context, propagation, trace } from '@opentelemetry/api';
import { node, tracing } from '@opentelemetry/sdk-node';
import { expect } from 'chai';
import http from 'node:http';
import { orderEvent } from '../../helpers/fake-ingest';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { ok, startReadHarness, type ReadHarness } from './support';

function fetchText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('read path telemetry (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let h: ReadHarness;
  const exporter = new tracing.InMemorySpanExporter();
  let provider: node.NodeTracerProvider;

  before(async () => {
    provider = new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
    provider.register();
    db = await createTestDatabase('read_telemetry');
    h = await startReadHarness(db.url, { METRICS_ADDRESS: '127.0.0.1:0' });
  });
  after(async () => {
    await h?.close();
    await db?.drop();
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('marks RPC spans as cache hit or miss; a miss has the fetch and its query beneath it', async () => {
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'tel-1' })] });
    exporter.reset();
    await ok(h.client, 'GetOrder', { order_id: 'tel-1' });
    await ok(h.client, 'GetOrder', { order_id: 'tel-1' });
    const spans = exporter.getFinishedSpans();
    const rpcSpans = spans.filter((s) => s.name === 'grpc.orderflow.v1.OrderFlow/GetOrder');
    expect(rpcSpans).to.have.length(2);
    const [miss, hit] = rpcSpans;
    expect(miss!.attributes['orderflow.cache.hit']).to.equal(false);
    expect(miss!.attributes['orderflow.cache.misses']).to.equal(1);
    expect(hit!.attributes['orderflow.cache.hit']).to.equal(true);

    const childrenOf = (spanId: string) => spans.filter((s) => s.parentSpanContext?.spanId === spanId);
    const [fetch] = childrenOf(miss!.spanContext().spanId);
    expect(fetch?.name).to.equal('cache.fetch order');
    const [query] = childrenOf(fetch!.spanContext().spanId);
    // The pool's span: named after the op, the SQL command as db.operation.name, the row count.
    expect(query?.name).to.equal('orders.get');
    expect(query?.attributes).to.include({ 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'db.query.summary': 'orders.get', 'orderflow.db.rows': 1 });
    expect(childrenOf(query!.spanContext().spanId), 'one span per query, none nested').to.have.length(0);
    expect(childrenOf(hit!.spanContext().spanId), 'a hit runs no query').to.have.length(0);
  });

  it('exports the cache metrics on /metrics', async () => {
    const text = await fetchText(h.app.metricsPort, '/metrics');
    for (const name of [
      'orderflow_cache_hits_total',
      'orderflow_cache_misses_total',
      'orderflow_cache_coalesced_total',
      'orderflow_cache_stale_prevented_total',
      'orderflow_cache_evictions_total',
      'orderflow_cache_entries',
      'orderflow_cache_bytes',
      'orderflow_cache_fetch_errors_total',
      'orderflow_cache_invalidations_total',
      'orderflow_cache_notifications_sent_total',
    ]) {
      expect(text).to.include(`# TYPE ${name} `);
    }
    expect(text).to.match(/orderflow_cache_hits_total\{cache="order"\} [1-9]/);
    expect(text).to.match(/orderflow_cache_invalidations_total\{origin="local"\} [1-9]/);
    expect(text).to.match(/orderflow_cache_notifications_sent_total [1-9]/);
    expect(text).to.match(/orderflow_cache_entries [1-9]/);
  });
});
