import { expect } from 'chai';
import { loadConfig } from '../../../src/config';
import { migrate } from '../../../src/db/migrate';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import type { BatchWindow } from '../../../src/ingest/batch-window';
import type { EventInput } from '../../../src/ingest/event';
import type { FlushOrder } from '../../../src/ingest/flush-order';
import { FlushWriter, type BatchSink, type FlushOutcome } from '../../../src/ingest/flush-writer';
import { IngestPipeline } from '../../../src/ingest/pipeline';
import { openSource } from '../../../src/store/sources';
import { createLogger, silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';
import { AckSink } from './ack-sink';

/** Counts how many flushes were in flight at once, and which ones had a predecessor. */
class ConcurrencyProbe implements BatchSink {
  running = 0;
  maxRunning = 0;
  withPredecessor = 0;
  constructor(private readonly inner: BatchSink) {}
  async write(window: BatchWindow, signal: AbortSignal, order?: FlushOrder): Promise<FlushOutcome> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    if (order?.predecessor) this.withPredecessor++;
    try {
      return await this.inner.write(window, signal, order);
    } finally {
      this.running--;
    }
  }
}

const fills = (from: number, to: number, tag: string): EventInput[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: String(from + i),
    payload: 'fill',
    fill: { fill_id: `${tag}-${from + i}`, order_id: `o-${(from + i) % 7}`, account_id: 'a', symbol: 'S', side: 1, price: '1.5', qty: '2', ts_ns: String(1_700_000_000_000_000_000n + BigInt(from + i)), fee: '', venue: '' },
  }));

/**
 * Pipelined flushes (INGEST_FLUSH_PIPELINE_DEPTH=2) against a real
 * PostgreSQL: the second window COPYs while the first commits, and when the
 * first fails after taking the source lock, the second must not commit past
 * it (its rows would raise the high-water mark over the first window's, which
 * would then be skipped as duplicates on retry: lost fills).
 */
describe('ingest: pipelined flushes keep window order per source (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let pool: Pool;

  before(async () => {
    db = await createTestDatabase('pipelined_flush');
    const config = loadConfig({});
    pool = createPool({ connectionString: db.url, config: config.pool, logger: silentLogger });
    await migrate(pool, silentLogger);
  });
  after(async () => {
    await pool?.close();
    await db?.drop();
  });

  async function run(sourceId: string, events: number, env: Record<string, string>): Promise<{ sink: AckSink; probe: ConcurrencyProbe; lines: string[] }> {
    const lines: string[] = [];
    const logger = createLogger('warn', { write: (line: string) => lines.push(line) });
    const config = loadConfig({ INGEST_BATCH_MAX_ROWS: '100', INGEST_BATCH_MAX_MS: '2', ...env }).ingest;
    const probe = new ConcurrencyProbe(new FlushWriter({ pool, hooks: {}, logger, retryMaxMs: 100, retryBaseMs: 100 }));
    const pipeline = new IngestPipeline({ config, sink: probe, openSource: (id) => openSource(pool, id), logger });
    const sink = new AckSink();
    const stream = await pipeline.openStream(sourceId, sink);
    pipeline.submit(stream, { events: fills(1, events, sourceId) }, performance.now());
    await sink.acked(events);
    await pipeline.close(5_000);
    return { sink, probe, lines };
  }

  async function expectStoredOnce(sourceId: string, events: number): Promise<void> {
    const { rows } = await withClient(db.url, (c) =>
      c.query<{ n: string; d: string; lo: string; hi: string; mark: string }>(
        `SELECT count(*)::text AS n, count(DISTINCT seq)::text AS d, min(seq)::text AS lo, max(seq)::text AS hi,
                (SELECT last_seq::text FROM sources WHERE source_id = $1) AS mark
           FROM fills WHERE source_id = $1`,
        [sourceId],
      ),
    );
    expect(rows[0]).to.deep.equal({ n: String(events), d: String(events), lo: '1', hi: String(events), mark: String(events) });
  }

  it('writes windows two at a time and acks every event in order', async () => {
    const { sink, probe } = await run('pipelined-ok', 1_000, {});
    expect(probe.maxRunning).to.equal(2);
    expect(probe.withPredecessor).to.be.greaterThan(0);
    const seqs = sink.acks.map((a) => Number(a.committed_seq));
    expect(seqs).to.deep.equal([...seqs].sort((a, b) => a - b));
    expect(seqs.at(-1)).to.equal(1_000);
    expect(sink.acks.reduce((n, a) => n + a.stored, 0)).to.equal(1_000);
    await expectStoredOnce('pipelined-ok', 1_000);
  });

  it('holds the second window back when the first fails after locking its source, then stores both once', async () => {
    // The first two advances of a high-water mark fail with a serialization failure (a sequence is not rolled back).
    // The first window's COPY-first attempt fails in its seal; its retry locks the source first, which lets the
    // second window's seal queue behind that lock, and then fails too. The second window's seal then finds the
    // mark short of its window's start: without that check it would commit past the first window, whose rows
    // would be skipped on its next retry as written by an earlier attempt (fills 1-100 lost).
    await withClient(db.url, async (c) => {
      await c.query('CREATE SEQUENCE fail_once');
      await c.query(`CREATE FUNCTION fail_first_advance() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('fail_once') <= 2 THEN RAISE EXCEPTION 'injected failure after the lock' USING ERRCODE = '40001'; END IF;
          RETURN NEW;
        END $$`);
      await c.query(`CREATE TRIGGER fail_first_advance AFTER UPDATE ON sources FOR EACH ROW
        WHEN (OLD.last_seq IS DISTINCT FROM NEW.last_seq AND NEW.source_id = 'pipelined-fault') EXECUTE FUNCTION fail_first_advance()`);
    });
    try {
      const { sink, probe, lines } = await run('pipelined-fault', 300, {});
      expect(probe.maxRunning).to.equal(2);
      expect(lines.filter((l) => l.includes('injected failure after the lock'))).to.have.length(2);
      const seqs = sink.acks.map((a) => Number(a.committed_seq));
      expect(seqs).to.deep.equal([...seqs].sort((a, b) => a - b));
      expect(seqs.at(-1)).to.equal(300);
      expect(sink.acks.reduce((n, a) => n + a.stored, 0)).to.equal(300);
      await expectStoredOnce('pipelined-fault', 300);
    } finally {
      await withClient(db.url, (c) => c.query('DROP TRIGGER fail_first_advance ON sources; DROP FUNCTION fail_first_advance(); DROP SEQUENCE fail_once'));
    }
  });

  it('at depth 1 writes one window at a time', async () => {
    const { probe } = await run('pipelined-depth1', 500, { INGEST_FLUSH_PIPELINE_DEPTH: '1' });
    expect(probe.maxRunning).to.equal(1);
    await expectStoredOnce('pipelined-depth1', 500);
  });
});
