import type { MessageTypeDefinition } from '@grpc/proto-loader';
import type { Event, Event__Output } from '../generated/orderflow/v1/Event';
import { loadOrderflowProto, orderFlowServiceDefinition } from '../rpc/proto';
import type { WireEvent } from './events';

/**
 * Protobuf framing of Ingest requests from pre-encoded events.
 *
 * Each event is encoded once, when `send` takes it; the window, the spool and
 * every (re)send then share those bytes, and a batch is plain concatenation:
 *
 *   IngestRequest = 0x12 varint(len) EventBatch      (field 2, length-delimited)
 *   EventBatch    = ( 0x0A varint(len) Event )*      (field 1, repeated)
 *
 * The event bytes come from proto-loader's own `Event` serializer (same
 * loader options as everywhere), so they are exactly what the stub would send.
 */
const TAG_BATCH = 0x12;
const TAG_EVENT = 0x0a;
const TAG_HELLO = 0x0a;

// proto-loader 0.8 gives every message type a serializer with the loader's options.
function eventType(): MessageTypeDefinition<Event, Event__Output> {
  return loadOrderflowProto().packageDefinition['orderflow.v1.Event'] as MessageTypeDefinition<Event, Event__Output>;
}

/** Encodes one event to its `Event` message bytes. */
export function encodeEvent(event: WireEvent): Buffer {
  return eventType().serialize(event);
}

/** Frames pre-encoded events as one `IngestRequest{batch}` message. */
export function encodeBatch(events: readonly Buffer[]): Buffer {
  let inner = 0;
  for (const e of events) inner += 1 + varintLength(e.length) + e.length;
  const out = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
  let offset = 0;
  out[offset++] = TAG_BATCH;
  offset = writeVarint(out, offset, inner);
  for (const e of events) {
    out[offset++] = TAG_EVENT;
    offset = writeVarint(out, offset, e.length);
    offset += e.copy(out, offset);
  }
  return out;
}

/** Encodes `IngestRequest{hello{source_id}}`. */
export function encodeHello(sourceId: string): Buffer {
  const request = orderFlowServiceDefinition().Ingest.requestSerialize({ hello: { source_id: sourceId } });
  if (request[0] !== TAG_HELLO) throw new Error('unexpected Hello encoding');
  return request;
}

/** Decodes `Event` message bytes (defaults filled in, uint64/int64 as strings). */
export function decodeEvent(bytes: Buffer): Event__Output {
  return eventType().deserialize(bytes);
}

/** Bytes of `value` (a non-negative safe integer) as a protobuf varint. */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/** Writes `value` (a non-negative safe integer) as a protobuf varint at `offset`; returns the offset after it. */
export function writeVarint(buffer: Buffer, offset: number, value: number): number {
  while (value >= 0x80) {
    buffer[offset++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  buffer[offset++] = value;
  return offset;
}
