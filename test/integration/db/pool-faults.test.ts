import { expect } from 'chai';
import { CancelledError, DbTimeoutError, DbUnavailableError } from '../../../src/errors';
import { sqlStateOf } from '../../../src/db/pg-errors';
import { withClient } from '../../helpers/postgres';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy';
import { backendActivity, backendPids, PoolHarness, sleep, waitFor } from './pool-harness';

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

async function terminate(url: string, pids: number[]): Promise<void> {
  await withClient(url, (c) => c.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]));
}

describe('db/pool faults (integration)', () => {
  const harness = new PoolHarness('pool_faults');
  let proxy: TcpProxy | undefined;
  beforeEach(() => harness.setup());
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await harness.cleanup();
  });

  it('pg_terminate_backend on idle pooled connections: they are discarded and the next queries succeed', async () => {
    const appName = harness.appName();
    const pool = harness.pool({ POOL_MIN: '3', POOL_MAX: '3', POOL_APPLICATION_NAME: appName });
    await waitFor(() => pool.stats().idleConnections === 3, 'three warm connections');
    const before = await backendPids(harness.url, appName);
    expect(before).to.have.length(3);

    await terminate(harness.url, before);
    await waitFor(() => pool.stats().destroyedByError === 3, 'the pool to notice the terminated backends');

    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.query<{ i: number }>('test.after_terminate', 'SELECT $1::int AS i', [i])));
    expect(results.map((r) => r.rows[0]!.i)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    const after = await backendPids(harness.url, appName);
    expect(after).to.have.length(3);
    expect(after.filter((pid) => before.includes(pid))).to.deep.equal([]);
    expect(pool.stats()).to.include({ destroyedByError: 3, queryErrorCount: 0 });
    expect(pool.stats().openedConnections).to.equal(6);
  });

  it('pg_terminate_backend under a checked-out connection: its statement fails DB_UNAVAILABLE and the connection is destroyed on release', async () => {
    const pool = harness.pool();
    const lease = await pool.acquire();
    const pid = lease.processId!;
    await terminate(harness.url, [pid]);
    const err = await rejectionOf(lease.query('test.on_dead', 'SELECT 1'));
    expect(err).to.be.instanceOf(DbUnavailableError);
    lease.release();
    expect(pool.stats()).to.include({ destroyedByError: 1, totalConnections: 0, inUseConnections: 0 });
    const { rows } = await pool.query<{ pid: number }>('test.pid', 'SELECT pg_backend_pid() AS pid');
    expect(rows[0]!.pid).not.to.equal(pid);
  });

  it('a stalled network path: the statement fails after the client-side query timeout instead of hanging, and the connection is destroyed', async () => {
    const target = new URL(harness.url);
    proxy = await startTcpProxy(target.hostname, Number(target.port));
    const pool = harness.pool(
      { POOL_QUERY_TIMEOUT_MS: '500', POOL_STATEMENT_TIMEOUT_MS: '0', POOL_CONNECT_TIMEOUT_MS: '1000' },
      { url: proxy.urlFor(harness.url) },
    );
    await pool.query('test.warm', 'SELECT 1');
    proxy.stall();
    const started = Date.now();
    const err = await rejectionOf(pool.query('test.stalled', 'SELECT 1'));
    const elapsedMs = Date.now() - started;
    expect(err).to.be.instanceOf(DbTimeoutError);
    expect(elapsedMs).to.be.at.least(450);
    // Not hanging is the point: well under the 35 s default, bounded by timeout + sweep period.
    expect(elapsedMs).to.be.below(5_000);
    expect(pool.stats()).to.include({ destroyedByError: 1, totalConnections: 0, inUseConnections: 0 });

    proxy.resume();
    const { rows } = await pool.query<{ one: number }>('test.after_stall', 'SELECT 1 AS one');
    expect(rows[0]!.one).to.equal(1);
    expect(pool.stats().openedConnections).to.equal(2);
  });

  it('a stall in the middle of a COPY fails it after the query timeout and destroys the connection', async () => {
    const target = new URL(harness.url);
    proxy = await startTcpProxy(target.hostname, Number(target.port));
    const pool = harness.pool(
      { POOL_QUERY_TIMEOUT_MS: '500', POOL_STATEMENT_TIMEOUT_MS: '0', POOL_CONNECT_TIMEOUT_MS: '1000' },
      { url: proxy.urlFor(harness.url) },
    );
    await pool.query('test.ddl', 'CREATE TABLE stalled_copy (id int)');
    const stallingProxy = proxy;
    async function* source() {
      yield Buffer.from('1\n');
      stallingProxy.stall();
      for (let i = 2; i < 2_000; i++) yield Buffer.from(`${i}\n`);
    }
    const err = await rejectionOf(pool.copyFrom('test.copy_stalled', 'COPY stalled_copy (id) FROM STDIN', source()));
    expect(err).to.be.instanceOf(DbTimeoutError);
    expect(pool.stats()).to.include({ destroyedByError: 1, totalConnections: 0 });
    proxy.resume();
    const { rows } = await pool.query<{ n: string }>('test.count', 'SELECT count(*) AS n FROM stalled_copy');
    expect(rows[0]!.n).to.equal('0');
  });

  it('statement_timeout fires on the server: DbTimeoutError with 57014, and the connection stays in the pool', async () => {
    const pool = harness.pool({ POOL_STATEMENT_TIMEOUT_MS: '100', POOL_QUERY_TIMEOUT_MS: '5000' });
    const pid = (await pool.query<{ pid: number }>('test.pid', 'SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const err = await rejectionOf(pool.query('test.too_slow', 'SELECT pg_sleep(2)'));
    expect(err).to.be.instanceOf(DbTimeoutError);
    expect((err as DbTimeoutError).sqlState).to.equal('57014');
    expect((await pool.query<{ pid: number }>('test.pid', 'SELECT pg_backend_pid() AS pid')).rows[0]!.pid).to.equal(pid);
    expect(pool.stats()).to.include({ destroyedByError: 0, openedConnections: 1, queryErrorCount: 1 });
  });

  it('aborting a running pg_sleep(30) cancels it on the server: the backend is idle again within a second and the connection is reused', async () => {
    const pool = harness.pool();
    const lease = await pool.acquire();
    const pid = lease.processId!;
    const controller = new AbortController();
    const running = rejectionOf(lease.query({ op: 'test.sleep', signal: controller.signal }, 'SELECT pg_sleep(30)'));
    await waitFor(async () => (await backendActivity(harness.url, pid))?.state === 'active', 'pg_sleep to run');
    const abortedAt = Date.now();
    controller.abort();
    const err = await running;
    expect(err).to.be.instanceOf(CancelledError);
    // The server's own answer: 57014 query_canceled, from the cancel request.
    expect(sqlStateOf(err.cause)).to.equal('57014');
    await waitFor(async () => (await backendActivity(harness.url, pid))?.state === 'idle', 'the backend to be idle', 1_000);
    expect(Date.now() - abortedAt).to.be.below(1_000);
    const { rows } = await lease.query<{ pid: number }>('test.same', 'SELECT pg_backend_pid() AS pid');
    expect(rows[0]!.pid).to.equal(pid);
    lease.release();
    expect(pool.stats()).to.include({ destroyedByError: 0, idleConnections: 1, queryErrorCount: 1 });
  });

  it('pool.query with an AbortSignal cancels on the server too, and the connection returns to the pool', async () => {
    const appName = harness.appName();
    const pool = harness.pool({ POOL_APPLICATION_NAME: appName });
    const controller = new AbortController();
    const running = rejectionOf(pool.query({ op: 'test.sleep', signal: controller.signal }, 'SELECT pg_sleep(30)'));
    let pid = 0;
    await waitFor(async () => {
      [pid = 0] = await backendPids(harness.url, appName);
      return pid !== 0 && (await backendActivity(harness.url, pid))?.state === 'active';
    }, 'pg_sleep to run');
    controller.abort();
    expect(await running).to.be.instanceOf(CancelledError);
    await waitFor(async () => (await backendActivity(harness.url, pid))?.state === 'idle', 'the backend to be idle', 1_000);
    expect(pool.stats()).to.include({ idleConnections: 1, destroyedByError: 0 });
    // The next statement is not hit by a late cancel.
    await sleep(50);
    const { rows } = await pool.query<{ one: number }>('test.next', 'SELECT 1 AS one');
    expect(rows[0]!.one).to.equal(1);
  });
});
