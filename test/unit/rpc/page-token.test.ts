import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../../../src/errors';
import { PageTokenCodec } from '../../../src/rpc/page-token';

describe('rpc/page-token', () => {
  const codec = new PageTokenCodec(randomBytes(32));
  const filters = { account_id: 'acct-1', symbol: '', from_ts_ns: '0', to_ts_ns: '0' };
  const cursor = { t: '1700000000000000123', s: 'venue-a', q: '42' };
  const fields = ['t', 's', 'q'];

  function expectInvalid(fn: () => unknown): void {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).to.equal('page_token');
  }

  it('round-trips a cursor, whatever the order of the filters', () => {
    const token = codec.encode('fills', filters, cursor);
    expect(token).to.match(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const reordered = { to_ts_ns: '0', from_ts_ns: '0', symbol: '', account_id: 'acct-1' };
    expect(codec.decode('fills', reordered, token, fields)).to.deep.equal(cursor);
  });

  it('round-trips unicode ids exactly', () => {
    const odd = { t: '1', s: 'vénue-€-𝄞', q: '18446744073709551615' };
    expect(codec.decode('fills', filters, codec.encode('fills', filters, odd), fields)).to.deep.equal(odd);
  });

  it('refuses an edited cursor', () => {
    const token = codec.encode('fills', filters, cursor);
    const [, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...cursor, q: '41' })).toString('base64url');
    expectInvalid(() => codec.decode('fills', filters, `${forged}.${mac}`, fields));
  });

  it('refuses every single-character change', () => {
    const token = codec.encode('fills', filters, cursor);
    for (let i = 0; i < token.length; i++) {
      const replacement = token[i] === 'A' ? 'B' : 'A';
      const tampered = token.slice(0, i) + replacement + token.slice(i + 1);
      expectInvalid(() => codec.decode('fills', filters, tampered, fields));
    }
  });

  it('refuses a token replayed with other filters or on the other list', () => {
    const token = codec.encode('fills', filters, cursor);
    expectInvalid(() => codec.decode('fills', { ...filters, account_id: 'acct-2' }, token, fields));
    expectInvalid(() => codec.decode('fills', { ...filters, symbol: 'AAPL' }, token, fields));
    expectInvalid(() => codec.decode('orders', filters, token, fields));
  });

  it("refuses another database's token (other secret)", () => {
    const token = new PageTokenCodec(randomBytes(32)).encode('fills', filters, cursor);
    expectInvalid(() => codec.decode('fills', filters, token, fields));
  });

  it('refuses garbage, oversized tokens and cursors of the wrong shape', () => {
    for (const garbage of ['x', '.', 'abc.', '.abc', 'a.b.c', '%%%.%%%', 'x'.repeat(5_000)]) {
      expectInvalid(() => codec.decode('fills', filters, garbage, fields));
    }
    const wrongShape = codec.encode('fills', filters, { t: '1', o: 'order' });
    expectInvalid(() => codec.decode('fills', filters, wrongShape, fields));
  });

  it('needs a secret of at least 16 bytes', () => {
    expect(() => new PageTokenCodec(Buffer.alloc(8))).to.throw(TypeError);
  });
});
