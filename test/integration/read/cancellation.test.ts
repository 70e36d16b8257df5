import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import pg from 'pg';
import type { Order__Output } from '../../../src/generated/orderflow/v1/Order';
import { orderEvent } from '../../helpers/fake-ingest';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { call, ok, startReadHarness, waitFor, type ReadHarness } from './support';

/**
 * A slow query for real: a test session holds ACCESS EXCLUSIVE on
 * order_events, so the GetOrder query waits on the server (visible in
 * pg_stat_activity) until the lock is released or the query is cancelled.
 */
describe('read path cancellation (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let h: ReadHarness;
  let locker: pg.Client;
  let admin: pg.Client;

  before(async () => {
    db = await createTestDatabase('read_cancel');
    h = await startReadHarness(db.url);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await h?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
  });
  afterEach(async () => {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
  });

  const lockOrderEvents = async () => {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE order_events IN ACCESS EXCLUSIVE MODE');
  };
  const releaseLock = () => locker.query('COMMIT');
  /** GetOrder queries running (waiting on the lock) in this database. */
  const runningQueries = async () =>
    (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE '/* orders.get */%'`)).rows[0].n as number;

  it("a caller's deadline ends its call with DEADLINE_EXCEEDED and cancels the query on the server", async () => {
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'slow-1' })] });
    await lockOrderEvents();
    const slow = call<Order__Output>(h.client, 'GetOrder', { order_id: 'slow-1' }, 1_500);
    await waitFor(async () => (await runningQueries()) === 1, 5_000, 'the GetOrder query to wait on the lock');
    const { err } = await slow;
    expect(err?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    await waitFor(async () => (await runningQueries()) === 0, 5_000, 'the server to cancel the abandoned query');
    await releaseLock();
    // Nothing stale or broken was left behind: the connection and the cache still serve.
    expect((await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'slow-1' })).order_id).to.equal('slow-1');
  });

  it('a client cancel ends the call with CANCELLED and cancels the query', async () => {
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'slow-2' })] });
    await lockOrderEvents();
    let status: grpc.status | undefined;
    const pending = h.client.GetOrder({ order_id: 'slow-2' }, (err) => (status = err?.code));
    await waitFor(async () => (await runningQueries()) === 1, 5_000, 'the GetOrder query to wait on the lock');
    pending.cancel();
    await waitFor(() => status !== undefined, 5_000, 'the call to end');
    expect(status).to.equal(grpc.status.CANCELLED);
    await waitFor(async () => (await runningQueries()) === 0, 5_000, 'the server to cancel the abandoned query');
  });

  it('one caller leaving does not cancel a query another caller still waits for', async () => {
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'slow-3', qty: '7' })] });
    await lockOrderEvents();
    const impatient = call<Order__Output>(h.client, 'GetOrder', { order_id: 'slow-3' }, 1_000);
    const patient = call<Order__Output>(h.client, 'GetOrder', { order_id: 'slow-3' }, 30_000);
    await waitFor(async () => (await runningQueries()) === 1, 5_000, 'the shared GetOrder query to wait on the lock');
    expect((await impatient).err?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await runningQueries(), 'the shared query still runs for the patient caller').to.equal(1);
    await releaseLock();
    const { err, res } = await patient;
    expect(err).to.equal(null);
    expect(res?.qty).to.equal('7');
  });
});
