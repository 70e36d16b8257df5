import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { QueryResultRow } from 'pg';
import { CancelledError } from '../errors';
import type { Pool } from '../db/types';
import type { Logger } from '../telemetry/logger';
import { getTracer } from '../telemetry/tracing';

/**
 * Runs the read path's queries: one span per query, a count per operation
 * (tests prove single flight with it), and cancellation that reaches the
 * server. TODO(#3): once the pool cancels on `signal` itself, `run` can be
 * `pool.query({ op, signal }, …)` and the pg_cancel_backend below can go;
 * until then both are harmless together (the cancel is sent while this
 * query still holds its connection, so it can never hit another query).
 */
export class ReadQueries {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
  ) {}

  /** Queries run so far for `op` (e.g. `orders.get`). */
  count(op: string): number {
    return this.counts.get(op) ?? 0;
  }

  /**
   * Runs one statement. The SQL is prefixed with `/* op *\/` so it can be
   * found in pg_stat_activity. Aborting `signal` cancels the statement on
   * the server and rejects with CancelledError.
   */
  async run<R extends QueryResultRow>(op: string, sql: string, params: readonly unknown[], signal: AbortSignal): Promise<R[]> {
    if (signal.aborted) throw new CancelledError({ cause: signal.reason });
    this.counts.set(op, this.count(op) + 1);
    return getTracer().startActiveSpan(`db.query ${op}`, { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.operation.name': op } }, async (span) => {
      try {
        const rows = await this.pool.withConnection(async (conn) => {
          // The wait for a connection may have outlived the caller.
          if (signal.aborted) throw new CancelledError({ cause: signal.reason });
          let cancelled: Promise<unknown> | undefined;
          const onAbort = () => {
            // The cancel runs on another connection; awaited below before this one is released.
            cancelled = this.pool.query('read.cancel', 'SELECT pg_cancel_backend($1)', [conn.processId]).catch((err: unknown) => {
              this.logger.warn({ err, op }, 'cancelling a read query failed');
            });
          };
          const query = conn.query<R>({ op, signal }, `/* ${op} */ ${sql}`, params);
          signal.addEventListener('abort', onAbort, { once: true });
          try {
            return (await query).rows;
          } catch (err) {
            if (signal.aborted) throw new CancelledError({ cause: err });
            throw err;
          } finally {
            signal.removeEventListener('abort', onAbort);
            await cancelled;
          }
        });
        span.setAttribute('db.response.returned_rows', rows.length);
        return rows;
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      } finally {
        span.end();
      }
    });
  }
}
