import pg from 'pg';
import type { QueryCache } from '../db/cache';
import { cacheMetrics } from '../db/cache-metrics';
import type { Logger } from '../telemetry/logger';
import { accountTag, ANY_CHANGE_TAG, orderTag, positionTag } from './cache-tags';
import { MAX_NOTIFY_PAYLOAD_BYTES, type ChangedIds, type ChangeSet, type FlushHooks } from './change-set';
import type { Notification } from './sources';

/** The LISTEN/NOTIFY channel of cache invalidations. */
export const INVALIDATION_CHANNEL = 'orderflow_cache_invalidation';

/** What one NOTIFY says: the sender, and either the changed ids or "drop everything". */
export interface InvalidationMessage {
  /** Instance that committed the flush. */
  instanceId: string;
  /** Tags to invalidate; `undefined` means invalidate everything. */
  tags: string[] | undefined;
}

/**
 * Encodes the ids of a ChangeSet as a compact JSON payload,
 * `{"v":1,"i":…,"o":[orders],"a":[accounts],"p":[[account,symbol],…]}`, or
 * `{"v":1,"i":…,"all":true}` when there are none (too many to keep, see
 * ChangeSetBuilder) or they would not fit in a NOTIFY.
 */
export function encodeInvalidation(instanceId: string, ids: ChangedIds | undefined): string {
  const all = JSON.stringify({ v: 1, i: instanceId, all: true });
  if (!ids) return all;
  const pairs: [string, string][] = [];
  for (const [account, symbols] of ids.symbolsByAccount) for (const symbol of symbols) pairs.push([account, symbol]);
  const full = JSON.stringify({ v: 1, i: instanceId, o: [...ids.orderIds], a: [...ids.accountIds], p: pairs });
  return Buffer.byteLength(full) <= MAX_NOTIFY_PAYLOAD_BYTES ? full : all;
}

/**
 * How every payload of `instanceId` begins (both forms above: JSON.stringify
 * keeps the key order). The listener skips its own notifications by this
 * prefix instead of parsing each one: one per flush, up to 8,000 bytes.
 */
export function invalidationPrefix(instanceId: string): string {
  return `{"v":1,"i":${JSON.stringify(instanceId)},`;
}

