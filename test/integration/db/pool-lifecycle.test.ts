import { expect } from 'chai';
import { metricValue, PoolHarness, sleep, waitFor } from './pool-harness';

const pidSql = 'SELECT pg_backend_pid() AS pid';

describe('db/pool connection life cycle (integration)', () => {
  const harness = new PoolHarness('pool_life');
  beforeEach(() => harness.setup());
  afterEach(() => harness.cleanup());

  it('opens POOL_MIN connections at start and keeps them past the idle timeout', async () => {
    const pool = harness.pool({ POOL_MIN: '2', POOL_MAX: '4', POOL_IDLE_TIMEOUT_MS: '100' });
    await waitFor(() => pool.stats().idleConnections === 2, 'two warm connections');
    expect(pool.stats()).to.include({ openedConnections: 2, acquireCount: 0, totalConnections: 2 });
    await sleep(400);
    expect(pool.stats()).to.include({ idleConnections: 2, destroyedByIdle: 0, openedConnections: 2 });
  });

  it('closes idle connections above POOL_MIN after the idle timeout', async () => {
    const pool = harness.pool({ POOL_MIN: '1', POOL_MAX: '3', POOL_IDLE_TIMEOUT_MS: '150' });
    const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    for (const lease of leases) lease.release();
    expect(pool.stats().idleConnections).to.equal(3);
    await waitFor(() => pool.stats().destroyedByIdle === 2, 'two idle connections to close');
    await sleep(300);
    expect(pool.stats()).to.include({ destroyedByIdle: 2, totalConnections: 1, idleConnections: 1 });
  });

  it('recycles a connection after POOL_MAX_USES checkouts', async () => {
    const pool = harness.pool({ POOL_MAX_USES: '3' });
    const pids: number[] = [];
    for (let i = 0; i < 4; i++) pids.push((await pool.query<{ pid: number }>('test.pid', pidSql)).rows[0]!.pid);
    expect(pids[1]).to.equal(pids[0]);
    expect(pids[2]).to.equal(pids[0]);
    expect(pids[3]).not.to.equal(pids[0]);
    expect(pool.stats()).to.include({ destroyedByMaxUses: 1, openedConnections: 2 });
  });

  it('enforces the lifetime on a busy connection when it is released, never handing it out again', async () => {
    const pool = harness.pool({ POOL_MAX_LIFETIME_MS: '200', POOL_LIFETIME_JITTER_MS: '0' });
    const destroyedBefore = await metricValue('orderflow_db_pool_connections_destroyed_total', { reason: 'lifetime' });
    const lease = await pool.acquire();
    const pid = lease.processId;
    await sleep(300);
    // Past its lifetime but checked out: it keeps working for its holder.
    await lease.query('test.still_leased', 'SELECT 1');
    expect(pool.stats().destroyedByLifetime).to.equal(0);
    lease.release();
    expect(pool.stats()).to.include({ destroyedByLifetime: 1, totalConnections: 0 });
    expect((await metricValue('orderflow_db_pool_connections_destroyed_total', { reason: 'lifetime' })) - destroyedBefore).to.equal(1);
    const next = await pool.acquire();
    expect(next.processId).not.to.equal(pid);
    next.release();
  });

  it('lifetime with jitter: connections opened together are recycled at different times, and POOL_MIN is kept', async () => {
    const pool = harness.pool({ POOL_MIN: '4', POOL_MAX: '4', POOL_MAX_LIFETIME_MS: '200', POOL_LIFETIME_JITTER_MS: '2000' });
    await waitFor(() => pool.stats().openedConnections === 4, 'four connections');
    const startedAt = Date.now();
    const recycleTimes: number[] = [];
    let seen = 0;
    await waitFor(
      () => {
        const destroyed = pool.stats().destroyedByLifetime;
        for (; seen < destroyed; seen++) recycleTimes.push(Date.now() - startedAt);
        return seen >= 4;
      },
      'four lifetime recycles',
      5_000,
      5,
    );
    // Without jitter all four go within a sweep or two of each other (connect skew + 20 ms sweeps);
    // with 2 s of jitter they spread out (all four inside 100 ms: p ≈ 4·(0.1/2)³ = 0.05 %).
    const what = `recycle times ${recycleTimes.join(', ')} ms`;
    expect(new Set(recycleTimes).size, what).to.be.at.least(2);
    expect(recycleTimes[3]! - recycleTimes[0]!, what).to.be.above(100);
    await waitFor(() => pool.stats().totalConnections === 4, 'POOL_MIN to be refilled');
  });
});
