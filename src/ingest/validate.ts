import { RejectCode } from '../generated/orderflow/v1/RejectCode';
import type { EventInput, FillInput, OrderEventInput, WireFill, WireOrderEvent } from './event';

/** Why an event is refused: the proto RejectCode number and a reason naming the field. */
export interface Invalid {
  code: number;
  reason: string;
}

/** Longest id (order, account, fill, client order, venue, source), in characters. */
export const MAX_ID_CHARS = 64;
/** Longest symbol, in characters. */
export const MAX_SYMBOL_CHARS = 32;
/** Most integer digits of a price, quantity or fee (leading zeros not counted). */
export const MAX_INTEGER_DIGITS = 12;
/** Most fractional digits of a price, quantity or fee. */
export const MAX_FRACTION_DIGITS = 8;

const SIDE_MAX = 2;
const ORDER_TYPE_MAX = 4;
const ORDER_EVENT_TYPE_MAX = 6;
const TIME_IN_FORCE_MAX = 4;
const ORDER_TYPE_LIMIT = 2;
const ORDER_TYPE_STOP_LIMIT = 4;

function invalid(code: number, reason: string): Invalid {
  return { code, reason };
}

/**
 * Checks an id, symbol or other text field: non-empty when `required`, at
 * most `maxChars` characters (code points), no control characters (C0, DEL,
 * C1; NUL included) and no unpaired UTF-16 surrogate, which could not be
 * stored as UTF-8 and read back unchanged (the wire decoder marks invalid
 * UTF-8 with one, see INVALID_UTF8_MARK). Everything else in Unicode is
 * allowed and stored byte for byte.
 */
export function checkText(value: string, field: string, maxChars: number, required: boolean): Invalid | undefined {
  const length = value.length;
  if (length === 0) return required ? invalid(RejectCode.REJECT_CODE_MISSING_FIELD, `${field} is required`) : undefined;
  // Each character is one or two UTF-16 units: twice the limit in units is over it for sure.
  if (length > maxChars * 2) return invalid(RejectCode.REJECT_CODE_INVALID_FIELD, `${field} is longer than ${maxChars} characters`);
  let chars = 0;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) {
      chars++;
      continue;
    }
    if (c === 0) return invalid(RejectCode.REJECT_CODE_INVALID_FIELD, `${field} contains a NUL character`);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return invalid(RejectCode.REJECT_CODE_INVALID_FIELD, `${field} contains a control character`);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < length ? value.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || next < 0xdc00 || next > 0xdfff) return invalid(RejectCode.REJECT_CODE_INVALID_FIELD, `${field} is not valid UTF-8 / Unicode`);
      i++;
    }
    chars++;
  }
  if (chars > maxChars) return invalid(RejectCode.REJECT_CODE_INVALID_FIELD, `${field} is longer than ${maxChars} characters`);
  return undefined;
}

function malformed(field: string): Invalid {
  return invalid(RejectCode.REJECT_CODE_INVALID_FIELD, `${field} is not a decimal number`);
}

/** How checkDecimal treats the sign and zero. */
export type DecimalRule = 'positive' | 'any';

/**
 * Checks a decimal string: `-?digits(.digits)?`, at most 12 integer digits
 * (leading zeros not counted) and 8 fractional digits; `positive` requires
 * a value > 0. Empty is allowed only when not `required`.
 */
export function checkDecimal(value: string, field: string, rule: DecimalRule, required: boolean): Invalid | undefined {
  const length = value.length;
  if (length === 0) return required ? invalid(RejectCode.REJECT_CODE_MISSING_FIELD, `${field} is required`) : undefined;
  let i = 0;
  let negative = false;
  if (value.charCodeAt(0) === 0x2d) {
    negative = true;
    i = 1;
  }
  let integerDigits = 0;
  let significant = false;
  let nonZero = false;
  const intStart = i;
  for (; i < length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    if (c !== 0x30) nonZero = true;
    if (significant || c !== 0x30) {
      significant = true;
      integerDigits++;
    }
  }
  if (i === intStart) return malformed(field);
  let fractionDigits = 0;
  if (i < length) {
    if (value.charCodeAt(i) !== 0x2e) return malformed(field);
    i++;
    const fracStart = i;
    for (; i < length; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return malformed(field);
      if (c !== 0x30) nonZero = true;
    }
    fractionDigits = i - fracStart;
    if (fractionDigits === 0) return malformed(field);
  }
  if (integerDigits > MAX_INTEGER_DIGITS) return invalid(RejectCode.REJECT_CODE_OUT_OF_RANGE, `${field} has more than ${MAX_INTEGER_DIGITS} integer digits`);
  if (fractionDigits > MAX_FRACTION_DIGITS) return invalid(RejectCode.REJECT_CODE_OUT_OF_RANGE, `${field} has more than ${MAX_FRACTION_DIGITS} fractional digits`);
  if (rule === 'positive' && (negative || !nonZero)) return invalid(RejectCode.REJECT_CODE_OUT_OF_RANGE, `${field} must be > 0`);
  return undefined;
}

