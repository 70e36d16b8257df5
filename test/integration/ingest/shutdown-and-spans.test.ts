import * as grpc from '@grpc/grpc-js';
import { trace } from '@opentelemetry/api';
import { tracing } from '@opentelemetry/sdk-node';
import { expect } from 'chai';
import { startTestApp } from '../../helpers/app';
import { mixedEvents, openIngest } from '../../helpers/ingest-client';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

describe('ingest shutdown and spans (integration)', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase('ingest_shutdown');
  });
  after(async () => {
    await db?.drop();
  });

  it('on shutdown flushes what is buffered, sends the last acks, then ends streams with UNAVAILABLE', async () => {
    // A long window: the events are still buffered when shutdown starts.
    const app = await startTestApp(db.url, { INGEST_BATCH_MAX_MS: '5000' });
    const a = openIngest(app.grpcPort, 'shutdown-a');
    const b = openIngest(app.grpcPort, 'shutdown-b');
    await Promise.all([a.session.welcome, b.session.welcome]);
    await a.session.send(mixedEvents(1, 300, 'sa'));
    await b.session.send(mixedEvents(1, 200, 'sb'));
    // Let the server read both batches.
    await new Promise((r) => setTimeout(r, 200));
    expect(a.session.acks).to.have.length(0);
    await app.close();
    const [statusA, statusB] = await Promise.all([a.session.ended, b.session.ended]);
    expect(statusA.code).to.equal(grpc.status.UNAVAILABLE);
    expect(statusB.code).to.equal(grpc.status.UNAVAILABLE);
    expect(a.session.lastCommitted()).to.equal('300');
    expect(b.session.lastCommitted()).to.equal('200');
    const { rows } = await withClient(db.url, (c) => c.query<{ source_id: string; last_seq: string }>("SELECT source_id, last_seq::text FROM sources WHERE source_id LIKE 'shutdown-%' ORDER BY source_id"));
    expect(rows).to.deep.equal([
      { source_id: 'shutdown-a', last_seq: '300' },
      { source_id: 'shutdown-b', last_seq: '200' },
    ]);
    a.client.close();
    b.client.close();
  });

  it('records one span per flush with its figures, linked to the streams it carried', async () => {
    const exporter = new tracing.InMemorySpanExporter();
    const provider = new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
    // A provider registered earlier in this process would keep ours out; start clean.
    trace.disable();
    expect(trace.setGlobalTracerProvider(provider)).to.equal(true);
    const app = await startTestApp(db.url, { INGEST_BATCH_MAX_MS: '20' });
    try {
      const a = openIngest(app.grpcPort, 'spans-a');
      const b = openIngest(app.grpcPort, 'spans-b');
      await Promise.all([a.session.welcome, b.session.welcome]);
      await Promise.all([a.session.send(mixedEvents(1, 50, 'pa')), b.session.send(mixedEvents(1, 30, 'pb'))]);
      await Promise.all([a.session.waitForAck(50), b.session.waitForAck(30)]);
      a.session.end();
      b.session.end();
      await Promise.all([a.session.ended, b.session.ended]);
      a.client.close();
      b.client.close();
      const spans = exporter.getFinishedSpans();
      const streams = spans.filter((s) => s.name === 'ingest.stream');
      const flushes = spans.filter((s) => s.name === 'ingest.flush');
      expect(streams.map((s) => s.attributes['orderflow.source_id']).sort()).to.deep.equal(['spans-a', 'spans-b']);
      expect(flushes.length).to.be.at.least(1);
      const rows = flushes.reduce((sum, s) => sum + Number(s.attributes['ingest.rows']), 0);
      expect(rows).to.equal(80);
      for (const f of flushes) {
        expect(f.attributes['ingest.outcome']).to.equal('committed');
        for (const key of ['ingest.bytes', 'ingest.window_ms', 'ingest.copy_ms', 'ingest.commit_ms']) expect(f.attributes[key], key).to.be.a('number');
      }
      const linked = new Set(flushes.flatMap((f) => f.links.map((l) => l.context.spanId)));
      for (const s of streams) expect(linked.has(s.spanContext().spanId)).to.equal(true);
    } finally {
      await app.close();
      trace.disable();
      await provider.shutdown();
    }
  });
});
