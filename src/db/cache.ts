import { SpanStatusCode } from '@opentelemetry/api';
import { LRUCache } from 'lru-cache';
import { CancelledError, ShuttingDownError } from '../errors';
import type { Logger } from '../telemetry/logger';
import { getTracer } from '../telemetry/tracing';
import { tagHash, type TagHash } from './tag-hash';
import { cacheMetrics, trackCacheSize, type InvalidationOrigin } from './cache-metrics';

export type { InvalidationOrigin } from './cache-metrics';

/** A cache key; only `cacheKey()` makes them. */
export type CacheKey = string & { readonly __brand: 'CacheKey' };

/** A value a cache key may be built from. `undefined` means "absent" and is left out. */
export type CacheKeyParam = string | number | boolean | null | undefined | readonly string[];

const OP_PATTERN = /^[a-z][a-z0-9_.]*$/;

/**
 * Builds the key of one cached read: the ONLY place keys are made. The
 * operation name (e.g. `orders.get`) cannot contain `|`, and the parameters
 * are JSON-encoded sorted by name, so keys of different operations never
 * collide, `"1"` and `1` differ, and `{a, b}` and `{b, a}` are one key.
 */
export function cacheKey(op: string, params: Readonly<Record<string, CacheKeyParam>>): CacheKey {
  if (!checkedOps.has(op)) {
    if (!OP_PATTERN.test(op)) throw new TypeError(`cache operation names are lower-case dotted words, got ${JSON.stringify(op)}`);
    if (checkedOps.size < MAX_CHECKED_OPS) checkedOps.add(op);
  }
  const names = Object.keys(params);
  if (names.length === 1) {
    // The common single-parameter key (orders.get), spelled as JSON.stringify([[name, value]]) would.
    const value = params[names[0]!];
    return (value === undefined ? `${op}|[]` : `${op}|[[${JSON.stringify(names[0])},${JSON.stringify(value)}]]`) as CacheKey;
  }
  // The default sort orders by UTF-16 code units, as `<` does.
  names.sort();
  const entries: [string, CacheKeyParam][] = [];
  for (const name of names) {
    const value = params[name];
    if (value !== undefined) entries.push([name, value]);
  }
  return `${op}|${JSON.stringify(entries)}` as CacheKey;
}

/** Operation names already checked against OP_PATTERN (they are constants in the code: a handful). */
const checkedOps = new Set<string>();
const MAX_CHECKED_OPS = 1_000;

/** One cacheable read: its key and the invalidation tags its value depends on. */
export interface CacheItem {
  key: CacheKey;
  /** Invalidating any of these tags drops the entry and keeps older fetches from storing it. */
  tags: readonly string[];
}

/** How a read was answered: a stored entry, a fetch it started, or a fetch it joined. */
export type CacheSource = 'hit' | 'miss' | 'coalesced';

/** A value and how it was obtained. */
export interface Cached<V> {
  value: V;
  source: CacheSource;
}

/** Fetches the values of `items` (same order, same length); `null` is a valid, cacheable "not found". */
export type FetchMany<V> = (items: readonly CacheItem[], signal: AbortSignal) => Promise<V[]>;

/** Options of the query cache (see CacheConfig for units and defaults). */
export interface QueryCacheOptions {
  /** Max entries; 0 disables storing (single flight still applies). */
  maxEntries: number;
  /** Max estimated bytes of all entries. */
  maxBytes: number;
  /** Longest time to live of an entry, ms; each entry gets a random share of it between 1 - TTL_SPREAD and 1. */
  ttlMs: number;
  logger: Logger;
}

/** Life cycle of the cache. SUSPENDED: nothing is stored (remote invalidations cannot be heard). */
export type QueryCacheState = 'RUNNING' | 'SUSPENDED' | 'CLOSED';

/** Test hook: runs after a fetch returned and before its value is delivered and stored. */
export type AfterFetchHook = (kind: string, items: readonly CacheItem[]) => Promise<void>;

