'use strict';
// The store interface over the user's own node-redis client (v4 and later).

const { redisAdapter } = require('./common');

// node-redis 5+ maps reply types to JavaScript types; 36 is RESP's '$'
// (a bulk string), which rampart wants as a Buffer. node-redis 4 reads
// `returnBuffers` instead; each ignores the other's option.
const BUFFERS = Object.freeze({ returnBuffers: true, typeMapping: Object.freeze({ 36: Buffer }) });

/**
 * A StoreAdapter over a connected node-redis client (`createClient()` from
 * `redis` 4 or later): one round trip per store operation; with `eval`,
 * the core's Lua twins run in one EVALSHA.
 * @param {{ sendCommand(args: Array<string | Buffer>, options?: object): Promise<unknown> }} client
 */
function nodeRedisAdapter(client) {
  if (client === null || typeof client !== 'object' || typeof client.sendCommand !== 'function') {
    throw new TypeError('nodeRedisAdapter needs a node-redis client (createClient() from redis 4+)');
  }
  return redisAdapter({
    command: (args) => client.sendCommand(args),
    commandBuffers: (args) => client.sendCommand(args, BUFFERS),
    async subscribe(channel, onMessage) {
      const sub = client.duplicate();
      sub.on('error', () => {}); // reconnects by itself; errors reach publishers
      // node-redis 5+ closes with destroy(), 4 with disconnect().
      const close = () => (typeof sub.destroy === 'function' ? sub.destroy() : sub.disconnect());
      try {
        await sub.connect();
        await sub.subscribe(channel, (message) => onMessage(message), true);
      } catch (e) {
        await Promise.resolve(close()).catch(() => {});
        throw e;
      }
      return () => Promise.resolve(close()).catch(() => {});
    },
  });
}

module.exports = { nodeRedisAdapter };
