/**
 * Rows in PostgreSQL's COPY text format
 * (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2),
 * written straight into one growable Buffer that is reused across batches.
 *
 * Escaping: backslash, newline, carriage return and tab are written as
 * `\\`, `\n`, `\r`, `\t`; every other character is written as its UTF-8
 * bytes. Because a backslash is always escaped, a text value `\N` is sent as
 * `\\N` and reads back as text, never as NULL (NULL is the bare field `\N`).
 * NUL cannot be stored in a PostgreSQL text value at all: validation rejects
 * it, and the encoder refuses it rather than corrupt a row.
 */

import { splitUint64 } from './uint64';

const TAB = 0x09;
const NEWLINE = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';

/** A value reached the COPY encoder with a NUL character (validation should have rejected it). */
export class NulInCopyTextError extends Error {
  constructor() {
    super('A NUL character cannot be encoded in COPY text; validation must reject it first.');
    this.name = 'NulInCopyTextError';
  }
}

/** Writes COPY text rows into a reusable Buffer. Not thread-safe; one writer per batch. */
export class CopyTextEncoder {
  private buf: Buffer;
  private pos = 0;
  private atRowStart = true;

  /** `initialBytes`: first buffer size; it doubles as needed and is kept across `reset()`. */
  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written since the last reset. */
  get length(): number {
    return this.pos;
  }

  /** Capacity of the underlying buffer, bytes. */
  get capacity(): number {
    return this.buf.length;
  }

  /** Forgets the content, keeps the buffer. */
  reset(): void {
    this.pos = 0;
    this.atRowStart = true;
  }

