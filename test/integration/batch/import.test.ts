import { expect } from 'chai';
import { loadConfig } from '../../../src/config';
import { migrate } from '../../../src/db/migrate';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import { importCsv, type ImportOptions, type ImportSummary } from '../../../src/store/import';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';

const FILL_HEADER = 'fill_id,order_id,account_id,symbol,side,price,qty,ts_ns,fee,venue';

/** A valid fill line whose ids and ts derive from `n`. */
const fillLine = (n: number, venue = 'XNAS') => `f-${n},o-${n},acc-1,AAPL,BUY,10.5,${n},${1_700_000_000_000_000_000n + BigInt(n)},0.01,${venue}`;

/** A source that yields `text` line by line, pausing before `pauseBeforeLine` until `release` resolves. */
async function* pausingSource(lines: string[], pauseBeforeLine: number, release: Promise<void>): AsyncGenerator<Buffer> {
  for (let i = 0; i < lines.length; i++) {
    if (i + 1 === pauseBeforeLine) await release;
    yield Buffer.from(`${lines[i]}\n`);
  }
}

describe('store/import CSV (integration)', () => {
  let db: TestDatabase;
  let pool: Pool;

  before(async () => {
    db = await createTestDatabase('import');
    const config = loadConfig({ DATABASE_URL: db.url, POOL_MIN: '0', POOL_MAX: '8' });
    pool = createPool({ connectionString: db.url, config: config.pool, logger: silentLogger });
    await migrate(pool, silentLogger);
  });

  after(async () => {
    await pool?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    await pool.query('test.reset', 'TRUNCATE fills, order_events, quarantine, sources');
  });

  const run = (text: string, options: Partial<ImportOptions> = {}): Promise<ImportSummary> =>
    importCsv(pool, [Buffer.from(text, 'utf8')], { sourceId: 'import:test', chunkRows: 3, concurrency: 2, ...options });

  async function storedLines(sourceId = 'import:test'): Promise<number[]> {
    const { rows } = await pool.query<{ seq: string }>('test.lines', 'SELECT seq::text FROM fills WHERE source_id = $1 ORDER BY fills.seq', [sourceId]);
    return rows.map((r) => Number(r.seq));
  }

  async function mark(sourceId = 'import:test'): Promise<number> {
    const { rows } = await pool.query<{ last_seq: string }>('test.mark', 'SELECT last_seq::text FROM sources WHERE source_id = $1', [sourceId]);
    return Number(rows[0]?.last_seq ?? -1);
  }

  it('good rows, bad rows and rows already stored: exact counts and line numbers; a second import stores nothing', async () => {
    const first = [
      FILL_HEADER, //                                                                     line 1
      'f-1,o-1,acc,AAPL,BUY,10.5,100,1700000000000000001,0.1,XNAS', //                    2
      'f-2,o-1,acc,AAPL,BUY,10.6,50,1700000000000000002,,XNAS', //                        3
      'f-3,o-2,acc,AAPL,SELL,10.7,25,1700000000000000003,-0.01,"XNAS, Inc."', //         4
    ];
    const firstRun = await run(`${first.join('\n')}\n`);
    expect(firstRun).to.include({ stored: 3, quarantined: 0, alreadyImported: 0, markAfter: 4 });

    // A fill a live venue session already stored, under another source.
    await pool.copyFrom('test.live', 'COPY fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns) FROM STDIN', [
      Buffer.from('venue-a\t1\tf-9\to-9\tacc\tAAPL\t1\t3\t1\t1700000000000000000\n'),
    ]);

    const second = [
      ...first,
      'f-4,o-3,acc,MSFT,SELL,1,0,1700000000000000004,,XNAS', //                          5: qty 0
      'f-5,o-3,acc,MSFT,SELL,"1.5",10,1700000000000000005,,"multi', //                  6: newline in venue…
      'line venue"', //                                                                  7: …same record
      'f-6,o-4,acc,MSFT,BUY,2,5,1700000000000000006,,"say ""hi"""', //                  8: valid
      'f-9,o-9,acc,AAPL,BUY,3,1,1700000000000000007,,XNAS', //                          9: already stored by venue-a
      'f-7,o-5,acc,AAPL,BUY,3,1,1700000000000000008', //                                10: 8 fields
      'f-8,o-5,acc,AAPL,HOLD,3,1,1700000000000000009,,X', //                            11: bad side
      'f-6,o-4,acc,MSFT,BUY,2,5,1700000000000000010,,XNAS', //                          12: repeats line 8's fill
      'f-10,o-6,acc,AAPL,BUY,3,1,1700000000000000011,,XNAS', //                         13: valid
    ];
    const summary = await run(`${second.join('\r\n')}\r\n`);
    expect(summary).to.include({
      outcome: 'completed',
      rowsRead: 11,
      alreadyImported: 3,
      stored: 2,
      quarantined: 4,
      duplicateFills: 2,
      notCommitted: 0,
      markBefore: 4,
      markAfter: 13,
    });
    expect(summary.invalidRows).to.deep.equal([
      { line: 5, code: 'REJECT_CODE_OUT_OF_RANGE', reason: 'qty must be > 0' },
      { line: 6, code: 'REJECT_CODE_INVALID_FIELD', reason: 'venue contains a control character' },
      { line: 10, code: 'REJECT_CODE_INVALID_FIELD', reason: 'expected 10 fields, got 8' },
      { line: 11, code: 'REJECT_CODE_INVALID_ENUM', reason: 'side has an unknown value "HOLD"' },
    ]);
    expect(summary.duplicateRows.map((r) => [r.line, r.code])).to.deep.equal([
      [9, 'DUPLICATE_FILL'],
      [12, 'DUPLICATE_FILL'],
    ]);

    expect(await storedLines()).to.deep.equal([2, 3, 4, 8, 13]);
    expect(await mark()).to.equal(13);
    const { rows: stored } = await pool.query<{ fill_id: string; venue: string; fee: string | null; ts_ns: string; price: string }>(
      'test.read',
      "SELECT fill_id, venue, fee::text, ts_ns::text, price::text FROM fills WHERE source_id = 'import:test' AND seq IN (3, 4, 8) ORDER BY seq",
    );
    expect(stored).to.deep.equal([
      { fill_id: 'f-2', venue: 'XNAS', fee: null, ts_ns: '1700000000000000002', price: '10.6' },
      { fill_id: 'f-3', venue: 'XNAS, Inc.', fee: '-0.01', ts_ns: '1700000000000000003', price: '10.7' },
      { fill_id: 'f-6', venue: 'say "hi"', fee: null, ts_ns: '1700000000000000006', price: '2' },
    ]);
    const { rows: quarantined } = await pool.query<{ seq: string; code: string; raw: Buffer }>(
      'test.quarantine',
      "SELECT seq::text, code, raw FROM quarantine WHERE source_id = 'import:test' ORDER BY quarantine.seq",
    );
    expect(quarantined.map((q) => [Number(q.seq), q.code])).to.deep.equal([
      [5, 'REJECT_CODE_OUT_OF_RANGE'],
      [6, 'REJECT_CODE_INVALID_FIELD'],
      [10, 'REJECT_CODE_INVALID_FIELD'],
      [11, 'REJECT_CODE_INVALID_ENUM'],
    ]);
    expect(quarantined[1]!.raw.toString('utf8')).to.equal('f-5,o-3,acc,MSFT,SELL,"1.5",10,1700000000000000005,,"multi\r\nline venue"');

    const again = await run(`${second.join('\r\n')}\r\n`);
    expect(again).to.include({ rowsRead: 11, alreadyImported: 11, stored: 0, quarantined: 0, duplicateFills: 0, markAfter: 13 });
    expect(await storedLines()).to.deep.equal([2, 3, 4, 8, 13]);
    const { rows: counts } = await pool.query<{ fills: string; quarantine: string }>(
      'test.counts',
      'SELECT (SELECT count(*) FROM fills)::text AS fills, (SELECT count(*) FROM quarantine)::text AS quarantine',
    );
    expect(counts[0]).to.deep.equal({ fills: '6', quarantine: '4' });
  });

  it('a fill repeated within one chunk is stored once; the later line is the duplicate', async () => {
    const summary = await run([FILL_HEADER, fillLine(1), fillLine(1), fillLine(2)].join('\n'), { chunkRows: 10 });
    expect(summary).to.include({ stored: 2, duplicateFills: 1 });
    expect(summary.duplicateRows.map((r) => r.line)).to.deep.equal([3]);
    expect(await storedLines()).to.deep.equal([2, 4]);
  });

  it('imports order events exactly: Unicode, market orders without a price, client order ids', async () => {
    const text = [
      'order_id,account_id,symbol,side,order_type,event_type,price,qty,time_in_force,ts_ns,client_order_id',
      'o-株式-1,Kontø,ÆØÅ,BUY,LIMIT,NEW,101.25000000,10,GTC,1700000000123456789,c-1',
      'o-2,acc,MSFT,SIDE_SELL,MARKET,ORDER_EVENT_TYPE_ACCEPTED,,5,3,1700000000123456790,',
    ].join('\n');
    const summary = await run(text, { sourceId: 'import:orders' });
    expect(summary).to.include({ type: 'orders', stored: 2, quarantined: 0 });
    const { rows } = await pool.query('test.orders', 'SELECT order_id, account_id, symbol, side, order_type, event_type, price::text, qty::text, time_in_force, ts_ns::text, client_order_id FROM order_events ORDER BY seq');
    expect(rows).to.deep.equal([
      { order_id: 'o-株式-1', account_id: 'Kontø', symbol: 'ÆØÅ', side: 1, order_type: 2, event_type: 1, price: '101.25000000', qty: '10', time_in_force: 2, ts_ns: '1700000000123456789', client_order_id: 'c-1' },
      { order_id: 'o-2', account_id: 'acc', symbol: 'MSFT', side: 2, order_type: 1, event_type: 2, price: null, qty: '5', time_in_force: 3, ts_ns: '1700000000123456790', client_order_id: '' },
    ]);
  });

  it('a database error in a middle chunk stops the import at that chunk; a rerun resumes and stores every row once', async () => {
    // Fault: a constraint the validator knows nothing about refuses line 17.
    await pool.query('test.fault', "ALTER TABLE fills ADD CONSTRAINT test_venue_not_boom CHECK (venue <> 'BOOM')");
    try {
      const lines = [FILL_HEADER, ...Array.from({ length: 30 }, (_, i) => fillLine(i + 2, i + 2 === 17 ? 'BOOM' : 'XNAS'))];
      const summary = await run(lines.join('\n'), { chunkRows: 5, concurrency: 3 });
      expect(summary.outcome).to.equal('stopped');
      expect(summary.failure).to.include({ firstLine: 17, lastLine: 21, code: 'INTERNAL', sqlState: '23514', constraint: 'test_venue_not_boom' });
      expect(summary).to.include({ stored: 15, markAfter: 16 });
      expect(summary.notCommitted).to.equal(summary.rowsRead - 15);
      // Chunks after the failing one may have loaded in parallel, but none committed.
      expect(await storedLines()).to.deep.equal(Array.from({ length: 15 }, (_, i) => i + 2));
      expect(await mark()).to.equal(16);

      await pool.query('test.unfault', 'ALTER TABLE fills DROP CONSTRAINT test_venue_not_boom');
      const rerun = await run(lines.join('\n'), { chunkRows: 5, concurrency: 3 });
      expect(rerun).to.include({ outcome: 'completed', alreadyImported: 15, stored: 15, markAfter: 31 });
      expect(await storedLines()).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 2));
    } finally {
      await pool.query('test.unfault', 'ALTER TABLE fills DROP CONSTRAINT IF EXISTS test_venue_not_boom');
    }
  });

  it('a second import of the same source fences the first: the first stops, nothing is stored twice', async () => {
    const lines = [FILL_HEADER, ...Array.from({ length: 10 }, (_, i) => fillLine(i + 2))];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let committed = 0;
    const first = importCsv(pool, pausingSource(lines, 7, released), {
      sourceId: 'import:test',
      chunkRows: 5,
      concurrency: 1,
      onProgress: (p) => (committed = p.rowsCommitted),
    });
    for (let i = 0; i < 2_000 && committed < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(committed).to.equal(5);
    // The second run takes the source over (epoch + 1), skips lines 2–6 and stores 7–11.
    const second = await run(lines.join('\n'), { chunkRows: 5 });
    expect(second).to.include({ alreadyImported: 5, stored: 5, markAfter: 11 });
    release();
    const summary = await first;
    expect(summary.outcome).to.equal('stopped');
    expect(summary.failure?.code).to.equal('FENCED');
    expect(summary.stored).to.equal(5);
    expect(await storedLines()).to.deep.equal(Array.from({ length: 10 }, (_, i) => i + 2));
  });

  it('abort stops the import cleanly at a chunk boundary; a rerun completes it exactly once', async () => {
    const lines = [FILL_HEADER, ...Array.from({ length: 12 }, (_, i) => fillLine(i + 2))];
    const controller = new AbortController();
    let committed = 0;
    const never = new Promise<void>(() => undefined);
    const aborted = importCsv(pool, pausingSource(lines, 9, never), {
      sourceId: 'import:test',
      chunkRows: 4,
      concurrency: 2,
      signal: controller.signal,
      onProgress: (p) => (committed = p.rowsCommitted),
    });
    for (let i = 0; i < 2_000 && committed < 4; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    const summary = await aborted;
    expect(summary.outcome).to.equal('aborted');
    const markAfterAbort = await mark();
    expect(summary.markAfter).to.equal(markAfterAbort);
    expect(await storedLines()).to.deep.equal(Array.from({ length: markAfterAbort - 1 }, (_, i) => i + 2));

    const rerun = await run(lines.join('\n'), { chunkRows: 4 });
    expect(rerun.outcome).to.equal('completed');
    expect(rerun.alreadyImported + rerun.stored).to.equal(12);
    expect(await storedLines()).to.deep.equal(Array.from({ length: 12 }, (_, i) => i + 2));
  });

  it('refuses a different file under a source that already holds lines (a daily fills.csv), storing nothing', async () => {
    const monday = [FILL_HEADER, fillLine(1), fillLine(2), fillLine(3)].join('\n');
    expect(await run(monday)).to.include({ stored: 3, markAfter: 4 });
    const tuesday = [FILL_HEADER, fillLine(11), fillLine(12), fillLine(13), fillLine(14), fillLine(15)].join('\n');
    let error: unknown;
    try {
      await run(tuesday);
    } catch (err) {
      error = err;
    }
    expect(error).to.have.property('field', 'source');
    expect((error as Error).message).to.include('import:test already holds lines up to 4');
    expect(await storedLines()).to.deep.equal([2, 3, 4]);
    expect(await mark()).to.equal(4);
    // Under its own name it imports in full.
    expect(await run(tuesday, { sourceId: 'import:tuesday' })).to.include({ stored: 5, alreadyImported: 0 });
  });

  it('accepts a rerun whose mark line was quarantined or skipped as a duplicate fill', async () => {
    const endsInvalid = [FILL_HEADER, fillLine(1), 'f-x,o-x,acc,AAPL,BUY,1,0,1,,X'].join('\n');
    expect(await run(endsInvalid)).to.include({ stored: 1, quarantined: 1, markAfter: 3 });
    expect(await run(endsInvalid)).to.include({ stored: 0, alreadyImported: 2 });

    const endsDuplicate = [FILL_HEADER, fillLine(5), fillLine(1)].join('\n');
    expect(await run(endsDuplicate, { sourceId: 'import:dup' })).to.include({ stored: 1, duplicateFills: 1, markAfter: 3 });
    expect(await run(endsDuplicate, { sourceId: 'import:dup' })).to.include({ stored: 0, alreadyImported: 2 });
  });

  it('refuses a file whose header it cannot map, storing nothing', async () => {
    let error: unknown;
    try {
      await run('fill_id,order_id,qtty\nf,o,1\n');
    } catch (err) {
      error = err;
    }
    expect(error).to.have.property('field', 'header');
    expect(await mark()).to.equal(-1);
  });
});
