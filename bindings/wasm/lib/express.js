'use strict';
// rateLimit(): Express (and plain node:http) middleware over any limiter
// with `consume(key, cost?) -> Promise<Decision>`, and the headers helper.
//
// rampart's own limiter returns decisions that render their headers in the
// core (`decision.headers(style, options)`, src/limit/headers.rs). For any
// other limiter, `rateLimitHeaders` renders the same formats from the
// decision's figures, so the middleware works with both.

const { createHash } = require('node:crypto');
const { RampartError, invalidInput } = require('./errors');

const STYLES = new Set(['draft-8', 'draft-7', 'draft-6', 'legacy']);
/** The longest wait the core takes (its longest duration, 100 years). */
const MAX_WAIT_MS = 100 * 365 * 86_400_000;

/** Whole seconds, rounded up (as the core does). */
const secs = (ms) => Math.ceil(ms / 1000);

/**
 * The policy a tier announces: [quota, window in whole seconds, the window
 * the name shows (ms)]. A window under a second is scaled up, quota and
 * window alike, to the first multiple of at least a second, so the rate
 * announced is the real one (src/limit/headers.rs `announced`).
 */
function announced(limit, windowMs) {
  if (!(windowMs > 0) || windowMs >= 1000) return [limit, secs(windowMs), windowMs];
  const us = Math.round(windowMs * 1000);
  const k = Math.ceil(1_000_000 / us);
  const scaled = (us * k) / 1000;
  return [limit * k, secs(scaled), scaled];
}

/** express-rate-limit's default draft-8 name: `100-in-1min`. */
function defaultName(limit, windowMs) {
  const s = windowMs / 1000;
  const m = windowMs / 60_000;
  const h = windowMs / 3_600_000;
  const d = windowMs / 86_400_000;
  let duration;
  if (s < 60) duration = `${s}sec`;
  else if (m < 60) duration = `${m}min`;
  else if (h < 24) duration = `${h}hr${h > 1 ? 's' : ''}`;
  else duration = `${d}day${d > 1 ? 's' : ''}`;
  return `${limit}-in-${duration}`;
}

/** `text` inside a structured-field string: printable ASCII, escaped. */
function sfString(text) {
  let out = '';
  for (const c of String(text)) {
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c >= ' ' && c <= '~') out += c;
    else out += '_';
  }
  return out;
}

/** express-rate-limit's partition key: base64 of the first 12 hex digits of SHA-256(key). */
function partitionKey(key) {
  const hex = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return Buffer.from(hex).toString('base64');
}

/**
 * The rate-limit headers for `decision`, as [name, value] pairs.
 * @param {object} decision a Decision (rampart's, or any with the same figures)
 * @param {{ style?: string, names?: string[], partitionKey?: string, retryAfter?: boolean }} [options]
 * @returns {Array<[string, string]>}
 */
function rateLimitHeaders(decision, options = {}) {
  const style = options.style ?? 'draft-8';
  if (!STYLES.has(style)) {
    throw invalidInput(`headers must be one of ${[...STYLES].join(', ')}, got ${String(style)}`);
  }
  if (typeof decision?.headers === 'function') {
    // rampart's decision: the core renders them.
    return decision.headers(style, options);
  }
  const out = [];
  const { limit, remaining } = decision;
  const reset = secs(decision.resetAfter);
  const [quota, window] = announced(limit, decision.window);
  switch (style) {
    case 'legacy':
      out.push(['X-RateLimit-Limit', String(limit)]);
      out.push(['X-RateLimit-Remaining', String(remaining)]);
      out.push(['X-RateLimit-Reset', String(secs(decision.at + decision.resetAfter))]);
      break;
    case 'draft-6':
      out.push(['RateLimit-Policy', `${quota};w=${window}`]);
      out.push(['RateLimit-Limit', String(quota)]);
      out.push(['RateLimit-Remaining', String(remaining)]);
      out.push(['RateLimit-Reset', String(reset)]);
      break;
    case 'draft-7':
      out.push(['RateLimit-Policy', `${quota};w=${window}`]);
      out.push(['RateLimit', `limit=${quota}, remaining=${remaining}, reset=${reset}`]);
      break;
    default: {
      const tiers = Array.isArray(decision.tiers) && decision.tiers.length > 0 ? decision.tiers : [decision];
      const pk = options.partitionKey === undefined ? undefined : partitionKey(options.partitionKey);
      const policy = [];
      const state = [];
      tiers.forEach((tier, i) => {
        const [q, w, scaled] = announced(tier.limit, tier.window);
        const name = options.names?.[i] !== undefined ? sfString(options.names[i]) : defaultName(q, scaled);
        policy.push(`"${name}"; q=${q}; w=${w}${pk === undefined ? '' : `; pk=:${pk}:`}`);
        state.push(`"${name}"; r=${tier.remaining}; t=${secs(tier.resetAfter)}`);
      });
      out.push(['RateLimit-Policy', policy.join(', ')]);
      out.push(['RateLimit', state.join(', ')]);
    }
  }
  if (options.retryAfter !== false && !decision.allowed && decision.retryAfter !== null && decision.retryAfter !== undefined) {
    out.push(['Retry-After', String(secs(decision.retryAfter))]);
  }
  return out;
}

