import { InvalidArgumentError } from '../errors';

/** Encoded COPY data is handed to the socket in pieces of about this many bytes. */
export const COPY_PIECE_BYTES = 64 * 1024;

/** Characters that need a backslash escape in COPY text format (plus NUL, which is refused). */
const NEEDS_ESCAPE = /[\\\n\r\t\0]/;

/**
 * Encodes one value as a COPY text-format field
 * (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2):
 * null/undefined → `\N`; strings escaped (backslash, newline, carriage
 * return, tab); numbers, bigints and booleans as text; Dates as ISO 8601;
 * bytes as bytea hex. Throws InvalidArgumentError for NUL (PostgreSQL text
 * cannot hold it), non-finite numbers and unsupported types.
 */
export function encodeCopyField(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return NEEDS_ESCAPE.test(value) ? escapeText(value) : value;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidArgumentError('copy', `non-finite number ${value}`);
      return String(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 't' : 'f';
    case 'undefined':
      return '\\N';
    case 'object':
      if (value === null) return '\\N';
      if (value instanceof Date) return value.toISOString();
      // bytea hex input is `\x…`; COPY text needs its backslash doubled.
      if (value instanceof Uint8Array) return `\\\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
      break;
    default:
      break;
  }
  throw new InvalidArgumentError('copy', `cannot encode a value of type ${typeof value}`);
}

function escapeText(value: string): string {
  if (value.includes('\0')) throw new InvalidArgumentError('copy', 'text contains a NUL character');
  return value.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

/** Encodes one row (values in column order) as a COPY text line, newline included. */
export function encodeCopyRow(values: readonly unknown[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) line += '\t';
    line += encodeCopyField(values[i]);
  }
  return `${line}\n`;
}

/**
 * Encodes rows as COPY text data, yielding Buffers of about COPY_PIECE_BYTES
 * so one chunk never becomes one huge string. Lazy: encoding errors surface
 * while COPY runs, which then sends CopyFail and fails the chunk.
 */
export function* encodeCopyRows<T>(rows: Iterable<T>, toValues: (row: T) => readonly unknown[]): Generator<Buffer> {
  let piece = '';
  for (const row of rows) {
    piece += encodeCopyRow(toValues(row));
    if (piece.length >= COPY_PIECE_BYTES) {
      yield Buffer.from(piece, 'utf8');
      piece = '';
    }
  }
  if (piece.length > 0) yield Buffer.from(piece, 'utf8');
}
