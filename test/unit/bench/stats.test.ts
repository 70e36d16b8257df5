import { expect } from 'chai';
import { LatencyRecorder, median, percentileOfSorted, summarize } from '../../../scripts/bench/lib/stats';

describe('bench/stats', () => {
  describe('percentileOfSorted (nearest rank)', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

    it('returns the smallest sample with at least p% of samples at or below it', () => {
      expect(percentileOfSorted(hundred, 50)).to.equal(50);
      expect(percentileOfSorted(hundred, 99)).to.equal(99);
      expect(percentileOfSorted(hundred, 99.9)).to.equal(100);
      expect(percentileOfSorted(hundred, 100)).to.equal(100);
      expect(percentileOfSorted(hundred, 0)).to.equal(1);
      expect(percentileOfSorted(hundred, 0.5)).to.equal(1);
    });

    it('never interpolates below a sample that was seen (the tail stays honest)', () => {
      expect(percentileOfSorted([1, 1000], 99)).to.equal(1000);
      expect(percentileOfSorted([1, 2, 3, 4], 50)).to.equal(2);
      expect(percentileOfSorted([1, 2, 3, 4], 51)).to.equal(3);
    });

    it('is NaN without samples and rejects percentiles outside 0..100', () => {
      expect(percentileOfSorted([], 50)).to.be.NaN;
      expect(() => percentileOfSorted([1], 101)).to.throw(RangeError);
      expect(() => percentileOfSorted([1], -1)).to.throw(RangeError);
      expect(() => percentileOfSorted([1], Number.NaN)).to.throw(RangeError);
    });
  });

  describe('median and summarize', () => {
    it('takes the middle value, or the mean of the two middle ones, ignoring non-finite runs', () => {
      expect(median([3, 1, 2])).to.equal(2);
      expect(median([4, 1, 3, 2])).to.equal(2.5);
      expect(median([5, Number.NaN, 1, 3])).to.equal(3);
      expect(median([])).to.be.NaN;
    });

    it('reports min, max and the half-range relative to the median as ± spread', () => {
      const s = summarize([100, 90, 110]);
      expect(s.median).to.equal(100);
      expect(s.min).to.equal(90);
      expect(s.max).to.equal(110);
      expect(s.spreadPct).to.be.closeTo(10, 1e-9);
      expect(s.runs).to.deep.equal([100, 90, 110]);
    });

    it('has zero spread for one run and NaN spread without runs', () => {
      expect(summarize([42]).spreadPct).to.equal(0);
      expect(summarize([]).spreadPct).to.be.NaN;
    });
  });

  describe('LatencyRecorder', () => {
    it('grows past its initial capacity and answers percentiles of everything recorded', () => {
      const r = new LatencyRecorder(16);
      for (let i = 1000; i >= 1; i--) r.record(i);
      expect(r.count).to.equal(1000);
      expect(r.percentile(50)).to.equal(500);
      expect(r.percentile(99.9)).to.equal(999);
      const s = r.summary();
      expect(s.p50Ms).to.equal(500);
      expect(s.p99Ms).to.equal(990);
      expect(s.maxMs).to.equal(1000);
      expect(s.distribution.find(([p]) => p === 0)![1]).to.equal(1);
    });

    it('records weighted samples and merges recorders', () => {
      const a = new LatencyRecorder();
      a.record(5, 99);
      a.record(100);
      const b = new LatencyRecorder();
      b.record(1);
      b.merge(a);
      expect(b.count).to.equal(101);
      expect(b.percentile(50)).to.equal(5);
      expect(b.percentile(100)).to.equal(100);
      // Recording after a sort must still give correct ranks.
      b.record(0.5);
      expect(b.percentile(0)).to.equal(0.5);
    });
  });
});
