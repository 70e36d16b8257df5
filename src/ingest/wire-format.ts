import { splitUint64 } from '../db/copy/uint64';
import { WireFill, WireOrderEvent, type EventBatchInput, type EventInput, type FillInput, type IngestRequestInput, type OrderEventInput } from './event';
import { isPlainValidFill, isPlainValidOrderEvent } from './validate';

/**
 * A hand-written protobuf codec for the Ingest request messages.
 *
 * Why not proto-loader's deserializer: it decodes into protobufjs objects,
 * converts them again with toObject, and turns every 64-bit integer into a
 * Long and then a string; measured at ~13 µs per event, that alone would cap
 * ingest below 80k events/s per core. This decoder reads the wire format
 * directly into plain objects (~1 µs per event) and records where each
 * event's bytes are, so a rejected event is quarantined with the exact bytes
 * the client sent. Semantics follow the protobuf spec: unknown fields are
 * skipped, the last value of a scalar wins, a repeated embedded message is
 * merged, and the last member of a oneof wins.
 */

/** The bytes are not a well-formed protobuf message of the expected type. */
export class WireFormatError extends Error {
  constructor(detail: string) {
    super(`Malformed IngestRequest: ${detail}`);
    this.name = 'WireFormatError';
  }
}

interface FastSlices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Cursor over one message; `lo`/`hi` hold the last varint read. */
class Reader {
  pos: number;
  lo = 0;
  hi = 0;

  constructor(
    readonly buf: Buffer,
    start: number,
    /** End of the message being read; narrowed while reading a nested message. */
    public end: number,
  ) {
    this.pos = start;
  }

  /** Reads a varint into lo/hi (unsigned 32-bit halves). */
  varint(): void {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let b: number;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= this.end) throw new WireFormatError('truncated varint');
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    if (pos >= this.end) throw new WireFormatError('truncated varint');
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    let hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (let shift = 3; ; shift += 7) {
        if (shift > 31) throw new WireFormatError('varint longer than 10 bytes');
        if (pos >= this.end) throw new WireFormatError('truncated varint');
        b = buf[pos++]!;
        if (shift < 32) hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint that must fit a length or tag. */
  uint32(): number {
    this.varint();
    if (this.hi !== 0) throw new WireFormatError('length or tag out of range');
    return this.lo;
  }

  /** Reads a length prefix and returns the end of the delimited bytes. */
  delimitedEnd(): number {
    const length = this.uint32();
    const end = this.pos + length;
    if (end > this.end) throw new WireFormatError('length past the end of the message');
    return end;
  }

  string(): string {
    const end = this.delimitedEnd();
    const start = this.pos;
    this.pos = end;
    return decodeUtf8(this.buf, start, end);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.pos = this.delimitedEnd();
        return;
      case WIRE_I32:
        this.pos += 4;
        break;
      default:
        throw new WireFormatError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new WireFormatError('truncated fixed-width field');
  }
}

/**
 * Appended to a string whose bytes were not valid UTF-8: a lone surrogate,
 * which validation rejects, so the event is quarantined with its true bytes
 * instead of being stored with U+FFFD in place of what the client sent.
 */
export const INVALID_UTF8_MARK = '\udfff';

function decodeUtf8(buf: Buffer, start: number, end: number): string {
  if (start === end) return '';
  // Pure ASCII (the common case for ids and decimals) takes V8's one-byte
  // string path; anything else is decoded as UTF-8.
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) {
      const text = (buf as unknown as FastSlices).utf8Slice(start, end);
      // Invalid bytes decode to U+FFFD; only then is the (rare) exact check needed.
      if (text.includes('\ufffd') && !Buffer.from(text, 'utf8').equals(buf.subarray(start, end))) return text + INVALID_UTF8_MARK;
      return text;
    }
  }
  return (buf as unknown as FastSlices).latin1Slice(start, end);
}

function pad7(value: number): string {
  const s = String(value);
  return '0000000'.slice(s.length) + s;
}

