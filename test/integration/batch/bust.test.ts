import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { App } from '../../../src/app';
import type { BustFillsResponse__Output } from '../../../src/generated/orderflow/v1/BustFillsResponse';
import type { Event } from '../../../src/generated/orderflow/v1/Event';
import type { ListFillsResponse__Output } from '../../../src/generated/orderflow/v1/ListFillsResponse';
import type { Order__Output } from '../../../src/generated/orderflow/v1/Order';
import type { OrderFlowClient } from '../../../src/generated/orderflow/v1/OrderFlow';
import type { Position__Output } from '../../../src/generated/orderflow/v1/Position';
import { FillBuster } from '../../../src/store/busts';
import { startTestApp } from '../../helpers/app';
import { orderFlowClient } from '../../helpers/grpc';
import { IngestSession } from '../../helpers/ingest-client';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { waitFor } from '../read/support';

type Method = 'GetOrder' | 'GetPosition' | 'ListFills' | 'BustFills';

/** One unary call on the raw stub: the response or the error. */
function call<Res>(client: OrderFlowClient, method: Method, request: object): Promise<{ err: grpc.ServiceError | null; res: Res | undefined }> {
  return new Promise((resolve) => {
    const fn = (client[method] as unknown as (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void).bind(client);
    fn(request, { deadline: Date.now() + 20_000 }, (err, res) => resolve({ err, res }));
  });
}

async function ok<Res>(client: OrderFlowClient, method: Method, request: object): Promise<Res> {
  const { err, res } = await call<Res>(client, method, request);
  if (err) throw new Error(`${method} failed: ${grpc.status[err.code]} ${err.details}`);
  return res!;
}

const TS = 1_700_000_000_000_000_000n;

function order(seq: number, orderId: string, account: string, side: 1 | 2, qty: string, price: string): Event {
  return {
    seq: String(seq),
    order: { order_id: orderId, account_id: account, symbol: 'XYZ', side, order_type: 2, event_type: 1, price, qty, time_in_force: 1, ts_ns: String(TS + BigInt(seq)), client_order_id: `cl-${orderId}` },
  };
}

function fill(seq: number, fillId: string, orderId: string, account: string, side: 1 | 2, qty: string, price: string): Event {
  return {
    seq: String(seq),
    fill: { fill_id: fillId, order_id: orderId, account_id: account, symbol: 'XYZ', side, price, qty, ts_ns: String(TS + BigInt(seq)), fee: '0.01', venue: 'XNAS' },
  };
}

/** Ingests `events` through the real Ingest stream and waits for the ack of the last one. */
async function ingest(port: number, sourceId: string, events: Event[]): Promise<void> {
  const client = orderFlowClient(port);
  const session = new IngestSession(client, sourceId);
  try {
    await session.welcome;
    await session.send(events);
    const ack = await session.waitForAck(events[events.length - 1]!.seq as string);
    expect(ack.rejected).to.equal(0);
    session.end();
    await session.ended;
  } finally {
    client.close();
  }
}

describe('BustFills (integration: real PostgreSQL, real gRPC)', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let a: App;
  let b: App;
  let ca: OrderFlowClient;
  let cb: OrderFlowClient;

  before(async () => {
    db = await createTestDatabase('bust');
    [a, b] = await Promise.all([startTestApp(db.url), startTestApp(db.url)]);
    await waitFor(() => a.readPath.listener.state === 'LISTENING' && b.readPath.listener.state === 'LISTENING', 10_000, 'both listeners');
    ca = orderFlowClient(a.grpcPort);
    cb = orderFlowClient(b.grpcPort);
  });
  after(async () => {
    ca?.close();
    cb?.close();
    await Promise.all([a?.close(), b?.close()]);
    await db?.drop();
  });

  it('busted fills stop counting toward order state and positions, cached reads included; ListFills flags them', async () => {
    await ingest(a.grpcPort, 'venue-1', [
      order(1, 'o-1', 'acc-1', 1, '10', '101'),
      order(2, 'o-2', 'acc-1', 2, '4', '102'),
      fill(3, 'f-1', 'o-1', 'acc-1', 1, '3', '100.5'),
      fill(4, 'f-2', 'o-1', 'acc-1', 1, '2', '101'),
      fill(5, 'f-3', 'o-1', 'acc-1', 1, '5', '100.25'),
      fill(6, 'f-4', 'o-2', 'acc-1', 2, '4', '102'),
    ]);
    // Warm the cache (the second read of each is a hit).
    for (let i = 0; i < 2; i++) {
      const o1 = await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-1' });
      expect(o1).to.include({ status: 4, filled_qty: '10', avg_fill_price: '100.475' });
      const pos = await ok<Position__Output>(ca, 'GetPosition', { account_id: 'acc-1', symbol: 'XYZ' });
      expect(pos).to.include({ net_qty: '6', buy_qty: '10', sell_qty: '4', avg_buy_price: '100.475', avg_sell_price: '102', fill_count: 4 });
      const list = await ok<ListFillsResponse__Output>(ca, 'ListFills', { order_id: 'o-1' });
      expect(list.fills.map((f) => f.busted)).to.deep.equal([false, false, false]);
    }
    const missesBefore = a.readPath.queries.count('positions.get');

    const bust = await ok<BustFillsResponse__Output>(ca, 'BustFills', { fill_ids: ['f-3', 'nope', 'f-4', 'f-3'], reason: 'venue bust: erroneous trade' });
    expect(bust).to.deep.equal({ busted: 2, not_found: ['nope'] });

    // Read-your-writes: the answer came after the local invalidation.
    const o1 = await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-1' });
    expect(o1).to.include({ status: 3, filled_qty: '5', avg_fill_price: '100.7', updated_ts_ns: String(TS + 4n) });
    const o2 = await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-2' });
    expect(o2).to.include({ status: 1, filled_qty: '0', avg_fill_price: '' });
    const pos = await ok<Position__Output>(ca, 'GetPosition', { account_id: 'acc-1', symbol: 'XYZ' });
    expect(pos).to.include({ net_qty: '5', buy_qty: '5', sell_qty: '0', avg_buy_price: '100.7', avg_sell_price: '', fill_count: 2, updated_ts_ns: String(TS + 4n) });
    expect(a.readPath.queries.count('positions.get'), 'the cached position was dropped').to.equal(missesBefore + 1);

    const list = await ok<ListFillsResponse__Output>(ca, 'ListFills', { order_id: 'o-1' });
    expect(list.fills.map((f) => [f.fill!.fill_id, f.busted, f.bust_reason])).to.deep.equal([
      ['f-3', true, 'venue bust: erroneous trade'],
      ['f-2', false, ''],
      ['f-1', false, ''],
    ]);
    const byAccount = await ok<ListFillsResponse__Output>(ca, 'ListFills', { account_id: 'acc-1' });
    expect(byAccount.fills.filter((f) => f.busted).map((f) => f.fill!.fill_id)).to.deep.equal(['f-4', 'f-3']);

    // Idempotent: busting again changes nothing and keeps the first reason.
    const again = await ok<BustFillsResponse__Output>(ca, 'BustFills', { fill_ids: ['f-3', 'f-4', 'nope'], reason: 'second try' });
    expect(again).to.deep.equal({ busted: 0, not_found: ['nope'] });
    const after = await ok<ListFillsResponse__Output>(ca, 'ListFills', { order_id: 'o-1' });
    expect(after.fills[0]).to.include({ busted: true, bust_reason: 'venue bust: erroneous trade' });
    expect(await ok<Position__Output>(ca, 'GetPosition', { account_id: 'acc-1', symbol: 'XYZ' })).to.include({ net_qty: '5', fill_count: 2 });
  });

  it("a bust made through A reaches B's cached position and order (NOTIFY)", async () => {
    await ingest(a.grpcPort, 'venue-2', [order(1, 'o-b', 'acc-2', 1, '5', '50'), fill(2, 'fb-1', 'o-b', 'acc-2', 1, '2', '49.5'), fill(3, 'fb-2', 'o-b', 'acc-2', 1, '3', '50.12345678')]);
    const want = { net_qty: '5', avg_buy_price: '49.87407407', fill_count: 2 };
    expect(await ok<Position__Output>(cb, 'GetPosition', { account_id: 'acc-2', symbol: 'XYZ' })).to.include(want);
    expect(await ok<Position__Output>(cb, 'GetPosition', { account_id: 'acc-2', symbol: 'XYZ' })).to.include(want);
    expect(await ok<Order__Output>(cb, 'GetOrder', { order_id: 'o-b' })).to.include({ status: 4 });

    expect(await ok<BustFillsResponse__Output>(ca, 'BustFills', { fill_ids: ['fb-2'], reason: 'late bust' })).to.deep.equal({ busted: 1, not_found: [] });
    await waitFor(
      async () => (await ok<Position__Output>(cb, 'GetPosition', { account_id: 'acc-2', symbol: 'XYZ' })).net_qty === '2',
      3_000,
      "B's cached position to drop the busted fill",
    );
    expect(await ok<Position__Output>(cb, 'GetPosition', { account_id: 'acc-2', symbol: 'XYZ' })).to.include({ net_qty: '2', avg_buy_price: '49.5', fill_count: 1 });
    expect(await ok<Order__Output>(cb, 'GetOrder', { order_id: 'o-b' })).to.include({ status: 3, filled_qty: '2', avg_fill_price: '49.5' });
  });

  it('busts in chunks: every chunk commits, not_found is gathered across chunks in request order', async () => {
    const events: Event[] = [order(1, 'o-c', 'acc-3', 1, '100', '10')];
    for (let i = 1; i <= 7; i++) events.push(fill(i + 1, `fc-${i}`, 'o-c', 'acc-3', 1, '1', '10'));
    await ingest(a.grpcPort, 'venue-3', events);
    const buster = new FillBuster({ pool: a.pool, hooks: a.readPath.hooks, chunkSize: 2, concurrency: 2 });
    const ids = ['fc-1', 'x-1', 'fc-2', 'fc-3', 'x-2', 'fc-4', 'fc-5'];
    const result = await buster.bust(ids, 'chunked');
    expect(result.busted).to.equal(5);
    expect(result.notFound).to.deep.equal(['x-1', 'x-2']);
    expect(result.report).to.include({ chunksDone: 4, chunksFailed: 0, outcome: 'completed' });
    expect(await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-c' })).to.include({ filled_qty: '2', status: 3 });
  });

  it('a chunk that fails rolls back and fails the call; the retry busts what was left', async () => {
    await ingest(a.grpcPort, 'venue-4', [order(1, 'o-d', 'acc-4', 1, '5', '10'), fill(2, 'fd-1', 'o-d', 'acc-4', 1, '1', '10'), fill(3, 'fd-2', 'o-d', 'acc-4', 1, '1', '10')]);
    // A real database error inside the bust transaction: the NOTIFY of beforeCommit fails.
    const hooks = a.readPath.hooks;
    const failing = new FillBuster({
      pool: a.pool,
      hooks: {
        beforeCommit: async (tx) => {
          await tx.query('test.fail', 'SELECT 1 / 0');
        },
        afterCommit: hooks.afterCommit,
      },
    });
    await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-d' });
    await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-d' });
    const queriesBefore = a.readPath.queries.count('orders.get');
    const err = await failing.bust(['fd-1', 'fd-2'], 'will fail').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as { code?: string }).code).to.equal('INTERNAL');
    expect(await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-d' })).to.include({ filled_qty: '2' });
    // A failed chunk still invalidates what it touched (its outcome could be unknown): the read above was a miss.
    expect(a.readPath.queries.count('orders.get')).to.equal(queriesBefore + 1);
    expect(await ok<BustFillsResponse__Output>(ca, 'BustFills', { fill_ids: ['fd-1', 'fd-2'], reason: 'retry' })).to.deep.equal({ busted: 2, not_found: [] });
    expect(await ok<Order__Output>(ca, 'GetOrder', { order_id: 'o-d' })).to.include({ filled_qty: '0', status: 1 });
  });

  const invalid: [string, object, string][] = [
    ['no ids', { fill_ids: [], reason: 'r' }, 'fill_ids'],
    ['10,001 ids', { fill_ids: Array.from({ length: 10_001 }, (_, i) => `f${i}`), reason: 'r' }, 'fill_ids'],
    ['an empty id', { fill_ids: ['f-1', ''], reason: 'r' }, 'fill_ids[1]'],
    ['an id of 65 characters', { fill_ids: ['x'.repeat(65)], reason: 'r' }, 'fill_ids[0]'],
    ['an id with a control character', { fill_ids: ['a\u0001b'], reason: 'r' }, 'fill_ids[0]'],
    ['an empty reason', { fill_ids: ['f-1'], reason: '' }, 'reason'],
    ['a reason of 257 characters', { fill_ids: ['f-1'], reason: 'r'.repeat(257) }, 'reason'],
  ];
  for (const [what, request, field] of invalid) {
    it(`answers INVALID_ARGUMENT naming the field for ${what}`, async () => {
      const { err } = await call(ca, 'BustFills', request);
      expect(err?.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(err?.details.startsWith(`${field}:`), err?.details).to.equal(true);
    });
  }

  it('accepts exactly 10,000 ids and a 256-character reason', async () => {
    const { err, res } = await call<BustFillsResponse__Output>(ca, 'BustFills', { fill_ids: Array.from({ length: 10_000 }, (_, i) => `unknown-${i}`), reason: 'é'.repeat(256) });
    expect(err).to.equal(null);
    expect(res!.busted).to.equal(0);
    expect(res!.not_found).to.have.length(10_000);
  });
});
