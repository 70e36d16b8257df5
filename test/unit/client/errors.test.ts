import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { EventRejectedError, FencedError, OrderFlowClientError, rejectCodeName, statusName, toClientError } from '../../../src/client/errors';

describe('client/errors', () => {
  it('toClientError keeps status, details and the server trailers', () => {
    const metadata = new grpc.Metadata();
    metadata.set('orderflow-error-code', 'INVALID_ARGUMENT');
    metadata.set('orderflow-field', 'page_size');
    const err = toClientError(Object.assign(new Error('3 INVALID_ARGUMENT: page_size: too big'), { code: grpc.status.INVALID_ARGUMENT, details: 'page_size: too big', metadata }), 'ListFills');
    expect(err).to.be.instanceOf(OrderFlowClientError).and.include({ code: 3, details: 'page_size: too big', errorCode: 'INVALID_ARGUMENT', field: 'page_size', name: 'OrderFlowClientError' });
    expect(err.message).to.equal('ListFills failed with INVALID_ARGUMENT: page_size: too big');
    expect(toClientError(new Error('boom')).code).to.equal(grpc.status.UNKNOWN);
  });

  it('domain errors carry typed fields and a readable message', () => {
    const rejected = new EventRejectedError('src', 12n, 3, 'qty must be > 0');
    expect(rejected).to.include({ code: grpc.status.INVALID_ARGUMENT, seq: 12n, rejectCode: 3, rejectCodeName: 'REJECT_CODE_OUT_OF_RANGE', reason: 'qty must be > 0', name: 'EventRejectedError' });
    const fenced = new FencedError('src', 'newer-stream', 'A newer stream took over.');
    expect(fenced).to.include({ code: grpc.status.ABORTED, sourceId: 'src', reason: 'newer-stream' });
    expect(fenced.message).to.match(/^Fenced: a newer ingest stream for source "src" took over/);
    expect(statusName(14)).to.equal('UNAVAILABLE');
    expect(rejectCodeName(99)).to.equal('REJECT_CODE_99');
  });
});
