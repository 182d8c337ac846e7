'use strict';
// A package built without a feature (scripts/build --no-default-features
// --features ...) has no class for it: using one is a RAMPART_UNSUPPORTED
// error naming the feature, never a TypeError from inside the package.

const test = require('node:test');
const assert = require('node:assert');
const { RampartError } = require('..');
const runtime = require('../lib/runtime');

test('a class this build left out is RAMPART_UNSUPPORTED, naming its feature', () => {
  assert.throws(
    () => runtime.bound('NotBuiltIn', 'some-feature'),
    (e) =>
      e instanceof RampartError &&
      e.code === 'RAMPART_UNSUPPORTED' &&
      e.message.includes('NotBuiltIn') &&
      e.message.includes('"some-feature"'),
  );
});

test('the default build binds every class', () => {
  for (const [name, feature] of [
    ['RateLimiter', 'limiter'],
    ['LimiterExtras', 'limiter'],
    ['Cache', 'cache'],
    ['Sessions', 'sessions'],
    ['RefreshTokens', 'sessions'],
    ['Denylist', 'sessions'],
    ['Locks', 'locks'],
  ]) {
    assert.strictEqual(typeof runtime.bound(name, feature), 'function', name);
  }
});
