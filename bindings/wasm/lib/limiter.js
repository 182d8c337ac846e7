'use strict';
// RateLimiter: the core's rate limiter (src/limit) over any Store.
// Decisions cross the boundary packed in one Float64Array (layout in
// src/limiter.rs); headers are rendered by the core.

const { bound, run, sync, out, keyIn, takeFailure, failure, health } = require('./runtime');
const { innerOf, clockOf } = require('./store');
const { options, field } = require('./options');
const { RampartError, invalidInput } = require('./errors');
const { list } = require('./args');

const SOURCES = Object.freeze(['store', 'block-cache', 'fail-open', 'fail-closed', 'insurance']);
const RENDERED = Symbol('rampart.renderedHeaders');
const INNER = Symbol('rampart.limiter');
/** Whether the limiter's stores are all in process (it decides synchronously). */
const NOW = Symbol('rampart.limiter.inProcess');
/** The scripted path of consume ({ adapter, evalFn, script, prefix }), or null. */
const SCRIPTED = Symbol('rampart.limiter.scripted');
/** scriptBegin's answers (src/limiter.rs); 0 is a failure. */
const BEGIN_DECIDED = 1;
const BEGIN_CALL = 2;
/** Function.prototype.apply, safe from an adapter's own `apply`. */
const apply = Reflect.apply;
/**
 * Each RateLimiter's id in the module (for consumeAll), keyed by the
 * object itself: a lookup no Proxy or getter can fake.
 */
const IDS = new WeakMap();

const ms = (x) => (x < 0 ? null : x);

/**
 * The Decision whose figures the core just wrote (src/limiter.rs
 * `figures`), with the header options and the headers the core rendered
 * (`joined`), if asked.
 */
function unpack(rendered) {
  const figures = out();
  const n = figures[9];
  const tiers = new Array(n);
  for (let i = 0; i < n; i++) {
    const o = 10 + 5 * i;
    tiers[i] = {
      limit: figures[o],
      remaining: figures[o + 1],
      resetAfter: figures[o + 2],
      retryAfter: ms(figures[o + 3]),
      window: figures[o + 4],
    };
  }
  return new Decision(figures, tiers, rendered);
}

/** The answer of a RateLimiter. Durations and times are milliseconds. */
class Decision {
  constructor(f, tiers, rendered) {
    this.allowed = f[0] === 1;
    this.limit = f[1];
    this.remaining = f[2];
    this.resetAfter = f[3];
    this.retryAfter = ms(f[4]);
    this.window = f[5];
    this.at = f[6];
    this.blockedUntil = ms(f[7]);
    this.source = SOURCES[f[8]] ?? 'store';
    this.tiers = tiers;
    this[RENDERED] = rendered;
  }

  /**
   * The rate-limit headers, rendered by the core when this decision was
   * made with the same header options (the middleware asks for them with
   * the decision), else by rateLimitHeaders from the same figures.
   */
  headers(style = 'draft-8', opts = {}) {
    const r = this[RENDERED];
    if (
      r !== undefined &&
      r.style === style &&
      r.partitionKey === opts.partitionKey &&
      sameNames(r.names, opts.names) &&
      opts.retryAfter !== false
    ) {
      return pairs(r.joined);
    }
    // Not what the core rendered: the same formats, from the figures.
    const { rateLimitHeaders } = require('./express');
    const { [RENDERED]: _, ...plain } = this;
    return rateLimitHeaders(plain, { ...opts, style });
  }
}

function sameNames(a, b) {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((n, i) => n === y[i]);
}

function extrasFor(o) {
  const extras = new (bound('LimiterExtras', 'limiter'))();
  const clock = field(o, 'clock', 'options');
  if (clock !== undefined && clock !== null) extras.setClock(clockOf(clock));
  let onError = field(o, 'onStoreError', 'options');
  if (onError !== null && typeof onError === 'object') {
    extras.setInsurance(innerOf(field(onError, 'insurance', 'onStoreError')));
    onError = 'insurance';
  }
  return { extras, onError };
}

function quotasOf(o) {
  const quotas = field(o, 'quotas', 'options');
  if (quotas !== undefined) return list(quotas, 'options.quotas');
  // The one-tier shorthand: { limit, window, burst }.
  return [{ limit: field(o, 'limit', 'options'), window: field(o, 'window', 'options'), burst: field(o, 'burst', 'options') }];
}

function badConsume(key, cost) {
  if (typeof key !== 'string') {
    return new RampartError('RAMPART_INVALID_KEY', `a rate-limit key must be a string, got ${typeof key}`);
  }
  if (typeof cost !== 'number') return invalidInput(`cost must be a number, got ${typeof cost}`);
  return new RampartError('RAMPART_INVALID_KEY', 'a rate-limit key holds a lone UTF-16 surrogate, which has no UTF-8 form');
}

