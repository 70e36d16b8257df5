import type { FillFields, OrderEventFields, WireFill, WireOrderEvent } from '../store/events';

export { WireFill, WireOrderEvent } from '../store/events';

/**
 * The ingest event shapes the pipeline works on. They match what
 * proto-loader yields for `orderflow.v1.Event` with our loader options
 * (snake_case, enums as numbers, 64-bit integers as decimal strings), so
 * either decoder can feed the pipeline.
 */

/**
 * An order lifecycle event as received: the stored row's fields (one shape, so
 * the two cannot drift). `ts_ns` may be negative on the wire; validation rejects that.
 */
export type OrderEventInput = OrderEventFields;

/** A fill as received: the stored row's fields. */
export type FillInput = FillFields;

/** Where an event's protobuf bytes sit in the message it arrived in (for quarantine). */
export interface RawLocation {
  /** The whole received message; never written to. */
  buffer: Buffer;
  start: number;
  end: number;
}

/** One event as received. */
export interface EventInput {
  /** uint64 as a canonical decimal string ("0" when absent). */
  seq: string;
  payload?: 'order' | 'fill';
  order?: OrderEventInput | null;
  /** Instead of `order`, when the wire decoder left a plain valid order event in its bytes. */
  wireOrder?: WireOrderEvent | null;
  fill?: FillInput | null;
  /** Instead of `fill`, when the wire decoder left a plain valid fill in its bytes. */
  wireFill?: WireFill | null;
  /** Set by the wire decoder; absent when the event came from another decoder. */
  raw?: RawLocation;
}

/** A batch of events as received. */
export interface EventBatchInput {
  events: EventInput[];
}

/** One client message of the Ingest stream. */
export interface IngestRequestInput {
  msg?: 'hello' | 'batch';
  hello?: { source_id: string } | null;
  batch?: EventBatchInput | null;
}
