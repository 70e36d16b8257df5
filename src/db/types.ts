import type { QueryResult, QueryResultRow } from 'pg';
import type { Readable } from 'node:stream';

/** Options of one query: a short, low-cardinality operation name plus cancellation. */
export interface QueryOptions {
  /** Operation name for metrics, logs and spans, e.g. `orders.get` or `fills.insert_copy`. */
  op: string;
  /** Aborts the query: the statement is cancelled on the server. */
  signal?: AbortSignal;
  /** Overrides the pool's client-side query timeout, ms. */
  timeoutMs?: number;
  /** Table the query mainly touches (span attribute `db.collection.name`). */
  table?: string;
}

/** Anything that runs a query: the pool, a connection, a transaction. */
export interface Queryable {
  /** Runs one parameterised statement. Errors are translated by db/pg-errors.ts. */
  query<R extends QueryResultRow = QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

/** A sink for COPY … FROM STDIN data. */
export interface CopySink {
  /**
   * Runs `COPY … FROM STDIN` with `sql` and streams `source` into it. Resolves
   * with the number of rows the server reports. Aborting sends CopyFail.
   */
  copyFrom(options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number>;
}

/** Isolation levels withTransaction accepts. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/** Options of withTransaction. */
export interface TransactionOptions {
  /** Operation name of the transaction span, e.g. `ingest.flush`. */
  op?: string;
  /** Default: read committed. */
  isolation?: IsolationLevel;
  readOnly?: boolean;
  /** Aborting rolls back (and cancels the running statement). */
  signal?: AbortSignal;
  /** Retries on SQLSTATE 40001/40P01; default the pool's txMaxRetries. 0 disables. */
  maxRetries?: number;
}

/** A transaction: queries, COPY, and nested transactions as savepoints. */
export interface Transaction extends Queryable, CopySink {
  /** Runs `fn` inside a SAVEPOINT; on error rolls back to it and rethrows. */
  savepoint<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
}

/** A checked-out connection. Always `release()` it. */
export interface PooledConnection extends Queryable, CopySink {
  /** Backend process id (for pg_terminate_backend in tests and cancel requests). */
  readonly processId: number | undefined;
  /** Returns the connection; pass an error to destroy it instead. */
  release(destroyWith?: Error): void;
}

/** Life cycle of the pool. */
export type PoolState = 'RUNNING' | 'CLOSING' | 'CLOSED';

/** A snapshot of the pool, like pgxpool's Stat(). */
export interface PoolStats {
  totalConnections: number;
  idleConnections: number;
  inUseConnections: number;
  pendingAcquires: number;
  acquireCount: number;
  acquireDurationMsTotal: number;
  waitedAcquireCount: number;
  waitedAcquireDurationMsTotal: number;
  cancelledAcquireCount: number;
  timedOutAcquireCount: number;
  openedConnections: number;
  destroyedByLifetime: number;
  destroyedByIdle: number;
  destroyedByError: number;
  destroyedByMaxUses: number;
  queryCount: number;
  queryErrorCount: number;
  slowQueryCount: number;
}

/** The monitored pool every other module uses to reach PostgreSQL. */
export interface Pool extends Queryable, CopySink {
  readonly state: PoolState;
  /** Checks out a connection, waiting at most the acquire timeout. */
  acquire(options?: { signal?: AbortSignal }): Promise<PooledConnection>;
  /** Runs `fn` with a checked-out connection, releasing (or destroying on connection errors) afterwards. */
  withConnection<T>(fn: (conn: PooledConnection) => Promise<T>, options?: { signal?: AbortSignal }): Promise<T>;
  /** BEGIN … COMMIT around `fn`; ROLLBACK on error; retries serialization failures and deadlocks. */
  withTransaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>;
  stats(): PoolStats;
  /** Ends every connection. Idempotent; later calls fail with ShuttingDownError. */
  close(): Promise<void>;
}
