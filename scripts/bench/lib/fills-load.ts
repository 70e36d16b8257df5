import { execFile as execFileCb } from 'node:child_process';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createFillGenerator, FILL_COLUMN_TYPES, FILL_COLUMNS, fillToCopyLine, type FillRow } from './rows';

const execFile = promisify(execFileCb);

/** Seed of the fill rows every write scenario loads (the same rows everywhere). */
export const FILLS_SEED = 20_240_309;
/** Source id of those rows. */
export const FILLS_SOURCE_ID = 'bench-venue-a';

/** The benchmark's fill sequence (the same rows in every scenario), one row per call. */
export function benchFillGenerator(): () => FillRow {
  return createFillGenerator({ seed: FILLS_SEED, sourceId: FILLS_SOURCE_ID });
}

/** The first `count` rows of the benchmark's fill sequence. */
export function benchFills(count: number): FillRow[] {
  return Array.from({ length: count }, benchFillGenerator());
}

/** `fills (source_id, seq, …)` for COPY and INSERT. */
export const FILLS_TARGET = `fills (${FILL_COLUMNS.join(', ')})`;

/** Writes the first `count` rows as a COPY text file (what `psql \copy` reads). */
export async function writeFillsFile(file: string, count: number): Promise<void> {
  const next = benchFillGenerator();
  const out = fs.createWriteStream(file);
  function* chunks(): Generator<string> {
    for (let done = 0; done < count; ) {
      const n = Math.min(10_000, count - done);
      let text = '';
      for (let i = 0; i < n; i++) text += fillToCopyLine(next());
      done += n;
      yield text;
    }
  }
  await pipeline(Readable.from(chunks()), out);
}

/**
 * Loads `rows` with one `COPY … FROM STDIN` (text format) on `client`:
 * encoding happens here, row by row, as a service would do it. Returns the
 * row count the server reported.
 */
export async function copyFills(client: pg.Client, rows: readonly FillRow[], rowsPerWrite = 1_000): Promise<number> {
  const stream = client.query(copyFrom(`COPY ${FILLS_TARGET} FROM STDIN`));
  function* encoded(): Generator<Buffer> {
    for (let start = 0; start < rows.length; start += rowsPerWrite) {
      let text = '';
      const end = Math.min(rows.length, start + rowsPerWrite);
      for (let i = start; i < end; i++) text += fillToCopyLine(rows[i]!);
      yield Buffer.from(text);
    }
  }
  await pipeline(Readable.from(encoded()), stream);
  return Number(stream.rowCount);
}

/** Runs `psql \copy fills … FROM 'file'`; returns the row count psql reported. */
export async function psqlCopyFills(psqlPath: string, url: string, file: string): Promise<number> {
  const { stdout } = await execFile(psqlPath, ['-X', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', `\\copy ${FILLS_TARGET} FROM '${file.replace(/'/g, "''")}'`], {
    env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
    maxBuffer: 1024 * 1024,
  });
  const match = /COPY (\d+)/.exec(stdout);
  if (!match) throw new Error(`psql did not report a COPY count: ${stdout.slice(0, 200)}`);
  return Number(match[1]);
}

/** One plain parameterised INSERT per row, each its own transaction (autocommit), as a naive service does. */
export async function insertFillsOneByOne(client: pg.Client, rows: readonly FillRow[]): Promise<number> {
  const sql = `INSERT INTO ${FILLS_TARGET} VALUES (${FILL_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;
  for (const row of rows) await client.query(sql, FILL_COLUMNS.map((c) => row[c]));
  return rows.length;
}

/** `INSERT … SELECT * FROM unnest($1::text[], …)`: one statement (one transaction) per `batchRows` rows. */
export async function insertFillsMultiRow(client: pg.Client, rows: readonly FillRow[], batchRows: number): Promise<number> {
  const sql = `INSERT INTO ${FILLS_TARGET} SELECT * FROM unnest(${FILL_COLUMNS.map((c, i) => `$${i + 1}::${FILL_COLUMN_TYPES[c]}[]`).join(', ')})`;
  let inserted = 0;
  for (let start = 0; start < rows.length; start += batchRows) {
    const batch = rows.slice(start, start + batchRows);
    const result = await client.query(sql, FILL_COLUMNS.map((c) => batch.map((r) => r[c])));
    inserted += result.rowCount ?? 0;
  }
  return inserted;
}

/** Drops every index and unique/primary-key constraint of `fills` (the no-index reference load). */
export async function dropFillsIndexes(client: pg.Client): Promise<string[]> {
  const dropped: string[] = [];
  const constraints = await client.query<{ name: string }>("SELECT conname AS name FROM pg_constraint WHERE conrelid = 'fills'::regclass AND contype IN ('p', 'u', 'x')");
  for (const { name } of constraints.rows) {
    await client.query(`ALTER TABLE fills DROP CONSTRAINT ${client.escapeIdentifier(name)}`);
    dropped.push(name);
  }
  const indexes = await client.query<{ name: string }>("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'fills' AND schemaname = current_schema()");
  for (const { name } of indexes.rows) {
    await client.query(`DROP INDEX ${client.escapeIdentifier(name)}`);
    dropped.push(name);
  }
  return dropped;
}
