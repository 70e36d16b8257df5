import type { QueryResultRow } from 'pg';
import type { Pool } from '../db/types';
import { CancelledError } from '../errors';

/**
 * Runs the read path's queries through the pool, which gives each its span
 * (named after the op, `db.operation.name` the SQL command) and cancels it on
 * the server when `signal` aborts. Keeps a count per operation: tests prove
 * single flight with it.
 */
export class ReadQueries {
  private readonly counts = new Map<string, number>();

  constructor(private readonly pool: Pool) {}

  /** Queries run so far for `op` (e.g. `orders.get`). */
  count(op: string): number {
    return this.counts.get(op) ?? 0;
  }

  /**
   * Runs one statement. The SQL is prefixed with `/* op *\/` so it can be
   * found in pg_stat_activity. Aborting `signal` cancels the statement on
   * the server (a PostgreSQL cancel request) and rejects with CancelledError.
   */
  async run<R extends QueryResultRow>(op: string, sql: string, params: readonly unknown[], signal: AbortSignal): Promise<R[]> {
    // An aborted caller runs (and counts) nothing.
    if (signal.aborted) throw new CancelledError({ cause: signal.reason });
    this.counts.set(op, this.count(op) + 1);
    return (await this.pool.query<R>({ op, signal }, `/* ${op} */ ${sql}`, params)).rows;
  }
}
