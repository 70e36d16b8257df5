import { status } from '@grpc/grpc-js';
import { SpanStatusCode } from '@opentelemetry/api';
import { expect } from 'chai';
import { CancelledError, DbUnavailableError, DuplicateError, InternalError, RetryableTxError } from '../../../src/errors';
import type { Pool, Transaction } from '../../../src/db/types';
import { toGrpcStatus } from '../../../src/rpc/status';
import { withClient } from '../../helpers/postgres';
import { backendActivity, metricValue, PoolHarness, spanRecorder, waitFor } from './pool-harness';

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

/** Resolves for everyone once `parties` callers have arrived. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return () => {
    if (++arrived === parties) release();
    return all;
  };
}

const pidOf = async (q: Pool | Transaction) => (await q.query<{ pid: number }>('test.pid', 'SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

describe('db/transaction (integration)', () => {
  const harness = new PoolHarness('tx');
  beforeEach(() => harness.setup());
  afterEach(() => harness.cleanup());

  it('commits on success with the requested isolation level and read-only mode', async () => {
    const pool = harness.pool();
    await pool.query('test.ddl', 'CREATE TABLE t (id int PRIMARY KEY)');
    const modes = await pool.withTransaction(
      async (tx) => {
        const iso = await tx.query<{ transaction_isolation: string }>('test.show', 'SHOW transaction_isolation');
        const ro = await tx.query<{ transaction_read_only: string }>('test.show', 'SHOW transaction_read_only');
        return [iso.rows[0]!.transaction_isolation, ro.rows[0]!.transaction_read_only];
      },
      { op: 'test.modes', isolation: 'serializable', readOnly: true },
    );
    expect(modes).to.deep.equal(['serializable', 'on']);
    await pool.withTransaction((tx) => tx.query('test.insert', 'INSERT INTO t VALUES (1)'), { isolation: 'repeatable read' });
    const { rows } = await pool.query<{ n: string }>('test.count', 'SELECT count(*) AS n FROM t');
    expect(rows[0]!.n).to.equal('1');
    const readOnly = await rejectionOf(pool.withTransaction((tx) => tx.query('test.insert', 'INSERT INTO t VALUES (2)'), { readOnly: true }));
    expect((readOnly as InternalError).sqlState).to.equal('25006');
  });

  it('a forced error rolls back: rollback span and event carry the SQLSTATE, and the connection is reused', async () => {
    const recorder = spanRecorder();
    const pool = harness.pool({}, { tracer: recorder.tracer });
    await pool.query('test.ddl', 'CREATE TABLE t (id int PRIMARY KEY)');
    const rollbacksBefore = await metricValue('orderflow_db_transaction_rollbacks_total', { sqlstate: '23505' });
    let txPid = 0;
    const err = await rejectionOf(
      pool.withTransaction(
        async (tx) => {
          txPid = await pidOf(tx);
          await tx.query('test.insert', 'INSERT INTO t VALUES ($1)', [1]);
          await tx.query('test.insert', 'INSERT INTO t VALUES ($1)', [1]);
        },
        { op: 'test.tx' },
      ),
    );
    expect(err).to.be.instanceOf(DuplicateError);
    expect(toGrpcStatus(err).code).to.equal(status.ALREADY_EXISTS);
    const { rows } = await pool.query<{ n: string }>('test.count', 'SELECT count(*) AS n FROM t');
    expect(rows[0]!.n).to.equal('0');

    const spans = recorder.spans();
    const txSpan = spans.find((s) => s.name === 'test.tx')!;
    const rollbackSpan = spans.find((s) => s.name === 'test.tx.rollback')!;
    expect(txSpan.status.code).to.equal(SpanStatusCode.ERROR);
    expect(txSpan.attributes).to.include({ 'error.type': '23505', 'db.response.status_code': '23505', 'orderflow.db.transaction.attempts': 1 });
    const event = txSpan.events.find((e) => e.name === 'rollback')!;
    expect(event.attributes).to.include({ 'error.type': '23505', 'db.response.status_code': '23505' });
    expect(rollbackSpan.attributes).to.include({ 'db.operation.name': 'ROLLBACK', 'orderflow.db.rollback.sqlstate': '23505' });
    expect(rollbackSpan.status.code).to.equal(SpanStatusCode.UNSET);
    // Every statement of the transaction is a child of its span.
    const children = spans.filter((s) => s.parentSpanContext?.spanId === txSpan.spanContext().spanId).map((s) => s.name);
    expect(children).to.deep.equal(['test.tx.begin', 'test.pid', 'test.insert', 'test.insert', 'test.tx.rollback']);

    expect(await pidOf(pool)).to.equal(txPid);
    expect(pool.stats()).to.include({ openedConnections: 1, destroyedByError: 0, transactionRollbackCount: 1 });
    expect((await metricValue('orderflow_db_transaction_rollbacks_total', { sqlstate: '23505' })) - rollbacksBefore).to.equal(1);
  });

  it('two transactions in a serialization conflict: the loser is retried and both effects are present', async () => {
    const recorder = spanRecorder();
    const pool = harness.pool({ POOL_MAX: '4' }, { tracer: recorder.tracer });
    await pool.query('test.ddl', 'CREATE TABLE ledger (writer int, seen_total int)');
    const bothRead = barrier(2);
    const attempts = [0, 0];
    // Write skew: each reads the whole table, then inserts. Under SERIALIZABLE one must fail with 40001.
    const run = (writer: number) =>
      pool.withTransaction(
        async (tx) => {
          attempts[writer]!++;
          const { rows } = await tx.query<{ n: number }>('test.sum', 'SELECT count(*)::int AS n FROM ledger');
          if (attempts[writer] === 1) await bothRead();
          await tx.query('test.insert', 'INSERT INTO ledger VALUES ($1, $2)', [writer, rows[0]!.n]);
        },
        { op: `test.writer${writer}`, isolation: 'serializable' },
      );
    await Promise.all([run(0), run(1)]);
    const { rows } = await pool.query<{ writer: number; seen_total: number }>('test.rows', 'SELECT writer, seen_total FROM ledger ORDER BY seen_total');
    expect(rows.map((r) => r.writer).sort()).to.deep.equal([0, 1]);
    // Serial outcome: the retried writer saw the winner's row.
    expect(rows.map((r) => r.seen_total)).to.deep.equal([0, 1]);
    expect(attempts[0]! + attempts[1]!).to.equal(3);
    expect(pool.stats().transactionRetryCount).to.equal(1);
    const retried = recorder.spans().find((s) => s.name.startsWith('test.writer') && s.events.some((e) => e.name === 'retry'))!;
    expect(retried.attributes).to.include({ 'orderflow.db.transaction.attempts': 2 });
    expect(retried.status.code).to.equal(SpanStatusCode.UNSET);
  });

  it('gives up after maxRetries and surfaces RetryableTxError (ABORTED)', async () => {
    const pool = harness.pool({ POOL_MAX: '4' });
    await pool.query('test.ddl', 'CREATE TABLE ledger (writer int)');
    const bothRead = barrier(2);
    const run = (writer: number) =>
      pool.withTransaction(
        async (tx) => {
          await tx.query('test.sum', 'SELECT count(*) FROM ledger');
          await bothRead();
          await tx.query('test.insert', 'INSERT INTO ledger VALUES ($1)', [writer]);
        },
        { isolation: 'serializable', maxRetries: 0 },
      );
    const outcomes = await Promise.allSettled([run(0), run(1)]);
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failures).to.have.length(1);
    expect(failures[0]!.reason).to.be.instanceOf(RetryableTxError);
    expect((failures[0]!.reason as RetryableTxError).sqlState).to.equal('40001');
    expect(toGrpcStatus(failures[0]!.reason).code).to.equal(status.ABORTED);
    expect(pool.stats()).to.include({ transactionRetryCount: 0, destroyedByError: 0 });
  });

  it('nested calls use savepoints: an inner failure rolls back only the inner part', async () => {
    const recorder = spanRecorder();
    const pool = harness.pool({}, { tracer: recorder.tracer });
    await pool.query('test.ddl', 'CREATE TABLE t (id int PRIMARY KEY)');
    await pool.withTransaction(
      async (tx) => {
        await tx.query('test.insert', 'INSERT INTO t VALUES (1)');
        const inner = await rejectionOf(
          tx.withTransaction(
            async (nested) => {
              await nested.query('test.insert', 'INSERT INTO t VALUES (2)');
              await nested.query('test.insert', 'INSERT INTO t VALUES (1)'); // duplicate
            },
            { op: 'test.inner' },
          ),
        );
        expect(inner).to.be.instanceOf(DuplicateError);
        await tx.savepoint((nested) => nested.query('test.insert', 'INSERT INTO t VALUES (3)'));
      },
      { op: 'test.outer' },
    );
    const { rows } = await pool.query<{ id: number }>('test.ids', 'SELECT id FROM t ORDER BY id');
    expect(rows.map((r) => r.id)).to.deep.equal([1, 3]);
    const inner = recorder.spans().find((s) => s.name === 'test.inner')!;
    expect(inner.events.find((e) => e.name === 'rollback')!.attributes).to.include({ 'db.response.status_code': '23505' });
    expect(recorder.spans().find((s) => s.name === 'test.inner.rollback')!.attributes).to.include({ 'orderflow.db.rollback.sqlstate': '23505' });
    expect(pool.stats().transactionRollbackCount).to.equal(0);
  });

  it('aborting a transaction mid-statement cancels it on the server, rolls back, and keeps the connection', async () => {
    const pool = harness.pool();
    await pool.query('test.ddl', 'CREATE TABLE t (id int PRIMARY KEY)');
    const controller = new AbortController();
    let pid = 0;
    const running = rejectionOf(
      pool.withTransaction(
        async (tx) => {
          pid = await pidOf(tx);
          await tx.query('test.insert', 'INSERT INTO t VALUES (1)');
          await tx.query('test.sleep', 'SELECT pg_sleep(30)');
        },
        { op: 'test.aborted', signal: controller.signal },
      ),
    );
    await waitFor(async () => pid !== 0 && (await backendActivity(harness.url, pid))?.query === 'SELECT pg_sleep(30)', 'pg_sleep to run');
    controller.abort();
    expect(await running).to.be.instanceOf(CancelledError);
    // Idle, not "idle in transaction": the ROLLBACK went through.
    await waitFor(async () => (await backendActivity(harness.url, pid))?.state === 'idle', 'the backend to be idle', 1_000);
    const { rows } = await pool.query<{ n: string }>('test.count', 'SELECT count(*) AS n FROM t');
    expect(rows[0]!.n).to.equal('0');
    expect(await pidOf(pool)).to.equal(pid);
    expect(pool.stats()).to.include({ destroyedByError: 0, transactionRollbackCount: 1 });
  });

  it('a terminated backend inside a transaction: the connection is destroyed, never returned to the pool', async () => {
    const pool = harness.pool();
    let pid = 0;
    const err = await rejectionOf(
      pool.withTransaction(async (tx) => {
        pid = await pidOf(tx);
        await withClient(harness.url, (c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
        await tx.query('test.on_dead', 'SELECT 1');
      }),
    );
    expect(err).to.be.instanceOf(DbUnavailableError);
    expect(pool.stats()).to.include({ destroyedByError: 1, totalConnections: 0, inUseConnections: 0 });
    expect(await pidOf(pool)).not.to.equal(pid);
  });
});
