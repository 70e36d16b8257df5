import { trace, type Tracer } from '@opentelemetry/api';

/** The project's tracer. A no-op until the SDK is started (see telemetry/sdk.ts). */
export function getTracer(): Tracer {
  return trace.getTracer('orderflow');
}
