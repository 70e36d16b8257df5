import { InvalidArgumentError } from '../errors';
import type { Event__Output } from '../generated/orderflow/v1/Event';
import type { Fill__Output } from '../generated/orderflow/v1/Fill';
import type { OrderEvent__Output } from '../generated/orderflow/v1/OrderEvent';
import { OrderEventType } from '../generated/orderflow/v1/OrderEventType';
import { OrderType } from '../generated/orderflow/v1/OrderType';
import { Side } from '../generated/orderflow/v1/Side';
import { TimeInForce } from '../generated/orderflow/v1/TimeInForce';
import type { CsvRecord } from './csv-parser';

/** What an import file holds. */
export type ImportType = 'orders' | 'fills';

/** Reject codes, as the proto's RejectCode names. */
export type RejectCodeName =
  | 'REJECT_CODE_MISSING_FIELD'
  | 'REJECT_CODE_INVALID_FIELD'
  | 'REJECT_CODE_OUT_OF_RANGE'
  | 'REJECT_CODE_INVALID_ENUM'
  | 'REJECT_CODE_MISSING_PAYLOAD'
  | 'REJECT_CODE_INVALID_SEQ'
  | 'REJECT_CODE_STORAGE_REFUSED';

interface ColumnSpec {
  name: string;
  required: boolean;
  /** Proto enum (name → number) for enum columns, and the prefix its value names share. */
  enumValues?: Readonly<Record<string, number>>;
  enumPrefix?: string;
}

const ORDER_COLUMNS: readonly ColumnSpec[] = [
  { name: 'order_id', required: true },
  { name: 'account_id', required: true },
  { name: 'symbol', required: true },
  { name: 'side', required: true, enumValues: Side, enumPrefix: 'SIDE_' },
  { name: 'order_type', required: true, enumValues: OrderType, enumPrefix: 'ORDER_TYPE_' },
  { name: 'event_type', required: true, enumValues: OrderEventType, enumPrefix: 'ORDER_EVENT_TYPE_' },
  { name: 'price', required: false },
  { name: 'qty', required: true },
  { name: 'time_in_force', required: true, enumValues: TimeInForce, enumPrefix: 'TIME_IN_FORCE_' },
  { name: 'ts_ns', required: true },
  { name: 'client_order_id', required: false },
];

const FILL_COLUMNS: readonly ColumnSpec[] = [
  { name: 'fill_id', required: true },
  { name: 'order_id', required: true },
  { name: 'account_id', required: true },
  { name: 'symbol', required: true },
  { name: 'side', required: true, enumValues: Side, enumPrefix: 'SIDE_' },
  { name: 'price', required: true },
  { name: 'qty', required: true },
  { name: 'ts_ns', required: true },
  { name: 'fee', required: false },
  { name: 'venue', required: false },
];

/** The documented columns of each import type (README "Batch operations"). */
export const IMPORT_COLUMNS: Readonly<Record<ImportType, readonly ColumnSpec[]>> = { orders: ORDER_COLUMNS, fills: FILL_COLUMNS };

/** How a file's header maps onto an import type. */
export interface CsvLayout {
  type: ImportType;
  /** Header fields, as written. */
  header: readonly string[];
  /** For each spec column, its index in a record, or -1 when the file omits that optional column. */
  indexes: readonly number[];
}

/**
 * Reads the header record: the type is `type` when given, else `fills` when
 * there is a `fill_id` column and `orders` when there is an `event_type` one.
 * Column names are case-insensitive, in any order; every required column must
 * be present and no unknown or repeated column is accepted (a typo would
 * silently drop a field). Throws InvalidArgumentError('header', …).
 */
export function readLayout(header: CsvRecord, type?: ImportType): CsvLayout {
  if (header.error) throw new InvalidArgumentError('header', `line ${header.line}: ${header.error}`);
  const names = header.fields.map((f) => f.trim().toLowerCase());
  const detected: ImportType | undefined = type ?? (names.includes('fill_id') ? 'fills' : names.includes('event_type') ? 'orders' : undefined);
  if (detected === undefined) {
    throw new InvalidArgumentError('header', 'cannot tell orders from fills: the header has neither fill_id nor event_type (or pass --type)');
  }
  const specs = IMPORT_COLUMNS[detected];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) problems.push(`column ${JSON.stringify(name)} appears twice`);
    seen.add(name);
    if (!specs.some((s) => s.name === name)) problems.push(`unknown column ${JSON.stringify(name)}`);
  }
  const indexes = specs.map((spec) => {
    const index = names.indexOf(spec.name);
    if (index < 0 && spec.required) problems.push(`missing column ${spec.name}`);
    return index;
  });
  if (problems.length > 0) throw new InvalidArgumentError('header', `${problems.join('; ')} (${detected} columns: ${specs.map((s) => s.name).join(',')})`);
  return { type: detected, header: header.fields, indexes };
}

/** A record turned into an event, or why it could not be. */
export type MappedRecord = { ok: true; event: Event__Output } | { ok: false; code: RejectCodeName; reason: string };

/**
 * Turns a data record into the Event the ingest stream would have carried,
 * with `seq` = its line number: enum columns accept the proto name
 * (`SIDE_BUY`), the name without its prefix (`buy`, any case) or the number;
 * absent optional columns become empty strings; everything else is passed
 * through as text for the validator to judge.
 */
export function mapRecord(record: CsvRecord, layout: CsvLayout): MappedRecord {
  if (record.error) return { ok: false, code: 'REJECT_CODE_INVALID_FIELD', reason: `malformed CSV: ${record.error}` };
  if (record.fields.length !== layout.header.length) {
    return { ok: false, code: 'REJECT_CODE_INVALID_FIELD', reason: `expected ${layout.header.length} fields, got ${record.fields.length}` };
  }
  const specs = IMPORT_COLUMNS[layout.type];
  const values: Record<string, string | number> = {};
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    const index = layout.indexes[i]!;
    const text = index < 0 ? '' : record.fields[index]!;
    if (spec.enumValues) {
      const value = parseEnum(text, spec.enumPrefix!, spec.enumValues);
      if (value === undefined) return { ok: false, code: 'REJECT_CODE_INVALID_ENUM', reason: `${spec.name} has an unknown value ${JSON.stringify(text)}` };
      values[spec.name] = value;
    } else {
      values[spec.name] = text;
    }
  }
  const seq = String(record.line);
  if (layout.type === 'fills') return { ok: true, event: { seq, payload: 'fill', fill: values as unknown as Fill__Output } };
  return { ok: true, event: { seq, payload: 'order', order: values as unknown as OrderEvent__Output } };
}

/** Every accepted spelling of an enum's values (upper case) → number, built once per enum. */
const enumSpellings = new WeakMap<object, Map<string, number>>();

/** Enum text → number: '' → 0 (UNSPECIFIED, which validation rejects), else name, short name or number. */
function parseEnum(text: string, prefix: string, values: Readonly<Record<string, number>>): number | undefined {
  let spellings = enumSpellings.get(values);
  if (spellings === undefined) {
    spellings = new Map();
    for (const [name, n] of Object.entries(values)) {
      spellings.set(name, n);
      if (name.startsWith(prefix)) spellings.set(name.slice(prefix.length), n);
      spellings.set(String(n), n);
    }
    enumSpellings.set(values, spellings);
  }
  // The exact spelling first: the common case costs no trim or case change.
  const exact = spellings.get(text);
  if (exact !== undefined) return exact;
  const value = text.trim().toUpperCase();
  return value === '' ? 0 : spellings.get(value);
}
