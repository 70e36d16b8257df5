import { decodeCopyTextRow } from '../db/copy/encoder';
import type { CopyRowSet } from '../db/copy/loader';
import { copyChunks } from '../db/copy/loader';
import type { CopySink } from '../db/types';

/**
 * The append-only event tables, written only by COPY. Row layout and COPY
 * statements live together here so they cannot drift apart.
 */

/** Fields of an order event as stored (enums are proto numbers, 64-bit values decimal strings). */
export interface OrderEventFields {
  order_id: string;
  account_id: string;
  symbol: string;
  side: number;
  order_type: number;
  event_type: number;
  /** Empty means none (market orders): stored as NULL. */
  price: string;
  qty: string;
  time_in_force: number;
  ts_ns: string;
  client_order_id: string;
}

/** Fields of a fill as stored. */
export interface FillFields {
  fill_id: string;
  order_id: string;
  account_id: string;
  symbol: string;
  side: number;
  price: string;
  qty: string;
  ts_ns: string;
  /** Empty means none: stored as NULL. */
  fee: string;
  venue: string;
}

/**
 * A fill left in the bytes it arrived in: where each field's bytes are in
 * `buf`, and the scalars. The wire decoder leaves a fill like this only when
 * it is valid and plain: every text field printable ASCII without a
 * backslash, so its bytes are its UTF-8 and its COPY text (ingest/validate.ts
 * isPlainValidFill). The pipeline copies those bytes straight into the COPY
 * row (encodeWireFillRow) instead of building ten strings.
 * An absent field has start === end.
 */
export class WireFill {
  fillIdStart = 0;
  fillIdEnd = 0;
  orderIdStart = 0;
  orderIdEnd = 0;
  accountIdStart = 0;
  accountIdEnd = 0;
  symbolStart = 0;
  symbolEnd = 0;
  priceStart = 0;
  priceEnd = 0;
  qtyStart = 0;
  qtyEnd = 0;
  feeStart = 0;
  feeEnd = 0;
  venueStart = 0;
  venueEnd = 0;
  side = 0;
  /** ts_ns as unsigned 32-bit halves. */
  tsLo = 0;
  tsHi = 0;

  constructor(
    /** The whole received message; never written to. */
    readonly buf: Buffer,
    /** The fill message's own bytes (for decoding it after all). */
    readonly start: number,
    readonly end: number,
  ) {}
}

/** An order event left in the bytes it arrived in, as WireFill is for a fill (ingest/validate.ts isPlainValidOrderEvent). */
export class WireOrderEvent {
  orderIdStart = 0;
  orderIdEnd = 0;
  accountIdStart = 0;
  accountIdEnd = 0;
  symbolStart = 0;
  symbolEnd = 0;
  priceStart = 0;
  priceEnd = 0;
  qtyStart = 0;
  qtyEnd = 0;
  clientOrderIdStart = 0;
  clientOrderIdEnd = 0;
  side = 0;
  orderType = 0;
  eventType = 0;
  timeInForce = 0;
  /** ts_ns as unsigned 32-bit halves. */
  tsLo = 0;
  tsHi = 0;

  constructor(
    /** The whole received message; never written to. */
    readonly buf: Buffer,
    /** The order message's own bytes (for decoding it after all). */
    readonly start: number,
    readonly end: number,
  ) {}
}

/** The event tables COPY writes. */
export type EventTable = 'order_events' | 'fills';

// ENCODING 'UTF8' makes the server read our bytes as UTF-8 whatever the session's client_encoding.
const COPY_ORDER_EVENTS_SQL =
  "COPY order_events (source_id, seq, order_id, account_id, symbol, side, order_type, event_type, price, qty, time_in_force, ts_ns, client_order_id) FROM STDIN WITH (FORMAT text, ENCODING 'UTF8')";
const COPY_FILLS_SQL =
  "COPY fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns, fee, venue) FROM STDIN WITH (FORMAT text, ENCODING 'UTF8')";

/**
 * Encodes one order_events row. `sourceIdField` is the source id already
 * encoded as a COPY field (once per stream, not once per row).
 */
export function encodeOrderEventRow(rows: CopyRowSet, sourceIdField: Buffer, seq: string, o: OrderEventFields): void {
  const e = rows.encoder;
  e.preEncoded(sourceIdField);
  e.text(seq);
  e.text(o.order_id);
  e.text(o.account_id);
  e.text(o.symbol);
  e.int(o.side);
  e.int(o.order_type);
  e.int(o.event_type);
  e.textOrNull(o.price);
  e.text(o.qty);
  e.int(o.time_in_force);
  e.text(o.ts_ns);
  e.text(o.client_order_id);
  rows.endRow();
}

