import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import fs from 'node:fs/promises';
import type { App } from '../../../src/app';
import { EmbeddedPostgres } from '../../../src/db/embedded';
import { silentLogger } from '../../../src/telemetry/logger';
import { registry } from '../../../src/telemetry/metrics';
import { startTestApp } from '../../helpers/app';
import { mixedEvents, openIngest, type IngestSession } from '../../helpers/ingest-client';
import { createTestDatabase, freePort, tempDir, withClient, type TestDatabase } from '../../helpers/postgres';
import { postgresPidsFor } from '../../helpers/process';
import { StallProxy } from './stall-proxy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Flush attempts that failed and were retried so far (process-wide counter). */
async function flushFailures(): Promise<number> {
  const metric = await registry.getSingleMetric('orderflow_ingest_flush_failures_total')!.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

/** Sends seqs 1..total in batches of `batch`, pausing `gapMs` between batches. */
async function stream(session: IngestSession, total: number, batch: number, gapMs: number, tag: string): Promise<void> {
  for (let from = 1; from <= total; from += batch) {
    await session.send(mixedEvents(from, Math.min(total, from + batch - 1), tag));
    if (gapMs > 0) await sleep(gapMs);
  }
}

/** Asserts seqs 1..total of `sourceId` are each stored exactly once and nothing is quarantined. */
async function expectExactlyOnce(url: string, sourceId: string, total: number): Promise<void> {
  const { rows } = await withClient(url, (c) =>
    c.query<{ seq: string; n: string }>(
      `SELECT seq::text, count(*)::text AS n
         FROM (SELECT seq FROM fills WHERE source_id = $1 UNION ALL SELECT seq FROM order_events WHERE source_id = $1) t
        GROUP BY t.seq ORDER BY t.seq`,
      [sourceId],
    ),
  );
  expect(rows.filter((r) => r.n !== '1'), 'seqs stored more than once').to.deep.equal([]);
  expect(rows.length).to.equal(total);
  expect(rows[0]!.seq).to.equal('1');
  expect(rows[rows.length - 1]!.seq).to.equal(String(total));
  const { rows: q } = await withClient(url, (c) => c.query<{ n: string }>('SELECT count(*)::text AS n FROM quarantine WHERE source_id = $1', [sourceId]));
  expect(q[0]!.n).to.equal('0');
}

describe('ingest under database faults (integration)', function () {
  this.timeout(120_000);

  describe('pg_terminate_backend', () => {
    let db: TestDatabase;
    let app: App;
    before(async () => {
      db = await createTestDatabase('ingest_terminate');
      app = await startTestApp(db.url, { INGEST_BATCH_MAX_MS: '5', INGEST_FLUSH_RETRY_MAX_MS: '200' });
    });
    after(async () => {
      await app?.close();
      await db?.drop();
    });

    it('survives the ingest connection being terminated several times mid-stream: every event stored exactly once', async () => {
      const TOTAL = 20_000;
      const { client, session } = openIngest(app.grpcPort, 'terminate-1');
      await session.welcome;
      const failuresBefore = await flushFailures();
      const sending = stream(session, TOTAL, 200, 2, 't');
      let terminated = 0;
      await withClient(db.url, async (c) => {
        for (let round = 0; round < 6; round++) {
          await sleep(100);
          // Wait for a flush to be mid-transaction (it holds an xid), then kill its backend.
          for (let tries = 0; tries < 400; tries++) {
            const { rows } = await c.query<{ ok: boolean }>(
              'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL',
            );
            if (rows.some((r) => r.ok)) {
              terminated++;
              break;
            }
            await sleep(5);
          }
        }
      });
      await sending;
      await session.waitForAck(TOTAL, 60_000);
      expect(terminated).to.be.at.least(6);
      // The terminations hit flushes, which rolled back and were retried.
      expect(await flushFailures()).to.be.greaterThan(failuresBefore);
      expect(session.total('stored')).to.equal(TOTAL);
      session.end();
      expect((await session.ended).code).to.equal(grpc.status.OK);
      client.close();
      await expectExactlyOnce(db.url, 'terminate-1', TOTAL);
    });
  });

  describe('PostgreSQL stopped with -m immediate and restarted', () => {
    let dataDir: string;
    let pg: EmbeddedPostgres;
    let url: string;
    let app: App | undefined;
    before(async () => {
      dataDir = await tempDir('ingest-crash');
      pg = new EmbeddedPostgres({ dataDir, port: await freePort(), logger: silentLogger, settings: { fsync: 'off' } });
      url = await pg.start();
      app = await startTestApp(url, { INGEST_BATCH_MAX_MS: '5', INGEST_FLUSH_RETRY_MAX_MS: '300', POOL_CONNECT_TIMEOUT_MS: '1000' });
    });
    after(async () => {
      await app?.close();
      await pg?.stop().catch(() => undefined);
      for (const pid of await postgresPidsFor(dataDir)) process.kill(pid, 'SIGKILL');
      await fs.rm(dataDir, { recursive: true, force: true });
    });

    it('delays acks while the database is down and then stores every event exactly once', async () => {
      const TOTAL = 20_000;
      const { client, session } = openIngest(app!.grpcPort, 'crash-1');
      await session.welcome;
      const sending = stream(session, TOTAL, 200, 3, 'c');
      await session.waitForAck(2_000);
      const failuresBefore = await flushFailures();
      await pg.crash();
      // A Hello needs the database (epoch bump): while it is down the stream ends UNAVAILABLE.
      const late = openIngest(app!.grpcPort, 'crash-late');
      expect((await late.session.ended).code).to.equal(grpc.status.UNAVAILABLE);
      late.client.close();
      await sleep(1_000);
      const ackedBeforeRestart = session.lastCommitted();
      await pg.restart();
      // Ack means durable: the crash kept everything acked before it.
      const { rows } = await withClient(url, (c) => c.query<{ last_seq: string }>("SELECT last_seq::text FROM sources WHERE source_id = 'crash-1'"));
      expect(BigInt(rows[0]!.last_seq) >= BigInt(ackedBeforeRestart)).to.equal(true);
      await sending;
      await session.waitForAck(TOTAL, 60_000);
      expect(await flushFailures()).to.be.greaterThan(failuresBefore);
      expect(session.total('stored')).to.equal(TOTAL);
      session.end();
      expect((await session.ended).code).to.equal(grpc.status.OK);
      client.close();
      await expectExactlyOnce(url, 'crash-1', TOTAL);
    });
  });

  describe('network stall between the service and PostgreSQL', () => {
    let db: TestDatabase;
    let proxy: StallProxy;
    let app: App | undefined;
    before(async () => {
      db = await createTestDatabase('ingest_stall');
      const target = new URL(db.url);
      proxy = new StallProxy(Number(target.port));
      const proxied = new URL(db.url);
      proxied.port = String(await proxy.start());
      app = await startTestApp(proxied.toString(), {
        INGEST_BATCH_MAX_MS: '5',
        INGEST_FLUSH_RETRY_MAX_MS: '300',
        POOL_STATEMENT_TIMEOUT_MS: '1000',
        POOL_QUERY_TIMEOUT_MS: '1500',
        POOL_CONNECT_TIMEOUT_MS: '1000',
        POOL_ACQUIRE_TIMEOUT_MS: '1000',
      });
    });
    after(async () => {
      proxy?.resume();
      await app?.close();
      await proxy?.close();
      await db?.drop();
    });

    it('delays acks through a stall and stores every event exactly once', async () => {
      const TOTAL = 10_000;
      const { client, session } = openIngest(app!.grpcPort, 'stall-1');
      await session.welcome;
      const failuresBefore = await flushFailures();
      const sending = stream(session, TOTAL, 100, 3, 's');
      await session.waitForAck(1_000);
      proxy.stall();
      await sleep(3_000);
      const ackedDuringStall = session.lastCommitted();
      await sleep(500);
      // No flush can commit while the network is silent.
      expect(session.lastCommitted()).to.equal(ackedDuringStall);
      proxy.resume();
      await sending;
      await session.waitForAck(TOTAL, 60_000);
      expect(await flushFailures()).to.be.greaterThan(failuresBefore);
      expect(session.total('stored')).to.equal(TOTAL);
      session.end();
      expect((await session.ended).code).to.equal(grpc.status.OK);
      client.close();
      await expectExactlyOnce(db.url, 'stall-1', TOTAL);
    });
  });
});
