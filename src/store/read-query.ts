import type { QueryResultRow } from 'pg';
import type { Pool } from '../db/types';
import { Counter } from 'prom-client';
import { CancelledError, OverloadedError } from '../errors';
import { registry } from '../telemetry/metrics';

/** Reads refused by the admission limit, by operation. */
const shedCounter = new Counter({
  name: 'orderflow_read_queries_shed_total',
  help: 'Read queries refused at once (RESOURCE_EXHAUSTED) because READ_MAX_IN_FLIGHT were already running or waiting for a connection.',
  labelNames: ['operation'] as const,
  registers: [registry],
});

/**
 * Runs the read path's queries through the pool, which gives each its span
 * (named after the op, `db.operation.name` the SQL command) and cancels it on
 * the server when `signal` aborts. Keeps a count per operation: tests prove
 * single flight with it.
 *
 * Admission: at most `maxInFlight` read queries run or wait for a connection
 * at once; one more is refused at once with OverloadedError
 * (RESOURCE_EXHAUSTED). Under sustained overload a FIFO queue would make
 * every call wait until the pool's acquire timeout or its deadline, so none
 * would be answered in time; refusing the excess keeps the admitted calls
 * fast and the heap small. Ingest flushes do not come through here: they
 * are never refused for readers.
 */
export class ReadQueries {
  private readonly counts = new Map<string, number>();
  private inFlightValue = 0;

  constructor(
    private readonly pool: Pool,
    private readonly maxInFlight: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Queries run so far for `op` (e.g. `orders.get`). */
  count(op: string): number {
    return this.counts.get(op) ?? 0;
  }

  /** Read queries running or waiting for a connection now. */
  get inFlight(): number {
    return this.inFlightValue;
  }

  /**
   * Runs one statement. The SQL is prefixed with `/* op *\/` so it can be
   * found in pg_stat_activity. Aborting `signal` cancels the statement on
   * the server (a PostgreSQL cancel request) and rejects with CancelledError.
   */
  async run<R extends QueryResultRow>(op: string, sql: string, params: readonly unknown[], signal: AbortSignal): Promise<R[]> {
    // An aborted caller runs (and counts) nothing.
    if (signal.aborted) throw new CancelledError({ cause: signal.reason });
    if (this.inFlightValue >= this.maxInFlight) {
      shedCounter.inc({ operation: op });
      throw new OverloadedError(`The read path is at its limit of ${this.maxInFlight} queries in flight (READ_MAX_IN_FLIGHT); retry later.`);
    }
    this.counts.set(op, this.count(op) + 1);
    this.inFlightValue++;
    try {
      return (await this.pool.query<R>({ op, signal }, `/* ${op} */ ${sql}`, params)).rows;
    } finally {
      this.inFlightValue--;
    }
  }
}
