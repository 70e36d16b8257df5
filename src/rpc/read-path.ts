import { randomUUID } from 'node:crypto';
import type { Config } from '../config';
import { QueryCache } from '../db/cache';
import type { Pool } from '../db/types';
import type { FlushHooks } from '../store/change-set';
import { FillStore } from '../store/fills';
import { createFlushHooks, InvalidationListener } from '../store/invalidation';
import { OrderStore } from '../store/orders';
import { PositionStore } from '../store/positions';
import { ReadQueries } from '../store/read-query';
import type { Logger } from '../telemetry/logger';
import { loadPageTokenSecret, PageTokenCodec } from './page-token';
import { createQueryHandlers, type QueryHandlers } from './query-service';

/** Everything the read path needs from the service. */
export interface ReadPathOptions {
  pool: Pool;
  /** URL of the database; the LISTEN connection is opened with it. */
  connectionString: string;
  config: Config;
  logger: Logger;
}

/**
 * The read side of one instance: query cache, its invalidation (flush hooks
 * for this instance, LISTEN for the others), the stores and the query RPC
 * handlers. `close()` stops the listener and drops the cache.
 */
export class ReadPath {
  private closePromise: Promise<void> | undefined;

  private constructor(
    /** This instance's id in NOTIFY payloads. */
    readonly instanceId: string,
    readonly cache: QueryCache,
    readonly queries: ReadQueries,
    readonly listener: InvalidationListener,
    /** Hooks the ingest flush must call around its commit (read-your-writes). */
    readonly hooks: Required<FlushHooks>,
    readonly handlers: QueryHandlers,
  ) {}

  /** Builds the read path and connects its listener (retried in the background if the first attempt fails). */
  static async start(options: ReadPathOptions): Promise<ReadPath> {
    const { pool, config, logger } = options;
    const cache = new QueryCache({ ...config.cache, logger });
    const queries = new ReadQueries(pool, config.read.maxInFlight);
    const pageTokens = new PageTokenCodec(await loadPageTokenSecret(pool));
    const handlers = createQueryHandlers({
      cache,
      orders: new OrderStore(queries),
      fills: new FillStore(queries),
      positions: new PositionStore(queries),
      pageTokens,
      logger,
    });
    const instanceId = randomUUID();
    const listener = new InvalidationListener({
      connectionString: options.connectionString,
      cache,
      instanceId,
      logger,
      applicationName: `${config.pool.applicationName}-listener`.slice(0, 63),
    });
    const readPath = new ReadPath(instanceId, cache, queries, listener, createFlushHooks(cache, instanceId, logger), handlers);
    await listener.start();
    return readPath;
  }

  /** RUNNING until close() is called. */
  get state(): 'RUNNING' | 'CLOSED' {
    return this.closePromise ? 'CLOSED' : 'RUNNING';
  }

  /** Stops the listener and drops the cache. Idempotent. */
  close(): Promise<void> {
    if (!this.closePromise) this.closePromise = this.listener.close().then(() => this.cache.close());
    return this.closePromise;
  }
}