/** Checks an int64 nanosecond timestamp (decimal string): present and > 0. */
export function checkTimestamp(value: string, field: string): Invalid | undefined {
  if (value === '0' || value === '') return invalid(RejectCode.REJECT_CODE_MISSING_FIELD, `${field} is required (nanoseconds since the epoch)`);
  if (value.charCodeAt(0) === 0x2d) return invalid(RejectCode.REJECT_CODE_OUT_OF_RANGE, `${field} must be > 0`);
  return undefined;
}

function checkEnum(value: number, field: string, max: number, typeName: string): Invalid | undefined {
  if (value >= 1 && value <= max) return undefined;
  if (value === 0) return invalid(RejectCode.REJECT_CODE_INVALID_ENUM, `${field} must be set (${typeName}_UNSPECIFIED is not allowed)`);
  return invalid(RejectCode.REJECT_CODE_INVALID_ENUM, `${field} has an unknown value ${value}`);
}

/** Validates an order event; undefined when it may be stored. */
export function validateOrderEvent(o: OrderEventInput): Invalid | undefined {
  return (
    checkText(o.order_id, 'order_id', MAX_ID_CHARS, true) ??
    checkText(o.account_id, 'account_id', MAX_ID_CHARS, true) ??
    checkText(o.symbol, 'symbol', MAX_SYMBOL_CHARS, true) ??
    checkEnum(o.side, 'side', SIDE_MAX, 'SIDE') ??
    checkEnum(o.order_type, 'order_type', ORDER_TYPE_MAX, 'ORDER_TYPE') ??
    checkEnum(o.event_type, 'event_type', ORDER_EVENT_TYPE_MAX, 'ORDER_EVENT_TYPE') ??
    checkEnum(o.time_in_force, 'time_in_force', TIME_IN_FORCE_MAX, 'TIME_IN_FORCE') ??
    // A limit price is required where the order type has one; market and stop orders may leave it empty.
    checkDecimal(o.price, 'price', 'positive', o.order_type === ORDER_TYPE_LIMIT || o.order_type === ORDER_TYPE_STOP_LIMIT) ??
    checkDecimal(o.qty, 'qty', 'positive', true) ??
    checkTimestamp(o.ts_ns, 'ts_ns') ??
    checkText(o.client_order_id, 'client_order_id', MAX_ID_CHARS, false)
  );
}

/** Validates a fill; undefined when it may be stored. */
export function validateFill(f: FillInput): Invalid | undefined {
  return (
    checkText(f.fill_id, 'fill_id', MAX_ID_CHARS, true) ??
    checkText(f.order_id, 'order_id', MAX_ID_CHARS, true) ??
    checkText(f.account_id, 'account_id', MAX_ID_CHARS, true) ??
    checkText(f.symbol, 'symbol', MAX_SYMBOL_CHARS, true) ??
    checkEnum(f.side, 'side', SIDE_MAX, 'SIDE') ??
    checkDecimal(f.price, 'price', 'positive', true) ??
    checkDecimal(f.qty, 'qty', 'positive', true) ??
    checkTimestamp(f.ts_ns, 'ts_ns') ??
    checkDecimal(f.fee, 'fee', 'any', false) ??
    checkText(f.venue, 'venue', MAX_ID_CHARS, false)
  );
}

/**
 * True when a fill still in its protobuf bytes is plain and valid: every
 * text field printable ASCII without a backslash (its bytes are then its
 * COPY text) and every rule of validateFill met. These byte-level checks
 * accept a subset of what validateFill accepts; anything else returns
 * false, is decoded to strings and takes validateFill, which names the
 * reason of a reject. A unit test holds the two to that agreement.
 */
export function isPlainValidFill(w: WireFill): boolean {
  const b = w.buf;
  return (
    isPlainText(b, w.fillIdStart, w.fillIdEnd, MAX_ID_CHARS, true) &&
    isPlainText(b, w.orderIdStart, w.orderIdEnd, MAX_ID_CHARS, true) &&
    isPlainText(b, w.accountIdStart, w.accountIdEnd, MAX_ID_CHARS, true) &&
    isPlainText(b, w.symbolStart, w.symbolEnd, MAX_SYMBOL_CHARS, true) &&
    w.side >= 1 &&
    w.side <= SIDE_MAX &&
    isPlainDecimal(b, w.priceStart, w.priceEnd, 'positive', true) &&
    isPlainDecimal(b, w.qtyStart, w.qtyEnd, 'positive', true) &&
    isPositiveInt64(w.tsLo, w.tsHi) &&
    isPlainDecimal(b, w.feeStart, w.feeEnd, 'any', false) &&
    isPlainText(b, w.venueStart, w.venueEnd, MAX_ID_CHARS, false)
  );
}

