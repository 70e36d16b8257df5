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

/** `/orderflow.v1.OrderFlow/GetOrder` → `GetOrder`, computed once per path. */
const methodNames = new Map<string, string>();
function methodName(path: string): string {
  let name = methodNames.get(path);
  if (name === undefined) {
    name = path.slice(path.lastIndexOf('/') + 1);
    methodNames.set(path, name);
  }
  return name;
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

/**
 * Server interceptor counting calls by method and status. It hooks only the
 * call's start, status and cancel: messages pass through untouched, so a
 * long Ingest stream pays nothing per message beyond grpc-js's own
 * interceptor plumbing.
 */
export const grpcMetricsInterceptor: ServerInterceptor = (descriptor, call) => {
  const method = methodName(descriptor.path);
  const startedAt = performance.now();
  let finished = false;
  const finish = (code: number): void => {
    // grpc-js reports a cancel after every status too; count each call once.
    if (finished) return;
    finished = true;
    handledTotal.labels(method, CODE_NAMES[code] ?? 'UNKNOWN').inc();
    handlingSeconds.labels(method).observe((performance.now() - startedAt) / 1_000);
  };
  startedTotal.labels(method).inc();
  return new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        // No status went through us: the client went away, or grpc-js itself
        // answered DEADLINE_EXCEEDED (it does so below the interceptors).
        onCancel: () => finish(deadlinePassed(call.getDeadline()) ? GrpcStatus.DEADLINE_EXCEEDED : GrpcStatus.CANCELLED),
      }),
    sendStatus: (status, next) => {
      finish(status.code ?? GrpcStatus.UNKNOWN);
      next(status);
    },
  });
};

function deadlinePassed(deadline: Date | number): boolean {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) && ms <= Date.now();
}
