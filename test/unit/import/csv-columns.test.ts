import { expect } from 'chai';
import { mapRecord, readLayout } from '../../../src/import/csv-columns';
import type { CsvRecord } from '../../../src/import/csv-parser';

const record = (line: number, fields: string[], error?: string): CsvRecord => ({ line, fields, raw: fields.join(','), ...(error ? { error } : {}) });
const FILL_HEADER = ['fill_id', 'order_id', 'account_id', 'symbol', 'side', 'price', 'qty', 'ts_ns', 'fee', 'venue'];

describe('import/csv-columns', () => {
  it('detects fills and orders from the header, case-insensitively and in any order', () => {
    expect(readLayout(record(1, FILL_HEADER)).type).to.equal('fills');
    expect(readLayout(record(1, ['ORDER_ID', 'account_id', 'symbol', 'side', 'order_type', 'Event_Type', 'qty', 'time_in_force', 'ts_ns'])).type).to.equal('orders');
    expect(readLayout(record(1, [...FILL_HEADER].reverse())).indexes[0]).to.equal(9);
  });

  it('refuses a header with missing, unknown or repeated columns, naming each', () => {
    expect(() => readLayout(record(1, ['fill_id', 'order_id', 'qtty']))).to.throw(/missing column account_id.*|unknown column "qtty"/);
    const err = (() => {
      try {
        readLayout(record(1, [...FILL_HEADER, 'fill_id', 'extra']));
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).to.include('column "fill_id" appears twice').and.include('unknown column "extra"');
    expect(() => readLayout(record(1, ['a', 'b']))).to.throw(/neither fill_id nor event_type/);
    expect(() => readLayout(record(1, FILL_HEADER), 'orders')).to.throw(/unknown column "fill_id"/);
  });

  it('maps a row to the Event Ingest would carry, seq = line number', () => {
    const layout = readLayout(record(1, FILL_HEADER));
    const mapped = mapRecord(record(7, ['f-1', 'o-1', 'a-1', 'AAPL', 'buy', '1.5', '10', '1700000000000000001', '-0.01', 'XNAS']), layout);
    expect(mapped).to.deep.equal({
      ok: true,
      event: {
        seq: '7',
        payload: 'fill',
        fill: { fill_id: 'f-1', order_id: 'o-1', account_id: 'a-1', symbol: 'AAPL', side: 1, price: '1.5', qty: '10', ts_ns: '1700000000000000001', fee: '-0.01', venue: 'XNAS' },
      },
    });
  });

  it('accepts enum names with or without their prefix, and numbers; refuses unknown values', () => {
    const layout = readLayout(record(1, ['order_id', 'account_id', 'symbol', 'side', 'order_type', 'event_type', 'qty', 'time_in_force', 'ts_ns']));
    const row = (side: string, type: string, event: string, tif: string) => mapRecord(record(2, ['o', 'a', 's', side, type, event, '1', tif, '1']), layout);
    const ok = row('SIDE_SELL', 'limit', 'ORDER_EVENT_TYPE_CANCELED', '2');
    expect(ok.ok && ok.event.order).to.include({ side: 2, order_type: 2, event_type: 4, time_in_force: 2, price: '', client_order_id: '' });
    expect(row('sideways', 'LIMIT', 'NEW', 'DAY')).to.deep.equal({ ok: false, code: 'REJECT_CODE_INVALID_ENUM', reason: 'side has an unknown value "sideways"' });
    expect(row('BUY', 'LIMIT', 'NEW', '9')).to.include({ ok: false, code: 'REJECT_CODE_INVALID_ENUM' });
  });

  it('rejects a row with the wrong number of fields or malformed CSV', () => {
    const layout = readLayout(record(1, FILL_HEADER));
    expect(mapRecord(record(3, ['f-1', 'o-1']), layout)).to.deep.equal({ ok: false, code: 'REJECT_CODE_INVALID_FIELD', reason: 'expected 10 fields, got 2' });
    expect(mapRecord(record(3, ['x'], 'a stray quote'), layout)).to.deep.equal({ ok: false, code: 'REJECT_CODE_INVALID_FIELD', reason: 'malformed CSV: a stray quote' });
  });
});