/** Exact decimal string of the unsigned 64-bit value hi·2³² + lo, without BigInt. */
export function uint64ToString(lo: number, hi: number): string {
  const { high, low } = splitUint64(lo, hi);
  return low < 0 ? String(high) : String(high) + pad7(low);
}

/** Exact decimal string of the two's-complement signed 64-bit value hi·2³² + lo. */
export function int64ToString(lo: number, hi: number): string {
  if ((hi & 0x8000_0000) === 0) return uint64ToString(lo, hi);
  const negLo = (~lo + 1) >>> 0;
  const negHi = (~hi + (negLo === 0 ? 1 : 0)) >>> 0;
  return `-${uint64ToString(negLo, negHi)}`;
}

function newOrder(): OrderEventInput {
  return { order_id: '', account_id: '', symbol: '', side: 0, order_type: 0, event_type: 0, price: '', qty: '', time_in_force: 0, ts_ns: '0', client_order_id: '' };
}

function newFill(): FillInput {
  return { fill_id: '', order_id: '', account_id: '', symbol: '', side: 0, price: '', qty: '', ts_ns: '0', fee: '', venue: '' };
}

function decodeOrder(r: Reader, end: number, o: OrderEventInput): void {
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === WIRE_LEN) {
      switch (field) {
        case 1: o.order_id = r.string(); continue;
        case 2: o.account_id = r.string(); continue;
        case 3: o.symbol = r.string(); continue;
        case 7: o.price = r.string(); continue;
        case 8: o.qty = r.string(); continue;
        case 11: o.client_order_id = r.string(); continue;
      }
    } else if (wire === WIRE_VARINT) {
      switch (field) {
        case 4: r.varint(); o.side = r.lo | 0; continue;
        case 5: r.varint(); o.order_type = r.lo | 0; continue;
        case 6: r.varint(); o.event_type = r.lo | 0; continue;
        case 9: r.varint(); o.time_in_force = r.lo | 0; continue;
        case 10: r.varint(); o.ts_ns = int64ToString(r.lo, r.hi); continue;
      }
    }
    r.skip(wire);
  }
  r.end = outerEnd;
}

function decodeFill(r: Reader, end: number, f: FillInput): void {
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === WIRE_LEN) {
      switch (field) {
        case 1: f.fill_id = r.string(); continue;
        case 2: f.order_id = r.string(); continue;
        case 3: f.account_id = r.string(); continue;
        case 4: f.symbol = r.string(); continue;
        case 6: f.price = r.string(); continue;
        case 7: f.qty = r.string(); continue;
        case 9: f.fee = r.string(); continue;
        case 10: f.venue = r.string(); continue;
      }
    } else if (wire === WIRE_VARINT) {
      switch (field) {
        case 5: r.varint(); f.side = r.lo | 0; continue;
        case 8: r.varint(); f.ts_ns = int64ToString(r.lo, r.hi); continue;
      }
    }
    r.skip(wire);
  }
  r.end = outerEnd;
}

/**
 * Reads a fill's fields as byte ranges, with decodeFill's semantics (last
 * value wins, unknown fields skipped, the same WireFormatErrors). Returns
 * the WireFill when the fill is plain and valid, else undefined.
 */
