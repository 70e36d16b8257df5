import type { QueryResultRow } from 'pg';
import { InvalidArgumentError } from '../errors';
import { runBatch, type BatchInput, type BatchOptions, type BatchReport, type ChunkContext } from './batch';
import { encodeCopyRows } from './batch-copy';
import type { Pool } from './types';

/** A column and the PostgreSQL type its values are sent as (`text`, `numeric`, `bigint` …). */
export interface BatchColumn {
  name: string;
  type: string;
}

/** Options of batchInsert. */
export interface BatchInsertOptions<T> extends BatchOptions {
  table: string;
  /** Target columns, in the order `toValues` returns values. */
  columns: readonly string[];
  /** Row → values in column order. Default: the row itself if an array, else `row[column]` per column. */
  toValues?: (row: T) => readonly unknown[];
  /** Replaces the generic encoder: chunk → COPY text data (for callers with a faster, typed encoder). */
  encodeChunk?: (rows: readonly T[]) => Iterable<Buffer>;
}

/**
 * Inserts rows with one `COPY table (columns) FROM STDIN` per chunk. A COPY
 * is atomic: a failing chunk inserts none of its rows.
 */
export function batchInsert<T>(pool: Pool, input: BatchInput<T>, options: BatchInsertOptions<T>): Promise<BatchReport> {
  const sql = `COPY ${quoteIdent(options.table)} (${options.columns.map(quoteIdent).join(', ')}) FROM STDIN`;
  const toValues = options.toValues ?? defaultToValues<T>(options.columns);
  return runBatch(
    input,
    async (rows, ctx) => {
      // Encoded before COPY starts: a value that cannot be encoded fails the
      // chunk without opening a COPY that would then have to be aborted.
      const data = options.encodeChunk ? [...options.encodeChunk(rows)] : [...encodeCopyRows(rows, toValues)];
      return pool.copyFrom({ op: options.op, signal: ctx.signal, table: options.table }, sql, data);
    },
    options,
  );
}

/** Options of batchUpdate. */
export interface BatchUpdateOptions<T> extends BatchOptions {
  table: string;
  /** Column matched against the row's key. */
  key: BatchColumn;
  /** Columns set from the row. */
  set: readonly BatchColumn[];
  /** Row → [key, ...set values]. Default: the row itself if an array, else `row[column]`. */
  toValues?: (row: T) => readonly unknown[];
  /** Extra condition on the target row, SQL over alias `t` (e.g. `NOT t.busted`). Trusted text, never user input. */
  where?: string;
  /** Columns of `t` to return for every updated row; they are passed to `onRows`. */
  returning?: readonly string[];
  onRows?: (rows: QueryResultRow[], ctx: ChunkContext) => void | Promise<void>;
}

/**
 * Updates rows with one statement per chunk:
 * `UPDATE t SET c = u.c … FROM unnest($1::key_type[], $2::c_type[] …) AS u(…) WHERE t.key = u.key`.
 * A key repeated within one chunk updates its row once, from one of the
 * repeats (PostgreSQL picks which); callers that care deduplicate first.
 */
export function batchUpdate<T>(pool: Pool, input: BatchInput<T>, options: BatchUpdateOptions<T>): Promise<BatchReport> {
  const all = [options.key, ...options.set];
  if (options.set.length === 0) throw new InvalidArgumentError('set', 'must name at least one column');
  const params = all.map((c, i) => `$${i + 1}::${arrayType(c.type)}`).join(', ');
  const aliases = all.map((c) => quoteIdent(c.name)).join(', ');
  const sets = options.set.map((c) => `${quoteIdent(c.name)} = u.${quoteIdent(c.name)}`).join(', ');
  const key = quoteIdent(options.key.name);
  const where = options.where ? ` AND (${options.where})` : '';
  const sql =
    `UPDATE ${quoteIdent(options.table)} AS t SET ${sets} FROM unnest(${params}) AS u(${aliases}) WHERE t.${key} = u.${key}${where}` +
    returningClause(options.returning, 't.');
  const toValues = options.toValues ?? defaultToValues<T>(all.map((c) => c.name));
  return runBatch(
    input,
    async (rows, ctx) => {
      const columns: unknown[][] = all.map(() => new Array<unknown>(rows.length));
      rows.forEach((row, r) => {
        const values = toValues(row);
        for (let c = 0; c < all.length; c++) columns[c]![r] = values[c] ?? null;
      });
      const result = await pool.query({ op: options.op, signal: ctx.signal, table: options.table }, sql, columns);
      if (options.onRows) await options.onRows(result.rows, ctx);
      return result.rowCount ?? 0;
    },
    options,
  );
}

