import { expect } from 'chai';
import { RejectCode } from '../../../src/generated/orderflow/v1/RejectCode';
import type { EventInput, FillInput, OrderEventInput } from '../../../src/ingest/event';
import { checkDecimal, checkText, validateEvent, validateSourceId } from '../../../src/ingest/validate';

const order = (patch: Partial<OrderEventInput> = {}): EventInput => ({
  seq: '1',
  payload: 'order',
  order: {
    order_id: 'o-1', account_id: 'a-1', symbol: 'AAPL', side: 1, order_type: 2, event_type: 1, price: '101.25', qty: '10',
    time_in_force: 1, ts_ns: '1700000000000000000', client_order_id: '', ...patch,
  },
});
const fill = (patch: Partial<FillInput> = {}): EventInput => ({
  seq: '1',
  payload: 'fill',
  fill: { fill_id: 'f-1', order_id: 'o-1', account_id: 'a-1', symbol: 'AAPL', side: 2, price: '101.25', qty: '10', ts_ns: '1700000000000000000', fee: '', venue: '', ...patch },
});

describe('ingest/validate', () => {
  it('accepts valid events, including Unicode ids, market orders without price and negative fees', () => {
    expect(validateEvent(order())).to.equal(undefined);
    expect(validateEvent(order({ order_type: 1, price: '' }))).to.equal(undefined);
    expect(validateEvent(order({ order_id: 'ордер-€-😀', symbol: '株式' }))).to.equal(undefined);
    expect(validateEvent(order({ order_id: '\\N' }))).to.equal(undefined);
    expect(validateEvent(fill({ fee: '-0.35' }))).to.equal(undefined);
    expect(validateEvent(fill({ price: '999999999999.99999999', qty: '0.00000001' }))).to.equal(undefined);
    expect(validateEvent(order({ order_id: 'x'.repeat(64), symbol: '😀'.repeat(32) }))).to.equal(undefined);
  });

  const cases: [string, EventInput, number, string][] = [
    ['NUL', order({ order_id: 'o\u0000' }), RejectCode.REJECT_CODE_INVALID_FIELD, 'order_id contains a NUL character'],
    ['control character', fill({ account_id: 'a\u0007' }), RejectCode.REJECT_CODE_INVALID_FIELD, 'account_id contains a control character'],
    ['C1 control', fill({ venue: 'x\u0085' }), RejectCode.REJECT_CODE_INVALID_FIELD, 'venue contains a control character'],
    ['newline', order({ symbol: 'A\nB' }), RejectCode.REJECT_CODE_INVALID_FIELD, 'symbol contains a control character'],
    ['unpaired surrogate', order({ order_id: 'a\ud800b' }), RejectCode.REJECT_CODE_INVALID_FIELD, 'order_id is not valid UTF-8 / Unicode'],
    ['empty id', fill({ fill_id: '' }), RejectCode.REJECT_CODE_MISSING_FIELD, 'fill_id is required'],
    ['over-long id', order({ order_id: 'x'.repeat(65) }), RejectCode.REJECT_CODE_INVALID_FIELD, 'order_id is longer than 64 characters'],
    ['over-long symbol', fill({ symbol: '😀'.repeat(33) }), RejectCode.REJECT_CODE_INVALID_FIELD, 'symbol is longer than 32 characters'],
    ['malformed decimal', fill({ price: '1e5' }), RejectCode.REJECT_CODE_INVALID_FIELD, 'price is not a decimal number'],
    ['decimal with a trailing dot', fill({ qty: '5.' }), RejectCode.REJECT_CODE_INVALID_FIELD, 'qty is not a decimal number'],
    ['too many integer digits', fill({ price: '1234567890123' }), RejectCode.REJECT_CODE_OUT_OF_RANGE, 'price has more than 12 integer digits'],
    ['too many fractional digits', order({ qty: '1.123456789' }), RejectCode.REJECT_CODE_OUT_OF_RANGE, 'qty has more than 8 fractional digits'],
    ['zero qty', fill({ qty: '0.000' }), RejectCode.REJECT_CODE_OUT_OF_RANGE, 'qty must be > 0'],
    ['negative price', fill({ price: '-1' }), RejectCode.REJECT_CODE_OUT_OF_RANGE, 'price must be > 0'],
    ['missing qty', order({ qty: '' }), RejectCode.REJECT_CODE_MISSING_FIELD, 'qty is required'],
    ['limit order without price', order({ price: '' }), RejectCode.REJECT_CODE_MISSING_FIELD, 'price is required'],
    ['unspecified side', fill({ side: 0 }), RejectCode.REJECT_CODE_INVALID_ENUM, 'side must be set (SIDE_UNSPECIFIED is not allowed)'],
    ['unknown order type', order({ order_type: 9 }), RejectCode.REJECT_CODE_INVALID_ENUM, 'order_type has an unknown value 9'],
    ['unknown event type', order({ event_type: -1 }), RejectCode.REJECT_CODE_INVALID_ENUM, 'event_type has an unknown value -1'],
    ['missing ts_ns', fill({ ts_ns: '0' }), RejectCode.REJECT_CODE_MISSING_FIELD, 'ts_ns is required (nanoseconds since the epoch)'],
    ['negative ts_ns', fill({ ts_ns: '-5' }), RejectCode.REJECT_CODE_OUT_OF_RANGE, 'ts_ns must be > 0'],
    ['missing payload', { seq: '1' }, RejectCode.REJECT_CODE_MISSING_PAYLOAD, 'event carries neither an order nor a fill'],
  ];
  for (const [name, event, code, reason] of cases) {
    it(`rejects ${name} with a reason naming the field`, () => {
      expect(validateEvent(event)).to.deep.equal({ code, reason });
    });
  }

  it('counts characters, not UTF-16 units or bytes', () => {
    expect(checkText('😀'.repeat(64), 'order_id', 64, true)).to.equal(undefined);
    expect(checkText('é'.repeat(64), 'order_id', 64, true)).to.equal(undefined);
  });

  it('accepts decimals with leading zeros and signs only where allowed', () => {
    expect(checkDecimal('007.50', 'qty', 'positive', true)).to.equal(undefined);
    expect(checkDecimal('-0', 'fee', 'any', false)).to.equal(undefined);
    expect(checkDecimal('+1', 'fee', 'any', false)?.reason).to.equal('fee is not a decimal number');
    expect(checkDecimal('.5', 'qty', 'positive', true)?.reason).to.equal('qty is not a decimal number');
    expect(checkDecimal('0000000000001', 'qty', 'positive', true)).to.equal(undefined);
  });

  it('validates source ids', () => {
    expect(validateSourceId('venue-a')).to.equal(undefined);
    expect(validateSourceId('')).to.equal('source_id is required');
    expect(validateSourceId('a\tb')).to.equal('source_id contains a control character');
  });
});
