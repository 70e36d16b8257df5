import { status } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { expect } from 'chai';
import { AcquireTimeoutError, CancelledError, DbUnavailableError, InternalError, ShuttingDownError } from '../../../src/errors';
import type { PooledConnection } from '../../../src/db/types';
import { toGrpcStatus } from '../../../src/rpc/status';
import { registry } from '../../../src/telemetry/metrics';
import { backendPids, captureLogger, metricValue, PoolHarness, sleep, spanRecorder, waitFor } from './pool-harness';

/** Resolves to the error a promise rejects with (fails the test if it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

describe('db/pool (integration)', () => {
  const harness = new PoolHarness('pool');
  beforeEach(() => harness.setup());
  afterEach(() => harness.cleanup());

  it('counts acquires, waits and statements exactly as they happened', async () => {
    const pool = harness.pool({ POOL_MAX: '2' });
    for (let i = 0; i < 5; i++) await pool.query('test.select', 'SELECT $1::int AS i', [i]);
    let s = pool.stats();
    // The first acquire found no connection and waited for the connect; the other four reused it.
    expect(s).to.include({ acquireCount: 5, waitedAcquireCount: 1, openedConnections: 1, queryCount: 5, queryErrorCount: 0 });
    expect(s).to.include({ totalConnections: 1, idleConnections: 1, inUseConnections: 0, pendingAcquires: 0 });

    const a = await pool.acquire(); // the idle one: no wait
    const b = await pool.acquire(); // opens the second: waits
    expect(pool.stats()).to.include({ acquireCount: 7, waitedAcquireCount: 2, inUseConnections: 2, idleConnections: 0, openedConnections: 2 });
    const waitedMsBefore = pool.stats().waitedAcquireDurationMsTotal;
    const third = pool.acquire();
    await waitFor(() => pool.stats().pendingAcquires === 1, 'the third acquire to queue');
    await sleep(100);
    a.release();
    const c = await third;
    s = pool.stats();
    expect(s).to.include({ acquireCount: 8, waitedAcquireCount: 3, pendingAcquires: 0, inUseConnections: 2, openedConnections: 2 });
    expect(s.waitedAcquireDurationMsTotal - waitedMsBefore).to.be.at.least(95);
    expect(s.acquireDurationMsTotal).to.be.at.least(s.waitedAcquireDurationMsTotal);
    b.release();
    c.release();
    expect(pool.stats()).to.include({ idleConnections: 2, inUseConnections: 0, destroyedByError: 0, destroyedByLifetime: 0, destroyedByIdle: 0, destroyedByMaxUses: 0 });
  });

  it('an exhausted pool fails the next acquire with AcquireTimeoutError (RESOURCE_EXHAUSTED) after the acquire timeout', async () => {
    const pool = harness.pool({ POOL_MAX: '2', POOL_ACQUIRE_TIMEOUT_MS: '300' });
    const timeoutsBefore = await metricValue('orderflow_db_pool_acquire_timeouts_total');
    const held = [await pool.acquire(), await pool.acquire()];
    const started = Date.now();
    const waiting = rejectionOf(pool.acquire());
    await waitFor(() => pool.stats().pendingAcquires === 1, 'the acquire to wait');
    const err = await waiting;
    const waitedMs = Date.now() - started;
    expect(err).to.be.instanceOf(AcquireTimeoutError);
    expect((err as AcquireTimeoutError).waitedMs).to.be.at.least(290);
    expect(waitedMs).to.be.at.least(290);
    expect(toGrpcStatus(err).code).to.equal(status.RESOURCE_EXHAUSTED);
    expect(pool.stats()).to.include({ pendingAcquires: 0, timedOutAcquireCount: 1, acquireCount: 2, inUseConnections: 2 });
    expect((await metricValue('orderflow_db_pool_acquire_timeouts_total')) - timeoutsBefore).to.equal(1);
    // The timed-out waiter is gone: a released connection goes idle and serves the next caller.
    held[0]!.release();
    expect(pool.stats().idleConnections).to.equal(1);
    await pool.query('test.after', 'SELECT 1');
    held[1]!.release();
  });

  it('an aborted acquire leaves the queue at once and is counted as cancelled', async () => {
    const pool = harness.pool({ POOL_MAX: '2', POOL_ACQUIRE_TIMEOUT_MS: '10000' });
    const held = [await pool.acquire(), await pool.acquire()];
    const controller = new AbortController();
    const waiting = rejectionOf(pool.acquire({ signal: controller.signal }));
    await waitFor(() => pool.stats().pendingAcquires === 1, 'the acquire to wait');
    controller.abort();
    expect(await waiting).to.be.instanceOf(CancelledError);
    expect(pool.stats()).to.include({ pendingAcquires: 0, cancelledAcquireCount: 1, timedOutAcquireCount: 0 });
    held[0]!.release();
    // Nobody is waiting any more, so the connection is idle rather than handed to the cancelled caller.
    expect(pool.stats()).to.include({ idleConnections: 1, inUseConnections: 1 });
    held[1]!.release();
    // A pool.query whose signal is already aborted never takes a connection.
    const err = await rejectionOf(pool.query({ op: 'test.aborted', signal: AbortSignal.abort() }, 'SELECT 1'));
    expect(err).to.be.instanceOf(CancelledError);
    expect(pool.stats()).to.include({ cancelledAcquireCount: 2, queryCount: 0 });
  });

  it('logs one slow-query line with op, duration, rows and parameterized SQL, never the values, and counts it', async () => {
    const { logger, lines, raw } = captureLogger();
    const pool = harness.pool({ SLOW_QUERY_MS: '50' }, { logger });
    const counterBefore = await metricValue('orderflow_db_slow_queries_total', { operation: 'test.slow' });
    const sql = 'SELECT pg_sleep(0.12), $1::text AS secret';
    await pool.query('test.slow', sql, ['secret-7f3a9c']);
    await pool.query('test.fast', 'SELECT $1::text AS other', ['secret-0d41b2']);
    await waitFor(() => lines.some((l) => l.msg === 'slow query'), 'the slow-query line');
    const slow = lines.filter((l) => l.msg === 'slow query');
    expect(slow).to.have.length(1);
    expect(slow[0]).to.include({ op: 'test.slow', rows: 1, sql, level: 'warn', slowQueryMs: 50 });
    expect(slow[0]!.durationMs).to.be.a('number').and.above(50);
    expect(raw.join('\n')).not.to.include('secret-7f3a9c');
    expect(raw.join('\n')).not.to.include('secret-0d41b2');
    expect(pool.stats().slowQueryCount).to.equal(1);
    expect((await metricValue('orderflow_db_slow_queries_total', { operation: 'test.slow' })) - counterBefore).to.equal(1);
  });

  it('traces each statement after the database conventions and records the SQLSTATE of failures', async () => {
    const recorder = spanRecorder();
    const pool = harness.pool({}, { tracer: recorder.tracer });
    const errorsBefore = await metricValue('orderflow_db_query_errors_total', { operation: 'test.divide', sqlstate: '22012' });
    const countBefore = await metricValue('orderflow_db_query_duration_seconds_count', { operation: 'orders.get' });
    const sql = 'SELECT $1::int AS x';
    await pool.query({ op: 'orders.get', table: 'orders' }, sql, [424_242]);
    const err = await rejectionOf(pool.query('test.divide', 'SELECT 1 / (0 * $1::int)', [7]));
    expect(err).to.be.instanceOf(InternalError);
    expect((err as InternalError).sqlState).to.equal('22012');

    const [ok, failed] = recorder.spans();
    expect(ok!.name).to.equal('orders.get');
    expect(ok!.kind).to.equal(SpanKind.CLIENT);
    expect(ok!.attributes).to.include({
      'db.system.name': 'postgresql',
      'db.operation.name': 'SELECT',
      'db.query.summary': 'orders.get',
      'db.collection.name': 'orders',
      'db.query.text': sql,
      'db.namespace': new URL(harness.url).pathname.slice(1),
      'server.address': '127.0.0.1',
      'orderflow.db.rows': 1,
    });
    expect(JSON.stringify(ok!.attributes)).not.to.include('424242');
    expect(ok!.status.code).to.equal(SpanStatusCode.UNSET);
    expect(failed!.name).to.equal('test.divide');
    expect(failed!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(failed!.attributes).to.include({ 'error.type': '22012', 'db.response.status_code': '22012' });

    expect((await metricValue('orderflow_db_query_errors_total', { operation: 'test.divide', sqlstate: '22012' })) - errorsBefore).to.equal(1);
    expect((await metricValue('orderflow_db_query_duration_seconds_count', { operation: 'orders.get' })) - countBefore).to.equal(1);
    expect(pool.stats()).to.include({ queryCount: 2, queryErrorCount: 1, destroyedByError: 0 });
  });

  it('COPY gets the same tracking, a span with its rows, error translation and abort by CopyFail', async () => {
    const recorder = spanRecorder();
    const pool = harness.pool({}, { tracer: recorder.tracer });
    await pool.query('test.ddl', 'CREATE TABLE copied (id int PRIMARY KEY, note text NOT NULL)');
    const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`${from + i}\tnote ${from + i}\n`));

    const loaded = await pool.copyFrom({ op: 'test.copy', table: 'copied' }, 'COPY copied (id, note) FROM STDIN', rows(1, 1_000));
    expect(loaded).to.equal(1_000);
    const copySpan = recorder.spans().find((s) => s.name === 'test.copy')!;
    expect(copySpan.attributes).to.include({ 'db.operation.name': 'COPY', 'db.collection.name': 'copied', 'orderflow.db.rows': 1_000 });

    const bad = await rejectionOf(pool.copyFrom('test.copy_bad', 'COPY copied (id, note) FROM STDIN', [Buffer.from('2001\tok\nnot-a-number\tx\n')]));
    expect(bad).to.be.instanceOf(InternalError);
    expect((bad as InternalError).sqlState).to.equal('22P02');
    const badSpan = recorder.spans().find((s) => s.name === 'test.copy_bad')!;
    expect(badSpan.attributes).to.include({ 'error.type': '22P02', 'db.response.status_code': '22P02' });

    // Abort mid-stream: the source keeps the COPY open until the signal fires.
    const controller = new AbortController();
    async function* slowSource() {
      yield Buffer.from('3001\tfirst\n');
      await sleep(100);
      controller.abort();
      await sleep(5_000);
      yield Buffer.from('3002\tnever\n');
    }
    const aborted = await rejectionOf(pool.copyFrom({ op: 'test.copy_abort', signal: controller.signal }, 'COPY copied (id, note) FROM STDIN', slowSource()));
    expect(aborted).to.be.instanceOf(CancelledError);

    const { rows: count } = await pool.query<{ n: string }>('test.count', 'SELECT count(*) AS n FROM copied');
    expect(count[0]!.n).to.equal('1000');
    // Neither the bad data nor the abort cost the connection.
    expect(pool.stats()).to.include({ openedConnections: 1, destroyedByError: 0, queryErrorCount: 2 });
  });

  it('aggregates the metrics of several pools and never registers a family twice', async () => {
    const one = harness.pool({ POOL_MIN: '2' });
    const two = harness.pool({ POOL_MIN: '1' });
    harness.pool(); // a third pool must not throw "already registered"
    await waitFor(() => one.stats().idleConnections === 2 && two.stats().idleConnections === 1, 'warm connections');
    const lease = await one.acquire();
    const text = await registry.metrics();
    for (const family of [
      'orderflow_db_pool_connections',
      'orderflow_db_pool_pending_acquires',
      'orderflow_db_pool_acquire_wait_seconds',
      'orderflow_db_pool_acquires_total',
      'orderflow_db_pool_acquire_timeouts_total',
      'orderflow_db_pool_acquire_cancellations_total',
      'orderflow_db_pool_connections_opened_total',
      'orderflow_db_pool_connections_destroyed_total',
      'orderflow_db_query_duration_seconds',
      'orderflow_db_query_errors_total',
      'orderflow_db_slow_queries_total',
    ]) {
      expect(text, family).to.include(`# TYPE ${family} `);
    }
    // Other suites may have live pools too: compare against the sum over ours plus theirs via the delta.
    const idle = await metricValue('orderflow_db_pool_connections', { state: 'idle' });
    const inUse = await metricValue('orderflow_db_pool_connections', { state: 'in_use' });
    lease.release();
    expect((await metricValue('orderflow_db_pool_connections', { state: 'idle' })) - idle).to.equal(1);
    expect((await metricValue('orderflow_db_pool_connections', { state: 'in_use' })) - inUse).to.equal(-1);
  });

  it('close() refuses new work, fails waiters, waits for checked-out connections, ends every backend, and is idempotent', async () => {
    const appName = harness.appName();
    const pool = harness.pool({ POOL_MAX: '2', POOL_APPLICATION_NAME: appName });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiting = rejectionOf(pool.acquire());
    await waitFor(() => pool.stats().pendingAcquires === 1, 'a waiting acquire');
    const closing = pool.close();
    expect(pool.close()).to.equal(closing);
    expect(pool.state).to.equal('CLOSING');
    expect(await waiting).to.be.instanceOf(ShuttingDownError);
    expect(await rejectionOf(pool.query('test.after_close', 'SELECT 1'))).to.be.instanceOf(ShuttingDownError);
    expect(await rejectionOf(pool.withTransaction(async () => undefined))).to.be.instanceOf(ShuttingDownError);
    // Checked-out connections still work until released.
    await a.query('test.still_mine', 'SELECT 1');
    a.release();
    expect(pool.state).to.equal('CLOSING');
    b.release();
    await closing;
    expect(pool.state).to.equal('CLOSED');
    expect(pool.stats()).to.include({ totalConnections: 0, idleConnections: 0, inUseConnections: 0 });
    await waitFor(async () => (await backendPids(harness.url, appName)).length === 0, 'the backends to end');
    await pool.close();
  });

  it('withConnection releases the connection after success and after an SQL error, and destroys it after a connection error', async () => {
    const pool = harness.pool();
    const pid = await pool.withConnection(async (conn) => {
      await conn.query('test.one', 'SELECT 1');
      return conn.processId;
    });
    expect(pool.stats()).to.include({ idleConnections: 1, inUseConnections: 0 });
    const sqlError = await rejectionOf(pool.withConnection((conn) => conn.query('test.bad', 'SELECT * FROM no_such_table')));
    expect((sqlError as InternalError).sqlState).to.equal('42P01');
    expect(pool.stats()).to.include({ idleConnections: 1, destroyedByError: 0 });
    const dead = await rejectionOf(
      pool.withConnection(async (conn) => {
        expect(conn.processId).to.equal(pid);
        await conn.query('test.suicide', 'SELECT pg_terminate_backend(pg_backend_pid())');
      }),
    );
    expect(dead).to.be.instanceOf(DbUnavailableError);
    expect(pool.stats()).to.include({ idleConnections: 0, totalConnections: 0, destroyedByError: 1 });
  });

  it('a lease is inert after release(); a connection released inside a transaction is destroyed, not reused', async () => {
    const pool = harness.pool();
    const lease: PooledConnection = await pool.acquire();
    const pid = lease.processId;
    expect(pid).to.be.a('number');
    lease.release();
    lease.release();
    expect(await rejectionOf(lease.query('test.after_release', 'SELECT 1'))).to.be.instanceOf(InternalError);
    expect(pool.stats()).to.include({ idleConnections: 1, inUseConnections: 0 });

    const again = await pool.acquire();
    expect(again.processId).to.equal(pid);
    await again.query('test.begin', 'BEGIN');
    again.release();
    expect(pool.stats()).to.include({ destroyedByError: 1, totalConnections: 0 });
    const { rows } = await pool.query<{ pid: number }>('test.pid', 'SELECT pg_backend_pid() AS pid');
    expect(rows[0]!.pid).not.to.equal(pid);
  });
});
