import { expect } from 'chai';
import fc from 'fast-check';
import { CopyTextEncoder } from '../../../src/db/copy/encoder';
import { CopyRowSet } from '../../../src/db/copy/loader';
import type { IngestRequest } from '../../../src/generated/orderflow/v1/IngestRequest';
import type { EventInput, FillInput, OrderEventInput } from '../../../src/ingest/event';
import { validateFill, validateOrderEvent } from '../../../src/ingest/validate';
import { decodeIngestRequest, decodeWireFill, decodeWireOrder, encodeEvent, WireFormatError } from '../../../src/ingest/wire-format';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import { ChangeSetBuilder } from '../../../src/store/change-set';
import { encodeFillRow, encodeOrderEventRow, encodeWireFillRow, encodeWireOrderEventRow } from '../../../src/store/events';

const serialize = (msg: IngestRequest): Buffer => orderFlowServiceDefinition().Ingest.requestSerialize(msg);
type Events = NonNullable<IngestRequest['batch']>['events'];

const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).filter((c) => c !== '\\');
const plainText = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...PRINTABLE), minLength, maxLength });
const digits = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength });
/** Decimals around every rule: signs, leading zeros, 12/13 integer and 8/9 fractional digits, zero, malformed shapes. */
const decimal = fc.oneof(
  fc.tuple(fc.constantFrom('', '', '-'), fc.constantFrom('', '0', '000'), digits(1, 13), fc.option(digits(0, 9))).map(([sign, zeros, int, frac]) => `${sign}${zeros}${int}${frac === null ? '' : `.${frac}`}`),
  fc.constantFrom('', '0', '0.0', '-0', '1.', '.5', '+1', '1e5', ' 1', '1,5', '１', '1.5.5', '-', '0.00000001', '999999999999.99999999'),
);
const int64 = fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constantFrom(0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 10n ** 16n, 1_710_000_000_123_456_789n, 2n ** 63n - 1n));
/** Plain decimals > 0: up to 12 significant integer digits (leading zeros free), up to 8 fractional. */
const positiveDecimal = fc
  .tuple(fc.constantFrom('', '0', '000'), fc.integer({ min: 1, max: 9 }), digits(0, 11), fc.option(digits(1, 8)))
  .map(([zeros, first, rest, frac]) => `${zeros}${first}${rest}${frac === null ? '' : `.${frac}`}`);
/** Decimals on and just past each rule. */
const nearMissDecimal = fc.oneof(decimal, fc.constantFrom('1234567890123', '0001234567890123.5', '1.123456789', '-1', '0', '0.000000000', '12345678901234567890'));
/** Mostly the valid value, sometimes a near miss: most fills are valid, and the rules are crossed a field at a time. */
const mostly = <T>(valid: fc.Arbitrary<T>, nearMiss: fc.Arbitrary<T>) => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: nearMiss });

/** Fills that are plain and valid. */
const plainValidFillArb = fc.record({
  fill_id: plainText(1, 64),
  order_id: plainText(1, 64),
  account_id: plainText(1, 64),
  symbol: plainText(1, 32),
  side: fc.constantFrom(1, 2),
  price: positiveDecimal,
  qty: positiveDecimal,
  ts_ns: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
  fee: fc.oneof(fc.constantFrom('', '0', '-0.01', '-000123456789012.12345678'), positiveDecimal),
  venue: plainText(0, 64),
});
/** Fills that are mostly plain and valid, with every kind of near miss. */
const fillArb = fc.record({
  fill_id: mostly(plainText(1, 64), fc.oneof(fc.constantFrom('', 'x'.repeat(65), 'f\\1', 'f\u00e91', 'f\u00011', 'f\u007f'), fc.string({ maxLength: 8 }))),
  order_id: mostly(plainText(1, 64), fc.constantFrom('', 'o\\1', 'ördér', 'o\t1', 'x'.repeat(65), '😀')),
  account_id: mostly(plainText(1, 64), fc.constantFrom('', 'x'.repeat(65), 'a\n', 'a\u0085')),
  symbol: mostly(plainText(1, 32), fc.constantFrom('', 'x'.repeat(33), 'S\\')),
  side: mostly(fc.constantFrom(1, 2), fc.constantFrom(-1, 0, 3, 1_000)),
  price: mostly(positiveDecimal, nearMissDecimal),
  qty: mostly(positiveDecimal, nearMissDecimal),
  ts_ns: mostly(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), int64).map(String),
  fee: mostly(fc.constantFrom('', '0', '-1.5', '12.25'), nearMissDecimal),
  venue: mostly(plainText(0, 64), fc.constantFrom('x'.repeat(65), 'XNÄS', 'a\\b')),
});

