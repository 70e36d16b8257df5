import { expect } from 'chai';
import { QueryCache } from '../../../src/db/cache';
import { InvalidationListener } from '../../../src/store/invalidation';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, freePort, withClient, type TestDatabase } from '../../helpers/postgres';
import { startReadHarness, waitFor } from './support';

describe('invalidation listener life cycle (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase('read_listener');
  });
  after(async () => {
    await db?.drop();
  });

  const listenerBackends = async () =>
    (await withClient(db.url, (c) => c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'orderflow-listener'"))).rows[0].n as number;

  it('an App closes its LISTEN connection on shutdown; close is idempotent', async () => {
    const h = await startReadHarness(db.url);
    expect(await listenerBackends()).to.equal(1);
    const listener = h.app.readPath.listener;
    await h.close();
    await Promise.all([listener.close(), listener.close(), h.app.readPath.close()]);
    expect(listener.state).to.equal('CLOSED');
    expect(h.app.readPath.state).to.equal('CLOSED');
    expect(h.app.readPath.cache.state).to.equal('CLOSED');
    await waitFor(async () => (await listenerBackends()) === 0, 5_000, 'the LISTEN connection to end');
  });

  it('keeps retrying an unreachable database with the cache suspended, and stops for good on close', async () => {
    const cache = new QueryCache({ maxEntries: 10, maxBytes: 10_000, ttlMs: 1_000, logger: silentLogger });
    const listener = new InvalidationListener({
      connectionString: `postgres://nobody:x@127.0.0.1:${await freePort()}/none`,
      cache,
      instanceId: 'test',
      logger: silentLogger,
      applicationName: 'orderflow-listener-test',
      reconnectBaseMs: 10,
      reconnectMaxMs: 50,
      timeoutMs: 500,
    });
    await listener.start(); // never rejects
    expect(listener.state).to.equal('RECONNECTING');
    expect(cache.state).to.equal('SUSPENDED');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(listener.state).to.equal('RECONNECTING');
    await Promise.all([listener.close(), listener.close()]);
    expect(listener.state).to.equal('CLOSED');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(listener.state, 'no reconnect after close').to.equal('CLOSED');
    await cache.close();
  });
});
