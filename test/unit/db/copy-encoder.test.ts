import { expect } from 'chai';
import fc from 'fast-check';
import { CopyTextEncoder, decodeCopyTextRow, NulInCopyTextError } from '../../../src/db/copy/encoder';
import { CopyRowSet } from '../../../src/db/copy/loader';

describe('db/copy encoder (unit)', () => {
  it('escapes backslash, tab, newline and carriage return; writes NULL as \\N', () => {
    const e = new CopyTextEncoder(4);
    e.text('a\\b\tc\nd\re');
    e.text('\\N');
    e.nullField();
    e.int(7);
    e.int(1234);
    e.endRow();
    expect(e.view().toString('utf8')).to.equal('a\\\\b\\tc\\nd\\re\t\\\\N\t\\N\t7\t1234\n');
  });

  it('writes UTF-8 exactly as Buffer.from does, growing the buffer as needed', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        const clean = s.replace(/[\\\t\n\r\u0000]/g, '');
        const e = new CopyTextEncoder(1);
        e.text(clean);
        expect(e.view().equals(Buffer.from(clean, 'utf8'))).to.equal(true);
      }),
      { numRuns: 1_000 },
    );
  });

  it('leaves its printable-ASCII fast path mid-value for escapes, DEL and non-ASCII', () => {
    const e = new CopyTextEncoder(2);
    e.text('ORD-1\u007f€\\x\ty😀z');
    e.text('plain-ASCII.123');
    e.endRow();
    expect(e.view().toString('utf8')).to.equal('ORD-1\u007f€\\\\x\\ty😀z\tplain-ASCII.123\n');
  });

  it('refuses NUL', () => {
    expect(() => new CopyTextEncoder().text('a\u0000b')).to.throw(NulInCopyTextError);
  });

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.string({ unit: 'binary' }).map((s) => s.replace(/\u0000/g, '')), { nil: null }), { minLength: 1, maxLength: 6 }), (fields) => {
        const rows = new CopyRowSet(8);
        for (const f of fields) {
          if (f === null) rows.encoder.nullField();
          else rows.encoder.text(f);
        }
        rows.endRow();
        expect(decodeCopyTextRow(rows.rowBytes(0))).to.deep.equal(fields);
      }),
      { numRuns: 500 },
    );
  });

  it('selects any subset of rows as merged views', () => {
    const rows = new CopyRowSet(8);
    for (let i = 0; i < 10; i++) {
      rows.encoder.text(`row${i}`);
      rows.endRow();
    }
    expect(Buffer.concat(rows.chunksFor([0, 1, 2, 5, 9])).toString()).to.equal('row0\nrow1\nrow2\nrow5\nrow9\n');
    expect(rows.chunksFor([0, 1, 2, 5, 9])).to.have.length(3);
    expect(Buffer.concat(rows.allChunks()).toString()).to.equal(rows.encoder.view().toString());
    rows.reset();
    expect(rows.rowCount).to.equal(0);
  });
});
