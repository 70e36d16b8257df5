import type { Readable } from 'node:stream';
import { context, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { QueryResult, QueryResultRow } from 'pg';
import { CancelledError, InternalError, RetryableTxError } from '../errors';
import { errorTypeOf, sqlStateOf } from './pg-errors';
import type { PoolConnection } from './pool-connection';
import { CLIENT_SPAN, markSpanFailed, rollbackCauseAttributes, type DbBaseAttributes } from './pool-tracing';
import type { IsolationLevel, QueryOptions, Transaction, TransactionOptions } from './types';

/** First retry waits up to this long, ms; each further retry doubles the bound. */
const BACKOFF_BASE_MS = 5;
/** Upper bound of one backoff, ms. */
const BACKOFF_CAP_MS = 500;

const ONCE: AddEventListenerOptions = Object.freeze({ once: true });

/** What a transaction needs from the pool (kept narrow so this file does not import pool.ts). */
export interface TransactionHost {
  readonly tracer: Tracer;
  readonly baseAttributes: DbBaseAttributes;
  /** Default of TransactionOptions.maxRetries (TX_MAX_RETRIES). */
  readonly txMaxRetries: number;
  checkout(signal?: AbortSignal): Promise<PoolConnection>;
  checkin(conn: PoolConnection): void;
  noteRetry(sqlState: string): void;
  noteRollback(cause: unknown): void;
}

/**
 * Backoff before retry number `attempt` (1-based): "full jitter", uniform in
 * [0, min(cap, base · 2^(attempt-1))), so conflicting transactions do not
 * collide again in lockstep.
 */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  return random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
}

const BEGIN_SQL: Readonly<Record<IsolationLevel, readonly [readWrite: string, readOnly: string]>> = {
  'read committed': ['BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE', 'BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY'],
  'repeatable read': ['BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'],
  serializable: ['BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE', 'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY'],
};

/** Operation names of one transaction's own statements, built once per call. */
interface TxOps {
  readonly op: string;
  readonly begin: string;
  readonly commit: string;
  readonly rollback: string;
}

/**
 * BEGIN … COMMIT around `fn` on one connection, under one span named after
 * `op`. Any error (abort included) rolls back: a `rollback` event with the
 * cause's SQLSTATE on the transaction span and a ROLLBACK statement span
 * carrying the same cause. SQLSTATE 40001/40P01 retries the whole
 * transaction on a fresh checkout after a jittered backoff, at most
 * `maxRetries` times. A connection that saw a connection-level error is
 * destroyed by the pool, never reused; after a plain SQL error and ROLLBACK
 * it goes back to the pool.
 *
 * A COMMIT that fails with DbUnavailableError has an unknown outcome (the
 * server may have committed before the socket died); callers that must know
 * have to check, as ingest does with its per-source high-water marks.
 */
export async function runTransaction<T>(host: TransactionHost, fn: (tx: Transaction) => Promise<T>, options: TransactionOptions): Promise<T> {
  const op = options.op ?? 'transaction';
  const ops: TxOps = { op, begin: `${op}.begin`, commit: `${op}.commit`, rollback: `${op}.rollback` };
  const isolation = options.isolation ?? 'read committed';
  const readOnly = options.readOnly ?? false;
  const beginSql = BEGIN_SQL[isolation][readOnly ? 1 : 0];
  const maxRetries = options.maxRetries ?? host.txMaxRetries;
  const { signal } = options;

  const span = host.tracer.startSpan(op, CLIENT_SPAN);
  if (span.isRecording()) {
    span.setAttributes(host.baseAttributes);
    span.setAttributes({ 'db.operation.name': 'TRANSACTION', 'orderflow.db.transaction.isolation': isolation, 'orderflow.db.transaction.read_only': readOnly });
  }
  const ctx = trace.setSpan(context.active(), span);
  let attempt = 1;
  try {
    for (;;) {
      try {
        return await runAttempt(host, fn, ops, beginSql, ctx, span, signal);
      } catch (err) {
        if (!(err instanceof RetryableTxError) || attempt > maxRetries || signal?.aborted) throw err;
        host.noteRetry(err.sqlState);
        span.addEvent('retry', { 'orderflow.db.transaction.attempt': attempt + 1, 'db.response.status_code': err.sqlState });
        await sleep(retryDelayMs(attempt), signal);
        attempt++;
      }
    }
  } catch (err) {
    if (span.isRecording()) markSpanFailed(span, err);
    throw err;
  } finally {
    if (span.isRecording()) span.setAttribute('orderflow.db.transaction.attempts', attempt);
    span.end();
  }
}

