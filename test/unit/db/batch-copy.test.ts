import { expect } from 'chai';
import { encodeCopyField, encodeCopyRow, encodeCopyRows, COPY_PIECE_BYTES } from '../../../src/db/batch-copy';
import { quoteIdent } from '../../../src/db/batch-ops';

describe('db/batch-copy encoder', () => {
  it('escapes backslash, tab, newline and carriage return', () => {
    expect(encodeCopyField('a\\b\tc\nd\re')).to.equal('a\\\\b\\tc\\nd\\re');
    expect(encodeCopyField('\\N')).to.equal('\\\\N');
  });

  it('encodes null and undefined as \\N, and scalars as text', () => {
    expect(encodeCopyField(null)).to.equal('\\N');
    expect(encodeCopyField(undefined)).to.equal('\\N');
    expect(encodeCopyField(12.5)).to.equal('12.5');
    expect(encodeCopyField(9_223_372_036_854_775_807n)).to.equal('9223372036854775807');
    expect(encodeCopyField(true)).to.equal('t');
    expect(encodeCopyField(new Date('2024-01-02T03:04:05.678Z'))).to.equal('2024-01-02T03:04:05.678Z');
    expect(encodeCopyField(Buffer.from([0, 255]))).to.equal('\\\\x00ff');
  });

  it('passes Unicode through untouched', () => {
    expect(encodeCopyField('株式 ✓ 🚀')).to.equal('株式 ✓ 🚀');
  });

  it('refuses NUL, non-finite numbers and objects', () => {
    for (const bad of ['a\0b', Number.NaN, Infinity, { a: 1 }]) {
      expect(() => encodeCopyField(bad)).to.throw().with.property('code', 'INVALID_ARGUMENT');
    }
  });

  it('joins a row with tabs and ends it with a newline', () => {
    expect(encodeCopyRow(['a', null, 1])).to.equal('a\t\\N\t1\n');
  });

  it('yields pieces of about COPY_PIECE_BYTES whose concatenation is every row', () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => [`row-${i}`, i]);
    const pieces = [...encodeCopyRows(rows, (r) => r)];
    expect(pieces.length).to.be.greaterThan(1);
    for (const piece of pieces.slice(0, -1)) expect(piece.length).to.be.within(COPY_PIECE_BYTES, COPY_PIECE_BYTES + 100);
    const text = Buffer.concat(pieces).toString('utf8');
    expect(text.split('\n')).to.have.length(5_001);
    expect(text.startsWith('row-0\t0\nrow-1\t1\n')).to.equal(true);
  });

  it('quotes identifiers', () => {
    expect(quoteIdent('fills')).to.equal('"fills"');
    expect(quoteIdent('public.we"ird')).to.equal('"public"."we""ird"');
    expect(() => quoteIdent('')).to.throw();
  });
});
