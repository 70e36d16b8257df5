import type { ErrorCode } from './codes';

/**
 * Codes that answer a caller rather than report a fault: nobody reads their
 * stack, and a read path refusing or missing thousands of calls a second
 * would spend a tenth of its CPU capturing and formatting them.
 */
const ANSWERS_WITHOUT_STACK: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['INVALID_ARGUMENT', 'NOT_FOUND', 'OVERLOADED', 'CANCELLED']);

/**
 * Base of every error orderflow raises on purpose. The message is a fixed,
 * human-readable sentence; variable details live in typed fields, never in
 * text that callers would have to parse. Errors whose code is an answer
 * (ANSWERS_WITHOUT_STACK) carry no stack frames.
 */
export class OrderflowError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    const stackTraceLimit = Error.stackTraceLimit;
    if (ANSWERS_WITHOUT_STACK.has(code)) Error.stackTraceLimit = 0;
    try {
      super(message, options);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.code = code;
    this.name = new.target.name;
  }
}

/** A request argument is invalid. `field` names the offending field. */
export class InvalidArgumentError extends OrderflowError {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super('INVALID_ARGUMENT', `${field}: ${detail}`);
  }
}

/** A unique constraint refused a row (SQLSTATE 23505). */
export class DuplicateError extends OrderflowError {
  constructor(
    readonly constraint: string | undefined,
    readonly table: string | undefined,
    options?: { cause?: unknown },
  ) {
    super('DUPLICATE', 'The row already exists.', options);
  }
}

/** The requested entity does not exist. */
export class NotFoundError extends OrderflowError {
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super('NOT_FOUND', `${entity} not found: ${id}`);
  }
}

/** A bounded resource is full; the caller should back off. */
export class OverloadedError extends OrderflowError {
  constructor(message = 'The service is overloaded; retry later.', options?: { cause?: unknown }) {
    super('OVERLOADED', message, options);
  }
}

/** The component is shutting down or closed and takes no new work. */
export class ShuttingDownError extends OrderflowError {
  constructor(readonly component = 'service') {
    super('SHUTTING_DOWN', `The ${component} is shutting down.`);
  }
}

/** A newer ingest stream for the same source took over. */
export class FencedError extends OrderflowError {
  constructor(readonly sourceId: string) {
    super('FENCED', `A newer ingest stream for source ${JSON.stringify(sourceId)} took over; this stream is fenced.`);
  }
}

/** The caller cancelled the operation (AbortSignal or gRPC cancel/deadline). */
export class CancelledError extends OrderflowError {
  constructor(options?: { cause?: unknown }) {
    super('CANCELLED', 'The operation was cancelled.', options);
  }
}

/** PostgreSQL cannot be reached or dropped the connection (08xxx, 57P01, ECONNRESET …). */
export class DbUnavailableError extends OrderflowError {
  constructor(options?: { cause?: unknown; sqlState?: string }) {
    super('DB_UNAVAILABLE', 'The database is unavailable.', options);
    this.sqlState = options?.sqlState;
  }
  readonly sqlState: string | undefined;
}

/** A statement ran past its timeout (57014 or the client-side query timeout). */
export class DbTimeoutError extends OrderflowError {
  constructor(options?: { cause?: unknown; sqlState?: string }) {
    super('DB_TIMEOUT', 'The database query timed out.', options);
    this.sqlState = options?.sqlState;
  }
  readonly sqlState: string | undefined;
}

/** No pooled connection became free within the acquire timeout. */
export class AcquireTimeoutError extends OrderflowError {
  constructor(readonly waitedMs: number) {
    super('ACQUIRE_TIMEOUT', 'Timed out waiting for a database connection from the pool.');
  }
}

/** A transaction failed with a serialization failure or deadlock (SQLSTATE class 40). */
export class RetryableTxError extends OrderflowError {
  constructor(
    readonly sqlState: string,
    options?: { cause?: unknown },
  ) {
    super('RETRYABLE_TX', 'The transaction conflicted with another and may be retried.', options);
  }
}

/** Anything unexpected. The original error is the `cause`. */
export class InternalError extends OrderflowError {
  constructor(options?: { cause?: unknown; sqlState?: string }) {
    super('INTERNAL', 'An internal error occurred.', options);
    this.sqlState = options?.sqlState;
  }
  readonly sqlState: string | undefined;
}

/** Returns true when `err` is an OrderflowError with the given code. */
export function hasCode(err: unknown, code: string): err is OrderflowError {
  return err instanceof OrderflowError && err.code === code;
}
