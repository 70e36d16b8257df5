import type { Fill } from '../generated/orderflow/v1/Fill';
import type { OrderEvent } from '../generated/orderflow/v1/OrderEvent';
import { InvalidEventError } from './errors';

/** Nanoseconds since the epoch: a decimal string or a bigint, never a JS number (it would lose digits). */
export type TimestampNs = string | bigint;

/** A fill to ingest. Decimals are strings (`"101.25"`), enums are the proto numbers (`Side.SIDE_BUY`). */
export type FillInput = Omit<Fill, 'ts_ns'> & { ts_ns?: TimestampNs };

/** An order lifecycle event to ingest. */
export type OrderEventInput = Omit<OrderEvent, 'ts_ns'> & { ts_ns?: TimestampNs };

/**
 * One event for `IngestProducer.send`: exactly one of `fill` or `order`.
 * `seq` is optional: omitted, the producer assigns the next one; given, it
 * must be above every seq sent before (gaps allowed).
 */
export type IngestEventInput = { seq?: bigint | string; fill: FillInput; order?: undefined } | { seq?: bigint | string; order: OrderEventInput; fill?: undefined };

/** The event as it goes on the wire (proto-loader input shape, uint64/int64 as strings). */
export interface WireEvent {
  /** A number below 2^53 (cheaper for protobufjs than parsing a string), else a decimal string. */
  seq: number | string;
  fill?: Fill;
  order?: OrderEvent;
}

/**
 * How an event ended:
 * - `stored`: an Ack of the stream that carried it covered it, and no Reject came for it.
 * - `committed`: settled by `Welcome.last_committed_seq` after a reconnect. It is
 *   durable; if it had been quarantined, its Reject was lost with the connection.
 * - `duplicate`: the source's committed mark was already at or past its seq before
 *   this producer sent it (a replay); the server holds that seq already. Not sent.
 */
export type EventStatus = 'stored' | 'committed' | 'duplicate';

/** The resolved value of a receipt's `acked` promise. */
export interface EventOutcome {
  seq: bigint;
  status: EventStatus;
}

/** What `send` returns once the event is in the window (and in the spool, when there is one). */
export interface SendReceipt {
  /** The event's seq (assigned or the caller's). */
  seq: bigint;
  /**
   * Settles when the server's Ack (or a resume Welcome) covers the event:
   * resolves with its outcome, or rejects with EventRejectedError, FencedError,
   * ProducerClosedError or the stream's fatal OrderFlowClientError.
   */
  acked: Promise<EventOutcome>;
}

/** Parses a caller-supplied seq: a positive integer as bigint or decimal string. */
export function parseSeq(value: bigint | string | number): bigint {
  let seq: bigint;
  if (typeof value === 'bigint') seq = value;
  else if (typeof value === 'string' && /^[0-9]{1,20}$/.test(value)) seq = BigInt(value);
  else if (typeof value === 'number' && Number.isSafeInteger(value)) seq = BigInt(value);
  else throw new InvalidEventError(`seq must be a positive integer (bigint or decimal string), got ${typeof value} ${String(value)}`);
  if (seq <= 0n || seq > MAX_UINT64) throw new InvalidEventError(`seq must be between 1 and 2^64-1, got ${seq}`);
  return seq;
}

const MAX_UINT64 = (1n << 64n) - 1n;

/**
 * The caller's event in its wire shape with `seq`, to be encoded at once
 * (the encoded bytes are what the window keeps, so later changes to the
 * caller's object cannot leak into a resend). Only a bigint `ts_ns` needs a copy.
 */
export function toWireEvent(input: IngestEventInput, seq: bigint): WireEvent {
  const hasFill = input.fill !== undefined && input.fill !== null;
  const hasOrder = input.order !== undefined && input.order !== null;
  if (hasFill === hasOrder) throw new InvalidEventError(hasFill ? 'an event carries either a fill or an order, not both' : 'an event needs a fill or an order');
  if (hasFill) {
    const fill = input.fill as FillInput;
    return { seq: wireSeq(seq), fill: typeof fill.ts_ns === 'string' || fill.ts_ns === undefined ? (fill as Fill) : { ...fill, ts_ns: timestamp(fill.ts_ns) } };
  }
  const order = input.order as OrderEventInput;
  return { seq: wireSeq(seq), order: typeof order.ts_ns === 'string' || order.ts_ns === undefined ? (order as OrderEvent) : { ...order, ts_ns: timestamp(order.ts_ns) } };
}

function timestamp(value: TimestampNs | number | undefined): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  // A number cannot hold a nanosecond timestamp exactly; refuse rather than round.
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new InvalidEventError(`ts_ns must be a decimal string or a bigint, got ${typeof value}`);
}

function wireSeq(seq: bigint): number | string {
  return seq <= MAX_SAFE_SEQ ? Number(seq) : seq.toString();
}

const MAX_SAFE_SEQ = BigInt(Number.MAX_SAFE_INTEGER);
