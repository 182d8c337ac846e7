'use strict';
// `consume` with header options (what the Express middleware calls) on an
// in-process limiter, beside plain `consume` for scale: a RateLimiter on
// MemoryStore, a fixed window with a limit no request reaches (each call
// is one admitted decision), `BENCH_CONCURRENCY` in flight over
// `BENCH_KEYS` keys. Rounds alternate between the cases; prints the median
// and best ops/s of each. No HTTP: it would dominate the figure.
//
// Usage: node bench/headers.js [package directory, default ..]
// (another directory compares an older build: copy its index.js, lib/,
// pkg/ and package.json there).
//
// Environment: BENCH_CONCURRENCY (default 64), BENCH_KEYS (1000),
// BENCH_OPS (300000), BENCH_ROUNDS (5).

const path = require('node:path');

const rampart = require(path.resolve(process.argv[2] ?? path.join(__dirname, '..')));
const { measure: measureIn } = require('./measure');

const env = (name, dflt) => Number(process.env[name] ?? dflt);
const CONCURRENCY = env('BENCH_CONCURRENCY', 64);
const KEYS = env('BENCH_KEYS', 1000);
const OPS = env('BENCH_OPS', 300_000);
const ROUNDS = env('BENCH_ROUNDS', 5);

/** ops/s of `total` calls of `fn(i)`, `CONCURRENCY` in flight. */
const measure = async (fn, total) => (await measureIn(fn, total, CONCURRENCY)).ops;

async function main() {
  const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`);
  const limiter = new rampart.RateLimiter({
    store: new rampart.MemoryStore({ maxEntries: 1_000_000 }),
    algorithm: 'fixed-window',
    limit: 1_000_000_000,
    window: 3_600_000,
  });
  const draft8 = { headers: 'draft-8' };
  const cases = {
    "consume(key, 1, { headers: 'draft-8' })": (i) => limiter.consume(keys[i % KEYS], 1, draft8),
    '  ... then decision.headers()': (i) => limiter.consume(keys[i % KEYS], 1, draft8).then((d) => d.headers('draft-8')),
    '  ... with names and partitionKey': (i) => {
      const key = keys[i % KEYS];
      return limiter.consume(key, 1, { headers: 'draft-8', names: ['api'], partitionKey: key });
    },
    "  ... 'legacy'": (i) => limiter.consume(keys[i % KEYS], 1, { headers: 'legacy' }),
    'consume(key, 1)': (i) => limiter.consume(keys[i % KEYS], 1),
  };
  console.log(`consume on MemoryStore: ${CONCURRENCY} in flight, ${KEYS} keys, ${OPS.toLocaleString('en-US')} ops x ${ROUNDS} rounds, node ${process.version}`);
  for (const fn of Object.values(cases)) await measure(fn, Math.min(OPS, 20_000)); // warm up
  const runs = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(cases)) runs[name].push(await measure(fn, OPS));
  }
  const fmt = (x) => `${Math.round(x).toLocaleString('en-US')} ops/s`;
  for (const [name, xs] of Object.entries(runs)) {
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(`  ${name.padEnd(42)} median ${fmt(sorted[sorted.length >> 1]).padEnd(16)} best ${fmt(sorted[sorted.length - 1])}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
