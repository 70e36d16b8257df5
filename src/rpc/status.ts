import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import type { ErrorCode } from '../errors';
import { OrderflowError, InvalidArgumentError } from '../errors';
import type { Logger } from '../telemetry/logger';

/**
 * Domain error code → gRPC status. Explicit numbers, one place. A raw error
 * must never reach grpc-js: it treats any numeric `code` as the status and
 * sends the message verbatim.
 */
export const GRPC_STATUS_BY_CODE: Readonly<Record<ErrorCode, status>> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT, // 3
  INVALID_EVENT: status.INVALID_ARGUMENT, // 3
  DUPLICATE: status.ALREADY_EXISTS, // 6
  NOT_FOUND: status.NOT_FOUND, // 5
  OVERLOADED: status.RESOURCE_EXHAUSTED, // 8
  ACQUIRE_TIMEOUT: status.RESOURCE_EXHAUSTED, // 8
  SHUTTING_DOWN: status.UNAVAILABLE, // 14
  FENCED: status.ABORTED, // 10
  CANCELLED: status.CANCELLED, // 1
  DB_UNAVAILABLE: status.UNAVAILABLE, // 14
  DB_TIMEOUT: status.DEADLINE_EXCEEDED, // 4
  RETRYABLE_TX: status.ABORTED, // 10
  CONFIG: status.INTERNAL, // 13
  INTERNAL: status.INTERNAL, // 13
};

/**
 * Converts any error into a ServiceError safe to hand to grpc-js. Domain
 * errors keep their fixed message; unknown errors become INTERNAL with a
 * generic message and are logged with their cause.
 */
export function toGrpcStatus(err: unknown, logger?: Logger): Partial<ServiceError> & { code: status; details: string } {
  const metadata = new Metadata();
  if (err instanceof OrderflowError) {
    const code = GRPC_STATUS_BY_CODE[err.code];
    metadata.set('orderflow-error-code', err.code);
    if (err instanceof InvalidArgumentError) metadata.set('orderflow-field', err.field);
    if (code === status.INTERNAL) logger?.error({ err, cause: err.cause }, 'internal error');
    return { code, details: err.message, message: err.message, metadata, name: 'OrderflowError' };
  }
  logger?.error({ err }, 'unexpected error');
  metadata.set('orderflow-error-code', 'INTERNAL');
  return { code: status.INTERNAL, details: 'An internal error occurred.', message: 'An internal error occurred.', metadata, name: 'InternalError' };
}
