import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { RejectCode } from '../generated/orderflow/v1/RejectCode';

/** gRPC status names by number (`14` → `'UNAVAILABLE'`), for messages. */
export function statusName(code: number): string {
  return (status as unknown as Record<number, string>)[code] ?? `STATUS_${code}`;
}

/** Reject code names by number (`2` → `'REJECT_CODE_INVALID_FIELD'`). */
export function rejectCodeName(code: number): string {
  for (const [name, value] of Object.entries(RejectCode)) if (value === code) return name;
  return `REJECT_CODE_${code}`;
}

/**
 * Base of every error the client raises. `code` is a gRPC status number
 * (`grpc.status.NOT_FOUND`), `details` the server's (or the client's)
 * explanation; `errorCode` and `field` come from the server's
 * `orderflow-error-code` / `orderflow-field` trailers when it sent them.
 */
export class OrderFlowClientError extends Error {
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;
  /** The server's domain error code (`NOT_FOUND`, `DB_UNAVAILABLE`, …), when it sent one. */
  readonly errorCode: string | undefined;
  /** The request field the server named as invalid, when it sent one. */
  readonly field: string | undefined;

  constructor(code: status, details: string, options?: { cause?: unknown; metadata?: Metadata; message?: string }) {
    super(options?.message ?? `${statusName(code)}: ${details}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = details;
    this.metadata = options?.metadata ?? new Metadata();
    this.errorCode = firstString(this.metadata, 'orderflow-error-code');
    this.field = firstString(this.metadata, 'orderflow-field');
  }
}

/**
 * The server quarantined the event instead of storing it. It is durable (in
 * quarantine) and will not be retried; fix it and send it again under a new seq.
 */
export class EventRejectedError extends OrderFlowClientError {
  /** Reject code name, e.g. `'REJECT_CODE_OUT_OF_RANGE'`. */
  readonly rejectCodeName: string;

  constructor(
    readonly sourceId: string,
    readonly seq: bigint,
    /** The Reject's code (a `RejectCode` number). */
    readonly rejectCode: number,
    /** The Reject's reason, naming the field (`qty must be > 0`). */
    readonly reason: string,
  ) {
    super(status.INVALID_ARGUMENT, reason, { message: `Event ${seq} of source ${JSON.stringify(sourceId)} was rejected (${rejectCodeName(rejectCode)}): ${reason}` });
    this.rejectCodeName = rejectCodeName(rejectCode);
  }
}

/**
 * A newer ingest stream for the same source took over (the server ended ours
 * with ABORTED), or the source's mark moved past what this producer sent.
 * Not retried. Events pending at that moment may or may not have been
 * committed: the newer stream's Welcome says where the source stands.
 */
export class FencedError extends OrderFlowClientError {
  constructor(
    readonly sourceId: string,
    /** `'newer-stream'`: the server fenced us; `'superseded'`: another writer advanced the source's mark. */
    readonly reason: 'newer-stream' | 'superseded',
    details: string,
    options?: { cause?: unknown; metadata?: Metadata },
  ) {
    super(status.ABORTED, details, {
      ...options,
      message:
        reason === 'newer-stream'
          ? `Fenced: a newer ingest stream for source ${JSON.stringify(sourceId)} took over, so this producer stopped; its unacknowledged events were not retried (${details}).`
          : `Fenced: another writer advanced source ${JSON.stringify(sourceId)} past this producer's events, so this producer stopped; its unacknowledged events were not retried (${details}).`,
    });
  }
}

/** The producer was closed or destroyed before the event was acknowledged. */
export class ProducerClosedError extends OrderFlowClientError {
  constructor(
    readonly sourceId: string,
    options?: { cause?: unknown },
  ) {
    super(status.CANCELLED, 'producer closed', { ...options, message: `The ingest producer for source ${JSON.stringify(sourceId)} is closed.` });
  }
}

/** The client was closed; no calls can be made on it. */
export class ClientClosedError extends OrderFlowClientError {
  constructor() {
    super(status.CANCELLED, 'client closed', { message: 'The OrderFlow client is closed.' });
  }
}

/** The caller's AbortSignal fired before the operation finished. */
export class ClientAbortedError extends OrderFlowClientError {
  constructor(options?: { cause?: unknown }) {
    super(status.CANCELLED, 'aborted by the caller', { ...options, message: 'The operation was aborted by the caller.' });
  }
}

/** A seq given to `send` is not above the previous one (and not at or below the committed mark). */
export class InvalidSequenceError extends OrderFlowClientError {
  constructor(
    readonly seq: bigint,
    /** Highest seq this producer accepted so far. */
    readonly lastSeq: bigint,
  ) {
    super(status.INVALID_ARGUMENT, `seq ${seq} is not above the last accepted seq ${lastSeq}`, { message: `seq ${seq} must be above the last accepted seq ${lastSeq}.` });
  }
}

/** An event given to `send` has no usable shape (no payload, both payloads, a bad seq or ts_ns type). */
export class InvalidEventError extends OrderFlowClientError {
  constructor(readonly problem: string) {
    super(status.INVALID_ARGUMENT, problem, { message: `Invalid event: ${problem}.` });
  }
}

/** Client or producer options are invalid. `problems` lists every bad key. */
export class ClientOptionsError extends OrderFlowClientError {
  constructor(readonly problems: readonly string[]) {
    super(status.INVALID_ARGUMENT, problems.join('; '), { message: `Invalid OrderFlow client options: ${problems.join('; ')}.` });
  }
}

/** The spool file cannot be used (locked by a live process, another source's, unreadable). */
export class SpoolError extends OrderFlowClientError {
  constructor(
    readonly path: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(status.FAILED_PRECONDITION, problem, { ...options, message: `Spool ${path}: ${problem}.` });
  }
}

/** The server answered the Ingest stream in a way the protocol does not allow. */
export class ProtocolError extends OrderFlowClientError {
  constructor(problem: string) {
    super(status.INTERNAL, problem, { message: `Ingest protocol violation: ${problem}.` });
  }
}

/** Converts a grpc-js ServiceError into an OrderFlowClientError (keeping status, details and trailers). */
export function toClientError(err: ServiceError | Error, method?: string): OrderFlowClientError {
  if (err instanceof OrderFlowClientError) return err;
  const se = err as Partial<ServiceError>;
  const code = typeof se.code === 'number' ? (se.code as status) : status.UNKNOWN;
  const details = typeof se.details === 'string' ? se.details : err.message;
  return new OrderFlowClientError(code, details, {
    cause: err,
    metadata: se.metadata instanceof Metadata ? se.metadata : undefined,
    message: method ? `${method} failed with ${statusName(code)}: ${details}` : undefined,
  });
}

function firstString(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}
