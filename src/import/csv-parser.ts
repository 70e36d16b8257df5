import { StringDecoder } from 'node:string_decoder';

/** Largest record accepted, in UTF-16 code units (≈ bytes for ASCII). Bounds memory on a runaway quote. */
export const DEFAULT_MAX_RECORD_CHARS = 1024 * 1024;

/** One CSV record. */
export interface CsvRecord {
  /** 1-based physical line the record starts on (a quoted field may span lines). */
  line: number;
  fields: string[];
  /** The record's text as read, without its line terminator (kept for quarantine). */
  raw: string;
  /** Set when the record is malformed (a stray quote, an unterminated quoted field). */
  error?: string;
}

/** The input cannot be parsed past this point (a record beyond the size limit). */
export class CsvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;

const enum State {
  FieldStart,
  Unquoted,
  Quoted,
  /** A quote seen inside a quoted field: either an escaped quote or the closing one. */
  QuoteInQuoted,
  /** After a syntax error: skip to the end of the line. */
  SkipToLineEnd,
}

/**
 * An incremental RFC 4180 parser: comma separator, `"` quoting, `""` for a
 * quote inside a quoted field, line breaks inside quoted fields, LF, CRLF or
 * CR line ends, a UTF-8 BOM. Blank lines are skipped. Malformed records are
 * returned with `error` set (the caller quarantines them) and parsing resumes
 * at the next line, except for a quoted field still open at the end of input
 * (the rest of the input becomes one malformed record) and a record over
 * `maxRecordChars` (CsvError: there is no reliable point to resume from).
 */
export class CsvParser {
  private state = State.FieldStart;
  private fields: string[] = [];
  private field = '';
  /** Start of the pending field segment in the current text. */
  private segmentStart = 0;
  /** Start of the current record in the current text, and its text from earlier pushes. */
  private recordStart = 0;
  private rawCarry = '';
  private recordLine = 1;
  private line = 1;
  private error: string | undefined;
  private pendingCr = false;
  /** The previous character was a CR inside a quoted field (so a following LF is the same line break). */
  private quotedCr = false;
  private first = true;

  constructor(private readonly maxRecordChars: number = DEFAULT_MAX_RECORD_CHARS) {}

  /** Parses more text; returns the records it completed. */
  push(text: string, out: CsvRecord[] = []): CsvRecord[] {
    let i = 0;
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    this.segmentStart = i;
    this.recordStart = i;
    // A CR that ended the previous push: swallow the LF of its CRLF.
    if (this.pendingCr) {
      this.pendingCr = false;
      if (text.charCodeAt(i) === LF) {
        i++;
        this.segmentStart = i;
        this.recordStart = i;
      }
    }
    const n = text.length;
    while (i < n) {
      const c = text.charCodeAt(i);
      switch (this.state) {
        case State.FieldStart:
          if (c === QUOTE) {
            this.state = State.Quoted;
            this.segmentStart = i + 1;
          } else if (c === COMMA) {
            this.fields.push('');
            this.segmentStart = i + 1;
          } else if (c === LF || c === CR) {
            this.fields.push('');
            i = this.endRecord(text, i, c, out);
            continue;
          } else {
            this.state = State.Unquoted;
          }
          break;
        case State.Unquoted:
          if (c === COMMA) {
            this.fields.push(this.field + text.slice(this.segmentStart, i));
            this.field = '';
            this.segmentStart = i + 1;
            this.state = State.FieldStart;
          } else if (c === LF || c === CR) {
            this.fields.push(this.field + text.slice(this.segmentStart, i));
            this.field = '';
            i = this.endRecord(text, i, c, out);
            continue;
          } else if (c === QUOTE) {
            this.fail('a quote inside an unquoted field (quote the whole field and double the quote)');
          }
          break;
        case State.Quoted:
          if (c === QUOTE) {
            this.field += text.slice(this.segmentStart, i);
            this.state = State.QuoteInQuoted;
          } else if (c === CR) {
            this.line++;
            this.quotedCr = true;
            i++;
            continue;
          } else if (c === LF && !this.quotedCr) {
            this.line++;
          }
          // A line break inside a quoted field is data, but still a physical line: CRLF counts once.
          this.quotedCr = false;
          break;
        case State.QuoteInQuoted:
          if (c === QUOTE) {
            // `""`: one literal quote; the segment restarts after it.
            this.field += '"';
            this.segmentStart = i + 1;
            this.state = State.Quoted;
          } else if (c === COMMA) {
            this.fields.push(this.field);
            this.field = '';
            this.segmentStart = i + 1;
            this.state = State.FieldStart;
          } else if (c === LF || c === CR) {
            this.fields.push(this.field);
            this.field = '';
            i = this.endRecord(text, i, c, out);
            continue;
          } else {
            this.fail('characters after the closing quote of a field');
          }
          break;
        case State.SkipToLineEnd:
          if (c === LF || c === CR) {
            i = this.endRecord(text, i, c, out);
            continue;
          }
          break;
      }
      i++;
    }
    // Keep what is pending for the next push.
    if (this.state === State.Unquoted || this.state === State.Quoted) this.field += text.slice(this.segmentStart, n);
    this.rawCarry += text.slice(this.recordStart, n);
    if (this.rawCarry.length > this.maxRecordChars) {
      throw new CsvError(this.recordLine, `a record longer than ${this.maxRecordChars} characters (an unterminated quote?)`);
    }
    return out;
  }

