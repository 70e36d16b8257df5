import type * as grpc from '@grpc/grpc-js';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter } from '@opentelemetry/api';
import { CancelledError } from '../errors';
import type { Logger } from '../telemetry/logger';
import { getTracer, SELF_TRACED_GRPC_METHODS } from '../telemetry/tracing';
import { ORDERFLOW_SERVICE_NAME } from './proto';
import { toGrpcStatus } from './status';

/**
 * The cancellation of one call, built only when the handler first asks for
 * `signal` (a read that has to wait: a cache miss). A cache hit never asks,
 * so it pays for no AbortController, 'cancelled' listener or deadline timer.
 */
export class CallScope {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private onCancelled: (() => void) | undefined;

  constructor(private readonly call: grpc.ServerUnaryCall<unknown, unknown>) {}

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

  /** Drops the listener and the timer, if any were made. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onCancelled) this.call.removeListener('cancelled', this.onCancelled);
  }
}

/** Reads W3C trace context (`traceparent`, `tracestate`, `baggage`) from gRPC metadata. */
const METADATA_GETTER: TextMapGetter<grpc.Metadata> = {
  get: (metadata, key) => {
    const values = metadata.get(key);
    return values.length === 0 ? undefined : values.length === 1 ? String(values[0]) : values.map(String);
  },
  keys: (metadata) => Object.keys(metadata.getMap()),
};

/** A handler's answer: a value at once (a cache hit) or later. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A unary handler with the call's SERVER span, a lazily built cancellation
 * scope and errors mapped by toGrpcStatus only. The span is the one
 * instrumentation-grpc would make (`grpc.<service>/<method>`, rpc.*
 * attributes, `rpc.grpc.status_code`, the client's `traceparent` as parent),
 * made here once so the handler can add its attributes to it and a hit
 * answered synchronously costs no promise.
 */
export function unaryCall<Req, Res>(method: string, logger: Logger, fn: (req: Req, scope: CallScope, span: Span) => MaybePromise<Res>): grpc.handleUnaryCall<Req, Res> {
  // instrumentation-grpc skips exactly the listed methods; an unlisted one would get a second SERVER span from it.
  if (!SELF_TRACED_GRPC_METHODS.includes(method)) throw new TypeError(`${method} makes its own SERVER span: add it to SELF_TRACED_GRPC_METHODS`);
  const spanName = `grpc.${ORDERFLOW_SERVICE_NAME}/${method}`;
  return (call, callback) => {
    const parent = propagation.extract(ROOT_CONTEXT, call.metadata, METADATA_GETTER);
    const span = getTracer().startSpan(spanName, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': ORDERFLOW_SERVICE_NAME, 'rpc.method': method } }, parent);
    const scope = new CallScope(call as grpc.ServerUnaryCall<unknown, unknown>);
    const succeed = (response: Res): void => {
      scope.dispose();
      span.setAttribute('rpc.grpc.status_code', 0);
      span.end();
      callback(null, response);
    };
    const fail = (err: unknown): void => {
      scope.dispose();
      // Mapped (and, for internal errors, logged) inside the span, so the log line carries its ids.
      const status = context.with(trace.setSpan(parent, span), () => toGrpcStatus(err, logger));
      span.setAttribute('rpc.grpc.status_code', status.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
      span.end();
      callback(status as grpc.ServerErrorResponse);
    };
    let result: MaybePromise<Res>;
    try {
      // Active while the handler runs: fetch and query spans hang beneath it, log lines carry its ids.
      result = context.with(trace.setSpan(parent, span), fn, undefined, call.request, scope, span);
    } catch (err) {
      fail(err);
      return;
    }
    if (result instanceof Promise) result.then(succeed, fail);
    else succeed(result);
  };
}

/**
 * `unaryCall()` for handlers that take the call's AbortSignal up front
 * (it fires on the call's cancel or deadline).
 */
export function unary<Req, Res>(method: string, logger: Logger, fn: (req: Req, signal: AbortSignal, span: Span) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return unaryCall<Req, Res>(method, logger, (req, scope, span) => fn(req, scope.signal, span));
}
