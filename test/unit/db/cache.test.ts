import { expect } from 'chai';
import type { Counter } from 'prom-client';
import { cacheKey, QueryCache, type CacheItem } from '../../../src/db/cache';
import { cacheMetrics } from '../../../src/db/cache-metrics';
import { CancelledError, ShuttingDownError } from '../../../src/errors';
import { silentLogger } from '../../../src/telemetry/logger';

/** A promise with its resolve/reject exposed. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function counterValue(counter: Counter<string>, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function item(id: string, tags: string[] = [`t:${id}`]): CacheItem {
  return { key: cacheKey('test.get', { id }), tags };
}

describe('db/cache', () => {
  let cache: QueryCache;
  const newCache = (options: Partial<{ maxEntries: number; maxBytes: number; ttlMs: number }> = {}) =>
    (cache = new QueryCache({ maxEntries: 1_000, maxBytes: 1024 * 1024, ttlMs: 60_000, logger: silentLogger, ...options }));

  afterEach(async () => {
    await cache?.close();
  });

  describe('cacheKey', () => {
    it('is one key whatever the parameter order', () => {
      expect(cacheKey('orders.list', { a: 'x', b: 'y' })).to.equal(cacheKey('orders.list', { b: 'y', a: 'x' }));
    });

    it('never collides across operations, types, or crafted strings', () => {
      const keys = [
        cacheKey('orders.get', { id: '1' }),
        cacheKey('orders.list', { id: '1' }),
        cacheKey('orders.get', { id: 1 }),
        cacheKey('orders.get', { id: ['1'] }),
        cacheKey('orders.get', { id: '1', x: '' }),
        cacheKey('orders.get', { id: '1","x' }),
        cacheKey('orders.get', { 'id"': '1' }),
        cacheKey('orders.get', { id: null }),
        cacheKey('orders.get', {}),
        cacheKey('orders.get', { id: '1\u0000' }),
      ];
      expect(new Set(keys).size).to.equal(keys.length);
    });

    it('leaves out undefined parameters and rejects malformed operation names', () => {
      expect(cacheKey('a.b', { x: undefined, y: '1' })).to.equal(cacheKey('a.b', { y: '1' }));
      // The single-parameter shortcut spells keys exactly as the general path does.
      for (const value of ['o-1', 'quo"te\\|', 7, true, null, ['x', 'y']]) {
        expect(cacheKey('a.b', { id: value })).to.equal(`a.b|${JSON.stringify([['id', value]])}`);
      }
      expect(cacheKey('a.b', { id: undefined })).to.equal('a.b|[]');
      expect(() => cacheKey('A|b', {})).to.throw(TypeError);
      expect(() => cacheKey('', {})).to.throw(TypeError);
    });
  });

  it('misses once, then hits; caches null as "not found"', async () => {
    newCache();
    let fetches = 0;
    const fetch = async () => {
      fetches++;
      return null;
    };
    expect(await cache.get('test', item('a'), fetch)).to.deep.equal({ value: null, source: 'miss' });
    expect(await cache.get('test', item('a'), fetch)).to.deep.equal({ value: null, source: 'hit' });
    expect(fetches).to.equal(1);
    expect(cache.size).to.equal(1);
    expect(cache.bytes).to.be.greaterThan(0);
  });

  describe('peek (the synchronous hit path)', () => {
    it('answers a stored entry (null included) as a counted hit, and nothing else', async () => {
      newCache();
      const hits = () => counterValue(cacheMetrics.hits, { cache: 'peek' });
      const before = await hits();
      expect(cache.peek('peek', item('p').key), 'nothing stored yet').to.equal(undefined);
      expect(await hits(), 'a peek that finds nothing is not a hit').to.equal(before);
      await cache.get('peek', item('p'), async () => ({ qty: '5' }));
      await cache.get('peek', item('n'), async () => null);
      expect(cache.peek('peek', item('p').key)).to.deep.equal({ value: { qty: '5' }, source: 'hit' });
      expect(cache.peek('peek', item('n').key), 'a cached "not found" is a hit too').to.deep.equal({ value: null, source: 'hit' });
      expect(await hits()).to.equal(before + 2);
    });

    it('finds nothing once the entry is invalidated, expired or the cache suspended, and throws once closed', async () => {
      newCache({ ttlMs: 50 });
      await cache.get('peek', item('i', ['tag:i']), async () => 'old');
      cache.invalidate(['tag:i'], 'local');
      expect(cache.peek('peek', item('i').key), 'invalidated').to.equal(undefined);
      await cache.get('peek', item('t'), async () => 't');
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(cache.peek('peek', item('t').key), 'past its TTL').to.equal(undefined);
      await cache.get('peek', item('s'), async () => 's');
      cache.suspend();
      expect(cache.peek('peek', item('s').key), 'suspended').to.equal(undefined);
      await cache.close();
      expect(() => cache.peek('peek', item('s').key)).to.throw(ShuttingDownError);
    });
  });

  it('coalesces concurrent misses for one key into one fetch (single flight)', async () => {
    newCache();
    const coalescedBefore = await counterValue(cacheMetrics.coalesced, { cache: 'sf' });
    const gate = deferred<string>();
    let fetches = 0;
    const calls = Array.from({ length: 50 }, () =>
      cache.get('sf', item('k'), () => {
        fetches++;
        return gate.promise;
      }),
    );
    gate.resolve('v');
    const results = await Promise.all(calls);
    expect(fetches).to.equal(1);
    expect(results.map((r) => r.value)).to.deep.equal(new Array(50).fill('v'));
    expect(results.filter((r) => r.source === 'miss')).to.have.length(1);
    expect(results.filter((r) => r.source === 'coalesced')).to.have.length(49);
    expect((await counterValue(cacheMetrics.coalesced, { cache: 'sf' })) - coalescedBefore).to.equal(49);
  });

  it("one caller's abort ends only its own wait; the shared fetch goes on for the others", async () => {
    newCache();
    const gate = deferred<string>();
    let fetchSignal: AbortSignal | undefined;
    const impatient = new AbortController();
    const first = cache.get('t', item('k'), (signal) => ((fetchSignal = signal), gate.promise), impatient.signal);
    const second = cache.get('t', item('k'), () => Promise.reject(new Error('must not run')));
    impatient.abort();
    const err = await first.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CancelledError);
    expect(fetchSignal!.aborted).to.equal(false);
    gate.resolve('v');
    expect(await second).to.deep.equal({ value: 'v', source: 'coalesced' });
  });

  it('aborts the fetch when its last waiter leaves, and stores nothing', async () => {
    newCache();
    let fetchSignal: AbortSignal | undefined;
    const a = new AbortController();
    const b = new AbortController();
    const fetch = (signal: AbortSignal) =>
      new Promise<string>((_, reject) => {
        fetchSignal = signal;
        signal.addEventListener('abort', () => reject(new CancelledError()));
      });
    const first = cache.get('t', item('k'), fetch, a.signal).catch((e: unknown) => e);
    const second = cache.get('t', item('k'), fetch, b.signal).catch((e: unknown) => e);
    a.abort();
    await tick();
    expect(fetchSignal!.aborted, 'one waiter is left').to.equal(false);
    b.abort();
    expect(await first).to.be.instanceOf(CancelledError);
    expect(await second).to.be.instanceOf(CancelledError);
    expect(fetchSignal!.aborted).to.equal(true);
    expect(cache.size).to.equal(0);
    // A new caller does not join the aborted fetch.
    expect(await cache.get('t', item('k'), async () => 'fresh')).to.deep.equal({ value: 'fresh', source: 'miss' });
  });

  it('rejects at once with an already aborted signal', async () => {
    newCache();
    const err = await cache.get('t', item('k'), async () => 'v', AbortSignal.abort()).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CancelledError);
  });

  describe('invalidation race', () => {
    it('a fetch that started before an invalidation does not store its older value', async () => {
      newCache();
      const before = await counterValue(cacheMetrics.stalePrevented, { cache: 'race' });
      const gate = deferred<string>();
      const slow = cache.get('race', item('o1', ['order:o1']), () => gate.promise);
      cache.invalidate(['order:o1'], 'local');
      gate.resolve('old');
      expect((await slow).value, 'the early caller still gets its answer').to.equal('old');
      expect(cache.size).to.equal(0);
      expect((await counterValue(cacheMetrics.stalePrevented, { cache: 'race' })) - before).to.equal(1);
      expect(await cache.get('race', item('o1', ['order:o1']), async () => 'new')).to.deep.equal({ value: 'new', source: 'miss' });
    });

    it('a caller arriving after an invalidation does not join the older fetch', async () => {
      newCache();
      const oldGate = deferred<string>();
      const early = cache.get('race', item('o1', ['order:o1']), () => oldGate.promise);
      cache.invalidate(['order:o1'], 'local');
      const late = cache.get('race', item('o1', ['order:o1']), async () => 'new');
      expect(await late).to.deep.equal({ value: 'new', source: 'miss' });
      oldGate.resolve('old');
      expect((await early).value).to.equal('old');
      // The older fetch finished last, and still did not overwrite the newer value.
      expect(await cache.get('race', item('o1', ['order:o1']), async () => 'unused')).to.deep.equal({ value: 'new', source: 'hit' });
    });

    it('invalidateAll stops every running fetch from storing; other tags do not', async () => {
      newCache();
      const g1 = deferred<string>();
      const g2 = deferred<string>();
      const a = cache.get('race', item('a'), () => g1.promise);
      cache.invalidate(['t:unrelated'], 'remote');
      g1.resolve('a');
      await a;
      expect(cache.size, 'an unrelated tag does not block the store').to.equal(1);
      const b = cache.get('race', item('b'), () => g2.promise);
      cache.invalidateAll('remote');
      g2.resolve('b');
      await b;
      expect(cache.size).to.equal(0);
    });

    it('invalidate drops stored entries by tag, including list entries sharing a tag', async () => {
      newCache();
      await cache.get('t', item('a', ['x', 'y']), async () => 1);
      await cache.get('t', item('b', ['y']), async () => 2);
      await cache.get('t', item('c', ['z']), async () => 3);
      cache.invalidate(['y'], 'local');
      expect(cache.size).to.equal(1);
      expect((await cache.get('t', item('c', ['z']), async () => 0)).source).to.equal('hit');
    });
  });

  describe('getMany', () => {
    it('answers hits from the cache, joins running fetches, and fetches all other keys in one call', async () => {
      newCache();
      await cache.get('m', item('hit'), async () => 'H');
      const gate = deferred<string>();
      const running = cache.get('m', item('running'), () => gate.promise);
      const calls: string[][] = [];
      const many = cache.getMany('m', [item('hit'), item('running'), item('x'), item('y'), item('x')], async (items) => {
        calls.push(items.map((i) => i.key));
        return items.map((i) => `fetched ${i.key}`);
      });
      gate.resolve('R');
      const results = await many;
      await running;
      expect(calls).to.deep.equal([[item('x').key, item('y').key]]);
      expect(results.map((r) => r.source)).to.deep.equal(['hit', 'coalesced', 'miss', 'miss', 'miss']);
      expect(results.map((r) => r.value)).to.deep.equal(['H', 'R', `fetched ${item('x').key}`, `fetched ${item('y').key}`, `fetched ${item('x').key}`]);
    });
  });

  it('fails every waiter of a failed fetch, caches nothing, and counts the error', async () => {
    newCache();
    const before = await counterValue(cacheMetrics.fetchErrors, { cache: 'err' });
    const gate = deferred<string>();
    const calls = [cache.get('err', item('k'), () => gate.promise), cache.get('err', item('k'), () => gate.promise)].map((p) => p.catch((e: unknown) => e));
    gate.reject(new Error('boom'));
    for (const err of await Promise.all(calls)) expect((err as Error).message).to.equal('boom');
    expect(cache.size).to.equal(0);
    expect((await counterValue(cacheMetrics.fetchErrors, { cache: 'err' })) - before).to.equal(1);
  });

  describe('bounds', () => {
    it('evicts the least recently used entry past maxEntries', async () => {
      newCache({ maxEntries: 3 });
      const before = await counterValue(cacheMetrics.evictions, { cache: 'lru', reason: 'size' });
      for (const id of ['a', 'b', 'c']) await cache.get('lru', item(id), async () => id);
      await cache.get('lru', item('a'), async () => 'unused'); // a is now most recent
      await cache.get('lru', item('d'), async () => 'd');
      expect(cache.size).to.equal(3);
      expect((await cache.get('lru', item('b'), async () => 'b2')).source, 'b was evicted').to.equal('miss');
      expect((await counterValue(cacheMetrics.evictions, { cache: 'lru', reason: 'size' })) - before).to.be.at.least(1);
    });

    it('keeps the estimated size under maxBytes', async () => {
      newCache({ maxBytes: 4_096 });
      const big = 'x'.repeat(1_000);
      for (let i = 0; i < 20; i++) await cache.get('bytes', item(String(i)), async () => big);
      expect(cache.bytes).to.be.at.most(4_096);
      expect(cache.size).to.be.within(1, 4);
    });

    it('forgets entries after their TTL', async () => {
      newCache({ ttlMs: 30 });
      await cache.get('ttl', item('a'), async () => 'a');
      expect((await cache.get('ttl', item('a'), async () => 'b')).source).to.equal('hit');
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(await cache.get('ttl', item('a'), async () => 'b')).to.deep.equal({ value: 'b', source: 'miss' });
    });

    it('spreads expiry over the last tenth of the TTL, never beyond it', async () => {
      newCache({ ttlMs: 60_000 });
      const keys = Array.from({ length: 200 }, (_, i) => item(`spread-${i}`));
      await cache.getMany('ttl', keys, async (items) => items.map(() => 'v'));
      const lru = (cache as unknown as { lru: { getRemainingTTL(key: string): number } }).lru;
      const remaining = keys.map((k) => lru.getRemainingTTL(k.key));
      expect(Math.max(...remaining), 'never longer than CACHE_TTL_MS').to.be.at.most(60_000);
      expect(Math.min(...remaining), 'at least nine tenths of it (less the time this test took)').to.be.at.least(54_000 - 1_000);
      expect(Math.max(...remaining) - Math.min(...remaining), 'entries stored together expire apart').to.be.greaterThan(3_000);
    });

    it('with maxEntries 0 stores nothing but still coalesces', async () => {
      newCache({ maxEntries: 0 });
      const gate = deferred<string>();
      let fetches = 0;
      const calls = [1, 2, 3].map(() => cache.get('off', item('k'), () => (fetches++, gate.promise)));
      gate.resolve('v');
      await Promise.all(calls);
      expect(fetches).to.equal(1);
      expect(cache.size).to.equal(0);
      expect((await cache.get('off', item('k'), async () => 'w')).source).to.equal('miss');
    });
  });

  describe('suspend / resume (LISTEN connection down)', () => {
    it('stores nothing while suspended, and nothing fetched while suspended after resume', async () => {
      newCache();
      await cache.get('s', item('a'), async () => 'a');
      cache.suspend();
      expect(cache.state).to.equal('SUSPENDED');
      expect(cache.size, 'suspend clears').to.equal(0);
      await cache.get('s', item('b'), async () => 'b');
      expect(cache.size).to.equal(0);
      const gate = deferred<string>();
      const deaf = cache.get('s', item('c'), () => gate.promise);
      cache.resume();
      gate.resolve('c');
      await deaf;
      expect(cache.size, 'a fetch begun while deaf is not stored').to.equal(0);
      await cache.get('s', item('d'), async () => 'd');
      expect(cache.size).to.equal(1);
    });
  });

  describe('close', () => {
    it('is idempotent, aborts running fetches and refuses later reads', async () => {
      newCache();
      let fetchSignal: AbortSignal | undefined;
      const running = cache.get('c', item('k'), (signal) => new Promise<string>((_, reject) => ((fetchSignal = signal), signal.addEventListener('abort', () => reject(signal.reason))))).catch((e: unknown) => e);
      await Promise.all([cache.close(), cache.close()]);
      expect(cache.state).to.equal('CLOSED');
      expect(fetchSignal!.aborted).to.equal(true);
      expect(await running).to.be.instanceOf(ShuttingDownError);
      const err = await cache.get('c', item('k'), async () => 'v').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ShuttingDownError);
    });
  });
});
