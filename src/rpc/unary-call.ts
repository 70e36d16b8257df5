import type * as grpc from '@grpc/grpc-js';
import { context, trace, type Context, type Span } from '@opentelemetry/api';
import { CancelledError } from '../errors';
import type { Logger } from '../telemetry/logger';
import { endServerSpan, serverSpanStarter } from './server-span';
import { toGrpcStatus } from './status';

/**
 * One unary call in progress: its SERVER span, its cancellation (built only
 * when the handler first asks for `signal`: a read that has to wait, i.e. a
 * cache miss; a hit never asks, so it pays for no AbortController,
 * 'cancelled' listener or deadline timer) and its answer.
 */
export class CallScope {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private onCancelled: (() => void) | undefined;

  constructor(
    private readonly call: grpc.ServerUnaryCall<unknown, unknown>,
    private readonly callback: grpc.sendUnaryData<unknown>,
    /** The call's SERVER span. */
    readonly span: Span,
    /** The caller's trace context (from `traceparent`), or ROOT_CONTEXT. */
    private readonly parent: Context,
    private readonly logger: Logger,
  ) {}

  /** Fires on the call's cancel or deadline (at once if either already happened). */
  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = (this.controller = new AbortController());
    const onCancelled = () => controller.abort(new CancelledError());
    if (this.call.cancelled) {
      onCancelled();
      return controller.signal;
    }
    this.onCancelled = onCancelled;
    this.call.on('cancelled', onCancelled);
    // grpc-js answers DEADLINE_EXCEEDED by itself at the deadline; stop our work then too.
    const deadline = this.call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    if (Number.isFinite(deadlineMs)) {
      this.timer = setTimeout(onCancelled, Math.max(0, deadlineMs - Date.now()));
      this.timer.unref();
    }
    return controller.signal;
  }

  /**
   * Runs `fn` with the SERVER span active: spans started inside (cache
   * fetch, queries) hang beneath it and log lines carry its ids. Work that
   * starts no span and logs nothing (a cache hit) need not pay for it.
   */
  inSpan<T>(fn: () => T): T {
    return context.with(trace.setSpan(this.parent, this.span), fn);
  }

  /** Answers OK and ends the span. */
  succeed(response: unknown): void {
    this.dispose();
    endServerSpan(this.span, 0);
    this.callback(null, response);
  }

  /** Answers with the error mapped by toGrpcStatus (logged inside the span) and ends the span. */
  fail(err: unknown): void {
    this.dispose();
    const status = this.inSpan(() => toGrpcStatus(err, this.logger));
    endServerSpan(this.span, status.code, status.details);
    this.callback(status as grpc.ServerErrorResponse);
  }

  private dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onCancelled) this.call.removeListener('cancelled', this.onCancelled);
  }
}

/** A handler's answer: a value at once (a cache hit) or later. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A unary handler with the call's SERVER span (server-span.ts), a lazily
 * built cancellation scope and errors mapped by toGrpcStatus only. The
 * handler puts its attributes on the span. A handler that
 * returns a value (a cache hit) is answered synchronously: no promise. Run
 * work that starts spans or logs through `scope.inSpan()`.
 */
export function unaryCall<Req, Res>(method: string, logger: Logger, fn: (req: Req, scope: CallScope) => MaybePromise<Res>): grpc.handleUnaryCall<Req, Res> {
  const startSpan = serverSpanStarter(method);
  return (call, callback) => {
    const { span, parent } = startSpan(call.metadata);
    const scope = new CallScope(call as grpc.ServerUnaryCall<unknown, unknown>, callback as grpc.sendUnaryData<unknown>, span, parent, logger);
    let result: MaybePromise<Res>;
    try {
      result = fn(call.request, scope);
    } catch (err) {
      scope.fail(err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => scope.succeed(response),
        (err: unknown) => scope.fail(err),
      );
    } else {
      scope.succeed(result);
    }
  };
}

/**
 * `unaryCall()` for async handlers that take the call's AbortSignal up front
 * (it fires on the call's cancel or deadline); they run inside the span.
 */
export function unary<Req, Res>(method: string, logger: Logger, fn: (req: Req, signal: AbortSignal, span: Span) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return unaryCall<Req, Res>(method, logger, (req, scope) => scope.inSpan(() => fn(req, scope.signal, scope.span)));
}
