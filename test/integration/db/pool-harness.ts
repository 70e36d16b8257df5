import { Writable } from 'node:stream';
import type { Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { loadConfig, type Env } from '../../../src/config';
import { createPool } from '../../../src/db/pool';
import type { Pool } from '../../../src/db/types';
import { createLogger, silentLogger, type Logger } from '../../../src/telemetry/logger';
import { registry } from '../../../src/telemetry/metrics';
import { createTestDatabase, withClient, type TestDatabase } from '../../helpers/postgres';

/** One JSON log line as written by pino. */
export type LogLine = Record<string, unknown> & { msg?: string };

/** A logger whose lines land in `lines` (parsed), for asserting on log output. */
export function captureLogger(level = 'info'): { logger: Logger; lines: LogLine[]; raw: string[] } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      callback();
    },
  });
  return { logger: createLogger(level, destination), lines, raw };
}

/** A tracer that records every finished span in memory (no global registration). */
export function spanRecorder(): { tracer: Tracer; spans(): ReadableSpan[]; reset(): void } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { tracer: provider.getTracer('orderflow-test'), spans: () => exporter.getFinishedSpans(), reset: () => exporter.reset() };
}

/** Polls `predicate` until it holds or `timeoutMs` passes (then throws naming `what`). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The value of a Prometheus series (sum over matching label sets), 0 when absent. */
export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name.replace(/_(count|sum|bucket)$/, ''));
  if (!metric) return 0;
  const data = await metric.get();
  let sum = 0;
  for (const value of data.values) {
    const v = value as { metricName?: string; labels: Record<string, unknown>; value: number };
    if (v.metricName !== undefined && v.metricName !== name) continue;
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

/** state and query of a backend in pg_stat_activity (undefined when the backend is gone). */
export async function backendActivity(url: string, pid: number): Promise<{ state: string; query: string } | undefined> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ state: string; query: string }>('SELECT state, query FROM pg_stat_activity WHERE pid = $1', [pid]);
    return rows[0];
  });
}

/** Backend pids of connections with `applicationName` in the database. */
export async function backendPids(url: string, applicationName: string): Promise<number[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid', [applicationName]);
    return rows.map((r) => r.pid);
  });
}

/**
 * A suite's database and the pools its tests create; `cleanup()` closes the
 * pools and drops the database (call in afterEach/after).
 */
export class PoolHarness {
  private readonly pools: Pool[] = [];
  private database: TestDatabase | undefined;
  private counter = 0;

  constructor(private readonly suite: string) {}

  /** Creates the suite's database. */
  async setup(): Promise<void> {
    this.database = await createTestDatabase(this.suite);
  }

  get url(): string {
    if (!this.database) throw new Error('PoolHarness.setup() was not called');
    return this.database.url;
  }

  /** A unique application_name, so pg_stat_activity shows only this pool's backends. */
  appName(): string {
    return `of_${this.suite.replace(/[^a-z0-9]/gi, '_')}_${++this.counter}`.slice(0, 60);
  }

  /** A pool on the suite's database (or `url`), POOL_MIN 0 unless `env` says otherwise. */
  pool(env: Env = {}, options: { url?: string; logger?: Logger; tracer?: Tracer } = {}): Pool {
    const config = loadConfig({ POOL_MIN: '0', ...env }).pool;
    const pool = createPool({ connectionString: options.url ?? this.url, config, logger: options.logger ?? silentLogger, tracer: options.tracer });
    this.pools.push(pool);
    return pool;
  }

  /** Closes every pool and drops the database. */
  async cleanup(): Promise<void> {
    await Promise.all(this.pools.splice(0).map((p) => p.close()));
    await this.database?.drop();
    this.database = undefined;
  }
}