async function runAttempt<T>(
  host: TransactionHost,
  fn: (tx: Transaction) => Promise<T>,
  ops: TxOps,
  beginSql: string,
  ctx: Context,
  span: Span,
  signal: AbortSignal | undefined,
): Promise<T> {
  const conn = await host.checkout(signal);
  try {
    await conn.run(ops.begin, beginSql, undefined, ctx, signal);
    const tx = new ConnectionTransaction(host.tracer, conn, ctx, signal, ops.op);
    let result: T;
    try {
      result = await context.with(ctx, () => fn(tx));
      // Aborted after the last statement: still roll back, the caller gave up on this transaction.
      if (signal?.aborted) throw new CancelledError({ cause: signal.reason });
    } catch (err) {
      tx.end();
      await rollback(host, conn, ops, ctx, span, err);
      throw err;
    }
    tx.end();
    try {
      // No signal: once COMMIT is sent it is not cancellable in any useful sense.
      await conn.run(ops.commit, 'COMMIT', undefined, ctx);
    } catch (err) {
      // A failed COMMIT (40001 at commit time, a deferred constraint) has already ended the transaction.
      await rollback(host, conn, ops, ctx, span, err);
      throw err;
    }
    return result;
  } finally {
    host.checkin(conn);
  }
}

/**
 * Rolls back after `cause`, recording it. Nothing to send when the
 * connection is broken (the server rolls back when the session ends) or no
 * transaction is open any more; a failing ROLLBACK marks the connection
 * broken so the pool destroys it.
 */
async function rollback(host: TransactionHost, conn: PoolConnection, ops: TxOps, ctx: Context, span: Span, cause: unknown): Promise<void> {
  host.noteRollback(cause);
  if (span.isRecording()) span.addEvent('rollback', rollbackCauseAttributes(cause));
  if (conn.isBroken || conn.transactionStatus === 'I') return;
  try {
    await conn.run(ops.rollback, 'ROLLBACK', undefined, ctx, undefined, causeAttributes(cause));
  } catch (err) {
    conn.markBroken(err);
  }
}

/** Span attributes naming why a ROLLBACK statement was sent (the statement itself succeeded). */
function causeAttributes(cause: unknown): Attributes {
  const attrs: Attributes = { 'orderflow.db.rollback.cause': errorTypeOf(cause) };
  const sqlState = sqlStateOf(cause);
  if (sqlState !== undefined) attrs['orderflow.db.rollback.sqlstate'] = sqlState;
  return attrs;
}

/** Waits `ms`, or rejects with CancelledError when `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError({ cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, ONCE);
  });
}

/** The Transaction handed to `fn`: the connection's statements, parented to the transaction span. */
class ConnectionTransaction implements Transaction {
  private savepointCounter = 0;
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly conn: PoolConnection,
    private ctx: Context,
    private readonly signal: AbortSignal | undefined,
    private readonly op: string,
  ) {}

  /** After COMMIT or ROLLBACK, the transaction refuses further statements. */
  end(): void {
    this.ended = true;
  }

  query<R extends QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    if (this.ended) return Promise.reject(usedAfterEnd());
    return this.conn.run<R>(options, sql, params, this.ctx, this.signal);
  }

  copyFrom(options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    if (this.ended) return Promise.reject(usedAfterEnd());
    return this.conn.copy(options, sql, source, this.ctx, this.signal);
  }

  withTransaction<T>(fn: (tx: Transaction) => Promise<T>, options?: Pick<TransactionOptions, 'op'>): Promise<T> {
    return this.runSavepoint(fn, options?.op ?? `${this.op}.savepoint`);
  }

  savepoint<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.runSavepoint(fn, `${this.op}.savepoint`);
  }

  /**
   * SAVEPOINT … RELEASE around `fn` under its own span; on error ROLLBACK TO
   * SAVEPOINT (with a rollback event carrying the cause) and rethrow. A
   * serialization failure inside is rethrown too: only the whole
   * transaction can be retried, which the outermost level does.
   */
  private async runSavepoint<T>(fn: (tx: Transaction) => Promise<T>, op: string): Promise<T> {
    if (this.ended) throw usedAfterEnd();
    const name = `sp_${++this.savepointCounter}`;
    const outer = this.ctx;
    const span = this.tracer.startSpan(op, CLIENT_SPAN, outer);
    this.ctx = trace.setSpan(outer, span);
    try {
      await this.conn.run(`${op}.begin`, `SAVEPOINT ${name}`, undefined, this.ctx, this.signal);
      let result: T;
      try {
        result = await context.with(this.ctx, () => fn(this));
      } catch (err) {
        if (span.isRecording()) span.addEvent('rollback', rollbackCauseAttributes(err));
        if (!this.conn.isBroken) {
          // Not cancellable: the caller's abort must still leave the transaction consistent.
          await this.conn.run(`${op}.rollback`, `ROLLBACK TO SAVEPOINT ${name}`, undefined, this.ctx, undefined, causeAttributes(err)).catch(() => {
            // The outer transaction fails with the original error and rolls back as a whole.
          });
        }
        throw err;
      }
      await this.conn.run(`${op}.release`, `RELEASE SAVEPOINT ${name}`, undefined, this.ctx, this.signal);
      return result;
    } catch (err) {
      if (span.isRecording()) markSpanFailed(span, err);
      throw err;
    } finally {
      this.ctx = outer;
      span.end();
    }
  }
}

function usedAfterEnd(): InternalError {
  return new InternalError({ cause: new Error('A transaction was used after it committed or rolled back.') });
}
