import { expect } from 'chai';
import { InvalidEventError } from '../../../src/client/errors';
import { decodeEvent, encodeBatch, encodeEvent, encodeHello } from '../../../src/client/event-codec';
import { parseSeq, toWireEvent } from '../../../src/client/events';
import type { IngestRequest__Output } from '../../../src/generated/orderflow/v1/IngestRequest';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';

const fill = { fill_id: 'f-1', order_id: 'o-1', account_id: 'a-1', symbol: 'AAPL', side: 1, price: '189.25', qty: '100', ts_ns: '1700000000000000001', fee: '-0.01', venue: 'XNAS' } as const;

describe('client/events and event codec', () => {
  it('parseSeq takes positive bigint, decimal string or safe integer, up to 2^64-1', () => {
    expect(parseSeq(7n)).to.equal(7n);
    expect(parseSeq('18446744073709551615')).to.equal(18_446_744_073_709_551_615n);
    expect(parseSeq(42)).to.equal(42n);
    for (const bad of [0n, -1n, '0', '-3', '1.5', 'x', '', 18_446_744_073_709_551_616n, 1.5, Number.MAX_SAFE_INTEGER + 2]) {
      expect(() => parseSeq(bad), String(bad)).to.throw(InvalidEventError);
    }
  });

  it('toWireEvent needs exactly one payload and converts a bigint ts_ns exactly; a number is refused', () => {
    expect(() => toWireEvent({} as never, 1n)).to.throw(InvalidEventError, /needs a fill or an order/);
    expect(() => toWireEvent({ fill, order: { order_id: 'o' } } as never, 1n)).to.throw(InvalidEventError, /not both/);
    expect(toWireEvent({ fill: { ...fill, ts_ns: 1_700_000_000_000_000_123n } }, 3n)).to.deep.equal({ seq: 3, fill: { ...fill, ts_ns: '1700000000000000123' } });
    expect(() => toWireEvent({ fill: { ...fill, ts_ns: 1.7e18 as unknown as string } }, 1n)).to.throw(InvalidEventError, /ts_ns/);
    expect(toWireEvent({ order: { order_id: 'o' } }, 2n ** 60n).seq).to.equal('1152921504606846976');
  });

  it('framed batches decode, with the stub\'s own deserializer, to exactly the events encoded', () => {
    const deserialize = orderFlowServiceDefinition().Ingest.requestDeserialize;
    const events = [
      toWireEvent({ fill }, 1n),
      toWireEvent({ order: { order_id: 'ö-∑-🚀', account_id: 'a', symbol: 'S', side: 2, order_type: 1, event_type: 4, qty: '1', time_in_force: 2, ts_ns: '-5', client_order_id: '' } }, 2n ** 63n),
      toWireEvent({ fill: { ...fill, fill_id: 'x'.repeat(300), ts_ns: 9_223_372_036_854_775_807n } }, 3n),
    ];
    const decoded = deserialize(encodeBatch(events.map(encodeEvent))) as IngestRequest__Output;
    expect(decoded.batch!.events.map((e) => e.seq)).to.deep.equal(['1', '9223372036854775808', '3']);
    expect(decoded.batch!.events[0]!.fill).to.deep.equal(fill);
    expect(decoded.batch!.events[1]!.order).to.include({ order_id: 'ö-∑-🚀', ts_ns: '-5', side: 2, event_type: 4 });
    expect(decoded.batch!.events[2]!.fill!.fill_id).to.have.length(300);
    expect(decoded.batch!.events[2]!.fill!.ts_ns).to.equal('9223372036854775807');
    expect(decodeEvent(encodeEvent(events[0]!)).fill).to.deep.equal(fill);
  });

  it('a large batch (multi-byte lengths) round-trips, and Hello encodes like the stub would', () => {
    const deserialize = orderFlowServiceDefinition().Ingest.requestDeserialize;
    const bytes = Array.from({ length: 2_000 }, (_, i) => encodeEvent(toWireEvent({ fill: { ...fill, fill_id: `f-${i}` } }, BigInt(i + 1))));
    const decoded = deserialize(encodeBatch(bytes)) as IngestRequest__Output;
    expect(decoded.batch!.events).to.have.length(2_000);
    expect(decoded.batch!.events[1_999]!.fill!.fill_id).to.equal('f-1999');
    expect(encodeHello('src-1').equals(orderFlowServiceDefinition().Ingest.requestSerialize({ hello: { source_id: 'src-1' } }))).to.equal(true);
    expect((deserialize(encodeBatch([])) as IngestRequest__Output).batch!.events).to.deep.equal([]);
  });
});
