import type { Readable } from 'node:stream';
import type { Tracer } from '@opentelemetry/api';
import pg from 'pg';
import type { PoolConfig } from '../config';
import { AcquireTimeoutError, CancelledError, ShuttingDownError } from '../errors';
import type { Logger } from '../telemetry/logger';
import { getTracer } from '../telemetry/tracing';
import { translatePgError } from './pg-errors';
import { PoolConnection, type ConnectionShared } from './pool-connection';
import type { CancelTarget } from './pool-cancel';
import { Lease } from './pool-lease';
import { trackPool, type DestroyReason } from './pool-metrics';
import { QueryTracker } from './pool-query-tracker';
import { PoolCounters } from './pool-stats';
import { dbBaseAttributes, type DbBaseAttributes } from './pool-tracing';
import { WaitQueue, type WaitNode } from './pool-wait-queue';
import { runTransaction, type TransactionHost } from './transaction';
import type { Pool, PooledConnection, PoolState, PoolStats, QueryOptions, Transaction, TransactionOptions } from './types';

/** Everything createPool needs. */
export interface CreatePoolOptions {
  connectionString: string;
  config: PoolConfig;
  logger: Logger;
  /** Tracer of the query and transaction spans. Default: the project's getTracer(). */
  tracer?: Tracer;
}

/**
 * Creates the monitored pool and starts opening its POOL_MIN warm
 * connections in the background (failures are logged and retried).
 */
export function createPool(options: CreatePoolOptions): Pool {
  return new MonitoredPool(options);
}

const COMPONENT = 'database pool';
/** Bounds of the sweep period that enforces deadlines, idle timeout and lifetime, ms. */
const SWEEP_MIN_MS = 10;
const SWEEP_MAX_MS = 250;
/** Backoff between failed attempts to refill POOL_MIN when nobody waits, ms. */
const REFILL_BACKOFF_BASE_MS = 100;
const REFILL_BACKOFF_MAX_MS = 5_000;

const ONCE: AddEventListenerOptions = Object.freeze({ once: true });
const noop = (): void => undefined;

type CopySource = Readable | Iterable<Buffer> | AsyncIterable<Buffer>;

/** An acquire waiting in the queue. */
interface Waiter {
  readonly resolve: (conn: PoolConnection) => void;
  readonly reject: (err: unknown) => void;
  readonly startedMs: number;
  readonly signal: AbortSignal | undefined;
  node: WaitNode<Waiter> | undefined;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * The pool, built over pg.Client rather than pg.Pool. pg.Pool cannot take a
 * waiting acquire out of its queue when the caller gives up, has one timeout
 * (connectionTimeoutMillis) for both waiting and connecting, knows no
 * lifetime jitter (whole seconds, all equal), keeps no minimum, and exposes
 * four counters. Owning the queue and the connections gives all of that,
 * the client-side deadline and cancel-on-abort, and exact statistics.
 *
 * Invariants: every open connection is in `all`, with state `idle` (also in
 * the `idle` stack) or `busy` (counted in `inUse`); `connecting` counts
 * connects in flight. Idle connections are reused LIFO so the surplus stays
 * idle long enough to be reaped. One unref'd sweep timer per pool enforces
 * statement deadlines, idle timeout, lifetime and POOL_MIN; acquire timeouts
 * have their own timer, only on the waiting path.
 */
class MonitoredPool implements Pool, TransactionHost {
  readonly tracer: Tracer;
  readonly baseAttributes: DbBaseAttributes;
  readonly txMaxRetries: number;

  private stateValue: PoolState = 'RUNNING';
  private closePromise: Promise<void> | undefined;
  private readonly config: PoolConfig;
  private readonly logger: Logger;
  private readonly clientConfig: pg.ClientConfig;
  private readonly tracker: QueryTracker;
  private readonly shared: ConnectionShared;
  private readonly target: CancelTarget = { host: 'localhost', port: 5432 };
  private readonly all = new Set<PoolConnection>();
  private readonly idle: PoolConnection[] = [];
  private readonly waiters = new WaitQueue<Waiter>();
  private connecting = 0;
  private inUse = 0;
  private readonly connects = new Set<Promise<void>>();
  private readonly endings = new Set<Promise<void>>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly untrack: () => void;
  private refillFailures = 0;
  private refillNotBeforeMs = 0;
  private onDrained: (() => void) | undefined;
  private readonly counters = new PoolCounters();