/**
 * The header options consume hands the core, read once: { style, names,
 * partitionKey }, or undefined when no style is asked for. Throws
 * RampartErrors (a throwing getter or Proxy trap included).
 */
function renderedOf(headerOptions) {
  const h = options(headerOptions, 'header options');
  const style = field(h, 'headers', 'header options');
  if (style === undefined || style === null || style === false) return undefined;
  return {
    style,
    names: list(field(h, 'names', 'header options'), 'header options.names'),
    partitionKey: field(h, 'partitionKey', 'header options'),
  };
}

/**
 * The headers the core rendered, `name\nvalue` pairs joined by `\n`
 * (src/limiter.rs `Headers::render`), as [name, value] pairs: split when
 * asked for, so each call answers a fresh array.
 */
function pairs(joined) {
  const parts = joined.split('\n');
  const headers = new Array(parts.length >> 1);
  for (let i = 0; i < headers.length; i++) headers[i] = [parts[2 * i], parts[2 * i + 1]];
  return headers;
}

/**
 * consume on a limiter whose stores are in process: the core decides
 * during the call (no task, no pending promise), and the promise returned
 * is already resolved, or rejected with the same errors as on the async
 * path. `key` is a string and `cost` a number.
 */
function consumeNow(inner, key, cost) {
  const poisoned = health();
  if (poisoned !== null) return Promise.reject(poisoned);
  let decided;
  try {
    const n = keyIn(key);
    if (n >= 0) {
      decided = inner.consumeKeyIn(n, cost);
    } else if (key.isWellFormed()) {
      decided = inner.consumeNow(key, cost);
    } else {
      return Promise.reject(badConsume(key, cost));
    }
    if (decided === 0) return Promise.reject(takeFailure());
  } catch (e) {
    return Promise.reject(failure(e));
  }
  return Promise.resolve(unpack(undefined));
}

/**
 * consumeNow with header options: the core renders the headers with the
 * decision, during the call. `key` is a well-formed string (checked
 * before the options are read, as on the async path). A function of its
 * own, so the plain path's stays as small for the JIT.
 */
function consumeHeadersNow(inner, key, cost, headerOptions) {
  const poisoned = health();
  if (poisoned !== null) return Promise.reject(poisoned);
  let rendered;
  try {
    rendered = renderedOf(headerOptions);
    if (rendered === undefined) return consumeNow(inner, key, cost);
    // After reading the options: a getter may call rampart, which writes
    // the same scratch buffer.
    const n = keyIn(key);
    const { style, names, partitionKey } = rendered;
    const joined = inner.consumeHeadersNow(n, n >= 0 ? undefined : key, cost, style, names, partitionKey);
    if (joined === undefined) return Promise.reject(takeFailure());
    rendered.joined = joined;
  } catch (e) {
    return Promise.reject(failure(e));
  }
  return Promise.resolve(unpack(rendered));
}

/** The scripted path of a limiter (src/limiter.rs `scriptPath`), or null. */
function scriptedOf(inner) {
  const path = inner.scriptPath;
  if (path === undefined) return null;
  return { adapter: path[0], evalFn: path[1], script: path[2], prefix: path[3] };
}

/**
 * consume over a store adapter with `eval` (Redis): the core decides what
 * it can at once and otherwise hands over the script call, which is made
 * here with the same function, arguments and key the core's Store.eval
 * would use; the outcome goes back to the core, which decodes it and
 * applies the failure policy (src/limiter.rs scriptBegin/scriptFinish).
 * One promise of the client's, one `then`: no task, no bridged await.
 * `key` is a string and `cost` a number.
 */
function consumeScripted(inner, s, key, cost) {
  const poisoned = health();
  if (poisoned !== null) return Promise.reject(poisoned);
  let begun;
  try {
    const n = keyIn(key);
    if (n < 0 && !key.isWellFormed()) return Promise.reject(badConsume(key, cost));
    begun = inner.scriptBegin(n, n >= 0 ? undefined : key, cost);
  } catch (e) {
    return Promise.reject(failure(e));
  }
  if (begun === BEGIN_DECIDED) return Promise.resolve(unpack(undefined));
  if (begun === 0) return Promise.reject(takeFailure());
  if (begun !== BEGIN_CALL) return run(() => inner.consume(key, cost), () => unpack(undefined));
  return callScript(inner, s, key, cost, undefined);
}

/**
 * consumeScripted with header options: the core renders the headers with
 * the decision. `key` is a well-formed string (checked before the options
 * are read, as on the task path).
 */