/** Order events that are plain and valid: a price where the type needs one (limit, stop limit), sometimes where it does not. */
const plainValidOrderArb = fc
  .record({
    order_id: plainText(1, 64),
    account_id: plainText(1, 64),
    symbol: plainText(1, 32),
    side: fc.constantFrom(1, 2),
    order_type: fc.integer({ min: 1, max: 4 }),
    event_type: fc.integer({ min: 1, max: 6 }),
    price: fc.oneof(positiveDecimal, fc.constant('')),
    qty: positiveDecimal,
    time_in_force: fc.integer({ min: 1, max: 4 }),
    ts_ns: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
    client_order_id: plainText(0, 64),
  })
  .map((o) => (o.price === '' && (o.order_type === 2 || o.order_type === 4) ? { ...o, price: '1.5' } : o));
/** Order events that are mostly plain and valid, with near misses. */
const orderArb = fc.record({
  order_id: mostly(plainText(1, 64), fc.constantFrom('', 'o\\1', 'ördér', 'x'.repeat(65))),
  account_id: mostly(plainText(1, 64), fc.constantFrom('', 'a\n')),
  symbol: mostly(plainText(1, 32), fc.constantFrom('', 'x'.repeat(33))),
  side: mostly(fc.constantFrom(1, 2), fc.constantFrom(0, 3)),
  order_type: mostly(fc.integer({ min: 1, max: 4 }), fc.constantFrom(0, 5)),
  event_type: mostly(fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, 7)),
  price: mostly(fc.oneof(positiveDecimal, fc.constant('')), nearMissDecimal),
  qty: mostly(positiveDecimal, nearMissDecimal),
  time_in_force: mostly(fc.integer({ min: 1, max: 4 }), fc.constantFrom(0, 5)),
  ts_ns: mostly(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), int64).map(String),
  client_order_id: mostly(plainText(0, 64), fc.constantFrom('x'.repeat(65), 'cl\\1', 'clé')),
});

function decodeBothOrders(orders: OrderEventInput[]): { eager: EventInput[]; lazy: EventInput[] } {
  const buf = serialize({ batch: { events: orders.map((order, i) => ({ seq: String(i + 1), order })) as Events } });
  return { eager: decodeIngestRequest(buf).batch!.events, lazy: decodeIngestRequest(buf, { plainEventsAsBytes: true }).batch!.events };
}

function decodeBoth(fills: FillInput[]): { eager: EventInput[]; lazy: EventInput[] } {
  const buf = serialize({ batch: { events: fills.map((fill, i) => ({ seq: String(i + 1), fill })) as Events } });
  return { eager: decodeIngestRequest(buf).batch!.events, lazy: decodeIngestRequest(buf, { plainEventsAsBytes: true }).batch!.events };
}

function rowOf(write: (rows: CopyRowSet) => void): string {
  const rows = new CopyRowSet();
  write(rows);
  return rows.encoder.view().toString('utf8');
}

const SOURCE_FIELD = Buffer.from('src-1');

