/** Every error code orderflow uses. Each maps to exactly one gRPC status in rpc/status.ts. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_EVENT'
  | 'DUPLICATE'
  | 'NOT_FOUND'
  | 'OVERLOADED'
  | 'SHUTTING_DOWN'
  | 'FENCED'
  | 'CANCELLED'
  | 'DB_UNAVAILABLE'
  | 'DB_TIMEOUT'
  | 'ACQUIRE_TIMEOUT'
  | 'RETRYABLE_TX'
  | 'CONFIG'
  | 'INTERNAL';