interface Entry {
  value: unknown;
  tagHashes: readonly TagHash[];
  kind: string;
  bytes: number;
  /** What a hit returns, built once at store time (a hit allocates nothing). */
  hit: Cached<unknown>;
}

/** A running fetch, shared by every caller waiting for one of its keys. */
class Flight {
  readonly controller = new AbortController();
  waiters = 0;
  settled = false;
  promise!: Promise<unknown[]>;

  /** The hashes of each item's tags, parallel to `items`. */
  readonly tagHashes: readonly (readonly TagHash[])[];

  constructor(
    readonly startSeq: number,
    readonly items: readonly CacheItem[],
  ) {
    this.tagHashes = items.map((item) => item.tags.map(tagHash));
  }
}

/** Fixed per-entry overhead added to the JSON size estimate (key, entry object, LRU slots). */
const ENTRY_OVERHEAD_BYTES = 96;
/**
 * Each entry lives a random time between (1 - TTL_SPREAD) × ttlMs and ttlMs,
 * never longer. Entries loaded together (a warm-up, a burst of reads) would
 * otherwise expire together and send their misses to the database at once,
 * beyond READ_MAX_IN_FLIGHT.
 */
const TTL_SPREAD = 0.1;
/** Above this many remembered invalidations, prune those no running fetch can be compared against. */
const INVALIDATED_AT_PRUNE_SIZE = 50_000;

/**
 * The read path's query cache: LRU bounded by entries and bytes, with a TTL
 * spread over its last tenth (TTL_SPREAD), single flight per key, per-caller
 * cancellation and race-free invalidation.
 *
 * Race-freedom: every invalidation takes the next number of a sequence and
 * records it per tag; a fetch records the sequence when it starts (before
 * its query is sent). A fetch stores its value only if none of its tags was
 * invalidated since, and a caller joins a running fetch only under the same
 * condition. So a fetch whose snapshot may predate a commit can neither
 * store its older value after the commit's invalidation nor hand it to a
 * reader that arrived after the ack. This works because every
 * invalidation (local afterCommit, or a NOTIFY, delivered only once the
 * commit is visible) happens after its commit: what matters is the order in
 * which this process sees fetch starts and invalidations, and an in-process
 * counter captures exactly that for free. An LSN stamp would cost a round
 * trip per fetch; per-key versions would work too but need a map entry per
 * key ever invalidated, while the per-tag map here lives only while fetches run.
 */
export class QueryCache {
  private readonly lru: LRUCache<CacheKey, Entry> | undefined;
  /** Stored keys by the hash of each of their tags (store/cache-tags.ts). */
  private readonly tagIndex = new Map<TagHash, Set<CacheKey>>();
  private readonly inflight = new Map<CacheKey, { flight: Flight; index: number }>();
  private readonly liveFlights = new Set<Flight>();
  /** Invalidation sequence number at which each tag hash was last invalidated (kept only while fetches run). */
  private readonly invalidatedAt = new Map<TagHash, number>();
  private seq = 0;
  private clearedAtSeq = 0;
  private stateValue: QueryCacheState = 'RUNNING';
  private readonly untrack: () => void;
  private afterFetchHook: AfterFetchHook | undefined;

  constructor(private readonly options: QueryCacheOptions) {
    if (options.maxEntries > 0) {
      this.lru = new LRUCache<CacheKey, Entry>({
        max: options.maxEntries,
        maxSize: options.maxBytes,
        sizeCalculation: (entry, key) => entry.bytes + key.length,
        ttl: options.ttlMs,
        dispose: (entry, key, reason) => this.onDispose(entry, key, reason),
      });
    }
    const lru = this.lru;
    this.untrack = trackCacheSize({
      get size() {
        return lru?.size ?? 0;
      },
      get calculatedSize() {
        return lru?.calculatedSize ?? 0;
      },
    });
  }