/** Options of batchDelete and batchSelect. */
export interface BatchKeyOptions extends BatchOptions {
  table: string;
  /** Column the keys are matched against, and the type they are sent as. */
  key: BatchColumn;
  /** Columns to return (select: default all; delete: default none). Trusted text. */
  columns?: readonly string[];
  /** Receives each chunk's rows as it completes; awaited, so a slow consumer slows the batch instead of buffering. */
  onRows?: (rows: QueryResultRow[], ctx: ChunkContext) => void | Promise<void>;
}

/** Deletes with one `DELETE FROM table WHERE key = ANY($1)` per chunk of keys. */
export function batchDelete<K>(pool: Pool, keys: BatchInput<K>, options: BatchKeyOptions): Promise<BatchReport> {
  const sql = `DELETE FROM ${quoteIdent(options.table)} AS t WHERE t.${quoteIdent(options.key.name)} = ANY($1::${arrayType(options.key.type)})${returningClause(options.columns, 't.')}`;
  return runKeyed(pool, keys, sql, options);
}

/** Selects with one `SELECT … FROM table WHERE key = ANY($1)` per chunk of keys; rows go to `onRows`. */
export function batchSelect<K>(pool: Pool, keys: BatchInput<K>, options: BatchKeyOptions): Promise<BatchReport> {
  const columns = options.columns && options.columns.length > 0 ? options.columns.map(quoteIdent).join(', ') : '*';
  const sql = `SELECT ${columns} FROM ${quoteIdent(options.table)} WHERE ${quoteIdent(options.key.name)} = ANY($1::${arrayType(options.key.type)})`;
  return runKeyed(pool, keys, sql, options);
}

/**
 * Runs a caller's statement once per chunk of keys, with the chunk as `$1`
 * (an array): for selects and deletes the generic forms cannot express.
 */
export function batchByKeys<K>(pool: Pool, keys: BatchInput<K>, sql: string, options: BatchOptions & Pick<BatchKeyOptions, 'onRows'> & { table?: string }): Promise<BatchReport> {
  return runKeyed(pool, keys, sql, options);
}

function runKeyed<K>(pool: Pool, keys: BatchInput<K>, sql: string, options: BatchOptions & Pick<BatchKeyOptions, 'onRows'> & { table?: string }): Promise<BatchReport> {
  return runBatch(
    keys,
    async (chunk, ctx) => {
      const result = await pool.query({ op: options.op, signal: ctx.signal, table: options.table }, sql, [chunk]);
      if (options.onRows) await options.onRows(result.rows, ctx);
      return result.rowCount ?? 0;
    },
    options,
  );
}

function returningClause(columns: readonly string[] | undefined, prefix: string): string {
  return columns && columns.length > 0 ? ` RETURNING ${columns.map((c) => prefix + quoteIdent(c)).join(', ')}` : '';
}

function defaultToValues<T>(columns: readonly string[]): (row: T) => readonly unknown[] {
  return (row) => (Array.isArray(row) ? (row as unknown[]) : columns.map((c) => (row as Record<string, unknown>)[c]));
}

/** Double-quotes an identifier (`"order_events"`), refusing NUL. Accepts `schema.table`. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0')) throw new InvalidArgumentError('identifier', 'must be non-empty and free of NUL');
  return name
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.');
}

/** `text` → `text[]`, after checking the type name is a plain type, not SQL. */
function arrayType(type: string): string {
  if (!/^[a-z_][a-z0-9_ ]*(\(\d+(,\s*\d+)?\))?$/i.test(type)) throw new InvalidArgumentError('type', `not a plain type name: ${JSON.stringify(type)}`);
  return `${type}[]`;
}
