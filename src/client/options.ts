import type { ChannelCredentials, ChannelOptions, Metadata } from '@grpc/grpc-js';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import { ClientOptionsError, type EventRejectedError } from './errors';
import type { SpoolOptions } from './spool';

/** Options of createOrderFlowClient. */
export interface OrderFlowClientOptions {
  /** Server address, `host:port` (any grpc-js target). */
  address: string;
  /** Channel credentials. Default insecure (plaintext). */
  credentials?: ChannelCredentials;
  /** Deadline of read calls that set none, ms. Default 10,000. */
  defaultDeadlineMs?: number;
  /** HTTP/2 keepalive ping period, ms; finds a dead server under an idle stream (0 = off). Default 30,000. */
  keepaliveTimeMs?: number;
  /** How long a keepalive ping may go unanswered before the connection is dropped, ms. Default 10,000. */
  keepaliveTimeoutMs?: number;
  /** Cap of the channel's own reconnect backoff, ms (grpc-js defaults to 120 s, far too long for a feed). Default 5,000. */
  maxChannelBackoffMs?: number;
  /** Largest message received, bytes. Default 16 MiB (the server's default limit). */
  maxReceiveMessageBytes?: number;
  /** Extra grpc-js channel options; they win over the ones above. */
  channelOptions?: ChannelOptions;
}

/** Something went wrong that the producer survived but the operator should know. */
export interface ProducerWarning {
  kind: 'ack-regression' | 'unknown-reject' | 'ambiguous-ack' | 'spool-truncated';
  message: string;
}

/** Options of `client.openIngest`. */
export interface IngestProducerOptions {
  /** The source: one stable id per venue session or engine instance. A newer stream for it fences this one. */
  sourceId: string;
  /** Most unacknowledged events held; `send` waits while it is full. Default 10,000. */
  maxWindowEvents?: number;
  /** Most events per EventBatch message. Default 500. */
  maxBatchEvents?: number;
  /** How long a partial batch waits for more events, ms; 0 sends at the end of the current tick. Default 0. */
  lingerMs?: number;
  /** Reconnect backoff. `maxAttempts` = consecutive failed attempts before giving up (default unlimited). */
  reconnect?: Partial<BackoffOptions> & { maxAttempts?: number };
  /** Back the window with an append-only file, so a restarted process resends what was never acked. */
  spool?: SpoolOptions;
  /** Longest `close()` waits for pending events before it gives up on them, ms. Default 30,000. */
  closeTimeoutMs?: number;
  /** Metadata sent with every Ingest call (auth, trace context). */
  metadata?: Metadata;
  /** Aborts `openIngest` while it waits for the first Welcome. */
  signal?: AbortSignal;
  /** Called for every rejected event, also those whose receipt nobody awaits (and those recovered from a spool). */
  onEventRejected?: (error: EventRejectedError) => void;
  /** Called for anomalies the producer survived. */
  onWarning?: (warning: ProducerWarning) => void;
}

/** Producer options with every default applied. */
export interface ResolvedProducerOptions {
  sourceId: string;
  maxWindowEvents: number;
  maxBatchEvents: number;
  lingerMs: number;
  backoff: BackoffOptions;
  maxReconnectAttempts: number;
  spool: SpoolOptions | undefined;
  closeTimeoutMs: number;
  metadata: Metadata | undefined;
  signal: AbortSignal | undefined;
  onEventRejected: ((error: EventRejectedError) => void) | undefined;
  onWarning: ((warning: ProducerWarning) => void) | undefined;
}

/** Default of IngestProducerOptions.maxWindowEvents. */
export const DEFAULT_MAX_WINDOW_EVENTS = 10_000;
/** Default of IngestProducerOptions.maxBatchEvents. */
export const DEFAULT_MAX_BATCH_EVENTS = 500;
/** Default of IngestProducerOptions.closeTimeoutMs. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
/** Default of OrderFlowClientOptions.defaultDeadlineMs. */
export const DEFAULT_DEADLINE_MS = 10_000;

