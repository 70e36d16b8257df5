import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { App } from '../../../src/app';
import { startTestApp } from '../../helpers/app';
import { fillEvent, IngestSession, mixedEvents, openIngest } from '../../helpers/ingest-client';
import { orderFlowClient } from '../../helpers/grpc';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

describe('ingest stream protocol (integration)', () => {
  let db: TestDatabase;
  let app: App;

  before(async () => {
    db = await createTestDatabase('ingest_protocol');
    app = await startTestApp(db.url, { INGEST_BATCH_MAX_MS: '2' });
  });
  after(async () => {
    await app?.close();
    await db?.drop();
  });

  it('answers Hello with Welcome, acks a batch after commit, ends OK after a half-close', async () => {
    const { client, session } = openIngest(app.grpcPort, 'proto-basic');
    const welcome = await session.welcome;
    expect(welcome).to.deep.include({ source_id: 'proto-basic', last_committed_seq: '0' });
    await session.send(mixedEvents(1, 10));
    const ack = await session.waitForAck(10);
    expect(ack.committed_seq).to.equal('10');
    const { rows } = await withClient(db.url, (c) =>
      c.query<{ n: string }>("SELECT (SELECT count(*) FROM fills WHERE source_id = 'proto-basic') + (SELECT count(*) FROM order_events WHERE source_id = 'proto-basic') AS n"),
    );
    expect(rows[0]!.n).to.equal('10');
    session.end();
    expect((await session.ended).code).to.equal(grpc.status.OK);
    expect(session.total('stored')).to.equal(10);
    client.close();
  });

  it('ends a stream whose first message is not Hello with INVALID_ARGUMENT', async () => {
    const client = orderFlowClient(app.grpcPort);
    const session = new IngestSession(client, 'x', { sendHello: false });
    session.call.write({ batch: { events: [fillEvent(1)] } });
    const status = await session.ended;
    expect(status.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(status.details).to.match(/Hello/);
    client.close();
  });

  for (const [name, sourceId] of [
    ['empty', ''],
    ['over-long', 'x'.repeat(65)],
    ['control character', 'bad\u0007source'],
  ] as const) {
    it(`ends a Hello with an invalid source_id (${name}) with INVALID_ARGUMENT`, async () => {
      const { client, session } = openIngest(app.grpcPort, sourceId);
      const status = await session.ended;
      expect(status.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(status.details).to.match(/source_id/);
      client.close();
    });
  }

  it('ends a stream that sends a second Hello with INVALID_ARGUMENT', async () => {
    const { client, session } = openIngest(app.grpcPort, 'proto-double-hello');
    await session.welcome;
    session.call.write({ hello: { source_id: 'proto-double-hello' } });
    const status = await session.ended;
    expect(status.code).to.equal(grpc.status.INVALID_ARGUMENT);
    client.close();
  });

  it('resumes after reconnect from Welcome; a resent overlap is counted as duplicates and stored once', async () => {
    const first = openIngest(app.grpcPort, 'proto-resume');
    await first.session.welcome;
    await first.session.send(mixedEvents(1, 100, 'r'));
    await first.session.waitForAck(100);
    first.session.cancel();
    first.client.close();

    const second = openIngest(app.grpcPort, 'proto-resume');
    const welcome = await second.session.welcome;
    expect(welcome.last_committed_seq).to.equal('100');
    // The client resends 51..150: 51..100 are duplicates.
    await second.session.send(mixedEvents(51, 150, 'r'));
    await second.session.waitForAck(150);
    // A batch of only duplicates is acked without waiting for a flush.
    await second.session.send(mixedEvents(140, 150, 'r'));
    await new Promise((r) => setTimeout(r, 100));
    expect(second.session.total('duplicates')).to.equal(50 + 11);
    expect(second.session.total('stored')).to.equal(50);
    const { rows } = await withClient(db.url, (c) =>
      c.query<{ seq: string; n: string }>(
        `SELECT seq::text, count(*)::text AS n FROM (SELECT seq FROM fills WHERE source_id = 'proto-resume' UNION ALL SELECT seq FROM order_events WHERE source_id = 'proto-resume') t GROUP BY seq HAVING count(*) > 1`,
      ),
    );
    expect(rows).to.deep.equal([]);
    const { rows: total } = await withClient(db.url, (c) =>
      c.query<{ n: string }>(`SELECT (SELECT count(*) FROM fills WHERE source_id = 'proto-resume') + (SELECT count(*) FROM order_events WHERE source_id = 'proto-resume') AS n`),
    );
    expect(total[0]!.n).to.equal('150');
    second.session.end();
    await second.session.ended;
    second.client.close();
  });

  it('takes batches sent right behind Hello, before the Welcome arrived', async () => {
    const { client, session } = openIngest(app.grpcPort, 'proto-pipelined');
    await session.send(mixedEvents(1, 20, 'pl'));
    await session.send(mixedEvents(21, 40, 'pl'));
    expect((await session.welcome).last_committed_seq).to.equal('0');
    await session.waitForAck(40);
    expect(session.total('stored')).to.equal(40);
    session.end();
    expect((await session.ended).code).to.equal(grpc.status.OK);
    client.close();
  });

  it('acks are monotonic per stream', async () => {
    const { client, session } = openIngest(app.grpcPort, 'proto-monotonic');
    await session.welcome;
    for (let i = 0; i < 20; i++) await session.send(mixedEvents(i * 50 + 1, i * 50 + 50, 'mono'));
    await session.waitForAck(1000);
    const seqs = session.acks.map((a) => BigInt(a.committed_seq));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! >= seqs[i - 1]!).to.equal(true);
    expect(session.total('stored')).to.equal(1000);
    session.end();
    await session.ended;
    client.close();
  });
});
