import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { App } from '../../../src/app';
import { startTestApp } from '../../helpers/app';
import { fillEvent, openIngest, type IngestSession } from '../../helpers/ingest-client';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keeps sending 50-event batches with consecutive seqs from `from` until the stream ends; returns the last seq sent. */
async function sendUntilEnded(session: IngestSession, from: number, tag: string): Promise<number> {
  let seq = from;
  let ended = false;
  void session.ended.then(() => (ended = true));
  while (!ended && seq < from + 200_000) {
    const batch = [];
    for (let i = 0; i < 50; i++) batch.push(fillEvent(seq++, tag));
    await session.send(batch);
    await sleep(3);
  }
  return seq - 1;
}

/** Stored seqs of `sourceId` by tag (the fill_id prefix). */
async function storedByTag(url: string, sourceId: string): Promise<Map<string, bigint[]>> {
  const { rows } = await withClient(url, (c) => c.query<{ fill_id: string; seq: string }>('SELECT fill_id, seq::text FROM fills WHERE source_id = $1 ORDER BY fills.seq', [sourceId]));
  const byTag = new Map<string, bigint[]>();
  for (const r of rows) {
    const tag = r.fill_id.split('-fill-')[0]!;
    const list = byTag.get(tag) ?? [];
    list.push(BigInt(r.seq));
    byTag.set(tag, list);
  }
  return byTag;
}

async function expectFenced(url: string, sourceId: string, a: IngestSession, b: IngestSession, bWelcomeSeq: bigint, aLastSent: number): Promise<void> {
  const status = await a.ended;
  expect(status.code).to.equal(grpc.status.ABORTED);
  expect(status.details).to.match(/newer ingest stream/);
  // A sent well past the point where B took over.
  expect(BigInt(aLastSent) > bWelcomeSeq, `A sent up to ${aLastSent}, B resumed after ${bWelcomeSeq}`).to.equal(true);
  for (const ack of a.acks) expect(BigInt(ack.committed_seq) <= bWelcomeSeq).to.equal(true);

  // B continues from the Welcome.
  const next = Number(bWelcomeSeq) + 1;
  await b.send(Array.from({ length: 100 }, (_, i) => fillEvent(next + i, 'B')));
  await b.waitForAck(next + 99);

  const byTag = await storedByTag(url, sourceId);
  const aSeqs = byTag.get('A') ?? [];
  const bSeqs = byTag.get('B') ?? [];
  // Everything of A that is stored is at or below B's Welcome, contiguous from 1, each once: nothing A sent after B's Hello.
  expect(aSeqs.length).to.equal(Number(bWelcomeSeq));
  aSeqs.forEach((s, i) => expect(s).to.equal(BigInt(i + 1)));
  expect(bSeqs).to.deep.equal(Array.from({ length: 100 }, (_, i) => BigInt(next + i)));
}

describe('ingest fencing (integration)', function () {
  this.timeout(60_000);
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase('ingest_fencing');
  });
  after(async () => {
    await db?.drop();
  });

  it('a second Hello for a source ends the first stream with ABORTED; nothing it sends after that is stored', async () => {
    // A long window keeps A's latest events buffered when B arrives.
    const app = await startTestApp(db.url, { INGEST_BATCH_MAX_MS: '40' });
    try {
      const a = openIngest(app.grpcPort, 'fence-local');
      await a.session.welcome;
      const sending = sendUntilEnded(a.session, 1, 'A');
      await a.session.waitForAck(500);
      const b = openIngest(app.grpcPort, 'fence-local');
      const welcome = await b.session.welcome;
      const aLastSent = await sending;
      await expectFenced(db.url, 'fence-local', a.session, b.session, BigInt(welcome.last_committed_seq), aLastSent);
      b.session.end();
      await b.session.ended;
      a.client.close();
      b.client.close();
    } finally {
      await app.close();
    }
  });

  it('fences across two service instances on one database (epoch checked in the flush)', async () => {
    const [one, two]: App[] = await Promise.all([startTestApp(db.url, { INGEST_BATCH_MAX_MS: '40' }), startTestApp(db.url, { INGEST_BATCH_MAX_MS: '40' })]);
    try {
      const a = openIngest(one!.grpcPort, 'fence-remote');
      await a.session.welcome;
      const sending = sendUntilEnded(a.session, 1, 'A');
      await a.session.waitForAck(500);
      const b = openIngest(two!.grpcPort, 'fence-remote');
      const welcome = await b.session.welcome;
      const aLastSent = await sending;
      await expectFenced(db.url, 'fence-remote', a.session, b.session, BigInt(welcome.last_committed_seq), aLastSent);
      b.session.end();
      await b.session.ended;
      a.client.close();
      b.client.close();
    } finally {
      await Promise.all([one!.close(), two!.close()]);
    }
  });
});