/** Applies defaults and validates; throws one ClientOptionsError naming every bad option. */
export function resolveProducerOptions(options: IngestProducerOptions): ResolvedProducerOptions {
  const problems: string[] = [];
  const sourceId = options.sourceId;
  if (typeof sourceId !== 'string' || sourceId.length === 0 || sourceId.length > 64 || /[\u0000-\u001f\u007f]/.test(sourceId)) {
    problems.push('sourceId must be 1 to 64 printable characters');
  }
  const int = (name: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${name} must be an integer from ${min} to ${max}`);
    return value;
  };
  const maxWindowEvents = int('maxWindowEvents', options.maxWindowEvents, DEFAULT_MAX_WINDOW_EVENTS, 1);
  const maxBatchEvents = int('maxBatchEvents', options.maxBatchEvents, DEFAULT_MAX_BATCH_EVENTS, 1, 100_000);
  const lingerMs = int('lingerMs', options.lingerMs, 0, 0, 60_000);
  const closeTimeoutMs = int('closeTimeoutMs', options.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 0);
  const backoff: BackoffOptions = {
    initialDelayMs: int('reconnect.initialDelayMs', options.reconnect?.initialDelayMs, DEFAULT_BACKOFF.initialDelayMs, 0),
    maxDelayMs: int('reconnect.maxDelayMs', options.reconnect?.maxDelayMs, DEFAULT_BACKOFF.maxDelayMs, 0),
    multiplier: options.reconnect?.multiplier ?? DEFAULT_BACKOFF.multiplier,
  };
  if (!(backoff.multiplier >= 1)) problems.push('reconnect.multiplier must be at least 1');
  if (backoff.maxDelayMs < backoff.initialDelayMs) problems.push('reconnect.maxDelayMs must be at least reconnect.initialDelayMs');
  const maxReconnectAttempts = options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY;
  if (!(maxReconnectAttempts >= 1)) problems.push('reconnect.maxAttempts must be at least 1');
  if (options.spool) {
    if (typeof options.spool.path !== 'string' || options.spool.path.length === 0) problems.push('spool.path must be a file path');
    if (options.spool.fsync !== undefined && !['always', 'interval', 'never'].includes(options.spool.fsync)) problems.push("spool.fsync must be 'always', 'interval' or 'never'");
    int('spool.fsyncIntervalMs', options.spool.fsyncIntervalMs, 100, 1);
    int('spool.compactMinBytes', options.spool.compactMinBytes, 0, 0);
  }
  if (problems.length > 0) throw new ClientOptionsError(problems);
  return {
    sourceId,
    maxWindowEvents,
    maxBatchEvents,
    lingerMs,
    backoff,
    maxReconnectAttempts,
    spool: options.spool,
    closeTimeoutMs,
    metadata: options.metadata,
    signal: options.signal,
    onEventRejected: options.onEventRejected,
    onWarning: options.onWarning,
  };
}

/** grpc-js channel options for the client. */
export function channelOptionsFor(options: OrderFlowClientOptions): ChannelOptions {
  const problems: string[] = [];
  if (typeof options.address !== 'string' || options.address.length === 0) problems.push('address must be host:port');
  for (const key of ['defaultDeadlineMs', 'keepaliveTimeMs', 'keepaliveTimeoutMs', 'maxChannelBackoffMs', 'maxReceiveMessageBytes'] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) problems.push(`${key} must be a non-negative integer`);
  }
  if (problems.length > 0) throw new ClientOptionsError(problems);
  const keepaliveTimeMs = options.keepaliveTimeMs ?? 30_000;
  const maxBackoffMs = options.maxChannelBackoffMs ?? 5_000;
  return {
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 16 * 1024 * 1024,
    ...(keepaliveTimeMs > 0 ? { 'grpc.keepalive_time_ms': keepaliveTimeMs, 'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 10_000 } : {}),
    'grpc.initial_reconnect_backoff_ms': Math.min(100, maxBackoffMs),
    'grpc.max_reconnect_backoff_ms': maxBackoffMs,
    ...options.channelOptions,
  };
}
