import path from 'node:path';
import { ConfigError, type ConfigProblem } from './config-error';
import * as D from './defaults';
import { readOtelConfig, type OtelConfig } from './otel';

/** Log levels accepted by LOG_LEVEL. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A host and port to bind; host may be an IPv6 literal without brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/** Connection pool limits (src/db/pool.ts). */
export interface PoolConfig {
  /** Max open connections. Env POOL_MAX, default 10. */
  max: number;
  /** Connections opened at start and kept warm. Env POOL_MIN, default 2. */
  min: number;
  /** Idle connections above `min` close after this long, ms (0 = never). Env POOL_IDLE_TIMEOUT_MS, default 30,000. */
  idleTimeoutMs: number;
  /** A connection is recycled after this long, ms (0 = never). Env POOL_MAX_LIFETIME_MS, default 1,800,000. */
  maxLifetimeMs: number;
  /** Random extra lifetime per connection, ms, so recycling is spread out. Env POOL_LIFETIME_JITTER_MS, default 60,000. */
  lifetimeJitterMs: number;
  /** A connection is recycled after this many checkouts (0 = never). Env POOL_MAX_USES, default 0. */
  maxUses: number;
  /** Max wait for a free connection, ms. Env POOL_ACQUIRE_TIMEOUT_MS, default 5,000. */
  acquireTimeoutMs: number;
  /** Max time to open a TCP connection and authenticate, ms. Env POOL_CONNECT_TIMEOUT_MS, default 5,000. */
  connectTimeoutMs: number;
  /** Server-side statement_timeout, ms (0 = none). Env POOL_STATEMENT_TIMEOUT_MS, default 30,000. */
  statementTimeoutMs: number;
  /** Client-side timeout per query, ms; covers network stalls. Env POOL_QUERY_TIMEOUT_MS, default 35,000. */
  queryTimeoutMs: number;
  /** TCP keepalive initial delay, ms (0 = off). Env POOL_KEEPALIVE_MS, default 10,000. */
  keepAliveMs: number;
  /** application_name shown in pg_stat_activity. Env POOL_APPLICATION_NAME, default "orderflow". */
  applicationName: string;
  /** Statements slower than this are logged and counted, ms (0 logs every statement). Env SLOW_QUERY_MS, default 100. */
  slowQueryMs: number;
  /** Retries of a transaction on serialization failure or deadlock. Env TX_MAX_RETRIES, default 5. */
  txMaxRetries: number;
}

/** Ingest batching and backpressure (src/ingest/). */
export interface IngestConfig {
  /** A batch window closes at this many events. Env INGEST_BATCH_MAX_ROWS, default 10,000. */
  batchMaxRows: number;
  /** A batch window closes at this many encoded bytes. Env INGEST_BATCH_MAX_BYTES, default 8 MiB. */
  batchMaxBytes: number;
  /** A batch window closes this long after its first event, ms. Env INGEST_BATCH_MAX_MS, default 1. */
  batchMaxMs: number;
  /** Uncommitted events buffered per stream before reading pauses. Env INGEST_STREAM_MAX_BUFFERED, default 50,000. */
  streamMaxBuffered: number;
  /** Uncommitted events buffered over all streams before reading pauses. Env INGEST_MAX_BUFFERED, default 200,000. */
  maxBuffered: number;
  /** Cap of the backoff between retries of a failed flush, ms. Env INGEST_FLUSH_RETRY_MAX_MS, default 5,000. */
  flushRetryMaxMs: number;
  /** Flushes in flight at once (1 = strictly one after the other). Env INGEST_FLUSH_PIPELINE_DEPTH, default 2. */
  flushPipelineDepth: number;
}

