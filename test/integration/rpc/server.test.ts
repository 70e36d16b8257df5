import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { App } from '../../../src/app';
import { EmbeddedPostgres } from '../../../src/db/embedded';
import { HealthReporter } from '../../../src/rpc/health';
import { GrpcServer } from '../../../src/rpc/server';
import { silentLogger } from '../../../src/telemetry/logger';
import { startTestApp } from '../../helpers/app';
import { checkHealth, healthClient, listServicesByReflection, orderFlowClient, waitForHealth } from '../../helpers/grpc';
import { createTestDatabase, freePort, tempDir, type TestDatabase } from '../../helpers/postgres';

describe('rpc/server (integration)', () => {
  let db: TestDatabase;
  let app: App;

  before(async () => {
    db = await createTestDatabase('server');
    app = await startTestApp(db.url);
  });
  after(async () => {
    await app?.close();
    await db?.drop();
  });

  it('reports SERVING for the server and for orderflow.v1.OrderFlow', async () => {
    expect(await checkHealth(app.grpcPort, '')).to.equal('SERVING');
    expect(await checkHealth(app.grpcPort, 'orderflow.v1.OrderFlow')).to.equal('SERVING');
    expect(await checkHealth(app.grpcPort, 'no.such.Service')).to.equal('ERROR:NOT_FOUND');
  });

  for (const version of ['v1', 'v1alpha'] as const) {
    it(`lists OrderFlow and Health through reflection ${version}`, async () => {
      const services = await listServicesByReflection(app.grpcPort, version);
      expect(services).to.include.members(['orderflow.v1.OrderFlow', 'grpc.health.v1.Health']);
    });
  }

  it('answers an RPC without a handler with UNIMPLEMENTED', async () => {
    // Every RPC of the service is built now, so a server with no handlers stands in.
    const health = new HealthReporter({ probe: async () => undefined, intervalMs: 60_000, logger: silentLogger });
    const bare = new GrpcServer({ address: { host: '127.0.0.1', port: 0 }, handlers: {}, health, logger: silentLogger, maxMessageBytes: 4 * 1024 * 1024 });
    const port = await bare.start();
    const client = orderFlowClient(port);
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.BustFills({ fill_ids: ['f'], reason: 'x' }, (e) => resolve(e)));
      expect(err?.code).to.equal(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
      health.shutdown();
      await bare.close(1_000);
    }
  });

  it('two instances start at once on one database', async () => {
    const other = await createTestDatabase('server_pair');
    const pair = await Promise.all([startTestApp(other.url), startTestApp(other.url)]);
    try {
      for (const instance of pair) expect(await checkHealth(instance.grpcPort)).to.equal('SERVING');
    } finally {
      await Promise.all(pair.map((a) => a.close()));
      await other.drop();
    }
  });
});

describe('rpc/health transitions (integration)', function () {
  this.timeout(120_000);
  let embedded: EmbeddedPostgres;
  let app: App | undefined;

  before(async () => {
    embedded = new EmbeddedPostgres({ dataDir: await tempDir('health-pg'), port: await freePort(), logger: silentLogger });
  });
  after(async () => {
    await app?.close();
    await embedded.stop();
  });

  it('goes NOT_SERVING when the database stops, SERVING when it is back, NOT_SERVING during shutdown', async () => {
    const url = await embedded.start();
    app = await startTestApp(url);
    expect(await checkHealth(app.grpcPort)).to.equal('SERVING');

    await embedded.crash();
    expect(await waitForHealth(app.grpcPort, 'NOT_SERVING', 15_000)).to.equal('NOT_SERVING');

    await embedded.restart();
    expect(await waitForHealth(app.grpcPort, 'SERVING', 15_000)).to.equal('SERVING');

    // Watch the status while shutting down: the watcher sees NOT_SERVING before the server goes away.
    const watcher = healthClient(app.grpcPort);
    const seen: string[] = [];
    const call = watcher.Watch({ service: '' });
    call.on('data', (m: { status: string | number }) => seen.push(String(m.status)));
    call.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const closing = app.close();
    await closing;
    watcher.close();
    expect(seen[0]).to.equal('SERVING');
    expect(seen).to.include('NOT_SERVING');
    app = undefined;
  });
});
