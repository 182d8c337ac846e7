'use strict';
// The store conformance suite through the Redis adapters, on a real
// redis-server started on a free 127.0.0.1 port: ioredis (plain,
// auto-pipelined, without write coalescing), node-redis (the current
// major) and node-redis 4; and the ioredis adapter's write coalescing.

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');
const Redis = require('ioredis');
const { createClient } = require('redis');
const { createClient: createClient4 } = require('redis4');
const { ioredisStore, nodeRedisStore, ioredisAdapter, Store, RateLimiter, Decision } = require('..');
const { conformance } = require('../testing/conformance');
const { startRedis } = require('../testing/redis-server');

let server;
const clients = [];

before(async () => {
  server = await startRedis();
});

after(async () => {
  for (const close of clients) await close();
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

conformance('ioredis adapter', async () => {
  const client = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
  await client.connect();
  clients.push(() => client.quit());
  return { store: ioredisStore(client), realTime: true, pass: sleep };
});

// Auto-pipelined ioredis drops the command name of callBuffer (ioredis
// 5): the adapter must use the commands' own Buffer methods.
conformance('ioredis adapter (enableAutoPipelining)', async () => {
  const client = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true, enableAutoPipelining: true });
  await client.connect();
  clients.push(() => client.quit());
  return { store: ioredisStore(client), realTime: true, pass: sleep };
});

conformance('node-redis adapter (redis 6)', async () => {
  const client = createClient({ url: server.url });
  await client.connect();
  clients.push(() => client.quit());
  return { store: nodeRedisStore(client), realTime: true, pass: sleep };
});

conformance('node-redis adapter (redis 4)', async () => {
  const client = createClient4({ url: server.url });
  await client.connect();
  clients.push(() => client.quit());
  return { store: nodeRedisStore(client), realTime: true, pass: sleep };
});

conformance('ioredis adapter (coalesceWrites: false)', async () => {
  const client = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
  await client.connect();
  clients.push(() => client.quit());
  return { store: Store.fromAdapter(ioredisAdapter(client, { coalesceWrites: false })), realTime: true, pass: sleep };
});

describe('ioredis adapter write coalescing', () => {
  /** A connected client whose socket writes are counted (one per write or writev system call). */
  async function counted(options) {
    const client = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
    await client.connect();
    clients.push(() => client.quit());
    const stream = client.stream;
    const writes = { n: 0 };
    for (const name of ['_write', '_writev']) {
      const own = stream[name];
      if (typeof own === 'function') {
        stream[name] = function (...args) {
          writes.n++;
          return own.apply(this, args);
        };
      }
    }
    return { client, writes, store: Store.fromAdapter(ioredisAdapter(client, options)) };
  }

  it('sends a burst in fewer writes and answers every command', async () => {
    const burst = async (options, prefix) => {
      const { writes, store } = await counted(options);
      const limiter = new RateLimiter({ store, algorithm: 'fixed-window', limit: 100, window: 60_000, prefix });
      await limiter.consume('warm'); // loads the script
      const before = writes.n;
      const ops = [];
      for (let i = 0; i < 150; i++) {
        ops.push(limiter.consume('hot'));
        ops.push(store.set(`${prefix}:v${i}`, `value ${i}`).then(() => store.get(`${prefix}:v${i}`)));
      }
      const results = await Promise.all(ops);
      const decisions = results.filter((r) => r instanceof Decision);
      assert.equal(decisions.filter((d) => d.allowed).length, 100);
      const values = results.filter((r) => !(r instanceof Decision)).map(String);
      assert.deepEqual(values, Array.from({ length: 150 }, (_, i) => `value ${i}`));
      return writes.n - before;
    };
    const coalesced = await burst(undefined, 'co:on');
    const plain = await burst({ coalesceWrites: false }, 'co:off');
    // 450 commands: each alone without coalescing, at most 8 per write with it.
    assert.ok(plain >= 400, `${plain} writes without coalescing`);
    assert.ok(coalesced <= plain / 4, `${coalesced} writes coalesced, ${plain} without`);
  });

  it('hostile options are RAMPART_INVALID_INPUT', () => {
    const client = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
    const throwing = new Proxy({}, { get() { throw new Error('trap'); } });
    for (const bad of [5, 'yes', { coalesceWrites: 1 }, { coalesceWrites: 'false' }, throwing]) {
      assert.throws(() => ioredisAdapter(client, bad), (e) => e.code === 'RAMPART_INVALID_INPUT');
    }
    for (const good of [undefined, null, {}, { coalesceWrites: true }, { coalesceWrites: false }]) ioredisAdapter(client, good);
    client.disconnect();
  });

  it('a reconnect in the middle of a burst leaves the adapter working', async () => {
    const { client, store } = await counted(undefined);
    const limiter = new RateLimiter({ store, algorithm: 'fixed-window', limit: 1_000, window: 60_000, prefix: 'co:re' });
    const burst = Array.from({ length: 50 }, () => limiter.consume('k').then(
      (d) => d.allowed,
      (e) => e.code,
    ));
    client.disconnect(true);
    const outcomes = await Promise.all(burst);
    for (const o of outcomes) assert.ok(o === true || o === 'RAMPART_UNAVAILABLE', String(o));
    await new Promise((resolve) => client.once('ready', resolve));
    const after = await Promise.all(Array.from({ length: 20 }, () => limiter.consume('k')));
    assert.ok(after.every((d) => d.allowed));
  });
});
