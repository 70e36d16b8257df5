import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Event } from '../../../src/generated/orderflow/v1/Event';
import type { OrderFlowClient } from '../../../src/generated/orderflow/v1/OrderFlow';
import { orderFlowClient, waitForHealth } from '../../helpers/grpc';
import { OTLP_SPAN_KIND, OTLP_STATUS_CODE, OtlpReceiver } from '../../helpers/otlp-receiver';
import { createTestDatabase, freePort, withClient, type TestDatabase } from '../../helpers/postgres';
import { startService, waitForExit, type ServiceProcess } from '../../helpers/process';

const SERVICE_NAME = 'orderflow-otlp-test';
const GET_ORDER_SPAN = 'grpc.orderflow.v1.OrderFlow/GetOrder';
const INGEST_SPAN = 'grpc.orderflow.v1.OrderFlow/Ingest';

/** A fresh W3C trace context: what a trading engine's own tracer would send. */
function newTraceparent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

function metadataWith(traceparent: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', traceparent);
  return metadata;
}

/** Calls GetOrder and resolves with the status code it ended with (UNIMPLEMENTED before #5, NOT_FOUND after). */
function getOrder(client: OrderFlowClient, orderId: string, metadata: grpc.Metadata): Promise<number> {
  return new Promise((resolve) => {
    client.GetOrder({ order_id: orderId }, metadata, { deadline: Date.now() + 5_000 }, (err) => resolve(err ? err.code : grpc.status.OK));
  });
}

/**
 * Opens an Ingest stream, says Hello (plus `events`), half-closes, and
 * resolves once the call ended, whatever its status. The deadline bounds the
 * wait: the foundation's UNIMPLEMENTED stub never ends a stream by itself.
 */
function ingestHello(client: OrderFlowClient, sourceId: string, metadata: grpc.Metadata, events: Event[] = [], deadlineMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const call = client.Ingest(metadata, { deadline: Date.now() + deadlineMs });
    call.on('data', () => undefined);
    call.on('error', () => resolve());
    call.on('end', () => resolve());
    call.write({ hello: { source_id: sourceId } });
    if (events.length > 0) call.write({ batch: { events } });
    call.end();
  });
}

async function startTracedService(db: TestDatabase, endpoint: string, env: Record<string, string>): Promise<{ proc: ServiceProcess; client: OrderFlowClient }> {
  const grpcPort = await freePort();
  const proc = startService({
    DATABASE_URL: db.url,
    GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
    METRICS_ADDRESS: 'off',
    POOL_MIN: '0',
    SHUTDOWN_GRACE_MS: '2000',
    OTEL_SERVICE_NAME: SERVICE_NAME,
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    ...env,
  });
  const health = await waitForHealth(grpcPort, 'SERVING', 30_000);
  if (health !== 'SERVING') throw new Error(`service did not become SERVING (${health}). Output:\n${proc.output()}`);
  return { proc, client: orderFlowClient(grpcPort) };
}

async function stop(proc: ServiceProcess | undefined): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  await waitForExit(proc, 20_000).catch(() => proc.child.kill('SIGKILL'));
}

