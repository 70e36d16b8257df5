import { expect } from 'chai';
import { retryDelayMs } from '../../../src/db/transaction';

describe('db/retryDelayMs', () => {
  it('is full jitter under an exponentially growing, capped bound', () => {
    const max = () => 1 - Number.EPSILON;
    expect(retryDelayMs(1, max)).to.be.closeTo(5, 0.001);
    expect(retryDelayMs(2, max)).to.be.closeTo(10, 0.001);
    expect(retryDelayMs(5, max)).to.be.closeTo(80, 0.001);
    expect(retryDelayMs(30, max)).to.be.closeTo(500, 0.001);
    expect(retryDelayMs(3, () => 0)).to.equal(0);
    expect(retryDelayMs(4, () => 0.5)).to.equal(20);
  });

  it('spreads retries of transactions that conflicted together', () => {
    const delays = Array.from({ length: 20 }, () => retryDelayMs(6));
    expect(new Set(delays).size).to.be.greaterThan(15);
    for (const d of delays) expect(d).to.be.within(0, 160);
  });
});