describe('ingest: events left in their bytes', () => {
  it('only plain valid fills stay in their bytes, and they decode to exactly what the string decoder yields', () => {
    fc.assert(
      fc.property(fc.array(fillArb, { minLength: 1, maxLength: 6 }), (fills) => {
        const { eager, lazy } = decodeBoth(fills);
        lazy.forEach((ev, i) => {
          const expected = eager[i]!;
          expect(ev.seq).to.equal(expected.seq);
          expect(ev.raw).to.deep.equal(expected.raw);
          if (ev.wireFill) {
            expect(ev.fill).to.equal(null);
            expect(validateFill(expected.fill!), 'a fill left in bytes passes validation').to.equal(undefined);
            expect(Object.values(expected.fill!).every((v) => typeof v !== 'string' || /^[\x20-\x5b\x5d-\x7e]*$/.test(v)), 'and is plain').to.equal(true);
            expect(decodeWireFill(ev.wireFill)).to.deep.equal(expected.fill);
            expect(encodeEvent(ev).equals(encodeEvent({ ...expected, raw: undefined }))).to.equal(true);
          } else {
            expect(ev.fill).to.deep.equal(expected.fill);
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  it('every plain valid fill stays in its bytes', () => {
    fc.assert(
      fc.property(fc.array(plainValidFillArb, { minLength: 1, maxLength: 4 }), (fills) => {
        const { lazy } = decodeBoth(fills);
        for (const ev of lazy) expect(ev.wireFill, JSON.stringify(fills)).to.not.equal(null);
      }),
      { numRuns: 300 },
    );
  });

  it('encodes the same COPY row and the same change set from the bytes as from the strings', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(plainValidFillArb, fillArb), { minLength: 1, maxLength: 6 }), (fills) => {
        const { eager, lazy } = decodeBoth(fills);
        const fromBytes = new ChangeSetBuilder();
        const fromStrings = new ChangeSetBuilder();
        lazy.forEach((ev, i) => {
          if (!ev.wireFill) return;
          const fill = eager[i]!.fill!;
          expect(rowOf((rows) => encodeWireFillRow(rows, SOURCE_FIELD, ev.seq, ev.wireFill!))).to.equal(rowOf((rows) => encodeFillRow(rows, SOURCE_FIELD, ev.seq, fill)));
          fromBytes.addWireFill(ev.wireFill);
          fromStrings.addFill(fill.order_id, fill.account_id, fill.symbol);
        });
        expect(fromBytes.build()).to.deep.equal(fromStrings.build());
      }),
      { numRuns: 300 },
    );
  });

  it('only plain valid order events stay in their bytes, and they decode and encode as the string path does', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(plainValidOrderArb, orderArb), { minLength: 1, maxLength: 6 }), (orders) => {
        const { eager, lazy } = decodeBothOrders(orders);
        const fromBytes = new ChangeSetBuilder();
        const fromStrings = new ChangeSetBuilder();
        lazy.forEach((ev, i) => {
          const expected = eager[i]!;
          expect(ev.raw).to.deep.equal(expected.raw);
          if (!ev.wireOrder) {
            expect(ev.order).to.deep.equal(expected.order);
            return;
          }
          const order = expected.order!;
          expect(ev.order).to.equal(null);
          expect(validateOrderEvent(order), 'an order event left in bytes passes validation').to.equal(undefined);
          expect(decodeWireOrder(ev.wireOrder)).to.deep.equal(order);
          expect(encodeEvent(ev).equals(encodeEvent({ ...expected, raw: undefined }))).to.equal(true);
          expect(rowOf((rows) => encodeWireOrderEventRow(rows, SOURCE_FIELD, ev.seq, ev.wireOrder!))).to.equal(rowOf((rows) => encodeOrderEventRow(rows, SOURCE_FIELD, ev.seq, order)));
          fromBytes.addWireOrderEvent(ev.wireOrder);
          fromStrings.addOrderEvent(order.order_id, order.account_id);
        });
        expect(fromBytes.build()).to.deep.equal(fromStrings.build());
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(plainValidOrderArb, { minLength: 1, maxLength: 4 }), (orders) => {
        for (const ev of decodeBothOrders(orders).lazy) expect(ev.wireOrder, JSON.stringify(orders)).to.not.equal(null);
      }),
      { numRuns: 300 },
    );
  });

  it('still refuses malformed bytes inside a fill before any event is used', () => {
    // Event{seq=1, fill{fill_id: length 9 but only 3 bytes}}
    const fill = Buffer.from([0x0a, 0x09, 0x61, 0x62, 0x63]);
    const event = Buffer.concat([Buffer.from([0x08, 0x01, 0x1a, fill.length]), fill]);
    const batch = Buffer.concat([Buffer.from([0x0a, event.length]), event]);
    const msg = Buffer.concat([Buffer.from([0x12, batch.length]), batch]);
    expect(() => decodeIngestRequest(msg, { plainEventsAsBytes: true })).to.throw(WireFormatError, 'length past the end');
  });

  it('merges a second fill message into one left in its bytes, as protobuf requires', () => {
    const first = serialize({ batch: { events: [{ seq: '1', fill: { fill_id: 'f1', order_id: 'o1', account_id: 'a1', symbol: 'S', side: 1, price: '1', qty: '1', ts_ns: '5' } }] } });
    const decodedFirst = decodeIngestRequest(first, { plainEventsAsBytes: true }).batch!.events[0]!;
    expect(decodedFirst.wireFill).to.not.equal(null);
    // Append a second fill message {qty: "7"} to the event: fields of the second win, the rest are kept.
    const second = Buffer.from([0x3a, 0x01, 0x37]);
    const raw = decodedFirst.raw!;
    const event = Buffer.concat([raw.buffer.subarray(raw.start, raw.end), Buffer.from([0x1a, second.length]), second]);
    const batch = Buffer.concat([Buffer.from([0x0a, event.length]), event]);
    const msg = Buffer.concat([Buffer.from([0x12, batch.length]), batch]);
    const merged = decodeIngestRequest(msg, { plainEventsAsBytes: true }).batch!.events[0]!;
    expect(merged.wireFill).to.equal(null);
    expect(merged.fill).to.include({ fill_id: 'f1', order_id: 'o1', qty: '7', ts_ns: '5' });
  });

  it('writes 64-bit values as exact decimal digits', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 9n, 10n, 2n ** 53n - 1n, 2n ** 53n, 10n ** 19n, 2n ** 64n - 1n)), (v) => {
        const e = new CopyTextEncoder(16);
        e.uint64(Number(v & 0xffffffffn), Number(v >> 32n));
        e.uint64(7, 0);
        expect(e.view().toString()).to.equal(`${v}\t7`);
      }),
      { numRuns: 2_000 },
    );
  });
});
