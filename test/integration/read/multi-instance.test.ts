import { expect } from 'chai';
import type { Order__Output } from '../../../src/generated/orderflow/v1/Order';
import { fill, orderEvent } from '../../helpers/fake-ingest';
import { adminUrl, createTestDatabase, withAdmin, withClient, type TestDatabase } from '../../helpers/postgres';
import { ok, startReadHarness, waitFor, type ReadHarness } from './support';

/** Two service instances on one database: invalidations travel by NOTIFY from A's flush to B's cache. */
describe('read path across instances (integration)', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let a: ReadHarness;
  let b: ReadHarness;

  before(async () => {
    db = await createTestDatabase('read_multi');
    [a, b] = await Promise.all([startReadHarness(db.url), startReadHarness(db.url)]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await db?.drop();
  });

  const getOnB = (orderId: string) => ok<Order__Output>(b.client, 'GetOrder', { order_id: orderId });

  /** Ingests one fill through A; resolves with ms from A's ack until B's (warm) cache shows it. */
  async function visibleOnBAfterMs(orderId: string, fillId: string, wantFilled: string): Promise<number> {
    await a.ingest.flush({ fills: [fill({ fill_id: fillId, order_id: orderId, qty: '1' })] });
    const ackedAt = performance.now();
    await waitFor(async () => (await getOnB(orderId)).filled_qty === wantFilled, 5_000, `B to show fill ${fillId}`);
    return performance.now() - ackedAt;
  }

  it("a fill acked through A is visible through B's cache shortly after (distribution logged)", async () => {
    await a.ingest.flush({ orders: [orderEvent({ order_id: 'mi-1', qty: '1000' })] });
    await getOnB('mi-1');
    const bQueriesBefore = b.app.readPath.queries.count('orders.get');
    const latenciesMs: number[] = [];
    for (let round = 1; round <= 30; round++) {
      latenciesMs.push(await visibleOnBAfterMs('mi-1', `mi-1-f${round}`, String(round)));
      // Repeated reads on B are hits again: B cached the new state.
      expect((await getOnB('mi-1')).filled_qty).to.equal(String(round));
    }
    latenciesMs.sort((x, y) => x - y);
    const q = (p: number) => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(p * latenciesMs.length))]!.toFixed(1);
    console.log(`      A ack → visible on B, ms over 30 rounds: p50 ${q(0.5)}, p90 ${q(0.9)}, max ${q(1)} (target 100)`);
    // Loose bound: wall-clock speed belongs to benchmarks; this only catches a lost notification.
    expect(latenciesMs[latenciesMs.length - 1]).to.be.below(2_000);
    // B's cache served: far fewer queries than reads.
    expect(b.app.readPath.queries.count('orders.get') - bQueriesBefore).to.be.at.most(30 * 3);
  });

  it('an oversized change set is sent as "drop everything"', async () => {
    await a.ingest.flush({ orders: [orderEvent({ order_id: 'mi-bystander' })] });
    await getOnB('mi-bystander');
    await getOnB('mi-bystander');
    const before = b.app.readPath.queries.count('orders.get');
    // 600 ids of ~40 bytes do not fit in one 8,000-byte NOTIFY.
    const many = Array.from({ length: 600 }, (_, i) => orderEvent({ order_id: `mi-bulk-${String(i).padStart(4, '0')}-${'x'.repeat(24)}` }));
    await a.ingest.flush({ orders: many });
    await waitFor(async () => (await getOnB('mi-bystander'), b.app.readPath.queries.count('orders.get') > before), 5_000, "B to drop its cache (the bystander's next read is a miss)");
  });

  it('when B loses its LISTEN connection it clears its cache, reads from the database meanwhile, and reconnects', async () => {
    await a.ingest.flush({ orders: [orderEvent({ order_id: 'mi-2', qty: '1000' })] });
    await getOnB('mi-2');
    await getOnB('mi-2');
    expect(b.app.readPath.cache.size).to.be.greaterThan(0);
    const listener = b.app.readPath.listener;
    const oldPid = listener.processId!;
    await withClient(db.url, (c) => c.query('SELECT pg_terminate_backend($1)', [oldPid]));
    await waitFor(() => listener.processId !== oldPid || listener.state !== 'LISTENING', 5_000, 'B to notice the lost connection');
    // Whether or not it is back yet, B must not answer from a cache that missed notifications.
    await a.ingest.flush({ fills: [fill({ fill_id: 'mi-2-f1', order_id: 'mi-2', qty: '1' })] });
    expect((await getOnB('mi-2')).filled_qty).to.equal('1');
    await waitFor(() => listener.state === 'LISTENING' && listener.processId !== oldPid, 10_000, 'B to listen again on a new connection');
    const { rows } = await withClient(db.url, (c) => c.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'orderflow-listener' AND query LIKE 'LISTEN%'"));
    expect(rows.map((r) => r.pid as number)).to.include(listener.processId);
    // And the cache works across instances again.
    await getOnB('mi-2');
    expect(await visibleOnBAfterMs('mi-2', 'mi-2-f2', '2')).to.be.below(2_000);
  });

  it('while the listener cannot reconnect, B stores nothing and reads every time from the database', async () => {
    await a.ingest.flush({ orders: [orderEvent({ order_id: 'mi-3', qty: '1000' })] });
    await getOnB('mi-3');
    const listener = b.app.readPath.listener;
    const cache = b.app.readPath.cache;
    // New connections to the database are refused (superusers too); pooled ones stay up.
    await withAdmin(adminUrl(), (c) => c.query(`ALTER DATABASE ${c.escapeIdentifier(db.name)} ALLOW_CONNECTIONS false`));
    try {
      await terminateThroughA(listener.processId!);
      await waitFor(() => listener.state === 'RECONNECTING', 5_000, 'B to notice the lost connection');
      expect(cache.state).to.equal('SUSPENDED');
      await new Promise((resolve) => setTimeout(resolve, 300)); // a reconnect attempt or two fail meanwhile
      expect(listener.state).to.equal('RECONNECTING');
      const before = b.app.readPath.queries.count('orders.get');
      await a.ingest.flush({ fills: [fill({ fill_id: 'mi-3-f1', order_id: 'mi-3', qty: '1' })] });
      expect((await getOnB('mi-3')).filled_qty).to.equal('1');
      expect((await getOnB('mi-3')).filled_qty).to.equal('1');
      expect(b.app.readPath.queries.count('orders.get') - before, 'no read was answered from the cache').to.equal(2);
      expect(cache.size).to.equal(0);
    } finally {
      await withAdmin(adminUrl(), (c) => c.query(`ALTER DATABASE ${c.escapeIdentifier(db.name)} ALLOW_CONNECTIONS true`));
    }
    await waitFor(() => listener.state === 'LISTENING', 15_000, 'B to listen again');
    expect(cache.state).to.equal('RUNNING');
    await getOnB('mi-3');
    expect(await visibleOnBAfterMs('mi-3', 'mi-3-f2', '2')).to.be.below(2_000);
  });

  /** Terminates a backend from a pooled connection of A (new connections are refused in that test). */
  async function terminateThroughA(pid: number): Promise<void> {
    await a.app.pool.query('test.terminate', 'SELECT pg_terminate_backend($1)', [pid]);
  }
});
