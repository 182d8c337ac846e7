'use strict';
// The Express middleware, end to end: a real express app on an ephemeral
// 127.0.0.1 port, real HTTP requests.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const express = require('express');
const { rateLimit, rateLimitHeaders, RampartError } = require('..');

/**
 * A fixed-window limiter with a manual "now", standing in for any limiter
 * that implements consume(key, cost) -> Decision (rampart's RateLimiter
 * plugs in the same way).
 */
function fixedWindow(limit, windowMs, now) {
  const counts = new Map();
  return {
    calls: [],
    async consume(key, cost = 1) {
      this.calls.push([key, cost]);
      const at = now();
      const start = Math.floor(at / windowMs) * windowMs;
      const c = counts.get(key);
      const used = c && c.start === start ? c.used : 0;
      const allowed = used + cost <= limit;
      if (allowed) counts.set(key, { start, used: used + cost });
      const resetAfter = start + windowMs - at;
      const remaining = limit - (allowed ? used + cost : used);
      const tier = { limit, remaining, resetAfter, retryAfter: allowed ? null : resetAfter, window: windowMs };
      return { allowed, limit, remaining, resetAfter, retryAfter: tier.retryAfter, window: windowMs, at, blockedUntil: null, source: 'store', tiers: [tier] };
    },
  };
}

let server;
let base;
let now = 1_699_999_990_000; // 10 s into a minute
const limiter = fixedWindow(2, 60_000, () => now);
const failing = { consume: async () => Promise.reject(new RampartError('RAMPART_UNAVAILABLE', 'store down')) };