  /** Ends the input; returns the last record if the input did not end with a line break. */
  end(out: CsvRecord[] = []): CsvRecord[] {
    this.pendingCr = false;
    switch (this.state) {
      case State.FieldStart:
        if (this.fields.length === 0 && this.rawCarry === '') return out;
        this.fields.push('');
        break;
      case State.Unquoted:
        this.fields.push(this.field);
        break;
      case State.Quoted:
        this.error ??= 'a quoted field is not closed before the end of the file';
        this.fields.push(this.field);
        break;
      case State.QuoteInQuoted:
        this.fields.push(this.field);
        break;
      case State.SkipToLineEnd:
        break;
    }
    this.emit(this.rawCarry, out);
    return out;
  }

  private fail(message: string): void {
    this.error ??= message;
    this.state = State.SkipToLineEnd;
  }

  /** Completes the record at the line break `c` at `i`; returns the index after the line break. */
  private endRecord(text: string, i: number, c: number, out: CsvRecord[]): number {
    this.emit(this.rawCarry + text.slice(this.recordStart, i), out);
    let next = i + 1;
    if (c === CR) {
      if (next < text.length) {
        if (text.charCodeAt(next) === LF) next++;
      } else {
        this.pendingCr = true;
      }
    }
    this.line++;
    this.recordLine = this.line;
    this.recordStart = next;
    this.segmentStart = next;
    this.state = State.FieldStart;
    return next;
  }

  private emit(raw: string, out: CsvRecord[]): void {
    const fields = this.fields;
    // A blank line is one empty field with no text: skipped, but it still counts as a line.
    if (!(fields.length === 1 && fields[0] === '' && raw === '' && this.error === undefined)) {
      const record: CsvRecord = { line: this.recordLine, fields, raw };
      if (this.error !== undefined) record.error = this.error;
      out.push(record);
    }
    this.fields = [];
    this.field = '';
    this.rawCarry = '';
    this.error = undefined;
  }
}

/** Progress of a parse: bytes consumed so far. */
export interface CsvReadProgress {
  bytes: number;
}

/**
 * Parses a byte stream (a file ReadStream) into records, lazily: the next
 * chunk is read only when the records of the previous one are consumed.
 * `progress.bytes` counts the bytes read so far.
 */
export async function* parseCsv(source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, progress: CsvReadProgress = { bytes: 0 }, maxRecordChars?: number): AsyncGenerator<CsvRecord> {
  const parser = new CsvParser(maxRecordChars);
  const decoder = new StringDecoder('utf8');
  const out: CsvRecord[] = [];
  for await (const chunk of source) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    progress.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    out.length = 0;
    parser.push(text, out);
    yield* out;
  }
  out.length = 0;
  const tail = decoder.end();
  if (tail) parser.push(tail, out);
  parser.end(out);
  yield* out;
}
