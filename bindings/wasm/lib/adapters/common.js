'use strict';
// What the ioredis and node-redis adapters share: error classification,
// glob escaping, argument conversion, and the store interface built from
// a handful of client calls.

const { RampartError } = require('../errors');
const scripts = require('./scripts');

/** Escapes Redis glob characters so `text` matches only itself in SCAN MATCH. */
function escapeGlob(text) {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** A Uint8Array as a Buffer without copying (clients send Buffers as bytes). */
function buf(u8) {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** A script argument as the client should send it (node-redis takes only strings and Buffers). */
function arg(a) {
  if (typeof a === 'string') return a;
  if (typeof a === 'number') return String(a);
  return buf(a);
}

const UNAVAILABLE_REPLIES = /^(LOADING|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|BUSY)\b/;
const CONFIG_REPLIES = /^(NOPERM|NOAUTH|WRONGPASS)\b/;

const REPLY_CLASSES = new Set(['ReplyError', 'ErrorReply', 'SimpleError', 'BlobError']);

/**
 * Whether `e` is a Redis error reply (rather than a connection failure):
 * ioredis names its class ReplyError, node-redis ErrorReply (without
 * setting `name`); both keep the server's message, which starts with an
 * upper-case error code (ERR, WRONGTYPE, NOSCRIPT, ...).
 */
function isReply(e) {
  return REPLY_CLASSES.has(e?.name) || REPLY_CLASSES.has(e?.constructor?.name);
}

function isNoScript(e) {
  return typeof e?.message === 'string' && e.message.startsWith('NOSCRIPT');
}

/**
 * A client failure as a RampartError: reply errors by their prefix,
 * timeouts as RAMPART_TIMEOUT, everything else (refused, closed, reset,
 * retries exhausted) as RAMPART_UNAVAILABLE. The client's error is the cause.
 */
function classify(e, operation) {
  if (e instanceof RampartError) return e;
  const message = typeof e?.message === 'string' ? e.message : String(e);
  let code;
  if (/^RAMPART_[A-Z_]+/.test(message)) {
    code = message.match(/^RAMPART_[A-Z_]+/)[0];
  } else if (isReply(e)) {
    if (UNAVAILABLE_REPLIES.test(message)) code = 'RAMPART_UNAVAILABLE';
    else if (CONFIG_REPLIES.test(message)) code = 'RAMPART_CONFIG';
    else if (message.includes('not an integer')) code = 'RAMPART_CORRUPT_DATA';
    else if (message.includes('overflow')) code = 'RAMPART_INVALID_INPUT';
    else code = 'RAMPART_BACKEND';
  } else if (/timed? ?out|timeout/i.test(message) || e?.code === 'ETIMEDOUT') {
    code = 'RAMPART_TIMEOUT';
  } else {
    code = 'RAMPART_UNAVAILABLE';
  }
  return new RampartError(code, `Redis: ${message}`, { operation, cause: e });
}

/**
 * The store interface over `ops`, the few client calls that differ between
 * clients (each returns a promise):
 *   command(args)           -> reply with strings
 *   commandBuffers(args)    -> reply with bulk strings as Buffers
 *   subscribe(channel, onMessage) -> an unsubscribe function, once subscribed
 * Scripts run as EVALSHA, and as EVAL after NOSCRIPT (a restarted server,
 * SCRIPT FLUSH), so each is one round trip.
 */
function redisAdapter(ops) {
  const call = async (operation, args) => {
    try {
      return await ops.command(args);
    } catch (e) {
      throw classify(e, operation);
    }
  };
  const callBuffers = async (operation, args) => {
    try {
      return await ops.commandBuffers(args);
    } catch (e) {
      throw classify(e, operation);
    }
  };
  // One EVALSHA; after NOSCRIPT (a restarted server, SCRIPT FLUSH), one
  // EVAL, which caches the script again. No async wrappers: the client's
  // promise is returned as it is on the hot path.
  const evalScript = (operation, script, keys, args) => {
    const command = ['EVALSHA', script.sha1, String(keys.length)];
    for (const k of keys) command.push(k);
    for (const a of args) command.push(arg(a));
    return ops.commandBuffers(command).catch((e) => {
      if (!isNoScript(e)) throw classify(e, operation);
      command[0] = 'EVAL';
      command[1] = script.source;
      return ops.commandBuffers(command).catch((e2) => {
        throw classify(e2, operation);
      });
    });
  };
  const ms = (ttlMs) => (ttlMs === null ? '0' : String(ttlMs));

  return {
    async get(key) {
      return callBuffers('get', ['GET', key]);
    },
    async set(key, value, ttlMs) {
      const args = ['SET', key, buf(value)];
      if (ttlMs !== null) args.push('PX', String(ttlMs));
      await call('set', args);
    },
    async delete(key) {
      return (await call('delete', ['UNLINK', key])) > 0;
    },
    async ttl(key) {
      const n = Number(await call('ttl', ['PTTL', key]));
      if (n === -1) return Infinity;
      return n > 0 ? n : null;
    },
    async compareAndSwap(key, expected, value, ttlMs) {
      const reply = await evalScript('compare_and_swap', scripts.CAS, [key], [
        expected === null ? '0' : '1',
        expected === null ? '' : expected,
        value === null ? '0' : '1',
        value === null ? '' : value,
        ms(ttlMs),
      ]);
      return Number(reply[0]) === 1 ? { swapped: true } : { swapped: false, current: reply[1] ?? null };
    },
    async scan(prefix, cursor, count) {
      const [next, keys] = await call('scan', [
        'SCAN',
        cursor === '' ? '0' : cursor,
        'MATCH',
        `${escapeGlob(prefix)}*`,
        'COUNT',
        String(count),
      ]);
      return { keys, cursor: String(next) === '0' ? null : String(next) };
    },
    eval(script, keys, args) {
      return evalScript('eval', script, keys, args);
    },
    async publish(channel, message) {
      await call('publish', ['PUBLISH', channel, buf(message)]);
    },
    async subscribe(channel, onMessage) {
      // A dedicated connection per subscription, as in rampart-redis.
      try {
        return await ops.subscribe(channel, onMessage);
      } catch (e) {
        throw classify(e, 'subscribe');
      }
    },
    async time() {
      const [secs, micros] = await call('server_time', ['TIME']);
      return Number(secs) * 1e6 + Number(micros);
    },
    async setIfAbsent(key, value, ttlMs) {
      const args = ['SET', key, buf(value), 'NX'];
      if (ttlMs !== null) args.push('PX', String(ttlMs));
      return (await call('set_if_absent', args)) !== null;
    },
    async deleteIfEqual(key, expected) {
      return Number(await evalScript('delete_if_equal', scripts.DELETE_IF_EQUAL, [key], [expected])) === 1;
    },
    async expireIfEqual(key, expected, ttlMs) {
      const reply = await evalScript('expire_if_equal', scripts.EXPIRE_IF_EQUAL, [key], [expected, ms(ttlMs)]);
      return Number(reply) === 1;
    },
    async increment(key, delta, ttlMs) {
      return evalScript('increment', scripts.INCREMENT, [key], [delta, ms(ttlMs)]);
    },
    async getMany(keys) {
      return callBuffers('get_many', ['MGET', ...keys]);
    },
    async deleteMany(keys) {
      return call('delete_many', ['UNLINK', ...keys]);
    },
    async stats() {
      const keys = Number(await call('stats', ['DBSIZE']));
      const info = String(await call('stats', ['INFO', 'server', 'memory']));
      const field = (name) => info.match(new RegExp(`^${name}:(.*)$`, 'm'))?.[1]?.trim();
      const memory = field('used_memory');
      const version = field('redis_version');
      return {
        keys,
        memoryBytes: memory === undefined ? null : Number(memory),
        server: version === undefined ? null : `redis ${version}`,
      };
    },
  };
}

module.exports = { redisAdapter, classify, escapeGlob, buf };
