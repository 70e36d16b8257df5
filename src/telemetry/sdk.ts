import { diag, DiagLogLevel, type DiagLogger, type TextMapPropagator } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpGrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as OtlpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { core, NodeSDK, resources } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { OtelConfig } from '../config';
import type { Logger } from './logger';
import { registerTracingShutdown } from './tracing';

/** The same OTel diagnostic is logged at most once per this many ms. */
const DIAG_REPEAT_MS = 60_000;

/**
 * Starts the OpenTelemetry SDK from `config` (the parsed OTEL_* variables):
 * OTLP or console span export through a batch processor and W3C trace
 * context. Nothing is auto-instrumented: every OrderFlow call makes its own
 * SERVER span (rpc/server-span.ts; instrumentation-grpc's patching cost each
 * call 20–60 µs of CPU) and the pool its query spans (instrumentation-pg sees
 * nothing of pg-copy-streams COPY).
 * Registers the shutdown hook that App.close() calls through shutdownTracing().
 */
export function startTracing(config: OtelConfig, logger: Logger): void {
  if (!config.tracingEnabled) return;
  const log = logger.child({ component: 'otel' });
  const diagLogger = createDiagLogger(log);
  const setDiagLogger = () => diag.setLogger(diagLogger, { logLevel: toDiagLevel(config.logLevel), suppressOverrideMessage: true });
  setDiagLogger();
  // Failed exports land here (BatchSpanProcessor → globalErrorHandler); a
  // missing collector must never look like a service error, so warn, throttled.
  const warnExportFailure = throttled((err: unknown) => log.warn({ err: describe(err) }, 'span export failed; spans are dropped until the collector answers'));
  core.setGlobalErrorHandler(warnExportFailure);

  const spanProcessors: SpanProcessor[] = config.tracesExporters.map(
    (name) => new BatchSpanProcessor({ exporter: name === 'console' ? new ConsoleSpanExporter() : createOtlpExporter(config), ...batchOptions(config) }),
  );

  const sdk = new NodeSDK({
    serviceName: config.serviceName,
    // Our resource replaces the env detector, so OTEL_RESOURCE_ATTRIBUTES is read once, by config/.
    resource: resources.defaultResource().merge(resources.resourceFromAttributes(config.resourceAttributes)),
    resourceDetectors: [resources.processDetector, resources.hostDetector],
    spanProcessors,
    sampler: createSampler(config),
    textMapPropagator: createPropagator(config),
    instrumentations: [],
    // Traces only: metrics are Prometheus (prom-client), logs are stdout JSON.
    metricReaders: [],
    logRecordProcessors: [],
  });
  // NodeSDK's constructor installs a console diag logger when OTEL_LOG_LEVEL is set; ours wins.
  setDiagLogger();
  sdk.start();
  registerTracingShutdown(() => sdk.shutdown());
  log.info({ exporters: config.tracesExporters, protocol: config.protocol, endpoint: config.tracesEndpoint, serviceName: config.serviceName }, 'tracing started');
}

function batchOptions(config: OtelConfig) {
  return {
    scheduledDelayMillis: config.batch.scheduleDelayMs,
    exportTimeoutMillis: config.batch.exportTimeoutMs,
    maxQueueSize: config.batch.maxQueueSize,
    maxExportBatchSize: config.batch.maxExportBatchSize,
  };
}

type HttpExporterOptions = NonNullable<ConstructorParameters<typeof OtlpProtoTraceExporter>[0]>;
type GrpcExporterOptions = NonNullable<ConstructorParameters<typeof OtlpGrpcTraceExporter>[0]>;

function createOtlpExporter(config: OtelConfig): SpanExporter {
  if (config.protocol === 'grpc') {
    const options: GrpcExporterOptions = {
      url: config.tracesEndpoint,
      timeoutMillis: config.exportTimeoutMs,
      compression: config.compression as GrpcExporterOptions['compression'],
    };
    if (Object.keys(config.headers).length > 0) {
      // Loaded only for gRPC export with headers.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Metadata } = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
      const metadata = new Metadata();
      for (const [key, value] of Object.entries(config.headers)) metadata.set(key, value);
      options.metadata = metadata;
    }
    return new OtlpGrpcTraceExporter(options);
  }
  const options: HttpExporterOptions = {
    url: config.tracesEndpoint,
    headers: { ...config.headers },
    timeoutMillis: config.exportTimeoutMs,
    compression: config.compression as HttpExporterOptions['compression'],
  };
  return config.protocol === 'http/json' ? new OtlpJsonTraceExporter(options) : new OtlpProtoTraceExporter(options);
}

function createSampler(config: OtelConfig): Sampler {
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(config.samplerRatio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplerRatio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** W3C trace context (a client's `traceparent` metadata continues its trace) and baggage; null = none. */
function createPropagator(config: OtelConfig): TextMapPropagator | null {
  const propagators: TextMapPropagator[] = config.propagators.map((name) => (name === 'tracecontext' ? new core.W3CTraceContextPropagator() : new core.W3CBaggagePropagator()));
  if (propagators.length === 0) return null;
  return propagators.length === 1 ? propagators[0]! : new core.CompositePropagator({ propagators });
}

function toDiagLevel(level: OtelConfig['logLevel']): DiagLogLevel {
  const levels: Record<OtelConfig['logLevel'], DiagLogLevel> = {
    none: DiagLogLevel.NONE,
    error: DiagLogLevel.ERROR,
    warn: DiagLogLevel.WARN,
    info: DiagLogLevel.INFO,
    debug: DiagLogLevel.DEBUG,
    verbose: DiagLogLevel.VERBOSE,
    all: DiagLogLevel.ALL,
  };
  return levels[level];
}

/**
 * OTel's own diagnostics as JSON log lines. Errors are logged at warn: they
 * concern telemetry, never order data, and must not page anyone. Repeats of
 * one message are throttled.
 */
function createDiagLogger(log: Logger): DiagLogger {
  const lastLogged = new Map<string, number>();
  const write = (level: 'warn' | 'info' | 'debug' | 'trace') => (message: string, ...args: unknown[]) => {
    const now = Date.now();
    const previous = lastLogged.get(message);
    if (previous !== undefined && now - previous < DIAG_REPEAT_MS) return;
    if (lastLogged.size > 1_000) lastLogged.clear();
    lastLogged.set(message, now);
    log[level]({ details: args.map(describe) }, `otel: ${message}`);
  };
  return { error: write('warn'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('trace') };
}

/** Calls `fn` at most once per DIAG_REPEAT_MS. */
function throttled(fn: (err: unknown) => void): (err: unknown) => void {
  let last = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < DIAG_REPEAT_MS) return;
    last = now;
    fn(err);
  };
}

function describe(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}