function scanFill(r: Reader, end: number): WireFill | undefined {
  const w = new WireFill(r.buf, r.pos, end);
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === WIRE_LEN) {
      // delimitedEnd() leaves pos at the field's first byte.
      switch (field) {
        case 1: w.fillIdEnd = r.delimitedEnd(); w.fillIdStart = r.pos; r.pos = w.fillIdEnd; continue;
        case 2: w.orderIdEnd = r.delimitedEnd(); w.orderIdStart = r.pos; r.pos = w.orderIdEnd; continue;
        case 3: w.accountIdEnd = r.delimitedEnd(); w.accountIdStart = r.pos; r.pos = w.accountIdEnd; continue;
        case 4: w.symbolEnd = r.delimitedEnd(); w.symbolStart = r.pos; r.pos = w.symbolEnd; continue;
        case 6: w.priceEnd = r.delimitedEnd(); w.priceStart = r.pos; r.pos = w.priceEnd; continue;
        case 7: w.qtyEnd = r.delimitedEnd(); w.qtyStart = r.pos; r.pos = w.qtyEnd; continue;
        case 9: w.feeEnd = r.delimitedEnd(); w.feeStart = r.pos; r.pos = w.feeEnd; continue;
        case 10: w.venueEnd = r.delimitedEnd(); w.venueStart = r.pos; r.pos = w.venueEnd; continue;
      }
    } else if (wire === WIRE_VARINT) {
      switch (field) {
        case 5: r.varint(); w.side = r.lo | 0; continue;
        case 8: r.varint(); w.tsLo = r.lo; w.tsHi = r.hi; continue;
      }
    }
    r.skip(wire);
  }
  r.end = outerEnd;
  return isPlainValidFill(w) ? w : undefined;
}

/** scanFill for an order event (decodeOrder's semantics). */
function scanOrder(r: Reader, end: number): WireOrderEvent | undefined {
  const w = new WireOrderEvent(r.buf, r.pos, end);
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === WIRE_LEN) {
      switch (field) {
        case 1: w.orderIdEnd = r.delimitedEnd(); w.orderIdStart = r.pos; r.pos = w.orderIdEnd; continue;
        case 2: w.accountIdEnd = r.delimitedEnd(); w.accountIdStart = r.pos; r.pos = w.accountIdEnd; continue;
        case 3: w.symbolEnd = r.delimitedEnd(); w.symbolStart = r.pos; r.pos = w.symbolEnd; continue;
        case 7: w.priceEnd = r.delimitedEnd(); w.priceStart = r.pos; r.pos = w.priceEnd; continue;
        case 8: w.qtyEnd = r.delimitedEnd(); w.qtyStart = r.pos; r.pos = w.qtyEnd; continue;
        case 11: w.clientOrderIdEnd = r.delimitedEnd(); w.clientOrderIdStart = r.pos; r.pos = w.clientOrderIdEnd; continue;
      }
    } else if (wire === WIRE_VARINT) {
      switch (field) {
        case 4: r.varint(); w.side = r.lo | 0; continue;
        case 5: r.varint(); w.orderType = r.lo | 0; continue;
        case 6: r.varint(); w.eventType = r.lo | 0; continue;
        case 9: r.varint(); w.timeInForce = r.lo | 0; continue;
        case 10: r.varint(); w.tsLo = r.lo; w.tsHi = r.hi; continue;
      }
    }
    r.skip(wire);
  }
  r.end = outerEnd;
  return isPlainValidOrderEvent(w) ? w : undefined;
}

/** Decodes an order event the wire decoder left in its bytes. */
export function decodeWireOrder(w: WireOrderEvent): OrderEventInput {
  const order = newOrder();
  decodeOrder(new Reader(w.buf, w.start, w.end), w.end, order);
  return order;
}

/** Decodes a fill the wire decoder left in its bytes. */
export function decodeWireFill(w: WireFill): FillInput {
  const fill = newFill();
  decodeFill(new Reader(w.buf, w.start, w.end), w.end, fill);
  return fill;
}

