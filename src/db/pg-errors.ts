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
}

const CONNECTION_ERRNOS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The SQLSTATE of a PostgreSQL error, or undefined for other errors. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = (err as PgErrorLike | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
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
  if (code === undefined) {
    const message = e?.message ?? '';
    // node-postgres raises these without a code when the socket ends mid-query.
    return /Connection terminated|connection is closed|Client has encountered a connection error|not queryable/i.test(message);
  }
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || CONNECTION_ERRNOS.has(code);
}

/**
 * The one translation of PostgreSQL and driver errors into domain errors
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html):
 * 23505 → DuplicateError; class 40 → RetryableTxError; 57014 → DbTimeoutError;
 * class 08, 57P01-03 and socket errors → DbUnavailableError; everything else
 * → InternalError with the original as `cause`. Domain errors pass through.
 */
export function translatePgError(err: unknown): OrderflowError {
  if (err instanceof OrderflowError) return err;
  if ((err as Error | undefined)?.name === 'AbortError') return new CancelledError({ cause: err });
  const e = err as PgErrorLike | undefined;
  const sqlState = sqlStateOf(err);
  if (sqlState === '23505') return new DuplicateError(e?.constraint, e?.table, { cause: err });
  if (sqlState?.startsWith('40')) return new RetryableTxError(sqlState, { cause: err });
  if (sqlState === '57014') return new DbTimeoutError({ cause: err, sqlState });
  if (isConnectionLevelError(err)) return new DbUnavailableError({ cause: err, sqlState });
  return new InternalError({ cause: err, sqlState });
}