  get state(): QueryCacheState {
    return this.stateValue;
  }

  /** Entries stored now. */
  get size(): number {
    return this.lru?.size ?? 0;
  }

  /** Estimated bytes stored now. */
  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  /** Installs (or removes) the after-fetch hook. For tests that slow a fetch down on purpose. */
  setAfterFetchHook(hook: AfterFetchHook | undefined): void {
    this.afterFetchHook = hook;
  }

  /**
   * The stored entry for `key`, counted as a hit, or undefined (then read
   * through `get()`). Never waits and never fetches, so a hit needs no
   * AbortSignal and no promise. The returned object is shared: do not modify it.
   */
  peek<V>(kind: string, key: CacheKey): Cached<V> | undefined {
    if (this.stateValue === 'CLOSED') throw new ShuttingDownError('query cache');
    const entry = this.lru?.get(key);
    if (!entry) return undefined;
    countHit(kind);
    return entry.hit as Cached<V>;
  }

  /** One read through the cache. Rejects with CancelledError when `signal` aborts first. */
  async get<V>(kind: string, item: CacheItem, fetch: (signal: AbortSignal) => Promise<V>, signal?: AbortSignal): Promise<Cached<V>> {
    const [result] = await this.getMany<V>(kind, [item], async (_items, fetchSignal) => [await fetch(fetchSignal)], signal);
    return result!;
  }

  /**
   * Many reads at once: hits are answered from the cache, keys already being
   * fetched are joined, and every other key is fetched by ONE `fetchMany`
   * call. A repeated key in `items` is fetched once.
   */
  async getMany<V>(kind: string, items: readonly CacheItem[], fetchMany: FetchMany<V>, signal?: AbortSignal): Promise<Cached<V>[]> {
    if (this.stateValue === 'CLOSED') throw new ShuttingDownError('query cache');
    if (signal?.aborted) throw new CancelledError({ cause: signal.reason });
    const results: (Cached<V> | undefined)[] = new Array(items.length);
    const joined: { at: number; flight: Flight; index: number }[] = [];
    const missing: CacheItem[] = [];
    const missingAt: number[] = [];
    const firstAt = new Map<CacheKey, number>();
    const duplicates: [at: number, of: number][] = [];

    items.forEach((item, at) => {
      const earlier = firstAt.get(item.key);
      if (earlier !== undefined) {
        duplicates.push([at, earlier]);
        return;
      }
      firstAt.set(item.key, at);
      const entry = this.lru?.get(item.key);
      if (entry) {
        results[at] = entry.hit as Cached<V>;
        countHit(kind);
        return;
      }
      const running = this.inflight.get(item.key);
      if (running && !running.flight.controller.signal.aborted && this.isFresh(running.flight.startSeq, running.flight.tagHashes[running.index]!)) {
        joined.push({ at, flight: running.flight, index: running.index });
        cacheMetrics.coalesced.inc({ cache: kind });
        return;
      }
      missing.push(item);
      missingAt.push(at);
    });

    const waits = [...joined];
    if (missing.length > 0) {
      cacheMetrics.misses.inc({ cache: kind }, missing.length);
      const flight = this.startFlight(kind, missing, fetchMany as FetchMany<unknown>);
      missingAt.forEach((at, index) => waits.push({ at, flight, index }));
    }
    if (waits.length > 0) {
      const flights = [...new Set(waits.map((w) => w.flight))];
      const values = await this.waitFor(flights, signal);
      for (const w of waits) {
        results[w.at] = { value: values.get(w.flight)![w.index] as V, source: w.flight.items === missing ? 'miss' : 'coalesced' };
      }
    }
    for (const [at, of] of duplicates) results[at] = results[of];
    return results as Cached<V>[];
  }

