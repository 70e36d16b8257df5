import { expect } from 'chai';
import path from 'node:path';
import { ConfigError, loadConfig, parseHostPort } from '../../../src/config';
import * as D from '../../../src/config/defaults';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => p.key);
  }
  throw new Error('expected a ConfigError');
}

describe('config/loadConfig', () => {
  it('applies the named defaults to an empty environment', () => {
    const config = loadConfig({}, '/srv/app');
    expect(config.databaseUrl).to.equal(undefined);
    expect(config.dataDir).to.equal(path.resolve('/srv/app', '.data'));
    expect(config.grpcAddress).to.deep.equal({ host: '127.0.0.1', port: 50051 });
    expect(config.metricsAddress).to.deep.equal({ host: '127.0.0.1', port: 9464 });
    expect(config.logLevel).to.equal('info');
    expect(config.pool.max).to.equal(D.DEFAULT_POOL_MAX);
    expect(config.ingest.batchMaxRows).to.equal(D.DEFAULT_INGEST_BATCH_MAX_ROWS);
    expect(config.cache.ttlMs).to.equal(D.DEFAULT_CACHE_TTL_MS);
    expect(config.read.maxInFlight).to.equal(D.DEFAULT_READ_MAX_IN_FLIGHT);
  });

  it('takes READ_MAX_IN_FLIGHT from 1 up and names anything else', () => {
    expect(loadConfig({ READ_MAX_IN_FLIGHT: '1' }).read.maxInFlight).to.equal(1);
    for (const bad of ['0', '-5', 'many', '1.5']) expect(problemsOf({ READ_MAX_IN_FLIGHT: bad }), bad).to.deep.equal(['READ_MAX_IN_FLIGHT']);
  });

  it('parses every kind of value, including digit separators and IPv6', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u:p@db.example:5432/of',
      GRPC_ADDRESS: '[::1]:6000',
      METRICS_ADDRESS: 'off',
      LOG_LEVEL: 'DEBUG',
      POOL_MAX: '20',
      INGEST_BATCH_MAX_ROWS: '5_000',
    });
    expect(config.databaseUrl).to.equal('postgres://u:p@db.example:5432/of');
    expect(config.grpcAddress).to.deep.equal({ host: '::1', port: 6000 });
    expect(config.metricsAddress).to.equal(undefined);
    expect(config.logLevel).to.equal('debug');
    expect(config.pool.max).to.equal(20);
    expect(config.ingest.batchMaxRows).to.equal(5000);
  });

  it('returns a deeply frozen object', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.pool)).to.equal(true);
    expect(Object.isFrozen(config.grpcAddress)).to.equal(true);
  });

  it('names every bad key in one error', () => {
    const keys = problemsOf({
      GRPC_ADDRESS: 'nonsense',
      INGEST_BATCH_MAX_ROWS: '-5',
      POOL_MAX: 'ten',
      LOG_LEVEL: 'loud',
      DATABASE_URL: 'mysql://x',
      METRICS_ADDRESS: '127.0.0.1:99999',
    });
    expect(keys).to.have.members(['GRPC_ADDRESS', 'INGEST_BATCH_MAX_ROWS', 'POOL_MAX', 'LOG_LEVEL', 'DATABASE_URL', 'METRICS_ADDRESS']);
  });

  it('message lists each key with its problem', () => {
    try {
      loadConfig({ GRPC_ADDRESS: 'nonsense', INGEST_BATCH_MAX_ROWS: '-1' });
      expect.fail('should throw');
    } catch (err) {
      expect((err as Error).message).to.match(/GRPC_ADDRESS: must be host:port/);
      expect((err as Error).message).to.match(/INGEST_BATCH_MAX_ROWS: must be between 1 and/);
    }
  });

  it('rejects contradictions between settings', () => {
    expect(problemsOf({ POOL_MIN: '8', POOL_MAX: '4' })).to.deep.equal(['POOL_MIN']);
    expect(problemsOf({ INGEST_BATCH_MAX_ROWS: '1000', INGEST_MAX_BUFFERED: '500', INGEST_STREAM_MAX_BUFFERED: '100' })).to.deep.equal(['INGEST_BATCH_MAX_ROWS']);
    expect(problemsOf({ POOL_STATEMENT_TIMEOUT_MS: '5000', POOL_QUERY_TIMEOUT_MS: '5000' })).to.deep.equal(['POOL_QUERY_TIMEOUT_MS']);
  });

  it('treats blank values as unset', () => {
    expect(loadConfig({ POOL_MAX: '  ', DATABASE_URL: '' }).pool.max).to.equal(D.DEFAULT_POOL_MAX);
  });
});

describe('config/parseHostPort', () => {
  it('accepts host:port and [v6]:port, rejects the rest', () => {
    expect(parseHostPort('localhost:0')).to.deep.equal({ host: 'localhost', port: 0 });
    expect(parseHostPort('[::]:50051')).to.deep.equal({ host: '::', port: 50051 });
    expect(parseHostPort('::1:50051')).to.equal(undefined);
    expect(parseHostPort('host')).to.equal(undefined);
    expect(parseHostPort('host:70000')).to.equal(undefined);
  });
});
