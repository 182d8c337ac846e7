// A tour of the typed API, checked by `tsc --strict --noEmit` in `npm test`.
// It compiles against the package's own index.d.ts (as `import ... from 'rampart'` would).

import express from 'express';
import Redis from 'ioredis';
import { createClient } from 'redis';
import {
  type Change,
  type Decision,
  Locks,
  RateLimiter,
  Sessions,
  RefreshTokens,
  Denylist,
  Cache,
  type CacheStats,
  type Session,
  type RateLimitDecision,
  type StoreAdapter,
  ManualClock,
  MemoryStore,
  RampartError,
  Store,
  fault,
  ioredisStore,
  nodeRedisStore,
  rateLimit,
  rateLimitHeaders,
} from '..';

async function memory(): Promise<void> {
  const clock = new ManualClock(Date.now());
  const store = new MemoryStore({ maxEntries: 10_000, clock });
  await store.set('greeting', 'hello', { ttl: 60_000 });
  const value: Buffer | null = await store.get('greeting');
  const left: number | null = await store.ttl('greeting');
  console.log(value?.toString('utf8'), left);

  const swap = await store.compareAndSwap('lock', null, 'owner-1', { ttl: 30_000 });
  if (!swap.swapped) {
    const holder: Buffer | null = swap.current;
    console.log('held by', holder?.toString());
  }

  const bump = (current: Buffer | null): Change =>
    current === null ? { set: '1', ttl: 1_000 } : { setKeepTtl: String(Number(current.toString()) + 1) };
  const { value: after, attempts } = await store.update('visits', bump);
  console.log(after?.toString(), attempts);

  const hits: number = await store.increment('hits', 1, { ttlIfCreated: 60_000 });
  for await (const key of store.keys('visit', { count: 500 })) console.log(key, hits);
  clock.advance(1_000);

  try {
    await store.get('');
  } catch (e) {
    if (e instanceof RampartError && e.code === 'RAMPART_INVALID_KEY') console.log(e.message, e.temporary);
  }
}

async function redis(): Promise<void> {
  const io = new Redis({ host: '127.0.0.1', port: 6390, lazyConnect: true });
  const viaIoredis: Store = ioredisStore(io);
  const unbatched: Store = ioredisStore(io, { coalesceWrites: false });
  const nodeRedis = createClient({ url: 'redis://127.0.0.1:6390' });
  const viaNodeRedis: Store = nodeRedisStore(nodeRedis);
  console.log(viaIoredis.capabilities.scripting, unbatched.capabilities.scripting, viaNodeRedis.capabilities.pubsub);
}

function ownAdapter(): Store {
  const map = new Map<string, Uint8Array>();
  const adapter: StoreAdapter = {
    get: async (key) => map.get(key) ?? null,
    set: async (key, value) => {
      map.set(key, value);
    },
    delete: async (key) => map.delete(key),
    ttl: async (key) => (map.has(key) ? Infinity : null),
    compareAndSwap: async (key, expected, value) => {
      const current = map.get(key) ?? null;
      const same = current === null ? expected === null : expected !== null && Buffer.from(current).equals(expected);
      if (!same) return { swapped: false, current };
      if (value === null) map.delete(key);
      else map.set(key, value);
      return { swapped: true };
    },
    scan: async (prefix) => ({ keys: [...map.keys()].filter((k) => k.startsWith(prefix)), cursor: null }),
  };
  return Store.fromAdapter(adapter);
}

async function limitsAndLocks(store: MemoryStore): Promise<number> {
  const limiter = new RateLimiter({
    store,
    algorithm: 'token-bucket',
    quotas: [{ limit: 10, window: 1_000, burst: 20 }, { limit: 1_000, window: 3_600_000 }],
    prefix: 'rl:api',
    onStoreError: { insurance: new MemoryStore() },
  });
  const d: Decision = await limiter.consume('user:42', 2, { headers: 'draft-8', partitionKey: 'user:42' });
  const headers: Array<[string, string]> = d.headers('draft-8', { partitionKey: 'user:42' });
  const queued: Decision = await limiter.consumeWithin('user:42', 250, 1);
  const auth = RateLimiter.preset('auth', { store, env: { RATE_LIMIT_AUTH_POINTS: '3' } });
  const both = await RateLimiter.consumeAll([
    [limiter, 'user:42', 1],
    [auth, 'user:42'],
  ]);
  console.log(headers, both.source, d.tiers[0]?.retryAfter ?? null, d.blockedUntil, queued.allowed);

  const locks = new Locks({ store, prefix: 'lock', fenceRetention: null });
  const lock = await locks.tryAcquire('report', { ttl: 30_000 });
  if (lock !== null) {
    if (await lock.extend(60_000)) console.log('held until', lock.expiresAt, 'fence', lock.fence);
    await lock.release();
  }
  return locks.withLock('billing', { ttl: 30_000 }, async (handle) => (handle.isLost() ? 0 : handle.fence));
}