  /**
   * Drops every entry tagged with one of `tags` and keeps fetches that
   * started before now from storing theirs. Called before acks are sent.
   */
  invalidate(tags: Iterable<string>, origin: InvalidationOrigin): void {
    const hashes: TagHash[] = [];
    for (const tag of tags) hashes.push(tagHash(tag));
    this.invalidateTagHashes(hashes, origin);
  }

  /**
   * invalidate() by the hashes of the tags (store/cache-tags.ts), as the
   * ingest path collects them. An entry whose tag merely shares a hash is
   * dropped too: a miss, never a stale read.
   */
  invalidateTagHashes(hashes: readonly TagHash[], origin: InvalidationOrigin): void {
    const seq = ++this.seq;
    const remember = this.liveFlights.size > 0;
    for (const hash of hashes) {
      if (remember) this.invalidatedAt.set(hash, seq);
      if (this.tagIndex.size === 0) continue;
      const keys = this.tagIndex.get(hash);
      if (keys) for (const key of [...keys]) this.lru?.delete(key);
    }
    if (this.invalidatedAt.size > INVALIDATED_AT_PRUNE_SIZE) this.pruneInvalidatedAt();
    cacheMetrics.invalidations.inc({ origin });
  }

  /** Drops everything and keeps every running fetch from storing. */
  invalidateAll(origin: InvalidationOrigin): void {
    this.clear();
    cacheMetrics.invalidations.inc({ origin });
  }

  /**
   * Stops storing and drops everything: remote invalidations can no longer
   * be heard (the LISTEN connection is down). Reads go to the database.
   */
  suspend(): void {
    if (this.stateValue === 'CLOSED') return;
    this.stateValue = 'SUSPENDED';
    this.clear();
  }

  /**
   * Stores again, once remote invalidations are heard again. Clears once
   * more so no fetch that ran while deaf stores its value.
   */
  resume(): void {
    if (this.stateValue === 'CLOSED') return;
    this.clear();
    this.stateValue = 'RUNNING';
  }

  /** Drops every entry and aborts running fetches. Idempotent. */
  close(): Promise<void> {
    if (this.stateValue !== 'CLOSED') {
      this.stateValue = 'CLOSED';
      this.clear();
      for (const flight of this.liveFlights) flight.controller.abort(new ShuttingDownError('query cache'));
      this.untrack();
    }
    return Promise.resolve();
  }

  private clear(): void {
    this.clearedAtSeq = ++this.seq;
    this.lru?.clear();
    this.tagIndex.clear();
  }

  private isFresh(startSeq: number, tagHashes: readonly TagHash[]): boolean {
    if (startSeq < this.clearedAtSeq) return false;
    for (const hash of tagHashes) if ((this.invalidatedAt.get(hash) ?? 0) > startSeq) return false;
    return true;
  }

  private startFlight(kind: string, items: readonly CacheItem[], fetchMany: FetchMany<unknown>): Flight {
    // The sequence is read before the query is sent: an invalidation that
    // lands after this point may have committed data the query cannot see.
    const flight = new Flight(this.seq, items);
    this.liveFlights.add(flight);
    items.forEach((item, index) => this.inflight.set(item.key, { flight, index }));
    const hook = this.afterFetchHook;
    // Runs in the context of the caller that started it, so the fetch span
    // (and the query spans under it) hang beneath that caller's RPC span.
    flight.promise = getTracer().startActiveSpan(`cache.fetch ${kind}`, { attributes: { 'orderflow.cache.kind': kind, 'orderflow.cache.keys': items.length } }, async (span) => {
      try {
        const values = await fetchMany(items, flight.controller.signal);
        if (values.length !== items.length) throw new TypeError(`fetch for ${kind} returned ${values.length} values for ${items.length} keys`);
        if (hook) await hook(kind, items);
        return values;
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      } finally {
        span.end();
      }
    });
    flight.promise.then(
      (values) => this.settle(flight, kind, values),
      (err: unknown) => {
        this.settle(flight, kind, undefined);
        if (!flight.controller.signal.aborted) {
          cacheMetrics.fetchErrors.inc({ cache: kind });
          this.options.logger.debug({ err, kind }, 'cache fetch failed');
        }
      },
    );
    return flight;
  }

