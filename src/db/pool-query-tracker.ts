import { context, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { Logger } from '../telemetry/logger';
import { errorTypeOf } from './pg-errors';
import { operationMetrics, queryErrorsCounter, slowQueriesCounter } from './pool-metrics';
import { CLIENT_SPAN, endQuerySpan, setQueryAttributes, type DbBaseAttributes } from './pool-tracing';

/** Longest SQL text a slow-query log line carries; migrations can be many kilobytes. */
const SLOW_LOG_MAX_SQL_CHARS = 2_000;

/**
 * Counts, times and traces every statement of one pool: a span per
 * statement, the duration histogram by operation, errors by SQLSTATE, and
 * one structured log line plus a counter for statements above SLOW_QUERY_MS.
 * Parameter values are never seen here, so they can never be logged.
 */
export class QueryTracker {
  queryCount = 0;
  queryErrorCount = 0;
  slowQueryCount = 0;

  constructor(
    private readonly tracer: Tracer,
    private readonly baseAttributes: DbBaseAttributes,
    private readonly slowQueryMs: number,
    private readonly logger: Logger,
  ) {}

  /** Starts the span of a statement (attributes only when it records). */
  start(op: string, sql: string, table: string | undefined, parent: Context | undefined): Span {
    const span = this.tracer.startSpan(op, CLIENT_SPAN, parent ?? context.active());
    if (span.isRecording()) setQueryAttributes(span, this.baseAttributes, op, sql, table);
    return span;
  }

  /** Records the outcome of a statement started at `startedMs` (performance.now()) and ends its span. */
  finish(op: string, sql: string, span: Span, startedMs: number, err: unknown, rows: number): void {
    const durationMs = performance.now() - startedMs;
    const metrics = operationMetrics(op);
    this.queryCount++;
    metrics.duration.observe(durationMs / 1_000);
    if (err !== undefined) {
      this.queryErrorCount++;
      queryErrorsCounter.inc({ operation: metrics.operation, sqlstate: errorTypeOf(err) });
    }
    if (durationMs > this.slowQueryMs) {
      this.slowQueryCount++;
      slowQueriesCounter.inc({ operation: metrics.operation });
      this.logger.warn(
        {
          op,
          durationMs: Math.round(durationMs * 10) / 10,
          rows,
          sql: sql.length > SLOW_LOG_MAX_SQL_CHARS ? `${sql.slice(0, SLOW_LOG_MAX_SQL_CHARS)}…` : sql,
          slowQueryMs: this.slowQueryMs,
          ...(err === undefined ? {} : { error: errorTypeOf(err) }),
        },
        'slow query',
      );
    }
    endQuerySpan(span, err, rows);
  }
}
