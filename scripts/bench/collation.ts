/**
 * Measures what the `COLLATE "C"` choice of migration 001 buys on the write
 * path: COPY of the same fill rows into the fills layout with the three
 * read indexes, once with "C" id columns and once with the database default
 * collation (C.UTF-8 through libc), and with an ICU collation (what a
 * database created with a language locale would use). Run: `npm run build && node
 * dist/scripts/bench/collation.js [rows]`.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { EmbeddedPostgres } from '../../src/db/embedded';
import { silentLogger } from '../../src/telemetry/logger';

const ROWS = Number(process.argv[2] ?? 300_000);
const CHUNK_ROWS = 50_000;
const RUNS = 3;

function tableSql(name: string, collate: string): string {
  return `
    DROP TABLE IF EXISTS ${name};
    CREATE TABLE ${name} (
      source_id text ${collate} NOT NULL, seq bigint NOT NULL, fill_id text ${collate} NOT NULL,
      order_id text ${collate} NOT NULL, account_id text ${collate} NOT NULL, symbol text ${collate} NOT NULL,
      side smallint NOT NULL, price numeric NOT NULL, qty numeric NOT NULL, ts_ns bigint NOT NULL,
      fee numeric, venue text ${collate} NOT NULL DEFAULT '');
    CREATE INDEX ON ${name} (order_id);
    CREATE INDEX ON ${name} (account_id, symbol, ts_ns);`;
}

/** Deterministic rows; order and account ids are random-looking so inserts scatter across the B-trees as in production. */
function* rows(count: number, offset: number): Generator<Buffer> {
  let chunk = '';
  for (let i = 0; i < count; i++) {
    const n = offset + i;
    const h = (Math.imul(n, 2_654_435_761) >>> 0).toString(36);
    chunk += `bench-src\t${n + 1}\tF-${h}-${n}\tO-${h}\tACC-${h.slice(0, 3)}\tSYM${n % 500}\t${1 + (n % 2)}\t${100 + (n % 1000) / 100}\t${1 + (n % 50)}\t${1_700_000_000_000_000_000n + BigInt(n)}\t0.01\tXNAS\n`;
    if (chunk.length > 256 * 1024) {
      yield Buffer.from(chunk);
      chunk = '';
    }
  }
  if (chunk) yield Buffer.from(chunk);
}

async function load(client: pg.Client, table: string): Promise<number> {
  const started = performance.now();
  for (let offset = 0; offset < ROWS; offset += CHUNK_ROWS) {
    await client.query('BEGIN');
    const sink = client.query(copyFrom(`COPY ${table} (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns, fee, venue) FROM STDIN`));
    await pipeline(Readable.from(rows(Math.min(CHUNK_ROWS, ROWS - offset), offset)), sink);
    await client.query('COMMIT');
  }
  return ROWS / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'orderflow-bench-collation-'));
  await fs.chmod(dataDir, 0o755);
  const embedded = new EmbeddedPostgres({ dataDir, port: 54_000 + Math.floor(Math.random() * 1000), logger: silentLogger });
  const url = await embedded.start();
  const client = new pg.Client(url);
  await client.connect();
  const variants = [
    ['COLLATE "C"', 'COLLATE "C"'],
    ['default (C.UTF-8, libc)', ''],
    ['COLLATE "und-x-icu"', 'COLLATE "und-x-icu"'],
  ] as const;
  const results: Record<string, number[]> = Object.fromEntries(variants.map(([label]) => [label, []]));
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const [label, collate] of variants) {
        await client.query(tableSql('bench_fills', collate));
        results[label]!.push(await load(client, 'bench_fills'));
      }
    }
  } finally {
    await client.end();
    await embedded.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  for (const [label, values] of Object.entries(results)) {
    const sorted = [...values].sort((a, b) => a - b);
    console.log(`${label.padEnd(26)} median ${Math.round(sorted[Math.floor(sorted.length / 2)]!)} rows/s  (runs: ${values.map(Math.round).join(', ')})`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