interface Cart {
  readonly items: readonly number[];
  readonly admin: boolean;
}

async function sessions(store: MemoryStore): Promise<Session<Cart> | null> {
  const all = new Sessions({ store, idleTimeout: 30 * 60_000, maxLifetime: 12 * 3_600_000, maxSessionsPerUser: 5 });
  const login = await all.create('alice', { items: [42], admin: false }, { ip: '203.0.113.7', userAgent: 'curl/8' });
  await all.update<Cart>(login.id, (cart) => ({ ...cart, admin: true }));
  const id = (await all.rotate(login.id)) ?? login.id;
  for (const info of await all.list('alice')) console.log(info.handle, info.meta.ip, info.expires);
  const tokens = new RefreshTokens({ store, maxFamiliesPerUser: 3 });
  const issued = await tokens.issue('alice');
  const outcome = await tokens.rotate(issued.token);
  if (outcome.status === 'rotated') console.log(outcome.token, outcome.generation);
  else if (outcome.status === 'reuse') await all.destroyAll(outcome.userId);
  const denylist = new Denylist({ store });
  await denylist.deny('jti-1', Date.now() + 60_000);
  console.log(await denylist.isDenied('jti-1'));
  return all.get<Cart>(id);
}

interface Product {
  readonly id: number;
  readonly name: string;
  readonly price: number;
}

async function caching(store: MemoryStore): Promise<CacheStats> {
  const cache = new Cache({ store, namespace: 'shop', defaultTtl: 5 * 60_000, staleWhileRevalidate: 30_000 });
  const product = await cache.getOrSet<Product>(
    'product:7',
    async () => ({ id: 7, name: 'lamp', price: 19.5 }),
    { ttl: 60_000, tags: ['products'] },
  );
  console.log(product.name.toUpperCase(), product.price.toFixed(2));
  await cache.set('product:8', { id: 8, name: 'desk', price: 120 }, { tags: ['products'] });
  const desk = await cache.get<Product>('product:8');
  console.log(desk?.price ?? 0);
  await cache.invalidateTag('products');
  const removed: number = await cache.invalidatePrefix('product:');
  const deleted: boolean = await cache.delete('product:7');
  const stats = cache.stats();
  console.log(removed, deleted, stats.hitRate ?? 'no reads yet', stats.loaderCalls);
  return stats;
}

function app(): express.Express {
  const limiter = {
    async consume(key: string, cost = 1): Promise<RateLimitDecision> {
      return { allowed: cost < 10, limit: 10, remaining: 10 - cost, resetAfter: 1_000, retryAfter: null, window: 60_000, at: Date.now() + key.length };
    },
  };
  const server = express();
  server.use(rateLimit({ limiter, headers: 'legacy', key: (req) => req.ip ?? 'unknown' }));
  // Count only failed logins (rampart's limiter can refund), and let a
  // request wait up to 200 ms for room.
  const logins = new RateLimiter({ store: new MemoryStore(), algorithm: 'sliding-window', limit: 5, window: 15 * 60_000 });
  server.use(
    '/login',
    rateLimit({ limiter: logins, skipSuccessfulRequests: true, requestWasSuccessful: (_req, res) => res.statusCode < 400, wait: 200 }),
  );
  server.get(
    '/api',
    rateLimit<express.Request>({
      limiter,
      cost: (req) => (req.query['bulk'] === '1' ? 5 : 1),
      names: ['api'],
      message: { error: 'slow down' },
    }),
    (req, res) => {
      const headers: Array<[string, string]> = req.rateLimit ? rateLimitHeaders(req.rateLimit, { style: 'draft-7' }) : [];
      res.json({ headers, fault: fault()?.code ?? null });
    },
  );
  return server;
}

declare module 'express-serve-static-core' {
  interface Request {
    rateLimit?: RateLimitDecision | undefined;
  }
}

export { memory, redis, ownAdapter, limitsAndLocks, sessions, caching, app };
