import { trace } from '@opentelemetry/api';
import { tracing } from '@opentelemetry/sdk-node';
import { expect } from 'chai';
import { runBatch, type ChunkResult } from '../../../src/db/batch';
import { registry } from '../../../src/telemetry/metrics';

/** An error shaped like node-postgres' DatabaseError. */
function pgError(code: string, message: string, constraint?: string): Error {
  return Object.assign(new Error(message), { code, constraint, severity: 'ERROR' });
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l) && !('le' in v.labels))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('db/batch runBatch', () => {
  it('splits the input into chunks of chunkSize and reports rows and chunks', async () => {
    const seen: number[][] = [];
    const report = await runBatch(
      Array.from({ length: 25 }, (_, i) => i),
      async (rows) => {
        seen.push([...rows]);
        return rows.length * 2;
      },
      { op: 'test.split', chunkSize: 10, concurrency: 1 },
    );
    expect(seen).to.deep.equal([
      Array.from({ length: 10 }, (_, i) => i),
      Array.from({ length: 10 }, (_, i) => i + 10),
      [20, 21, 22, 23, 24],
    ]);
    expect(report).to.include({ outcome: 'completed', rowsDone: 25, rowsAffected: 50, chunksDone: 3, chunksFailed: 0, chunksStarted: 3 });
  });

  it('reports the failed chunk by row range, SQLSTATE-derived code and database message', async () => {
    const report = await runBatch(
      Array.from({ length: 50 }, (_, i) => i),
      async (rows, ctx) => {
        if (ctx.index === 2) throw pgError('23505', 'duplicate key value violates unique constraint "t_pkey"', 't_pkey');
        return rows.length;
      },
      { op: 'test.failure', chunkSize: 10, concurrency: 2, onError: 'continue' },
    );
    expect(report.outcome).to.equal('completed');
    expect(report.chunksDone).to.equal(4);
    expect(report.rowsDone).to.equal(40);
    expect(report.rowsFailed).to.equal(10);
    expect(report.failures).to.have.length(1);
    const failure = report.failures[0]!;
    expect(failure).to.include({ index: 2, firstRow: 20, lastRow: 29, code: 'DUPLICATE', sqlState: '23505', constraint: 't_pkey' });
    expect(failure.message).to.equal('duplicate key value violates unique constraint "t_pkey"');
  });

  it('keeps the SQLSTATE of errors the translator files under INTERNAL (check violation 23514)', async () => {
    const report = await runBatch([1, 2, 3], async () => {
      throw pgError('23514', 'new row for relation "t" violates check constraint "t_v_check"', 't_v_check');
    }, { op: 'test.check', chunkSize: 3 });
    expect(report.failures[0]).to.include({ code: 'INTERNAL', sqlState: '23514', constraint: 't_v_check' });
  });

  it('stop mode: no chunk starts once a failure has been seen, even with chunks in flight', async () => {
    const started: number[] = [];
    let startedWhenFailureSeen: number | undefined;
    const report = await runBatch(
      Array.from({ length: 100 }, (_, i) => i),
      async (_rows, ctx) => {
        started.push(ctx.index);
        await tick(ctx.index === 3 ? 5 : 1 + (ctx.index % 3));
        if (ctx.index === 3) throw pgError('23514', 'check violation');
      },
      {
        op: 'test.stop',
        chunkSize: 5,
        concurrency: 3,
        onError: 'stop',
        onChunk: (r: ChunkResult) => {
          if (r.failure && startedWhenFailureSeen === undefined) startedWhenFailureSeen = started.length;
        },
      },
    );
    expect(report.outcome).to.equal('stopped');
    expect(startedWhenFailureSeen).to.be.a('number');
    expect(started.length).to.equal(startedWhenFailureSeen);
    expect(report.chunksStarted).to.equal(started.length);
    expect(report.chunksStarted).to.be.below(20);
    expect(report.failures.map((f) => f.index)).to.deep.equal([3]);
  });

  it('continue mode: every chunk runs and each failure is listed', async () => {
    const report = await runBatch(
      Array.from({ length: 100 }, (_, i) => i),
      async (_rows, ctx) => {
        if (ctx.index % 4 === 1) throw pgError('22P02', 'invalid input syntax');
      },
      { op: 'test.continue', chunkSize: 10, concurrency: 3, onError: 'continue' },
    );
    expect(report.chunksStarted).to.equal(10);
    expect(report.failures.map((f) => f.index).sort((a, b) => a - b)).to.deep.equal([1, 5, 9]);
    expect(report.rowsDone).to.equal(70);
  });

  it('never runs more chunks at once than the concurrency', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const report = await runBatch(
      Array.from({ length: 40 }, (_, i) => i),
      async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await tick(2);
        inFlight--;
      },
      { op: 'test.concurrency', chunkSize: 2, concurrency: 3 },
    );
    expect(maxInFlight).to.equal(3);
    expect(report.maxInFlight).to.equal(3);
    expect(report.chunksDone).to.equal(20);
  });

  it('pulls an async input lazily: rows held stay within (concurrency + 1) × chunkSize', async () => {
    const chunkSize = 50;
    const concurrency = 2;
    let pulled = 0;
    let finished = 0;
    let maxHeld = 0;
    async function* rows() {
      for (let i = 0; i < 5_000; i++) {
        pulled++;
        maxHeld = Math.max(maxHeld, pulled - finished);
        if (i % 100 === 0) await tick();
        yield i;
      }
    }
    const report = await runBatch(
      rows(),
      async (chunk) => {
        await tick(1);
        finished += chunk.length;
      },
      { op: 'test.lazy', chunkSize, concurrency },
    );
    expect(report.rowsDone).to.equal(5_000);
    expect(maxHeld).to.be.at.most((concurrency + 1) * chunkSize);
  });

  it('abort: starts no new chunk, aborts the running ones, and reports them CANCELLED', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const promise = runBatch(
      Array.from({ length: 100 }, (_, i) => i),
      (_rows, ctx) => {
        started.push(ctx.index);
        // Stands in for a statement the pool cancels on abort.
        return new Promise<void>((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(pgError('57014', 'canceling statement due to user request')), { once: true });
        });
      },
      { op: 'test.abort', chunkSize: 10, concurrency: 2, signal: controller.signal },
    );
    await tick(5);
    controller.abort();
    const report = await promise;
    expect(report.outcome).to.equal('aborted');
    expect(started).to.deep.equal([0, 1]);
    expect(report.failures.map((f) => [f.code, f.sqlState])).to.deep.equal([
      ['CANCELLED', '57014'],
      ['CANCELLED', '57014'],
    ]);
  });

  it('abort before start runs nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    let calls = 0;
    const report = await runBatch([1, 2, 3], async () => void calls++, { op: 'test.preabort', chunkSize: 1, signal: controller.signal });
    expect(calls).to.equal(0);
    expect(report).to.include({ outcome: 'aborted', chunksStarted: 0 });
  });

  it('abort while the input is being read stops at once and closes the input', async () => {
    const controller = new AbortController();
    let closed = false;
    async function* slow() {
      try {
        yield 1;
        await new Promise((resolve) => setTimeout(resolve, 200));
        yield 2;
      } finally {
        closed = true;
      }
    }
    const promise = runBatch(slow(), async () => undefined, { op: 'test.abort_read', chunkSize: 5, signal: controller.signal });
    await tick(10);
    controller.abort();
    const report = await promise;
    expect(report.outcome).to.equal('aborted');
    expect(report.chunksStarted).to.equal(0);
    await tick(250);
    expect(closed).to.equal(true);
  });

  it('an input that fails rethrows after the running chunks have ended', async () => {
    let running = 0;
    async function* broken() {
      for (let i = 0; i < 30; i++) yield i;
      throw new Error('read failed');
    }
    let error: unknown;
    try {
      await runBatch(
        broken(),
        async () => {
          running++;
          await tick(5);
          running--;
        },
        { op: 'test.input_error', chunkSize: 10, concurrency: 3 },
      );
    } catch (err) {
      error = err;
    }
    expect((error as Error).message).to.equal('read failed');
    expect(running).to.equal(0);
  });

  it('rejects bad options', async () => {
    for (const bad of [{ chunkSize: 0 }, { concurrency: 0 }, { chunkSize: 1.5 }]) {
      let error: unknown;
      try {
        await runBatch([1], async () => undefined, { op: 'test.bad', ...bad });
      } catch (err) {
        error = err;
      }
      expect(error).to.have.property('code', 'INVALID_ARGUMENT');
    }
  });

  it('counts rows, chunks by outcome and durations in Prometheus metrics', async () => {
    const op = 'test.metrics';
    await runBatch(
      Array.from({ length: 30 }, (_, i) => i),
      async (_rows, ctx) => {
        if (ctx.index === 1) throw pgError('23505', 'dup');
      },
      { op, chunkSize: 10, onError: 'continue' },
    );
    expect(await metricValue('orderflow_batch_rows_total', { operation: op })).to.equal(20);
    expect(await metricValue('orderflow_batch_chunks_total', { operation: op, outcome: 'ok' })).to.equal(2);
    expect(await metricValue('orderflow_batch_chunks_total', { operation: op, outcome: 'error' })).to.equal(1);
    const histogram = await registry.getSingleMetric('orderflow_batch_chunk_duration_seconds')!.get();
    const count = histogram.values.find((v) => (v as { metricName?: string }).metricName === 'orderflow_batch_chunk_duration_seconds_count' && v.labels.operation === op);
    expect(count?.value).to.equal(3);
  });

  describe('tracing', () => {
    const exporter = new tracing.InMemorySpanExporter();
    before(() => {
      trace.disable();
      trace.setGlobalTracerProvider(new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }));
    });
    after(() => trace.disable());

    it('records a span per chunk with db.operation.batch.size, and the SQLSTATE on failure', async () => {
      exporter.reset();
      await runBatch(
        Array.from({ length: 25 }, (_, i) => i),
        async (_rows, ctx) => {
          if (ctx.index === 2) throw pgError('23514', 'check violation');
        },
        { op: 'test.spans', chunkSize: 10, onError: 'continue' },
      );
      const spans = exporter.getFinishedSpans();
      const chunks = spans.filter((s) => s.name === 'batch.chunk test.spans');
      expect(chunks.map((s) => s.attributes['db.operation.batch.size']).sort()).to.deep.equal([10, 10, 5]);
      const failed = chunks.find((s) => s.attributes['orderflow.batch.chunk.index'] === 2)!;
      expect(failed.status.code).to.equal(2);
      expect(failed.attributes['error.type']).to.equal('23514');
      expect(failed.attributes['db.response.status_code']).to.equal('23514');
      expect(spans.filter((s) => s.name === 'batch test.spans')).to.have.length(1);
    });
  });
});
