import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import pg from 'pg';
import type { Order__Output } from '../../../src/generated/orderflow/v1/Order';
import type { Position__Output } from '../../../src/generated/orderflow/v1/Position';
import { registry } from '../../../src/telemetry/metrics';
import { fill, orderEvent } from '../../helpers/fake-ingest';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { call, ok, startReadHarness, waitFor, type ReadHarness } from './support';

async function shedCount(operation: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'orderflow_read_queries_shed_total');
  const value = (metric?.values as { labels: Record<string, string>; value: number }[] | undefined)?.find((v) => v.labels.operation === operation);
  return value?.value ?? 0;
}

/**
 * READ_MAX_IN_FLIGHT for real: a test session holds ACCESS EXCLUSIVE on
 * fills, so GetPosition queries wait on the server. With a limit of 2, two
 * wait and the third is refused at once with RESOURCE_EXHAUSTED; reads that
 * need no query (cache hits) and ingest flushes are not limited.
 */
describe('read path admission limit (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let h: ReadHarness;
  let locker: pg.Client;
  let admin: pg.Client;

  before(async () => {
    db = await createTestDatabase('read_admission');
    h = await startReadHarness(db.url, { READ_MAX_IN_FLIGHT: '2' });
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
  });
  after(async () => {
    await locker?.query('ROLLBACK').catch(() => undefined);
    await locker?.end();
    await admin?.end();
    await h?.close();
    await db?.drop();
  });

  const waiting = async () =>
    (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE '/* positions.get */%'`)).rows[0]
      .n as number;

  it('refuses the read beyond the limit at once, serves the admitted ones, and leaves hits and ingest alone', async () => {
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'adm-1', account_id: 'acc-adm' })], fills: [fill({ fill_id: 'f-adm-1', order_id: 'adm-1', account_id: 'acc-adm', symbol: 'AAA', qty: '2' })] });
    // A cached order: its hit needs no query.
    expect((await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'adm-1' })).order_id).to.equal('adm-1');
    const shedBefore = await shedCount('positions.get');

    await locker.query('BEGIN');
    await locker.query('LOCK TABLE fills IN ACCESS EXCLUSIVE MODE');
    const first = call<Position__Output>(h.client, 'GetPosition', { account_id: 'acc-adm', symbol: 'AAA' });
    const second = call<Position__Output>(h.client, 'GetPosition', { account_id: 'acc-adm', symbol: 'BBB' });
    await waitFor(async () => (await waiting()) === 2, 5_000, 'two GetPosition queries to wait on the lock');

    const started = performance.now();
    const third = await call<Position__Output>(h.client, 'GetPosition', { account_id: 'acc-adm', symbol: 'CCC' });
    expect(third.err?.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    expect(third.err?.details).to.match(/READ_MAX_IN_FLIGHT/);
    expect(third.err?.metadata.get('orderflow-error-code')).to.deep.equal(['OVERLOADED']);
    // Refused, not queued: it did not wait for the lock (which is still held).
    expect(performance.now() - started).to.be.below(2_000);
    expect(await shedCount('positions.get')).to.equal(shedBefore + 1);

    // Not limited: a cache hit, and an ingest flush into order_events (not locked).
    expect((await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'adm-1' })).order_id).to.equal('adm-1');
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'adm-2', account_id: 'acc-adm' })] });
    expect(await waiting()).to.equal(2);

    await locker.query('COMMIT');
    const [a, b] = await Promise.all([first, second]);
    expect(a.err).to.equal(null);
    expect(a.res).to.include({ account_id: 'acc-adm', symbol: 'AAA', net_qty: '2' });
    expect(b.err).to.equal(null);
    expect(b.res).to.include({ symbol: 'BBB', fill_count: 0 });
    // The slots are free again.
    expect((await ok<Position__Output>(h.client, 'GetPosition', { account_id: 'acc-adm', symbol: 'CCC' })).fill_count).to.equal(0);
    expect(h.app.readPath.queries.inFlight).to.equal(0);
  });
});
