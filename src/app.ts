import type { Config } from './config';
import { EmbeddedPostgres } from './db/embedded';
import { migrate } from './db/migrate';
import { createPool } from './db/pool';
import type { Pool } from './db/types';
import { ShuttingDownError } from './errors';
import type { OrderFlowHandlers } from './generated/orderflow/v1/OrderFlow';
import { FlushWriter } from './ingest/flush-writer';
import { IngestPipeline } from './ingest/pipeline';
import { HealthReporter } from './rpc/health';
import { createBustHandlers } from './rpc/bust-service';
import { ReadPath } from './rpc/read-path';
import { IngestService, withIngestRequestsAsBytes } from './rpc/ingest-service';
import { withReadSerializers } from './rpc/read-serializers';
import { orderFlowServiceDefinition } from './rpc/proto';
import { FillBuster } from './store/busts';
import type { FlushHooks } from './store/change-set';
import { openSource } from './store/sources';
import { GrpcServer } from './rpc/server';
import type { Logger } from './telemetry/logger';
import { MetricsServer } from './telemetry/metrics';
import { shutdownTracing } from './telemetry/tracing';

/** Life cycle of the whole service. */
export type AppState = 'STARTING' | 'RUNNING' | 'DRAINING' | 'CLOSED';

/** How often health probes the database, ms. */
const HEALTH_PROBE_INTERVAL_MS = 2_000;
/** How long to wait for the database at start-up, ms. */
const DATABASE_WAIT_MS = 60_000;
/** Longest wait for the last spans to reach the collector at shutdown, ms. */
const TRACER_SHUTDOWN_MS = 5_000;

/**
 * The running service: database (embedded or DATABASE_URL), pool, migrations,
 * gRPC server and metrics. `close()` runs the ordered shutdown.
 */
export class App {
  private stateValue: AppState = 'STARTING';
  private closePromise: Promise<void> | undefined;
  private embedded: EmbeddedPostgres | undefined;
  private poolValue: Pool | undefined;
  private server: GrpcServer | undefined;
  private metrics: MetricsServer | undefined;
  private health: HealthReporter | undefined;
  private readPathValue: ReadPath | undefined;
  private ingest: IngestService | undefined;
  private grpcPortValue = 0;
  private metricsPortValue = 0;

  constructor(
    readonly config: Config,
    private readonly logger: Logger,
  ) {}

  get state(): AppState {
    return this.stateValue;
  }

  get grpcPort(): number {
    return this.grpcPortValue;
  }

  get metricsPort(): number {
    return this.metricsPortValue;
  }

  get pool(): Pool {
    if (!this.poolValue) throw new ShuttingDownError('service');
    return this.poolValue;
  }

  /** The read side: query cache, invalidation listener, query handlers. */
  get readPath(): ReadPath {
    if (!this.readPathValue) throw new ShuttingDownError('service');
    return this.readPathValue;
  }

  /** What the ingest flush calls around its commit: NOTIFY inside, cache invalidation after (before acks). */
  get flushHooks(): FlushHooks {
    return this.readPath.hooks;
  }

  /** Starts every component in dependency order. On failure, stops what was started and rethrows. */
  async start(): Promise<void> {
    try {
      await this.startComponents();
      this.stateValue = 'RUNNING';
    } catch (err) {
      await this.close().catch((closeErr: unknown) => this.logger.error({ err: closeErr }, 'cleanup after failed start failed'));
      throw err;
    }
  }

  private async startComponents(): Promise<void> {
    const { config, logger } = this;
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      this.embedded = new EmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
      databaseUrl = await this.embedded.start();
      logger.info({ dataDir: config.dataDir, port: config.embeddedPgPort }, 'embedded PostgreSQL running');
    }
    this.poolValue = createPool({ connectionString: databaseUrl, config: config.pool, logger });
    await waitForDatabase(this.poolValue, DATABASE_WAIT_MS, logger);
    const { applied, current } = await migrate(this.poolValue, logger);
    logger.info({ applied, schemaVersion: current }, 'schema ready');

