'use strict';
// `consume` throughput, rampart vs rate-limiter-flexible, same run, same
// concurrency, same keys:
//   * in process: RateLimiter on MemoryStore vs RateLimiterMemory;
//   * over Redis: RateLimiter on the ioredis adapter vs RateLimiterRedis,
//     both on one local redis-server this script starts (free 127.0.0.1
//     port) and stops; then again with the adapter's write coalescing off
//     (`coalesceWrites: false`), which rate-limiter-flexible does not do.
// Both sides count a fixed window with a limit no request reaches, so each
// consume is one admitted decision. Prints ops/s (best and median of the
// rounds, which alternate between the sides), Node CPU per op, and the
// ratio of the medians. Usage: node bench/consume.js [--quick]
//
// Environment: BENCH_CONCURRENCY (default 64), BENCH_KEYS (1000),
// BENCH_MEMORY_OPS (300000), BENCH_REDIS_OPS (60000), BENCH_ROUNDS (5);
// BENCH_JSON=1 adds one line `BENCH_JSON {...}` with every round.

const Redis = require('ioredis');
const { RateLimiterMemory, RateLimiterRedis } = require('rate-limiter-flexible');
const rampart = require('..');
const { startRedis } = require('../testing/redis-server');
const { measure: measureIn } = require('./measure');

const quick = process.argv.includes('--quick');
const env = (name, dflt) => Number(process.env[name] ?? dflt);
const CONCURRENCY = env('BENCH_CONCURRENCY', 64);
const KEYS = env('BENCH_KEYS', 1000);
const MEMORY_OPS = env('BENCH_MEMORY_OPS', quick ? 30_000 : 300_000);
const REDIS_OPS = env('BENCH_REDIS_OPS', quick ? 6_000 : 60_000);
const ROUNDS = env('BENCH_ROUNDS', quick ? 1 : 5);
const POINTS = 1_000_000_000;
const WINDOW_S = 3600;

/** ops/s and Node CPU µs per op of `total` calls of `fn(i)`, `CONCURRENCY` in flight. */
const measure = (fn, total) => measureIn(fn, total, CONCURRENCY);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => `${Math.round(x).toLocaleString('en-US')} ops/s`;

/**
 * Rounds alternate between the two sides (this machine is shared: a noisy
 * neighbour then hurts both alike); prints the best and the median.
 */
async function compare(title, ours, theirs, total) {
  await measure(ours, Math.min(total, 5_000)); // warm up: JIT, script cache
  await measure(theirs, Math.min(total, 5_000));
  const a = [];
  const b = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(await measure(ours, total));
    b.push(await measure(theirs, total));
  }
  const line = (name, runs) =>
    console.log(
      `  ${name.padEnd(22)} best ${fmt(Math.max(...runs.map((x) => x.ops))).padEnd(16)} median ${fmt(median(runs.map((x) => x.ops))).padEnd(16)} ${median(runs.map((x) => x.cpuUs)).toFixed(2)} µs CPU/op`,
    );
  console.log(title);
  line('rampart', a);
  line('rate-limiter-flexible', b);
  const ratio = median(a.map((x) => x.ops)) / median(b.map((x) => x.ops));
  console.log(`  ratio (medians)        ${ratio.toFixed(2)}x`);
  return { rampart: a, peer: b, ratio };
}

async function main() {
  if (typeof rampart.RateLimiter !== 'function') {
    console.error('bench/consume.js needs the RateLimiter binding (src/limit merged and pending/activate run)');
    process.exit(1);
  }
  console.log(`consume: ${CONCURRENCY} in flight, ${KEYS} keys, ${ROUNDS} rounds each, node ${process.version}`);
  const key = (i) => `user${i % KEYS}`;

  const memory = new rampart.MemoryStore({ maxEntries: 1_000_000 });
  const ours = new rampart.RateLimiter({ store: memory, algorithm: 'fixed-window', limit: POINTS, window: WINDOW_S * 1000 });
  const theirs = new RateLimiterMemory({ points: POINTS, duration: WINDOW_S });
  const results = {};
  results.memory = await compare(
    `in process (MemoryStore vs RateLimiterMemory), ${MEMORY_OPS.toLocaleString('en-US')} ops`,
    (i) => ours.consume(key(i)),
    (i) => theirs.consume(key(i)),
    MEMORY_OPS,
  );

  const server = await startRedis();
  // One client each, configured alike (rate-limiter-flexible recommends
  // no offline queue), both connected before the first round.
  const connect = async () => {
    const c = new Redis({ host: '127.0.0.1', port: server.port, enableOfflineQueue: false, lazyConnect: true });
    await c.connect();
    return c;
  };
  const clientA = await connect();
  const clientB = await connect();
  const clientC = await connect();
  try {
    const overRedis = new rampart.RateLimiter({
      store: rampart.ioredisStore(clientA),
      algorithm: 'fixed-window',
      limit: POINTS,
      window: WINDOW_S * 1000,
      prefix: 'bench:rampart',
    });
    const flexible = new RateLimiterRedis({ storeClient: clientB, points: POINTS, duration: WINDOW_S, keyPrefix: 'bench:rlf' });
    results.redis = await compare(
      `over Redis (ioredis adapter vs RateLimiterRedis, redis-server on 127.0.0.1:${server.port}), ${REDIS_OPS.toLocaleString('en-US')} ops`,
      (i) => overRedis.consume(key(i)),
      (i) => flexible.consume(key(i)),
      REDIS_OPS,
    );
    const uncoalesced = new rampart.RateLimiter({
      store: rampart.ioredisStore(clientC, { coalesceWrites: false }),
      algorithm: 'fixed-window',
      limit: POINTS,
      window: WINDOW_S * 1000,
      prefix: 'bench:rampart:plain',
    });
    results.redisUncoalesced = await compare(
      `over Redis, the adapter's write coalescing off (coalesceWrites: false), ${REDIS_OPS.toLocaleString('en-US')} ops`,
      (i) => uncoalesced.consume(key(i)),
      (i) => flexible.consume(key(i)),
      REDIS_OPS,
    );
  } finally {
    clientA.disconnect();
    clientB.disconnect();
    clientC.disconnect();
    await server.stop();
  }
  // One line for scripts/bench (BENCHMARKS.md).
  if (process.env.BENCH_JSON) console.log(`BENCH_JSON ${JSON.stringify(results)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
