import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { FillRecord__Output } from '../../../src/generated/orderflow/v1/FillRecord';
import type { ListFillsResponse__Output } from '../../../src/generated/orderflow/v1/ListFillsResponse';
import { FakeIngest, fill, type FakeFill } from '../../helpers/fake-ingest';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';
import { call, ok, startReadHarness, type ReadHarness } from './support';

const ACCOUNT = 'acct-pg';
const SYMBOLS = ['S0', 'S1', 'S2', 'S3', 'S4'];
const BASE_TS = 1_800_000_000_000_000_000n;

/** Newest-first order of ListFills: (ts_ns, source_id, seq) descending; negative when a comes first. */
function compareNewestFirst(a: FillRecord__Output, b: FillRecord__Output): number {
  const ta = BigInt(a.fill!.ts_ns);
  const tb = BigInt(b.fill!.ts_ns);
  if (ta !== tb) return ta > tb ? -1 : 1;
  if (a.source_id !== b.source_id) return Buffer.compare(Buffer.from(b.source_id), Buffer.from(a.source_id));
  return BigInt(a.seq) > BigInt(b.seq) ? -1 : BigInt(a.seq) < BigInt(b.seq) ? 1 : 0;
}

describe('ListFills paging under concurrent ingest (integration)', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let h: ReadHarness;
  let live: FakeIngest;
  let liveCounter = 0;

  before(async () => {
    db = await createTestDatabase('read_paging');
    h = await startReadHarness(db.url);
    live = new FakeIngest(h.app.pool, h.app.flushHooks, 'src-live');
    // 10,000 fills from two sources; four fills share each timestamp, so ties are broken by source and seq.
    const sources = [new FakeIngest(h.app.pool, h.app.flushHooks, 'src-a'), new FakeIngest(h.app.pool, h.app.flushHooks, 'src-b')];
    for (let batch = 0; batch < 5; batch++) {
      const rows: FakeFill[][] = [[], []];
      for (let i = batch * 2_000; i < (batch + 1) * 2_000; i++) {
        rows[i % 2]!.push(fill({ fill_id: `snap-${i}`, order_id: `o-${i % 97}`, account_id: ACCOUNT, symbol: SYMBOLS[i % 5]!, ts_ns: (BASE_TS + BigInt(Math.floor(i / 4))).toString() }));
      }
      await sources[0]!.flush({ fills: rows[0]! });
      await sources[1]!.flush({ fills: rows[1]! });
    }
  });
  after(async () => {
    await h?.close();
    await db?.drop();
  });

  /** Ingests 10 fills at a time, at random times inside and after the snapshot's range, until stopped. */
  function ingestWhilePaging(): { stop: () => Promise<number> } {
    let running = true;
    const loop = (async () => {
      let batches = 0;
      while (running) {
        const rows = Array.from({ length: 10 }, () =>
          fill({ fill_id: `live-${++liveCounter}`, order_id: 'o-live', account_id: ACCOUNT, symbol: SYMBOLS[liveCounter % 5]!, ts_ns: (BASE_TS + BigInt(Math.floor(Math.random() * 3_000))).toString() }),
        );
        await live.flush({ fills: rows });
        batches++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return batches;
    })();
    return {
      stop: async () => {
        running = false;
        return loop;
      },
    };
  }

  for (const [label, filter] of [
    ['by account (merged across its symbols)', { account_id: ACCOUNT }],
    ['without filters', {}],
  ] as const) {
    it(`pages ${label} with page_size 100: every fill of the snapshot exactly once, in order`, async () => {
      const snapshot = (await withClient(db.url, (c) => c.query<{ fill_id: string }>('SELECT fill_id FROM fills'))).rows.map((r) => r.fill_id);
      expect(snapshot.length).to.be.at.least(10_000);
      const seen = new Map<string, number>();
      const ingest = ingestWhilePaging();
      let previous: FillRecord__Output | undefined;
      let pages = 0;
      let token = '';
      try {
        do {
          const page = await ok<ListFillsResponse__Output>(h.client, 'ListFills', { ...filter, page_size: 100, page_token: token });
          pages++;
          for (const record of page.fills) {
            if (previous) expect(compareNewestFirst(previous, record), 'strictly newest first, across pages too').to.be.below(0);
            previous = record;
            seen.set(record.fill!.fill_id, (seen.get(record.fill!.fill_id) ?? 0) + 1);
          }
          token = page.next_page_token;
        } while (token !== '');
      } finally {
        const batches = await ingest.stop();
        expect(batches, 'ingest really ran while paging').to.be.greaterThan(5);
      }
      const missing = snapshot.filter((id) => !seen.has(id));
      const repeated = [...seen].filter(([, n]) => n > 1);
      expect(missing, 'snapshot fills never listed').to.deep.equal([]);
      expect(repeated, 'fills listed twice').to.deep.equal([]);
      expect(pages).to.be.at.least(snapshot.length / 100);
    });
  }

  it('a tampered page token is INVALID_ARGUMENT', async () => {
    const first = await ok<ListFillsResponse__Output>(h.client, 'ListFills', { account_id: ACCOUNT, page_size: 100 });
    const [body, mac] = first.next_page_token.split('.');
    const cursor = JSON.parse(Buffer.from(body!, 'base64url').toString()) as Record<string, string>;
    const forgedBody = Buffer.from(JSON.stringify({ ...cursor, t: (BigInt(cursor.t!) - 1_000n).toString() })).toString('base64url');
    for (const token of [`${forgedBody}.${mac}`, `${body}.${mac!.slice(0, -2)}AA`, `${body}x.${mac}`, 'garbage']) {
      const { err } = await call(h.client, 'ListFills', { account_id: ACCOUNT, page_size: 100, page_token: token });
      expect(err?.code, token).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(err?.metadata.get('orderflow-field')).to.deep.equal(['page_token']);
    }
  });
});