describe('traces over OTLP/HTTP from the real service process (integration)', function () {
  this.timeout(60_000);
  let receiver: OtlpReceiver;
  let db: TestDatabase;
  let proc: ServiceProcess | undefined;
  let client: OrderFlowClient;

  before(async () => {
    receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    db = await createTestDatabase('otlp');
    // A short batch delay so spans arrive within a poll or two.
    ({ proc, client } = await startTracedService(db, endpoint, { OTEL_BSP_SCHEDULE_DELAY: '50' }));
  });
  after(async () => {
    client?.close();
    await stop(proc);
    await receiver?.close();
    await db?.drop();
  });

  it('exports a SERVER span for GetOrder with rpc attributes, status code and our resource', async () => {
    const ctx = newTraceparent();
    const code = await getOrder(client, 'o-otlp-1', metadataWith(ctx.header));
    const [span] = await receiver.waitFor((s) => s.traceId === ctx.traceId && s.name === GET_ORDER_SPAN, 10_000);
    expect(span!.kind).to.equal(OTLP_SPAN_KIND.SERVER);
    expect(span!.attributes).to.include({ 'rpc.system': 'grpc', 'rpc.service': 'orderflow.v1.OrderFlow', 'rpc.method': 'GetOrder' });
    expect(String(span!.attributes['rpc.grpc.status_code'])).to.equal(String(code));
    expect(span!.resource['service.name']).to.equal(SERVICE_NAME);
    expect(BigInt(span!.endTimeUnixNano) >= BigInt(span!.startTimeUnixNano), 'end >= start').to.equal(true);
    expect(receiver.requests).to.include('protobuf');
  });

  it("makes a client's traceparent the parent of the server span (the engine's trace continues)", async () => {
    const ctx = newTraceparent();
    await getOrder(client, 'o-otlp-2', metadataWith(ctx.header));
    const [span] = await receiver.waitFor((s) => s.traceId === ctx.traceId && s.name === GET_ORDER_SPAN, 10_000);
    expect(span!.parentSpanId).to.equal(ctx.spanId);
  });

  it('gives a read call ONE server span that carries how the cache answered: a miss has the fetch beneath it, a hit nothing', async () => {
    const miss = newTraceparent();
    const hit = newTraceparent();
    // An unknown id: the miss caches "not found", so the second call is a hit (NOT_FOUND both times).
    expect(await getOrder(client, 'o-otlp-once', metadataWith(miss.header))).to.equal(grpc.status.NOT_FOUND);
    expect(await getOrder(client, 'o-otlp-once', metadataWith(hit.header))).to.equal(grpc.status.NOT_FOUND);
    const [missSpan] = await receiver.waitFor((s) => s.traceId === miss.traceId && s.name === GET_ORDER_SPAN, 10_000);
    const [hitSpan] = await receiver.waitFor((s) => s.traceId === hit.traceId && s.name === GET_ORDER_SPAN, 10_000);
    await receiver.waitFor((s) => s.traceId === miss.traceId && s.name === 'cache.fetch order', 10_000);
    // Spans of one call are exported together; give stragglers one more batch delay anyway.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const inTrace = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
    for (const traceId of [miss.traceId, hit.traceId]) {
      expect(inTrace(traceId).filter((s) => s.kind === OTLP_SPAN_KIND.SERVER).map((s) => s.name), 'one SERVER span per call').to.deep.equal([GET_ORDER_SPAN]);
    }
    expect(missSpan!.attributes).to.include({ 'orderflow.cache.hit': false, 'rpc.method': 'GetOrder' });
    expect(String(missSpan!.attributes['orderflow.cache.misses'])).to.equal('1');
    expect(inTrace(miss.traceId).find((s) => s.name === 'cache.fetch order')?.parentSpanId).to.equal(missSpan!.spanId);
    expect(hitSpan!.attributes).to.include({ 'orderflow.cache.hit': true });
    expect(hitSpan!.parentSpanId).to.equal(hit.spanId);
    expect(inTrace(hit.traceId).map((s) => s.name), 'a hit runs no fetch and no query').to.deep.equal([GET_ORDER_SPAN]);
  });

  it('starts a new trace (a root span) when the client sends no traceparent', async () => {
    const before = new Set(receiver.spans.map((s) => s.spanId));
    await getOrder(client, 'o-otlp-3', new grpc.Metadata());
    const [span] = await receiver.waitFor((s) => s.name === GET_ORDER_SPAN && !before.has(s.spanId), 10_000);
    expect(span!.parentSpanId).to.equal(undefined);
  });

  it('exports a SERVER span for an Ingest stream, parented by the client trace', async () => {
    const ctx = newTraceparent();
    await ingestHello(client, 'otlp-ingest-1', metadataWith(ctx.header));
    const [span] = await receiver.waitFor((s) => s.traceId === ctx.traceId && s.name === INGEST_SPAN, 10_000);
    expect(span!.kind).to.equal(OTLP_SPAN_KIND.SERVER);
    expect(span!.parentSpanId).to.equal(ctx.spanId);
    expect(span!.attributes['rpc.method']).to.equal('Ingest');
  });

  it('does not trace health checks (they would bury real traces)', async () => {
    // waitForHealth in `before` made several Check calls; a later GetOrder proves the exporter flushed since.
    const ctx = newTraceparent();
    await getOrder(client, 'o-otlp-4', metadataWith(ctx.header));
    await receiver.waitFor((s) => s.traceId === ctx.traceId, 10_000);
    expect(receiver.spans.filter((s) => s.name.startsWith('grpc.grpc.health'))).to.deep.equal([]);
  });

  // Spans of the traced pool (#3, src/db/pool-tracing.ts) and of the ingest
  // flush (#4, src/ingest/flush-writer.ts), as they arrive over the wire.
  describe('database spans (traced pool and ingest flush)', function () {
    const FILL = { order_id: 'otlp-o-1', account_id: 'otlp-acc', symbol: 'OTLP', side: 1 as const, price: '10.5', qty: '1', fee: '0', venue: 'XTST' };

    it('query spans are CLIENT spans named after the op, with db.system.name = postgresql and the SQL command as db.operation.name', async () => {
      // The health probe queries the database every 2 s.
      const [span] = await receiver.waitFor((s) => s.attributes['db.system.name'] !== undefined && s.attributes['db.operation.name'] === 'SELECT', 10_000);
      expect(span!.kind).to.equal(OTLP_SPAN_KIND.CLIENT);
      expect(span!.attributes['db.system.name']).to.equal('postgresql');
      expect(span!.attributes['db.query.summary']).to.equal(span!.name);
      expect(span!.attributes['db.namespace']).to.equal(new URL(db.url).pathname.slice(1));
      expect(span!.attributes['db.query.text']).to.match(/^\s*select/i);
    });

    it('an ingest flush produces an ingest.flush span and a fills.copy span (db.operation.name COPY) with the row count, under the flush', async () => {
      const ctx = newTraceparent();
      const events: Event[] = [1, 2, 3].map((seq) => ({ seq: String(seq), fill: { ...FILL, fill_id: `otlp-f-${seq}`, ts_ns: `170000000000000000${seq}` } }));
      await ingestHello(client, 'otlp-flush-source', metadataWith(ctx.header), events, 15_000);
      // The flush serves many streams, so it is a root span linked to the ingest.stream span of each.
      const [server] = await receiver.waitFor((s) => s.traceId === ctx.traceId && s.name === INGEST_SPAN, 15_000);
      const [stream] = await receiver.waitFor((s) => s.traceId === ctx.traceId && s.name === 'ingest.stream', 15_000);
      expect(stream!.parentSpanId).to.equal(server!.spanId);
      const [flush] = await receiver.waitFor(
        (s) => s.name === 'ingest.flush' && s.attributes['ingest.outcome'] === 'committed' && s.links.some((l) => l.spanId === stream!.spanId),
        15_000,
      );
      // int64 attributes arrive as decimal strings.
      expect(flush!.attributes['ingest.rows']).to.equal('3');
      expect(flush!.attributes['ingest.events']).to.equal('3');
      expect(Number(flush!.attributes['ingest.bytes'])).to.be.greaterThan(0);
      const [copy] = await receiver.waitFor((s) => s.traceId === flush!.traceId && s.parentSpanId === flush!.spanId && s.name === 'fills.copy', 15_000);
      expect(copy!.kind).to.equal(OTLP_SPAN_KIND.CLIENT);
      expect(copy!.attributes).to.include({ 'db.system.name': 'postgresql', 'db.operation.name': 'COPY', 'db.collection.name': 'fills', 'orderflow.db.rows': '3' });
      const children = receiver.spans.filter((s) => s.parentSpanId === flush!.spanId);
      expect(children.map((s) => s.name)).to.include.members(['ingest.flush.begin', 'fills.copy', 'ingest.flush.commit']);
      // The seal and COMMIT go as one message with inlined values; the span records only the statement's shape.
      const commit = children.find((s) => s.name === 'ingest.flush.commit')!;
      expect(commit.attributes['db.query.text']).to.match(/^SELECT orderflow_seal_window\(<source ids>.*\); COMMIT$/);
      expect(commit.attributes['db.query.text']).not.to.include('otlp-flush-source');
    });

    it('a flush that fails in the database is rolled back, and the rollback carries the SQLSTATE', async () => {
      // Injected for real: a trigger makes every insert into fills fail with 40001 until it is dropped.
      await withClient(db.url, async (c) => {
        await c.query(`CREATE FUNCTION otlp_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'injected by the OTLP test' USING ERRCODE = '40001'; END $$`);
        await c.query('CREATE TRIGGER otlp_test_fail BEFORE INSERT ON fills FOR EACH ROW EXECUTE FUNCTION otlp_test_fail()');
      });
      try {
        const events: Event[] = [{ seq: '1', fill: { ...FILL, order_id: 'otlp-o-2', fill_id: 'otlp-f-fail', ts_ns: '1700000000000000011' } }];
        const ingest = ingestHello(client, 'otlp-rollback-source', new grpc.Metadata(), events, 20_000);
        const [flush] = await receiver.waitFor((s) => s.name === 'ingest.flush' && s.attributes['ingest.outcome'] === 'rolled_back', 15_000);
        expect(flush!.attributes['db.response.status_code']).to.equal('40001');
        expect(flush!.status.code).to.equal(OTLP_STATUS_CODE.ERROR);
        const rollbackEvent = flush!.events.find((e) => e.name === 'rollback');
        expect(rollbackEvent?.attributes, 'a rollback event on the flush span').to.include({ 'db.response.status_code': '40001', 'error.type': '40001' });
        const [copy] = await receiver.waitFor((s) => s.parentSpanId === flush!.spanId && s.name === 'fills.copy', 15_000);
        expect(copy!.attributes['db.response.status_code']).to.equal('40001');
        expect(copy!.status.code).to.equal(OTLP_STATUS_CODE.ERROR);
        const [rollback] = await receiver.waitFor((s) => s.parentSpanId === flush!.spanId && s.name === 'ingest.flush.rollback', 15_000);
        expect(rollback!.attributes['db.operation.name']).to.equal('ROLLBACK');
        await withClient(db.url, (c) => c.query('DROP TRIGGER otlp_test_fail ON fills'));
        await ingest;
        // After the trigger is gone the retried flush commits the event.
        const stored = await withClient(db.url, (c) => c.query("SELECT count(*)::int AS n FROM fills WHERE fill_id = 'otlp-f-fail'"));
        expect(stored.rows[0].n).to.equal(1);
      } finally {
        await withClient(db.url, (c) => c.query('DROP TRIGGER IF EXISTS otlp_test_fail ON fills; DROP FUNCTION IF EXISTS otlp_test_fail()'));
      }
    });
  });
});

