import type { ConfigProblem } from './config-error';

/** OTLP wire protocols (OTEL_EXPORTER_OTLP_PROTOCOL). */
export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';
/** Span exporters we support (OTEL_TRACES_EXPORTER); `none` turns tracing off. */
export type TracesExporterName = 'otlp' | 'console';
/** Samplers of OTEL_TRACES_SAMPLER. */
export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';
/** Propagators of OTEL_PROPAGATORS. */
export type PropagatorName = 'tracecontext' | 'baggage';
/** Levels of OTEL_LOG_LEVEL (the SDK's own diagnostics, written through our logger). */
export type OtelLogLevel = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'verbose' | 'all';

/** Batch span processor settings (the OTEL_BSP_* variables). */
export interface BatchSpanConfig {
  /** Delay between two exports, ms. Env OTEL_BSP_SCHEDULE_DELAY, default 5,000. */
  scheduleDelayMs: number;
  /** Longest one export may take, ms. Env OTEL_BSP_EXPORT_TIMEOUT, default 30,000. */
  exportTimeoutMs: number;
  /** Spans kept waiting for export; more are dropped. Env OTEL_BSP_MAX_QUEUE_SIZE, default 2,048. */
  maxQueueSize: number;
  /** Spans per export request. Env OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default 512. */
  maxExportBatchSize: number;
}

/**
 * The standard OTEL_* variables the service honours, parsed and validated
 * here so the rest of the code never reads the environment. Tracing is off
 * when OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true.
 */
export interface OtelConfig {
  /** False when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none: no SDK is loaded at all. */
  tracingEnabled: boolean;
  /** Env OTEL_TRACES_EXPORTER (comma list of otlp, console, none), default otlp. */
  tracesExporters: readonly TracesExporterName[];
  /** Env OTEL_SERVICE_NAME, else `service.name` of OTEL_RESOURCE_ATTRIBUTES, default "orderflow". */
  serviceName: string;
  /** Env OTEL_RESOURCE_ATTRIBUTES (`k=v,k2=v2`, percent-encoded values). */
  resourceAttributes: Readonly<Record<string, string>>;
  /** Env OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL, default http/protobuf. */
  protocol: OtlpProtocol;
  /**
   * Full URL spans are sent to: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
   * OTEL_EXPORTER_OTLP_ENDPOINT (+ `/v1/traces` over HTTP); default localhost:4318 (HTTP) or :4317 (gRPC).
   */
  tracesEndpoint: string;
  /** Env OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`). */
  headers: Readonly<Record<string, string>>;
  /** Timeout of one OTLP request, ms. Env OTEL_EXPORTER_OTLP_TRACES_TIMEOUT or OTEL_EXPORTER_OTLP_TIMEOUT, default 10,000. */
  exportTimeoutMs: number;
  /** Env OTEL_EXPORTER_OTLP_TRACES_COMPRESSION or OTEL_EXPORTER_OTLP_COMPRESSION: gzip or none (default). */
  compression: 'gzip' | 'none';
  batch: BatchSpanConfig;
  /** Env OTEL_TRACES_SAMPLER, default parentbased_always_on. */
  sampler: SamplerName;
  /** Ratio for the traceidratio samplers, 0..1. Env OTEL_TRACES_SAMPLER_ARG, default 1. */
  samplerRatio: number;
  /** Env OTEL_PROPAGATORS (tracecontext, baggage, none), default tracecontext,baggage. */
  propagators: readonly PropagatorName[];
  /** Env OTEL_LOG_LEVEL, default warn. */
  logLevel: OtelLogLevel;
}

const DEFAULT_SERVICE_NAME = 'orderflow';
const DEFAULT_OTLP_HTTP_ENDPOINT = 'http://localhost:4318';
const DEFAULT_OTLP_GRPC_ENDPOINT = 'http://localhost:4317';
const DEFAULT_OTLP_TIMEOUT_MS = 10_000;
const DEFAULT_BSP_SCHEDULE_DELAY_MS = 5_000;
const DEFAULT_BSP_EXPORT_TIMEOUT_MS = 30_000;
const DEFAULT_BSP_MAX_QUEUE_SIZE = 2_048;
const DEFAULT_BSP_MAX_EXPORT_BATCH_SIZE = 512;

const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];
const SAMPLERS: readonly SamplerName[] = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];
const LOG_LEVELS: readonly OtelLogLevel[] = ['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'];

