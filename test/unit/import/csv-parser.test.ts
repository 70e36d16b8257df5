import { expect } from 'chai';
import { CsvError, CsvParser, parseCsv, type CsvRecord } from '../../../src/import/csv-parser';

function parseAll(text: string, splits: number[] = []): CsvRecord[] {
  const parser = new CsvParser();
  const out: CsvRecord[] = [];
  let at = 0;
  for (const split of [...splits, text.length]) {
    parser.push(text.slice(at, split), out);
    at = split;
  }
  parser.end(out);
  return out;
}

const simple = (records: CsvRecord[]) => records.map((r) => ({ line: r.line, fields: r.fields, ...(r.error ? { error: true } : {}) }));

/** Encodes fields the RFC 4180 way: quote when needed, double inner quotes. */
function encode(fields: string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) || f === '' ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}

describe('import/csv-parser', () => {
  it('parses plain records with their line numbers', () => {
    expect(simple(parseAll('a,b,c\n1,2,3\n'))).to.deep.equal([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['1', '2', '3'] },
    ]);
  });

  it('handles quotes, doubled quotes, commas and line breaks inside quoted fields', () => {
    const text = 'id,note\n1,"say ""hi"", then\nleave"\n2,"x\r\ny"\n3,plain\n';
    expect(simple(parseAll(text))).to.deep.equal([
      { line: 1, fields: ['id', 'note'] },
      { line: 2, fields: ['1', 'say "hi", then\nleave'] },
      { line: 4, fields: ['2', 'x\r\ny'] },
      { line: 6, fields: ['3', 'plain'] },
    ]);
  });

  it('accepts CRLF, CR and a last line without a line break; skips blank lines but counts them', () => {
    expect(simple(parseAll('a,b\r\n1,2\r\n\r\n3,4\r5,6'))).to.deep.equal([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', '2'] },
      { line: 4, fields: ['3', '4'] },
      { line: 5, fields: ['5', '6'] },
    ]);
  });

  it('keeps empty fields and trailing empty fields', () => {
    expect(parseAll('a,,c,\n,,\n""\n')[0]!.fields).to.deep.equal(['a', '', 'c', '']);
    expect(parseAll('a,,c,\n,,\n""\n')[1]!.fields).to.deep.equal(['', '', '']);
    expect(parseAll('a,,c,\n,,\n""\n')[2]!.fields).to.deep.equal(['']);
  });

  it('strips a UTF-8 byte order mark and keeps Unicode intact', () => {
    expect(parseAll('\uFEFFsym,name\nÆØÅ,"株式 🚀"\n').map((r) => r.fields)).to.deep.equal([
      ['sym', 'name'],
      ['ÆØÅ', '株式 🚀'],
    ]);
  });

  it('keeps each record raw text for quarantine', () => {
    expect(parseAll('a,b\n1,"x\ny"\n').map((r) => r.raw)).to.deep.equal(['a,b', '1,"x\ny"']);
  });

  it('marks a stray quote as malformed and resumes at the next line', () => {
    const records = parseAll('a,b\n1,x"y\n2,"ok"zz\n3,fine\n');
    expect(simple(records)).to.deep.equal([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1'], error: true },
      { line: 3, fields: ['2'], error: true },
      { line: 4, fields: ['3', 'fine'] },
    ]);
    expect(records[1]!.raw).to.equal('1,x"y');
  });

  it('reports a quoted field left open at the end of the input as one malformed record', () => {
    const records = parseAll('a,b\n1,"never closed\n2,3\n');
    expect(records).to.have.length(2);
    expect(records[1]!.line).to.equal(2);
    expect(records[1]!.error).to.match(/not closed/);
  });

  it('refuses a record longer than the limit (a runaway quote) instead of buffering the file', () => {
    const parser = new CsvParser(100);
    parser.push('a,b\n1,"');
    expect(() => parser.push('x'.repeat(200))).to.throw(CsvError).with.property('line', 2);
  });

  it('gives the same records however the input is split (random round trip)', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const alphabet = ['a', 'Z', '0', ',', '"', '\n', '\r\n', ' ', 'é', '🚀', '\\', '\t'];
    for (let round = 0; round < 50; round++) {
      const rows: string[][] = [];
      for (let r = 0; r < 20; r++) {
        rows.push(Array.from({ length: 3 }, () => Array.from({ length: Math.floor(random() * 6) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('')));
      }
      const text = rows.map(encode).join('\r\n') + '\n';
      const splits = Array.from({ length: 8 }, () => Math.floor(random() * text.length)).sort((a, b) => a - b);
      const records = parseAll(text, splits);
      expect(records.map((r) => r.fields)).to.deep.equal(rows);
      expect(records.every((r) => r.error === undefined)).to.equal(true);
      // Line numbers count every physical line break, quoted ones included.
      let line = 1;
      rows.forEach((row, i) => {
        expect(records[i]!.line).to.equal(line);
        line += 1 + (encode(row).match(/\r\n|\n|\r/g)?.length ?? 0);
      });
    }
  });

  it('parseCsv decodes UTF-8 split across buffers and counts bytes', async () => {
    const bytes = Buffer.from('sym\n"株式"\n', 'utf8');
    const pieces = [bytes.subarray(0, 6), bytes.subarray(6, 7), bytes.subarray(7)];
    const progress = { bytes: 0 };
    const records: CsvRecord[] = [];
    for await (const record of parseCsv(pieces, progress)) records.push(record);
    expect(records.map((r) => r.fields)).to.deep.equal([['sym'], ['株式']]);
    expect(progress.bytes).to.equal(bytes.length);
  });
});