function consumeScriptedHeaders(inner, s, key, cost, headerOptions) {
  const poisoned = health();
  if (poisoned !== null) return Promise.reject(poisoned);
  let rendered;
  let begun;
  try {
    rendered = renderedOf(headerOptions);
    if (rendered === undefined) return consumeScripted(inner, s, key, cost);
    // After reading the options: a getter may call rampart, which writes
    // the same scratch buffer.
    const n = keyIn(key);
    begun = inner.scriptBeginHeaders(n, n >= 0 ? undefined : key, cost, rendered.style, rendered.names, rendered.partitionKey);
  } catch (e) {
    return Promise.reject(failure(e));
  }
  if (typeof begun === 'string') {
    rendered.joined = begun;
    return Promise.resolve(unpack(rendered));
  }
  if (begun === 0) return Promise.reject(takeFailure());
  const { style, names, partitionKey } = rendered;
  if (begun !== BEGIN_CALL) {
    return run(
      () => inner.consumeWithHeaders(key, cost, style, names, partitionKey),
      (joined) => {
        rendered.joined = joined;
        return unpack(rendered);
      },
    );
  }
  return callScript(inner, s, key, cost, rendered);
}

/**
 * The adapter's eval on the arguments scriptBegin just wrote (NaN: the
 * empty string, "the server's time"), then its outcome to the core
 * (finishScripted): a synchronous throw is a rejection, as on the task
 * path. `rendered`: the header options, or undefined.
 */
function callScript(inner, s, key, cost, rendered) {
  const figures = out();
  const n = figures[0];
  const args = new Array(n);
  for (let i = 0; i < n; i++) {
    const x = figures[i + 1];
    args[i] = x === x ? x : '';
  }
  let called;
  try {
    called = Promise.resolve(apply(s.evalFn, s.adapter, [s.script, [s.prefix + key], args]));
  } catch (e) {
    called = Promise.reject(e);
  }
  return called.then(
    (v) => finishScripted(inner, key, cost, true, v, rendered),
    (e) => finishScripted(inner, key, cost, false, e, rendered),
  );
}

/**
 * The decision of a scripted call's outcome (with the headers the core
 * rendered, when `rendered` holds header options): resolves, or throws a
 * RampartError.
 */
function finishScripted(inner, key, cost, ok, outcome, rendered) {
  const poisoned = health();
  if (poisoned !== null) throw poisoned;
  let finished;
  try {
    const n = keyIn(key);
    const id = n >= 0 ? undefined : key;
    if (rendered === undefined) {
      finished = inner.scriptFinish(n, id, cost, ok, outcome);
    } else {
      finished = inner.scriptFinishHeaders(n, id, cost, ok, outcome, rendered.style, rendered.names, rendered.partitionKey);
    }
  } catch (e) {
    throw failure(e);
  }
  if (finished === 0 || finished === undefined) throw takeFailure();
  if (rendered !== undefined) rendered.joined = finished;
  return unpack(rendered);
}

/** Rate limiting with the core's algorithms, on any Store. */
class RateLimiter {
  /**
   * @param {object} opts { store, algorithm?, quotas? | limit+window+burst?,
   *   blockFor?, prefix?, clock?, scriptTime?, blockCache?, onStoreError? }
   */
  constructor(opts) {
    this[INNER] = sync(() => {
      const o = options(opts, 'RateLimiter options');
      const store = innerOf(field(o, 'store', 'options'));
      const { extras, onError } = extrasFor(o);
      try {
        return bound('RateLimiter', 'limiter').create(
          store,
          field(o, 'algorithm', 'options'),
          quotasOf(o),
          field(o, 'blockFor', 'options'),
          field(o, 'prefix', 'options'),
          extras,
          field(o, 'scriptTime', 'options'),
          field(o, 'blockCache', 'options'),
          onError,
        );
      } finally {
        extras.free();
      }
    });
    this[NOW] = this[INNER].inProcess;
    this[SCRIPTED] = scriptedOf(this[INNER]);
    IDS.set(this, this[INNER].id);
  }

  /**
   * A limiter with a preset rule: `auth` (5 per 15 min, then a 15 min
   * block), `general` (100 per 15 min) or `api` (1000 per hour), overridden
   * by RATE_LIMIT_* variables of `env` (default process.env).
   */
  static preset(name, opts) {
    const limiter = Object.create(RateLimiter.prototype);
    limiter[INNER] = sync(() => {
      const o = options(opts, 'RateLimiter.preset options');
      const store = innerOf(field(o, 'store', 'options'));
      const env = field(o, 'env', 'options') ?? process.env;
      const { extras, onError } = extrasFor(o);
      try {
        return bound('RateLimiter', 'limiter').preset(
          store,
          name,
          env,
          field(o, 'prefix', 'options'),
          extras,
          field(o, 'scriptTime', 'options'),
          field(o, 'blockCache', 'options'),
          onError,
        );
      } finally {
        extras.free();
      }
    });
    limiter[NOW] = limiter[INNER].inProcess;
    limiter[SCRIPTED] = scriptedOf(limiter[INNER]);
    IDS.set(limiter, limiter[INNER].id);
    return limiter;
  }

