'use strict';
// RateLimiter end to end: every algorithm on MemoryStore with a manual
// clock; over the ioredis and node-redis adapters on a real redis-server
// (one EVALSHA per decision, checked with INFO commandstats); headers
// rendered by the core, and the JS renderer agreeing with it; the Express
// middleware with the real limiter; hostile inputs.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const express = require('express');
const Redis = require('ioredis');
const { createClient } = require('redis');
const {
  MemoryStore,
  ManualClock,
  RateLimiter,
  Decision,
  RampartError,
  Store,
  ioredisStore,
  nodeRedisStore,
  rateLimit,
  rateLimitHeaders,
  fault,
} = require('..');
const { startRedis } = require('../testing/redis-server');

const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 60_000); // a minute boundary

function memory() {
  const clock = new ManualClock(T0);
  return { clock, store: new MemoryStore({ clock }) };
}

/**
 * `limiter` (on a MemoryStore) sent down the async task path, as if one of
 * its stores were not in process: the twin of one that decides during the
 * call.
 */
function onTaskPath(limiter) {
  const inProcess = Object.getOwnPropertySymbols(limiter).find((s) => s.description === 'rampart.limiter.inProcess');
  assert.equal(limiter[inProcess], true);
  limiter[inProcess] = false;
  return limiter;
}

/**
 * `limiter` (over an adapter with eval) sent down the task path: the twin
 * of one that makes the script call itself (its scripted path).
 */
function offScriptedPath(limiter) {
  const path = Object.getOwnPropertySymbols(limiter).find((s) => s.description === 'rampart.limiter.scripted');
  assert.notEqual(limiter[path], null, 'an adapter with eval takes the scripted path');
  limiter[path] = null;
  return limiter;
}

async function codeOf(p) {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    assert.ok(e instanceof RampartError, String(e));
    return e.code;
  }
}

