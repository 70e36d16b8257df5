import { ServerInterceptingCall, status as GrpcStatus, type ServerInterceptor } from '@grpc/grpc-js';
import { Counter, Histogram } from 'prom-client';
import { registry } from './metrics';

/**
 * Calls that ended, by RPC name and status code name (`OK`, `NOT_FOUND`, …).
 * Client cancellations count as CANCELLED, expired deadlines as DEADLINE_EXCEEDED.
 */
const handledTotal = new Counter({
  name: 'orderflow_grpc_server_handled_total',
  help: 'gRPC calls completed on the server, by RPC name and status code.',
  labelNames: ['method', 'code'] as const,
  registers: [registry],
});

/** Calls started, by RPC name; started minus handled = calls (streams) open now. */
const startedTotal = new Counter({
  name: 'orderflow_grpc_server_started_total',
  help: 'gRPC calls started on the server, by RPC name.',
  labelNames: ['method'] as const,
  registers: [registry],
});

/** Call duration, first byte to status; for Ingest this is the stream's lifetime. */
const handlingSeconds = new Histogram({
  name: 'orderflow_grpc_server_handling_seconds',
  help: 'Duration of gRPC calls on the server until their status was sent, by RPC name (Ingest: stream lifetime).',
  labelNames: ['method'] as const,
  buckets: [0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3_600],
  registers: [registry],
});

/** Status code number → its name, the `code` label. */
const CODE_NAMES: readonly string[] = Object.keys(GrpcStatus)
  .filter((key) => Number.isNaN(Number(key)))
  .reduce<string[]>((names, key) => {
    names[GrpcStatus[key as keyof typeof GrpcStatus]] = key;
    return names;
  }, []);

/** One method's metric children, resolved once: prom-client's labels() builds a new child on every call. */
interface MethodMetrics {
  readonly name: string;
  readonly started: { inc(): void };
  readonly handling: { observe(value: number): void };
  /** handled_total children by status code number. */
  readonly handled: Array<{ inc(): void } | undefined>;
}

/** `/orderflow.v1.OrderFlow/GetOrder` → its metrics (method label `GetOrder`), resolved once per path. */
const methodMetrics = new Map<string, MethodMetrics>();
function metricsOf(path: string): MethodMetrics {
  let metrics = methodMetrics.get(path);
  if (metrics === undefined) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    metrics = { name, started: startedTotal.labels(name), handling: handlingSeconds.labels(name), handled: [] };
    methodMetrics.set(path, metrics);
  }
  return metrics;
}

/** Counts one ended call of `metrics` with status `code`. */
function countHandled(metrics: MethodMetrics, code: number): void {
  let child = metrics.handled[code];
  if (child === undefined) child = metrics.handled[code] = handledTotal.labels(metrics.name, CODE_NAMES[code] ?? 'UNKNOWN');
  child.inc();
}

/**
 * Shows each RPC in /metrics from the start (zero OK calls), so dashboards
 * and `rate()` have a series before the first call.
 */
export function preregisterGrpcMethods(methods: readonly string[]): void {
  for (const method of methods) {
    handledTotal.labels(method, 'OK').inc(0);
    startedTotal.labels(method).inc(0);
    handlingSeconds.labels(method);
  }
}

/** The HTTP/2 stream fields the interceptor reads (Node's Http2Stream). */
interface Http2StreamState {
  readonly rstCode: number;
  readonly closed: boolean;
}

/**
 * The HTTP/2 stream under a call, or undefined. When a client cancels an
 * established stream (RST_STREAM), Node's http2 ends the readable side before
 * it closes the stream, so grpc-js hands the handler a half-close first; a
 * handler that answers it (Ingest drains and ends OK) passes an OK status
 * through the interceptor although the client is gone and never gets it.
 * Only the transport tells the two apart: a stream reset by the peer is
 * closed with a non-zero rstCode (NGHTTP2_CANCEL = 8) when grpc-js reports
 * the cancel, one we ended is not. grpc-js has no public accessor, so this
 * follows the interceptor chain (`nextCall`) to BaseServerInterceptingCall's
 * `stream`; if a grpc-js release moves it, nothing is found and calls are
 * counted by the status sent, as before.
 */
function http2StreamOf(call: unknown): Http2StreamState | undefined {
  let current = call as { stream?: Partial<Http2StreamState>; nextCall?: unknown } | undefined;
  for (let depth = 0; depth < 16 && current !== undefined && current !== null; depth++) {
    const stream = current.stream;
    if (stream !== undefined && typeof stream.rstCode === 'number' && typeof stream.closed === 'boolean') return stream as Http2StreamState;
    current = current.nextCall as typeof current;
  }
  return undefined;
}

/**
 * Server interceptor counting calls by method and status. It hooks only the
 * call's start, status and cancel: messages pass through untouched, so a
 * long Ingest stream pays nothing per message beyond grpc-js's own
 * interceptor plumbing.
 *
 * A status is counted when grpc-js reports the call over (its cancel
 * notification, which follows every status too): by then the HTTP/2 stream
 * shows whether the status went out or the client had reset the stream first.
 */
export const grpcMetricsInterceptor: ServerInterceptor = (descriptor, call) => {
  const metrics = metricsOf(descriptor.path);
  const startedAt = performance.now();
  const http2Stream = http2StreamOf(call);
  let finished = false;
  let sentCode: number | undefined;
  const finish = (code: number): void => {
    // grpc-js reports a cancel after every status too; count each call once.
    if (finished) return;
    finished = true;
    countHandled(metrics, code);
    metrics.handling.observe((performance.now() - startedAt) / 1_000);
  };
  const clientGone = (): number => (deadlinePassed(call.getDeadline()) ? GrpcStatus.DEADLINE_EXCEEDED : GrpcStatus.CANCELLED);
  metrics.started.inc();
  return new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        // No status went through us (the client went away, or grpc-js itself
        // answered DEADLINE_EXCEEDED below the interceptors), or one did but
        // the peer had reset the stream before it could be sent.
        onCancel: () => {
          if (sentCode === undefined) finish(clientGone());
          else finish(http2Stream !== undefined && http2Stream.closed && http2Stream.rstCode !== 0 ? clientGone() : sentCode);
        },
      }),
    sendStatus: (status, next) => {
      sentCode = status.code ?? GrpcStatus.UNKNOWN;
      // Without the transport's view, count the status as sent, at once.
      if (http2Stream === undefined) finish(sentCode);
      next(status);
    },
  });
};

/**
 * grpc-js arms its deadline timer with setTimeout, which may fire a
 * millisecond before Date.now() reaches the deadline it computed; without
 * this slack such a call was counted as CANCELLED.
 */
const DEADLINE_SLACK_MS = 5;

function deadlinePassed(deadline: Date | number): boolean {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) && ms <= Date.now() + DEADLINE_SLACK_MS;
}
