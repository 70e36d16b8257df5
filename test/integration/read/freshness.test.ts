import { expect } from 'chai';
import type { Counter } from 'prom-client';
import { cacheMetrics } from '../../../src/db/cache-metrics';
import type { ListFillsResponse__Output } from '../../../src/generated/orderflow/v1/ListFillsResponse';
import type { Order__Output } from '../../../src/generated/orderflow/v1/Order';
import type { Position__Output } from '../../../src/generated/orderflow/v1/Position';
import { fill, orderEvent } from '../../helpers/fake-ingest';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { ok, startReadHarness, waitFor, type ReadHarness } from './support';

async function total(counter: Counter<string>): Promise<number> {
  return (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** `count` fills of distinct other orders, accounts and symbols. */
function bystanderFills(prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => fill({ fill_id: `${prefix}-f${i}`, order_id: `${prefix}-order-${String(i).padStart(5, '0')}`, account_id: `${prefix}-acct-${i % 50}`, symbol: `S${i % 7}` }));
}

describe('read path freshness (integration)', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let h: ReadHarness;

  before(async () => {
    db = await createTestDatabase('read_fresh');
    h = await startReadHarness(db.url);
  });
  after(async () => {
    await h?.close();
    await db?.drop();
  });

  it('read-your-writes: 200 rounds of read → ingest one fill → ack → read, with the cache warm', async () => {
    const orderId = 'ryw-1';
    await h.ingest.flush({ orders: [orderEvent({ order_id: orderId, account_id: 'acct-ryw', symbol: 'RYW', qty: '1000' })] });
    const read = async () => ({
      order: await ok<Order__Output>(h.client, 'GetOrder', { order_id: orderId }),
      position: await ok<Position__Output>(h.client, 'GetPosition', { account_id: 'acct-ryw', symbol: 'RYW' }),
      fills: await ok<ListFillsResponse__Output>(h.client, 'ListFills', { order_id: orderId, page_size: 1 }),
    });
    await read();
    const queriesBefore = h.app.readPath.queries.count('orders.get');
    for (let round = 1; round <= 200; round++) {
      const before = await read();
      expect(before.order.filled_qty).to.equal(String(round - 1));
      await h.ingest.flush({ fills: [fill({ fill_id: `ryw-f${round}`, order_id: orderId, account_id: 'acct-ryw', symbol: 'RYW', qty: '1' })] });
      // flush() resolved: afterCommit has run, the ack would be on the wire now.
      const after = await read();
      expect(after.order.filled_qty, `round ${round}: GetOrder`).to.equal(String(round));
      expect(after.position.fill_count, `round ${round}: GetPosition`).to.equal(round);
      expect(after.fills.fills[0]!.fill!.fill_id, `round ${round}: ListFills`).to.equal(`ryw-f${round}`);
    }
    // One query per round: every first read was a cache hit (the cache was warm), every second a miss.
    expect(h.app.readPath.queries.count('orders.get') - queriesBefore).to.equal(200);
  });

  describe('the race: a slowed miss overlapping an ingest', () => {
    /** Holds the next fetch of `kind` after its query ran, until released. */
    function slowNextFetch(kind: string): { reached: Promise<void>; release: () => void } {
      let release!: () => void;
      let signalReached!: () => void;
      const reached = new Promise<void>((resolve) => (signalReached = resolve));
      const gate = new Promise<void>((resolve) => (release = resolve));
      let armed = true;
      h.app.readPath.cache.setAfterFetchHook(async (k) => {
        if (k !== kind || !armed) return;
        armed = false;
        signalReached();
        await gate;
      });
      return { reached, release };
    }

    afterEach(() => h.app.readPath.cache.setAfterFetchHook(undefined));

    for (const oversized of [false, true]) for (const readInBetween of [false, true]) {
      const variant = `${readInBetween ? ' (and a read after the ack does not join the older fetch)' : ''}${oversized ? ', when the flush is too large to keep its ids' : ''}`;
      it(`never leaves the older state cached${variant}`, async () => {
        const orderId = `race-${readInBetween}-${oversized}`;
        await h.ingest.flush({ orders: [orderEvent({ order_id: orderId, qty: '10' })], fills: [fill({ fill_id: `${orderId}-f1`, order_id: orderId, qty: '1' })] });
        const stalePreventedBefore = await total(cacheMetrics.stalePrevented);

        const slow = slowNextFetch('order');
        const early = ok<Order__Output>(h.client, 'GetOrder', { order_id: orderId });
        await slow.reached; // the miss has read the database: one fill
        const others = oversized ? bystanderFills(`${orderId}-other`, 600) : [];
        await h.ingest.flush({ fills: [...others, fill({ fill_id: `${orderId}-f2`, order_id: orderId, qty: '1' })] }); // acked
        if (readInBetween) {
          const afterAck = await ok<Order__Output>(h.client, 'GetOrder', { order_id: orderId });
          expect(afterAck.filled_qty, 'a read after the ack sees the new fill').to.equal('2');
        }
        slow.release();
        expect((await early).filled_qty, 'the read that began before the ack may answer the older state').to.equal('1');

        for (let i = 0; i < 3; i++) {
          expect((await ok<Order__Output>(h.client, 'GetOrder', { order_id: orderId })).filled_qty).to.equal('2');
        }
        expect((await total(cacheMetrics.stalePrevented)) - stalePreventedBefore).to.equal(1);
      });
    }
  });

  it('a flush too large to keep its ids invalidates exactly the entries it touched', async () => {
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'big-touched', account_id: 'acct-big', symbol: 'BIG' }), orderEvent({ order_id: 'big-untouched', account_id: 'acct-big', symbol: 'BIG' })] });
    const read = async () => ({
      touched: await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'big-touched' }),
      untouched: await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'big-untouched' }),
      position: await ok<Position__Output>(h.client, 'GetPosition', { account_id: 'acct-big', symbol: 'BIG' }),
    });
    await read();
    const queriesBefore = h.app.readPath.queries.count('orders.get');
    const positionsBefore = h.app.readPath.queries.count('positions.get');
    // 600 orders of ~30 bytes: more ids than one NOTIFY carries, so none are kept, only their hashes.
    await h.ingest.flush({ fills: [...bystanderFills('big-other', 600), fill({ fill_id: 'big-f1', order_id: 'big-touched', account_id: 'acct-big', symbol: 'BIG', qty: '7' })] });
    const after = await read();
    expect(after.touched.filled_qty).to.equal('7');
    expect(after.position.net_qty).to.equal('7');
    expect(after.untouched.filled_qty).to.equal('0');
    // The touched order and the position were read again; the untouched order stayed cached.
    expect(h.app.readPath.queries.count('orders.get') - queriesBefore).to.equal(1);
    expect(h.app.readPath.queries.count('positions.get') - positionsBefore).to.equal(1);
  });

  it('100 concurrent GetOrder calls for one cold order run exactly one database query', async () => {
    const orderId = 'cold-1';
    await h.ingest.flush({ orders: [orderEvent({ order_id: orderId })] });
    const cache = h.app.readPath.cache;
    const coalescedBefore = await total(cacheMetrics.coalesced);
    // Hold the one fetch until all 100 calls have arrived, so every one of them is a miss or a coalesced wait.
    cache.setAfterFetchHook(() => waitFor(async () => (await total(cacheMetrics.coalesced)) - coalescedBefore >= 99, 10_000, '99 coalesced waits'));
    try {
      const queriesBefore = h.app.readPath.queries.count('orders.get');
      const results = await Promise.all(Array.from({ length: 100 }, () => ok<Order__Output>(h.client, 'GetOrder', { order_id: orderId })));
      expect(h.app.readPath.queries.count('orders.get') - queriesBefore).to.equal(1);
      expect(new Set(results.map((r) => JSON.stringify(r))).size).to.equal(1);
      expect((await total(cacheMetrics.coalesced)) - coalescedBefore).to.equal(99);
    } finally {
      cache.setAfterFetchHook(undefined);
    }
  });
});
