import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { ClientAbortedError, ClientClosedError, createOrderFlowClient, OrderFlowClientError, type OrderFlowClient } from '../../../src/client';
import type { Order } from '../../../src/generated/orderflow/v1/Order';
import { fillEvent } from '../../helpers/client-events';
import { FakeIngestServer } from '../../helpers/fake-ingest-server';

function order(id: string, account = 'acc-1'): Order {
  return { order_id: id, account_id: account, symbol: 'AAPL', side: 1, order_type: 2, time_in_force: 1, status: 3, price: '10.5', qty: '100', filled_qty: '40', avg_fill_price: '10.4', created_ts_ns: '1700000000000000001', updated_ts_ns: '1700000000000000002' };
}

describe('client/read calls against the fake server (integration, real gRPC)', () => {
  let fake: FakeIngestServer;
  let client: OrderFlowClient;

  before(async () => {
    fake = new FakeIngestServer();
    await fake.start();
    for (let i = 1; i <= 5; i++) fake.orders.set(`o-${i}`, order(`o-${i}`));
    fake.positions.set('acc-1/AAPL', { account_id: 'acc-1', symbol: 'AAPL', net_qty: '-12.5', buy_qty: '10', sell_qty: '22.5', avg_buy_price: '1.5', avg_sell_price: '2', fill_count: 3, updated_ts_ns: '1700000000000000009' });
    client = createOrderFlowClient({ address: fake.address });
  });
  afterEach(() => {
    fake.readDelayMs = 0;
    fake.readError = undefined;
  });
  after(async () => {
    await client.close();
    await fake.stop();
  });

  it('returns typed messages for every read RPC, keeping int64 and decimals as exact strings', async () => {
    const got = await client.getOrder({ order_id: 'o-1' });
    expect(got).to.deep.include({ order_id: 'o-1', status: 3, filled_qty: '40', created_ts_ns: '1700000000000000001' });
    const batch = await client.batchGetOrders({ order_ids: ['o-2', 'nope', 'o-3'] });
    expect(batch.orders.map((o) => o.order_id)).to.deep.equal(['o-2', 'o-3']);
    expect(batch.missing).to.deep.equal(['nope']);
    const page = await client.listOrders({ account_id: 'acc-1', page_size: 2 });
    expect(page.orders).to.have.length(2);
    expect(page.next_page_token).to.not.equal('');
    const position = await client.getPosition({ account_id: 'acc-1', symbol: 'AAPL' });
    expect(position).to.deep.include({ net_qty: '-12.5', fill_count: 3, updated_ts_ns: '1700000000000000009' });
    const bust = await client.bustFills({ fill_ids: ['x'], reason: 'venue bust' });
    expect(bust).to.deep.equal({ busted: 0, not_found: ['x'] });
  });

  it('iterateOrders and iterateFills follow page tokens to the end', async () => {
    const ids: string[] = [];
    for await (const o of client.iterateOrders({ page_size: 2 })) ids.push(o.order_id);
    expect(ids).to.deep.equal(['o-1', 'o-2', 'o-3', 'o-4', 'o-5']);

    const producer = await client.openIngest({ sourceId: 'reads' });
    for (let i = 1; i <= 7; i++) await producer.send(fillEvent(i));
    await producer.close();
    const fills: string[] = [];
    for await (const f of client.iterateFills({ page_size: 3 })) fills.push(`${f.source_id}/${f.seq}/${f.fill!.fill_id}`);
    expect(fills).to.deep.equal(Array.from({ length: 7 }, (_, i) => `reads/${i + 1}/s-f-${i + 1}`));
  });

  it('a failed call is an OrderFlowClientError with the gRPC status, details and the server error code', async () => {
    const err = await client.getOrder({ order_id: 'unknown' }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OrderFlowClientError);
    expect(err).to.include({ code: grpc.status.NOT_FOUND, details: 'order unknown not found', errorCode: 'NOT_FOUND' });
    expect((err as Error).message).to.equal('GetOrder failed with NOT_FOUND: order unknown not found');

    fake.readError = { code: grpc.status.RESOURCE_EXHAUSTED, details: 'Timed out waiting for a database connection from the pool.', errorCode: 'ACQUIRE_TIMEOUT' };
    const busy = await client.listFills({}).catch((e: unknown) => e);
    expect(busy).to.include({ code: grpc.status.RESOURCE_EXHAUSTED, errorCode: 'ACQUIRE_TIMEOUT' });
  });

  it('a per-call deadline ends a slow call with DEADLINE_EXCEEDED', async () => {
    fake.readDelayMs = 1_000;
    // The server would answer OK after 1 s: DEADLINE_EXCEEDED proves the deadline ended it.
    const err = await client.getOrder({ order_id: 'o-1' }, { deadlineMs: 100 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OrderFlowClientError).and.include({ code: grpc.status.DEADLINE_EXCEEDED });
    const absolute = await client.getOrder({ order_id: 'o-1' }, { deadline: new Date(Date.now() + 50) }).catch((e: unknown) => e);
    expect(absolute).to.include({ code: grpc.status.DEADLINE_EXCEEDED });
  });

  it('an AbortSignal cancels the call on the server too', async () => {
    fake.readDelayMs = 1_000;
    const controller = new AbortController();
    const before = fake.readCancellations;
    const pending = client.getOrder({ order_id: 'o-1' }, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('caller gave up')), 50);
    const err = await pending.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ClientAbortedError).and.include({ code: grpc.status.CANCELLED });
    expect(((err as Error).cause as Error).message).to.equal('caller gave up');
    const deadline = Date.now() + 2_000;
    while (fake.readCancellations === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fake.readCancellations).to.equal(before + 1);
    const already = await client.getOrder({ order_id: 'o-1' }, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(already).to.be.instanceOf(ClientAbortedError);
  });

  it('passes request metadata through', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', 'r-1');
    expect((await client.getOrder({ order_id: 'o-1' }, { metadata })).order_id).to.equal('o-1');
  });

  it('close() is idempotent and later calls fail with ClientClosedError', async () => {
    const other = createOrderFlowClient({ address: fake.address });
    expect((await other.getOrder({ order_id: 'o-1' })).order_id).to.equal('o-1');
    await Promise.all([other.close(), other.close()]);
    expect(other.state).to.equal('CLOSED');
    expect(await other.getOrder({ order_id: 'o-1' }).catch((e: unknown) => e)).to.be.instanceOf(ClientClosedError);
    expect(await other.openIngest({ sourceId: 'late' }).catch((e: unknown) => e)).to.be.instanceOf(ClientClosedError);
  });

  it('rejects bad client options, naming each', () => {
    expect(() => createOrderFlowClient({ address: '', defaultDeadlineMs: -1 })).to.throw(/address.*defaultDeadlineMs/);
  });
});
