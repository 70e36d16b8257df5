import { expect } from 'chai';
import type { Event__Output } from '../../../src/generated/orderflow/v1/Event';
import type { Fill__Output } from '../../../src/generated/orderflow/v1/Fill';
import type { OrderEvent__Output } from '../../../src/generated/orderflow/v1/OrderEvent';
import { validateImportEvent as validateEvent } from '../../../src/store/import';

const fill = (over: Partial<Fill__Output> = {}): Event__Output => ({
  seq: '2',
  payload: 'fill',
  fill: { fill_id: 'f-1', order_id: 'o-1', account_id: 'a-1', symbol: 'AAPL', side: 1, price: '189.25', qty: '100', ts_ns: '1700000000000000000', fee: '', venue: '', ...over },
});
const order = (over: Partial<OrderEvent__Output> = {}): Event__Output => ({
  seq: '2',
  payload: 'order',
  order: {
    order_id: 'o-1',
    account_id: 'a-1',
    symbol: 'AAPL',
    side: 1,
    order_type: 2,
    event_type: 1,
    price: '1',
    qty: '1',
    time_in_force: 1,
    ts_ns: '1',
    client_order_id: '',
    ...over,
  },
});

describe('store/import validateImportEvent (the ingest validator, as the import applies it)', () => {
  it('accepts valid fills and orders, Unicode ids and negative fees', () => {
    expect(validateEvent(fill())).to.deep.equal({ ok: true });
    expect(validateEvent(fill({ account_id: 'Kontø-株式', fee: '-0.00000001' }))).to.deep.equal({ ok: true });
    expect(validateEvent(order({ order_type: 1, price: '' }))).to.deep.equal({ ok: true });
  });

  const cases: [string, Event__Output, string, RegExp][] = [
    ['empty id', fill({ fill_id: '' }), 'REJECT_CODE_MISSING_FIELD', /fill_id is required/],
    ['control character', fill({ order_id: 'o\u0007' }), 'REJECT_CODE_INVALID_FIELD', /order_id contains a control character/],
    ['NUL', fill({ venue: 'a\u0000' }), 'REJECT_CODE_INVALID_FIELD', /venue contains a NUL/],
    ['long symbol', fill({ symbol: 'S'.repeat(33) }), 'REJECT_CODE_INVALID_FIELD', /symbol is longer than 32/],
    ['zero qty', fill({ qty: '0.000' }), 'REJECT_CODE_OUT_OF_RANGE', /qty must be > 0/],
    ['13 integer digits', fill({ price: '1234567890123' }), 'REJECT_CODE_OUT_OF_RANGE', /price has more than 12 integer digits/],
    ['9 fraction digits', fill({ price: '1.123456789' }), 'REJECT_CODE_OUT_OF_RANGE', /more than 8 fractional/],
    ['malformed decimal', fill({ qty: '1e5' }), 'REJECT_CODE_INVALID_FIELD', /qty is not a decimal/],
    ['negative price', fill({ price: '-1' }), 'REJECT_CODE_OUT_OF_RANGE', /price must be > 0/],
    ['ts overflow', fill({ ts_ns: '9223372036854775808' }), 'REJECT_CODE_OUT_OF_RANGE', /int64/],
    ['ts text', fill({ ts_ns: '2024-01-01' }), 'REJECT_CODE_INVALID_FIELD', /ts_ns/],
    ['unspecified side', fill({ side: 0 }), 'REJECT_CODE_INVALID_ENUM', /side must be set \(SIDE_UNSPECIFIED is not allowed\)/],
    ['limit without price', order({ price: '' }), 'REJECT_CODE_MISSING_FIELD', /price is required/],
    ['no payload', { seq: '1' }, 'REJECT_CODE_MISSING_PAYLOAD', /neither/],
  ];
  for (const [name, event, code, reason] of cases) {
    it(`rejects ${name} with ${code}`, () => {
      const result = validateEvent(event);
      expect(result.ok).to.equal(false);
      if (!result.ok) {
        expect(result.code).to.equal(code);
        expect(result.reason).to.match(reason);
      }
    });
  }
});
