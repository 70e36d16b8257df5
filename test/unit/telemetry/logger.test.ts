import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, StackContextManager, TracerProvider } from '@opentelemetry/sdk-trace';
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/telemetry/logger';

/** A pino destination that keeps every JSON line. */
function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('telemetry/logger', () => {
  let provider: TracerProvider;

  before(() => {
    // A real SDK tracer and a synchronous context manager, for this suite only.
    context.setGlobalContextManager(new StackContextManager().enable());
    provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })] });
  });
  after(async () => {
    context.disable();
    await provider.shutdown();
  });

  it('puts trace_id and span_id of the active span on every line written inside it', () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    const span = provider.getTracer('test').startSpan('work');
    context.with(trace.setSpan(context.active(), span), () => {
      logger.info('first');
      logger.child({ component: 'x' }).warn({ n: 1 }, 'second');
    });
    span.end();
    const { traceId, spanId } = span.spanContext();
    const lines = out.lines();
    expect(lines).to.have.length(2);
    for (const line of lines) expect(line).to.include({ trace_id: traceId, span_id: spanId, service: 'orderflow' });
  });

  it('writes no trace fields outside a span, and the inner span id inside a nested span', () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    const tracer = provider.getTracer('test');
    logger.info('outside');
    const outer = tracer.startSpan('outer');
    context.with(trace.setSpan(context.active(), outer), () => {
      const inner = tracer.startSpan('inner');
      context.with(trace.setSpan(context.active(), inner), () => logger.info('inner'));
      inner.end();
      logger.info('outer');
    });
    outer.end();
    const [outside, inner, outerLine] = out.lines();
    expect(outside).to.not.have.property('trace_id');
    expect(outside).to.not.have.property('span_id');
    expect(inner!.span_id).to.not.equal(outerLine!.span_id);
    expect(inner!.trace_id).to.equal(outerLine!.trace_id);
    expect(outerLine!.span_id).to.equal(outer.spanContext().spanId);
  });

  it('writes structured JSON lines with level names and ISO times', () => {
    const out = capture();
    createLogger('info', out.stream).info({ orderId: 'o-1' }, 'hello');
    const [line] = out.lines();
    expect(line).to.include({ level: 'info', msg: 'hello', orderId: 'o-1' });
    expect(String(line!.time)).to.match(/^\d{4}-\d{2}-\d{2}T/);
  });
});
