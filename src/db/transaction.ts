import type { QueryResult, QueryResultRow } from 'pg';
import type { Readable } from 'node:stream';
import { RetryableTxError } from '../errors';
import { isConnectionLevelError } from './pg-errors';
import type { Pool, PooledConnection, QueryOptions, Transaction, TransactionOptions } from './types';

const BACKOFF_BASE_MS = 5;
const BACKOFF_CAP_MS = 500;

/**
 * BEGIN … COMMIT around `fn` on one connection. ROLLBACK on any error; on
 * SQLSTATE 40001/40P01 the whole transaction is retried with jittered
 * exponential backoff up to `maxRetries` times. A connection-level error
 * destroys the connection instead of returning it.
 */
export async function runTransaction<T>(pool: Pool, fn: (tx: Transaction) => Promise<T>, options: TransactionOptions): Promise<T> {
  const maxRetries = options.maxRetries ?? 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await pool.withConnection((conn) => runOnce(conn, fn, options));
    } catch (err) {
      if (!(err instanceof RetryableTxError) || attempt >= maxRetries) throw err;
      const capMs = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * capMs));
    }
  }
}

async function runOnce<T>(conn: PooledConnection, fn: (tx: Transaction) => Promise<T>, options: TransactionOptions): Promise<T> {
  const op = options.op ?? 'transaction';
  const mode = [`isolation level ${options.isolation ?? 'read committed'}`, options.readOnly ? 'read only' : 'read write'].join(' ');
  await conn.query({ op: `${op}.begin` }, `BEGIN ${mode}`);
  const tx = new ConnectionTransaction(conn);
  let result: T;
  try {
    result = await fn(tx);
  } catch (err) {
    if (!isConnectionLevelError(err)) {
      await conn.query({ op: `${op}.rollback` }, 'ROLLBACK');
    }
    throw err;
  }
  await conn.query({ op: `${op}.commit` }, 'COMMIT');
  return result;
}

class ConnectionTransaction implements Transaction {
  private savepointCounter = 0;

  constructor(private readonly conn: PooledConnection) {}

  query<R extends QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return this.conn.query<R>(options, sql, params);
  }

  copyFrom(options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    return this.conn.copyFrom(options, sql, source);
  }

  async savepoint<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const name = `sp_${++this.savepointCounter}`;
    await this.conn.query('transaction.savepoint', `SAVEPOINT ${name}`);
    try {
      const result = await fn(this);
      await this.conn.query('transaction.release_savepoint', `RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (err) {
      if (!isConnectionLevelError(err)) await this.conn.query('transaction.rollback_savepoint', `ROLLBACK TO SAVEPOINT ${name}`);
      throw err;
    }
  }
}
