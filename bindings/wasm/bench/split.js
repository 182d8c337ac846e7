'use strict';
// Where the time of an in-process `consume` goes, beside
// rate-limiter-flexible's RateLimiterMemory in the same run (the peer of
// bench/consume.js's in-process case):
//   * full:   RateLimiter.consume on a MemoryStore, as bench/consume.js;
//   * js:     the same calls with the core's decision replaced by a no-op
//             (the export answers "decided" at once and the figures of the
//             previous decision are read again): what the JavaScript side
//             (argument checks, key copy, Promise, Decision object) costs;
//   * core:   the core's synchronous export alone (key already copied, no
//             Promise, no Decision object), in a plain loop;
//   * peer:   RateLimiterMemory.consume.
// Same keys, concurrency and medians as bench/consume.js. A diagnostic,
// not a comparison to report: it says which side a faster consume must
// come from. Usage: node bench/split.js [--quick]

const { RateLimiterMemory } = require('rate-limiter-flexible');
const rampart = require('..');
const { keyIn } = require('../lib/runtime');
const { measure } = require('./measure');

const quick = process.argv.includes('--quick');
const CONCURRENCY = 64;
const KEYS = 1000;
const OPS = quick ? 30_000 : 300_000;
const ROUNDS = quick ? 1 : 5;
const key = (i) => `user${i % KEYS}`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function limiter() {
  const store = new rampart.MemoryStore({ maxEntries: 1_000_000 });
  return new rampart.RateLimiter({ store, algorithm: 'fixed-window', limit: 1_000_000_000, window: 3_600_000 });
}

/** The wasm-bindgen object behind a RateLimiter. */
function innerOf(l) {
  const inner = Object.getOwnPropertySymbols(l).find((s) => s.description === 'rampart.limiter');
  return l[inner];
}

/** ns per call of `fn(i)` in a plain loop (no Promise), median of rounds. */
function loopNs(fn, n) {
  for (let i = 0; i < 20_000; i++) fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / n;
}

async function main() {
  const full = limiter();
  const stubbed = limiter();
  await stubbed.consume('warm'); // figures to read again
  // An own property shadows the export on the prototype for this object only.
  innerOf(stubbed).consumeKeyIn = () => 1;
  const peer = new RateLimiterMemory({ points: 1_000_000_000, duration: 3600 });
  const cases = {
    full: (i) => full.consume(key(i)),
    js: (i) => stubbed.consume(key(i)),
    peer: (i) => peer.consume(key(i)),
  };
  for (const fn of Object.values(cases)) await measure(fn, 5_000, CONCURRENCY);
  const runs = { full: [], js: [], peer: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(cases)) runs[name].push((await measure(fn, OPS, CONCURRENCY)).ops);
  }
  const inner = innerOf(limiter());
  const keys = Array.from({ length: KEYS }, (_, i) => key(i));
  const core = median(
    Array.from({ length: ROUNDS }, () => loopNs((i) => inner.consumeKeyIn(keyIn(keys[i % KEYS]), 1), OPS)),
  );
  const ns = (ops) => (1e9 / ops).toFixed(0);
  const peerOps = median(runs.peer);
  console.log(`in-process consume, split (${CONCURRENCY} in flight, ${KEYS} keys, medians of ${ROUNDS})`);
  for (const name of ['full', 'js', 'peer']) {
    const ops = median(runs[name]);
    console.log(
      `  ${name.padEnd(6)} ${Math.round(ops).toLocaleString('en-US').padStart(11)} ops/s  ${ns(ops).padStart(5)} ns/op  ${(ops / peerOps).toFixed(2)}x peer`,
    );
  }
  console.log(`  core   ${core.toFixed(0).padStart(24)} ns/op  (the export alone, plain loop)`);
  console.log(
    `  to be ahead of the peer, a decision may take ${(1e9 / peerOps - 1e9 / median(runs.js)).toFixed(0)} ns beside the JavaScript side`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