  /** Ends a flight: forgets it, and stores its values where no invalidation overtook it. */
  private settle(flight: Flight, kind: string, values: unknown[] | undefined): void {
    flight.settled = true;
    this.liveFlights.delete(flight);
    for (const item of flight.items) {
      if (this.inflight.get(item.key)?.flight === flight) this.inflight.delete(item.key);
    }
    if (values && this.lru && this.stateValue === 'RUNNING' && !flight.controller.signal.aborted) {
      flight.items.forEach((item, index) => {
        if (this.isFresh(flight.startSeq, flight.tagHashes[index]!)) this.store(kind, item, flight.tagHashes[index]!, values[index]);
        else cacheMetrics.stalePrevented.inc({ cache: kind });
      });
    }
    if (this.liveFlights.size === 0) this.invalidatedAt.clear();
  }

  private store(kind: string, item: CacheItem, tagHashes: readonly TagHash[], value: unknown): void {
    const lru = this.lru!;
    const bytes = Buffer.byteLength(JSON.stringify(value) ?? '') + ENTRY_OVERHEAD_BYTES;
    const ttl = Math.max(1, Math.floor(this.options.ttlMs * (1 - TTL_SPREAD * Math.random())));
    lru.set(item.key, { value, tagHashes, kind, bytes, hit: Object.freeze({ value, source: 'hit' as const }) }, { ttl });
    // Indexed only after set(): set() disposes a replaced entry, which
    // unindexes the key; and an entry over the size bound is not stored.
    if (!lru.has(item.key)) return;
    for (const hash of tagHashes) {
      let keys = this.tagIndex.get(hash);
      if (!keys) this.tagIndex.set(hash, (keys = new Set()));
      keys.add(item.key);
    }
  }

  private onDispose(entry: Entry, key: CacheKey, reason: LRUCache.DisposeReason): void {
    for (const hash of entry.tagHashes) {
      const keys = this.tagIndex.get(hash);
      if (keys?.delete(key) && keys.size === 0) this.tagIndex.delete(hash);
    }
    if (reason === 'evict') cacheMetrics.evictions.inc({ cache: entry.kind, reason: 'size' });
    else if (reason === 'expire') cacheMetrics.evictions.inc({ cache: entry.kind, reason: 'ttl' });
  }

  /**
   * Waits for every flight, as one caller. When the caller's signal aborts,
   * only this caller stops waiting; a flight nobody waits for any more is
   * aborted (which cancels its query on the server).
   */
  private async waitFor(flights: readonly Flight[], signal: AbortSignal | undefined): Promise<Map<Flight, unknown[]>> {
    for (const flight of flights) flight.waiters++;
    try {
      const all = Promise.all(flights.map(async (flight) => [flight, await flight.promise] as const));
      return new Map(await raceAbort(all, signal));
    } finally {
      for (const flight of flights) {
        if (--flight.waiters === 0 && !flight.settled) flight.controller.abort(new CancelledError());
      }
    }
  }

  private pruneInvalidatedAt(): void {
    let oldestStart = Infinity;
    for (const flight of this.liveFlights) oldestStart = Math.min(oldestStart, flight.startSeq);
    for (const [hash, seq] of this.invalidatedAt) if (seq <= oldestStart) this.invalidatedAt.delete(hash);
  }
}

/** The hits counter of each cache kind, resolved once (labels() hashes its arguments on every call). */
const hitCounters = new Map<string, { inc(): void }>();

function countHit(kind: string): void {
  let counter = hitCounters.get(kind);
  if (!counter) hitCounters.set(kind, (counter = cacheMetrics.hits.labels(kind)));
  counter.inc();
}

/** Resolves or rejects like `promise`, or rejects with CancelledError as soon as `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CancelledError({ cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