    const pool = this.poolValue;
    this.health = new HealthReporter({
      probe: async () => {
        await pool.query({ op: 'health.ping', timeoutMs: 1_500 }, 'SELECT 1');
      },
      intervalMs: HEALTH_PROBE_INTERVAL_MS,
      logger,
    });
    const handlers: Partial<OrderFlowHandlers> = {};
    // Read-path wiring (cache, invalidation listener, query RPCs). It comes
    // before ingest: the pipeline takes its FlushHooks from the read path.
    this.readPathValue = await ReadPath.start({ pool, connectionString: databaseUrl, config, logger });
    Object.assign(handlers, this.readPathValue.handlers);
    // Trade busts (issue #8): invalidate through the same hooks as an ingest flush.
    Object.assign(handlers, createBustHandlers(new FillBuster({ pool, hooks: this.readPathValue.hooks }), logger));
    // Ingest wiring (pipeline + Ingest RPC).
    const flushHooks: FlushHooks = this.readPathValue.hooks;
    const pipeline = new IngestPipeline({
      config: config.ingest,
      sink: new FlushWriter({ pool, hooks: flushHooks, logger, retryMaxMs: config.ingest.flushRetryMaxMs }),
      openSource: (sourceId) => openSource(pool, sourceId),
      hooks: flushHooks,
      logger,
    });
    this.ingest = new IngestService(pipeline, logger);
    handlers.Ingest = this.ingest.handler as unknown as OrderFlowHandlers['Ingest'];
    this.server = new GrpcServer({
      address: config.grpcAddress,
      handlers,
      health: this.health,
      logger,
      maxMessageBytes: config.grpcMaxMessageBytes,
      definition: withReadSerializers(withIngestRequestsAsBytes(orderFlowServiceDefinition())),
    });
    this.grpcPortValue = await this.server.start();
    await this.health.start();
    if (config.metricsAddress) {
      this.metrics = new MetricsServer(config.metricsAddress, logger);
      this.metricsPortValue = await this.metrics.start();
    }
  }

  /**
   * Ordered shutdown: health NOT_SERVING; ingest stops reading its streams,
   * flushes, sends the last acks and ends the streams with UNAVAILABLE; the
   * server stops accepting and drains calls (forced at the grace deadline);
   * the read path closes its listener; the pool closes; tracing flushes; the
   * embedded database stops. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closePromise) this.closePromise = this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.stateValue = 'DRAINING';
    const { logger } = this;
    this.health?.shutdown();
    await this.ingest?.close(this.config.shutdownGraceMs).catch((err: unknown) => logger.error({ err }, 'closing ingest failed'));
    await this.server?.close(this.config.shutdownGraceMs);
    await this.metrics?.close();
    // After the ingest pipeline's last flush (its afterCommit still invalidates), before the pool.
    await this.readPathValue?.close().catch((err: unknown) => logger.error({ err }, 'closing the read path failed'));
    await this.poolValue?.close().catch((err: unknown) => logger.error({ err }, 'closing the pool failed'));
    // After the pool (its last spans are ended), before the database stops.
    await shutdownTracing(TRACER_SHUTDOWN_MS, (err) => logger.warn({ err }, 'flushing spans at shutdown failed'));
    await this.embedded?.stop().catch((err: unknown) => logger.error({ err }, 'stopping embedded PostgreSQL failed'));
    this.stateValue = 'CLOSED';
    logger.info('orderflow stopped');
  }
}

/** Retries a trivial query until the database answers or the deadline passes. */
async function waitForDatabase(pool: Pool, timeoutMs: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query('startup.ping', 'SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`The database did not answer within ${timeoutMs} ms.`, { cause: err });
      if (attempt === 1 || attempt % 10 === 0) logger.warn({ err: (err as Error).message }, 'waiting for the database');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
