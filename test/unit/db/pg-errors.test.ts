import { expect } from 'chai';
import { CancelledError, DbTimeoutError, DbUnavailableError, DuplicateError, InternalError, RetryableTxError } from '../../../src/errors';
import { isConnectionLevelError, translatePgError } from '../../../src/db/pg-errors';

const pgError = (code: string, extra: Record<string, string> = {}) => Object.assign(new Error(`pg ${code}`), { code, ...extra });

describe('db/translatePgError', () => {
  it('translates SQLSTATEs to domain errors', () => {
    const dup = translatePgError(pgError('23505', { constraint: 'sources_pkey', table: 'sources' }));
    expect(dup).to.be.instanceOf(DuplicateError);
    expect((dup as DuplicateError).constraint).to.equal('sources_pkey');
    expect(translatePgError(pgError('40001'))).to.be.instanceOf(RetryableTxError);
    expect(translatePgError(pgError('40P01'))).to.be.instanceOf(RetryableTxError);
    expect(translatePgError(pgError('57014'))).to.be.instanceOf(DbTimeoutError);
    expect(translatePgError(pgError('57P01'))).to.be.instanceOf(DbUnavailableError);
    expect(translatePgError(pgError('08006'))).to.be.instanceOf(DbUnavailableError);
    expect(translatePgError(pgError('ECONNRESET'))).to.be.instanceOf(DbUnavailableError);
    expect(translatePgError(new Error('Connection terminated unexpectedly'))).to.be.instanceOf(DbUnavailableError);
    const other = translatePgError(pgError('22P02'));
    expect(other).to.be.instanceOf(InternalError);
    expect((other as InternalError).sqlState).to.equal('22P02');
    expect(other.cause).to.be.instanceOf(Error);
  });

  it('passes domain errors through and maps aborts to CancelledError', () => {
    const e = new DbTimeoutError();
    expect(translatePgError(e)).to.equal(e);
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(translatePgError(abort)).to.be.instanceOf(CancelledError);
  });

  it('tells connection-level errors from SQL errors', () => {
    expect(isConnectionLevelError(pgError('57P01'))).to.equal(true);
    expect(isConnectionLevelError(pgError('23505'))).to.equal(false);
    expect(isConnectionLevelError(new DbUnavailableError())).to.equal(true);
  });
});
