import type { QueryResult, QueryResultRow } from 'pg';
import type { Readable } from 'node:stream';
import { runTransaction } from '../../../src/db/transaction';
import type { Pool, PooledConnection, QueryOptions, Transaction, TransactionOptions } from '../../../src/db/types';
import { CancelledError } from '../../../src/errors';
import { withClient } from '../../helpers/postgres';

/**
 * Wraps a Pool so that `QueryOptions.signal` cancels the running statement on
 * the server (pg_cancel_backend from a separate connection), as the Pool
 * contract in src/db/types.ts promises.
 *
 * TODO(#3): the monitored pool of issue #3 cancels on abort itself; once it is
 * merged, the abort test should use the real pool and this file goes away.
 * The foundation pool on this branch ignores the signal.
 */
export function withServerCancel(pool: Pool, databaseUrl: string): Pool {
  const wrapConnection = (conn: PooledConnection): PooledConnection => ({
    get processId() {
      return conn.processId;
    },
    release: (destroyWith?: Error) => conn.release(destroyWith),
    query: <R extends QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]) =>
      cancellable(conn, options, () => conn.query<R>(options, sql, params)),
    copyFrom: (options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>) =>
      cancellable(conn, options, () => conn.copyFrom(options, sql, source)),
  });

  async function cancellable<T>(conn: PooledConnection, options: QueryOptions | string, run: () => Promise<T>): Promise<T> {
    const signal = typeof options === 'string' ? undefined : options.signal;
    if (signal?.aborted) throw new CancelledError();
    let cancelling: Promise<unknown> | undefined;
    const onAbort = (): void => {
      cancelling = withClient(databaseUrl, (c) => c.query('SELECT pg_cancel_backend($1)', [conn.processId])).catch(() => undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await run();
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // Keep the connection until the cancel request is done, so it can never
      // hit the next statement run on this connection.
      await cancelling;
    }
  }

  const wrapper: Pool = {
    get state() {
      return pool.state;
    },
    acquire: async (options) => wrapConnection(await pool.acquire(options)),
    withConnection: (fn, options) => pool.withConnection((conn) => fn(wrapConnection(conn)), options),
    withTransaction: <T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}) => runTransaction(wrapper, fn, options),
    query: <R extends QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> =>
      wrapper.withConnection((conn) => conn.query<R>(options, sql, params)),
    copyFrom: (options, sql, source) => wrapper.withConnection((conn) => conn.copyFrom(options, sql, source)),
    stats: () => pool.stats(),
    close: () => pool.close(),
  };
  return wrapper;
}
