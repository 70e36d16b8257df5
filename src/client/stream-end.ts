import { status, type StatusObject } from '@grpc/grpc-js';

/** What a producer does when its Ingest stream ends. */
export type StreamEndVerdict = 'retry' | 'fenced' | 'fatal';

/**
 * Statuses a new stream can cure: the connection dropped (UNAVAILABLE,
 * INTERNAL and UNKNOWN from a torn HTTP/2 session, CANCELLED from a server's
 * forced shutdown), the server was overloaded or slow, or it simply ended
 * the stream (OK) while we still had events to send.
 */
const RETRYABLE = new Set<number>([status.OK, status.UNAVAILABLE, status.CANCELLED, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.INTERNAL, status.UNKNOWN]);

/**
 * Classifies the status that ended an Ingest stream. ABORTED is a fence (a
 * newer stream took the source) unless the server's `orderflow-error-code`
 * trailer says it was a retryable transaction conflict; anything else not
 * retryable (UNIMPLEMENTED, INVALID_ARGUMENT, UNAUTHENTICATED, …) is fatal.
 */
export function classifyStreamEnd(end: Pick<StatusObject, 'code' | 'metadata'>): StreamEndVerdict {
  if (end.code === status.ABORTED) return end.metadata?.get('orderflow-error-code')[0] === 'RETRYABLE_TX' ? 'retry' : 'fenced';
  return RETRYABLE.has(end.code) ? 'retry' : 'fatal';
}