function decodeEvent(r: Reader, end: number, plainEventsAsBytes: boolean): EventInput {
  const start = r.pos;
  const outerEnd = r.end;
  r.end = end;
  const ev: EventInput = { seq: '0', payload: undefined, order: null, wireOrder: null, fill: null, wireFill: null, raw: { buffer: r.buf, start, end } };
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_VARINT) {
      r.varint();
      ev.seq = uint64ToString(r.lo, r.hi);
    } else if (field === 2 && wire === WIRE_LEN) {
      const subEnd = r.delimitedEnd();
      if (plainEventsAsBytes && ev.payload !== 'order') {
        const subStart = r.pos;
        const wireOrder = scanOrder(r, subEnd);
        if (wireOrder) {
          ev.payload = 'order';
          ev.wireOrder = wireOrder;
          ev.fill = null;
          ev.wireFill = null;
          continue;
        }
        r.pos = subStart;
      }
      // A second order message merges into the first, as for fills below.
      let order = newOrder();
      if (ev.payload === 'order') order = ev.wireOrder ? decodeWireOrder(ev.wireOrder) : ev.order!;
      decodeOrder(r, subEnd, order);
      ev.payload = 'order';
      ev.order = order;
      ev.wireOrder = null;
      ev.fill = null;
      ev.wireFill = null;
    } else if (field === 3 && wire === WIRE_LEN) {
      const subEnd = r.delimitedEnd();
      if (plainEventsAsBytes && ev.payload !== 'fill') {
        const subStart = r.pos;
        const wireFill = scanFill(r, subEnd);
        if (wireFill) {
          ev.payload = 'fill';
          ev.wireFill = wireFill;
          ev.order = null;
          ev.wireOrder = null;
          continue;
        }
        r.pos = subStart;
      }
      // A second fill message merges into the first (protobuf semantics), so a fill left in its bytes is decoded first.
      let fill = newFill();
      if (ev.payload === 'fill') fill = ev.wireFill ? decodeWireFill(ev.wireFill) : ev.fill!;
      decodeFill(r, subEnd, fill);
      ev.payload = 'fill';
      ev.fill = fill;
      ev.wireFill = null;
      ev.order = null;
      ev.wireOrder = null;
    } else {
      r.skip(wire);
    }
  }
  r.end = outerEnd;
  return ev;
}

function decodeBatch(r: Reader, end: number, batch: EventBatchInput, plainEventsAsBytes: boolean): void {
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const eventEnd = r.delimitedEnd();
      batch.events.push(decodeEvent(r, eventEnd, plainEventsAsBytes));
    } else {
      r.skip(tag & 7);
    }
  }
  r.end = outerEnd;
}

/** Options of decodeIngestRequest. */
export interface DecodeOptions {
  /**
   * Leave plain valid fills and order events in their bytes
   * (EventInput.wireFill, wireOrder) instead of decoding them to strings.
   * The Ingest RPC does: building, checking and re-encoding ten strings per
   * fill was a third of the service's CPU per event (issue #9). Default false.
   */
  plainEventsAsBytes?: boolean;
}

/**
 * Decodes one `orderflow.v1.IngestRequest`. Throws WireFormatError on
 * malformed bytes, also inside an event left in its bytes: the whole message
 * is read before any event is used (the Ingest stream then ends with
 * INVALID_ARGUMENT).
 */
export function decodeIngestRequest(buf: Buffer, options?: DecodeOptions): IngestRequestInput {
  const plainEventsAsBytes = options?.plainEventsAsBytes === true;
  const r = new Reader(buf, 0, buf.length);
  const msg: IngestRequestInput = { msg: undefined, hello: null, batch: null };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_LEN) {
      const end = r.delimitedEnd();
      const hello = msg.msg === 'hello' && msg.hello ? msg.hello : { source_id: '' };
      const sub = new Reader(buf, r.pos, end);
      while (sub.pos < end) {
        const t = sub.uint32();
        if (t === ((1 << 3) | WIRE_LEN)) hello.source_id = sub.string();
        else sub.skip(t & 7);
      }
      r.pos = end;
      msg.msg = 'hello';
      msg.hello = hello;
      msg.batch = null;
    } else if (field === 2 && wire === WIRE_LEN) {
      const end = r.delimitedEnd();
      const batch = msg.msg === 'batch' && msg.batch ? msg.batch : { events: [] };
      decodeBatch(r, end, batch, plainEventsAsBytes);
      msg.msg = 'batch';
      msg.batch = batch;
      msg.hello = null;
    } else {
      r.skip(wire);
    }
  }
  return msg;
}

