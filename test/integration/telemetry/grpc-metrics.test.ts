import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { App } from '../../../src/app';
import type { OrderFlowClient } from '../../../src/generated/orderflow/v1/OrderFlow';
import { registry } from '../../../src/telemetry/metrics';
import { startTestApp } from '../../helpers/app';
import { orderFlowClient } from '../../helpers/grpc';
import { createTestDatabase, withAdmin, adminUrl, type TestDatabase } from '../../helpers/postgres';

/** Current value of a labelled counter/gauge in the process registry (0 when the series does not exist). */
async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

async function eventually(fn: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

describe('gRPC call metrics and database_up (integration, in-process)', function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let app: App | undefined;
  let client: OrderFlowClient;

  before(async () => {
    db = await createTestDatabase('grpc_metrics');
    app = await startTestApp(db.url);
    client = orderFlowClient(app.grpcPort);
  });
  after(async () => {
    client?.close();
    await app?.close();
    await db?.drop();
  });

  // grpc-js reports the client's RST_STREAM as a half-close first, which the
  // Ingest service answers with OK; the interceptor must still see CANCELLED.
  it('counts a stream the client cancels as CANCELLED, once', async () => {
    const labels = { method: 'Ingest', code: 'CANCELLED' };
    const before = await metricValue('orderflow_grpc_server_handled_total', labels);
    const call = client.Ingest();
    call.on('error', () => undefined);
    // An established stream (Hello answered by Welcome) that the client then cancels.
    const welcomed = new Promise<void>((resolve) => call.on('data', (m: { welcome?: unknown }) => m.welcome && resolve()));
    call.write({ hello: { source_id: 'metrics-cancel' } });
    await welcomed;
    call.cancel();
    expect(await eventually(async () => (await metricValue('orderflow_grpc_server_handled_total', labels)) === before + 1, 5_000)).to.equal(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(await metricValue('orderflow_grpc_server_handled_total', labels)).to.equal(before + 1);
  });

  it('counts a stream the client half-closes as OK, once, and not as CANCELLED', async () => {
    const ok = { method: 'Ingest', code: 'OK' };
    const cancelled = { method: 'Ingest', code: 'CANCELLED' };
    const [okBefore, cancelledBefore] = [await metricValue('orderflow_grpc_server_handled_total', ok), await metricValue('orderflow_grpc_server_handled_total', cancelled)];
    const status = await new Promise<number>((resolve) => {
      const call = client.Ingest();
      call.on('error', (err: grpc.ServiceError) => resolve(err.code));
      call.on('status', (st: grpc.StatusObject) => resolve(st.code));
      call.on('data', (m: { welcome?: unknown }) => {
        if (m.welcome) call.end();
      });
      call.write({ hello: { source_id: 'metrics-half-close' } });
    });
    expect(status).to.equal(grpc.status.OK);
    expect(await eventually(async () => (await metricValue('orderflow_grpc_server_handled_total', ok)) === okBefore + 1, 5_000)).to.equal(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(await metricValue('orderflow_grpc_server_handled_total', ok)).to.equal(okBefore + 1);
    expect(await metricValue('orderflow_grpc_server_handled_total', cancelled)).to.equal(cancelledBefore);
  });

  it('counts a call whose deadline expires as DEADLINE_EXCEEDED', async () => {
    const labels = { method: 'Ingest', code: 'DEADLINE_EXCEEDED' };
    const before = await metricValue('orderflow_grpc_server_handled_total', labels);
    const status = await new Promise<number>((resolve) => {
      // A stream that never says hello is never answered: only the deadline ends it.
      const call = client.Ingest({ deadline: Date.now() + 300 });
      call.on('error', (err: grpc.ServiceError) => resolve(err.code));
    });
    expect(status).to.equal(grpc.status.DEADLINE_EXCEEDED);
    expect(await eventually(async () => (await metricValue('orderflow_grpc_server_handled_total', labels)) === before + 1, 5_000)).to.equal(true);
  });

  it('orderflow_database_up goes 0 when the database disappears (dropped for real)', async () => {
    expect(await metricValue('orderflow_database_up')).to.equal(1);
    // Terminates every session and makes new connections fail: the health probe (every 2 s) fails.
    await withAdmin(adminUrl(), (c) => c.query(`DROP DATABASE ${c.escapeIdentifier(db.name)} WITH (FORCE)`));
    expect(await eventually(async () => (await metricValue('orderflow_database_up')) === 0, 10_000)).to.equal(true);
  });
});