/** Query cache (src/db/cache.ts). */
export interface CacheConfig {
  /** Max cached entries (0 disables the cache). Env CACHE_MAX_ENTRIES, default 100,000. */
  maxEntries: number;
  /** Max total size of cached values, bytes. Env CACHE_MAX_BYTES, default 64 MiB. */
  maxBytes: number;
  /** Time to live of an entry, ms. Env CACHE_TTL_MS, default 60,000. */
  ttlMs: number;
}

/** Read path admission (src/store/read-query.ts). */
export interface ReadConfig {
  /**
   * Read queries running or waiting for a connection at once; one more is
   * refused at once (RESOURCE_EXHAUSTED) instead of queueing. Env
   * READ_MAX_IN_FLIGHT, default 64.
   */
  maxInFlight: number;
}

/** The whole, validated configuration. Frozen. */
export interface Config {
  /** PostgreSQL URL; undefined starts the embedded database. Env DATABASE_URL. */
  databaseUrl: string | undefined;
  /** Directory of the embedded database (absolute). Env DATA_DIR, default ./.data. */
  dataDir: string;
  /** TCP port of the embedded database on 127.0.0.1. Env EMBEDDED_PG_PORT, default 54,329. */
  embeddedPgPort: number;
  /** gRPC listen address. Env GRPC_ADDRESS, default 127.0.0.1:50051. */
  grpcAddress: HostPort;
  /** Prometheus /metrics listen address; undefined when METRICS_ADDRESS=off. Default 127.0.0.1:9464. */
  metricsAddress: HostPort | undefined;
  /** Log level. Env LOG_LEVEL, default info. */
  logLevel: LogLevel;
  /** How long shutdown may take before it is forced, ms. Env SHUTDOWN_GRACE_MS, default 10,000. */
  shutdownGraceMs: number;
  /** Largest gRPC message accepted, bytes. Env GRPC_MAX_MESSAGE_BYTES, default 16 MiB. */
  grpcMaxMessageBytes: number;
  pool: PoolConfig;
  ingest: IngestConfig;
  cache: CacheConfig;
  read: ReadConfig;
  /** The standard OTEL_* variables (tracing); see otel.ts. */
  otel: OtelConfig;
}

/** Environment as plain strings; `process.env` fits. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses and validates the environment into a frozen Config.
 * Pure: reads only `env`. Throws one ConfigError listing every bad key.
 */
