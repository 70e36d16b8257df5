import type { Readable } from 'node:stream';
import type pg from 'pg';
import { InternalError } from '../errors';
import type { PoolConnection } from './pool-connection';
import type { PooledConnection, QueryOptions } from './types';

/** Where a lease returns its connection (the pool). */
export interface LeaseOwner {
  checkin(conn: PoolConnection): void;
}

/**
 * What acquire() hands out: the connection until release(), inert
 * afterwards, so a stale reference can never reach a connection that
 * another caller holds by then.
 */
export class Lease implements PooledConnection {
  private conn: PoolConnection | undefined;

  constructor(
    conn: PoolConnection,
    private readonly owner: LeaseOwner,
    /** The acquire's signal: it also cancels statements run on this lease. */
    private readonly signal: AbortSignal | undefined,
  ) {
    this.conn = conn;
  }

  get processId(): number | undefined {
    return this.conn?.processId;
  }

  query<R extends pg.QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>> {
    return this.conn ? this.conn.run<R>(options, sql, params, undefined, this.signal) : Promise.reject(usedAfterRelease());
  }

  copyFrom(options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    return this.conn ? this.conn.copy(options, sql, source, undefined, this.signal) : Promise.reject(usedAfterRelease());
  }

  release(destroyWith?: Error): void {
    const conn = this.conn;
    if (conn === undefined) return;
    this.conn = undefined;
    if (destroyWith !== undefined) conn.markBroken(destroyWith);
    this.owner.checkin(conn);
  }
}

function usedAfterRelease(): InternalError {
  return new InternalError({ cause: new Error('A pooled connection was used after release().') });
}
