import { expect } from 'chai';
import pg from 'pg';
import { loadConfig } from '../../../src/config';
import { createPool } from '../../../src/db/pool';
import { beginIdentified, SEAL_REFUSED_SQLSTATE, sealAndCommitSql, type SourceSeal } from '../../../src/store/sources';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, migrateTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

/**
 * The last round trip of an ingest flush, `SELECT orderflow_seal_window(…);
 * COMMIT` (migration 005), against a real PostgreSQL: it commits only when
 * every source has the epoch and mark the flush expects, and otherwise
 * changes nothing, sends nothing and skips the COMMIT.
 */
describe('ingest: the seal and COMMIT of a flush (integration)', function () {
  this.timeout(30_000);
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase('seal_window');
    await migrateTestDatabase(db.url);
  });
  after(async () => {
    await db?.drop();
  });

  async function connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    return client;
  }

  async function source(id: string, lastSeq: number, epoch: number): Promise<void> {
    await withClient(db.url, (c) =>
      c.query('INSERT INTO sources (source_id, last_seq, epoch) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO UPDATE SET last_seq = $2, epoch = $3', [id, lastSeq, epoch]),
    );
  }

  async function marks(...ids: string[]): Promise<Record<string, string>> {
    const { rows } = await withClient(db.url, (c) => c.query<{ source_id: string; last_seq: string }>('SELECT source_id, last_seq::text FROM sources WHERE source_id = ANY($1) ORDER BY 1', [ids]));
    return Object.fromEntries(rows.map((r) => [r.source_id, r.last_seq]));
  }

  /** Runs the seal on `client` inside a transaction that wrote one row, and returns the error it raised, if any. */
  async function seal(client: pg.Client, seals: SourceSeal[], payload?: string): Promise<{ sqlState?: string; message?: string } | undefined> {
    await client.query('BEGIN');
    await client.query(`INSERT INTO quarantine (source_id, seq, code, reason, raw) VALUES ('seal-test', 1, 'X', 'row of the sealed transaction', '\\x00')`);
    try {
      await client.query(sealAndCommitSql(seals, payload === undefined ? undefined : { channel: 'seal_test', payload }));
      return undefined;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      await client.query('ROLLBACK');
      return { sqlState: e.code, message: e.message };
    }
  }

  async function listen(): Promise<{ client: pg.Client; payloads: string[]; received: (ms: number) => Promise<string[]> }> {
    const client = await connect();
    const payloads: string[] = [];
    client.on('notification', (n) => payloads.push(n.payload ?? ''));
    await client.query('LISTEN seal_test');
    /** The payloads once one arrived, or what arrived within `ms`. */
    const received = async (ms: number): Promise<string[]> => {
      for (const start = Date.now(); payloads.length === 0 && Date.now() - start < ms; ) await new Promise((r) => setTimeout(r, 20));
      return payloads;
    };
    return { client, payloads, received };
  }

  async function quarantined(): Promise<number> {
    const { rows } = await withClient(db.url, (c) => c.query<{ n: number }>("SELECT count(*)::int AS n FROM quarantine WHERE source_id = 'seal-test'"));
    return rows[0]!.n;
  }

  it('advances the marks, notifies and commits when every source is as expected', async () => {
    await source('s-a', 10, 3);
    await source('s-b', 20, 1);
    const listener = await listen();
    const client = await connect();
    try {
      const before = await quarantined();
      const err = await seal(client, [
        { sourceId: 's-a', epoch: '3', mark: '10', newMark: '15' },
        { sourceId: 's-b', epoch: '1', mark: '20', newMark: '20' },
      ], '{"v":1}');
      expect(err).to.equal(undefined);
      expect(await marks('s-a', 's-b')).to.deep.equal({ 's-a': '15', 's-b': '20' });
      expect(await quarantined()).to.equal(before + 1);
      expect(client.getTransactionStatus()).to.equal('I');
      expect(await listener.received(1_000)).to.deep.equal(['{"v":1}']);
    } finally {
      await client.end();
      await listener.client.end();
    }
  });

  const refusals: [string, SourceSeal][] = [
    ['a mark short of the expected one (an earlier window has not committed)', { sourceId: 's-c', epoch: '2', mark: '50', newMark: '60' }],
    ['a mark past the expected one (an earlier attempt committed)', { sourceId: 's-c', epoch: '2', mark: '30', newMark: '60' }],
    ['another epoch (a newer stream fenced the source)', { sourceId: 's-c', epoch: '1', mark: '40', newMark: '60' }],
    ['a source that does not exist', { sourceId: 's-missing', epoch: '0', mark: '0', newMark: '5' }],
  ];
  for (const [what, refused] of refusals) {
    it(`refuses ${what} with ${SEAL_REFUSED_SQLSTATE}, changes nothing, sends nothing and skips the COMMIT`, async () => {
      await source('s-c', 40, 2);
      await source('s-d', 7, 1);
      const listener = await listen();
      const client = await connect();
      try {
        const before = await quarantined();
        // The good source's seal must not be applied either: all or nothing.
        const err = await seal(client, [{ sourceId: 's-d', epoch: '1', mark: '7', newMark: '9' }, refused], '{"v":1}');
        expect(err?.sqlState).to.equal(SEAL_REFUSED_SQLSTATE);
        expect(err?.message).to.match(/1 of 2 sources no longer have the epoch and mark the flush expects/);
        expect(await marks('s-c', 's-d')).to.deep.equal({ 's-c': '40', 's-d': '7' });
        expect(await quarantined()).to.equal(before);
        expect(await listener.received(100)).to.deep.equal([]);
      } finally {
        await client.end();
        await listener.client.end();
      }
    });
  }

  it('refuses the same source twice (OF002), whatever the values', async () => {
    await source('s-e', 1, 1);
    const client = await connect();
    try {
      const seals = [
        { sourceId: 's-e', epoch: '1', mark: '1', newMark: '2' },
        { sourceId: 's-e', epoch: '1', mark: '1', newMark: '3' },
      ];
      expect((await seal(client, seals))?.sqlState).to.equal('OF002');
      expect(await marks('s-e')).to.deep.equal({ 's-e': '1' });
    } finally {
      await client.end();
    }
  });

  it('waits for a flush holding the source and checks the mark that flush committed', async () => {
    await source('s-f', 100, 1);
    const first = await connect();
    const second = await connect();
    try {
      await first.query('BEGIN');
      await first.query("SELECT 1 FROM sources WHERE source_id = 's-f' FOR UPDATE");
      // Expects the mark the first flush is about to commit: it must wait for that commit, then see it.
      const sealed = seal(second, [{ sourceId: 's-f', epoch: '1', mark: '150', newMark: '200' }]);
      let settled = false;
      void sealed.finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 200));
      expect(settled).to.equal(false);
      await first.query("UPDATE sources SET last_seq = 150 WHERE source_id = 's-f'");
      await first.query('COMMIT');
      expect(await sealed).to.equal(undefined);
      expect(await marks('s-f')).to.deep.equal({ 's-f': '200' });
    } finally {
      await first.end();
      await second.end();
    }
  });

  it('inlines ids and payloads as escaped literals and refuses anything but decimals as 64-bit values', async () => {
    const id = "it's a \\ source";
    await source(id, 0, 0);
    const listener = await listen();
    const client = await connect();
    try {
      const payload = `{"o":["quote ' and backslash \\\\ and $$"]}`;
      expect(await seal(client, [{ sourceId: id, epoch: '0', mark: '0', newMark: '18446744073709551615'.slice(0, 19) }], payload)).to.equal(undefined);
      expect(await marks(id)).to.deep.equal({ [id]: '1844674407370955161' });
      expect(await listener.received(1_000)).to.deep.equal([payload]);
    } finally {
      await client.end();
      await listener.client.end();
    }
    for (const bad of ['1; DROP TABLE fills', '-1', '1e3', '', ' 1']) {
      expect(() => sealAndCommitSql([{ sourceId: 'x', epoch: '0', mark: bad, newMark: '1' }], undefined)).to.throw(/not an unsigned 64-bit decimal/);
    }
  });

  it('BEGIN returns the transaction id and backend pid in one round trip', async () => {
    const pool = createPool({ connectionString: db.url, config: loadConfig({ POOL_MIN: '0' }).pool, logger: silentLogger });
    const conn = await pool.acquire();
    try {
      const identity = await beginIdentified(conn);
      const { rows } = await conn.query<{ xid: string; pid: number }>({ op: 'test' }, 'SELECT pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid');
      expect(identity).to.deep.equal({ xid: rows[0]!.xid, backendPid: rows[0]!.pid });
      await conn.query({ op: 'test' }, 'ROLLBACK');
    } finally {
      conn.release();
      await pool.close();
    }
  });
});
