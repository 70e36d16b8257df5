import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { InvalidArgumentError } from '../../../src/errors';
import { unaryCall } from '../../../src/rpc/unary-call';
import { silentLogger } from '../../../src/telemetry/logger';

/** The parts of a grpc-js ServerUnaryCall that unaryCall uses: a real EventEmitter with `cancelled`, a deadline and metadata. */
class FakeUnaryCall extends EventEmitter {
  cancelled = false;
  readonly metadata = new grpc.Metadata();
  constructor(
    readonly request: { id: string },
    private readonly deadline: number = Infinity,
  ) {
    super();
  }
  getDeadline(): number {
    return this.deadline;
  }
  cancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

type Outcome = { err: grpc.ServiceError | null; res?: unknown };

function invoke(handler: grpc.handleUnaryCall<{ id: string }, unknown>, call: FakeUnaryCall): { sync: Outcome | undefined; done: Promise<Outcome> } {
  let sync: Outcome | undefined;
  let resolveDone!: (o: Outcome) => void;
  const done = new Promise<Outcome>((resolve) => (resolveDone = resolve));
  handler(call as unknown as grpc.ServerUnaryCall<{ id: string }, unknown>, (err, res) => {
    sync = { err: err as grpc.ServiceError | null, res };
    resolveDone(sync);
  });
  return { sync, done };
}

describe('rpc/unary-call', () => {
  it('answers a synchronous result at once, without a cancelled listener or a deadline timer', () => {
    const call = new FakeUnaryCall({ id: 'a' }, Date.now() + 60_000);
    const { sync } = invoke(
      unaryCall<{ id: string }, unknown>('GetOrder', silentLogger, (req) => ({ echo: req.id })),
      call,
    );
    expect(sync, 'the callback ran before the handler returned').to.deep.equal({ err: null, res: { echo: 'a' } });
    expect(call.listenerCount('cancelled')).to.equal(0);
  });

  it('builds the signal only when asked; it fires on the cancel, and the listener is removed when the call ends', async () => {
    const call = new FakeUnaryCall({ id: 'b' });
    let signal: AbortSignal | undefined;
    const { done } = invoke(
      unaryCall<{ id: string }, unknown>('GetOrder', silentLogger, (_req, scope) => {
        signal = scope.signal;
        return new Promise((_resolve, reject) => signal!.addEventListener('abort', () => reject(signal!.reason)));
      }),
      call,
    );
    expect(call.listenerCount('cancelled')).to.equal(1);
    expect(signal!.aborted).to.equal(false);
    call.cancel();
    const { err } = await done;
    expect(signal!.aborted).to.equal(true);
    expect(err?.code).to.equal(grpc.status.CANCELLED);
    expect(call.listenerCount('cancelled')).to.equal(0);
  });

  it('a signal asked for after the call was cancelled, or past its deadline, is aborted already; a later deadline fires it', async () => {
    const cancelled = new FakeUnaryCall({ id: 'c' });
    cancelled.cancel();
    const expired = new FakeUnaryCall({ id: 'd' }, Date.now() - 1);
    const soon = new FakeUnaryCall({ id: 'e' }, Date.now() + 30);
    const signals: AbortSignal[] = [];
    const handler = unaryCall<{ id: string }, unknown>('GetOrder', silentLogger, (_req, scope) => {
      const signal = scope.signal;
      signals.push(signal);
      return new Promise((resolve) => (signal.aborted ? resolve('aborted at once') : signal.addEventListener('abort', () => resolve('aborted later'))));
    });
    const outcomes = await Promise.all([cancelled, expired, soon].map((call) => invoke(handler, call).done));
    expect(outcomes.map((o) => o.res)).to.deep.equal(['aborted at once', 'aborted later', 'aborted later']);
    expect(signals.every((s) => s.aborted)).to.equal(true);
  });

  it('maps a thrown error (sync or async) through toGrpcStatus', async () => {
    const thrown = invoke(
      unaryCall<{ id: string }, unknown>('GetOrder', silentLogger, () => {
        throw new InvalidArgumentError('order_id', 'must not be empty');
      }),
      new FakeUnaryCall({ id: '' }),
    );
    expect(thrown.sync?.err?.code).to.equal(grpc.status.INVALID_ARGUMENT);
    const rejected = await invoke(
      unaryCall<{ id: string }, unknown>('GetOrder', silentLogger, async () => {
        throw new InvalidArgumentError('order_id', 'must not be empty');
      }),
      new FakeUnaryCall({ id: '' }),
    ).done;
    expect(rejected.err?.code).to.equal(grpc.status.INVALID_ARGUMENT);
  });
});
