import { InvalidArgumentError } from '../errors';

/** page_size when the request says 0 (public contract: proto comment). */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest page_size accepted; larger values are INVALID_ARGUMENT (public contract: proto comment). */
export const MAX_PAGE_SIZE = 1_000;
/** Most ids one BatchGetOrders call may ask for (public contract: proto comment). */
export const MAX_BATCH_ORDER_IDS = 1_000;

/** Highest OrderStatus number (ORDER_STATUS_EXPIRED). */
const MAX_ORDER_STATUS = 7;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Validates an id or symbol as DESIGN.md defines them: at most `maxChars`
 * characters (code points), no control characters. Empty is allowed only
 * when `required` is false, and then means "absent".
 */
export function readId(field: string, value: string, maxChars: number, required: boolean): string | undefined {
  if (value === '') {
    if (required) throw new InvalidArgumentError(field, 'must not be empty');
    return undefined;
  }
  if ([...value].length > maxChars) throw new InvalidArgumentError(field, `must be at most ${maxChars} characters`);
  if (CONTROL_CHARACTERS.test(value)) throw new InvalidArgumentError(field, 'must not contain control characters');
  return value;
}

/** Ids: at most 64 characters. */
export const MAX_ID_CHARS = 64;
/** Symbols: at most 32 characters. */
export const MAX_SYMBOL_CHARS = 32;

/** A time bound in ns since the epoch; 0 (the default) means unbounded. Kept as bigint, never Number. */
export function readTimeBound(field: string, value: string | number | undefined): bigint | undefined {
  const text = String(value ?? '0');
  if (!/^-?\d{1,20}$/.test(text)) throw new InvalidArgumentError(field, 'must be a whole number of nanoseconds');
  const ns = BigInt(text);
  if (ns < 0n) throw new InvalidArgumentError(field, 'must not be negative');
  return ns === 0n ? undefined : ns;
}

/** Checks from < to when both are set. */
export function checkTimeRange(from: bigint | undefined, to: bigint | undefined): void {
  if (from !== undefined && to !== undefined && to <= from) throw new InvalidArgumentError('to_ts_ns', 'must be after from_ts_ns');
}

/** page_size: 0 → DEFAULT_PAGE_SIZE, at most MAX_PAGE_SIZE. */
export function readPageSize(value: number | undefined): number {
  const size = value ?? 0;
  if (!Number.isInteger(size) || size < 0) throw new InvalidArgumentError('page_size', 'must be a whole number');
  if (size > MAX_PAGE_SIZE) throw new InvalidArgumentError('page_size', `must be at most ${MAX_PAGE_SIZE}`);
  return size === 0 ? DEFAULT_PAGE_SIZE : size;
}

/** An OrderStatus filter: 0 (UNSPECIFIED) means any. */
export function readStatusFilter(value: number | undefined): number | undefined {
  const status = value ?? 0;
  if (!Number.isInteger(status) || status < 0 || status > MAX_ORDER_STATUS) throw new InvalidArgumentError('status', 'is not a known OrderStatus');
  return status === 0 ? undefined : status;
}

/** BatchGetOrders ids: at most MAX_BATCH_ORDER_IDS, each a valid id (field named with its index). */
export function readOrderIds(values: readonly string[]): string[] {
  if (values.length > MAX_BATCH_ORDER_IDS) throw new InvalidArgumentError('order_ids', `must hold at most ${MAX_BATCH_ORDER_IDS} ids`);
  return values.map((value, i) => readId(`order_ids[${i}]`, value, MAX_ID_CHARS, true)!);
}