describe('RateLimiter on MemoryStore', () => {
  it('fixed window: two per minute, then a denial with retryAfter', async () => {
    const { clock, store } = memory();
    const limiter = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 2, window: 60_000, prefix: 'rl:login' });
    clock.advance(40_000);
    const first = await limiter.consume('alice');
    assert.ok(first instanceof Decision);
    assert.equal(first.allowed, true);
    assert.equal(first.remaining, 1);
    assert.equal(first.source, 'store');
    assert.equal((await limiter.consume('alice')).allowed, true);
    const denied = await limiter.consume('alice');
    assert.equal(denied.allowed, false);
    assert.equal(denied.retryAfter, 20_000);
    assert.equal(denied.tiers.length, 1);
    clock.advance(20_000);
    assert.equal((await limiter.consume('alice')).allowed, true);
    // Keys are namespaced by the prefix.
    assert.notEqual(await store.get('rl:login:alice'), null);
  });

  for (const algorithm of ['token-bucket', 'sliding-log', 'sliding-window', 'fixed-window']) {
    it(`${algorithm}: admits exactly the limit at once, never more`, async () => {
      const { clock, store } = memory();
      const limiter = new RateLimiter({ store, clock, algorithm, quotas: [{ limit: 10, window: 1_000 }] });
      let admitted = 0;
      for (let i = 0; i < 25; i++) if ((await limiter.consume('k')).allowed) admitted++;
      assert.equal(admitted, 10);
      const denied = await limiter.consume('k');
      // The counter may ask for a little more than a window (it rounds up).
      assert.ok(denied.retryAfter > 0 && denied.retryAfter <= 2_000, String(denied.retryAfter));
      // After retryAfter, the same request passes.
      clock.advance(denied.retryAfter);
      assert.equal((await limiter.consume('k')).allowed, true);
    });
  }

  for (const algorithm of ['token-bucket', 'sliding-log', 'sliding-window', 'fixed-window']) {
    it(`${algorithm}: the synchronous path decides exactly as the task path`, async () => {
      // consume(key) on a MemoryStore is decided during the call; the
      // twin sent down the task path runs it as a task. Twin limiters, one
      // per path, on twin stores and one clock, must give identical
      // decisions.
      const clock = new ManualClock(T0);
      const burst = algorithm === 'token-bucket' ? 6 : undefined;
      const rule = { clock, algorithm, quotas: [{ limit: 4, window: 1_000 }, { limit: 9, window: 10_000, burst }], blockFor: 3_000 };
      const now = new RateLimiter({ store: new MemoryStore({ clock }), ...rule });
      const task = onTaskPath(new RateLimiter({ store: new MemoryStore({ clock }), ...rule }));
      let seed = 7;
      const random = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x7fffffff;
      };
      for (let i = 0; i < 300; i++) {
        const key = `k${Math.floor(random() * 3)}${i % 50 === 0 ? 'é' : ''}`;
        const cost = 1 + Math.floor(random() * 3);
        const a = await now.consume(key, cost);
        const b = await task.consume(key, cost, i % 2 === 0 ? {} : undefined);
        assert.deepEqual({ ...a }, { ...b }, `#${i} ${key} ${cost}`);
        clock.advance(Math.floor(random() * 400));
      }
    });
  }

  for (const algorithm of ['token-bucket', 'sliding-log', 'sliding-window', 'fixed-window']) {
    it(`${algorithm}: with header options, the synchronous path decides and renders as the task path`, async () => {
      // consume(key, cost, { headers, names, partitionKey }) on a
      // MemoryStore is decided and rendered during the call (the key in
      // the scratch buffer when short and ASCII, else passed as a string).
      const clock = new ManualClock(T0);
      const burst = algorithm === 'token-bucket' ? 6 : undefined;
      const rule = { clock, algorithm, quotas: [{ limit: 4, window: 1_000 }, { limit: 9, window: 90_000, burst }], blockFor: 3_000 };
      const now = new RateLimiter({ store: new MemoryStore({ clock }), ...rule });
      const task = onTaskPath(new RateLimiter({ store: new MemoryStore({ clock }), ...rule }));
      const styles = ['draft-8', 'draft-7', 'draft-6', 'legacy'];
      const NAMES = [undefined, ['api'], ['per-second', 'per-90s'], ['"q\\', 'é\n']];
      const PKS = [undefined, 'u', '203.0.113.7', 'é'.repeat(40)];
      let seed = 11;
      const random = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x7fffffff;
      };
      const pick = (xs) => xs[Math.floor(random() * xs.length)];
      const seen = new Set();
      for (let i = 0; i < 400; i++) {
        const key = `k${Math.floor(random() * 3)}${i % 7 === 0 ? 'é' : ''}`;
        const cost = 1 + Math.floor(random() * 3);
        const opts = { headers: styles[i % 4], names: pick(NAMES), partitionKey: pick(PKS) };
        const a = await now.consume(key, cost, opts);
        const b = await task.consume(key, cost, opts);
        const label = `#${i} ${key} ${cost} ${JSON.stringify(opts)}`;
        assert.deepEqual({ ...a }, { ...b }, label);
        const again = { names: opts.names, partitionKey: opts.partitionKey };
        const headers = a.headers(opts.headers, again);
        assert.deepEqual(headers, b.headers(opts.headers, again), label);
        // What the core rendered with the decision, as the JavaScript
        // renderer has it from the figures.
        assert.deepEqual(headers, rateLimitHeaders({ ...a }, { style: opts.headers, ...again }), label);
        // A fresh array each time.
        assert.notEqual(a.headers(opts.headers, again), headers);
        seen.add(`${opts.headers} ${a.allowed}`);
        clock.advance(Math.floor(random() * 400));
      }
      // Every style both admitted and denied.
      assert.equal(seen.size, 8, [...seen].join(', '));
    });
  }

  it('multi-tier rules decide all tiers at once', async () => {
    const { clock, store } = memory();
    const limiter = new RateLimiter({
      store,
      clock,
      algorithm: 'sliding-window',
      quotas: [
        { limit: 2, window: 1_000 },
        { limit: 3, window: 60_000 },
      ],
    });
    assert.equal(limiter.capacity, 2);
    for (let second = 0; second < 3; second++) {
      await limiter.consume('k');
      clock.advance(1_000);
    }
    const d = await limiter.consume('k');
    assert.equal(d.allowed, false);
    assert.equal(d.tiers.length, 2);
    assert.equal(d.tiers[1].remaining, 0);
  });

  it('check, refund, penalty, block and reset', async () => {
    const { clock, store } = memory();
    const limiter = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 5, window: 60_000 });
    await limiter.consume('k', 3);
    assert.equal((await limiter.check('k', 2)).allowed, true);
    assert.equal((await limiter.check('k', 2)).remaining, 2, 'check counted something');
    assert.equal((await limiter.refund('k', 2)).remaining, 4);
    assert.equal((await limiter.penalty('k', 4)).remaining, 0);
    const blocked = await limiter.block('k', 30_000);
    assert.equal(blocked.blockedUntil, T0 + 30_000);
    const cached = await limiter.consume('k');
    assert.equal(cached.allowed, false);
    assert.equal(cached.source, 'block-cache');
    await limiter.reset('k');
    assert.equal((await limiter.consume('k')).remaining, 4);
  });

  it('consumeWithin waits for room, or answers a denial no wait could lift', async () => {
    // The system clock: the wait is a real (short) setTimeout.
    const limiter = new RateLimiter({ store: new MemoryStore(), algorithm: 'token-bucket', limit: 20, window: 1_000, burst: 1 });
    assert.equal((await limiter.consume('k')).allowed, true);
    assert.equal((await limiter.consume('k')).allowed, false, 'no room at once');
    const waited = await limiter.consumeWithin('k', 1_000);
    assert.equal(waited.allowed, true, 'admitted once the bucket refilled');
    // Nothing to wait for: exactly consume.
    assert.equal((await limiter.consumeWithin('other', 0, 1)).allowed, true);
    // A retry longer than the wait allowed comes back denied, with it.
    const { clock, store } = memory();
    const hourly = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 1, window: 3_600_000 });
    await hourly.consume('k');
    const denied = await hourly.consumeWithin('k', 50);
    assert.equal(denied.allowed, false);
    assert.ok(denied.retryAfter > 50, String(denied.retryAfter));
    assert.equal(await codeOf(hourly.consumeWithin('k', 10, 2)), 'RAMPART_INVALID_INPUT', 'cost above the limit');
    for (const bad of [-1, NaN, Infinity, '10', 2 ** 64, undefined]) {
      assert.equal(await codeOf(hourly.consumeWithin('k', bad)), 'RAMPART_INVALID_INPUT', String(bad));
    }
    assert.equal(await codeOf(hourly.consumeWithin('', 10)), 'RAMPART_INVALID_KEY');
  });

  it('refund with the charge’s time gives back that charge', async () => {
    const { clock, store } = memory();
    const log = new RateLimiter({ store, clock, algorithm: 'sliding-log', limit: 2, window: 60_000 });
    const early = await log.consume('k');
    clock.advance(30_000);
    await log.consume('k');
    await log.refund('k', 1, early.at); // the early entry goes, not the newest
    assert.equal((await log.consume('k')).allowed, true);
    clock.advance(31_000); // both entries now are from 30 s on: still two
    assert.equal((await log.consume('k')).allowed, false);
    // A fixed window gives nothing back once the charge's window is over.
    const fixed = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 1, window: 60_000, prefix: 'fw' });
    clock.advance(60_000 - ((clock.now() - T0) % 60_000)); // a window boundary
    const old = await fixed.consume('k');
    clock.advance(60_000);
    await fixed.consume('k');
    assert.equal((await fixed.refund('k', 1, old.at)).remaining, 0);
    for (const bad of [-1, NaN, 'x', 2 ** 60]) {
      assert.equal(await codeOf(fixed.refund('k', 1, bad)), 'RAMPART_INVALID_INPUT', String(bad));
    }
  });

  it('a denial starts the rule’s block', async () => {
    const { clock, store } = memory();
    const limiter = new RateLimiter({ store, clock, algorithm: 'sliding-log', limit: 1, window: 1_000, blockFor: 60_000 });
    await limiter.consume('k');
    const denied = await limiter.consume('k');
    assert.equal(denied.blockedUntil, T0 + 60_000);
    clock.advance(2_000);
    assert.equal((await limiter.consume('k')).allowed, false);
  });

  it('consumeAll is all or nothing', async () => {
    const { clock, store } = memory();
    const perIp = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 100, window: 60_000, prefix: 'rl:ip' });
    const perUser = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 1, window: 60_000, prefix: 'rl:user' });
    assert.equal((await RateLimiter.consumeAll([[perIp, '10.0.0.1'], [perUser, 'alice']])).allowed, true);
    assert.equal((await RateLimiter.consumeAll([[perIp, '10.0.0.1', 1], [perUser, 'alice', 1]])).allowed, false);
    assert.equal((await perIp.check('10.0.0.1')).remaining, 99);
  });

  it('presets come from the core, overridden by env', async () => {
    const { clock, store } = memory();
    const auth = RateLimiter.preset('auth', { store, clock, env: { RATE_LIMIT_AUTH_POINTS: '2' } });
    assert.equal(auth.capacity, 2);
    await auth.consume('u');
    await auth.consume('u');
    const denied = await auth.consume('u');
    assert.equal(denied.allowed, false);
    assert.equal(denied.blockedUntil, T0 + 15 * 60_000);
    assert.throws(
      () => RateLimiter.preset('api', { store, env: { RATE_LIMIT_API_POINTS: 'lots' } }),
      (e) => e.code === 'RAMPART_CONFIG' && e.message.includes('RATE_LIMIT_API_POINTS'),
    );
  });

  it('fails open, closed, or to an insurance store', async () => {
    const down = Store.fromAdapter({
      get: () => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
      set() {},
      delete() {},
      ttl() {},
      compareAndSwap: () => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
      scan() {},
    });
    const base = { store: down, algorithm: 'fixed-window', limit: 1, window: 60_000 };
    assert.equal(await codeOf(new RateLimiter(base).consume('k')), 'RAMPART_UNAVAILABLE');
    assert.equal((await new RateLimiter({ ...base, onStoreError: 'allow' }).consume('k')).source, 'fail-open');
    const closed = await new RateLimiter({ ...base, onStoreError: 'deny' }).consume('k');
    assert.equal(closed.source, 'fail-closed');
    assert.equal(closed.allowed, false);
    const insurance = new MemoryStore();
    const insured = new RateLimiter({ ...base, onStoreError: { insurance } });
    assert.equal((await insured.consume('k')).source, 'insurance');
    assert.equal((await insured.consume('k')).allowed, false);
  });
});

