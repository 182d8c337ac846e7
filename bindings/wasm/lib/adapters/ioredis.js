'use strict';
// The store interface over the user's own ioredis client (4+).

const { redisAdapter } = require('./common');

/** The commands the adapter reads as Buffers, and ioredis's method for each. */
const BUFFER_METHODS = Object.freeze({ __proto__: null, EVALSHA: 'evalshaBuffer', EVAL: 'evalBuffer', GET: 'getBuffer', MGET: 'mgetBuffer' });

/**
 * A StoreAdapter over an ioredis client: one round trip per store
 * operation; with `eval`, the core's Lua twins run in one EVALSHA.
 *
 * Do not give the client a `keyPrefix` (SCAN patterns would not get it):
 * namespace keys with rampart's own prefixes instead.
 * @param {import('ioredis').Redis} client
 */
function ioredisAdapter(client) {
  if (client === null || typeof client !== 'object' || typeof client.call !== 'function' || typeof client.callBuffer !== 'function') {
    throw new TypeError('ioredisAdapter needs an ioredis client (new Redis(...))');
  }
  return redisAdapter({
    command: (args) => client.call(...args),
    commandBuffers: (args) => {
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