/** An optional boolean option, refused when it is anything else. */
function flag(value, name) {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalidInput(`options.${name} must be a boolean`);
  return value;
}

/**
 * Express middleware: consumes `cost` for the request's key; sets the
 * rate-limit headers; answers 429 with Retry-After when denied, otherwise
 * calls next(). The decision is kept as `req.rateLimit`.
 *
 * @param {object} options
 * @param {{ consume(key: string, cost?: number): Promise<object> }} options.limiter
 * @param {(req: object) => string | Promise<string>} [options.key] default: req.ip
 * @param {number | ((req: object) => number | Promise<number>)} [options.cost] default: 1
 * @param {'draft-8' | 'draft-7' | 'draft-6' | 'legacy' | false} [options.headers] default: 'draft-8'
 * @param {string[]} [options.names] draft-8 policy names, one per tier
 * @param {boolean} [options.partitionKey] draft-8 `pk` from the key (default: true)
 * @param {(req: object) => boolean | Promise<boolean>} [options.skip]
 * @param {number} [options.statusCode] default: 429
 * @param {string | object} [options.message] the body of a denial
 * @param {boolean} [options.failOpen] admit requests when the limiter fails (default: false: next(err))
 * @param {number} [options.wait] milliseconds a request may wait for room
 *   (the limiter's consumeWithin) before it is denied (default 0: none); a
 *   waiting request holds its connection, so keep it short
 * @param {boolean} [options.skipSuccessfulRequests] refund admitted requests
 *   that succeed, so only failures count (a login limiter)
 * @param {boolean} [options.skipFailedRequests] refund admitted requests
 *   that fail, so only successes count
 * @param {(req: object, res: object) => boolean | Promise<boolean>} [options.requestWasSuccessful]
 *   default: a status below 400 (a response closed before it finished failed)
 */
