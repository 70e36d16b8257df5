import { Counter, Gauge } from 'prom-client';
import { registry } from '../telemetry/metrics';

/** Live caches whose entries and bytes the gauges report (several Apps may share one process in tests). */
const liveCaches = new Set<{ readonly size: number; readonly calculatedSize: number }>();

/** Where an invalidation came from: this instance's flush, or another instance's NOTIFY. */
export type InvalidationOrigin = 'local' | 'remote';

/** Query cache metric families (registered once per process). `cache` labels the kind of query. */
export const cacheMetrics = {
  hits: new Counter({ name: 'orderflow_cache_hits_total', help: 'Reads answered from a stored cache entry.', labelNames: ['cache'] as const, registers: [registry] }),
  misses: new Counter({ name: 'orderflow_cache_misses_total', help: 'Reads that started a database fetch.', labelNames: ['cache'] as const, registers: [registry] }),
  coalesced: new Counter({
    name: 'orderflow_cache_coalesced_total',
    help: 'Reads that joined a fetch already running for the same key (single flight).',
    labelNames: ['cache'] as const,
    registers: [registry],
  }),
  stalePrevented: new Counter({
    name: 'orderflow_cache_stale_prevented_total',
    help: 'Fetched values not stored because an invalidation overtook their fetch.',
    labelNames: ['cache'] as const,
    registers: [registry],
  }),
  evictions: new Counter({
    name: 'orderflow_cache_evictions_total',
    help: 'Entries dropped by the size bounds (reason="size") or by their TTL (reason="ttl").',
    labelNames: ['cache', 'reason'] as const,
    registers: [registry],
  }),
  fetchErrors: new Counter({ name: 'orderflow_cache_fetch_errors_total', help: 'Fetches that failed (cancelled fetches excluded).', labelNames: ['cache'] as const, registers: [registry] }),
  invalidations: new Counter({
    name: 'orderflow_cache_invalidations_total',
    help: 'Invalidations applied: local flush commits and remote NOTIFY messages.',
    labelNames: ['origin'] as const,
    registers: [registry],
  }),
  notificationsSent: new Counter({
    name: 'orderflow_cache_notifications_sent_total',
    help: 'Invalidation NOTIFY messages issued inside flush transactions.',
    registers: [registry],
  }),
  listenerReconnects: new Counter({
    name: 'orderflow_cache_listener_reconnects_total',
    help: 'Times the LISTEN connection was lost (the cache was cleared and bypassed until it was back).',
    registers: [registry],
  }),
  entries: new Gauge({
    name: 'orderflow_cache_entries',
    help: 'Entries in the query cache.',
    registers: [registry],
    collect() {
      let total = 0;
      for (const cache of liveCaches) total += cache.size;
      this.set(total);
    },
  }),
  bytes: new Gauge({
    name: 'orderflow_cache_bytes',
    help: 'Estimated size of the cached values, bytes.',
    registers: [registry],
    collect() {
      let total = 0;
      for (const cache of liveCaches) total += cache.calculatedSize;
      this.set(total);
    },
  }),
};

/** Adds a cache to the entries/bytes gauges; returns the function that removes it. */
export function trackCacheSize(cache: { readonly size: number; readonly calculatedSize: number }): () => void {
  liveCaches.add(cache);
  return () => liveCaches.delete(cache);
}
