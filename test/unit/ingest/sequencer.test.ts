import { expect } from 'chai';
import fc from 'fast-check';
import { compareSeq, isStorableSeq, StreamSequencer } from '../../../src/ingest/sequencer';

describe('ingest/sequencer', () => {
  it('compares canonical decimal strings like the numbers they spell', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (a, b) => {
        expect(Math.sign(compareSeq(a.toString(), b.toString()))).to.equal(a < b ? -1 : a > b ? 1 : 0);
      }),
    );
  });

  it('allows 1 ≤ seq ≤ 2⁶³ − 1', () => {
    expect(isStorableSeq('0')).to.equal(false);
    expect(isStorableSeq('1')).to.equal(true);
    expect(isStorableSeq('9223372036854775807')).to.equal(true);
    expect(isStorableSeq('9223372036854775808')).to.equal(false);
    expect(isStorableSeq('18446744073709551615')).to.equal(false);
  });

  it('treats seqs at or below the mark as duplicates and invalid seqs as not moving it', () => {
    const s = new StreamSequencer('10');
    expect(s.accept('10')).to.equal('DUPLICATE');
    expect(s.accept('11')).to.equal('NEXT');
    expect(s.accept('0')).to.equal('INVALID');
    expect(s.accept('9223372036854775808')).to.equal('INVALID');
    expect(s.accept('11')).to.equal('DUPLICATE');
    expect(s.accept('5')).to.equal('DUPLICATE');
    expect(s.accept('20')).to.equal('NEXT');
    expect(s.highestSeen).to.equal('20');
  });
});