  constructor(options: CreatePoolOptions) {
    const { config } = options;
    this.config = config;
    this.logger = options.logger;
    this.tracer = options.tracer ?? getTracer();
    this.txMaxRetries = config.txMaxRetries;
    this.baseAttributes = dbBaseAttributes(options.connectionString, config.applicationName);
    this.clientConfig = {
      connectionString: options.connectionString,
      application_name: config.applicationName,
      statement_timeout: config.statementTimeoutMs > 0 ? config.statementTimeoutMs : undefined,
      // Bounds TCP connect + TLS + authentication; the acquire timeout is separate.
      connectionTimeoutMillis: config.connectTimeoutMs,
      keepAlive: config.keepAliveMs > 0,
      keepAliveInitialDelayMillis: config.keepAliveMs,
    };
    this.tracker = new QueryTracker(this.tracer, this.baseAttributes, config.slowQueryMs, options.logger);
    this.shared = {
      tracker: this.tracker,
      queryTimeoutMs: config.queryTimeoutMs,
      cancelTimeoutMs: config.connectTimeoutMs,
      target: this.target,
      onBroken: (conn) => {
        if (conn.state === 'idle') this.destroy(conn, 'error');
        this.refill(performance.now());
      },
    };
    const limits = [config.queryTimeoutMs, config.idleTimeoutMs, config.maxLifetimeMs].filter((ms) => ms > 0);
    const sweepMs = Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(Math.min(...limits) / 10)));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
    this.untrack = trackPool(this);
    this.refill(performance.now());
  }

  get state(): PoolState {
    return this.stateValue;
  }

  acquire(options?: { signal?: AbortSignal }): Promise<PooledConnection> {
    const signal = options?.signal;
    return this.checkout(signal).then((conn) => new Lease(conn, this, signal));
  }

  async withConnection<T>(fn: (conn: PooledConnection) => Promise<T>, options?: { signal?: AbortSignal }): Promise<T> {
    const lease = await this.acquire(options);
    try {
      return await fn(lease);
    } finally {
      // A connection-level failure on it has already marked it broken: release() destroys it then.
      lease.release();
    }
  }

  withTransaction<T>(fn: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    return runTransaction(this, fn, options);
  }

  async query<R extends pg.QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>> {
    const conn = await this.checkout(typeof options === 'string' ? undefined : options.signal);
    try {
      return await conn.run<R>(options, sql, params);
    } finally {
      this.checkin(conn);
    }
  }

  async copyFrom(options: QueryOptions | string, sql: string, source: CopySource): Promise<number> {
    const conn = await this.checkout(typeof options === 'string' ? undefined : options.signal);
    try {
      return await conn.copy(options, sql, source);
    } finally {
      this.checkin(conn);
    }
  }

  /** Takes a connection: an idle one at once, else a place in the queue (and a connect if there is room). */
  checkout(signal?: AbortSignal): Promise<PoolConnection> {
    if (this.stateValue !== 'RUNNING') return Promise.reject(new ShuttingDownError(COMPONENT));
    if (signal?.aborted) {
      this.counters.acquireCancelled();
      return Promise.reject(new CancelledError({ cause: signal.reason }));
    }
    const startedMs = performance.now();
    const conn = this.takeIdle(startedMs);
    if (conn !== undefined) {
      this.lease(conn);
      // An idle connection at hand is a sub-microsecond acquire: counted as 0, saving a clock read per query.
      this.counters.acquired(0, false);
      return Promise.resolve(conn);
    }
    return new Promise<PoolConnection>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, startedMs, signal, node: undefined, timer: undefined, onAbort: undefined };
      waiter.node = this.waiters.push(waiter);
      waiter.timer = setTimeout(() => this.timeOutWaiter(waiter), this.config.acquireTimeoutMs);
      waiter.timer.unref();
      if (signal !== undefined) {
        waiter.onAbort = () => this.cancelWaiter(waiter);
        signal.addEventListener('abort', waiter.onAbort, ONCE);
      }
      this.pump();
    });
  }

  /**
   * Gives a connection back: to the oldest waiter, to the idle stack, or to
   * destruction when it is broken, mid-statement, inside a transaction, or
   * past its use count or lifetime (checked here, so busy pools recycle too).
   */
  checkin(conn: PoolConnection): void {
    if (conn.state !== 'busy') return;
    if (conn.cancelling !== undefined) {
      // A late cancel must not hit the next borrower's statement: wait for the server's confirmation.
      void conn.cancelling.then(() => this.checkin(conn));
      return;
    }
    this.inUse--;
    const now = performance.now();
    const reason = this.recycleReason(conn, now);
    if (reason !== undefined || this.stateValue !== 'RUNNING') {
      this.destroy(conn, reason);
      this.pump();
      this.refill(now);
    } else {
      const waiter = this.waiters.shift();
      if (waiter !== undefined) this.handOver(conn, waiter, now);
      else this.makeIdle(conn, now);
    }
    if (this.inUse === 0) this.onDrained?.();
  }

  noteRetry(sqlState: string): void {
    this.counters.transactionRetried(sqlState);
  }

  noteRollback(cause: unknown): void {
    this.counters.transactionRolledBack(cause);
  }

  stats(): PoolStats {
    return this.counters.snapshot(
      {
        maxConnections: this.config.max,
        totalConnections: this.all.size + this.connecting,
        idleConnections: this.idle.length,
        inUseConnections: this.inUse,
        connectingConnections: this.connecting,
        pendingAcquires: this.waiters.length,
      },
      this.tracker,
    );
  }

  close(): Promise<void> {
    if (!this.closePromise) this.closePromise = this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.stateValue = 'CLOSING';
    for (let waiter = this.waiters.shift(); waiter !== undefined; waiter = this.waiters.shift()) {
      this.settleWaiter(waiter);
      waiter.reject(new ShuttingDownError(COMPONENT));
    }
    for (const conn of [...this.idle]) this.destroy(conn, undefined);
    if (this.inUse > 0) {
      // Statements in flight end by their own deadline at the latest, so
      // waiting one query timeout is enough for well-behaved holders.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.config.queryTimeoutMs);
        timer.unref();
        this.onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      const stuck = [...this.all].filter((conn) => conn.state === 'busy');
      if (stuck.length > 0) this.logger.warn({ connections: stuck.length }, 'closing the pool with connections still checked out; ending them');
      for (const conn of stuck) {
        this.inUse--;
        this.destroy(conn, undefined);
      }
    }
    await Promise.all([...this.connects]);
    await Promise.all([...this.endings]);
    clearInterval(this.sweepTimer);
    this.untrack();
    this.stateValue = 'CLOSED';
  }

  private takeIdle(nowMs: number): PoolConnection | undefined {
    for (let conn = this.idle.pop(); conn !== undefined; conn = this.idle.pop()) {
      if (conn.isBroken) this.destroy(conn, 'error');
      else if (nowMs >= conn.expiresAtMs) this.destroy(conn, 'lifetime');
      else return conn;
    }
    return undefined;
  }

  private lease(conn: PoolConnection): void {
    conn.state = 'busy';
    conn.uses++;
    this.inUse++;
  }

  private makeIdle(conn: PoolConnection, nowMs: number): void {
    conn.state = 'idle';
    conn.idleSinceMs = nowMs;
    this.idle.push(conn);
  }

  private handOver(conn: PoolConnection, waiter: Waiter, nowMs: number): void {
    this.settleWaiter(waiter);
    this.lease(conn);
    this.counters.acquired(nowMs - waiter.startedMs, true);
    waiter.resolve(conn);
  }

  /** Serves waiters from idle connections and opens connections for the rest, within POOL_MAX. */
  private pump(): void {
    if (this.stateValue !== 'RUNNING') return;
    while (this.waiters.length > 0) {
      const now = performance.now();
      const conn = this.takeIdle(now);
      if (conn === undefined) break;
      this.handOver(conn, this.waiters.shift()!, now);
    }
    while (this.waiters.length > this.connecting && this.all.size + this.connecting < this.config.max) this.open();
  }

  /** Opens connections up to POOL_MIN (with backoff after failures). */
  private refill(nowMs: number): void {
    if (this.stateValue !== 'RUNNING' || nowMs < this.refillNotBeforeMs) return;
    while (this.all.size + this.connecting < this.config.min) this.open();
  }

  private open(): void {
    this.connecting++;
    const client = new pg.Client(this.clientConfig);
    // PoolConnection installs the real handlers; until then an 'error' must not crash the process.
    client.on('error', noop);
    this.target.host = client.host;
    this.target.port = client.port;
    const attempt: Promise<void> = client
      .connect()
      .then(
        () => this.onConnected(client),
        (err: unknown) => this.onConnectFailed(client, err),
      )
      .catch((err: unknown) => this.logger.error({ err }, 'database pool bookkeeping failed after a connect'));
    this.connects.add(attempt);
    void attempt.finally(() => this.connects.delete(attempt));
  }

  private onConnected(client: pg.Client): void {
    this.connecting--;
    this.counters.connectionOpened();
    this.refillFailures = 0;
    this.refillNotBeforeMs = 0;
    const now = performance.now();
    const { maxLifetimeMs, lifetimeJitterMs } = this.config;
    // Each connection draws its own jitter, so connections opened together do not all recycle together.
    const expiresAtMs = maxLifetimeMs > 0 ? now + maxLifetimeMs + Math.random() * lifetimeJitterMs : Infinity;
    const conn = new PoolConnection(client, this.shared, now, expiresAtMs);
    this.all.add(conn);
    if (this.stateValue !== 'RUNNING') {
      this.destroy(conn, undefined);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) this.handOver(conn, waiter, now);
    else this.makeIdle(conn, now);
  }

  private onConnectFailed(client: pg.Client, err: unknown): void {
    this.connecting--;
    this.counters.connectFailed();
    client.end().catch(noop);
    const error = translatePgError(err);
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      // Fail fast with the real cause rather than letting the wait run into a misleading AcquireTimeoutError.
      this.settleWaiter(waiter);
      waiter.reject(error);
      this.pump();
      return;
    }
    if (this.stateValue !== 'RUNNING') return;
    this.refillFailures++;
    this.refillNotBeforeMs = performance.now() + Math.min(REFILL_BACKOFF_MAX_MS, REFILL_BACKOFF_BASE_MS * 2 ** this.refillFailures);
    if (this.refillFailures === 1 || this.refillFailures % 10 === 0) {
      this.logger.warn({ err: error, cause: (err as Error)?.message, failures: this.refillFailures }, 'could not open a warm database connection');
    }
  }

  private recycleReason(conn: PoolConnection, nowMs: number): DestroyReason | undefined {
    // Still running something (a statement not awaited) or left inside a transaction: never hand that on.
    const txStatus = conn.transactionStatus;
    if (conn.isBroken || conn.isBusy || (txStatus !== null && txStatus !== 'I')) return 'error';
    if (this.config.maxUses > 0 && conn.uses >= this.config.maxUses) return 'max_uses';
    if (nowMs >= conn.expiresAtMs) return 'lifetime';
    return undefined;
  }

  /** Removes a connection and ends it; `reason` undefined for close(), which is not counted. */
  private destroy(conn: PoolConnection, reason: DestroyReason | undefined): void {
    if (conn.state === 'destroyed') return;
    if (conn.state === 'idle') {
      const index = this.idle.indexOf(conn);
      if (index >= 0) this.idle.splice(index, 1);
    }
    this.all.delete(conn);
    if (reason !== undefined) this.counters.connectionDestroyed(reason);
    const ending = conn.end();
    this.endings.add(ending);
    void ending.then(() => this.endings.delete(ending));
  }

  /** Periodic: statement deadlines, then idle timeout and lifetime of idle connections, then POOL_MIN. */
  private sweep(): void {
    const now = performance.now();
    for (const conn of this.all) if (conn.state === 'busy') conn.checkDeadline(now);
    const { idleTimeoutMs, min } = this.config;
    // Oldest idle first (bottom of the stack).
    for (let i = 0; i < this.idle.length; ) {
      const conn = this.idle[i]!;
      if (now >= conn.expiresAtMs) this.destroy(conn, 'lifetime');
      else if (idleTimeoutMs > 0 && now - conn.idleSinceMs >= idleTimeoutMs && this.all.size + this.connecting > min) this.destroy(conn, 'idle');
      else i++;
    }
    this.refill(now);
  }

  private timeOutWaiter(waiter: Waiter): void {
    if (waiter.node === undefined || !this.waiters.remove(waiter.node)) return;
    this.settleWaiter(waiter);
    this.counters.acquireTimedOut();
    waiter.reject(new AcquireTimeoutError(Math.round(performance.now() - waiter.startedMs)));
  }

  private cancelWaiter(waiter: Waiter): void {
    if (waiter.node === undefined || !this.waiters.remove(waiter.node)) return;
    this.settleWaiter(waiter);
    this.counters.acquireCancelled();
    waiter.reject(new CancelledError({ cause: waiter.signal?.reason }));
  }

  /** Clears a waiter's timer and abort listener (it already left the queue). */
  private settleWaiter(waiter: Waiter): void {
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }
}
