import { Counter, Gauge, type Metric } from 'prom-client';
import { registry } from '../telemetry/metrics';
import { FastHistogram, type HistogramSeries } from './pool-histogram';
import type { PoolStats } from './types';

/**
 * Prometheus families of the pool and of query tracking. Several pools can
 * live in one process (tests start many apps), so every family is created
 * once per process and shared: counters and histograms are incremented by
 * every pool, gauges sum the live pools in their collect() callback.
 */

/** A pool as the gauges see it. */
export interface StatsSource {
  stats(): PoolStats;
}

const livePools = new Set<StatsSource>();

/** Adds a pool to the gauges; returns the function that removes it (call on close). */
export function trackPool(pool: StatsSource): () => void {
  livePools.add(pool);
  return () => livePools.delete(pool);
}

function sumOverPools(field: keyof PoolStats): number {
  let sum = 0;
  for (const pool of livePools) sum += pool.stats()[field];
  return sum;
}

/** Returns the already registered family, so a second copy of this module never throws "already registered". */
function once<T extends Metric | FastHistogram>(name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

const ACQUIRE_BUCKETS_S = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
const QUERY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Open connections by state (idle | in_use | connecting), summed over live pools. */
export const poolConnectionsGauge = once(
  'orderflow_db_pool_connections',
  () =>
    new Gauge({
      name: 'orderflow_db_pool_connections',
      help: 'Database connections of the pool by state.',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        this.set({ state: 'idle' }, sumOverPools('idleConnections'));
        this.set({ state: 'in_use' }, sumOverPools('inUseConnections'));
        this.set({ state: 'connecting' }, sumOverPools('connectingConnections'));
      },
    }),
);

/** POOL_MAX summed over live pools, for saturation ratios. */
export const poolMaxConnectionsGauge = once(
  'orderflow_db_pool_max_connections',
  () =>
    new Gauge({
      name: 'orderflow_db_pool_max_connections',
      help: 'Maximum database connections of the pool (POOL_MAX).',
      registers: [registry],
      collect() {
        this.set(sumOverPools('maxConnections'));
      },
    }),
);

/** Acquires waiting for a connection right now. */
export const poolPendingGauge = once(
  'orderflow_db_pool_pending_acquires',
  () =>
    new Gauge({
      name: 'orderflow_db_pool_pending_acquires',
      help: 'Acquires waiting for a free database connection.',
      registers: [registry],
      collect() {
        this.set(sumOverPools('pendingAcquires'));
      },
    }),
);

/** Duration of every successful acquire (0 for an idle connection at hand). */
export const acquireWaitHistogram = once(
  'orderflow_db_pool_acquire_wait_seconds',
  () =>
    new FastHistogram({
      name: 'orderflow_db_pool_acquire_wait_seconds',
      help: 'Time a successful acquire waited for a database connection.',
      buckets: ACQUIRE_BUCKETS_S,
      registry,
    }),
);

/** The one series of the acquire histogram. */
export const acquireWait: HistogramSeries = acquireWaitHistogram.labels();

/** Successful acquires. */
export const acquiresCounter = once(
  'orderflow_db_pool_acquires_total',
  () => new Counter({ name: 'orderflow_db_pool_acquires_total', help: 'Successful acquires of a database connection.', registers: [registry] }),
);

/** Acquires that failed with AcquireTimeoutError. */
export const acquireTimeoutsCounter = once(
  'orderflow_db_pool_acquire_timeouts_total',
  () =>
    new Counter({ name: 'orderflow_db_pool_acquire_timeouts_total', help: 'Acquires that gave up after the acquire timeout.', registers: [registry] }),
);

/** Acquires removed from the queue by their AbortSignal. */
export const acquireCancellationsCounter = once(
  'orderflow_db_pool_acquire_cancellations_total',
  () =>
    new Counter({
      name: 'orderflow_db_pool_acquire_cancellations_total',
      help: 'Acquires cancelled by their caller while waiting.',
      registers: [registry],
    }),
);

