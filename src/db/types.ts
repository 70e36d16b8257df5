import type { QueryResult, QueryResultRow } from 'pg';
import type { Readable } from 'node:stream';

/** Options of one query: a short, low-cardinality operation name plus cancellation. */
export interface QueryOptions {
  /** Operation name for metrics, logs and spans, e.g. `orders.get` or `fills.insert_copy`. */
  op: string;
  /**
   * Aborts the query with CancelledError: a running statement is cancelled
   * on the server (cancel request; CopyFail for COPY), a waiting acquire
   * leaves the queue, and nothing is sent when it is already aborted. Inside
   * a transaction or on a lease it adds to their signal.
   */
  signal?: AbortSignal;
  /** Overrides the pool's client-side query timeout (POOL_QUERY_TIMEOUT_MS), ms; past it the connection is destroyed. */
  timeoutMs?: number;
  /** Table the query mainly touches (span attribute `db.collection.name`). */
  table?: string;
  /**
   * The text spans and the slow-query log record instead of the SQL, for a
   * statement that carries values inline (a multi-statement simple query
   * cannot take parameters): values are never recorded.
   */
  recordedSql?: string;
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
  /** BEGIN … READ ONLY: writes fail with SQLSTATE 25006. Default false. */
  readOnly?: boolean;
  /** Aborting cancels the running statement on the server, rolls back, and rejects with CancelledError. */
  signal?: AbortSignal;
  /** Retries on SQLSTATE 40001/40P01; default the pool's txMaxRetries. 0 disables. */
  maxRetries?: number;
}

/** A transaction: queries, COPY, and nested transactions as savepoints. */
export interface Transaction extends Queryable, CopySink {
  /** Runs `fn` inside a SAVEPOINT; on error rolls back to it and rethrows. */
  savepoint<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /**
   * A nested transaction: the same as `savepoint`, so code written against
   * `Pool | Transaction` composes. Isolation and read-only options cannot
   * change inside a transaction and are ignored; `op` names the span.
   */
  withTransaction<T>(fn: (tx: Transaction) => Promise<T>, options?: Pick<TransactionOptions, 'op'>): Promise<T>;
}

/** A checked-out connection. Always `release()` it; using it afterwards throws. */
export interface PooledConnection extends Queryable, CopySink {
  /** Backend process id (for pg_terminate_backend in tests and cancel requests). */
  readonly processId: number | undefined;
  /**
   * Returns the connection; pass an error to destroy it instead. A connection
   * that saw a connection-level error, is still inside a transaction, or has
   * reached its lifetime or use limit is destroyed either way. Idempotent.
   */
  release(destroyWith?: Error): void;
}

/** Life cycle of the pool. */
export type PoolState = 'RUNNING' | 'CLOSING' | 'CLOSED';

/**
 * A snapshot of the pool, like pgxpool's Stat(). Gauges describe now;
 * `…Count` and `…Total` fields count since the pool was created.
 */
export interface PoolStats {
  /** POOL_MAX. */
  maxConnections: number;
  /** Open connections (idle + in use) plus those being opened. */
  totalConnections: number;
  idleConnections: number;
  inUseConnections: number;
  /** Connections being opened (TCP + authentication) right now. */
  connectingConnections: number;
  /** Acquires waiting in the queue right now. */
  pendingAcquires: number;
  /** Successful acquires. */
  acquireCount: number;
  /** Summed duration of successful acquires, ms (instant ones included). */
  acquireDurationMsTotal: number;
  /** Successful acquires that found no idle connection and had to wait. */
  waitedAcquireCount: number;
  /** Summed wait of those, ms. */
  waitedAcquireDurationMsTotal: number;
  /** Acquires given up by their AbortSignal (removed from the queue). */
  cancelledAcquireCount: number;
  /** Acquires that failed with AcquireTimeoutError. */
  timedOutAcquireCount: number;
  openedConnections: number;
  /** Failed attempts to open a connection. */
  connectErrorCount: number;
  destroyedByLifetime: number;
  destroyedByIdle: number;
  destroyedByError: number;
  destroyedByMaxUses: number;
  /** Statements run (COPY included), successful or not. */
  queryCount: number;
  queryErrorCount: number;
  slowQueryCount: number;
  /** Transactions started again after a serialization failure or deadlock. */
  transactionRetryCount: number;
  /** Transactions (not savepoints) that ended in ROLLBACK. */
  transactionRollbackCount: number;
}

/** The monitored pool every other module uses to reach PostgreSQL. */
export interface Pool extends Queryable, CopySink {
  readonly state: PoolState;
  /**
   * Checks out a connection, waiting at most the acquire timeout
   * (AcquireTimeoutError). Aborting the signal removes the wait from the
   * queue (CancelledError), and later cancels statements run on the
   * connection. After close() it throws ShuttingDownError.
   */
  acquire(options?: { signal?: AbortSignal }): Promise<PooledConnection>;
  /**
   * Runs `fn` with a checked-out connection, releasing (or destroying on
   * connection errors) afterwards. The signal covers the acquire and every
   * statement on the connection.
   */
  withConnection<T>(fn: (conn: PooledConnection) => Promise<T>, options?: { signal?: AbortSignal }): Promise<T>;
  /** BEGIN … COMMIT around `fn`; ROLLBACK on error; retries serialization failures and deadlocks. */
  withTransaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>;
  stats(): PoolStats;
  /**
   * Stops handing out connections (waiting acquires fail with
   * ShuttingDownError), waits for checked-out ones to come back (at most the
   * query timeout, then ends them), and ends every connection. Idempotent
   * (memoized); other calls afterwards fail with ShuttingDownError.
   */
  close(): Promise<void>;
}
