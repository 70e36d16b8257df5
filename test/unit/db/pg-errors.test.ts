import { expect } from 'chai';
import { CancelledError, DbTimeoutError, DbUnavailableError, DuplicateError, InternalError, RetryableTxError } from '../../../src/errors';
import { errorTypeOf, isConnectionLevelError, sqlStateOf, translatePgError } from '../../../src/db/pg-errors';

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

  it('retries only serialization failures and deadlocks, never an unknown statement outcome', () => {
    expect(translatePgError(pgError('40003'))).to.be.instanceOf(InternalError);
    expect(translatePgError(pgError('40002'))).to.be.instanceOf(InternalError);
    expect((translatePgError(pgError('40P01')) as RetryableTxError).sqlState).to.equal('40P01');
  });

  it('maps lock timeouts, refused connections and connect timeouts', () => {
    expect(translatePgError(pgError('55P03'))).to.be.instanceOf(DbTimeoutError);
    expect(translatePgError(pgError('53300'))).to.be.instanceOf(DbUnavailableError);
    expect(translatePgError(pgError('57P04'))).to.be.instanceOf(DbUnavailableError);
    expect(translatePgError(new Error('timeout expired'))).to.be.instanceOf(DbUnavailableError);
    expect(translatePgError(new Error('Client has encountered a connection error and is not queryable'))).to.be.instanceOf(DbUnavailableError);
  });

  it('tells SQLSTATEs from errno codes and finds them through domain errors', () => {
    expect(sqlStateOf(pgError('EPIPE'))).to.equal(undefined);
    expect(translatePgError(pgError('EPIPE'))).to.be.instanceOf(DbUnavailableError);
    expect(sqlStateOf(pgError('P0001'))).to.equal('P0001');
    expect(sqlStateOf(pgError('XX000'))).to.equal('XX000');
    expect(sqlStateOf(translatePgError(pgError('23505')))).to.equal('23505');
    expect(sqlStateOf(undefined)).to.equal(undefined);
  });

  it('gives a low-cardinality error type: the SQLSTATE, else the domain code', () => {
    expect(errorTypeOf(translatePgError(pgError('22012')))).to.equal('22012');
    expect(errorTypeOf(new DbTimeoutError({ cause: new Error('client-side') }))).to.equal('DB_TIMEOUT');
    expect(errorTypeOf(new CancelledError())).to.equal('CANCELLED');
    expect(errorTypeOf(translatePgError(new Error('Connection terminated unexpectedly')))).to.equal('DB_UNAVAILABLE');
    expect(errorTypeOf(new TypeError('boom'))).to.equal('INTERNAL');
  });
});
