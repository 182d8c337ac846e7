'use strict';
// rampart for Node.js: the Rust core in WebAssembly. See index.d.ts for
// the typed API and README.md for a tour.

const { RampartError, CODES } = require('./lib/errors');
const { Store, MemoryStore, ManualClock } = require('./lib/store');
const { ioredisAdapter } = require('./lib/adapters/ioredis');
const { nodeRedisAdapter } = require('./lib/adapters/node-redis');
const { rateLimit, rateLimitHeaders } = require('./lib/express');
const { RateLimiter, Decision } = require('./lib/limiter');
const { Locks, Lock } = require('./lib/locks');
const { Sessions, RefreshTokens, Denylist } = require('./lib/sessions');
const { Cache } = require('./lib/cache');
const runtime = require('./lib/runtime');

/** A Store over an ioredis client (options: see ioredisAdapter). */
function ioredisStore(client, options) {
  return Store.fromAdapter(ioredisAdapter(client, options));
}

/** A Store over a node-redis (4+) client. */
function nodeRedisStore(client) {
  return Store.fromAdapter(nodeRedisAdapter(client));
}

/**
 * The module's health: null while healthy, the RAMPART_PANIC error after a
 * panic shut the WebAssembly instance down (report it from /health).
 */
function fault() {
  return runtime.health();
}

module.exports = {
  Store,
  MemoryStore,
  ManualClock,
  RampartError,
  ERROR_CODES: CODES,
  ioredisAdapter,
  nodeRedisAdapter,
  ioredisStore,
  nodeRedisStore,
  rateLimit,
  rateLimitHeaders,
  RateLimiter,
  Decision,
  Locks,
  Lock,
  Sessions,
  RefreshTokens,
  Denylist,
  Cache,
  fault,
};
