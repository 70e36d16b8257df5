import { expect } from 'chai';
import fc from 'fast-check';
import type { IngestRequest } from '../../../src/generated/orderflow/v1/IngestRequest';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import { validateEvent } from '../../../src/ingest/validate';
import { INVALID_UTF8_MARK, decodeIngestRequest, encodeEvent, encodeIngestBatch, int64ToString, rawEventBytes, uint64ToString, WireFormatError } from '../../../src/ingest/wire-format';
import type { EventInput } from '../../../src/ingest/event';

const definition = orderFlowServiceDefinition().Ingest;
/** proto-loader's own serializer/deserializer: the reference implementation. */
const serialize = (msg: IngestRequest): Buffer => definition.requestSerialize(msg);
const referenceDecode = (buf: Buffer) => definition.requestDeserialize(buf) as unknown as Record<string, unknown>;

/** Drops raw locations and absent (null) members, which the two decoders spell differently. */
function normalise(msg: unknown): unknown {
  return JSON.parse(JSON.stringify(msg, (key, value: unknown) => (key === 'raw' || value === null ? undefined : value)));
}
type Events = NonNullable<IngestRequest['batch']>['events'];

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const text = fc.string({ unit: 'grapheme', maxLength: 20 });
const enumValue = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: -5, max: 1_000_000 }));

const orderArb = fc.record({
  order_id: text, account_id: text, symbol: text, side: enumValue, order_type: enumValue, event_type: enumValue,
  price: text, qty: text, time_in_force: enumValue, ts_ns: i64.map(String), client_order_id: text,
});
const fillArb = fc.record({
  fill_id: text, order_id: text, account_id: text, symbol: text, side: enumValue, price: text, qty: text,
  ts_ns: i64.map(String), fee: text, venue: text,
});
const eventArb = fc.oneof(
  fc.record({ seq: u64.map(String), order: orderArb }),
  fc.record({ seq: u64.map(String), fill: fillArb }),
  fc.record({ seq: u64.map(String) }),
);

describe('ingest/wire-format', () => {
  it('converts 64-bit halves to exact decimal strings', () => {
    fc.assert(
      fc.property(u64, (v) => {
        expect(uint64ToString(Number(v & 0xffffffffn), Number(v >> 32n))).to.equal(v.toString());
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(i64, (v) => {
        const u = BigInt.asUintN(64, v);
        expect(int64ToString(Number(u & 0xffffffffn), Number(u >> 32n))).to.equal(v.toString());
      }),
      { numRuns: 2_000 },
    );
    expect(uint64ToString(0xffffffff, 0xffffffff)).to.equal('18446744073709551615');
    // Either side of 2^53 (where the exact double path ends) and of the 10^7 digit groups.
    for (const v of [2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 10n ** 16n, 10n ** 17n - 1n, 10n ** 19n, 1_710_000_000_000_000_000n, 2n ** 63n - 1n]) {
      expect(uint64ToString(Number(v & 0xffffffffn), Number(v >> 32n))).to.equal(v.toString());
    }
    expect(int64ToString(0, 0x80000000)).to.equal('-9223372036854775808');
  });

  it('decodes batches exactly as proto-loader does', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 8 }), (events) => {
        const buf = serialize({ batch: { events: events as Events } });
        expect(normalise(decodeIngestRequest(buf))).to.deep.equal(normalise(referenceDecode(buf)));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes Hello', () => {
    expect(decodeIngestRequest(serialize({ hello: { source_id: 'venue-ä-1' } }))).to.deep.equal({ msg: 'hello', hello: { source_id: 'venue-ä-1' }, batch: null });
  });

  it("records each event's exact bytes; the encoder round-trips through both decoders", () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 5 }), (events) => {
        const buf = serialize({ batch: { events: events as Events } });
        const decoded = decodeIngestRequest(buf).batch!.events;
        for (let i = 0; i < events.length; i++) {
          const single = serialize({ batch: { events: [events[i]!] as Events } });
          const raw = rawEventBytes(decoded[i]!);
          // The event's bytes are the tail of a one-event batch message (after two tag+length headers).
          expect(single.subarray(single.length - raw.length).equals(raw)).to.equal(true);
          const { raw: _raw, ...withoutRaw } = decoded[i]!;
          const reencoded = encodeIngestBatch([withoutRaw as EventInput]);
          expect(normalise(decodeIngestRequest(reencoded).batch!.events[0])).to.deep.equal(normalise(decoded[i]));
          expect(normalise(referenceDecode(reencoded))).to.deep.equal(normalise(referenceDecode(single)));
          expect(encodeEvent(withoutRaw as EventInput).length).to.be.at.most(raw.length);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('skips unknown fields and lets the last oneof member win', () => {
    // Event{seq=5, order{order_id="a"}, fill{fill_id="b"}, field 99 varint}
    const order = Buffer.from([0x0a, 0x01, 0x61]);
    const fill = Buffer.from([0x0a, 0x01, 0x62]);
    const event = Buffer.concat([Buffer.from([0x08, 0x05, 0x12, order.length]), order, Buffer.from([0x1a, fill.length]), fill, Buffer.from([0x98, 0x06, 0x01])]);
    const batch = Buffer.concat([Buffer.from([0x0a, event.length]), event]);
    const msg = Buffer.concat([Buffer.from([0x12, batch.length]), batch]);
    const decoded = decodeIngestRequest(msg).batch!.events[0]!;
    expect(decoded.payload).to.equal('fill');
    expect(decoded.fill!.fill_id).to.equal('b');
    expect(decoded.order).to.equal(null);
    expect(decoded.seq).to.equal('5');
  });

  it('marks invalid UTF-8 so that validation rejects it instead of storing U+FFFD', () => {
    const good = serialize({ batch: { events: [{ seq: '1', fill: { fill_id: 'ab\ufffdcd' } }] } });
    expect(decodeIngestRequest(good).batch!.events[0]!.fill!.fill_id).to.equal('ab\ufffdcd');
    const bad = Buffer.from(good);
    const at = bad.indexOf(Buffer.from('ab'));
    bad[at + 2] = 0xff; // the first byte of U+FFFD's encoding becomes an invalid byte
    const event = decodeIngestRequest(bad).batch!.events[0]!;
    expect(event.fill!.fill_id.endsWith(INVALID_UTF8_MARK)).to.equal(true);
    expect(validateEvent(event)).to.deep.equal({ code: 2, reason: 'fill_id is not valid UTF-8 / Unicode' });
  });

  it('refuses truncated messages', () => {
    const buf = serialize({ batch: { events: [{ seq: '7', fill: { fill_id: 'abc' } }] } });
    expect(() => decodeIngestRequest(buf.subarray(0, buf.length - 2))).to.throw(WireFormatError);
    expect(() => decodeIngestRequest(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).to.throw(WireFormatError);
  });
});