/** isPlainValidFill for an order event: the rules of validateOrderEvent, on plain bytes. */
export function isPlainValidOrderEvent(w: WireOrderEvent): boolean {
  const b = w.buf;
  return (
    isPlainText(b, w.orderIdStart, w.orderIdEnd, MAX_ID_CHARS, true) &&
    isPlainText(b, w.accountIdStart, w.accountIdEnd, MAX_ID_CHARS, true) &&
    isPlainText(b, w.symbolStart, w.symbolEnd, MAX_SYMBOL_CHARS, true) &&
    w.side >= 1 &&
    w.side <= SIDE_MAX &&
    w.orderType >= 1 &&
    w.orderType <= ORDER_TYPE_MAX &&
    w.eventType >= 1 &&
    w.eventType <= ORDER_EVENT_TYPE_MAX &&
    w.timeInForce >= 1 &&
    w.timeInForce <= TIME_IN_FORCE_MAX &&
    isPlainDecimal(b, w.priceStart, w.priceEnd, 'positive', w.orderType === ORDER_TYPE_LIMIT || w.orderType === ORDER_TYPE_STOP_LIMIT) &&
    isPlainDecimal(b, w.qtyStart, w.qtyEnd, 'positive', true) &&
    isPositiveInt64(w.tsLo, w.tsHi) &&
    isPlainText(b, w.clientOrderIdStart, w.clientOrderIdEnd, MAX_ID_CHARS, false)
  );
}

/** ts_ns > 0 as a signed 64-bit value given as unsigned 32-bit halves. */
function isPositiveInt64(lo: number, hi: number): boolean {
  return (hi & 0x8000_0000) === 0 && (lo !== 0 || hi !== 0);
}

/** checkText on bytes, for printable ASCII without a backslash only. */
function isPlainText(b: Buffer, start: number, end: number, maxChars: number, required: boolean): boolean {
  if (start === end) return !required;
  if (end - start > maxChars) return false;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c < 0x20 || c >= 0x7f || c === 0x5c) return false;
  }
  return true;
}

/** checkDecimal on bytes: true only for a value checkDecimal accepts. */
function isPlainDecimal(b: Buffer, start: number, end: number, rule: DecimalRule, required: boolean): boolean {
  if (start === end) return !required;
  let i = start;
  if (b[i] === 0x2d) {
    if (rule === 'positive') return false;
    i++;
  }
  const intStart = i;
  let nonZero = false;
  let integerDigits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) break;
    if (c !== 0x30) nonZero = true;
    // Leading zeros are not counted.
    if (nonZero) integerDigits++;
  }
  if (i === intStart || integerDigits > MAX_INTEGER_DIGITS) return false;
  if (i < end) {
    if (b[i] !== 0x2e) return false;
    const fracStart = ++i;
    for (; i < end; i++) {
      const c = b[i]!;
      if (c < 0x30 || c > 0x39) return false;
      if (c !== 0x30) nonZero = true;
    }
    const fractionDigits = i - fracStart;
    if (fractionDigits === 0 || fractionDigits > MAX_FRACTION_DIGITS) return false;
  }
  return rule !== 'positive' || nonZero;
}

/** Validates an event's payload (its seq is the sequencer's business); undefined when it may be stored. */
export function validateEvent(ev: EventInput): Invalid | undefined {
  if (ev.payload === 'order' && ev.order) return validateOrderEvent(ev.order);
  // The wire decoder leaves only plain valid order events in their bytes (isPlainValidOrderEvent).
  if (ev.payload === 'order' && ev.wireOrder) return undefined;
  if (ev.payload === 'fill' && ev.fill) return validateFill(ev.fill);
  // Likewise for fills (isPlainValidFill).
  if (ev.payload === 'fill' && ev.wireFill) return undefined;
  return invalid(RejectCode.REJECT_CODE_MISSING_PAYLOAD, 'event carries neither an order nor a fill');
}

/** Validates a Hello's source_id; returns the problem as text, or undefined. */
export function validateSourceId(sourceId: string): string | undefined {
  return checkText(sourceId, 'source_id', MAX_ID_CHARS, true)?.reason;
}

/** The proto name of a reject code number (stored in quarantine.code). */
export function rejectCodeName(code: number): string {
  for (const [name, value] of Object.entries(RejectCode)) if (value === code) return name;
  return 'REJECT_CODE_UNSPECIFIED';
}