  /** The largest cost one request may have. */
  get capacity() {
    return sync(() => this[INNER].capacity);
  }

  /**
   * Admits and counts a request of `cost` units (default 1), or denies it
   * counting nothing. `headerOptions` ({ headers, names, partitionKey })
   * has the core render the headers along with the decision.
   */
  consume(key, cost = 1, headerOptions) {
    if (typeof key !== 'string' || typeof cost !== 'number') {
      return Promise.reject(badConsume(key, cost));
    }
    if (headerOptions === undefined) {
      if (this[NOW]) return consumeNow(this[INNER], key, cost);
      if (this[SCRIPTED] !== null) return consumeScripted(this[INNER], this[SCRIPTED], key, cost);
    }
    // Before the header options are read, as on the async path.
    if (!key.isWellFormed()) return Promise.reject(badConsume(key, cost));
    if (this[NOW]) return consumeHeadersNow(this[INNER], key, cost, headerOptions);
    if (this[SCRIPTED] !== null) return consumeScriptedHeaders(this[INNER], this[SCRIPTED], key, cost, headerOptions);
    if (headerOptions === undefined) {
      return run(() => this[INNER].consume(key, cost), () => unpack(undefined));
    }
    let rendered;
    return run(
      () => {
        rendered = renderedOf(headerOptions);
        if (rendered === undefined) return this[INNER].consume(key, cost);
        return this[INNER].consumeWithHeaders(key, cost, rendered.style, rendered.names, rendered.partitionKey);
      },
      (joined) => {
        if (rendered !== undefined) rendered.joined = joined;
        return unpack(rendered);
      },
    );
  }

  /**
   * consume, waiting up to `maxWaitMs` for room instead of denying at once
   * (upstash's blockUntilReady, rate-limiter-flexible's queue): while
   * denied with a `retryAfter` that fits in the wait left, sleeps that
   * long and asks again; a denial no wait could lift in time (a longer
   * retry, a block) is answered at once. `cost` defaults to 1.
   */
  consumeWithin(key, maxWaitMs, cost) {
    return run(() => this[INNER].consumeWithin(key, maxWaitMs, cost), () => unpack(undefined));
  }

  /** Whether a request of `cost` would be admitted now (counts nothing). */
  check(key, cost) {
    return run(() => this[INNER].check(key, cost), () => unpack(undefined));
  }

  /**
   * Gives `amount` units back: the newest, or, given `at` (the `at` of
   * the consume's Decision), that charge's own (a sliding log removes its
   * entry; a window gives back nothing once the charge's window is over).
   */
  refund(key, amount, at) {
    return run(() => this[INNER].refund(key, amount, at), () => unpack(undefined));
  }

  /** refund, under rate-limiter-flexible's name. */
  reward(key, amount) {
    return this.refund(key, amount);
  }

  /** Charges `amount` units without checking the limit. */
  penalty(key, amount) {
    return run(() => this[INNER].penalty(key, amount), () => unpack(undefined));
  }

  /** Blocks `key` for `durationMs` (never shortening a current block). */
  block(key, durationMs) {
    return run(() => this[INNER].block(key, durationMs), () => unpack(undefined));
  }

  /** Forgets everything about `key`. */
  reset(key) {
    return run(() => this[INNER].reset(key));
  }

  /**
   * Consumes on several limiters and keys, all or nothing (per-IP and
   * per-user): the first denial, or the admitting decision with the fewest
   * remaining. entries: [limiter, key, cost?][].
   */
  static consumeAll(entries) {
    return run(
      () => {
        const all = list(entries, 'the consumeAll entries');
        if (!Array.isArray(all)) throw invalidInput('consumeAll needs an array of [limiter, key, cost?]');
        const n = all.length;
        const ids = new Array(n);
        const keys = new Array(n);
        const costs = new Array(n);
        for (let i = 0; i < n; i++) {
          // Each entry read by index here, once (lib/args.js): a throwing
          // getter or Proxy trap is a RAMPART_INVALID_INPUT error.
          const entry = all[i];
          let id;
          try {
            if (Array.isArray(entry)) {
              id = IDS.get(entry[0]);
              keys[i] = entry[1];
              costs[i] = entry[2];
            }
          } catch (e) {
            throw invalidInput(`reading consumeAll entry ${i} threw`, e);
          }
          if (id === undefined) throw invalidInput('consumeAll entries are [RateLimiter, key, cost?]');
          ids[i] = id;
        }
        return bound('RateLimiter', 'limiter').consumeAll(ids, keys, costs);
      },
      () => unpack(undefined),
    );
  }
}

module.exports = { RateLimiter, Decision };
