import { expect } from 'chai';
// The package's own name resolves through package.json "exports", as it does for users.
import * as orderflow from 'orderflow';

describe('package entry point', () => {
  it('exports the client, its errors and the proto enums', () => {
    expect(orderflow.createOrderFlowClient).to.be.a('function');
    for (const name of ['OrderFlowClient', 'IngestProducer', 'OrderFlowClientError', 'EventRejectedError', 'FencedError', 'ProducerClosedError', 'SpoolError'] as const) {
      expect(orderflow[name], name).to.be.a('function');
    }
    expect(orderflow.Side.SIDE_BUY).to.equal(1);
    expect(orderflow.RejectCode.REJECT_CODE_STORAGE_REFUSED).to.equal(7);
    expect(new orderflow.FencedError('s', 'newer-stream', 'x')).to.be.instanceOf(orderflow.OrderFlowClientError);
  });
});
