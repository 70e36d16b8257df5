import {
  CancelledError,
  DbTimeoutError,
  DbUnavailableError,
  DuplicateError,
  InternalError,
  OrderflowError,
  RetryableTxError,
} from '../errors';

/** Fields node-postgres puts on a server error (DatabaseError) or a socket error. */
interface PgErrorLike {
  code?: string;
  constraint?: string;
  table?: string;
  message?: string;
  sqlState?: string;
  cause?: unknown;
}

const CONNECTION_ERRNOS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * SQLSTATE shape: five characters whose class is a digit or one of the
 * lettered classes (F0 config file, HV foreign data, P0 PL/pgSQL, XX
 * internal). The class rule keeps errno codes such as `EPIPE` out.
 */
const SQLSTATE_PATTERN = /^[0-9FHPX][0-9A-Z]{4}$/;

/**
 * Messages node-postgres raises without any code when the socket dies or the
 * client is unusable; they mean the connection is gone.
 */
const CONNECTION_MESSAGE_PATTERN =
  /Connection terminated|connection is closed|Client has encountered a connection error|not queryable|timeout expired|Client was closed/i;

/** The SQLSTATE of a PostgreSQL error (or of a domain error wrapping one), else undefined. */
export function sqlStateOf(err: unknown): string | undefined {
  const e = err as PgErrorLike | undefined;
  if (e === undefined || e === null) return undefined;
  if (typeof e.code === 'string' && SQLSTATE_PATTERN.test(e.code)) return e.code;
  if (typeof e.sqlState === 'string') return e.sqlState;
  if (e instanceof OrderflowError && e.cause !== undefined) return sqlStateOf(e.cause);
  return undefined;
}

/**
 * A short, low-cardinality error type for metric labels and the span
 * attribute `error.type`: the SQLSTATE when there is one, else the domain
 * error code (`DB_TIMEOUT` for a client-side timeout, `CANCELLED`,
 * `DB_UNAVAILABLE` for a dead socket), else `INTERNAL`.
 */
export function errorTypeOf(err: unknown): string {
  const sqlState = sqlStateOf(err);
  if (sqlState !== undefined) return sqlState;
  if (err instanceof OrderflowError) return err.code;
  return 'INTERNAL';
}

/**
 * True when the error means the connection itself is unusable (the backend
 * was terminated, the socket reset, or the protocol broke), so the connection
 * must be destroyed, never returned to the pool.
 */
export function isConnectionLevelError(err: unknown): boolean {
  if (err instanceof DbUnavailableError) return true;
  if (err instanceof OrderflowError) return false;
  const e = err as PgErrorLike | undefined;
  const code = e?.code;
  if (code === undefined) return CONNECTION_MESSAGE_PATTERN.test(e?.message ?? '');
  // 57P01 admin shutdown / pg_terminate_backend, 57P02 crash shutdown,
  // 57P03 cannot connect now, 57P04 database dropped: the backend is gone.
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '57P04' || CONNECTION_ERRNOS.has(code);
}

/**
 * The one translation of PostgreSQL and driver errors into domain errors
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html):
 * - 23505 → DuplicateError (constraint and table as typed fields);
 * - 40001 serialization failure, 40P01 deadlock → RetryableTxError. The rest
 *   of class 40 is not retryable: 40003 means the outcome of the statement is
 *   unknown, and replaying a money write on that is how fills get doubled;
 * - 57014 query canceled (statement_timeout) and 55P03 lock not available
 *   (lock_timeout, NOWAIT) → DbTimeoutError;
 * - class 08, 57P01-04, 53300 too many connections, socket errors and
 *   node-postgres' code-less "connection terminated" errors → DbUnavailableError;
 * - everything else → InternalError with the original as `cause` and its SQLSTATE.
 * Domain errors pass through unchanged; an AbortError becomes CancelledError.
 */
export function translatePgError(err: unknown): OrderflowError {
  if (err instanceof OrderflowError) return err;
  if ((err as Error | undefined)?.name === 'AbortError') return new CancelledError({ cause: err });
  const e = err as PgErrorLike | undefined;
  const sqlState = sqlStateOf(err);
  if (sqlState === '23505') return new DuplicateError(e?.constraint, e?.table, { cause: err });
  if (sqlState === '40001' || sqlState === '40P01') return new RetryableTxError(sqlState, { cause: err });
  if (sqlState === '57014' || sqlState === '55P03') return new DbTimeoutError({ cause: err, sqlState });
  if (sqlState === '53300' || isConnectionLevelError(err)) return new DbUnavailableError({ cause: err, sqlState });
  return new InternalError({ cause: err, sqlState });
}