/** Encodes one order_events row straight from a plain order event's protobuf bytes (see encodeWireFillRow). */
export function encodeWireOrderEventRow(rows: CopyRowSet, sourceIdField: Buffer, seq: string, w: WireOrderEvent): void {
  const e = rows.encoder;
  const b = w.buf;
  e.preEncoded(sourceIdField);
  e.text(seq);
  e.plainAscii(b, w.orderIdStart, w.orderIdEnd);
  e.plainAscii(b, w.accountIdStart, w.accountIdEnd);
  e.plainAscii(b, w.symbolStart, w.symbolEnd);
  e.int(w.side);
  e.int(w.orderType);
  e.int(w.eventType);
  e.plainAsciiOrNull(b, w.priceStart, w.priceEnd);
  e.plainAscii(b, w.qtyStart, w.qtyEnd);
  e.int(w.timeInForce);
  e.uint64(w.tsLo, w.tsHi);
  e.plainAscii(b, w.clientOrderIdStart, w.clientOrderIdEnd);
  rows.endRow();
}

/**
 * Encodes one fills row straight from a plain fill's protobuf bytes
 * (WireFill): the same bytes encodeFillRow writes for the
 * decoded fill, without its strings.
 */
export function encodeWireFillRow(rows: CopyRowSet, sourceIdField: Buffer, seq: string, w: WireFill): void {
  const e = rows.encoder;
  const b = w.buf;
  e.preEncoded(sourceIdField);
  e.text(seq);
  e.plainAscii(b, w.fillIdStart, w.fillIdEnd);
  e.plainAscii(b, w.orderIdStart, w.orderIdEnd);
  e.plainAscii(b, w.accountIdStart, w.accountIdEnd);
  e.plainAscii(b, w.symbolStart, w.symbolEnd);
  e.int(w.side);
  e.plainAscii(b, w.priceStart, w.priceEnd);
  e.plainAscii(b, w.qtyStart, w.qtyEnd);
  e.uint64(w.tsLo, w.tsHi);
  e.plainAsciiOrNull(b, w.feeStart, w.feeEnd);
  e.plainAscii(b, w.venueStart, w.venueEnd);
  rows.endRow();
}

/** Encodes one fills row (see encodeOrderEventRow). */
export function encodeFillRow(rows: CopyRowSet, sourceIdField: Buffer, seq: string, f: FillFields): void {
  const e = rows.encoder;
  e.preEncoded(sourceIdField);
  e.text(seq);
  e.text(f.fill_id);
  e.text(f.order_id);
  e.text(f.account_id);
  e.text(f.symbol);
  e.int(f.side);
  e.text(f.price);
  e.text(f.qty);
  e.text(f.ts_ns);
  e.textOrNull(f.fee);
  e.text(f.venue);
  rows.endRow();
}

/** A decoded event row: its source, seq and fields. */
export type DecodedRow = { sourceId: string; seq: string } & ({ table: 'order_events'; order: OrderEventFields } | { table: 'fills'; fill: FillFields });

/** Decodes a row written by encodeOrderEventRow / encodeFillRow (to rebuild a refused event). */
export function decodeEventRow(table: EventTable, row: Buffer): DecodedRow {
  const f = decodeCopyTextRow(row);
  const s = (i: number) => f[i] ?? '';
  if (table === 'order_events') {
    return {
      table,
      sourceId: s(0),
      seq: s(1),
      order: {
        order_id: s(2),
        account_id: s(3),
        symbol: s(4),
        side: Number(s(5)),
        order_type: Number(s(6)),
        event_type: Number(s(7)),
        price: s(8),
        qty: s(9),
        time_in_force: Number(s(10)),
        ts_ns: s(11),
        client_order_id: s(12),
      },
    };
  }
  return {
    table,
    sourceId: s(0),
    seq: s(1),
    fill: { fill_id: s(2), order_id: s(3), account_id: s(4), symbol: s(5), side: Number(s(6)), price: s(7), qty: s(8), ts_ns: s(9), fee: s(10), venue: s(11) },
  };
}

/** The seq of an encoded row (second field), without decoding the rest. */
export function seqOfRow(row: Buffer): string {
  const first = row.indexOf(0x09);
  const second = row.indexOf(0x09, first + 1);
  return row.toString('latin1', first + 1, second < 0 ? row.length : second);
}

/** COPYs `chunks` (encoded rows) into `table`; resolves with the row count. */
export function copyEventRows(sink: CopySink, table: EventTable, chunks: readonly Buffer[]): Promise<number> {
  const sql = table === 'order_events' ? COPY_ORDER_EVENTS_SQL : COPY_FILLS_SQL;
  return copyChunks(sink, { op: `${table}.copy`, table }, sql, chunks);
}
