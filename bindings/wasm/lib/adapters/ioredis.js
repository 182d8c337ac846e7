'use strict';
// The store interface over the user's own ioredis client (4+).

const { redisAdapter } = require('./common');
const { options: readOptions, field } = require('../options');
const { invalidInput } = require('../errors');

/** The commands the adapter reads as Buffers, and ioredis's method for each. */
const BUFFER_METHODS = Object.freeze({ __proto__: null, EVALSHA: 'evalshaBuffer', EVAL: 'evalBuffer', GET: 'getBuffer', MGET: 'mgetBuffer' });

/** The most commands one coalesced write holds (see `coalescer`). */
const COALESCE_MAX = 8;

/**
 * Coalesces the commands sent during one turn of the event loop into
 * fewer socket writes, the way node-redis does by itself: the first
 * command corks the client's socket, which is uncorked on
 * `process.nextTick` (before any I/O, so no command waits for the network)
 * or after COALESCE_MAX commands, whichever comes first. Under
 * concurrency this spares most of a write system call per command, for
 * the client and for the server; the cap keeps the server busy while the
 * rest of a burst is being prepared. Skipped while the client is not
 * ready (its offline queue or a reconnect owns the socket then).
 * @param {import('ioredis').Redis} client
 * @returns {() => void} call before each command
 */
function coalescer(client) {
  let corked = null;
  let queued = 0;
  const flush = () => {
    const s = corked;
    corked = null;
    s.uncork();
  };
  return () => {
    if (corked !== null) {
      if (++queued >= COALESCE_MAX) {
        queued = 0;
        corked.uncork();
        corked.cork();
      }
      return;
    }
    const s = client.stream;
    if (client.status !== 'ready' || s === null || typeof s !== 'object' || typeof s.cork !== 'function') return;
    corked = s;
    queued = 1;
    s.cork();
    process.nextTick(flush);
  };
}

/**
 * A StoreAdapter over an ioredis client: one round trip per store
 * operation; with `eval`, the core's Lua twins run in one EVALSHA.
 *
 * Do not give the client a `keyPrefix` (SCAN patterns would not get it):
 * namespace keys with rampart's own prefixes instead.
 * @param {import('ioredis').Redis} client
 * @param {{ coalesceWrites?: boolean }} [options] coalesceWrites (default
 *   true): send the commands of one event-loop turn in fewer writes
 */
function ioredisAdapter(client, options) {
  if (client === null || typeof client !== 'object' || typeof client.call !== 'function' || typeof client.callBuffer !== 'function') {
    throw new TypeError('ioredisAdapter needs an ioredis client (new Redis(...))');
  }
  const coalesceWrites = field(readOptions(options, 'ioredisAdapter options'), 'coalesceWrites', 'ioredisAdapter options');
  if (coalesceWrites !== undefined && typeof coalesceWrites !== 'boolean') {
    throw invalidInput(`coalesceWrites must be a boolean, got ${typeof coalesceWrites}`);
  }
  const coalesce = coalesceWrites === false ? () => {} : coalescer(client);
  return redisAdapter({
    command: (args) => {
      coalesce();
      return client.call(...args);
    },
    commandBuffers: (args) => {
      coalesce();
      // The command's own Buffer method (evalshaBuffer, getBuffer, ...):
      // under enableAutoPipelining, ioredis 5 drops the command name of
      // callBuffer (it re-adds it for call only), so EVALSHA would reach
      // the server as an unknown command.
      const own = client[BUFFER_METHODS[args[0]]];
      return typeof own === 'function' ? own.apply(client, args.slice(1)) : client.callBuffer(...args);
    },
    async subscribe(channel, onMessage) {
      const sub = client.duplicate();
      sub.on('error', () => {}); // reconnects by itself; errors reach publishers
      sub.on('messageBuffer', (ch, message) => {
        if (ch.toString() === channel) onMessage(message);
      });
      try {
        await sub.subscribe(channel);
      } catch (e) {
        sub.disconnect();
        throw e;
      }
      return () => sub.disconnect();
    },
  });
}

module.exports = { ioredisAdapter };
