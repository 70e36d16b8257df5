import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFromStream } from 'pg-copy-streams';
import type { PoolConfig } from '../config';
import { ShuttingDownError, AcquireTimeoutError } from '../errors';
import type { Logger } from '../telemetry/logger';
import { isConnectionLevelError, translatePgError } from './pg-errors';
import { runTransaction } from './transaction';
import type { Pool, PooledConnection, PoolState, PoolStats, QueryOptions, Transaction, TransactionOptions } from './types';

/** Everything createPool needs. */
export interface CreatePoolOptions {
  connectionString: string;
  config: PoolConfig;
  logger: Logger;
}

/**
 * Creates the monitored pool. TODO(#3): replace pg.Pool with a pool that has
 * a separate acquire timeout, lifetime jitter, full stats and tracing.
 */
export function createPool(options: CreatePoolOptions): Pool {
  return new MonitoredPool(options);
}

function normalise(options: QueryOptions | string): QueryOptions {
  return typeof options === 'string' ? { op: options } : options;
}

class MonitoredPool implements Pool {
  private stateValue: PoolState = 'RUNNING';
  private closePromise: Promise<void> | undefined;
  private readonly pg: pg.Pool;
  private readonly counters = { acquire: 0, query: 0, queryError: 0, slow: 0, opened: 0, destroyedByError: 0, timedOut: 0 };

  constructor(private readonly options: CreatePoolOptions) {
    const { config } = options;
    this.pg = new pg.Pool({
      connectionString: options.connectionString,
      max: config.max,
      idleTimeoutMillis: config.idleTimeoutMs,
      maxLifetimeSeconds: config.maxLifetimeMs > 0 ? Math.ceil(config.maxLifetimeMs / 1000) : 0,
      maxUses: config.maxUses > 0 ? config.maxUses : Infinity,
      connectionTimeoutMillis: config.acquireTimeoutMs,
      statement_timeout: config.statementTimeoutMs || undefined,
      query_timeout: config.queryTimeoutMs,
      keepAlive: config.keepAliveMs > 0,
      keepAliveInitialDelayMillis: config.keepAliveMs,
      application_name: config.applicationName,
    });
    this.pg.on('connect', () => this.counters.opened++);
    // An idle client's socket error must not crash the process; the pool drops it.
    this.pg.on('error', (err) => {
      this.counters.destroyedByError++;
      options.logger.warn({ err: translatePgError(err).message }, 'idle database connection failed');
    });
  }

  get state(): PoolState {
    return this.stateValue;
  }

  async acquire(): Promise<PooledConnection> {
    if (this.stateValue !== 'RUNNING') throw new ShuttingDownError('database pool');
    const started = Date.now();
    let client: pg.PoolClient;
    try {
      client = await this.pg.connect();
    } catch (err) {
      if (/timeout exceeded when trying to connect/i.test((err as Error).message)) {
        this.counters.timedOut++;
        throw new AcquireTimeoutError(Date.now() - started);
      }
      throw translatePgError(err);
    }
    this.counters.acquire++;
    return new Connection(client, this);
  }

  async withConnection<T>(fn: (conn: PooledConnection) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    try {
      const result = await fn(conn);
      conn.release();
      return result;
    } catch (err) {
      conn.release(isConnectionLevelError(err) ? (err as Error) : undefined);
      throw err;
    }
  }

  withTransaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    return runTransaction(this, fn, { maxRetries: this.options.config.txMaxRetries, ...options });
  }

  query<R extends pg.QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>> {
    return this.withConnection((conn) => conn.query<R>(options, sql, params));
  }

  copyFrom(options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    return this.withConnection((conn) => conn.copyFrom(options, sql, source));
  }

  /** Runs one query on a client, with timing, slow-query logging and error translation. */
  async run<R extends pg.QueryResultRow>(client: pg.PoolClient, options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>> {
    const opts = normalise(options);
    const started = performance.now();
    this.counters.query++;
    try {
      const result = await client.query<R>(sql, params as unknown[] | undefined);
      this.noteDuration(opts, sql, started, result.rowCount ?? 0);
      return result;
    } catch (err) {
      this.counters.queryError++;
      throw translatePgError(err);
    }
  }

  async runCopy(client: pg.PoolClient, options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    const opts = normalise(options);
    const started = performance.now();
    this.counters.query++;
    try {
      const sink = client.query(copyFromStream(sql));
      const readable = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
      await pipeline(readable, sink);
      const rows = sink.rowCount ?? 0;
      this.noteDuration(opts, sql, started, rows);
      return rows;
    } catch (err) {
      this.counters.queryError++;
      throw translatePgError(err);
    }
  }

  private noteDuration(opts: QueryOptions, sql: string, started: number, rows: number): void {
    const durationMs = performance.now() - started;
    if (durationMs >= this.options.config.slowQueryMs) {
      this.counters.slow++;
      this.options.logger.warn({ op: opts.op, durationMs: Math.round(durationMs), rows, sql }, 'slow query');
    }
  }

  stats(): PoolStats {
    const total = this.pg.totalCount;
    const idle = this.pg.idleCount;
    return {
      totalConnections: total,
      idleConnections: idle,
      inUseConnections: total - idle,
      pendingAcquires: this.pg.waitingCount,
      acquireCount: this.counters.acquire,
      acquireDurationMsTotal: 0,
      waitedAcquireCount: 0,
      waitedAcquireDurationMsTotal: 0,
      cancelledAcquireCount: 0,
      timedOutAcquireCount: this.counters.timedOut,
      openedConnections: this.counters.opened,
      destroyedByLifetime: 0,
      destroyedByIdle: 0,
      destroyedByError: this.counters.destroyedByError,
      destroyedByMaxUses: 0,
      queryCount: this.counters.query,
      queryErrorCount: this.counters.queryError,
      slowQueryCount: this.counters.slow,
    };
  }

  close(): Promise<void> {
    if (!this.closePromise) {
      this.stateValue = 'CLOSING';
      this.closePromise = this.pg.end().finally(() => {
        this.stateValue = 'CLOSED';
      });
    }
    return this.closePromise;
  }
}

class Connection implements PooledConnection {
  private released = false;
  // pg-pool drops its error listener while a client is checked out; a socket
  // that dies then (terminated backend, server crash) would emit an unhandled
  // 'error' and crash the process. The failing query already reports it.
  private readonly onSocketError = (): void => undefined;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly pool: MonitoredPool,
  ) {
    client.on('error', this.onSocketError);
  }

  get processId(): number | undefined {
    return (this.client as unknown as { processID?: number }).processID;
  }

  query<R extends pg.QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.run<R>(this.client, options, sql, params);
  }

  copyFrom(options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    return this.pool.runCopy(this.client, options, sql, source);
  }

  release(destroyWith?: Error): void {
    if (this.released) return;
    this.released = true;
    // A client being destroyed keeps the guard: its socket may still fail on the way out.
    if (!destroyWith) this.client.removeListener('error', this.onSocketError);
    this.client.release(destroyWith ?? false);
  }
}
