'use strict';
// Cache end to end: the same behaviour on MemoryStore (with a manual
// clock for expiry and stale-while-revalidate) and over the ioredis
// adapter on a real redis-server: JSON values, TTLs, tags, prefix
// invalidation, stats, and 100 concurrent misses coalesced into one
// loader call.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const Redis = require('ioredis');
const { Cache, MemoryStore, ManualClock, RampartError, ioredisStore, fault } = require('..');
const { startRedis } = require('../testing/redis-server');

const T0 = 1_700_000_000_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The behaviour every store must give the cache. */
function suite(makeStore) {
  let n = 0;
  const cache = (options = {}) => new Cache({ store: makeStore(), namespace: `c${++n}`, ...options });

  it('stores and returns JSON values; misses are null', async () => {
    const c = cache();
    assert.equal(await c.get('absent'), null);
    const value = { name: 'alice', tags: ['a', 'b'], n: 1.5, nested: { ok: true, none: null } };
    await c.set('user:1', value);
    assert.deepEqual(await c.get('user:1'), value);
    for (const v of [0, 'text', false, [1, [2]], 'é\u{1F600}']) {
      await c.set('v', v);
      assert.deepEqual(await c.get('v'), v);
    }
    await c.set('nul', null);
    assert.equal(await c.get('nul'), null);
    assert.equal(await c.delete('user:1'), true);
    assert.equal(await c.delete('user:1'), false);
    assert.equal(await c.get('user:1'), null);
  });

  it('100 concurrent misses make one loader call; later calls hit', async () => {
    const c = cache();
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(30);
      return { loaded: calls };
    };
    const all = await Promise.all(Array.from({ length: 100 }, () => c.getOrSet('hot', loader, { ttl: 60_000 })));
    assert.equal(calls, 1);
    for (const v of all) assert.deepEqual(v, { loaded: 1 });
    assert.deepEqual(await c.getOrSet('hot', loader), { loaded: 1 });
    assert.deepEqual(await c.get('hot'), { loaded: 1 });
    assert.equal(calls, 1);
    const s = c.stats();
    assert.equal(s.loaderCalls, 1);
    assert.equal(s.coalesced, 99);
  });

  it('a loader error rejects every caller sharing it, and nothing is stored', async () => {
    const c = cache();
    const boom = new Error('backend down');
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(10);
      throw boom;
    };
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => c.getOrSet('fail', loader)));
    assert.equal(calls, 1);
    const reasons = results.map((r) => (assert.equal(r.status, 'rejected'), r.reason));
    assert.equal(reasons.filter((e) => e === boom).length, 1, 'the caller that ran the loader gets its error as thrown');
    for (const e of reasons.filter((e) => e !== boom)) {
      assert.ok(e instanceof RampartError);
      assert.equal(e.code, 'RAMPART_BACKEND');
      assert.match(e.message, /the loader failed: backend down/);
    }
    assert.equal(await c.get('fail'), null);
    assert.equal(c.stats().loaderErrors, 1);
    assert.deepEqual(await c.getOrSet('fail', async () => 'recovered'), 'recovered');
  });

  it('a loader may call the cache', async () => {
    const c = cache();
    await c.set('inner', 41);
    assert.equal(await c.getOrSet('outer', async () => (await c.get('inner')) + 1), 42);
    assert.equal(await c.getOrSet('sync', () => 'plain value'), 'plain value');
  });

  it('invalidateTag makes tagged entries miss', async () => {
    const c = cache();
    await c.set('p:1', 1, { tags: ['products', 'shelf:a'] });
    await c.set('p:2', 2, { tags: ['products'] });
    await c.set('u:1', 'u', { tags: ['users'] });
    await c.invalidateTag('products');
    assert.equal(await c.get('p:1'), null);
    assert.equal(await c.get('p:2'), null);
    assert.equal(await c.get('u:1'), 'u');
    await c.set('p:1', 'again', { tags: ['products'] });
    assert.equal(await c.get('p:1'), 'again', 'a set after the invalidation is fresh');
    let calls = 0;
    const load = async () => ++calls;
    assert.equal(await c.getOrSet('p:3', load, { tags: ['products'] }), 1);
    await c.invalidateTag('products');
    assert.equal(await c.getOrSet('p:3', load, { tags: ['products'] }), 2);
  });

  it('invalidatePrefix deletes the keys under a prefix', async () => {
    const c = cache();
    for (let i = 0; i < 5; i++) await c.set(`org:1:${i}`, i);
    await c.set('org:2:0', 'other');
    assert.equal(await c.invalidatePrefix('org:1:'), 5);
    assert.equal(await c.get('org:1:3'), null);
    assert.equal(await c.get('org:2:0'), 'other');
  });

  it('stats count hits, misses, sets, deletes and loader calls', async () => {
    const c = cache();
    const empty = c.stats();
    assert.equal(empty.hitRate, null);
    await c.set('a', 1);
    await c.get('a');
    await c.get('a');
    await c.get('b');
    await c.delete('a');
    await c.getOrSet('c', async () => 3);
    const s = c.stats();
    assert.equal(s.hits, 2);
    assert.ok(s.misses >= 2);
    assert.equal(s.sets, 2, 'set, and the loaded value getOrSet stored');
    assert.equal(s.deletes, 1);
    assert.equal(s.loaderCalls, 1);
    assert.equal(s.errors, 0);
    assert.equal(s.hitRate, s.hits / (s.hits + s.misses));
  });

  it('refuses bad arguments with coded errors', async () => {
    const c = cache();
    await assert.rejects(c.get(''), { code: 'RAMPART_INVALID_KEY' });
    await assert.rejects(c.get(42), { code: 'RAMPART_INVALID_KEY' });
    await assert.rejects(c.set('k', undefined), { code: 'RAMPART_INVALID_INPUT' });
    await assert.rejects(c.set('k', 10n), { code: 'RAMPART_INVALID_INPUT' });
    await assert.rejects(c.set('k', 1, { ttl: -5 }), { code: 'RAMPART_INVALID_INPUT' });
    await assert.rejects(c.set('k', 1, { ttl: NaN }), { code: 'RAMPART_INVALID_INPUT' });
    await assert.rejects(c.set('k', 1, { tags: 'products' }), { code: 'RAMPART_INVALID_INPUT' });
    await assert.rejects(c.set('k', 1, { tags: [7] }), { code: 'RAMPART_INVALID_KEY' });
    await assert.rejects(c.getOrSet('k', 'not a function'), { code: 'RAMPART_INVALID_INPUT' });
    await assert.rejects(c.getOrSet('k', async () => undefined), { code: 'RAMPART_INVALID_INPUT' });
    await assert.rejects(c.invalidateTag(''), RampartError);
    assert.throws(() => new Cache({ store: makeStore(), defaultTtl: -1 }), { code: 'RAMPART_CONFIG' });
    assert.throws(() => new Cache({ store: makeStore(), defaultTtl: 0 }), { code: 'RAMPART_CONFIG' });
    assert.throws(() => new Cache({ store: makeStore(), namespace: '' }), RampartError);
    assert.throws(() => new Cache({ store: {} }), RampartError);
  });
}

