/**
 * The ingest event shapes the pipeline works on. They match what
 * proto-loader yields for `orderflow.v1.Event` with our loader options
 * (snake_case, enums as numbers, 64-bit integers as decimal strings), so
 * either decoder can feed the pipeline.
 */

/** An order lifecycle event as received. */
export interface OrderEventInput {
  order_id: string;
  account_id: string;
  symbol: string;
  side: number;
  order_type: number;
  event_type: number;
  price: string;
  qty: string;
  time_in_force: number;
  /** int64 as a decimal string (may be negative on the wire; validation rejects that). */
  ts_ns: string;
  client_order_id: string;
}

/** A fill as received. */
export interface FillInput {
  fill_id: string;
  order_id: string;
  account_id: string;
  symbol: string;
  side: number;
  price: string;
  qty: string;
  ts_ns: string;
  fee: string;
  venue: string;
}

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
  fill?: FillInput | null;
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
