import { status } from '@grpc/grpc-js';
import { expect } from 'chai';
import {
  AcquireTimeoutError,
  DbTimeoutError,
  DbUnavailableError,
  FencedError,
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  ShuttingDownError,
  type ErrorCode,
} from '../../../src/errors';
import { GRPC_STATUS_BY_CODE, toGrpcStatus } from '../../../src/rpc/status';

describe('rpc/toGrpcStatus', () => {
  it('maps each domain error to its status with its fixed message', () => {
    const cases: [Error, status][] = [
      [new InvalidArgumentError('order_id', 'must not be empty'), status.INVALID_ARGUMENT],
      [new NotFoundError('order', 'o-1'), status.NOT_FOUND],
      [new OverloadedError(), status.RESOURCE_EXHAUSTED],
      [new AcquireTimeoutError(5), status.RESOURCE_EXHAUSTED],
      [new ShuttingDownError(), status.UNAVAILABLE],
      [new FencedError('src'), status.ABORTED],
      [new DbUnavailableError(), status.UNAVAILABLE],
      [new DbTimeoutError(), status.DEADLINE_EXCEEDED],
    ];
    for (const [err, code] of cases) {
      const mapped = toGrpcStatus(err);
      expect(mapped.code, err.name).to.equal(code);
      expect(mapped.details).to.equal(err.message);
    }
  });

  it('never forwards an unknown error, even one with a numeric code', () => {
    const raw = Object.assign(new Error('password=hunter2 in connection string'), { code: 5 });
    const mapped = toGrpcStatus(raw);
    expect(mapped.code).to.equal(status.INTERNAL);
    expect(mapped.details).to.equal('An internal error occurred.');
  });

  it('names the bad field in metadata for INVALID_ARGUMENT', () => {
    const mapped = toGrpcStatus(new InvalidArgumentError('page_size', 'must be at most 1000'));
    expect(mapped.metadata?.get('orderflow-field')).to.deep.equal(['page_size']);
  });

  it('has an explicit status for every error code', () => {
    const codes: ErrorCode[] = ['INVALID_ARGUMENT', 'INVALID_EVENT', 'DUPLICATE', 'NOT_FOUND', 'OVERLOADED', 'SHUTTING_DOWN', 'FENCED', 'CANCELLED', 'DB_UNAVAILABLE', 'DB_TIMEOUT', 'ACQUIRE_TIMEOUT', 'RETRYABLE_TX', 'CONFIG', 'INTERNAL'];
    for (const code of codes) expect(GRPC_STATUS_BY_CODE[code], code).to.be.a('number');
  });
});
