'use strict';
// The store conformance suite against the core's MemoryStore, on a manual
// clock (expiry is exact and instant).

const { MemoryStore, ManualClock } = require('..');
const { conformance } = require('../testing/conformance');

conformance('MemoryStore (manual clock)', () => {
  const clock = new ManualClock(1_700_000_000_000);
  return {
    store: new MemoryStore({ clock }),
    clock,
    realTime: false,
    pass: async (ms) => clock.advance(ms),
  };
});

conformance('MemoryStore (system clock)', () => ({
  store: new MemoryStore({ maxEntries: 1_000_000 }),
  realTime: true,
  pass: (ms) => new Promise((r) => setTimeout(r, ms)),
}), { only: ['ttl_expiry', 'set_if_absent', 'scan_skips_expired', 'update_concurrent'] });
