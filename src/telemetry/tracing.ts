import { trace, type Tracer } from '@opentelemetry/api';

/** What sdk.ts registers once the SDK runs: flushes and stops the tracer provider. */
export interface TracingShutdownHook {
  (): Promise<void>;
}

let shutdownHook: TracingShutdownHook | undefined;
let shutdownPromise: Promise<void> | undefined;

/** The project's tracer. A no-op until the SDK is started (see telemetry/sdk.ts). */
export function getTracer(): Tracer {
  return trace.getTracer('orderflow');
}

/**
 * True once the SDK started (OTEL_TRACES_EXPORTER is not `none`). Hot paths
 * check it to skip building span attributes nobody records.
 */
export function isTracingEnabled(): boolean {
  return shutdownHook !== undefined;
}

/** Called by sdk.ts after the SDK started. Not for application code. */
export function registerTracingShutdown(hook: TracingShutdownHook): void {
  shutdownHook = hook;
  shutdownPromise = undefined;
}

/**
 * Flushes buffered spans and stops the tracer provider; resolves (never
 * rejects) within `timeoutMs` even when the collector does not answer.
 * Idempotent; a no-op when tracing is off. App.close() calls it after the
 * pool closed and before the embedded database stops.
 */
export function shutdownTracing(timeoutMs: number, onError?: (err: unknown) => void): Promise<void> {
  const hook = shutdownHook;
  if (!hook) return Promise.resolve();
  if (!shutdownPromise) {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        onError?.(new Error(`Tracer shutdown did not finish within ${timeoutMs} ms; unexported spans are lost.`));
        resolve();
      }, timeoutMs);
      timer.unref();
    });
    const flushed = hook().then(
      () => undefined,
      (err: unknown) => onError?.(err),
    );
    shutdownPromise = Promise.race([flushed, deadline]).finally(() => clearTimeout(timer));
  }
  return shutdownPromise;
}
