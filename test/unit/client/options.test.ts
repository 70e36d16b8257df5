import { expect } from 'chai';
import { ClientOptionsError } from '../../../src/client/errors';
import { channelOptionsFor, resolveProducerOptions } from '../../../src/client/options';

describe('client/options', () => {
  it('applies the producer defaults', () => {
    const o = resolveProducerOptions({ sourceId: 'venue-1' });
    expect(o).to.include({ sourceId: 'venue-1', maxWindowEvents: 10_000, maxBatchEvents: 500, lingerMs: 0, closeTimeoutMs: 30_000, maxReconnectAttempts: Number.POSITIVE_INFINITY });
    expect(o.backoff).to.deep.equal({ initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2 });
  });

  it('names every bad producer option in one error', () => {
    let err: ClientOptionsError | undefined;
    try {
      resolveProducerOptions({ sourceId: 'bad\nid', maxWindowEvents: 0, maxBatchEvents: 1.5, lingerMs: -1, reconnect: { initialDelayMs: 500, maxDelayMs: 100, multiplier: 0.5, maxAttempts: 0 }, spool: { path: '', fsync: 'sometimes' as never } });
    } catch (e) {
      err = e as ClientOptionsError;
    }
    expect(err).to.be.instanceOf(ClientOptionsError);
    for (const key of ['sourceId', 'maxWindowEvents', 'maxBatchEvents', 'lingerMs', 'reconnect.multiplier', 'reconnect.maxDelayMs', 'reconnect.maxAttempts', 'spool.path', 'spool.fsync']) {
      expect(err!.problems.join('\n')).to.include(key);
    }
  });

  it('sets keepalive and a short channel backoff, and lets channelOptions win', () => {
    expect(channelOptionsFor({ address: 'h:1' })).to.include({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.max_reconnect_backoff_ms': 5_000 });
    expect(channelOptionsFor({ address: 'h:1', keepaliveTimeMs: 0 })).to.not.have.property('grpc.keepalive_time_ms');
    expect(channelOptionsFor({ address: 'h:1', channelOptions: { 'grpc.max_reconnect_backoff_ms': 7 } })['grpc.max_reconnect_backoff_ms']).to.equal(7);
  });
});
