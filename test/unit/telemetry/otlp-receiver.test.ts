import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { expect } from 'chai';
import { OTLP_SPAN_KIND, OTLP_STATUS_CODE, OtlpReceiver } from '../../helpers/otlp-receiver';

/** Two finished spans (parent SERVER, child CLIENT with attributes, an event and an error status). */
async function makeSpans(): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
  const tracer = provider.getTracer('receiver-test');
  const parent = tracer.startSpan('parent', { kind: SpanKind.SERVER });
  const child = tracer.startSpan('child', { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.response.returned_rows': 3, ok: true, ratio: 0.5, list: ['a', 'b'] } }, trace.setSpan(context.active(), parent));
  child.addEvent('rollback', { 'db.response.status_code': '40001' });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  child.end();
  parent.end();
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

function exportWith(exporter: SpanExporter, spans: ReadableSpan[]): Promise<void> {
  return new Promise((resolve, reject) => exporter.export(spans, (result) => (result.code === 0 ? resolve() : reject(result.error ?? new Error('export failed')))));
}

describe('test helper: OTLP receiver decodes what the real exporters send', () => {
  for (const [encoding, Exporter] of [
    ['protobuf', ProtoExporter],
    ['json', JsonExporter],
  ] as const) {
    it(`decodes OTLP/HTTP ${encoding}: ids, parent, kind, attributes, events, status, resource`, async () => {
      const receiver = new OtlpReceiver();
      const base = await receiver.start();
      try {
        const spans = await makeSpans();
        const exporter = new Exporter({ url: `${base}/v1/traces` });
        await exportWith(exporter, spans);
        await exporter.shutdown();
        expect(receiver.requests).to.deep.equal([encoding]);
        const parent = receiver.spans.find((s) => s.name === 'parent')!;
        const child = receiver.spans.find((s) => s.name === 'child')!;
        const sdkChild = spans.find((s) => s.name === 'child')!;
        expect(child.traceId).to.equal(sdkChild.spanContext().traceId);
        expect(child.spanId).to.equal(sdkChild.spanContext().spanId);
        expect(child.parentSpanId).to.equal(parent.spanId);
        expect(parent.parentSpanId).to.equal(undefined);
        expect(parent.kind).to.equal(OTLP_SPAN_KIND.SERVER);
        expect(child.kind).to.equal(OTLP_SPAN_KIND.CLIENT);
        expect(child.attributes).to.deep.include({ 'db.system.name': 'postgresql', 'db.response.returned_rows': '3', ok: true, ratio: 0.5 });
        expect(child.attributes.list).to.deep.equal(['a', 'b']);
        expect(child.events).to.deep.equal([{ name: 'rollback', attributes: { 'db.response.status_code': '40001' } }]);
        expect(child.status).to.deep.equal({ code: OTLP_STATUS_CODE.ERROR, message: 'boom' });
        expect(child.scope).to.equal('receiver-test');
        expect(child.resource['telemetry.sdk.language']).to.equal('nodejs');
        expect(BigInt(child.endTimeUnixNano) >= BigInt(child.startTimeUnixNano)).to.equal(true);
      } finally {
        await receiver.close();
      }
    });
  }
});
