import { errorTypeOf } from './pg-errors';
import * as metrics from './pool-metrics';
import type { PoolStats } from './types';

/** The pool's gauges at one instant. */
export interface PoolGauges {
  maxConnections: number;
  totalConnections: number;
  idleConnections: number;
  inUseConnections: number;
  connectingConnections: number;
  pendingAcquires: number;
}

/** The statement counters kept by the QueryTracker. */
export interface StatementCounts {
  readonly queryCount: number;
  readonly queryErrorCount: number;
  readonly slowQueryCount: number;
}

/**
 * The counters of one pool. Each event bumps the pool's own number (for
 * stats()) and the process-wide Prometheus family in the same call, so the
 * two can never disagree.
 */
export class PoolCounters {
  private acquires = 0;
  private acquireMs = 0;
  private waited = 0;
  private waitedMs = 0;
  private cancelled = 0;
  private timedOut = 0;
  private opened = 0;
  private connectErrors = 0;
  private byLifetime = 0;
  private byIdle = 0;
  private byError = 0;
  private byMaxUses = 0;
  private txRetries = 0;
  private txRollbacks = 0;

  /** A successful acquire that took `durationMs`; `waited` when no idle connection was at hand. */
  acquired(durationMs: number, waited: boolean): void {
    this.acquires++;
    this.acquireMs += durationMs;
    if (waited) {
      this.waited++;
      this.waitedMs += durationMs;
    }
    metrics.acquiresCounter.inc();
    metrics.acquireWait.observe(durationMs / 1_000);
  }

  acquireCancelled(): void {
    this.cancelled++;
    metrics.acquireCancellationsCounter.inc();
  }

  acquireTimedOut(): void {
    this.timedOut++;
    metrics.acquireTimeoutsCounter.inc();
  }

  connectionOpened(): void {
    this.opened++;
    metrics.connectionsOpenedCounter.inc();
  }

  connectFailed(): void {
    this.connectErrors++;
    metrics.connectErrorsCounter.inc();
  }

  connectionDestroyed(reason: metrics.DestroyReason): void {
    if (reason === 'lifetime') this.byLifetime++;
    else if (reason === 'idle') this.byIdle++;
    else if (reason === 'error') this.byError++;
    else this.byMaxUses++;
    metrics.connectionsDestroyedCounter.inc({ reason });
  }

  transactionRetried(sqlState: string): void {
    this.txRetries++;
    metrics.transactionRetriesCounter.inc({ sqlstate: sqlState });
  }

  transactionRolledBack(cause: unknown): void {
    this.txRollbacks++;
    metrics.transactionRollbacksCounter.inc({ sqlstate: errorTypeOf(cause) });
  }

  /** The stats() snapshot from these counters plus the current gauges. */
  snapshot(gauges: PoolGauges, statements: StatementCounts): PoolStats {
    return {
      ...gauges,
      acquireCount: this.acquires,
      acquireDurationMsTotal: this.acquireMs,
      waitedAcquireCount: this.waited,
      waitedAcquireDurationMsTotal: this.waitedMs,
      cancelledAcquireCount: this.cancelled,
      timedOutAcquireCount: this.timedOut,
      openedConnections: this.opened,
      connectErrorCount: this.connectErrors,
      destroyedByLifetime: this.byLifetime,
      destroyedByIdle: this.byIdle,
      destroyedByError: this.byError,
      destroyedByMaxUses: this.byMaxUses,
      queryCount: statements.queryCount,
      queryErrorCount: statements.queryErrorCount,
      slowQueryCount: statements.slowQueryCount,
      transactionRetryCount: this.txRetries,
      transactionRollbackCount: this.txRollbacks,
    };
  }
}
