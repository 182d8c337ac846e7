'use strict';
// The store conformance suite through the Redis adapters, on a real
// redis-server started on a free 127.0.0.1 port: ioredis (plain and
// auto-pipelined), node-redis (the current major) and node-redis 4.

const { after, before } = require('node:test');
const Redis = require('ioredis');
const { createClient } = require('redis');
const { createClient: createClient4 } = require('redis4');
const { ioredisStore, nodeRedisStore } = require('..');
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
