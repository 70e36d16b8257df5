import { expect } from 'chai';
import type { Order } from '../../../src/generated/orderflow/v1/Order';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import { memoizeFrozen, withReadSerializers } from '../../../src/rpc/read-serializers';

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
});