  /** The encoded bytes (a view; valid until the next write or reset). */
  view(start = 0, end = this.pos): Buffer {
    return this.buf.subarray(start, end);
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private separator(): void {
    if (this.atRowStart) {
      this.atRowStart = false;
    } else {
      this.ensure(1);
      this.buf[this.pos++] = TAB;
    }
  }

  /** Appends a text field, escaped. Throws NulInCopyTextError on NUL. */
  text(value: string): void {
    this.separator();
    const n = value.length;
    // At most 3 bytes per UTF-16 unit: an escape is 2, a BMP character 3, a surrogate pair 4 for 2 units.
    this.ensure(n * 3);
    const buf = this.buf;
    let pos = this.pos;
    // Fast path: printable ASCII without a backslash (ids, decimals, tickers) is copied as is.
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x20 || c >= 0x7f || c === BACKSLASH) break;
      buf[pos++] = c;
    }
    if (i === n) {
      this.pos = pos;
      return;
    }
    this.pos = pos;
    this.textFrom(value, i);
  }

  /** The general path of `text` from UTF-16 unit `start` on (escapes, control characters, non-ASCII). */
  private textFrom(value: string, start: number): void {
    const n = value.length;
    const buf = this.buf;
    let pos = this.pos;
    for (let i = start; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x80) {
        if (c > 0x1f && c !== BACKSLASH) {
          buf[pos++] = c;
        } else if (c === BACKSLASH) {
          buf[pos++] = BACKSLASH;
          buf[pos++] = BACKSLASH;
        } else if (c === NEWLINE) {
          buf[pos++] = BACKSLASH;
          buf[pos++] = 0x6e; // n
        } else if (c === CR) {
          buf[pos++] = BACKSLASH;
          buf[pos++] = 0x72; // r
        } else if (c === TAB) {
          buf[pos++] = BACKSLASH;
          buf[pos++] = 0x74; // t
        } else if (c === 0) {
          this.pos = pos;
          throw new NulInCopyTextError();
        } else {
          // Other C0 controls have no special meaning in COPY text.
          buf[pos++] = c;
        }
      } else if (c < 0x800) {
        buf[pos++] = 0xc0 | (c >> 6);
        buf[pos++] = 0x80 | (c & 0x3f);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? value.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          buf[pos++] = 0xf0 | (cp >> 18);
          buf[pos++] = 0x80 | ((cp >> 12) & 0x3f);
          buf[pos++] = 0x80 | ((cp >> 6) & 0x3f);
          buf[pos++] = 0x80 | (cp & 0x3f);
          i++;
        } else {
          // Unpaired surrogate: U+FFFD, as Buffer.from would (validation rejects these).
          buf[pos++] = 0xef;
          buf[pos++] = 0xbf;
          buf[pos++] = 0xbd;
        }
      } else {
        buf[pos++] = 0xe0 | (c >> 12);
        buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
        buf[pos++] = 0x80 | (c & 0x3f);
      }
    }
    this.pos = pos;
  }

  /** Appends a text field, or NULL when `value` is empty. */
  textOrNull(value: string): void {
    if (value.length === 0) this.nullField();
    else this.text(value);
  }

  /** Appends NULL (`\N`). */
  nullField(): void {
    this.separator();
    this.ensure(2);
    this.buf[this.pos++] = BACKSLASH;
    this.buf[this.pos++] = 0x4e; // N
  }

  /** Appends a safe integer. */
  int(value: number): void {
    if (value >= 0 && value < 10) {
      this.separator();
      this.ensure(1);
      this.buf[this.pos++] = 0x30 + value;
    } else {
      this.text(String(value));
    }
  }

  /**
   * Appends `src[start, end)` as a text field, as is: the caller guarantees
   * printable ASCII without a backslash (nothing to escape, UTF-8 already).
   */
  plainAscii(src: Buffer, start: number, end: number): void {
    this.separator();
    const n = end - start;
    this.ensure(n);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = start; i < end; i++) buf[pos++] = src[i]!;
    this.pos = pos;
  }

  /** plainAscii, or NULL when the range is empty. */
  plainAsciiOrNull(src: Buffer, start: number, end: number): void {
    if (start === end) this.nullField();
    else this.plainAscii(src, start, end);
  }

  /** Appends the decimal digits of the unsigned 64-bit value hi·2³² + lo, without a string. */
  uint64(lo: number, hi: number): void {
    this.separator();
    this.ensure(20);
    const { high, low } = splitUint64(lo, hi);
    this.digits(high, 0);
    if (low >= 0) this.digits(low, 7);
  }

  /** Writes the digits of the non-negative integer `value` (< 2⁵³), left-padded with zeros to `width`. */
  private digits(value: number, width: number): void {
    let count = 1;
    for (let v = value; v >= 10; v = Math.floor(v / 10)) count++;
    if (count < width) count = width;
    const buf = this.buf;
    let pos = this.pos + count;
    this.pos = pos;
    let v = value;
    for (let i = 0; i < count; i++) {
      const next = Math.floor(v / 10);
      buf[--pos] = 0x30 + (v - next * 10);
      v = next;
    }
  }

  /** Appends bytes that already are one escaped field (e.g. a pre-encoded source id). */
  preEncoded(field: Buffer): void {
    this.separator();
    const n = field.length;
    this.ensure(n);
    if (n <= 64) {
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < n; i++) buf[pos++] = field[i]!;
      this.pos = pos;
    } else {
      field.copy(this.buf, this.pos);
      this.pos += n;
    }
  }

  /** Appends a bytea field in hex form (`\\x…`: the backslash itself escaped for COPY). */
  bytea(value: Buffer): void {
    this.separator();
    this.ensure(3 + value.length * 2);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = BACKSLASH;
    buf[pos++] = BACKSLASH;
    buf[pos++] = 0x78; // x
    for (let i = 0; i < value.length; i++) {
      const b = value[i]!;
      buf[pos++] = HEX.charCodeAt(b >> 4);
      buf[pos++] = HEX.charCodeAt(b & 0x0f);
    }
    this.pos = pos;
  }

  /** Ends the current row. */
  endRow(): void {
    this.ensure(1);
    this.buf[this.pos++] = NEWLINE;
    this.atRowStart = true;
  }
}

/** Encodes one value as a standalone COPY text field (no separators). */
export function encodeCopyField(value: string): Buffer {
  const encoder = new CopyTextEncoder(Math.max(16, value.length * 3));
  encoder.text(value);
  return Buffer.from(encoder.view());
}

/**
 * Splits one COPY text row (without its newline) into fields: NULL for a
 * bare `\N`, otherwise the unescaped text. The inverse of the encoder, used
 * to rebuild a refused row's event and by tests.
 */
export function decodeCopyTextRow(row: Buffer): (string | null)[] {
  const fields: (string | null)[] = [];
  let bytes: number[] = [];
  let start = 0;
  const finish = (end: number) => {
    if (end - start === 2 && row[start] === BACKSLASH && row[start + 1] === 0x4e) fields.push(null);
    else fields.push(Buffer.from(bytes).toString('utf8'));
    bytes = [];
  };
  for (let i = 0; i < row.length; i++) {
    const b = row[i]!;
    if (b === TAB) {
      finish(i);
      start = i + 1;
    } else if (b === BACKSLASH && i + 1 < row.length) {
      const next = row[++i]!;
      bytes.push(next === 0x6e ? NEWLINE : next === 0x72 ? CR : next === 0x74 ? TAB : next === 0x4e ? 0x4e : next);
    } else {
      bytes.push(b);
    }
  }
  finish(row.length);
  return fields;
}