/**
 * Reads the OTEL_* subset of `env`. Pure; every bad value is pushed to
 * `problems` (garbage must stop start-up, as for every other setting).
 */
export function readOtelConfig(env: Readonly<Record<string, string | undefined>>, problems: ConfigProblem[]): OtelConfig {
  const raw = (key: string): string | undefined => {
    const value = env[key]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const pick = (specific: string, general: string): [string, string | undefined] => (raw(specific) !== undefined ? [specific, raw(specific)] : [general, raw(general)]);

  const sdkDisabled = parseBoolean('OTEL_SDK_DISABLED', raw('OTEL_SDK_DISABLED'), problems);
  const exporterNames = parseList(raw('OTEL_TRACES_EXPORTER') ?? 'otlp');
  const tracesExporters: TracesExporterName[] = [];
  for (const name of exporterNames) {
    if (name === 'otlp' || name === 'console') tracesExporters.push(name);
    else if (name !== 'none') problems.push({ key: 'OTEL_TRACES_EXPORTER', problem: `must list otlp, console or none, got ${JSON.stringify(name)}` });
  }
  const tracingEnabled = !sdkDisabled && !exporterNames.includes('none') && tracesExporters.length > 0;

  const resourceAttributes = parsePairs('OTEL_RESOURCE_ATTRIBUTES', raw('OTEL_RESOURCE_ATTRIBUTES'), problems);
  const serviceName = raw('OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? DEFAULT_SERVICE_NAME;

  const [protocolKey, protocolRaw] = pick('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL');
  let protocol: OtlpProtocol = 'http/protobuf';
  if (protocolRaw !== undefined) {
    if ((PROTOCOLS as readonly string[]).includes(protocolRaw)) protocol = protocolRaw as OtlpProtocol;
    else problems.push({ key: protocolKey, problem: `must be one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(protocolRaw)}` });
  }

  const tracesEndpoint = resolveEndpoint(raw('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'), raw('OTEL_EXPORTER_OTLP_ENDPOINT'), protocol, problems);
  const [headersKey, headersRaw] = pick('OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS');
  const headers = parsePairs(headersKey, headersRaw, problems);
  const [timeoutKey, timeoutRaw] = pick('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT');
  const exportTimeoutMs = parseInteger(timeoutKey, timeoutRaw, DEFAULT_OTLP_TIMEOUT_MS, 1, problems);
  const [compressionKey, compressionRaw] = pick('OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION');
  let compression: 'gzip' | 'none' = 'none';
  if (compressionRaw !== undefined) {
    if (compressionRaw === 'gzip' || compressionRaw === 'none') compression = compressionRaw;
    else problems.push({ key: compressionKey, problem: `must be gzip or none, got ${JSON.stringify(compressionRaw)}` });
  }

  const batch: BatchSpanConfig = {
    scheduleDelayMs: parseInteger('OTEL_BSP_SCHEDULE_DELAY', raw('OTEL_BSP_SCHEDULE_DELAY'), DEFAULT_BSP_SCHEDULE_DELAY_MS, 0, problems),
    exportTimeoutMs: parseInteger('OTEL_BSP_EXPORT_TIMEOUT', raw('OTEL_BSP_EXPORT_TIMEOUT'), DEFAULT_BSP_EXPORT_TIMEOUT_MS, 1, problems),
    maxQueueSize: parseInteger('OTEL_BSP_MAX_QUEUE_SIZE', raw('OTEL_BSP_MAX_QUEUE_SIZE'), DEFAULT_BSP_MAX_QUEUE_SIZE, 1, problems),
    maxExportBatchSize: parseInteger('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', raw('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'), DEFAULT_BSP_MAX_EXPORT_BATCH_SIZE, 1, problems),
  };
  if (batch.maxExportBatchSize > batch.maxQueueSize) {
    problems.push({ key: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', problem: `must not exceed OTEL_BSP_MAX_QUEUE_SIZE (${batch.maxQueueSize})` });
  }

  const samplerRaw = raw('OTEL_TRACES_SAMPLER')?.toLowerCase() ?? 'parentbased_always_on';
  let sampler: SamplerName = 'parentbased_always_on';
  if ((SAMPLERS as readonly string[]).includes(samplerRaw)) sampler = samplerRaw as SamplerName;
  else problems.push({ key: 'OTEL_TRACES_SAMPLER', problem: `must be one of ${SAMPLERS.join(', ')}, got ${JSON.stringify(samplerRaw)}` });
  let samplerRatio = 1;
  const ratioRaw = raw('OTEL_TRACES_SAMPLER_ARG');
  if (ratioRaw !== undefined && sampler.endsWith('traceidratio')) {
    const ratio = Number(ratioRaw);
    if (Number.isFinite(ratio) && ratio >= 0 && ratio <= 1) samplerRatio = ratio;
    else problems.push({ key: 'OTEL_TRACES_SAMPLER_ARG', problem: `must be a number between 0 and 1, got ${JSON.stringify(ratioRaw)}` });
  }

  const propagators: PropagatorName[] = [];
  for (const name of parseList(raw('OTEL_PROPAGATORS') ?? 'tracecontext,baggage')) {
    if (name === 'tracecontext' || name === 'baggage') propagators.push(name);
    else if (name !== 'none') problems.push({ key: 'OTEL_PROPAGATORS', problem: `must list tracecontext, baggage or none, got ${JSON.stringify(name)}` });
  }

  const levelRaw = raw('OTEL_LOG_LEVEL')?.toLowerCase() ?? 'warn';
  let logLevel: OtelLogLevel = 'warn';
  if ((LOG_LEVELS as readonly string[]).includes(levelRaw)) logLevel = levelRaw as OtelLogLevel;
  else problems.push({ key: 'OTEL_LOG_LEVEL', problem: `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(levelRaw)}` });

  return {
    tracingEnabled,
    tracesExporters,
    serviceName,
    resourceAttributes,
    protocol,
    tracesEndpoint,
    headers,
    exportTimeoutMs,
    compression,
    batch,
    sampler,
    samplerRatio,
    propagators,
    logLevel,
  };
}

/** Signal-specific endpoints are used as given; the general one gets `/v1/traces` over HTTP (OTLP exporter spec). */
function resolveEndpoint(tracesEndpoint: string | undefined, baseEndpoint: string | undefined, protocol: OtlpProtocol, problems: ConfigProblem[]): string {
  const [key, value] = tracesEndpoint !== undefined ? ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', tracesEndpoint] : ['OTEL_EXPORTER_OTLP_ENDPOINT', baseEndpoint];
  const isGrpc = protocol === 'grpc';
  const fallback = isGrpc ? DEFAULT_OTLP_GRPC_ENDPOINT : `${DEFAULT_OTLP_HTTP_ENDPOINT}/v1/traces`;
  if (value === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push({ key, problem: `must be an http:// or https:// URL, got ${JSON.stringify(value)}` });
    return fallback;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push({ key, problem: `must be an http:// or https:// URL, got ${JSON.stringify(value)}` });
    return fallback;
  }
  if (isGrpc || tracesEndpoint !== undefined) return value;
  return value.endsWith('/') ? `${value}v1/traces` : `${value}/v1/traces`;
}

function parseList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
}

/** `k=v,k2=v2` with percent-encoded values (W3C baggage octets), as OTEL_RESOURCE_ATTRIBUTES and *_HEADERS use. */
function parsePairs(key: string, value: string | undefined, problems: ConfigProblem[]): Record<string, string> {
  const pairs: Record<string, string> = {};
  if (value === undefined) return pairs;
  for (const item of value.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const name = eq > 0 ? item.slice(0, eq).trim() : '';
    if (name === '') {
      problems.push({ key, problem: `must be a list of key=value pairs, got ${JSON.stringify(item.trim())}` });
      continue;
    }
    try {
      pairs[name] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      problems.push({ key, problem: `has a badly percent-encoded value for ${JSON.stringify(name)}` });
    }
  }
  return pairs;
}

function parseInteger(key: string, value: string | undefined, fallback: number, min: number, problems: ConfigProblem[]): number {
  if (value === undefined) return fallback;
  const normalised = value.replace(/_/g, '');
  const parsed = /^\d+$/.test(normalised) ? Number(normalised) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min) {
    problems.push({ key, problem: `must be a whole number of at least ${min}, got ${JSON.stringify(value)}` });
    return fallback;
  }
  return parsed;
}

function parseBoolean(key: string, value: string | undefined, problems: ConfigProblem[]): boolean {
  if (value === undefined) return false;
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  problems.push({ key, problem: `must be true or false, got ${JSON.stringify(value)}` });
  return false;
}
