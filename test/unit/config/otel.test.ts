import { expect } from 'chai';
import { ConfigError, loadConfig, type Env } from '../../../src/config';

function otel(env: Env) {
  return loadConfig(env).otel;
}

function problemKeys(env: Env): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.key);
    throw err;
  }
  return [];
}

describe('config/otel (the OTEL_* subset)', () => {
  it('defaults: tracing on, OTLP http/protobuf to localhost:4318/v1/traces, service "orderflow"', () => {
    const c = otel({});
    expect(c).to.deep.include({
      tracingEnabled: true,
      tracesExporters: ['otlp'],
      serviceName: 'orderflow',
      protocol: 'http/protobuf',
      tracesEndpoint: 'http://localhost:4318/v1/traces',
      exportTimeoutMs: 10_000,
      compression: 'none',
      sampler: 'parentbased_always_on',
      propagators: ['tracecontext', 'baggage'],
    });
    expect(c.batch).to.deep.equal({ scheduleDelayMs: 5_000, exportTimeoutMs: 30_000, maxQueueSize: 2_048, maxExportBatchSize: 512 });
  });

  it('OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true turn tracing off', () => {
    expect(otel({ OTEL_TRACES_EXPORTER: 'none' }).tracingEnabled).to.equal(false);
    expect(otel({ OTEL_TRACES_EXPORTER: 'otlp,none' }).tracingEnabled).to.equal(false);
    expect(otel({ OTEL_SDK_DISABLED: 'true' }).tracingEnabled).to.equal(false);
    expect(otel({ OTEL_SDK_DISABLED: 'false' }).tracingEnabled).to.equal(true);
  });

  it('appends /v1/traces to the base endpoint over HTTP, keeps the signal endpoint as given, and the base as is for gRPC', () => {
    expect(otel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318' }).tracesEndpoint).to.equal('http://jaeger:4318/v1/traces');
    expect(otel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318/' }).tracesEndpoint).to.equal('http://jaeger:4318/v1/traces');
    expect(otel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/custom' }).tracesEndpoint).to.equal('https://b/custom');
    expect(otel({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).tracesEndpoint).to.equal('http://localhost:4317');
    expect(otel({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4317' }).tracesEndpoint).to.equal('http://jaeger:4317');
  });

  it('signal-specific settings win over the general ones', () => {
    const c = otel({
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2000',
      OTEL_EXPORTER_OTLP_HEADERS: 'a=1',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'b=2',
    });
    expect(c.protocol).to.equal('http/json');
    expect(c.exportTimeoutMs).to.equal(2_000);
    expect(c.headers).to.deep.equal({ b: '2' });
  });

  it('parses headers and resource attributes as k=v lists with percent-decoding; OTEL_SERVICE_NAME wins', () => {
    const c = otel({ OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s%3Dcret, x=y', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,deployment.environment=prod' });
    expect(c.headers).to.deep.equal({ 'api-key': 's=cret', x: 'y' });
    expect(c.resourceAttributes).to.deep.equal({ 'service.name': 'from-attrs', 'deployment.environment': 'prod' });
    expect(c.serviceName).to.equal('from-attrs');
    expect(otel({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs', OTEL_SERVICE_NAME: 'explicit' }).serviceName).to.equal('explicit');
  });

  it('reads the sampler, its ratio, propagators and batch settings', () => {
    const c = otel({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25', OTEL_PROPAGATORS: 'tracecontext', OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_BSP_MAX_QUEUE_SIZE: '10_000' });
    expect(c.sampler).to.equal('parentbased_traceidratio');
    expect(c.samplerRatio).to.equal(0.25);
    expect(c.propagators).to.deep.equal(['tracecontext']);
    expect(c.batch.scheduleDelayMs).to.equal(100);
    expect(c.batch.maxQueueSize).to.equal(10_000);
    expect(otel({ OTEL_PROPAGATORS: 'none' }).propagators).to.deep.equal([]);
  });

  it('rejects garbage with one ConfigError naming every bad OTEL_* key', () => {
    const keys = problemKeys({
      OTEL_TRACES_EXPORTER: 'zipkin',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://x',
      OTEL_EXPORTER_OTLP_TIMEOUT: '-1',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli',
      OTEL_EXPORTER_OTLP_HEADERS: 'novalue',
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_PROPAGATORS: 'b3',
      OTEL_SDK_DISABLED: 'maybe',
      OTEL_LOG_LEVEL: 'loud',
    });
    expect(keys).to.include.members([
      'OTEL_TRACES_EXPORTER',
      'OTEL_EXPORTER_OTLP_PROTOCOL',
      'OTEL_EXPORTER_OTLP_ENDPOINT',
      'OTEL_EXPORTER_OTLP_TIMEOUT',
      'OTEL_EXPORTER_OTLP_COMPRESSION',
      'OTEL_EXPORTER_OTLP_HEADERS',
      'OTEL_TRACES_SAMPLER',
      'OTEL_PROPAGATORS',
      'OTEL_SDK_DISABLED',
      'OTEL_LOG_LEVEL',
    ]);
  });

  it('rejects a sampler ratio outside 0..1 and a batch larger than the queue', () => {
    expect(problemKeys({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' })).to.deep.equal(['OTEL_TRACES_SAMPLER_ARG']);
    expect(problemKeys({ OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '200' })).to.deep.equal(['OTEL_BSP_MAX_EXPORT_BATCH_SIZE']);
  });
});
