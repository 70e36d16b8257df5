import { expect } from 'chai';
import { CancelledError, DbUnavailableError, FencedError, InvalidArgumentError, InternalError, NotFoundError, OverloadedError } from '../../../src/errors';

describe('errors/OrderflowError', () => {
  it('answers (invalid argument, not found, overloaded, cancelled) carry no stack frames, only their header', () => {
    for (const err of [new InvalidArgumentError('order_id', 'must not be empty'), new NotFoundError('order', 'o-1'), new OverloadedError(), new CancelledError()]) {
      expect(err.stack, err.name).to.equal(`${err.name}: ${err.message}`);
    }
  });

  it('faults keep their stack frames, and the process limit is restored after an answer', () => {
    new NotFoundError('order', 'o-1');
    for (const err of [new DbUnavailableError(), new FencedError('src'), new InternalError(), new Error('plain')]) {
      expect(err.stack!.split('\n').length, err.name).to.be.greaterThan(1);
      expect(err.stack, err.name).to.include('orderflow-error.test');
    }
  });
});
