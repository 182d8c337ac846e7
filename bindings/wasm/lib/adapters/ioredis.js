'use strict';
// The store interface over the user's own ioredis client (4+).

const { redisAdapter } = require('./common');

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
    commandBuffers: (args) => client.callBuffer(...args),
  });
}

module.exports = { ioredisAdapter };
