import type { Event__Output } from '../generated/orderflow/v1/Event';
import { OrderType } from '../generated/orderflow/v1/OrderType';
import type { RejectCodeName } from '../import/csv-columns';

/** The verdict on one event: valid, or a reject code with a reason naming the field. */
export type ValidationResult = { ok: true } | { ok: false; code: RejectCodeName; reason: string };

/**
 * Judges one event exactly as the ingest stream does. The import takes one of
 * these so it applies the same rules as Ingest.
 */
export type EventValidator = (event: Event__Output) => ValidationResult;

const MAX_ID_CHARS = 64;
const MAX_SYMBOL_CHARS = 32;
const INT64_MAX = 9_223_372_036_854_775_807n;
/** Up to 12 integer and 8 fractional digits (DESIGN.md value rules). */
const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;
/** Control characters (C0, DEL, C1) and unpaired surrogates are never printable. */
const NOT_PRINTABLE = /[\p{Cc}\p{Cs}]/u;

/**
 * TODO(#8): use src/ingest/validate.ts. A minimal stand-in for the ingest
 * validator (issue #4), written from DESIGN.md's value rules, so the import
 * can be built and tested before that lands; the lead swaps it at merge.
 */
export const validateEvent: EventValidator = (event) => {
  if (event.payload === 'fill' && event.fill) {
    const f = event.fill;
    return (
      checkId('fill_id', f.fill_id, MAX_ID_CHARS) ??
      checkId('order_id', f.order_id, MAX_ID_CHARS) ??
      checkId('account_id', f.account_id, MAX_ID_CHARS) ??
      checkId('symbol', f.symbol, MAX_SYMBOL_CHARS) ??
      checkEnum('side', f.side) ??
      checkDecimal('price', f.price, { required: true, positive: true }) ??
      checkDecimal('qty', f.qty, { required: true, positive: true }) ??
      checkTs(f.ts_ns) ??
      checkDecimal('fee', f.fee, { required: false, positive: false, signed: true }) ??
      checkOptionalText('venue', f.venue) ?? { ok: true }
    );
  }
  if (event.payload === 'order' && event.order) {
    const o = event.order;
    const priced = o.order_type === OrderType.ORDER_TYPE_LIMIT || o.order_type === OrderType.ORDER_TYPE_STOP_LIMIT;
    return (
      checkId('order_id', o.order_id, MAX_ID_CHARS) ??
      checkId('account_id', o.account_id, MAX_ID_CHARS) ??
      checkId('symbol', o.symbol, MAX_SYMBOL_CHARS) ??
      checkEnum('side', o.side) ??
      checkEnum('order_type', o.order_type) ??
      checkEnum('event_type', o.event_type) ??
      checkDecimal('price', o.price, { required: priced, positive: true }) ??
      checkDecimal('qty', o.qty, { required: true, positive: true }) ??
      checkEnum('time_in_force', o.time_in_force) ??
      checkTs(o.ts_ns) ??
      checkOptionalText('client_order_id', o.client_order_id) ?? { ok: true }
    );
  }
  return { ok: false, code: 'REJECT_CODE_MISSING_PAYLOAD', reason: 'the event carries neither an order nor a fill' };
};

type Failure = Extract<ValidationResult, { ok: false }>;

function fail(code: RejectCodeName, reason: string): Failure {
  return { ok: false, code, reason };
}

function checkId(field: string, value: string, maxChars: number): Failure | undefined {
  if (value === '') return fail('REJECT_CODE_MISSING_FIELD', `${field} is required`);
  return checkText(field, value, maxChars);
}

function checkOptionalText(field: string, value: string): Failure | undefined {
  return value === '' ? undefined : checkText(field, value, MAX_ID_CHARS);
}

function checkText(field: string, value: string, maxChars: number): Failure | undefined {
  if (value.includes('\0')) return fail('REJECT_CODE_INVALID_FIELD', `${field} contains a NUL character`);
  if (NOT_PRINTABLE.test(value)) return fail('REJECT_CODE_INVALID_FIELD', `${field} contains a control character`);
  // Length in characters (code points), not UTF-16 units: Unicode ids are allowed.
  let chars = 0;
  for (const _ of value) if (++chars > maxChars) return fail('REJECT_CODE_INVALID_FIELD', `${field} is longer than ${maxChars} characters`);
  return undefined;
}

function checkEnum(field: string, value: number): Failure | undefined {
  // Out-of-range numbers never reach here (mapping rejects them); 0 is UNSPECIFIED.
  return value === 0 ? fail('REJECT_CODE_INVALID_ENUM', `${field} must not be UNSPECIFIED`) : undefined;
}

function checkDecimal(field: string, value: string, rules: { required: boolean; positive: boolean; signed?: boolean }): Failure | undefined {
  if (value === '') return rules.required ? fail('REJECT_CODE_MISSING_FIELD', `${field} is required`) : undefined;
  const match = DECIMAL.exec(value);
  if (!match || (match[1] === '-' && !rules.signed)) return fail('REJECT_CODE_INVALID_FIELD', `${field} is not a decimal number: ${JSON.stringify(value)}`);
  const integer = match[2]!.replace(/^0+(?=\d)/, '');
  if (integer.length > 12) return fail('REJECT_CODE_OUT_OF_RANGE', `${field} has more than 12 integer digits`);
  if ((match[3] ?? '').length > 8) return fail('REJECT_CODE_OUT_OF_RANGE', `${field} has more than 8 fractional digits`);
  if (rules.positive && /^[0.]+$/.test(match[2]! + (match[3] ?? ''))) return fail('REJECT_CODE_OUT_OF_RANGE', `${field} must be > 0`);
  return undefined;
}

function checkTs(value: string): Failure | undefined {
  if (value === '' || value === '0') return fail('REJECT_CODE_MISSING_FIELD', 'ts_ns is required');
  if (!/^\d{1,19}$/.test(value)) return fail('REJECT_CODE_INVALID_FIELD', `ts_ns is not a whole number of nanoseconds: ${JSON.stringify(value)}`);
  if (BigInt(value) > INT64_MAX) return fail('REJECT_CODE_OUT_OF_RANGE', 'ts_ns does not fit int64');
  return undefined;
}