/** Decodes a payload. Anything malformed decodes as "invalidate everything": losing an invalidation is never safe. */
export function decodeInvalidation(payload: string): InvalidationMessage {
  try {
    const msg = JSON.parse(payload) as { v?: unknown; i?: unknown; all?: unknown; o?: unknown; a?: unknown; p?: unknown };
    const instanceId = typeof msg.i === 'string' ? msg.i : '';
    if (msg.v !== 1 || msg.all === true || !isStrings(msg.o) || !isStrings(msg.a) || !Array.isArray(msg.p) || !msg.p.every((p) => isStrings(p) && p.length === 2)) {
      return { instanceId, tags: undefined };
    }
    const tags = [...msg.o.map(orderTag), ...msg.a.map(accountTag), ...(msg.p as [string, string][]).map(([a, s]) => positionTag(a, s))];
    if (tags.length > 0) tags.push(ANY_CHANGE_TAG);
    return { instanceId, tags };
  } catch {
    return { instanceId: '', tags: undefined };
  }
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/**
 * The FlushHooks of the read path. A NOTIFY is sent inside the flush
 * transaction, so other instances hear of the flush exactly when it commits
 * (never for a rollback): the ingest flush sends `notification` with its
 * seal, other writers (busts) through beforeCommit. afterCommit invalidates
 * this instance's cache before any ack is sent: read-your-writes.
 */
export function createFlushHooks(cache: QueryCache, instanceId: string, logger: Logger): Required<FlushHooks> {
  const notification = (changes: ChangeSet): Notification | undefined => {
    if (changes.tagHashes.length === 0) return undefined;
    // Counted when built: the writer sends it in the transaction it commits or retries.
    cacheMetrics.notificationsSent.inc();
    return { channel: INVALIDATION_CHANNEL, payload: encodeInvalidation(instanceId, changes.ids) };
  };
  return {
    notification,
    async beforeCommit(tx, changes) {
      const n = notification(changes);
      if (n) await tx.query({ op: 'cache.notify' }, 'SELECT pg_notify($1, $2)', [n.channel, n.payload]);
    },
    afterCommit(changes) {
      try {
        if (changes.tagHashes.length > 0) cache.invalidateTagHashes(changes.tagHashes, 'local');
      } catch (err) {
        // Must not throw (acks follow); dropping everything is always safe.
        logger.error({ err }, 'cache invalidation failed; clearing the cache');
        cache.invalidateAll('local');
      }
    },
  };
}

/** Options of the invalidation listener. */
export interface InvalidationListenerOptions {
  connectionString: string;
  cache: QueryCache;
  /**
   * This instance's id. Its own notifications are skipped: afterCommit
   * already invalidated before the ack, and a second invalidation, arriving
   * later, would only drop entries fetched since the commit (fresh ones).
   */
  instanceId: string;
  logger: Logger;
  /** application_name of the LISTEN connection (visible in pg_stat_activity). */
  applicationName: string;
  /** First reconnect delay, ms; doubles per failed attempt. Default 100. */
  reconnectBaseMs?: number;
  /** Cap of the reconnect delay, ms. Default 5,000. */
  reconnectMaxMs?: number;
  /** How often the idle connection is probed, ms, to find a half-open socket. Default 5,000. */
  pingIntervalMs?: number;
  /** Connect and probe timeout, ms. Default 5,000. */
  timeoutMs?: number;
}

/** Life cycle of the listener. Only LISTENING lets the cache store entries. */
export type InvalidationListenerState = 'STARTING' | 'LISTENING' | 'RECONNECTING' | 'CLOSED';

/**
 * One dedicated LISTEN connection per instance (a plain pg.Client: a pooled
 * connection would be recycled, and LISTEN belongs to the session). Remote
 * invalidations arrive here. While it is down, this instance cannot hear
 * other instances' commits, so the cache is cleared and stops storing until
 * LISTEN is back; reconnects back off exponentially with jitter.
 */
export class InvalidationListener {
  private stateValue: InvalidationListenerState = 'STARTING';
  private client: pg.Client | undefined;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private closePromise: Promise<void> | undefined;
  /** This instance's own notifications begin with this (it invalidated before its acks already). */
  private readonly ownPrefix: string;

  constructor(private readonly options: InvalidationListenerOptions) {
    this.ownPrefix = invalidationPrefix(options.instanceId);
    options.cache.suspend();
  }

  get state(): InvalidationListenerState {
    return this.stateValue;
  }

  /** Backend pid of the LISTEN connection, when connected (tests terminate it). */
  get processId(): number | undefined {
    return (this.client as unknown as { processID?: number } | undefined)?.processID;
  }

  /** Connects once; on failure keeps retrying in the background. Never rejects. */
  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'cache invalidation listener could not connect; retrying');
      this.scheduleReconnect();
    }
  }

  private async connect(): Promise<void> {
    const { options } = this;
    const timeoutMs = options.timeoutMs ?? 5_000;
    const client = new pg.Client({
      connectionString: options.connectionString,
      application_name: options.applicationName,
      keepAlive: true,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
    });
    client.on('error', (err) => this.onLost(client, err));
    client.on('end', () => this.onLost(client, undefined));
    client.on('notification', (msg) => this.onNotification(msg));
    try {
      await client.connect();
      await client.query(`LISTEN ${INVALIDATION_CHANNEL}`);
    } catch (err) {
      client.end().catch(() => undefined);
      throw err;
    }
    if (this.stateValue === 'CLOSED') {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.attempt = 0;
    this.stateValue = 'LISTENING';
    // Only now can every later commit be heard: store again.
    options.cache.resume();
    this.pingTimer = setInterval(() => this.ping(client), options.pingIntervalMs ?? 5_000);
    this.pingTimer.unref();
    options.logger.info({ channel: INVALIDATION_CHANNEL }, 'cache invalidation listener connected');
  }

  private ping(client: pg.Client): void {
    client.query('SELECT 1').catch((err: unknown) => this.onLost(client, err));
  }

  private onNotification(msg: pg.Notification): void {
    if (msg.channel !== INVALIDATION_CHANNEL) return;
    const payload = msg.payload ?? '';
    if (payload.startsWith(this.ownPrefix)) return;
    const { instanceId, tags } = decodeInvalidation(payload);
    if (instanceId === this.options.instanceId) return;
    if (tags === undefined) this.options.cache.invalidateAll('remote');
    else if (tags.length > 0) this.options.cache.invalidate(tags, 'remote');
  }

  private onLost(client: pg.Client, err: unknown): void {
    if (client !== this.client) return;
    this.client = undefined;
    clearInterval(this.pingTimer);
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    if (this.stateValue === 'CLOSED') return;
    // Commits from now until LISTEN is back would go unheard.
    this.options.cache.suspend();
    cacheMetrics.listenerReconnects.inc();
    this.options.logger.warn({ err: (err as Error | undefined)?.message }, 'cache invalidation listener lost its connection; cache cleared, reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stateValue === 'CLOSED') return;
    this.stateValue = 'RECONNECTING';
    const base = this.options.reconnectBaseMs ?? 100;
    const max = this.options.reconnectMaxMs ?? 5_000;
    const delayMs = Math.min(max, base * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch((err: unknown) => {
        this.options.logger.warn({ err: (err as Error).message, attempt: this.attempt }, 'cache invalidation listener reconnect failed');
        this.scheduleReconnect();
      });
    }, delayMs);
    this.reconnectTimer.unref();
  }

  /** Stops listening and reconnecting. Idempotent. */
  close(): Promise<void> {
    if (!this.closePromise) {
      this.stateValue = 'CLOSED';
      clearTimeout(this.reconnectTimer);
      clearInterval(this.pingTimer);
      const client = this.client;
      this.client = undefined;
      this.closePromise = client ? client.end().catch(() => undefined) : Promise.resolve();
    }
    return this.closePromise;
  }
}
