import { expect } from 'chai';
import { loadConfig } from '../../../src/config';
import { migrate } from '../../../src/db/migrate';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import type { EventInput } from '../../../src/ingest/event';
import { FlushWriter } from '../../../src/ingest/flush-writer';
import { IngestPipeline } from '../../../src/ingest/pipeline';
import { openSource } from '../../../src/store/sources';
import { createLogger, silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';
import { AckSink } from './ack-sink';
import { StallProxy } from './stall-proxy';

const fills = (from: number, to: number, tag: string): EventInput[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: String(from + i),
    payload: 'fill',
    fill: { fill_id: `${tag}-${from + i}`, order_id: 'o', account_id: 'a', symbol: 'S', side: 1, price: '1.5', qty: '2', ts_ns: '1700000000000000000', fee: '', venue: '' },
  }));

/**
 * The flush writer when COMMIT's outcome is unknown: the hook black-holes
 * the connection right before COMMIT, so the service never hears the answer
 * (and the session lingers on the server, holding its locks).
 */
describe('ingest/flush-writer with an unknown COMMIT outcome (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let proxy: StallProxy;
  let pool: Pool;
  let lines: string[];

  before(async () => {
    db = await createTestDatabase('flush_writer');
    proxy = new StallProxy(Number(new URL(db.url).port));
    const proxied = new URL(db.url);
    proxied.port = String(await proxy.start());
    const config = loadConfig({ POOL_STATEMENT_TIMEOUT_MS: '1000', POOL_QUERY_TIMEOUT_MS: '1500', POOL_CONNECT_TIMEOUT_MS: '1000', POOL_ACQUIRE_TIMEOUT_MS: '2000' });
    pool = createPool({ connectionString: proxied.toString(), config: config.pool, logger: silentLogger });
    await migrate(pool, silentLogger);
  });
  beforeEach(() => {
    lines = [];
  });
  after(async () => {
    proxy?.resume();
    await pool?.close();
    await proxy?.close();
    await db?.drop();
  });

  async function run(sourceId: string, stall: () => void): Promise<AckSink> {
    const logger = createLogger('warn', { write: (line: string) => lines.push(line) });
    let armed = true;
    const hooks = {
      beforeCommit: async () => {
        if (!armed) return;
        armed = false;
        stall();
      },
    };
    const config = loadConfig({ INGEST_BATCH_MAX_MS: '2', INGEST_FLUSH_RETRY_MAX_MS: '200' }).ingest;
    const pipeline = new IngestPipeline({ config, sink: new FlushWriter({ pool, hooks, logger, retryMaxMs: 200 }), openSource: (id) => openSource(pool, id), hooks, logger });
    const sink = new AckSink();
    const stream = await pipeline.openStream(sourceId, sink);
    pipeline.submit(stream, { events: fills(1, 500, sourceId) }, performance.now());
    await sink.acked(500);
    await pipeline.close(5_000);
    return sink;
  }

  async function storedOnce(sourceId: string): Promise<void> {
    const { rows } = await withClient(db.url, (c) =>
      c.query<{ n: string; d: string }>('SELECT count(*)::text AS n, count(DISTINCT seq)::text AS d FROM fills WHERE source_id = $1', [sourceId]),
    );
    expect(rows[0]).to.deep.equal({ n: '500', d: '500' });
  }

  it('asks PostgreSQL when the answer to COMMIT is lost, and acks without writing twice when it committed', async () => {
    const sink = await run('unknown-committed', () => proxy.blackhole('responses'));
    expect(sink.acks.map((a) => [a.committed_seq, a.stored])).to.deep.equal([['500', 500]]);
    expect(lines.join('')).to.include('PostgreSQL reports it committed');
    await storedOnce('unknown-committed');
  });

  it('ends the stranded backend when COMMIT never arrived, then retries and commits once', async () => {
    const sink = await run('unknown-lost', () => proxy.blackhole('both'));
    expect(sink.acks.map((a) => [a.committed_seq, a.stored])).to.deep.equal([['500', 500]]);
    expect(lines.join('')).to.include('terminated the backend of a failed flush');
    await storedOnce('unknown-lost');
  });
});
