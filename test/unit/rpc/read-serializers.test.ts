import { expect } from 'chai';
import type { Order } from '../../../src/generated/orderflow/v1/Order';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import type { ListFillsResponse } from '../../../src/generated/orderflow/v1/ListFillsResponse';
import { AnswerMemo, deepFreeze, memoizeFrozen, withReadSerializers } from '../../../src/rpc/read-serializers';

const ORDER: Order = {
  order_id: 'o-1',
  client_order_id: 'c-1',
  account_id: 'A-1',
  symbol: 'AAPL',
  side: 1,
  order_type: 2,
  time_in_force: 1,
  status: 3,
  price: '189.2500',
  qty: '500',
  filled_qty: '200',
  avg_fill_price: '189.2500',
  created_ts_ns: '9223372036854775807',
  updated_ts_ns: '1710000000223456789',
};

describe('rpc/read-serializers', () => {
  it('encodes a frozen message once and reuses its bytes; other messages are encoded every time', () => {
    let encodes = 0;
    const serialize = memoizeFrozen((o: { v: string }) => (encodes++, Buffer.from(o.v)));
    const frozen = Object.freeze({ v: 'a' });
    expect(serialize(frozen).toString()).to.equal('a');
    expect(serialize(frozen).toString()).to.equal('a');
    expect(encodes, 'the frozen object is encoded once').to.equal(1);
    const open = { v: 'b' };
    serialize(open);
    open.v = 'c';
    expect(serialize(open).toString(), 'a mutable object is encoded as it is now').to.equal('c');
    expect(encodes).to.equal(3);
    expect(serialize(Object.freeze({ v: 'a' })).toString(), 'an equal but new object is encoded anew').to.equal('a');
    expect(encodes).to.equal(4);
  });

  it("GetOrder's wrapped serializer gives the same bytes as proto-loader's, which decode to the order (int64 exact)", () => {
    const plain = orderFlowServiceDefinition().GetOrder;
    const wrapped = withReadSerializers(orderFlowServiceDefinition()).GetOrder;
    const frozen = Object.freeze({ ...ORDER });
    const first = wrapped.responseSerialize(frozen);
    expect(wrapped.responseSerialize(frozen), 'the same bytes object on a repeat').to.equal(first);
    expect(first.equals(plain.responseSerialize(ORDER))).to.equal(true);
    expect(plain.responseDeserialize(first)).to.deep.equal(ORDER);
    expect(wrapped.responseSerialize({ ...ORDER, qty: '7' }).equals(plain.responseSerialize({ ...ORDER, qty: '7' }))).to.equal(true);
  });

  it('deepFreeze freezes the message and every object and array inside it', () => {
    const page: ListFillsResponse = { fills: [{ fill: { fill_id: 'f-1', qty: '5' }, source_id: 's', seq: '1' }], next_page_token: 't' };
    const frozen = deepFreeze(page);
    expect(frozen).to.equal(page);
    for (const part of [page, page.fills, page.fills![0], page.fills![0]!.fill]) expect(Object.isFrozen(part)).to.equal(true);
    const shallow = Object.freeze({ inner: { v: 1 } });
    deepFreeze({ shallow });
    expect(Object.isFrozen(shallow.inner), 'into an already frozen object').to.equal(true);
  });

  it('AnswerMemo builds one frozen answer per cached value and key', () => {
    const memo = new AnswerMemo<string[], { items: string[] }>();
    let builds = 0;
    const build = (rows: string[]) => (builds++, { items: rows.slice(0, 1) });
    const rows = ['a', 'b'];
    const first = memo.answer('k1', rows, build);
    expect(first).to.deep.equal({ items: ['a'] });
    expect(Object.isFrozen(first) && Object.isFrozen(first.items)).to.equal(true);
    expect(memo.answer('k1', rows, build), 'a repeat hit').to.equal(first);
    expect(builds).to.equal(1);
    expect(memo.answer('k1', ['a', 'b'], build), 'a new value (the entry was refreshed)').to.not.equal(first);
    expect(builds).to.equal(2);
    const other = memo.answer('k2', rows, (r) => (builds++, { items: r.slice(1) }));
    expect(other, 'the same value under another key is not reused').to.deep.equal({ items: ['b'] });
    expect(builds).to.equal(3);
  });

  it("ListFills' wrapped serializer keeps the bytes of a frozen page, equal to proto-loader's", () => {
    const plain = orderFlowServiceDefinition().ListFills;
    const wrapped = withReadSerializers(orderFlowServiceDefinition()).ListFills;
    const page: ListFillsResponse = {
      fills: [{ fill: { fill_id: 'f-1', order_id: 'o-1', account_id: 'A', symbol: 'S', side: 1, price: '1.5', qty: '2', ts_ns: '9223372036854775807', fee: '', venue: 'X' }, source_id: 's', seq: '18446744073709551615' }],
      next_page_token: 'next',
    };
    const expected = plain.responseSerialize(page);
    const frozen = deepFreeze(structuredClone(page));
    const first = wrapped.responseSerialize(frozen);
    expect(first.equals(expected)).to.equal(true);
    expect(wrapped.responseSerialize(frozen), 'the same bytes object on a repeat').to.equal(first);
    expect(plain.responseDeserialize(first).fills[0]!.seq).to.equal('18446744073709551615');
  });
});
