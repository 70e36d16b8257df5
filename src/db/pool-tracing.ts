import { SpanKind, SpanStatusCode, type Attributes, type Span, type SpanOptions } from '@opentelemetry/api';
import { errorTypeOf, sqlStateOf } from './pg-errors';

/**
 * Spans of the pool, after the OpenTelemetry database conventions
 * (https://opentelemetry.io/docs/specs/semconv/database/postgresql/). They
 * are built by hand rather than by @opentelemetry/instrumentation-pg, which
 * never ends spans of COPY streams and records no SQLSTATE.
 *
 * Span name and `db.query.summary` are the caller's operation name
 * (`orders.get`); `db.operation.name` is the SQL command (`SELECT`, `COPY`).
 * Attributes are only built when the span records: with tracing off, a
 * query costs one non-recording span object.
 */

/** Attributes every span of one pool shares (server, database). Computed once per pool. */
export type DbBaseAttributes = Readonly<Attributes>;

/** Builds the per-pool attributes from the connection string. */
export function dbBaseAttributes(connectionString: string, applicationName: string): DbBaseAttributes {
  const attrs: Attributes = { 'db.system.name': 'postgresql', 'orderflow.db.application_name': applicationName };
  try {
    const url = new URL(connectionString);
    if (url.hostname) attrs['server.address'] = url.hostname;
    attrs['server.port'] = url.port ? Number(url.port) : 5432;
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (database) attrs['db.namespace'] = database;
  } catch {
    // A malformed URL fails at connect with its own error; spans just lack server fields.
  }
  return Object.freeze(attrs);
}

/** Client spans: a query or transaction is a call to a remote server. */
export const CLIENT_SPAN: SpanOptions = Object.freeze({ kind: SpanKind.CLIENT });

/**
 * The SQL command word (`SELECT`, `INSERT`, `COPY`, `BEGIN` …) of a statement,
 * skipping leading blanks, `--` line comments and `(`. Only called when the
 * span records.
 */
export function sqlCommandOf(sql: string): string {
  let i = 0;
  const n = sql.length;
  for (;;) {
    while (i < n && (sql.charCodeAt(i) <= 32 || sql[i] === '(')) i++;
    if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      if (end < 0) return '';
      i = end + 1;
      continue;
    }
    if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) return '';
      i = end + 2;
      continue;
    }
    break;
  }
  let j = i;
  while (j < n) {
    const c = sql.charCodeAt(j) | 0x20; // lower-case ASCII letters
    if (c < 97 || c > 122) break;
    j++;
  }
  return sql.slice(i, j).toUpperCase();
}

/** Sets the attributes of a statement span (only call when it records). */
export function setQueryAttributes(span: Span, base: DbBaseAttributes, op: string, sql: string, table: string | undefined): void {
  span.setAttributes(base);
  span.setAttribute('db.operation.name', sqlCommandOf(sql));
  span.setAttribute('db.query.summary', op);
  // Parameterized text only: values travel separately ($1, $2 …) and are never recorded.
  span.setAttribute('db.query.text', sql);
  if (table !== undefined) span.setAttribute('db.collection.name', table);
}

/**
 * Ends a statement span: rows on success; on failure `error.type` and
 * `db.response.status_code` (the SQLSTATE when there is one) and an error status.
 */
export function endQuerySpan(span: Span, err: unknown, rows: number): void {
  if (span.isRecording()) {
    if (err === undefined) span.setAttribute('orderflow.db.rows', rows);
    else markSpanFailed(span, err);
  }
  span.end();
}

/** Records a failure on a recording span (SQLSTATE, error.type, status, exception event). */
export function markSpanFailed(span: Span, err: unknown): void {
  const sqlState = sqlStateOf(err);
  if (sqlState !== undefined) span.setAttribute('db.response.status_code', sqlState);
  span.setAttribute('error.type', errorTypeOf(err));
  span.recordException(err as Error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
}

/** Attributes that describe why a transaction or savepoint rolled back. */
export function rollbackCauseAttributes(cause: unknown): Attributes {
  const attrs: Attributes = { 'error.type': errorTypeOf(cause), 'exception.message': (cause as Error)?.message ?? String(cause) };
  const sqlState = sqlStateOf(cause);
  if (sqlState !== undefined) attrs['db.response.status_code'] = sqlState;
  return attrs;
}
