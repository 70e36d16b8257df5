import { expect } from 'chai';
import type { BatchGetOrdersResponse__Output } from '../../../src/generated/orderflow/v1/BatchGetOrdersResponse';
import { ORDER_STATE_CHUNK_SIZE } from '../../../src/store/orders';
import { orderEvent } from '../../helpers/fake-ingest';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { ok, startReadHarness, type ReadHarness } from '../read/support';

/** BatchGetOrders cache misses go through the batch module in chunks of ORDER_STATE_CHUNK_SIZE. */
describe('BatchGetOrders through the batch select path (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let h: ReadHarness;

  before(async () => {
    db = await createTestDatabase('batch_get');
    h = await startReadHarness(db.url);
    await h.ingest.flush({ orders: Array.from({ length: 700 }, (_, i) => orderEvent({ order_id: `bg-${i}` })) });
  });
  after(async () => {
    await h?.close();
    await db?.drop();
  });

  it(`up to ${ORDER_STATE_CHUNK_SIZE} misses are one query`, async () => {
    const ids = Array.from({ length: ORDER_STATE_CHUNK_SIZE }, (_, i) => `bg-${i}`);
    const before = h.app.readPath.queries.count('orders.get');
    const res = await ok<BatchGetOrdersResponse__Output>(h.client, 'BatchGetOrders', { order_ids: ids });
    expect(res.orders.map((o) => o.order_id)).to.deep.equal(ids);
    expect(h.app.readPath.queries.count('orders.get') - before).to.equal(1);
  });

  it('1,000 ids (the most) are chunked; found and missing come back in request order', async () => {
    // 700 stored ids in reverse plus 300 unknown, interleaved; the first 500 stored are cached now.
    const ids: string[] = [];
    for (let i = 699; i >= 0; i--) {
      ids.push(`bg-${i}`);
      if (i % 7 === 0 && ids.length < 1_000) ids.push(`unknown-${i}`);
    }
    while (ids.length < 1_000) ids.push(`unknown-extra-${ids.length}`);
    h.app.readPath.cache.invalidateAll('local');
    const before = h.app.readPath.queries.count('orders.get');
    const res = await ok<BatchGetOrdersResponse__Output>(h.client, 'BatchGetOrders', { order_ids: ids });
    expect(res.orders.map((o) => o.order_id)).to.deep.equal(ids.filter((id) => id.startsWith('bg-')));
    expect(res.missing).to.deep.equal(ids.filter((id) => id.startsWith('unknown')));
    expect(h.app.readPath.queries.count('orders.get') - before).to.equal(2);
  });
});
