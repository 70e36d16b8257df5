import type * as grpc from '@grpc/grpc-js';
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type Span, type TextMapGetter } from '@opentelemetry/api';
import { getTracer } from '../telemetry/tracing';
import { ORDERFLOW_SERVICE_NAME } from './proto';

/** Reads W3C trace context (`traceparent`, `tracestate`, `baggage`) from gRPC metadata. */
const METADATA_GETTER: TextMapGetter<grpc.Metadata> = {
  get: (metadata, key) => {
    const values = metadata.get(key);
    return values.length === 0 ? undefined : values.length === 1 ? String(values[0]) : values.map(String);
  },
  keys: (metadata) => Object.keys(metadata.getMap()),
};

/** A call's SERVER span and the caller's trace context it continues (ROOT_CONTEXT without `traceparent`). */
export interface ServerSpan {
  span: Span;
  parent: Context;
}

/**
 * The SERVER span starter of one OrderFlow method. Each call's span is named
 * as instrumentation-grpc would name it, `grpc.<service>/<method>`, with
 * the rpc.* attributes and the client's `traceparent` as parent. Every
 * OrderFlow method makes its own (unary-call.ts, ingest-service.ts) and the
 * instrumentation is not loaded: its patching of grpc-js cost every call
 * 20–60 µs of server CPU, a fifth of a cache hit (issue #9). Health probes
 * and reflection get no span.
 */
export function serverSpanStarter(method: string): (metadata: grpc.Metadata) => ServerSpan {
  const name = `grpc.${ORDERFLOW_SERVICE_NAME}/${method}`;
  const attributes = { 'rpc.system': 'grpc', 'rpc.service': ORDERFLOW_SERVICE_NAME, 'rpc.method': method };
  return (metadata) => {
    const parent = propagation.extract(ROOT_CONTEXT, metadata, METADATA_GETTER);
    return { span: getTracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent), parent };
  };
}

/** Ends a SERVER span with the call's status: `rpc.grpc.status_code`, and an error status unless OK. */
export function endServerSpan(span: Span, code: grpc.status, details?: string): void {
  span.setAttribute('rpc.grpc.status_code', code);
  if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: details });
  span.end();
}