describe('Cache on MemoryStore', () => {
  suite(() => new MemoryStore());

  it('entries expire after their TTL (manual clock)', async () => {
    const clock = new ManualClock(T0);
    const c = new Cache({ store: new MemoryStore({ clock }), clock, defaultTtl: 10_000 });
    await c.set('default', 'd');
    await c.set('short', 's', { ttl: 1_000 });
    clock.advance(1_000);
    assert.equal(await c.get('short'), null);
    assert.equal(await c.get('default'), 'd');
    clock.advance(9_000);
    assert.equal(await c.get('default'), null);
  });

  it('stale-while-revalidate serves the old value while one loader refreshes it', async () => {
    const clock = new ManualClock(T0);
    const c = new Cache({ store: new MemoryStore({ clock }), clock, defaultTtl: 1_000, staleWhileRevalidate: 60_000 });
    let version = 0;
    let calls = 0;
    const loader = async () => {
      calls++;
      return ++version;
    };
    assert.equal(await c.getOrSet('swr', loader), 1);
    clock.advance(5_000);
    assert.equal(await c.get('swr'), null, 'get does not serve stale values');
    assert.equal(await c.getOrSet('swr', loader), 1, 'a stale value is served at once');
    for (let i = 0; i < 50 && calls < 2; i++) await sleep(5);
    assert.equal(calls, 2, 'one background refresh ran');
    for (let i = 0; i < 50 && (await c.get('swr')) !== 2; i++) await sleep(5);
    assert.equal(await c.getOrSet('swr', loader), 2);
    assert.equal(calls, 2);
    assert.ok(c.stats().staleServed >= 1);
  });
});

describe('Cache over the ioredis adapter', () => {
  let server;
  let client;
  before(async () => {
    server = await startRedis();
    client = new Redis({ host: '127.0.0.1', port: server.port });
  });
  after(async () => {
    await client?.quit();
    await server?.stop();
  });

  suite(() => ioredisStore(client));

  it('entries expire on the server after their TTL', async () => {
    const c = new Cache({ store: ioredisStore(client), namespace: 'exp' });
    await c.set('k', { a: 1 }, { ttl: 100 });
    assert.deepEqual(await c.get('k'), { a: 1 });
    await sleep(250);
    assert.equal(await c.get('k'), null);
  });
});

after(() => {
  assert.equal(fault(), null);
});