before(async () => {
  const app = express();
  app.get('/draft8', rateLimit({ limiter, key: () => 'foo' }), (req, res) => res.send(`ok ${req.rateLimit.remaining}`));
  app.get('/legacy', rateLimit({ limiter, key: (req) => `legacy:${req.ip}`, headers: 'legacy', cost: 2 }), (req, res) => res.send('ok'));
  app.get('/quiet', rateLimit({ limiter, key: () => 'quiet', headers: false, message: { error: 'slow down' } }), (req, res) => res.send('ok'));
  app.get('/named', rateLimit({ limiter, key: () => 'named', names: ['api'], partitionKey: false }), (req, res) => res.send('ok'));
  app.get('/down', rateLimit({ limiter: failing }), (req, res) => res.send('ok'));
  app.get('/open', rateLimit({ limiter: failing, failOpen: true }), (req, res) => res.send('open'));
  app.get('/skip', rateLimit({ limiter, key: () => 'skip', skip: (req) => req.query.vip === '1' }), (req, res) => res.send('ok'));
  app.use((err, req, res, _next) => res.status(503).json({ code: err.code }));
  await new Promise((resolve) => {
    server = app.listen(0, '127.0.0.1', resolve);
  });
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => new Promise((resolve) => server.close(resolve)));

describe('rateLimit middleware', () => {
  it('sets draft-8 headers with the partition key, then answers 429 with Retry-After', async () => {
    let r = await fetch(`${base}/draft8`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'ok 1');
    // pk for "foo" is express-rate-limit's own (from its header tests).
    assert.equal(r.headers.get('ratelimit-policy'), '"2-in-1min"; q=2; w=60; pk=:MmMyNmI0NmI2OGZm:');
    assert.equal(r.headers.get('ratelimit'), '"2-in-1min"; r=1; t=50');
    assert.equal(r.headers.get('retry-after'), null);
    r = await fetch(`${base}/draft8`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('ratelimit'), '"2-in-1min"; r=0; t=50');
    now += 1_500;
    r = await fetch(`${base}/draft8`);
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '49');
    assert.equal(r.headers.get('ratelimit'), '"2-in-1min"; r=0; t=49');
    assert.equal(await r.text(), 'Too many requests, please try again later.');
    assert.deepEqual(limiter.calls.at(-1), ['foo', 1]);
  });

  it('sets legacy headers, with the cost and key from the request', async () => {
    const r1 = await fetch(`${base}/legacy`);
    assert.equal(r1.status, 200);
    assert.equal(r1.headers.get('x-ratelimit-limit'), '2');
    assert.equal(r1.headers.get('x-ratelimit-remaining'), '0');
    assert.equal(r1.headers.get('x-ratelimit-reset'), String(Math.ceil((Math.floor(now / 60_000) + 1) * 60)));
    assert.equal(r1.headers.get('ratelimit'), null);
    assert.deepEqual(limiter.calls.at(-1), ['legacy:127.0.0.1', 2]);
    const r2 = await fetch(`${base}/legacy`);
    assert.equal(r2.status, 429);
    assert.ok(Number(r2.headers.get('retry-after')) > 0);
  });

  it('sends Retry-After even without rate-limit headers, and a JSON message', async () => {
    await fetch(`${base}/quiet`);
    await fetch(`${base}/quiet`);
    const r = await fetch(`${base}/quiet`);
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('ratelimit'), null);
    assert.ok(Number(r.headers.get('retry-after')) > 0);
    assert.deepEqual(await r.json(), { error: 'slow down' });
  });

  it('names draft-8 policies and can leave out the partition key', async () => {
    const r = await fetch(`${base}/named`);
    assert.equal(r.headers.get('ratelimit-policy'), '"api"; q=2; w=60');
  });

  it('passes limiter failures to the error handler, or fails open', async () => {
    const down = await fetch(`${base}/down`);
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), { code: 'RAMPART_UNAVAILABLE' });
    const open = await fetch(`${base}/open`);
    assert.equal(open.status, 200);
    assert.equal(await open.text(), 'open');
  });

  it('skips requests when told to', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await fetch(`${base}/skip?vip=1`)).status, 200);
    }
    assert.equal(limiter.calls.filter(([k]) => k === 'skip').length, 0);
  });

  it('refuses bad options up front', () => {
    for (const bad of [undefined, {}, { limiter: {} }, { limiter, headers: 'draft-9' }, { limiter, cost: 0 }, { limiter, key: 'ip' }, { limiter, wait: -1 }, { limiter, wait: NaN }, { limiter, wait: '5' }, { limiter, wait: 10 }, { limiter, skipSuccessfulRequests: true }, { limiter, skipFailedRequests: 1 }, { limiter, requestWasSuccessful: 200 }, { limiter: { ...limiter, consume: limiter.consume, consumeWithin: limiter.consume }, wait: 100 * 365 * 86_400_000 + 1 }]) {
      assert.throws(() => rateLimit(bad), (e) => e.code === 'RAMPART_INVALID_INPUT');
    }
  });
});

