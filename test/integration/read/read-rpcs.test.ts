import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { BatchGetOrdersResponse__Output } from '../../../src/generated/orderflow/v1/BatchGetOrdersResponse';
import type { ListFillsResponse__Output } from '../../../src/generated/orderflow/v1/ListFillsResponse';
import type { ListOrdersResponse__Output } from '../../../src/generated/orderflow/v1/ListOrdersResponse';
import type { Order__Output } from '../../../src/generated/orderflow/v1/Order';
import type { Position__Output } from '../../../src/generated/orderflow/v1/Position';
import { FakeIngest, fill, nextTsNs, orderEvent } from '../../helpers/fake-ingest';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';
import { call, ok, startReadHarness, type ReadHarness } from './support';

const NEW = 1;
const ACCEPTED = 2;
const PARTIALLY_FILLED = 3;
const FILLED = 4;
const CANCELED = 5;
const REJECTED = 6;
const EXPIRED = 7;
const EV = { NEW: 1, ACCEPTED: 2, REPLACED: 3, CANCELED: 4, REJECTED: 5, EXPIRED: 6 };

describe('read RPCs (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let h: ReadHarness;
  const getOrder = (order_id: string) => ok<Order__Output>(h.client, 'GetOrder', { order_id });

  before(async () => {
    db = await createTestDatabase('read_rpcs');
    h = await startReadHarness(db.url);
  });
  after(async () => {
    await h?.close();
    await db?.drop();
  });

  async function expectStatus(method: Parameters<typeof call>[1], request: object, code: grpc.status, field?: string): Promise<grpc.ServiceError> {
    const { err } = await call(h.client, method, request);
    expect(err, `${method} ${JSON.stringify(request).slice(0, 80)}`).to.not.equal(null);
    expect(grpc.status[err!.code]).to.equal(grpc.status[code]);
    if (field) expect(err!.metadata.get('orderflow-field')).to.deep.equal([field]);
    return err!;
  }

  describe('GetOrder', () => {
    it('folds events and fills into status, filled quantity, VWAP and times', async () => {
      const created = nextTsNs();
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'life-1', price: '10.50', qty: '3', ts_ns: created, client_order_id: 'c-1' })] });
      let o = await getOrder('life-1');
      expect(o).to.include({ order_id: 'life-1', client_order_id: 'c-1', account_id: 'acct-1', symbol: 'AAPL', side: 1, order_type: 2, time_in_force: 2 });
      expect(o).to.include({ status: NEW, price: '10.50', qty: '3', filled_qty: '0', avg_fill_price: '', created_ts_ns: created, updated_ts_ns: created });

      const accepted = nextTsNs();
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'life-1', event_type: EV.ACCEPTED, price: '10.50', qty: '3', ts_ns: accepted, client_order_id: 'c-1' })] });
      expect(await getOrder('life-1')).to.include({ status: ACCEPTED, created_ts_ns: created, updated_ts_ns: accepted });

      const f1 = nextTsNs();
      await h.ingest.flush({ fills: [fill({ fill_id: 'life-1-f1', order_id: 'life-1', qty: '1', price: '10.00000001', ts_ns: f1 })] });
      o = await getOrder('life-1');
      expect(o).to.include({ status: PARTIALLY_FILLED, filled_qty: '1', avg_fill_price: '10.00000001', updated_ts_ns: f1 });

      // VWAP = (10.00000001 * 1 + 10.00000002 * 2) / 3 = 10.0000000166… → rounded half up to 8 places.
      const f2 = nextTsNs();
      await h.ingest.flush({ fills: [fill({ fill_id: 'life-1-f2', order_id: 'life-1', qty: '2', price: '10.00000002', ts_ns: f2 })] });
      o = await getOrder('life-1');
      expect(o).to.include({ status: FILLED, filled_qty: '3', avg_fill_price: '10.00000002', created_ts_ns: created, updated_ts_ns: f2 });
    });

    it('keeps terminal statuses, with fills counted, unless the fills complete the order', async () => {
      const cases: [string, number, string, number][] = [
        ['term-cancel', EV.CANCELED, '4', CANCELED],
        ['term-reject', EV.REJECTED, '4', REJECTED],
        ['term-expire', EV.EXPIRED, '4', EXPIRED],
        ['term-cancel-raced', EV.CANCELED, '10', FILLED],
      ];
      for (const [id, eventType, filled, want] of cases) {
        await h.ingest.flush({ orders: [orderEvent({ order_id: id, qty: '10' })] });
        await h.ingest.flush({ fills: [fill({ fill_id: `${id}-f`, order_id: id, qty: filled })] });
        await h.ingest.flush({ orders: [orderEvent({ order_id: id, qty: '10', event_type: eventType })] });
        expect(await getOrder(id), id).to.include({ status: want, filled_qty: filled });
      }
    });

    it('takes price and quantity from the latest event (REPLACED) and compares fills with that quantity', async () => {
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'repl-1', qty: '10', price: '5' })], fills: [fill({ fill_id: 'repl-1-f', order_id: 'repl-1', qty: '6' })] });
      expect(await getOrder('repl-1')).to.include({ status: PARTIALLY_FILLED, qty: '10' });
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'repl-1', event_type: EV.REPLACED, qty: '6', price: '5.25' })] });
      expect(await getOrder('repl-1')).to.include({ status: FILLED, qty: '6', price: '5.25' });
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'repl-2', event_type: EV.REPLACED, qty: '6', price: '' })] });
      expect(await getOrder('repl-2')).to.include({ status: ACCEPTED, price: '' });
    });

    it('breaks a tie of event times by source id, then seq', async () => {
      const ts = nextTsNs();
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'tie-1', ts_ns: ts, event_type: EV.ACCEPTED }), orderEvent({ order_id: 'tie-1', ts_ns: ts, event_type: EV.CANCELED })] });
      expect((await getOrder('tie-1')).status, 'higher seq of one source wins').to.equal(CANCELED);
      const other = new FakeIngest(h.app.pool, h.app.flushHooks, 'a-source-sorting-first');
      await other.flush({ orders: [orderEvent({ order_id: 'tie-1', ts_ns: ts, event_type: EV.EXPIRED })] });
      expect((await getOrder('tie-1')).status, "'fake-ingest' > 'a-source…' wins the tie").to.equal(CANCELED);
    });

    it('answers NOT_FOUND for an order known only from its fills, then counts them once the order event arrives', async () => {
      await h.ingest.flush({ fills: [fill({ fill_id: 'early-f', order_id: 'early-1', qty: '4' })] });
      const err = await expectStatus('GetOrder', { order_id: 'early-1' }, grpc.status.NOT_FOUND);
      expect(err.details).to.equal('order not found: early-1');
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'early-1', qty: '10' })] });
      expect(await getOrder('early-1')).to.include({ status: PARTIALLY_FILLED, filled_qty: '4' });
    });

    it('round-trips unicode ids exactly', async () => {
      const id = 'ордер-€-𝄞-注文';
      await h.ingest.flush({ orders: [orderEvent({ order_id: id, account_id: 'konto-ü', symbol: 'ÄÖÜ' })] });
      expect(await getOrder(id)).to.include({ order_id: id, account_id: 'konto-ü', symbol: 'ÄÖÜ' });
    });

    it('rejects bad ids with INVALID_ARGUMENT naming the field', async () => {
      await expectStatus('GetOrder', { order_id: '' }, grpc.status.INVALID_ARGUMENT, 'order_id');
      await expectStatus('GetOrder', { order_id: 'x'.repeat(65) }, grpc.status.INVALID_ARGUMENT, 'order_id');
      await expectStatus('GetOrder', { order_id: 'a\u0001b' }, grpc.status.INVALID_ARGUMENT, 'order_id');
      await expectStatus('GetOrder', { order_id: 'never-seen' }, grpc.status.NOT_FOUND);
    });
  });

  describe('BatchGetOrders', () => {
    it('returns found orders in request order (each once) and the missing ids, fetching all misses in one query', async () => {
      await h.ingest.flush({ orders: ['b-1', 'b-2', 'b-3'].map((order_id) => orderEvent({ order_id })) });
      await getOrder('b-2'); // warm one of them
      const before = h.app.readPath.queries.count('orders.get');
      const res = await ok<BatchGetOrdersResponse__Output>(h.client, 'BatchGetOrders', { order_ids: ['b-3', 'nope-1', 'b-2', 'b-1', 'b-3', 'nope-1', 'nope-2'] });
      expect(res.orders.map((o) => o.order_id)).to.deep.equal(['b-3', 'b-2', 'b-1']);
      expect(res.missing).to.deep.equal(['nope-1', 'nope-2']);
      expect(h.app.readPath.queries.count('orders.get') - before, 'one query for the four misses').to.equal(1);
      const again = await ok<BatchGetOrdersResponse__Output>(h.client, 'BatchGetOrders', { order_ids: ['b-1', 'nope-2'] });
      expect(again.orders.map((o) => o.order_id)).to.deep.equal(['b-1']);
      expect(h.app.readPath.queries.count('orders.get') - before, 'hits and cached NOT_FOUNDs need no query').to.equal(1);
    });

    it('accepts 1,000 ids and refuses 1,001; names a bad id by index', async () => {
      const ids = Array.from({ length: 1_000 }, (_, i) => `many-${i}`);
      const res = await ok<BatchGetOrdersResponse__Output>(h.client, 'BatchGetOrders', { order_ids: ids });
      expect(res.missing).to.have.length(1_000);
      await expectStatus('BatchGetOrders', { order_ids: [...ids, 'one-more'] }, grpc.status.INVALID_ARGUMENT, 'order_ids');
      await expectStatus('BatchGetOrders', { order_ids: ['ok', ''] }, grpc.status.INVALID_ARGUMENT, 'order_ids[1]');
    });
  });

  describe('ListOrders', () => {
    before(async () => {
      // 5 orders of acct-L (two symbols), 1 of acct-M; creation times increase with the index.
      const orders = [0, 1, 2, 3, 4].map((i) => orderEvent({ order_id: `lo-${i}`, account_id: 'acct-L', symbol: i % 2 === 0 ? 'EVEN' : 'ODD', qty: '10', ts_ns: nextTsNs() }));
      orders.push(orderEvent({ order_id: 'lo-m', account_id: 'acct-M', symbol: 'EVEN', ts_ns: nextTsNs() }));
      await h.ingest.flush({ orders });
      // Later events do not change an order's place (its creation time) in the list.
      await h.ingest.flush({ orders: [orderEvent({ order_id: 'lo-1', account_id: 'acct-L', symbol: 'ODD', event_type: EV.CANCELED, qty: '10' })] });
      await h.ingest.flush({ fills: [fill({ fill_id: 'lo-3-f', order_id: 'lo-3', account_id: 'acct-L', symbol: 'ODD', qty: '10' })] });
    });

    const list = (req: object) => ok<ListOrdersResponse__Output>(h.client, 'ListOrders', req);

    it('lists by account, newest first, in pages that chain with tokens', async () => {
      const first = await list({ account_id: 'acct-L', page_size: 2 });
      expect(first.orders.map((o) => o.order_id)).to.deep.equal(['lo-4', 'lo-3']);
      expect(first.next_page_token).to.not.equal('');
      const second = await list({ account_id: 'acct-L', page_size: 2, page_token: first.next_page_token });
      expect(second.orders.map((o) => o.order_id)).to.deep.equal(['lo-2', 'lo-1']);
      const third = await list({ account_id: 'acct-L', page_size: 2, page_token: second.next_page_token });
      expect(third.orders.map((o) => o.order_id)).to.deep.equal(['lo-0']);
      expect(third.next_page_token).to.equal('');
    });

    it('filters by symbol, status and creation time', async () => {
      expect((await list({ account_id: 'acct-L', symbol: 'EVEN' })).orders.map((o) => o.order_id)).to.deep.equal(['lo-4', 'lo-2', 'lo-0']);
      expect((await list({ symbol: 'EVEN' })).orders.map((o) => o.order_id)).to.include.members(['lo-m', 'lo-4', 'lo-2', 'lo-0']);
      expect((await list({ account_id: 'acct-L', status: CANCELED })).orders.map((o) => o.order_id)).to.deep.equal(['lo-1']);
      expect((await list({ account_id: 'acct-L', status: FILLED })).orders.map((o) => o.order_id)).to.deep.equal(['lo-3']);
      const all = (await list({ account_id: 'acct-L' })).orders;
      const from = all.find((o) => o.order_id === 'lo-1')!.created_ts_ns;
      const to = all.find((o) => o.order_id === 'lo-4')!.created_ts_ns;
      expect((await list({ account_id: 'acct-L', from_ts_ns: from, to_ts_ns: to })).orders.map((o) => o.order_id)).to.deep.equal(['lo-3', 'lo-2', 'lo-1']);
    });

    it('refuses bad filters, page sizes and tokens with INVALID_ARGUMENT naming the field', async () => {
      await expectStatus('ListOrders', { page_size: 1_001 }, grpc.status.INVALID_ARGUMENT, 'page_size');
      await expectStatus('ListOrders', { status: 99 }, grpc.status.INVALID_ARGUMENT, 'status');
      await expectStatus('ListOrders', { from_ts_ns: '-1' }, grpc.status.INVALID_ARGUMENT, 'from_ts_ns');
      await expectStatus('ListOrders', { from_ts_ns: '10', to_ts_ns: '10' }, grpc.status.INVALID_ARGUMENT, 'to_ts_ns');
      await expectStatus('ListOrders', { symbol: 'S'.repeat(33) }, grpc.status.INVALID_ARGUMENT, 'symbol');
      const { next_page_token } = await list({ account_id: 'acct-L', page_size: 1 });
      await expectStatus('ListOrders', { account_id: 'acct-M', page_size: 1, page_token: next_page_token }, grpc.status.INVALID_ARGUMENT, 'page_token');
      await expectStatus('ListFills', { account_id: 'acct-L', page_size: 1, page_token: next_page_token }, grpc.status.INVALID_ARGUMENT, 'page_token');
      expect((await list({ account_id: 'acct-L', page_size: 3, page_token: next_page_token })).orders, 'page_size may change between pages').to.have.length(3);
    });

    it('uses 100 as the default page size', async () => {
      await h.ingest.flush({ orders: Array.from({ length: 101 }, (_, i) => orderEvent({ order_id: `dflt-${i}`, account_id: 'acct-D' })) });
      const page = await list({ account_id: 'acct-D' });
      expect(page.orders).to.have.length(100);
      expect(page.next_page_token).to.not.equal('');
    });
  });

  describe('ListFills', () => {
    before(async () => {
      const fills = [];
      for (let i = 0; i < 12; i++) {
        fills.push(fill({ fill_id: `lf-${i}`, order_id: `lf-o${i % 3}`, account_id: 'acct-F', symbol: ['A', 'B', 'C', 'D'][i % 4], ts_ns: nextTsNs(), fee: i === 0 ? '' : '-0.02' }));
      }
      fills.push(fill({ fill_id: 'lf-other', order_id: 'lf-x', account_id: 'acct-G', symbol: 'A' }));
      await h.ingest.flush({ fills });
    });

    const ids = (res: ListFillsResponse__Output) => res.fills.map((f) => f.fill!.fill_id);
    const newestFirst = (list: number[]) => list.sort((a, b) => b - a).map((i) => `lf-${i}`);

    it('lists an account across its symbols, newest first, paging exactly through every fill', async () => {
      const seen: string[] = [];
      let token = '';
      do {
        const page = await ok<ListFillsResponse__Output>(h.client, 'ListFills', { account_id: 'acct-F', page_size: 5, page_token: token });
        seen.push(...ids(page));
        token = page.next_page_token;
      } while (token !== '');
      expect(seen).to.deep.equal(newestFirst([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
    });

    it('filters by order, symbol and time; returns the stored record', async () => {
      expect(ids(await ok(h.client, 'ListFills', { order_id: 'lf-o1' }))).to.deep.equal(newestFirst([1, 4, 7, 10]));
      expect(ids(await ok(h.client, 'ListFills', { account_id: 'acct-F', symbol: 'B' }))).to.deep.equal(newestFirst([1, 5, 9]));
      expect(ids(await ok(h.client, 'ListFills', { symbol: 'A' }))).to.deep.equal(['lf-other', ...newestFirst([0, 4, 8])]);
      const all = await ok<ListFillsResponse__Output>(h.client, 'ListFills', { account_id: 'acct-F' });
      const ts = (i: number) => all.fills.find((f) => f.fill!.fill_id === `lf-${i}`)!.fill!.ts_ns;
      expect(ids(await ok(h.client, 'ListFills', { account_id: 'acct-F', from_ts_ns: ts(3), to_ts_ns: ts(6) }))).to.deep.equal(newestFirst([3, 4, 5]));
      const record = all.fills.find((f) => f.fill!.fill_id === 'lf-0')!;
      expect(record).to.deep.include({ source_id: h.ingest.sourceId, busted: false, bust_reason: '' });
      expect(record.seq).to.match(/^\d+$/);
      expect(record.fill).to.include({ order_id: 'lf-o0', account_id: 'acct-F', symbol: 'A', side: 1, price: '10.5', qty: '10', fee: '', venue: 'XNAS' });
      expect(all.fills.find((f) => f.fill!.fill_id === 'lf-1')!.fill!.fee).to.equal('-0.02');
    });
  });

  describe('GetPosition', () => {
    it('is all zeros for an account without fills in the symbol, and requires both fields', async () => {
      const p = await ok<Position__Output>(h.client, 'GetPosition', { account_id: 'nobody', symbol: 'AAPL' });
      expect(p).to.deep.equal({ account_id: 'nobody', symbol: 'AAPL', net_qty: '0', buy_qty: '0', sell_qty: '0', avg_buy_price: '', avg_sell_price: '', fill_count: 0, updated_ts_ns: '0' });
      await expectStatus('GetPosition', { account_id: '', symbol: 'AAPL' }, grpc.status.INVALID_ARGUMENT, 'account_id');
      await expectStatus('GetPosition', { account_id: 'a', symbol: '' }, grpc.status.INVALID_ARGUMENT, 'symbol');
    });

    it('nets buys and sells', async () => {
      await h.ingest.flush({
        fills: [
          fill({ fill_id: 'pos-1', order_id: 'pos-o1', account_id: 'acct-P', symbol: 'MSFT', side: 1, qty: '3', price: '100' }),
          fill({ fill_id: 'pos-2', order_id: 'pos-o2', account_id: 'acct-P', symbol: 'MSFT', side: 2, qty: '5', price: '101.5' }),
        ],
      });
      const p = await ok<Position__Output>(h.client, 'GetPosition', { account_id: 'acct-P', symbol: 'MSFT' });
      expect(p).to.include({ net_qty: '-2', buy_qty: '3', sell_qty: '5', avg_buy_price: '100', avg_sell_price: '101.5', fill_count: 2 });
    });
  });

  describe('unexpected errors', () => {
    it('never leak: a broken query answers INTERNAL with a generic message', async () => {
      const other = await createTestDatabase('read_internal');
      const broken = await startReadHarness(other.url);
      try {
        await withClient(other.url, (c) => c.query('DROP VIEW counted_fills'));
        const { err } = await call(broken.client, 'GetPosition', { account_id: 'a', symbol: 'b' });
        expect(err?.code).to.equal(grpc.status.INTERNAL);
        expect(err?.details).to.equal('An internal error occurred.');
      } finally {
        await broken.close();
        await other.drop();
      }
    });
  });
});
