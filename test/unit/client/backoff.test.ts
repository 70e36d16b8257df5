import { expect } from 'chai';
import { backoffDelayMs, DEFAULT_BACKOFF } from '../../../src/client/backoff';

describe('client/backoffDelayMs', () => {
  const options = { initialDelayMs: 100, maxDelayMs: 2_000, multiplier: 2 };

  it('grows exponentially up to the cap, with half of each delay random', () => {
    const low = (attempt: number) => backoffDelayMs(attempt, options, () => 0);
    const high = (attempt: number) => backoffDelayMs(attempt, options, () => 0.999_999);
    expect([0, 1, 2, 3, 4, 5, 10].map(low)).to.deep.equal([50, 100, 200, 400, 800, 1_000, 1_000]);
    expect([0, 1, 2, 3, 4, 5, 10].map(high)).to.deep.equal([100, 200, 400, 800, 1_600, 2_000, 2_000]);
  });

  it('stays within [delay/2, delay] for random draws', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const exponential = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** attempt);
      for (let i = 0; i < 50; i++) expect(backoffDelayMs(attempt, options)).to.be.within(exponential / 2, exponential);
    }
  });

  it('has sane defaults', () => {
    expect(DEFAULT_BACKOFF).to.deep.equal({ initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2 });
  });
});
