import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { App } from '../../../src/app';
import type { Event } from '../../../src/generated/orderflow/v1/Event';
import { RejectCode } from '../../../src/generated/orderflow/v1/RejectCode';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import { startTestApp } from '../../helpers/app';
import type { IngestResponse__Output } from '../../../src/generated/orderflow/v1/IngestResponse';
import { encodeIngestBatch, encodeIngestHello } from '../../../src/ingest/wire-format';
import { BASE_TS_NS, fillEvent, mixedEvents, openIngest, orderEvent } from '../../helpers/ingest-client';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

/** Decodes a quarantined Event's raw bytes with proto-loader (wrapped as a one-event batch). */
function decodeRawEvent(raw: Buffer): Record<string, unknown> {
  const header = (n: number) => {
    const bytes: number[] = [];
    let v = n;
    while (v >= 0x80) {
      bytes.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    bytes.push(v);
    return Buffer.from(bytes);
  };
  const batch = Buffer.concat([Buffer.from([0x0a]), header(raw.length), raw]);
  const msg = Buffer.concat([Buffer.from([0x12]), header(batch.length), batch]);
  const decoded = orderFlowServiceDefinition().Ingest.requestDeserialize(msg) as unknown as { batch: { events: Record<string, unknown>[] } };
  return decoded.batch.events[0]!;
}

describe('ingest rejects and poison isolation (integration)', () => {
  let db: TestDatabase;
  let app: App;

  before(async () => {
    db = await createTestDatabase('ingest_rejects');
    app = await startTestApp(db.url, { INGEST_BATCH_MAX_MS: '2' });
  });
  after(async () => {
    await app?.close();
    await db?.drop();
  });

  it('rejects each kind of bad event with its seq, stores the valid ones, quarantines the bad ones, keeps the stream open', async () => {
    const bad: [Event, number, string][] = [
      [{ ...fillEvent(2), fill: { ...fillEvent(2).fill!, fill_id: 'f\u0000x' } }, RejectCode.REJECT_CODE_INVALID_FIELD, 'fill_id contains a NUL character'],
      [{ ...orderEvent(4), order: { ...orderEvent(4).order!, account_id: 'acc\u001b[0m' } }, RejectCode.REJECT_CODE_INVALID_FIELD, 'account_id contains a control character'],
      [{ ...fillEvent(6), fill: { ...fillEvent(6).fill!, order_id: '' } }, RejectCode.REJECT_CODE_MISSING_FIELD, 'order_id is required'],
      [{ ...orderEvent(8), order: { ...orderEvent(8).order!, order_id: 'o'.repeat(65) } }, RejectCode.REJECT_CODE_INVALID_FIELD, 'order_id is longer than 64 characters'],
      [{ ...fillEvent(10), fill: { ...fillEvent(10).fill!, price: '12,5' } }, RejectCode.REJECT_CODE_INVALID_FIELD, 'price is not a decimal number'],
      [{ ...fillEvent(12), fill: { ...fillEvent(12).fill!, qty: '10000000000000' } }, RejectCode.REJECT_CODE_OUT_OF_RANGE, 'qty has more than 12 integer digits'],
      [{ ...orderEvent(14), order: { ...orderEvent(14).order!, qty: '-3' } }, RejectCode.REJECT_CODE_OUT_OF_RANGE, 'qty must be > 0'],
      [{ ...orderEvent(16), order: { ...orderEvent(16).order!, side: 7 as never } }, RejectCode.REJECT_CODE_INVALID_ENUM, 'side has an unknown value 7'],
      [{ ...orderEvent(18), order: { ...orderEvent(18).order!, time_in_force: 0 } }, RejectCode.REJECT_CODE_INVALID_ENUM, 'time_in_force must be set (TIME_IN_FORCE_UNSPECIFIED is not allowed)'],
      [{ seq: '20' }, RejectCode.REJECT_CODE_MISSING_PAYLOAD, 'event carries neither an order nor a fill'],
      [{ ...fillEvent(22), seq: '18446744073709551615' }, RejectCode.REJECT_CODE_INVALID_SEQ, 'seq must be between 1 and 9223372036854775807'],
    ];
    const events: Event[] = [];
    for (let seq = 1; seq <= 24; seq++) {
      const b = bad.find(([e]) => e.seq === String(seq) || (seq === 22 && e.seq === '18446744073709551615'));
      events.push(b ? b[0] : seq % 2 === 0 ? fillEvent(seq, 'rj') : orderEvent(seq, 'rj'));
    }
    const { client, session } = openIngest(app.grpcPort, 'rejects-1');
    await session.welcome;
    await session.send(events);
    const ack = await session.waitForAck(24);
    expect(ack).to.deep.include({ committed_seq: '24', stored: 13, rejected: 11, duplicates: 0 });
    expect(session.rejects.map((r) => [r.seq, r.code, r.reason])).to.deep.equal(bad.map(([e, code, reason]) => [e.seq, code, reason]));
    // Every Reject comes before the Ack that covers it.
    expect(session.order).to.deep.equal(['welcome', ...bad.map(() => 'reject'), 'ack']);

    const { rows: stored } = await withClient(db.url, (c) =>
      c.query<{ seq: string }>("SELECT seq::text FROM fills WHERE source_id = 'rejects-1' UNION ALL SELECT seq::text FROM order_events WHERE source_id = 'rejects-1' ORDER BY 1"),
    );
    const badSeqs = new Set(bad.map(([e]) => e.seq).concat('22'));
    const expectedStored = events.map((e) => e.seq!).filter((s) => !badSeqs.has(String(s)));
    expect(stored.map((r) => r.seq).sort()).to.deep.equal(expectedStored.map(String).sort());

    const { rows: quarantined } = await withClient(db.url, (c) => c.query<{ seq: string; code: string; reason: string; raw: Buffer }>("SELECT seq::text, code, reason, raw FROM quarantine WHERE source_id = 'rejects-1' ORDER BY id"));
    expect(quarantined.map((q) => [q.seq, q.code, q.reason])).to.deep.equal(bad.map(([e, code, reason]) => [e.seq, Object.keys(RejectCode)[code], reason]));
    for (let i = 0; i < bad.length; i++) {
      const sent = bad[i]![0];
      const raw = decodeRawEvent(quarantined[i]!.raw);
      expect(raw.seq).to.equal(sent.seq);
      if (sent.fill) expect(raw.fill).to.deep.equal(sent.fill);
      if (sent.order) expect(raw.order).to.deep.equal(sent.order);
    }

    // Still open: later events are taken.
    await session.send(mixedEvents(25, 30, 'rj'));
    expect((await session.waitForAck(30)).stored).to.equal(6);
    session.end();
    expect((await session.ended).code).to.equal(grpc.status.OK);
    client.close();
  });

  it('quarantines rows PostgreSQL refuses (found by bisection) and commits the rest of the window', async () => {
    await withClient(db.url, async (c) => {
      await c.query("ALTER TABLE fills ADD CONSTRAINT test_no_poison_fill CHECK (venue <> 'POISON')");
      await c.query("ALTER TABLE order_events ADD CONSTRAINT test_no_poison_order CHECK (client_order_id <> 'POISON')");
    });
    try {
      const poisoned = new Set([17, 400, 401, 999, 1_000]);
      const events = mixedEvents(1, 1_000, 'px').map((e) => {
        if (!poisoned.has(Number(e.seq))) return e;
        return e.fill ? { ...e, fill: { ...e.fill, venue: 'POISON' } } : { ...e, order: { ...e.order!, client_order_id: 'POISON' } };
      });
      const { client, session } = openIngest(app.grpcPort, 'poison-1');
      await session.welcome;
      await session.send(events);
      await session.waitForAck(1_000);
      expect(session.total('stored')).to.equal(995);
      expect(session.total('rejected')).to.equal(5);
      expect(session.rejects.map((r) => [r.seq, r.code])).to.deep.equal([...poisoned].map((s) => [String(s), RejectCode.REJECT_CODE_STORAGE_REFUSED]));
      expect(session.rejects[0]!.reason).to.match(/test_no_poison/);

      const { rows } = await withClient(db.url, (c) =>
        c.query<{ n: string }>("SELECT (SELECT count(*) FROM fills WHERE source_id = 'poison-1') + (SELECT count(*) FROM order_events WHERE source_id = 'poison-1') AS n"),
      );
      expect(rows[0]!.n).to.equal('995');
      const { rows: q } = await withClient(db.url, (c) => c.query<{ seq: string; code: string; raw: Buffer }>("SELECT seq::text, code, raw FROM quarantine WHERE source_id = 'poison-1' ORDER BY quarantine.seq"));
      expect(q.map((r) => [r.seq, r.code])).to.deep.equal([...poisoned].map((s) => [String(s), 'REJECT_CODE_STORAGE_REFUSED']));
      const sent17 = events.find((e) => e.seq === '17')!;
      const raw17 = decodeRawEvent(q[0]!.raw);
      expect(raw17.seq).to.equal('17');
      expect(raw17.order ?? raw17.fill).to.deep.equal(sent17.order ?? sent17.fill);
      const { rows: mark } = await withClient(db.url, (c) => c.query<{ last_seq: string }>("SELECT last_seq::text FROM sources WHERE source_id = 'poison-1'"));
      expect(mark[0]!.last_seq).to.equal('1000');
      session.end();
      await session.ended;
      client.close();
    } finally {
      await withClient(db.url, async (c) => {
        await c.query('ALTER TABLE fills DROP CONSTRAINT test_no_poison_fill');
        await c.query('ALTER TABLE order_events DROP CONSTRAINT test_no_poison_order');
      });
    }
  });

  it('ends the stream with INVALID_ARGUMENT on a malformed message, storing none of it and keeping what came before', async () => {
    // A raw client: requests go out as the bytes given, so a message can be cut short.
    const definition = orderFlowServiceDefinition().Ingest;
    const raw = new grpc.Client(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure());
    const call = raw.makeBidiStreamRequest<Buffer, IngestResponse__Output>(definition.path, (b: Buffer) => b, (b: Buffer) => definition.responseDeserialize(b) as IngestResponse__Output);
    const responses: IngestResponse__Output[] = [];
    const arrived = (pred: (r: IngestResponse__Output) => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => (responses.some(pred) ? resolve() : setTimeout(check, 10));
        check();
      });
    const ended = new Promise<grpc.StatusObject>((resolve) => {
      call.on('status', resolve);
      call.on('error', () => undefined);
    });
    call.on('data', (r: IngestResponse__Output) => responses.push(r));
    const good = (seq: number) => ({ seq: String(seq), payload: 'fill' as const, fill: { fill_id: `mm-f${seq}`, order_id: 'mm-o1', account_id: 'mm-a', symbol: 'MM', side: 1, price: '10.5', qty: '1', ts_ns: String(BASE_TS_NS + BigInt(seq)), fee: '', venue: '' } });
    call.write(encodeIngestHello('malformed-msg-1'));
    await arrived((r) => r.welcome !== null && r.welcome !== undefined);
    call.write(encodeIngestBatch([good(1)]));
    await arrived((r) => r.ack?.committed_seq === '1');
    // Events 2 and 3, cut two bytes short: the length of the last field points past the end.
    const cut = encodeIngestBatch([good(2), good(3)]);
    call.write(cut.subarray(0, cut.length - 2));
    const status = await ended;
    expect(status.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(status.details).to.match(/Malformed IngestRequest/);
    raw.close();

    const { rows } = await withClient(db.url, (c) => c.query<{ seq: string }>("SELECT seq::text FROM fills WHERE source_id = 'malformed-msg-1' ORDER BY seq"));
    expect(rows.map((r) => r.seq)).to.deep.equal(['1']);
    const { rows: mark } = await withClient(db.url, (c) => c.query<{ last_seq: string }>("SELECT last_seq::text FROM sources WHERE source_id = 'malformed-msg-1'"));
    expect(mark[0]!.last_seq).to.equal('1');

    // Other streams go on.
    const { client, session } = openIngest(app.grpcPort, 'malformed-msg-2');
    await session.welcome;
    await session.send(mixedEvents(1, 5, 'mm2'));
    expect((await session.waitForAck(5)).stored).to.equal(5);
    session.end();
    await session.ended;
    client.close();
  });
});