function rateLimit(options) {
  if (options === null || typeof options !== 'object') {
    throw invalidInput('rateLimit needs an options object with a limiter');
  }
  const { limiter } = options;
  if (limiter === null || typeof limiter !== 'object' || typeof limiter.consume !== 'function') {
    throw invalidInput('rateLimit needs options.limiter with a consume(key, cost) method');
  }
  const keyOf = options.key ?? ((req) => req.ip);
  if (typeof keyOf !== 'function') throw invalidInput('options.key must be a function of the request');
  const cost = options.cost ?? 1;
  if (typeof cost !== 'function' && !(Number.isInteger(cost) && cost > 0)) {
    throw invalidInput('options.cost must be a positive integer or a function of the request');
  }
  const style = options.headers ?? 'draft-8';
  if (style !== false && !STYLES.has(style)) {
    throw invalidInput(`options.headers must be false or one of ${[...STYLES].join(', ')}`);
  }
  const statusCode = options.statusCode ?? 429;
  const message = options.message ?? 'Too many requests, please try again later.';
  const withPk = options.partitionKey ?? true;
  const skip = options.skip;
  const wait = options.wait ?? 0;
  if (!(typeof wait === 'number' && wait >= 0 && wait <= MAX_WAIT_MS)) {
    throw invalidInput('options.wait must be a number of milliseconds from 0 to 100 years');
  }
  if (wait > 0 && typeof limiter.consumeWithin !== 'function') {
    throw invalidInput('options.wait needs a limiter with a consumeWithin(key, maxWaitMs, cost) method');
  }

  const refundSuccesses = flag(options.skipSuccessfulRequests, 'skipSuccessfulRequests');
  const refundFailures = flag(options.skipFailedRequests, 'skipFailedRequests');
  const wasSuccessful = options.requestWasSuccessful ?? ((req, res) => res.statusCode < 400);
  if (typeof wasSuccessful !== 'function') {
    throw invalidInput('options.requestWasSuccessful must be a function of the request and response');
  }
  if ((refundSuccesses || refundFailures) && typeof limiter.refund !== 'function') {
    throw invalidInput('skipSuccessfulRequests and skipFailedRequests need a limiter with a refund(key, amount) method');
  }

  /**
   * Once the response is over, gives the request's charge back (the
   * charge made at `at`) if it should not count. A refund that fails
   * leaves it counted: the response is gone, there is no one to tell.
   */
  function refundIfSkipped(req, res, key, units, at) {
    let settled = false;
    const settle = async (failed) => {
      if (settled) return;
      settled = true;
      res.off('finish', onFinish);
      res.off('close', onClose);
      let ok = false;
      if (!failed) {
        try {
          ok = Boolean(await wasSuccessful(req, res));
        } catch {
          ok = false;
        }
      }
      if (ok ? refundSuccesses : refundFailures) {
        try {
          await limiter.refund(key, units, at);
        } catch {
          // See above.
        }
      }
    };
    const onFinish = () => settle(false);
    // 'close' without 'finish': the client went away mid-response.
    const onClose = () => settle(!res.writableFinished);
    // Already over (answered, or the client left while the request
    // waited for room): those events will not come again.
    if (res.writableFinished) return void settle(false);
    if (res.destroyed || res.closed) return void settle(true);
    res.on('finish', onFinish);
    res.on('close', onClose);
  }

  return async function rampartRateLimit(req, res, next) {
    let key;
    let units;
    let decision;
    try {
      if (skip !== undefined && (await skip(req))) return next();
      key = await keyOf(req);
      if (typeof key !== 'string' || key === '') {
        throw invalidInput(`the rate-limit key of a request must be a non-empty string, got ${typeof key}`);
      }
      units = typeof cost === 'function' ? await cost(req) : cost;
      const headerOptions =
        style === false
          ? undefined
          : { style, names: options.names, partitionKey: style === 'draft-8' && withPk ? key : undefined };
      // rampart's limiter renders the headers in the core along with the
      // decision when handed the header options; other limiters ignore them.
      // A request that may wait is admitted or denied after the wait (its
      // headers rendered from the decision's figures).
      decision =
        wait > 0
          ? await limiter.consumeWithin(key, wait, units)
          : await limiter.consume(
              key,
              units,
              headerOptions && { headers: style, names: headerOptions.names, partitionKey: headerOptions.partitionKey },
            );
      req.rateLimit = decision;
      const headers = headerOptions === undefined ? [] : rateLimitHeaders(decision, headerOptions);
      if (!res.headersSent) {
        for (const [name, value] of headers) res.setHeader(name, value);
      }
    } catch (e) {
      if (options.failOpen === true) return next();
      return next(e instanceof Error ? e : new RampartError('RAMPART_BACKEND', String(e)));
    }
    if (decision.allowed) {
      // Only a charge the store made is given back: a fail-open admission
      // counted nothing, and an insurance store's charge is not the
      // store's to refund (a limiter without `source` is taken at its word).
      const counted = decision.source === undefined || decision.source === 'store';
      if ((refundSuccesses || refundFailures) && counted) refundIfSkipped(req, res, key, units, decision.at);
      return next();
    }
    if (!res.headersSent) {
      if (!res.hasHeader('Retry-After') && decision.retryAfter !== null && decision.retryAfter !== undefined) {
        res.setHeader('Retry-After', String(secs(decision.retryAfter)));
      }
      res.statusCode = statusCode;
      if (typeof message === 'string') {
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(message);
      } else {
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(JSON.stringify(message));
      }
    }
  };
}

module.exports = { rateLimit, rateLimitHeaders };