// ---------------------------------------------------------------------------
// Encoding: used to rebuild the bytes of an event whose original bytes are
// gone (a row the database refused), and by clients that pre-encode batches.

class Writer {
  private parts: Buffer[] = [];
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length > 0) {
      this.parts.push(Buffer.from(this.scratch));
      this.scratch = [];
    }
  }

  varintBig(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  tag(field: number, wire: number): void {
    this.varintBig(BigInt((field << 3) | wire));
  }

  bytes(field: number, value: Buffer): void {
    this.tag(field, WIRE_LEN);
    this.varintBig(BigInt(value.length));
    this.flushScratch();
    this.parts.push(value);
  }

  string(field: number, value: string): void {
    if (value !== '') this.bytes(field, Buffer.from(value, 'utf8'));
  }

  enumValue(field: number, value: number): void {
    if (value !== 0) {
      this.tag(field, WIRE_VARINT);
      this.varintBig(BigInt(value));
    }
  }

  int64(field: number, value: string): void {
    if (value !== '' && value !== '0') {
      this.tag(field, WIRE_VARINT);
      this.varintBig(BigInt(value));
    }
  }

  finish(): Buffer {
    this.flushScratch();
    return Buffer.concat(this.parts);
  }
}

function encodeOrder(o: OrderEventInput): Buffer {
  const w = new Writer();
  w.string(1, o.order_id);
  w.string(2, o.account_id);
  w.string(3, o.symbol);
  w.enumValue(4, o.side);
  w.enumValue(5, o.order_type);
  w.enumValue(6, o.event_type);
  w.string(7, o.price);
  w.string(8, o.qty);
  w.enumValue(9, o.time_in_force);
  w.int64(10, o.ts_ns);
  w.string(11, o.client_order_id);
  return w.finish();
}

function encodeFill(f: FillInput): Buffer {
  const w = new Writer();
  w.string(1, f.fill_id);
  w.string(2, f.order_id);
  w.string(3, f.account_id);
  w.string(4, f.symbol);
  w.enumValue(5, f.side);
  w.string(6, f.price);
  w.string(7, f.qty);
  w.int64(8, f.ts_ns);
  w.string(9, f.fee);
  w.string(10, f.venue);
  return w.finish();
}

/** Encodes one `orderflow.v1.Event` (proto3: default values are omitted). */
export function encodeEvent(ev: EventInput): Buffer {
  const w = new Writer();
  w.int64(1, ev.seq);
  if (ev.payload === 'order' && ev.order) w.bytes(2, encodeOrder(ev.order));
  else if (ev.payload === 'order' && ev.wireOrder) w.bytes(2, encodeOrder(decodeWireOrder(ev.wireOrder)));
  else if (ev.payload === 'fill' && ev.fill) w.bytes(3, encodeFill(ev.fill));
  else if (ev.payload === 'fill' && ev.wireFill) w.bytes(3, encodeFill(decodeWireFill(ev.wireFill)));
  return w.finish();
}

/** Encodes `IngestRequest{batch: EventBatch{events}}`; lets benchmarks pre-encode their load. */
export function encodeIngestBatch(events: readonly EventInput[]): Buffer {
  const inner = new Writer();
  for (const ev of events) inner.bytes(1, encodeEvent(ev));
  const outer = new Writer();
  outer.bytes(2, inner.finish());
  return outer.finish();
}

/** Encodes `IngestRequest{hello: Hello{source_id}}`. */
export function encodeIngestHello(sourceId: string): Buffer {
  const inner = new Writer();
  inner.string(1, sourceId);
  const outer = new Writer();
  outer.bytes(1, inner.finish());
  return outer.finish();
}

/** The bytes of an event as received, or re-encoded when they are not at hand. */
export function rawEventBytes(ev: EventInput): Buffer {
  if (ev.raw) return Buffer.from(ev.raw.buffer.subarray(ev.raw.start, ev.raw.end));
  return encodeEvent(ev);
}