describe('rateLimit refunds (skipSuccessfulRequests / skipFailedRequests)', () => {
  /** A limiter that admits everything with `source`, and records refunds. */
  function recording(source) {
    const refunds = [];
    let landed = () => {};
    return {
      refunds,
      next: () => new Promise((resolve) => (landed = resolve)),
      async consume() {
        return { allowed: true, limit: 9, remaining: 8, resetAfter: 1_000, retryAfter: null, window: 60_000, at: 1_700_000_000_123.456, source, tiers: [] };
      },
      async refund(...args) {
        refunds.push(args);
        landed();
      },
    };
  }

  async function serve(middleware, status, body) {
    const app = express();
    app.get('/', middleware, (req, res) => res.status(status).send('x'));
    const server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      await body(`http://127.0.0.1:${server.address().port}/`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it('refunds the charge by its time, once the response is over', async () => {
    const limiter = recording('store');
    await serve(rateLimit({ limiter, key: () => 'k', cost: 2, skipFailedRequests: true }), 500, async (url) => {
      const landed = limiter.next();
      assert.equal((await fetch(url)).status, 500);
      await landed;
      assert.deepEqual(limiter.refunds, [['k', 2, 1_700_000_000_123.456]]);
    });
  });

  it('a requestWasSuccessful that throws makes the request a failure', async () => {
    const limiter = recording('store');
    const throwing = () => {
      throw new Error('boom');
    };
    await serve(rateLimit({ limiter, key: () => 'k', skipFailedRequests: true, requestWasSuccessful: throwing }), 200, async (url) => {
      const landed = limiter.next();
      assert.equal((await fetch(url)).status, 200);
      await landed;
      assert.equal(limiter.refunds.length, 1);
    });
  });

  it('a response already over when the decision comes is settled at once', async () => {
    // No 'finish' or 'close' will come again: an answered response is
    // judged by its status, one destroyed (the client left while the
    // request waited) is a failure.
    const { EventEmitter } = require('node:events');
    const response = (over) => Object.assign(new EventEmitter(), { statusCode: 200, headersSent: true, ...over });
    for (const [over, options] of [
      [{ writableFinished: true }, { skipSuccessfulRequests: true }],
      [{ writableFinished: false, destroyed: true }, { skipFailedRequests: true }],
    ]) {
      const limiter = recording('store');
      const landed = limiter.next();
      let nexted = false;
      await rateLimit({ limiter, key: () => 'k', ...options })({}, response(over), () => {
        nexted = true;
      });
      await landed;
      assert.equal(nexted, true);
      assert.deepEqual(limiter.refunds, [['k', 1, 1_700_000_000_123.456]], JSON.stringify(over));
    }
  });

  it('a fail-open or insurance admission is never refunded', async () => {
    for (const source of ['fail-open', 'insurance']) {
      const limiter = recording(source);
      await serve(rateLimit({ limiter, key: () => 'k', skipSuccessfulRequests: true, skipFailedRequests: true }), 200, async (url) => {
        for (let i = 0; i < 3; i++) assert.equal((await fetch(url)).status, 200);
      });
      assert.deepEqual(limiter.refunds, [], source);
    }
  });
});

describe('rateLimitHeaders', () => {
  const decision = {
    allowed: false,
    limit: 100,
    remaining: 0,
    resetAfter: 59_000.5,
    retryAfter: 1_000.001,
    window: 60_000,
    at: 1_700_000_000_000,
    tiers: [
      { limit: 100, remaining: 0, resetAfter: 59_000.5, window: 60_000 },
      { limit: 1000, remaining: 400, resetAfter: 3_000_000, window: 3_600_000 },
    ],
  };
  it('renders every style as the core does', () => {
    assert.deepEqual(rateLimitHeaders(decision, { style: 'draft-7' }), [
      ['RateLimit-Policy', '100;w=60'],
      ['RateLimit', 'limit=100, remaining=0, reset=60'],
      ['Retry-After', '2'],
    ]);
    assert.deepEqual(rateLimitHeaders(decision, { style: 'draft-6', retryAfter: false }), [
      ['RateLimit-Policy', '100;w=60'],
      ['RateLimit-Limit', '100'],
      ['RateLimit-Remaining', '0'],
      ['RateLimit-Reset', '60'],
    ]);
    assert.deepEqual(rateLimitHeaders(decision, { style: 'legacy' }).slice(0, 3), [
      ['X-RateLimit-Limit', '100'],
      ['X-RateLimit-Remaining', '0'],
      ['X-RateLimit-Reset', '1700000060'],
    ]);
    assert.deepEqual(rateLimitHeaders(decision, { names: ['a"b'] }).slice(0, 2), [
      ['RateLimit-Policy', '"a\\"b"; q=100; w=60, "1000-in-1hr"; q=1000; w=3600'],
      ['RateLimit', '"a\\"b"; r=0; t=60, "1000-in-1hr"; r=400; t=3000'],
    ]);
  });
  it('defers to a decision that renders its own headers', () => {
    const own = { ...decision, headers: (style) => [['X-Style', style]] };
    assert.deepEqual(rateLimitHeaders(own, { style: 'legacy' }), [['X-Style', 'legacy']]);
  });
});
