import { expect } from 'chai';
import fc from 'fast-check';
import { CopyRowSet } from '../../../src/db/copy/loader';
import { copyChunks } from '../../../src/db/copy/loader';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import { loadConfig } from '../../../src/config';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';

/** Any Unicode text PostgreSQL can hold: every code point but NUL, surrogates only in pairs. */
const storableText = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/\u0000/g, ''));
const tricky = fc.constantFrom('\\N', '\\', '\\.', '\t', '\n', '\r', '\r\n', '\\\\N', 'a\\tb', '', ' ', '\u2028', '😀', 'Ω', '\u0001');

describe('db/copy encoder round trip (integration, real COPY)', () => {
  let db: TestDatabase;
  let pool: Pool;

  before(async () => {
    db = await createTestDatabase('copy_roundtrip');
    pool = createPool({ connectionString: db.url, config: loadConfig({}).pool, logger: silentLogger });
    await pool.query('t', 'CREATE TABLE roundtrip (id int NOT NULL, a text, b text COLLATE "C", c bytea)');
  });
  after(async () => {
    await pool?.close();
    await db?.drop();
  });

  it('stores arbitrary Unicode text, NULLs and bytea exactly as encoded', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.option(fc.oneof(storableText, tricky), { nil: null }), fc.oneof(storableText, tricky), fc.uint8Array({ maxLength: 16 })), { minLength: 1, maxLength: 30 }),
        async (rowsIn) => {
          const rows = new CopyRowSet(16);
          rowsIn.forEach(([a, b, c], i) => {
            rows.encoder.int(i);
            if (a === null) rows.encoder.nullField();
            else rows.encoder.text(a);
            rows.encoder.text(b);
            rows.encoder.bytea(Buffer.from(c));
            rows.endRow();
          });
          await pool.withTransaction(async (tx) => {
            await tx.query('t', 'TRUNCATE roundtrip');
            const count = await copyChunks(tx, { op: 't' }, "COPY roundtrip (id, a, b, c) FROM STDIN WITH (FORMAT text, ENCODING 'UTF8')", rows.allChunks());
            expect(count).to.equal(rowsIn.length);
            const { rows: out } = await tx.query<{ a: string | null; b: string; c: Buffer }>('t', 'SELECT a, b, c FROM roundtrip ORDER BY id');
            expect(out.map((r) => [r.a, r.b, [...r.c]])).to.deep.equal(rowsIn.map(([a, b, c]) => [a, b, [...c]]));
          });
        },
      ),
      { numRuns: 60 },
    );
  });
});