export function loadConfig(env: Env, cwd: string = process.cwd()): Config {
  const problems: ConfigProblem[] = [];
  const reader = new EnvReader(env, problems);

  const databaseUrl = reader.url('DATABASE_URL');
  const pool: PoolConfig = {
    max: reader.int('POOL_MAX', D.DEFAULT_POOL_MAX, 1, 10_000),
    min: reader.int('POOL_MIN', D.DEFAULT_POOL_MIN, 0, 10_000),
    idleTimeoutMs: reader.int('POOL_IDLE_TIMEOUT_MS', D.DEFAULT_POOL_IDLE_TIMEOUT_MS, 0),
    maxLifetimeMs: reader.int('POOL_MAX_LIFETIME_MS', D.DEFAULT_POOL_MAX_LIFETIME_MS, 0),
    lifetimeJitterMs: reader.int('POOL_LIFETIME_JITTER_MS', D.DEFAULT_POOL_LIFETIME_JITTER_MS, 0),
    maxUses: reader.int('POOL_MAX_USES', D.DEFAULT_POOL_MAX_USES, 0),
    acquireTimeoutMs: reader.int('POOL_ACQUIRE_TIMEOUT_MS', D.DEFAULT_POOL_ACQUIRE_TIMEOUT_MS, 1),
    connectTimeoutMs: reader.int('POOL_CONNECT_TIMEOUT_MS', D.DEFAULT_POOL_CONNECT_TIMEOUT_MS, 1),
    statementTimeoutMs: reader.int('POOL_STATEMENT_TIMEOUT_MS', D.DEFAULT_POOL_STATEMENT_TIMEOUT_MS, 0),
    queryTimeoutMs: reader.int('POOL_QUERY_TIMEOUT_MS', D.DEFAULT_POOL_QUERY_TIMEOUT_MS, 1),
    keepAliveMs: reader.int('POOL_KEEPALIVE_MS', D.DEFAULT_POOL_KEEPALIVE_MS, 0),
    applicationName: reader.str('POOL_APPLICATION_NAME', D.DEFAULT_POOL_APPLICATION_NAME, /^[\x20-\x7e]{1,63}$/),
    slowQueryMs: reader.int('SLOW_QUERY_MS', D.DEFAULT_SLOW_QUERY_MS, 0),
    txMaxRetries: reader.int('TX_MAX_RETRIES', D.DEFAULT_TX_MAX_RETRIES, 0, 100),
  };
  const ingest: IngestConfig = {
    batchMaxRows: reader.int('INGEST_BATCH_MAX_ROWS', D.DEFAULT_INGEST_BATCH_MAX_ROWS, 1, 1_000_000),
    batchMaxBytes: reader.int('INGEST_BATCH_MAX_BYTES', D.DEFAULT_INGEST_BATCH_MAX_BYTES, 1_024, 1024 * 1024 * 1024),
    batchMaxMs: reader.int('INGEST_BATCH_MAX_MS', D.DEFAULT_INGEST_BATCH_MAX_MS, 0, 60_000),
    streamMaxBuffered: reader.int('INGEST_STREAM_MAX_BUFFERED', D.DEFAULT_INGEST_STREAM_MAX_BUFFERED, 1),
    maxBuffered: reader.int('INGEST_MAX_BUFFERED', D.DEFAULT_INGEST_MAX_BUFFERED, 1),
    flushRetryMaxMs: reader.int('INGEST_FLUSH_RETRY_MAX_MS', D.DEFAULT_INGEST_FLUSH_RETRY_MAX_MS, 1),
    flushPipelineDepth: reader.int('INGEST_FLUSH_PIPELINE_DEPTH', D.DEFAULT_INGEST_FLUSH_PIPELINE_DEPTH, 1, 8),
  };
  const cache: CacheConfig = {
    maxEntries: reader.int('CACHE_MAX_ENTRIES', D.DEFAULT_CACHE_MAX_ENTRIES, 0),
    maxBytes: reader.int('CACHE_MAX_BYTES', D.DEFAULT_CACHE_MAX_BYTES, 1_024),
    ttlMs: reader.int('CACHE_TTL_MS', D.DEFAULT_CACHE_TTL_MS, 1),
  };
  const read: ReadConfig = {
    maxInFlight: reader.int('READ_MAX_IN_FLIGHT', D.DEFAULT_READ_MAX_IN_FLIGHT, 1, 100_000),
  };
  const config: Config = {
    databaseUrl,
    dataDir: path.resolve(cwd, reader.str('DATA_DIR', D.DEFAULT_DATA_DIR, /^.+$/)),
    embeddedPgPort: reader.int('EMBEDDED_PG_PORT', D.DEFAULT_EMBEDDED_PG_PORT, 1, 65_535),
    grpcAddress: reader.hostPort('GRPC_ADDRESS', D.DEFAULT_GRPC_ADDRESS, false) as HostPort,
    metricsAddress: reader.hostPort('METRICS_ADDRESS', D.DEFAULT_METRICS_ADDRESS, true),
    logLevel: reader.oneOf('LOG_LEVEL', D.DEFAULT_LOG_LEVEL as LogLevel, LOG_LEVELS),
    shutdownGraceMs: reader.int('SHUTDOWN_GRACE_MS', D.DEFAULT_SHUTDOWN_GRACE_MS, 100, 600_000),
    grpcMaxMessageBytes: reader.int('GRPC_MAX_MESSAGE_BYTES', D.DEFAULT_GRPC_MAX_MESSAGE_BYTES, 1_024, 1024 * 1024 * 1024),
    pool,
    ingest,
    cache,
    read,
    otel: readOtelConfig(env, problems),
  };

  // Contradictions between settings (checked only when each side parsed).
  if (pool.min > pool.max) problems.push({ key: 'POOL_MIN', problem: `must not exceed POOL_MAX (${pool.max})` });
  if (ingest.batchMaxRows > ingest.maxBuffered) {
    problems.push({ key: 'INGEST_BATCH_MAX_ROWS', problem: `must not exceed INGEST_MAX_BUFFERED (${ingest.maxBuffered})` });
  }
  if (ingest.streamMaxBuffered > ingest.maxBuffered) {
    problems.push({ key: 'INGEST_STREAM_MAX_BUFFERED', problem: `must not exceed INGEST_MAX_BUFFERED (${ingest.maxBuffered})` });
  }
  if (pool.statementTimeoutMs > 0 && pool.queryTimeoutMs <= pool.statementTimeoutMs) {
    problems.push({
      key: 'POOL_QUERY_TIMEOUT_MS',
      problem: `must exceed POOL_STATEMENT_TIMEOUT_MS (${pool.statementTimeoutMs}) so the server cancels first`,
    });
  }
  if (pool.max < 2) problems.push({ key: 'POOL_MAX', problem: 'must be at least 2 (ingest holds one connection while reads use another)' });

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** Reads typed values from raw strings, recording every problem instead of throwing. */
class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: ConfigProblem[],
  ) {}

  private raw(key: string): string | undefined {
    const value = this.env[key];
    if (value === undefined) return undefined;
    const trimmed = value.trim();
    return trimmed === '' ? undefined : trimmed;
  }

  int(key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const raw = this.raw(key);
    if (raw === undefined) return fallback;
    const normalised = raw.replace(/_/g, '');
    if (!/^-?\d+$/.test(normalised)) {
      this.problems.push({ key, problem: `must be a whole number, got ${JSON.stringify(raw)}` });
      return fallback;
    }
    const value = Number(normalised);
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      this.problems.push({ key, problem: `must be between ${min} and ${max}, got ${raw}` });
      return fallback;
    }
    return value;
  }

  str(key: string, fallback: string, pattern: RegExp): string {
    const raw = this.raw(key);
    if (raw === undefined) return fallback;
    if (!pattern.test(raw)) {
      this.problems.push({ key, problem: `has an invalid value ${JSON.stringify(raw)}` });
      return fallback;
    }
    return raw;
  }

  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.raw(key);
    if (raw === undefined) return fallback;
    const lower = raw.toLowerCase() as T;
    if (!allowed.includes(lower)) {
      this.problems.push({ key, problem: `must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}` });
      return fallback;
    }
    return lower;
  }

  url(key: string): string | undefined {
    const raw = this.raw(key);
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
        this.problems.push({ key, problem: 'must be a postgres:// or postgresql:// URL' });
        return undefined;
      }
    } catch {
      this.problems.push({ key, problem: 'is not a valid URL' });
      return undefined;
    }
    return raw;
  }

  /** host:port, [v6]:port; `off` allowed when `optional`. Port 0 means "any free port". */
  hostPort(key: string, fallback: string, optional: boolean): HostPort | undefined {
    const raw = this.raw(key) ?? fallback;
    if (optional && raw.toLowerCase() === 'off') return undefined;
    const parsed = parseHostPort(raw);
    if (parsed === undefined) {
      this.problems.push({ key, problem: `must be host:port (e.g. 127.0.0.1:50051 or [::1]:50051)${optional ? ' or off' : ''}, got ${JSON.stringify(raw)}` });
      return parseHostPort(fallback);
    }
    return parsed;
  }
}

/** Parses `host:port` or `[v6]:port`. Returns undefined when malformed. */
export function parseHostPort(value: string): HostPort | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  return { host: match[1] ?? match[2]!, port };
}

/** Formats a HostPort for grpc-js `bindAsync` / logs. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