describe('span flush on SIGTERM (integration, real process)', function () {
  this.timeout(60_000);
  let receiver: OtlpReceiver;
  let db: TestDatabase;
  let proc: ServiceProcess | undefined;

  before(async () => {
    receiver = new OtlpReceiver();
    db = await createTestDatabase('otlp_sigterm');
  });
  after(async () => {
    await stop(proc);
    await receiver?.close();
    await db?.drop();
  });

  it('exports the spans of calls made just before SIGTERM, then exits 0', async () => {
    const endpoint = await receiver.start();
    // A batch delay far beyond the test: only the shutdown flush can deliver the spans.
    const started = await startTracedService(db, endpoint, { OTEL_BSP_SCHEDULE_DELAY: '600000' });
    proc = started.proc;
    const ctx = newTraceparent();
    await getOrder(started.client, 'o-sigterm', metadataWith(ctx.header));
    started.client.close();
    expect(receiver.spans.filter((s) => s.traceId === ctx.traceId)).to.deep.equal([]);

    proc.child.kill('SIGTERM');
    expect(await waitForExit(proc, 20_000)).to.equal(0);
    const spans = receiver.spans.filter((s) => s.traceId === ctx.traceId && s.name === GET_ORDER_SPAN);
    expect(spans.map((s) => s.parentSpanId)).to.deep.equal([ctx.spanId]);
  });
});