/** Connections opened. */
export const connectionsOpenedCounter = once(
  'orderflow_db_pool_connections_opened_total',
  () => new Counter({ name: 'orderflow_db_pool_connections_opened_total', help: 'Database connections opened.', registers: [registry] }),
);

/** Failed attempts to open a connection. */
export const connectErrorsCounter = once(
  'orderflow_db_pool_connect_errors_total',
  () => new Counter({ name: 'orderflow_db_pool_connect_errors_total', help: 'Failed attempts to open a database connection.', registers: [registry] }),
);

/** Why a connection was destroyed. */
export type DestroyReason = 'lifetime' | 'idle' | 'error' | 'max_uses';

/** Connections destroyed, by reason. Those ended by close() are not counted. */
export const connectionsDestroyedCounter = once(
  'orderflow_db_pool_connections_destroyed_total',
  () =>
    new Counter({
      name: 'orderflow_db_pool_connections_destroyed_total',
      help: 'Database connections destroyed, by reason (lifetime, idle, error, max_uses).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
);

/** Statement duration by operation (COPY included). */
export const queryDurationHistogram = once(
  'orderflow_db_query_duration_seconds',
  () =>
    new FastHistogram({
      name: 'orderflow_db_query_duration_seconds',
      help: 'Duration of database statements by operation.',
      buckets: QUERY_BUCKETS_S,
      registry,
    }),
);

/** Failed statements by operation and SQLSTATE (or error code when there is none). */
export const queryErrorsCounter = once(
  'orderflow_db_query_errors_total',
  () =>
    new Counter({
      name: 'orderflow_db_query_errors_total',
      help: 'Failed database statements by operation and SQLSTATE (or DB_TIMEOUT, CANCELLED, DB_UNAVAILABLE without one).',
      labelNames: ['operation', 'sqlstate'] as const,
      registers: [registry],
    }),
);

/** Statements above SLOW_QUERY_MS by operation. */
export const slowQueriesCounter = once(
  'orderflow_db_slow_queries_total',
  () =>
    new Counter({
      name: 'orderflow_db_slow_queries_total',
      help: 'Database statements slower than SLOW_QUERY_MS, by operation.',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
);

/** Transactions retried after 40001/40P01. */
export const transactionRetriesCounter = once(
  'orderflow_db_transaction_retries_total',
  () =>
    new Counter({
      name: 'orderflow_db_transaction_retries_total',
      help: 'Transactions retried after a serialization failure or deadlock, by SQLSTATE.',
      labelNames: ['sqlstate'] as const,
      registers: [registry],
    }),
);

/** Transactions that ended in ROLLBACK, by the cause's SQLSTATE (or error code). */
export const transactionRollbacksCounter = once(
  'orderflow_db_transaction_rollbacks_total',
  () =>
    new Counter({
      name: 'orderflow_db_transaction_rollbacks_total',
      help: 'Transactions rolled back, by the SQLSTATE (or error code) of the cause.',
      labelNames: ['sqlstate'] as const,
      registers: [registry],
    }),
);

/**
 * Operation names become label values, so their number must stay small. Past
 * this many distinct names new ones are reported as `other` (a caller
 * building op names from ids would otherwise grow the series without bound).
 */
export const MAX_OPERATION_LABELS = 500;

/** The per-operation metric children, cached so the hot path allocates no label objects. */
export interface OperationMetrics {
  readonly operation: string;
  readonly duration: HistogramSeries;
}

const operations = new Map<string, OperationMetrics>();

/** The cached metric children of `op`. */
export function operationMetrics(op: string): OperationMetrics {
  let entry = operations.get(op);
  if (entry === undefined) {
    const operation = operations.size < MAX_OPERATION_LABELS ? op : 'other';
    entry = operation === op ? { operation, duration: queryDurationHistogram.labels({ operation }) } : operationMetrics('other');
    if (operation === op) operations.set(op, entry);
  }
  return entry;
}
