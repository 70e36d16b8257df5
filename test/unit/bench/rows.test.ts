import { expect } from 'chai';
import { createFillGenerator, createRandom, escapeCopyText, FILL_COLUMNS, fillToCopyLine, fillToEvent, generateSeedOrders } from '../../../scripts/bench/lib/rows';

describe('bench/rows', () => {
  it('generates the same rows for the same seed, and different rows for another seed', () => {
    const a = createFillGenerator({ seed: 7, sourceId: 'venue-a' });
    const b = createFillGenerator({ seed: 7, sourceId: 'venue-a' });
    const c = createFillGenerator({ seed: 8, sourceId: 'venue-a' });
    const rowsA = Array.from({ length: 50 }, a);
    expect(Array.from({ length: 50 }, b)).to.deep.equal(rowsA);
    expect(Array.from({ length: 50 }, c)).to.not.deep.equal(rowsA);
  });

  it('numbers seqs from firstSeq, keeps fill ids unique and timestamps increasing as exact strings', () => {
    const next = createFillGenerator({ seed: 1, sourceId: 'venue-a', firstSeq: 41 });
    const rows = Array.from({ length: 1_000 }, next);
    expect(rows[0]!.seq).to.equal('41');
    expect(rows[999]!.seq).to.equal('1040');
    expect(new Set(rows.map((r) => r.fill_id)).size).to.equal(1_000);
    for (let i = 1; i < rows.length; i++) expect(BigInt(rows[i]!.ts_ns) > BigInt(rows[i - 1]!.ts_ns)).to.equal(true);
    for (const r of rows) {
      expect(r.price).to.match(/^\d{1,12}\.\d{4}$/);
      expect(r.qty).to.match(/^[1-9]\d*$/);
      expect(r.fee).to.match(/^-?\d+\.\d+$/);
      expect([1, 2]).to.include(r.side);
      expect(r.order_id.length).to.be.at.most(64);
    }
  });

  it('gives every fill of one order the same account, symbol and side', () => {
    const rows = Array.from({ length: 5_000 }, createFillGenerator({ seed: 3, sourceId: 's' }));
    const byOrder = new Map<string, string>();
    for (const r of rows) {
      const key = `${r.account_id}|${r.symbol}|${r.side}`;
      expect(byOrder.get(r.order_id) ?? key).to.equal(key);
      byOrder.set(r.order_id, key);
    }
    expect(byOrder.size).to.be.greaterThan(100);
  });

  it('escapes backslash, tab, newline and carriage return for COPY text format', () => {
    expect(escapeCopyText('plain')).to.equal('plain');
    expect(escapeCopyText('a\\b\tc\nd\re')).to.equal('a\\\\b\\tc\\nd\\re');
  });

  it('encodes one tab-separated, newline-terminated COPY line per fill in FILL_COLUMNS order', () => {
    const row = createFillGenerator({ seed: 5, sourceId: 'venue\tx' })();
    const line = fillToCopyLine({ ...row, fee: '' });
    expect(line.endsWith('\n')).to.equal(true);
    const fields = line.slice(0, -1).split('\t');
    expect(fields).to.have.length(FILL_COLUMNS.length);
    expect(fields[0]).to.equal('venue\\tx');
    expect(fields[1]).to.equal(row.seq);
    expect(fields[FILL_COLUMNS.indexOf('fee')]).to.equal('\\N');
    expect(fields[FILL_COLUMNS.indexOf('ts_ns')]).to.equal(row.ts_ns);
  });

  it('turns a fill into the proto Event shape with seq and ts_ns kept as strings', () => {
    const row = createFillGenerator({ seed: 5, sourceId: 's' })();
    const event = fillToEvent(row);
    expect(event.seq).to.equal(row.seq);
    expect(event.fill.ts_ns).to.equal(row.ts_ns);
    expect(event.fill).to.not.have.property('source_id');
  });

  it('seeds orders whose fills never exceed the order quantity', () => {
    const orders = generateSeedOrders(7, 500, 10);
    expect(orders).to.have.length(500);
    expect(new Set(orders.map((o) => o.account_id)).size).to.equal(10);
    for (const o of orders) {
      const filled = o.fills.reduce((n, f) => n + Number(f.qty), 0);
      expect(filled).to.be.at.most(Number(o.qty));
    }
    expect(generateSeedOrders(7, 500, 10)).to.deep.equal(orders);
  });

  it('draws uniform values in [0, 1)', () => {
    const random = createRandom(99);
    for (let i = 0; i < 10_000; i++) {
      const v = random();
      expect(v >= 0 && v < 1).to.equal(true);
    }
  });
});