describe('headers', () => {
  it('the core renders them with the decision', async () => {
    const { clock, store } = memory();
    const limiter = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 5, window: 60_000 });
    const d = await limiter.consume('foo', 1, { headers: 'draft-8', partitionKey: 'foo' });
    assert.deepEqual(d.headers('draft-8', { partitionKey: 'foo' }), [
      ['RateLimit-Policy', '"5-in-1min"; q=5; w=60; pk=:MmMyNmI0NmI2OGZm:'],
      ['RateLimit', '"5-in-1min"; r=4; t=60'],
    ]);
  });

  it('the JavaScript renderer agrees with the core on 2000 decisions', async () => {
    const { clock, store } = memory();
    const limiters = ['token-bucket', 'sliding-log', 'sliding-window', 'fixed-window'].map(
      (algorithm) =>
        new RateLimiter({
          store,
          clock,
          algorithm,
          prefix: algorithm,
          blockFor: algorithm === 'sliding-log' ? 5_000 : undefined,
          quotas: [
            { limit: 3, window: 1_500 },
            { limit: 20, window: 3_600_000 },
          ],
        }),
    );
    // Windows the headers must scale or round: token buckets whose burst
    // is not their rate (refill in 100 ms, in 16.7 s) and sub-second quotas.
    for (const [algorithm, quota] of [
      ['token-bucket', { limit: 100, window: 1_000, burst: 10 }],
      ['token-bucket', { limit: 3, window: 1_000, burst: 50 }],
      ['fixed-window', { limit: 5, window: 300 }],
      ['sliding-window', { limit: 7, window: 333 }],
    ]) {
      limiters.push(new RateLimiter({ store, clock, algorithm, prefix: `${algorithm}:${quota.window}`, quotas: [quota] }));
    }
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const styles = ['draft-8', 'draft-7', 'draft-6', 'legacy'];
    for (let i = 0; i < 2000; i++) {
      const limiter = limiters[i % limiters.length];
      const style = styles[Math.floor(random() * 4)];
      const options = { headers: style, names: random() < 0.5 ? ['api'] : undefined, partitionKey: random() < 0.5 ? `user${i % 7}` : undefined };
      const d = await limiter.consume(`u${i % 5}`, 1 + Math.floor(random() * 2), options);
      const core = d.headers(style, { names: options.names, partitionKey: options.partitionKey });
      const js = rateLimitHeaders({ ...d, tiers: d.tiers }, { style, names: options.names, partitionKey: options.partitionKey });
      assert.deepEqual(js, core, `decision ${i}: ${JSON.stringify(d)}`);
      clock.advance(Math.floor(random() * 400));
    }
  });

  it('the Express middleware with the real limiter', async () => {
    const { clock, store } = memory();
    const limiter = new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 1, window: 60_000 });
    // 20 a second, no burst: a request may wait ~50 ms for room.
    const smooth = new RateLimiter({ store: new MemoryStore(), algorithm: 'token-bucket', limit: 20, window: 1_000, burst: 1 });
    const app = express();
    app.get('/', rateLimit({ limiter, key: () => 'foo' }), (req, res) => res.send('ok'));
    app.get('/wait', rateLimit({ limiter: smooth, key: () => 'w', wait: 1_000 }), (req, res) => res.send('ok'));
    const server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const base = `http://127.0.0.1:${server.address().port}/`;
      const ok = await fetch(base);
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('ratelimit'), '"1-in-1min"; r=0; t=60');
      const denied = await fetch(base);
      assert.equal(denied.status, 429);
      assert.equal(denied.headers.get('retry-after'), '60');
      // With `wait`, back-to-back requests queue for room instead of a 429.
      for (let i = 0; i < 3; i++) {
        const waited = await fetch(`${base}wait`);
        assert.equal(waited.status, 200);
        assert.match(waited.headers.get('ratelimit'), /; r=0; t=\d+$/);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('the Express middleware counting only failures or only successes', () => {
  /**
   * The real limiter behind an object that tells when a refund has landed
   * (the middleware refunds after the response: a test must not race it).
   */
  function watched(limiter) {
    const landed = [];
    let wake = () => {};
    return {
      consume: (...a) => limiter.consume(...a),
      async refund(...a) {
        const d = await limiter.refund(...a);
        landed.push(a);
        wake();
        return d;
      },
      refunds: (n) =>
        new Promise((resolve) => {
          const check = () => (landed.length >= n ? resolve() : (wake = check));
          check();
        }),
    };
  }

  async function withApp(limiterOptions, middlewareOptions, body) {
    const { clock, store } = memory();
    const limiter = watched(new RateLimiter({ store, clock, algorithm: 'fixed-window', limit: 2, window: 60_000 }));
    const app = express();
    app.get('/login', rateLimit({ limiter, key: () => 'login', ...middlewareOptions }), (req, res) =>
      req.query.ok === '1' ? res.send('welcome') : res.status(401).send('wrong password'),
    );
    const server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const url = (ok) => `http://127.0.0.1:${server.address().port}/login?ok=${ok ? 1 : 0}`;
      await body(async (ok) => (await fetch(url(ok))).status, limiter);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it('skipSuccessfulRequests: any number of good logins, two bad ones', async () => {
    await withApp({}, { skipSuccessfulRequests: true }, async (login, limiter) => {
      for (let i = 1; i <= 5; i++) {
        assert.equal(await login(true), 200);
        await limiter.refunds(i);
      }
      assert.equal(await login(false), 401);
      assert.equal(await login(false), 401);
      assert.equal(await login(true), 429);
    });
  });

  it('skipFailedRequests: any number of bad logins, two good ones', async () => {
    await withApp({}, { skipFailedRequests: true }, async (login, limiter) => {
      for (let i = 1; i <= 5; i++) {
        assert.equal(await login(false), 401);
        await limiter.refunds(i);
      }
      assert.equal(await login(true), 200);
      assert.equal(await login(true), 200);
      assert.equal(await login(false), 429);
    });
  });

  it('requestWasSuccessful decides what a success is', async () => {
    // Here a 401 is the expected answer and counts as a success.
    await withApp({}, { skipSuccessfulRequests: true, requestWasSuccessful: (req, res) => res.statusCode === 401 }, async (login, limiter) => {
      for (let i = 1; i <= 3; i++) {
        assert.equal(await login(false), 401);
        await limiter.refunds(i);
      }
      assert.equal(await login(true), 200);
      assert.equal(await login(true), 200);
      assert.equal(await login(false), 429);
    });
  });
});

describe('RateLimiter over Redis adapters', () => {
  let server;
  const closers = [];
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    for (const close of closers) await close();
    await server?.stop();
  });

  const clients = {
    ioredis: async () => {
      const c = new Redis({ host: '127.0.0.1', port: server.port });
      closers.push(() => c.quit());
      return { store: ioredisStore(c), info: () => c.info('commandstats') };
    },
    'ioredis (enableAutoPipelining)': async () => {
      const c = new Redis({ host: '127.0.0.1', port: server.port, enableAutoPipelining: true });
      closers.push(() => c.quit());
      return { store: ioredisStore(c), info: () => c.info('commandstats') };
    },
    'node-redis': async () => {
      const c = createClient({ url: server.url });
      await c.connect();
      closers.push(() => c.quit());
      return { store: nodeRedisStore(c), info: () => c.info('commandstats') };
    },
  };

  for (const [name, connect] of Object.entries(clients)) {
    it(`${name}: one EVALSHA per decision, exact counts under concurrency`, async () => {
      const { store, info } = await connect();
      const limiter = new RateLimiter({ store, algorithm: 'sliding-log', limit: 100, window: 60_000, prefix: `rl:${name}` });
      await limiter.consume('warm'); // loads the script (NOSCRIPT, then EVAL)
      const calls = (text) => Number(text.match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
      const before = calls(await info());
      const decisions = await Promise.all(Array.from({ length: 300 }, () => limiter.consume('hot')));
      assert.equal(decisions.filter((d) => d.allowed).length, 100);
      assert.equal(calls(await info()) - before, 300);
    });
  }

  it('consumeWithin over ioredis: waits on the server’s clock, then is admitted', async () => {
    const { store } = await clients.ioredis();
    const limiter = new RateLimiter({ store, algorithm: 'token-bucket', limit: 20, window: 1_000, burst: 1, prefix: 'rl:within' });
    assert.equal((await limiter.consume('k')).allowed, true);
    assert.equal((await limiter.consume('k')).allowed, false);
    assert.equal((await limiter.consumeWithin('k', 1_000)).allowed, true);
  });

  const ALGORITHMS = ['token-bucket', 'sliding-log', 'sliding-window', 'fixed-window'];

  for (const name of ['ioredis', 'node-redis']) {
    it(`${name}: consume's scripted path decides as the task path`, async () => {
      const { store } = await clients[name]();
      const clock = new ManualClock(T0);
      let seed = 7;
      const rand = (n) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      for (const algorithm of ALGORITHMS) {
        const rule = { store, clock, scriptTime: 'caller', algorithm, quotas: [{ limit: 5, window: 1_000 }, { limit: 12, window: 10_000 }], blockFor: 1_500 };
        const scripted = new RateLimiter({ ...rule, prefix: `split:${name}:${algorithm}:a` });
        const task = offScriptedPath(new RateLimiter({ ...rule, prefix: `split:${name}:${algorithm}:b` }));
        const styles = [undefined, 'draft-8', 'draft-7', 'draft-6', 'legacy'];
        for (let i = 0; i < 60; i++) {
          const cost = 1 + rand(5);
          const style = styles[i % styles.length];
          const opts = style === undefined ? undefined : { headers: style, names: ['tiers'], partitionKey: 'user 1' };
          const a = await scripted.consume('k', cost, opts);
          const b = await task.consume('k', cost, opts);
          assert.deepEqual({ ...a }, { ...b }, `${algorithm} step ${i} cost ${cost}`);
          if (style !== undefined) assert.deepEqual(a.headers(style, opts), b.headers(style, opts));
          clock.advance(rand(400));
        }
        assert.equal(await codeOf(scripted.consume('k', 99)), 'RAMPART_INVALID_INPUT');
        assert.equal(await codeOf(scripted.consume('\ud800')), 'RAMPART_INVALID_KEY');
        assert.equal(await codeOf(scripted.consume('')), 'RAMPART_INVALID_KEY');
        assert.equal(await codeOf(scripted.consume('k', 1, { headers: 'draft-9' })), 'RAMPART_INVALID_INPUT');
        assert.equal(await codeOf(scripted.consume('', 1, { headers: 'draft-9' })), 'RAMPART_INVALID_KEY');
      }
    });
  }
});

describe('the scripted path over an adapter that fails or misbehaves', () => {
  /** A store adapter whose eval does `evalImpl` (the rest is never called by consume). */
  function adapter(evalImpl) {
    const unused = () => Promise.reject(new Error('not used by consume'));
    return Store.fromAdapter({ get: unused, set: unused, delete: unused, ttl: unused, compareAndSwap: unused, scan: unused, eval: evalImpl });
  }
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
  const base = { algorithm: 'fixed-window', limit: 1, window: 60_000 };

  it('fails open, closed, or to an insurance store, as the task path does', async () => {
    for (const evalImpl of [() => Promise.reject(refused()), () => { throw refused(); }]) {
      const store = adapter(evalImpl);
      for (const onStoreError of ['fail', 'allow', 'deny', 'insurance']) {
        // One manual clock: the figures must not depend on when each ran.
        const clock = new ManualClock(T0);
        const make = () =>
          new RateLimiter({
            ...base,
            store,
            clock,
            onStoreError: onStoreError === 'insurance' ? { insurance: new MemoryStore({ clock }) } : onStoreError,
          });
        const scripted = make();
        const task = offScriptedPath(make());
        for (let i = 0; i < 3; i++) {
          const opts = i === 2 ? { headers: 'draft-8' } : undefined;
          const a = scripted.consume('k', 1, opts);
          const b = task.consume('k', 1, opts);
          if (onStoreError === 'fail') {
            assert.equal(await codeOf(a), 'RAMPART_UNAVAILABLE');
            assert.equal(await codeOf(b), 'RAMPART_UNAVAILABLE');
            continue;
          }
          const [da, db] = [await a, await b];
          assert.deepEqual({ ...da }, { ...db }, `${onStoreError} ${i}`);
          if (opts !== undefined) assert.deepEqual(da.headers('draft-8'), db.headers('draft-8'));
          assert.equal(da.source, { allow: 'fail-open', deny: 'fail-closed', insurance: 'insurance' }[onStoreError]);
        }
      }
    }
    assert.equal(fault(), null);
  });

  it('odd replies are decoded as the task path decodes them; bad ones are coded errors', async () => {
    const now = () => Date.now() * 1000;
    const admitted = () => [1, now(), 0, 0, 60_000_000, 0];
    const replies = {
      'a plain array': () => admitted(),
      'a promise': () => Promise.resolve(admitted()),
      'a thenable': () => ({ then: (ok) => ok(admitted()) }),
      'strings for integers': () => admitted().map(String),
      'too few values': () => [1, 2],
      'a string': () => 'OK',
      'null': () => null,
      'a negative number': () => [1, -5, 0, 0, 0, 0],
      'a throwing getter': () => {
        const a = admitted();
        Object.defineProperty(a, 2, { get() { throw new Error('getter'); } });
        return a;
      },
      'a revoked proxy': () => {
        const { proxy, revoke } = Proxy.revocable([], {});
        revoke();
        return proxy;
      },
      'a throwing then': () => ({ get then() { throw new Error('then'); } }),
      'a Redis error reply': () => Promise.reject(Object.assign(new Error('ERR Error running script'), { name: 'ReplyError' })),
    };
    for (const [what, evalImpl] of Object.entries(replies)) {
      const store = adapter(evalImpl);
      for (const opts of [undefined, { headers: 'legacy' }]) {
        const a = await codeOf(new RateLimiter({ ...base, store }).consume('k', 1, opts));
        const b = await codeOf(offScriptedPath(new RateLimiter({ ...base, store })).consume('k', 1, opts));
        assert.equal(a, b, what);
        assert.notEqual(a, 'RAMPART_PANIC', what);
      }
    }
    assert.equal(fault(), null);
    assert.equal((await new RateLimiter({ ...base, store: adapter(() => admitted()) }).consume('k')).allowed, true);
  });

  it('an adapter insurance store sends consume down the task path', async () => {
    const insurance = Store.fromAdapter({
      get: async () => null,
      set: async () => {},
      delete: async () => false,
      ttl: async () => null,
      compareAndSwap: async () => ({ swapped: true }),
      scan: async () => ({ keys: [], cursor: null }),
    });
    const limiter = new RateLimiter({ ...base, store: adapter(() => Promise.reject(refused())), onStoreError: { insurance } });
    const path = Object.getOwnPropertySymbols(limiter).find((s) => s.description === 'rampart.limiter.scripted');
    assert.equal(limiter[path], null);
    assert.equal((await limiter.consume('k')).source, 'insurance');
  });
});

describe('hostile inputs to RateLimiter', () => {
  const hostile = [undefined, null, NaN, Infinity, -1, 0, 0.5, 2 ** 64, '', 'x'.repeat(1 << 20), {}, [], Symbol('s'), 10n, () => 1];
  it('constructor options are refused with RAMPART_CONFIG or RAMPART_INVALID_INPUT', () => {
    const { store } = memory();
    for (const v of hostile) {
      for (const opts of [v, { store: v, limit: 1, window: 1 }, { store, limit: v, window: 1000 }, { store, limit: 1, window: v }, { store, quotas: v }, { store, quotas: [v] }, { store, limit: 1, window: 1, algorithm: v }, { store, limit: 1, window: 1, blockFor: v }, { store, limit: 1, window: 1, onStoreError: v }, { store, limit: 1, window: 1, blockCache: v }, { store, limit: 1, window: 1, prefix: v }]) {
        try {
          new RateLimiter(opts);
        } catch (e) {
          assert.ok(e instanceof RampartError, String(e));
          assert.ok(['RAMPART_CONFIG', 'RAMPART_INVALID_INPUT', 'RAMPART_INVALID_KEY'].includes(e.code), e.code);
        }
      }
    }
  });
  // A MemoryStore limiter (decided during the call) and one over an adapter
  // with eval (the scripted path; its eval answers an admission).
  const scriptedStore = () => {
    const unused = () => Promise.reject(new Error('not used'));
    const admitted = () => Promise.resolve([1, Date.now() * 1000, 0, 9, 1_000_000, 0]);
    return Store.fromAdapter({ get: unused, set: unused, delete: unused, ttl: unused, compareAndSwap: unused, scan: unused, eval: admitted });
  };
  for (const [name, store] of [
    ['MemoryStore', () => memory().store],
    ['an adapter with eval', scriptedStore],
  ]) {
    it(`every method settles with a code (${name})`, async () => {
      const limiter = new RateLimiter({ store: store(), limit: 10, window: 1_000 });
      for (const v of hostile) {
        for (const call of [
          () => limiter.consume(v),
          () => limiter.consume('k', v),
          () => limiter.consume('k', 1, v),
          () => limiter.consume('k', 1, { headers: v }),
          () => limiter.consume('k', 1, { headers: 'draft-8', names: v, partitionKey: v }),
          () => limiter.check('k', v),
          () => limiter.refund(v, v),
          () => limiter.refund('k', 1, v),
          () => limiter.penalty('k', v),
          () => limiter.block('k', v),
          () => limiter.consumeWithin(v, 0),
          () => limiter.consumeWithin('k', v),
          () => limiter.consumeWithin('k', 0, v),
          () => limiter.reset(v),
          () => RateLimiter.consumeAll(v),
          () => RateLimiter.consumeAll([[limiter, v, v]]),
        ]) {
          const p = call();
          assert.ok(p instanceof Promise);
          const code = await codeOf(p);
          assert.notEqual(code, 'RAMPART_PANIC');
        }
      }
      assert.equal(fault(), null);
    });
  }
});
