import { expect } from 'chai';
import type { App } from '../../../src/app';
import { purge } from '../../../src/store/purge';
import { startTestApp } from '../../helpers/app';
import { fillEvent, openIngest } from '../../helpers/ingest-client';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';

/** Old rows sit a year before the cutoff; live ingest writes far after it. */
const OLD_BASE_NS = 1_600_000_000_000_000_000n;
const CUTOFF_NS = 1_650_000_000_000_000_000n;
const OLD_ROWS = 200_000;
const BATCH_EVENTS = 200;

describe('store/purge while the real Ingest stream runs (integration)', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let app: App;

  before(async () => {
    db = await createTestDatabase('purge_ingest');
    app = await startTestApp(db.url);
  });
  after(async () => {
    await app?.close();
    await db?.drop();
  });

  it('deletes the old rows in batches while ingest keeps acking, and stores every live event exactly once', async () => {
    await app.pool.query(
      { op: 'test.seed', timeoutMs: 60_000 },
      `INSERT INTO fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns)
         SELECT 'old', g, 'old-f-' || g, 'old-o-' || (g % 1000), 'acc-old', 'AAPL', 1, 10.5, 1, $1::bigint + g FROM generate_series(1, $2::int) g;
       INSERT INTO order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns)
         SELECT 'old', g, 'old-o-' || g, 'acc-old', 'AAPL', 1, 2, 1, 10.5, 1, 1, $1::bigint + g FROM generate_series(1, $2::int) g`
        .replace(/\$1::bigint/g, `${OLD_BASE_NS}::bigint`)
        .replace(/\$2::int/g, String(OLD_ROWS)),
    );

    const { client, session } = openIngest(app.grpcPort, 'live-during-purge');
    await session.welcome;
    let running = true;
    let seq = 0;
    const ackTimes: number[] = [];
    const producer = (async () => {
      // Bounded: stops when the purge is done, or after 2,000 batches at most.
      for (let batch = 0; running && batch < 2_000; batch++) {
        const events = Array.from({ length: BATCH_EVENTS }, () => fillEvent(++seq, 'live'));
        await session.send(events);
        await session.waitForAck(seq);
        ackTimes.push(Date.now());
      }
    })();

    const purgeStarted = Date.now();
    const report = await purge(app.pool, { beforeNs: CUTOFF_NS, batchRows: 5_000, concurrency: 2 });
    const purgeEnded = Date.now();
    running = false;
    await producer;
    session.end();
    await session.ended;
    client.close();

    const total = (table: string) => report.tables.find((t) => t.table === table)?.rows ?? -1;
    expect(total('fills')).to.equal(OLD_ROWS);
    expect(total('order_events')).to.equal(OLD_ROWS);
    const acksDuringPurge = ackTimes.filter((t) => t >= purgeStarted && t <= purgeEnded).length;
    expect(acksDuringPurge, `acks while the purge ran (${purgeEnded - purgeStarted} ms)`).to.be.greaterThan(1);

    const { rows } = await app.pool.query<{ old: string; live: string; distinct_live: string }>(
      'test.count',
      `SELECT (SELECT count(*) FROM fills WHERE source_id = 'old') + (SELECT count(*) FROM order_events WHERE source_id = 'old') AS old,
              (SELECT count(*) FROM fills WHERE source_id = 'live-during-purge') AS live,
              (SELECT count(DISTINCT seq) FROM fills WHERE source_id = 'live-during-purge') AS distinct_live`,
    );
    expect(Number(rows[0]!.old)).to.equal(0);
    expect(Number(rows[0]!.live)).to.equal(seq);
    expect(Number(rows[0]!.distinct_live)).to.equal(seq);
  });
});
