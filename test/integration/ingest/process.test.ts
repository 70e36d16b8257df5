import { expect } from 'chai';
import fs from 'node:fs/promises';
import http from 'node:http';
import pg from 'pg';
import type { Event } from '../../../src/generated/orderflow/v1/Event';
import { waitForHealth } from '../../helpers/grpc';
import { BASE_TS_NS, mixedEvents, openIngest, type IngestSession } from '../../helpers/ingest-client';
import { createTestDatabase, freePort, withClient, type TestDatabase } from '../../helpers/postgres';
import { startService, waitForExit, type ServiceProcess } from '../../helpers/process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopService(proc: ServiceProcess | undefined): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  await waitForExit(proc, 20_000).catch(() => proc.child.kill('SIGKILL'));
}

/** Resident set size of `pid`, bytes (Linux /proc). */
async function rssBytes(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : 0;
}

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${port}/metrics`, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function metricValue(body: string, name: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

async function expectSeqsOnce(url: string, sourceId: string, total: number): Promise<void> {
  const { rows } = await withClient(url, (c) =>
    c.query<{ n: string; distinct_n: string; max: string }>(
      `SELECT count(*)::text AS n, count(DISTINCT seq)::text AS distinct_n, max(seq)::text AS max
         FROM (SELECT seq FROM fills WHERE source_id = $1 UNION ALL SELECT seq FROM order_events WHERE source_id = $1) t`,
      [sourceId],
    ),
  );
  expect(rows[0]).to.deep.equal({ n: String(total), distinct_n: String(total), max: String(total) });
}

describe('ingest with the real service process (integration)', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let proc: ServiceProcess | undefined;

  before(async () => {
    db = await createTestDatabase('ingest_process');
  });
  afterEach(async () => {
    await stopService(proc);
    proc = undefined;
  });
  after(async () => {
    await db?.drop();
  });

  it('SIGKILL mid-stream: after a restart the client resumes from Welcome and every event is stored exactly once', async () => {
    const port = await freePort();
    const env = { DATABASE_URL: db.url, GRPC_ADDRESS: `127.0.0.1:${port}`, METRICS_ADDRESS: 'off', LOG_LEVEL: 'warn', INGEST_BATCH_MAX_MS: '5' };
    proc = startService(env);
    expect(await waitForHealth(port, 'SERVING', 60_000)).to.equal('SERVING');

    const first = openIngest(port, 'sigkill-1');
    await first.session.welcome;
    let lastSent = 0;
    let stop = false;
    void first.session.ended.then(() => (stop = true));
    const sending = (async () => {
      while (!stop && lastSent < 100_000) {
        await first.session.send(mixedEvents(lastSent + 1, lastSent + 200, 'k'));
        lastSent += 200;
        await sleep(2);
      }
    })();
    await first.session.waitForAck(3_000);
    proc.child.kill('SIGKILL');
    await waitForExit(proc, 10_000);
    await first.session.ended;
    await sending;
    const ackedBeforeKill = BigInt(first.session.lastCommitted());
    first.client.close();
    expect(BigInt(lastSent) >= ackedBeforeKill).to.equal(true);

    proc = startService(env);
    expect(await waitForHealth(port, 'SERVING', 60_000)).to.equal('SERVING');
    const second = openIngest(port, 'sigkill-1');
    const welcome = await second.session.welcome;
    const resumeAfter = Number(welcome.last_committed_seq);
    // Every acked event survived the kill.
    expect(BigInt(resumeAfter) >= ackedBeforeKill).to.equal(true);
    const total = lastSent + 1_000;
    for (let from = resumeAfter + 1; from <= total; from += 500) await second.session.send(mixedEvents(from, Math.min(total, from + 499), 'k'));
    await second.session.waitForAck(total, 60_000);
    expect(second.session.total('duplicates')).to.equal(0);
    second.session.end();
    await second.session.ended;
    second.client.close();
    await expectSeqsOnce(db.url, 'sigkill-1', total);
  });

  it('a client sending far faster than the database commits is slowed, not dropped, and server memory stays bounded', async () => {
    const MAX_BUFFERED = 20_000;
    const TOTAL = 150_000;
    const BATCH = 500;
    /** Stated bound for the service's resident memory while the client floods it. */
    const RSS_BOUND_BYTES = 256 * 1024 * 1024;
    const port = await freePort();
    const metricsPort = await freePort();
    proc = startService({
      DATABASE_URL: db.url,
      GRPC_ADDRESS: `127.0.0.1:${port}`,
      METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'warn',
      INGEST_MAX_BUFFERED: String(MAX_BUFFERED),
      INGEST_STREAM_MAX_BUFFERED: String(MAX_BUFFERED),
      INGEST_BATCH_MAX_ROWS: '5000',
    });
    expect(await waitForHealth(port, 'SERVING', 60_000)).to.equal('SERVING');
    const pid = proc.child.pid!;
    const { client, session } = openIngest(port, 'flood-1');
    await session.welcome;

    // The database cannot commit any fill until the lock is released.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE fills IN ACCESS EXCLUSIVE MODE');

    let maxRss = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxRss = Math.max(maxRss, await rssBytes(pid).catch(() => 0));
        await sleep(50);
      }
    })();
    let written = 0;
    const big = (seq: number): Event => ({
      seq: String(seq),
      fill: {
        fill_id: `F${seq}`.padEnd(60, 'f'),
        order_id: `O${seq % 997}`.padEnd(60, 'o'),
        account_id: 'A'.repeat(60),
        symbol: 'SYMBOL-XYZ',
        side: 1,
        price: '12345.6789',
        qty: '100.5',
        ts_ns: (BASE_TS_NS + BigInt(seq)).toString(),
        fee: '-0.01',
        venue: 'V'.repeat(60),
      },
    });
    const sending = (async (s: IngestSession) => {
      for (let from = 1; from <= TOTAL; from += BATCH) {
        const batch: Event[] = [];
        for (let seq = from; seq < from + BATCH; seq++) batch.push(big(seq));
        await s.send(batch);
        written += BATCH;
      }
    })(session);

    await sleep(4_000);
    const writtenWhileBlocked = written;
    const metrics = await scrape(metricsPort);
    const buffered = metricValue(metrics, 'orderflow_ingest_buffered_events');
    const pauses = metricValue(metrics, 'orderflow_ingest_backpressure_pauses_total');
    await blocker.query('ROLLBACK');
    await blocker.end();

    await sending;
    await session.waitForAck(TOTAL, 120_000);
    sampling = false;
    await sampler;
    session.end();
    const status = await session.ended;
    client.close();

    // eslint-disable-next-line no-console
    console.log(`      flood: client got ${writtenWhileBlocked} of ${TOTAL} events out while the database was blocked; server buffered ${buffered}; max RSS ${(maxRss / 1048576).toFixed(0)} MiB`);
    expect(pauses).to.be.greaterThan(0);
    expect(buffered).to.be.at.most(MAX_BUFFERED + BATCH);
    // HTTP/2 flow control held the client: it got little more than the server's bound out.
    expect(writtenWhileBlocked).to.be.below(TOTAL / 2);
    expect(maxRss).to.be.below(RSS_BOUND_BYTES);
    // Slowed, not dropped: the same stream finished, everything acked and stored once.
    expect(status.code).to.equal(0);
    expect(session.total('stored')).to.equal(TOTAL);
    await expectSeqsOnce(db.url, 'flood-1', TOTAL);
  });
});