describe('collector down (integration, real process)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let proc: ServiceProcess | undefined;

  before(async () => {
    db = await createTestDatabase('otlp_down');
  });
  after(async () => {
    await stop(proc);
    await db?.drop();
  });

  it('keeps serving, logs a throttled warning (never an error) and still exits 0', async () => {
    // Injected for real: the endpoint is a free port nobody listens on.
    const deadEndpoint = `http://127.0.0.1:${await freePort()}`;
    const started = await startTracedService(db, deadEndpoint, { OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_EXPORTER_OTLP_TIMEOUT: '1000' });
    proc = started.proc;
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) {
      codes.push(await getOrder(started.client, `o-down-${i}`, new grpc.Metadata()));
      await new Promise((r) => setTimeout(r, 200));
    }
    started.client.close();
    expect(new Set(codes).size, 'calls keep being answered').to.equal(1);
    const deadline = Date.now() + 10_000;
    while (!proc.output().includes('span export failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    proc.child.kill('SIGTERM');
    expect(await waitForExit(proc, 20_000)).to.equal(0);
    const lines = proc.output().split('\n').filter((l) => l.startsWith('{'));
    const failures = lines.filter((l) => l.includes('span export failed'));
    expect(failures.length, 'one throttled warning').to.equal(1);
    expect(failures[0]).to.include('"level":"warn"');
    expect(lines.filter((l) => /"level":"(error|fatal)"/.test(l))).to.deep.equal([]);
  });
});
