import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { App } from '../../../src/app';
import type { Event } from '../../../src/generated/orderflow/v1/Event';
import { startTestApp } from '../../helpers/app';
import { BASE_TS_NS, openIngest } from '../../helpers/ingest-client';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const ID_PARTS = ['a', 'Z', '9', '-', '_', '\\', '\\N', 'é', 'Ω', '株', '😀', ' ', '"', "'", '.', '|'];

function randomId(next: () => number, prefix: string, maxChars: number): string {
  let id = prefix;
  let chars = prefix.length;
  const extra = Math.floor(next() * 8);
  for (let i = 0; i < extra && chars < maxChars - 2; i++, chars += 2) id += ID_PARTS[Math.floor(next() * ID_PARTS.length)];
  return id;
}

/** Canonical decimals as PostgreSQL prints them back (no leading zeros; the scale kept as sent). */
function randomDecimal(next: () => number, sign: boolean): string {
  const integer = String(Math.floor(next() * 10 ** (1 + Math.floor(next() * 12)))).slice(0, 12);
  const scale = Math.floor(next() * 9);
  const fraction = scale === 0 ? '' : `.${String(Math.floor(next() * 10 ** scale)).padStart(scale, '0')}`;
  let value = `${integer}${fraction}`;
  if (!/[1-9]/.test(value)) value = '1.5';
  return sign && next() < 0.3 ? `-${value}` : value;
}

function generate(sourceIndex: number, count: number): Event[] {
  const next = rng(1_000 + sourceIndex);
  const events: Event[] = [];
  for (let i = 1; i <= count; i++) {
    const seq = String(i * 3 + sourceIndex); // gaps are allowed
    const ts = (BASE_TS_NS + BigInt(Math.floor(next() * 1e15))).toString();
    if (next() < 0.5) {
      const market = next() < 0.2;
      events.push({
        seq,
        order: {
          order_id: randomId(next, `o${sourceIndex}-${i}-`, 64),
          account_id: randomId(next, 'acc-', 64),
          symbol: randomId(next, 'S', 32),
          side: 1 + Math.floor(next() * 2),
          order_type: market ? 1 : 2,
          event_type: 1 + Math.floor(next() * 6),
          price: market ? '' : randomDecimal(next, false),
          qty: randomDecimal(next, false),
          time_in_force: 1 + Math.floor(next() * 4),
          ts_ns: ts,
          client_order_id: next() < 0.5 ? '' : randomId(next, 'c', 64),
        },
      } as Event);
    } else {
      events.push({
        seq,
        fill: {
          fill_id: randomId(next, `f${sourceIndex}-${i}-`, 64),
          order_id: randomId(next, 'o-', 64),
          account_id: randomId(next, 'acc-', 64),
          symbol: randomId(next, 'S', 32),
          side: 1 + Math.floor(next() * 2),
          price: randomDecimal(next, false),
          qty: randomDecimal(next, false),
          ts_ns: ts,
          fee: next() < 0.3 ? '' : randomDecimal(next, true),
          venue: next() < 0.5 ? '' : randomId(next, 'X', 64),
        },
      } as Event);
    }
  }
  return events;
}

describe('ingest exactly once at volume (integration)', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let app: App;

  before(async () => {
    db = await createTestDatabase('ingest_volume');
    app = await startTestApp(db.url);
  });
  after(async () => {
    await app?.close();
    await db?.drop();
  });

  it('stores 100,000 mixed events from 4 concurrent streams exactly once, field for field, and acks them all', async () => {
    const STREAMS = 4;
    const PER_STREAM = 25_000;
    const BATCH = 500;
    const sent = Array.from({ length: STREAMS }, (_, s) => generate(s, PER_STREAM));
    const sessions = await Promise.all(
      sent.map(async (events, s) => {
        const { client, session } = openIngest(app.grpcPort, `volume-${s}`);
        await session.welcome;
        for (let i = 0; i < events.length; i += BATCH) await session.send(events.slice(i, i + BATCH));
        await session.waitForAck(events[events.length - 1]!.seq as string, 120_000);
        session.end();
        expect((await session.ended).code).to.equal(grpc.status.OK);
        client.close();
        return session;
      }),
    );
    for (const session of sessions) {
      expect(session.total('stored')).to.equal(PER_STREAM);
      expect(session.total('rejected')).to.equal(0);
      expect(session.total('duplicates')).to.equal(0);
    }

    const { orders, fills } = await withClient(db.url, async (c) => ({
      orders: (
        await c.query<Record<string, string | number | null>>(
          `SELECT source_id, seq::text, order_id, account_id, symbol, side, order_type, event_type, price::text, qty::text, time_in_force, ts_ns::text, client_order_id
             FROM order_events ORDER BY source_id, seq`,
        )
      ).rows,
      fills: (
        await c.query<Record<string, string | number | null>>(
          `SELECT source_id, seq::text, fill_id, order_id, account_id, symbol, side, price::text, qty::text, ts_ns::text, fee::text, venue
             FROM fills ORDER BY source_id, seq`,
        )
      ).rows,
    }));
    expect(orders.length + fills.length).to.equal(STREAMS * PER_STREAM);
    const stored = new Map<string, Record<string, string | number | null>>();
    for (const row of [...orders, ...fills]) {
      const key = `${row.source_id}/${row.seq}`;
      expect(stored.has(key), `duplicate row ${key}`).to.equal(false);
      stored.set(key, row);
    }
    // Compared by hand and asserted once: a chai assertion per field would dominate the test's time.
    const mismatches: string[] = [];
    sent.forEach((events, s) => {
      for (const e of events) {
        const key = `volume-${s}/${e.seq}`;
        const row = stored.get(key);
        if (!row) {
          mismatches.push(`missing ${key}`);
          continue;
        }
        const payload = (e.order ?? e.fill)! as Record<string, unknown>;
        for (const [field, value] of Object.entries(payload)) {
          const want = (field === 'price' || field === 'fee') && value === '' ? null : value;
          if (row[field] !== want) mismatches.push(`${key} ${field}: stored ${JSON.stringify(row[field])}, sent ${JSON.stringify(want)}`);
        }
        if (Object.keys(row).length !== Object.keys(payload).length + 2) mismatches.push(`${key}: unexpected columns`);
      }
    });
    expect(mismatches.slice(0, 10)).to.deep.equal([]);
    const { rows: marks } = await withClient(db.url, (c) => c.query<{ source_id: string; last_seq: string }>('SELECT source_id, last_seq::text FROM sources ORDER BY source_id'));
    expect(marks).to.deep.equal(sent.map((events, s) => ({ source_id: `volume-${s}`, last_seq: events[events.length - 1]!.seq })));
  });
});
