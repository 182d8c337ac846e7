'use strict';
// Cache: the core's cache (src/cache) over any Store. Values are any
// JSON-serializable value (they cross as JSON text); times are ms.

const { bound, run, sync } = require('./runtime');
const { innerOf, clockOf } = require('./store');
const { options, field } = require('./options');
const { invalidInput } = require('./errors');
const { list } = require('./args');

const INNER = Symbol('rampart.cache');

function json(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw invalidInput('a cached value must be JSON-serializable', e);
  }
  if (text === undefined) throw invalidInput('a cached value must be JSON-serializable');
  return text;
}

function parse(text) {
  return text === null ? null : JSON.parse(text);
}

/** A cache of JSON values: TTLs, tags, prefix invalidation, coalesced loads. */
class Cache {
  /**
   * @param {object} opts { store, clock?, namespace?, defaultTtl?, staleWhileRevalidate? } (milliseconds)
   */
  constructor(opts) {
    this[INNER] = sync(() => {
      const o = options(opts, 'Cache options');
      const store = innerOf(field(o, 'store', 'options'));
      const clock = field(o, 'clock', 'options');
      return clock === undefined || clock === null
        ? bound('Cache', 'cache').create(store, o)
        : bound('Cache', 'cache').createWithClock(store, clockOf(clock), o);
    });
  }

  /** The fresh value under `key`, or null on a miss. */
  get(key) {
    return run(() => this[INNER].get(key), parse);
  }

  /** Stores `value` under `key` for `ttl` ms (default: the cache's), tagged `tags`. */
  set(key, value, opts) {
    return run(() => {
      const o = options(opts, 'options');
      return this[INNER].set(key, json(value), field(o, 'ttl', 'options'), list(field(o, 'tags', 'options'), 'options.tags'));
    });
  }

  /**
   * The value under `key`; on a miss, what `loader()` resolves to, stored.
   * Concurrent misses of one key share a single loader call. A loader's
   * error rejects the call that ran it as thrown, and the callers that
   * shared it with a RampartError carrying its message.
   */
  getOrSet(key, loader, opts) {
    if (typeof loader !== 'function') {
      return Promise.reject(invalidInput(`getOrSet needs a loader function, got ${typeof loader}`));
    }
    let thrown;
    // Run later, not inside the module's poll: the loader may call rampart.
    const load = async () => {
      await undefined;
      try {
        return json(await loader());
      } catch (e) {
        thrown = { e };
        throw e;
      }
    };
    return run(() => {
      const o = options(opts, 'options');
      return this[INNER].getOrSet(key, load, field(o, 'ttl', 'options'), list(field(o, 'tags', 'options'), 'options.tags'));
    }, parse).catch((e) => {
      throw thrown === undefined ? e : thrown.e;
    });
  }

  /** Deletes `key`; true if an entry was there. */
  delete(key) {
    return run(() => this[INNER].delete(key));
  }

  /** Makes every entry tagged `tag` miss from now on. */
  invalidateTag(tag) {
    return run(() => this[INNER].invalidateTag(tag));
  }

  /** Deletes every entry whose key starts with `prefix`; resolves to how many. */
  invalidatePrefix(prefix) {
    return run(() => this[INNER].invalidatePrefix(prefix));
  }

  /** This cache's counters since it was made (hitRate is null before any read). */
  stats() {
    const [hits, misses, sets, deletes, errors, loaderCalls, loaderErrors, coalesced, staleServed, refreshes, tagInvalidations, corrupt] =
      sync(() => this[INNER].stats());
    return {
      hits,
      misses,
      hitRate: hits + misses > 0 ? hits / (hits + misses) : null,
      sets,
      deletes,
      errors,
      loaderCalls,
      loaderErrors,
      coalesced,
      staleServed,
      refreshes,
      tagInvalidations,
      corrupt,
    };
  }
}

module.exports = { Cache };
