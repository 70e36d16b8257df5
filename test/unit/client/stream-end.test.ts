import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { classifyStreamEnd } from '../../../src/client/stream-end';

describe('client/classifyStreamEnd', () => {
  const withCode = (code: grpc.status, errorCode?: string) => {
    const metadata = new grpc.Metadata();
    if (errorCode) metadata.set('orderflow-error-code', errorCode);
    return classifyStreamEnd({ code, metadata });
  };

  it('retries what a new stream can cure', () => {
    for (const code of [grpc.status.OK, grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.INTERNAL, grpc.status.UNKNOWN]) {
      expect(withCode(code), grpc.status[code]).to.equal('retry');
    }
  });

  it('treats ABORTED as a fence, unless the server says it was a retryable transaction', () => {
    expect(withCode(grpc.status.ABORTED)).to.equal('fenced');
    expect(withCode(grpc.status.ABORTED, 'FENCED')).to.equal('fenced');
    expect(withCode(grpc.status.ABORTED, 'RETRYABLE_TX')).to.equal('retry');
  });

  it('gives up on what retrying cannot fix', () => {
    for (const code of [grpc.status.UNIMPLEMENTED, grpc.status.INVALID_ARGUMENT, grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.FAILED_PRECONDITION, grpc.status.NOT_FOUND, grpc.status.OUT_OF_RANGE, grpc.status.DATA_LOSS]) {
      expect(withCode(code), grpc.status[code]).to.equal('fatal');
    }
  });
});
