import { expect } from 'chai';
import type { Order__Output } from '../../../src/generated/orderflow/v1/Order';
import type { Position__Output } from '../../../src/generated/orderflow/v1/Position';
import { fill, orderEvent, type FakeFill } from '../../helpers/fake-ingest';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { ok, startReadHarness, type ReadHarness } from './support';

/** Decimals as BigInt scaled by 10^8 (DESIGN.md: at most 8 fractional digits). */
const SCALE = 10n ** 8n;

function parseScaled(text: string): bigint {
  const [int, frac = ''] = text.split('.');
  return BigInt(int!) * SCALE + BigInt(frac.padEnd(8, '0'));
}

/** Canonical text of a scaled value: no trailing fractional zeros, "0" for zero. */
function formatScaled(value: bigint): string {
  const sign = value < 0n ? '-' : '';
  const abs = value < 0n ? -value : value;
  const frac = (abs % SCALE).toString().padStart(8, '0').replace(/0+$/, '');
  return `${sign}${abs / SCALE}${frac ? `.${frac}` : ''}`;
}

/** VWAP rounded half up to 8 places: notional has scale 16, qty scale 8, both > 0. */
function vwap(notional16: bigint, qty8: bigint): string {
  return qty8 === 0n ? '' : formatScaled((2n * notional16 + qty8) / (2n * qty8));
}

/** A random decimal with up to 12 integer and 8 fractional digits, > 0, sometimes with trailing zeros. */
function randomDecimal(maxIntDigits: number): string {
  const intDigits = 1 + Math.floor(Math.random() * maxIntDigits);
  let int = '';
  for (let i = 0; i < intDigits; i++) int += String(Math.floor(Math.random() * 10));
  int = int.replace(/^0+(?=\d)/, '');
  const fracDigits = Math.floor(Math.random() * 9);
  let frac = '';
  for (let i = 0; i < fracDigits; i++) frac += String(Math.floor(Math.random() * 10));
  const text = frac ? `${int}.${frac}` : int;
  return parseScaled(text) === 0n ? '0.00000001' : text;
}

describe('exact decimals (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let h: ReadHarness;

  before(async () => {
    db = await createTestDatabase('read_decimals');
    h = await startReadHarness(db.url);
  });
  after(async () => {
    await h?.close();
    await db?.drop();
  });

  it('GetPosition equals an independent BigInt computation over random fills', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const account = `acct-rand-${trial}`;
      const fills: FakeFill[] = [];
      for (let i = 0; i < 200; i++) {
        fills.push(
          fill({
            fill_id: `r${trial}-${i}`,
            order_id: `r${trial}-o${i % 17}`,
            account_id: account,
            symbol: 'RND',
            side: Math.random() < 0.5 ? 1 : 2,
            price: randomDecimal(trial % 2 === 0 ? 12 : 4),
            qty: randomDecimal(trial % 2 === 0 ? 12 : 3),
          }),
        );
      }
      // Noise that must not count: other symbol, other account.
      fills.push(fill({ fill_id: `r${trial}-noise-1`, order_id: 'n', account_id: account, symbol: 'OTHER', qty: '999' }));
      fills.push(fill({ fill_id: `r${trial}-noise-2`, order_id: 'n', account_id: `${account}-x`, symbol: 'RND', qty: '999' }));
      // Two flushes: the second also proves the cached position is invalidated.
      await h.ingest.flush({ fills: fills.slice(0, 100) });
      await ok<Position__Output>(h.client, 'GetPosition', { account_id: account, symbol: 'RND' });
      await h.ingest.flush({ fills: fills.slice(100) });

      const counted = fills.filter((f) => f.account_id === account && f.symbol === 'RND');
      const sum = (side: number, fn: (f: FakeFill) => bigint) => counted.filter((f) => f.side === side).reduce((acc, f) => acc + fn(f), 0n);
      const buyQty = sum(1, (f) => parseScaled(f.qty));
      const sellQty = sum(2, (f) => parseScaled(f.qty));
      const buyNotional = sum(1, (f) => parseScaled(f.price) * parseScaled(f.qty));
      const sellNotional = sum(2, (f) => parseScaled(f.price) * parseScaled(f.qty));
      const maxTs = counted.reduce((max, f) => (BigInt(f.ts_ns) > max ? BigInt(f.ts_ns) : max), 0n);

      const position = await ok<Position__Output>(h.client, 'GetPosition', { account_id: account, symbol: 'RND' });
      expect(position).to.deep.equal({
        account_id: account,
        symbol: 'RND',
        net_qty: formatScaled(buyQty - sellQty),
        buy_qty: formatScaled(buyQty),
        sell_qty: formatScaled(sellQty),
        avg_buy_price: vwap(buyNotional, buyQty),
        avg_sell_price: vwap(sellNotional, sellQty),
        fill_count: counted.length,
        updated_ts_ns: maxTs.toString(),
      });
    }
  });

  it("GetOrder's filled quantity and VWAP equal an independent BigInt computation", async () => {
    await h.ingest.flush({ orders: [orderEvent({ order_id: 'vw-1', qty: '999999999999.99999999' })] });
    const fills = Array.from({ length: 50 }, (_, i) => fill({ fill_id: `vw-1-${i}`, order_id: 'vw-1', price: randomDecimal(6), qty: randomDecimal(5) }));
    await h.ingest.flush({ fills });
    const qty = fills.reduce((acc, f) => acc + parseScaled(f.qty), 0n);
    const notional = fills.reduce((acc, f) => acc + parseScaled(f.price) * parseScaled(f.qty), 0n);
    const order = await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'vw-1' });
    expect(order.filled_qty).to.equal(formatScaled(qty));
    expect(order.avg_fill_price).to.equal(vwap(notional, qty));
  });

  it('rounds a VWAP half up at the 9th fractional digit', async () => {
    // (1.00000001 + 1.00000002) / 2 = 1.000000015 → 1.00000002; (1 + 2 + 2) / 3 = 1.666… → 1.66666667
    await h.ingest.flush({
      orders: [orderEvent({ order_id: 'half-1' }), orderEvent({ order_id: 'half-2' })],
      fills: [
        fill({ fill_id: 'half-1-a', order_id: 'half-1', price: '1.00000001', qty: '1' }),
        fill({ fill_id: 'half-1-b', order_id: 'half-1', price: '1.00000002', qty: '1' }),
        fill({ fill_id: 'half-2-a', order_id: 'half-2', price: '1', qty: '1' }),
        fill({ fill_id: 'half-2-b', order_id: 'half-2', price: '2', qty: '2' }),
      ],
    });
    expect((await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'half-1' })).avg_fill_price).to.equal('1.00000002');
    expect((await ok<Order__Output>(h.client, 'GetOrder', { order_id: 'half-2' })).avg_fill_price).to.equal('1.66666667');
  });
});
