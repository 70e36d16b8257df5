import { expect } from 'chai';
import { dueCount, intendedSendTimeMs, runClosedLoop, runOpenLoop } from '../../../scripts/bench/lib/load';

describe('bench/load', () => {
  it('schedules open-loop requests by intended send time, independent of when earlier ones finished', () => {
    expect(intendedSendTimeMs(0, 500, 1_000)).to.equal(500);
    expect(intendedSendTimeMs(10, 500, 1_000)).to.equal(510);
    expect(intendedSendTimeMs(3, 0, 250)).to.equal(12);
  });

  it('counts requests unanswered at the drain deadline in the latency at what they waited, as timed out', async () => {
    const r = await runOpenLoop({
      ratePerSec: 1_000,
      warmupMs: 0,
      durationMs: 40,
      drainTimeoutMs: 50,
      // Every other request is never answered (an overloaded server).
      call: (i) => (i % 2 === 0 ? Promise.resolve() : new Promise<void>(() => undefined)),
    });
    expect(r.timedOut).to.be.greaterThan(0);
    expect(r.completed).to.be.greaterThan(0);
    const s = r.latency.summary();
    expect(s.count).to.equal(r.completed + r.timedOut);
    // The unanswered half waited at least the drain timeout, so the tail shows it.
    expect(s.p99Ms).to.be.at.least(50);
  });

  it('counts the requests due at a point in time (the first one at once)', () => {
    expect(dueCount(-1, 1_000)).to.equal(0);
    expect(dueCount(0, 1_000)).to.equal(1);
    expect(dueCount(0.999, 1_000)).to.equal(1);
    expect(dueCount(1, 1_000)).to.equal(2);
    expect(dueCount(1_000, 100)).to.equal(101);
  });

  it('open loop: sends every due request once, records the measured ones and counts errors', async () => {
    const seen: number[] = [];
    const r = await runOpenLoop({
      ratePerSec: 2_000,
      warmupMs: 20,
      durationMs: 60,
      call: async (i) => {
        seen.push(i);
        if (i % 10 === 9) throw new Error('boom');
      },
    });
    expect(seen).to.deep.equal(Array.from({ length: seen.length }, (_, i) => i));
    expect(seen.length).to.equal(dueCount(80 - 1e-9, 2_000));
    expect(r.completed + r.errors).to.be.at.most(seen.length);
    expect(r.completed).to.be.greaterThan(0);
    expect(r.errors).to.be.greaterThan(0);
    expect(r.firstError).to.equal('boom');
    expect(r.latency.count).to.equal(r.completed);
  });

  it('closed loop: keeps at most `concurrency` calls in flight and calls the window hooks once each', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const edges: string[] = [];
    const r = await runClosedLoop({
      concurrency: 3,
      warmupMs: 10,
      durationMs: 300,
      onWindowStart: () => edges.push('start'),
      onWindowEnd: () => edges.push('end'),
      call: async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight--;
      },
    });
    expect(maxInFlight).to.equal(3);
    expect(edges).to.deep.equal(['start', 'end']);
    expect(r.completed).to.be.greaterThan(0);
    expect(r.errors).to.equal(0);
  });
});
