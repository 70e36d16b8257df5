import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Event } from '../../../src/generated/orderflow/v1/Event';
import type { OrderFlowClient } from '../../../src/generated/orderflow/v1/OrderFlow';
import { orderFlowClient, waitForHealth } from '../../helpers/grpc';
import { OTLP_SPAN_KIND, OtlpReceiver, type ReceivedSpan } from '../../helpers/otlp-receiver';
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

  // The pool (#3) and ingest (#4) make these spans; on a branch without them
  // no db span ever arrives and the block skips itself (see the report).
  describe('database spans (need the traced pool and ingest flush)', function () {
    let dbSpans: ReceivedSpan[] = [];

    before(async function () {
      // The health probe queries the database every 2 s, so a traced pool has spans within a few seconds.
      try {
        dbSpans = await receiver.waitFor((s) => s.attributes['db.system.name'] !== undefined, 3_000);
      } catch {
        dbSpans = [];
      }
      if (dbSpans.length === 0) this.skip();
    });

    it('query spans carry db.system.name = postgresql and a db.operation.name', () => {
      const span = dbSpans[0]!;
      expect(span.attributes['db.system.name']).to.equal('postgresql');
      expect(span.attributes['db.operation.name']).to.be.a('string').and.not.equal('');
    });

    it('an ingest flush produces a flush span and a COPY span with the row count', async () => {
      const ctx = newTraceparent();
      const events: Event[] = [1, 2, 3].map((seq) => ({
        seq: String(seq),
        fill: { fill_id: `otlp-f-${seq}`, order_id: 'otlp-o-1', account_id: 'otlp-acc', symbol: 'OTLP', side: 1, price: '10.5', qty: '1', ts_ns: '1700000000000000000', fee: '0', venue: 'XTST' },
      }));
      await ingestHello(client, 'otlp-flush-source', metadataWith(ctx.header), events, 15_000);
      const copySpans = await receiver.waitFor((s) => /copy/i.test(s.name) || s.attributes['db.operation.name'] === 'COPY', 15_000);
      const rowCounts = copySpans.flatMap((s) => Object.entries(s.attributes).filter(([key, value]) => /rows/i.test(key) && Number(value) >= 3));
      expect(rowCounts, 'a COPY span with a row-count attribute of at least 3').to.not.deep.equal([]);
      const flushSpans = await receiver.waitFor((s) => /flush/i.test(s.name), 15_000);
      expect(flushSpans.length).to.be.greaterThan(0);
    });

    it('a flush that fails in the database is rolled back, and the rollback carries the SQLSTATE', async () => {
      // Injected for real: a trigger makes every insert into fills fail with 40001 until it is dropped.
      await withClient(db.url, async (c) => {
        await c.query(`CREATE FUNCTION otlp_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'injected by the OTLP test' USING ERRCODE = '40001'; END $$`);
        await c.query('CREATE TRIGGER otlp_test_fail BEFORE INSERT ON fills FOR EACH ROW EXECUTE FUNCTION otlp_test_fail()');
      });
      try {
        const events: Event[] = [{ seq: '1', fill: { fill_id: 'otlp-f-fail', order_id: 'otlp-o-2', account_id: 'otlp-acc', symbol: 'OTLP', side: 1, price: '10.5', qty: '1', ts_ns: '1700000000000000001', fee: '0', venue: 'XTST' } }];
        const ingest = ingestHello(client, 'otlp-rollback-source', new grpc.Metadata(), events, 20_000);
        const failed = await receiver.waitFor((s) => Object.values(s.attributes).includes('40001') || s.events.some((e) => Object.values(e.attributes).includes('40001')), 15_000);
        const rollback = receiver.spans.filter((s) => /rollback/i.test(s.name) || s.events.some((e) => /rollback/i.test(e.name)) || Object.values(s.attributes).some((v) => /rollback/i.test(String(v))));
        expect(failed.length, 'a span carrying SQLSTATE 40001').to.be.greaterThan(0);
        expect(rollback.length, 'a rollback span or event').to.be.greaterThan(0);
        await withClient(db.url, (c) => c.query('DROP TRIGGER otlp_test_fail ON fills'));
        await ingest;
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
