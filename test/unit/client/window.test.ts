import { expect } from 'chai';
import { PendingEvent } from '../../../src/client/pending-event';
import { EventWindow, type WindowEntry } from '../../../src/client/window';

function entry(seq: number): WindowEntry {
  return new PendingEvent(BigInt(seq), Buffer.from([seq & 0xff]), false);
}

describe('client/EventWindow', () => {
  it('keeps entries in strictly increasing seq order', () => {
    const w = new EventWindow();
    w.push(entry(1));
    w.push(entry(5));
    expect(() => w.push(entry(5))).to.throw(/order/);
    expect(() => w.push(entry(3))).to.throw(/order/);
    expect(w.size).to.equal(2);
  });

  it('shiftUpTo removes the covered prefix in order; find locates any held seq', () => {
    const w = new EventWindow();
    for (const seq of [2, 4, 6, 8, 10]) w.push(entry(seq));
    expect(w.find(6n)?.seq).to.equal(6n);
    expect(w.find(7n)).to.equal(undefined);
    const removed: bigint[] = [];
    expect(w.shiftUpTo(7n, (e) => removed.push(e.seq))).to.equal(3);
    expect(removed).to.deep.equal([2n, 4n, 6n]);
    expect(w.find(6n)).to.equal(undefined);
    expect(w.find(10n)?.seq).to.equal(10n);
    expect(w.first()?.seq).to.equal(8n);
    expect(w.last()?.seq).to.equal(10n);
    expect(w.shiftUpTo(100n, () => undefined)).to.equal(2);
    expect(w.size).to.equal(0);
    expect(w.first()).to.equal(undefined);
  });

  it('takeUnsent walks a cursor that rewind resets to the oldest held entry', () => {
    const w = new EventWindow();
    for (let seq = 1; seq <= 10; seq++) w.push(entry(seq));
    expect(w.takeUnsent(4).map((e) => Number(e.seq))).to.deep.equal([1, 2, 3, 4]);
    expect(w.unsentCount).to.equal(6);
    w.shiftUpTo(2n, () => undefined);
    expect(w.takeUnsent(100).map((e) => Number(e.seq))).to.deep.equal([5, 6, 7, 8, 9, 10]);
    expect(w.unsentCount).to.equal(0);
    w.rewind();
    expect(w.unsentCount).to.equal(8);
    expect(w.takeUnsent(1)[0]!.seq).to.equal(3n);
    // An ack past the cursor moves it along.
    w.shiftUpTo(6n, () => undefined);
    expect(w.takeUnsent(1)[0]!.seq).to.equal(7n);
  });

  it('compacts its storage without losing the cursor or order', () => {
    const w = new EventWindow();
    for (let seq = 1; seq <= 5_000; seq++) w.push(entry(seq));
    w.takeUnsent(3_000);
    w.shiftUpTo(2_500n, () => undefined); // past the compaction threshold
    expect(w.size).to.equal(2_500);
    expect(w.unsentCount).to.equal(2_000);
    expect(w.takeUnsent(1)[0]!.seq).to.equal(3_001n);
    expect(w.find(2_501n)?.seq).to.equal(2_501n);
    expect(w.entries().map((e) => Number(e.seq))).to.deep.equal(Array.from({ length: 2_500 }, (_, i) => 2_501 + i));
  });

  it('drain hands over every entry and empties the window', () => {
    const w = new EventWindow();
    for (let seq = 1; seq <= 3; seq++) w.push(entry(seq));
    const seen: bigint[] = [];
    w.drain((e) => seen.push(e.seq));
    expect(seen).to.deep.equal([1n, 2n, 3n]);
    expect(w.size).to.equal(0);
    expect(w.unsentCount).to.equal(0);
  });
});

describe('client/PendingEvent', () => {
  it('creates its ack promise only when read, before or after it settles', async () => {
    const early = new PendingEvent(1n, Buffer.from([1]), false);
    const promise = early.acked;
    expect(early.acked).to.equal(promise);
    early.resolve({ seq: 1n, status: 'stored' });
    expect(await promise).to.deep.equal({ seq: 1n, status: 'stored' });
    expect(early.bytes.length, 'bytes are let go once settled').to.equal(0);

    const late = new PendingEvent(2n, Buffer.from([2]), false);
    late.resolve({ seq: 2n, status: 'committed' });
    late.reject(new Error('ignored: already settled'));
    expect(await late.acked).to.deep.equal({ seq: 2n, status: 'committed' });

    const rejected = new PendingEvent(3n, Buffer.from([3]), false);
    rejected.reject(new Error('nope'));
    expect(rejected.settled).to.equal(true);
    const err = await rejected.acked.catch((e: unknown) => e);
    expect((err as Error).message).to.equal('nope');
  });

  it('a rejection nobody reads does not surface as an unhandled rejection', async () => {
    const seen: unknown[] = [];
    const onUnhandled = (reason: unknown) => seen.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const read = new PendingEvent(4n, Buffer.from([4]), false);
      void read.acked; // created, never awaited
      read.reject(new Error('dropped receipt'));
      new PendingEvent(5n, Buffer.from([5]), false).reject(new Error('never read'));
      await new Promise((r) => setTimeout(r, 20));
      expect(seen).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
