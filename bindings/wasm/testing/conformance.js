'use strict';
// The conformance suite of src/testkit/mod.rs, ported case by case to
// JavaScript, run through the package's public Store API against every
// Node store (MemoryStore, and Store.fromAdapter over ioredis and
// node-redis on a real redis-server).
//
// A harness is { store, pass(ms), realTime } — `pass` advances a
// ManualClock or sleeps. Each case keeps to its own namespace
// (tk:<case>:<run>:), so cases may share one store.

const assert = require('node:assert/strict');
const { describe, it } = require('node:test');

const MAX_KEY_LEN = 1024;
const MAX_TTL_MS = 100 * 365 * 24 * 60 * 60 * 1000;
const I64_MAX = '9223372036854775807';

let runs = 0;

function harness(h) {
  const run = `${process.pid}${String(++runs).padStart(3, '0')}`;
  return {
    ...h,
    ns: (name) => `tk:${name}:${run}:`,
    key: (name, part) => `tk:${name}:${run}:${part}`,
    shortTtl: () => (h.realTime ? 300 : 10_000),
  };
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, 'RampartError', `expected a RampartError, got ${e}`);
    assert.equal(e.code, code, String(e));
    return true;
  });
}

async function scanAll(h, prefix, count) {
  const out = new Set();
  let cursor = null;
  for (let i = 0; i < 100_000; i++) {
    const page = await h.store.scan(prefix, { cursor, count });
    for (const k of page.keys) out.add(k);
    if (page.cursor === null) return [...out].sort();
    cursor = page.cursor;
  }
  throw new Error('scan did not finish');
}

async function inBatches(items, size, fn) {
  for (let i = 0; i < items.length; i += size) {
    await Promise.all(items.slice(i, i + size).map(fn));
  }
}

const cases = {
  async get_missing(h) {
    const k = h.key('get_missing', 'nothing');
    assert.equal(await h.store.get(k), null);
    assert.equal(await h.store.ttl(k), null);
    assert.equal(await h.store.delete(k), false);
  },

  async set_get_overwrite(h) {
    const k = h.key('set_get_overwrite', 'k');
    await h.store.set(k, 'one');
    assert.deepEqual(await h.store.get(k), Buffer.from('one'));
    await h.store.set(k, Buffer.from('two'));
    assert.deepEqual(await h.store.get(k), Buffer.from('two'));
  },

  async empty_and_binary_values(h) {
    const empty = h.key('empty_and_binary_values', 'empty');
    await h.store.set(empty, new Uint8Array(0));
    assert.deepEqual(await h.store.get(empty), Buffer.alloc(0));
    assert.equal(await h.store.ttl(empty), Infinity);
    const bin = h.key('empty_and_binary_values', 'bin');
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await h.store.set(bin, all);
    assert.deepEqual(await h.store.get(bin), all);
  },

  async large_value(h) {
    const k = h.key('large_value', 'big');
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    await h.store.set(k, big);
    assert.ok((await h.store.get(k)).equals(big));
  },

  async delete(h) {
    const k = h.key('delete', 'k');
    await h.store.set(k, 'v');
    assert.equal(await h.store.delete(k), true);
    assert.equal(await h.store.delete(k), false);
    assert.equal(await h.store.get(k), null);
  },

  async ttl_states(h) {
    const k = h.key('ttl_states', 'k');
    assert.equal(await h.store.ttl(k), null);
    await h.store.set(k, 'v');
    assert.equal(await h.store.ttl(k), Infinity);
    await h.store.set(k, 'v', { ttl: 60_000 });
    const left = await h.store.ttl(k);
    assert.ok(left <= 60_000 && left > 50_000, String(left));
    await h.store.set(k, 'v', { ttl: MAX_TTL_MS });
    assert.ok((await h.store.ttl(k)) > MAX_TTL_MS - 60_000);
  },

  async ttl_expiry(h) {
    const k = h.key('ttl_expiry', 'k');
    const ttl = h.shortTtl();
    await h.store.set(k, 'v', { ttl });
    assert.deepEqual(await h.store.get(k), Buffer.from('v'));
    if (h.clock) {
      h.clock.advance(ttl - 1);
      assert.deepEqual(await h.store.get(k), Buffer.from('v'), 'expired early');
      await h.pass(51);
    } else {
      await h.pass(ttl + 50);
    }
    assert.equal(await h.store.get(k), null);
    assert.equal(await h.store.ttl(k), null);
    assert.equal(await h.store.delete(k), false, 'deleting an expired key reports a live value');
  },

  async set_clears_ttl(h) {
    const k = h.key('set_clears_ttl', 'k');
    await h.store.set(k, 'v', { ttl: h.shortTtl() });
    await h.store.set(k, 'w');
    await h.pass(h.shortTtl() + 50);
    assert.deepEqual(await h.store.get(k), Buffer.from('w'));
  },

  async invalid_ttl_rejected(h) {
    const k = h.key('invalid_ttl_rejected', 'k');
    for (const ttl of [0, MAX_TTL_MS + 1000, Number.MAX_VALUE, NaN, -5, Infinity]) {
      await rejectsWith(h.store.set(k, 'v', { ttl }), 'RAMPART_INVALID_INPUT');
      await rejectsWith(h.store.compareAndSwap(k, null, 'v', { ttl }), 'RAMPART_INVALID_INPUT');
      await rejectsWith(h.store.setIfAbsent(k, 'v', { ttl }), 'RAMPART_INVALID_INPUT');
    }
    assert.equal(await h.store.get(k), null);
  },

  async cas_create_and_conflict(h) {
    const k = h.key('cas_create_and_conflict', 'k');
    assert.deepEqual(await h.store.compareAndSwap(k, null, '1'), { swapped: true });
    assert.deepEqual(await h.store.compareAndSwap(k, null, 'x'), { swapped: false, current: Buffer.from('1') });
    assert.deepEqual(await h.store.compareAndSwap(k, '0', 'x'), { swapped: false, current: Buffer.from('1') });
    assert.deepEqual(await h.store.compareAndSwap(k, '1', '2'), { swapped: true });
    assert.deepEqual(await h.store.get(k), Buffer.from('2'));
    const missing = h.key('cas_create_and_conflict', 'missing');
    assert.deepEqual(await h.store.compareAndSwap(missing, '2', '3'), { swapped: false, current: null });
    assert.equal(await h.store.get(missing), null);
  },

  async cas_delete_and_ttl(h) {
    const k = h.key('cas_delete_and_ttl', 'k');
    await h.store.set(k, 'v');
    assert.deepEqual(await h.store.compareAndSwap(k, 'v', null), { swapped: true });
    assert.equal(await h.store.get(k), null);
    const ttl = h.shortTtl();
    assert.deepEqual(await h.store.compareAndSwap(k, null, 't', { ttl }), { swapped: true });
    const left = await h.store.ttl(k);
    assert.ok(left > 0 && left <= ttl, String(left));
    await h.pass(ttl + 50);
    assert.deepEqual(await h.store.compareAndSwap(k, null, 'new'), { swapped: true });
    assert.equal(await h.store.ttl(k), Infinity);
  },

  async update_paths(h) {
    const k = h.key('update_paths', 'k');
    const seen = [];
    let up = await h.store.update(k, (cur) => {
      seen.push(cur);
      return { set: 'a' };
    });
    assert.equal(seen.at(-1), null);
    assert.equal(up.changed, true);
    assert.deepEqual(up.value, Buffer.from('a'));
    up = await h.store.update(k, (cur) => ({ set: Buffer.concat([cur, Buffer.from('b')]) }));
    assert.deepEqual(up.value, Buffer.from('ab'));
    up = await h.store.update(k, () => ({ keep: true }));
    assert.equal(up.changed, false);
    assert.deepEqual(up.value, Buffer.from('ab'));
    assert.deepEqual(await h.store.get(k), Buffer.from('ab'));
    up = await h.store.update(k, () => ({ remove: true }));
    assert.equal(up.changed, true);
    assert.equal(await h.store.get(k), null);
    up = await h.store.update(k, () => ({ remove: true }));
    assert.equal(up.changed, false, 'removing a missing key changed something');
    await rejectsWith(h.store.update(k, () => ({ set: 'x', ttl: 0 })), 'RAMPART_INVALID_INPUT');
    assert.equal(await h.store.get(k), null);
  },

  async update_keep_ttl(h) {
    const k = h.key('update_keep_ttl', 'k');
    await h.store.set(k, 'v', { ttl: 100_000 });
    await h.store.update(k, () => ({ setKeepTtl: 'w' }));
    assert.deepEqual(await h.store.get(k), Buffer.from('w'));
    assert.ok((await h.store.ttl(k)) > 90_000);
    const p = h.key('update_keep_ttl', 'persistent');
    await h.store.update(p, () => ({ setKeepTtl: 'new' }));
    assert.equal(await h.store.ttl(p), Infinity);
  },

  async update_concurrent(h) {
    const TASKS = 32;
    const EACH = 50;
    const k = h.key('update_concurrent', 'counter');
    const task = async () => {
      for (let i = 0; i < EACH; i++) {
        await h.store.update(k, (cur) => ({ set: String((cur === null ? 0 : Number(cur.toString())) + 1) }));
      }
    };
    await Promise.all(Array.from({ length: TASKS }, task));
    assert.deepEqual(await h.store.get(k), Buffer.from(String(TASKS * EACH)));
    const c = h.key('update_concurrent', 'incr');
    const incr = async () => {
      for (let i = 0; i < EACH; i++) await h.store.increment(c, 1);
    };
    await Promise.all(Array.from({ length: TASKS }, incr));
    assert.equal(await h.store.increment(c, 0), TASKS * EACH);
  },

  async set_if_absent(h) {
    const k = h.key('set_if_absent', 'k');
    const ttl = h.shortTtl();
    assert.equal(await h.store.setIfAbsent(k, 'first', { ttl }), true);
    assert.equal(await h.store.setIfAbsent(k, 'second'), false);
    assert.deepEqual(await h.store.get(k), Buffer.from('first'));
    await h.pass(ttl + 50);
    assert.equal(await h.store.setIfAbsent(k, 'third'), true);
    assert.deepEqual(await h.store.get(k), Buffer.from('third'));
  },

  async delete_if_equal(h) {
    const k = h.key('delete_if_equal', 'lock');
    await h.store.set(k, 'mine');
    assert.equal(await h.store.deleteIfEqual(k, 'stranger'), false);
    assert.deepEqual(await h.store.get(k), Buffer.from('mine'));
    assert.equal(await h.store.deleteIfEqual(k, 'mine'), true);
    assert.equal(await h.store.deleteIfEqual(k, 'mine'), false);
  },

  async expire_if_equal(h) {
    const k = h.key('expire_if_equal', 'lock');
    const ttl = h.shortTtl();
    await h.store.set(k, 'mine', { ttl });
    assert.equal(await h.store.expireIfEqual(k, 'stranger', { ttl: 600_000 }), false);
    assert.equal(await h.store.expireIfEqual(k, 'mine', { ttl: 600_000 }), true);
    await h.pass(ttl + 50);
    assert.deepEqual(await h.store.get(k), Buffer.from('mine'), 'extension did not take');
    assert.equal(await h.store.expireIfEqual(k, 'mine'), true);
    assert.equal(await h.store.ttl(k), Infinity);
    const missing = h.key('expire_if_equal', 'missing');
    assert.equal(await h.store.expireIfEqual(missing, 'mine', { ttl }), false);
    assert.equal(await h.store.get(missing), null);
  },

  async increment(h) {
    const k = h.key('increment', 'n');
    assert.equal(await h.store.increment(k, 5, { ttlIfCreated: 100_000 }), 5);
    assert.equal(await h.store.increment(k, -7), -2);
    assert.deepEqual(await h.store.get(k), Buffer.from('-2'));
    assert.ok((await h.store.ttl(k)) > 90_000);
    const text = h.key('increment', 'text');
    await h.store.set(text, 'not a number');
    await assert.rejects(h.store.increment(text, 1), (e) =>
      ['RAMPART_CORRUPT_DATA', 'RAMPART_BACKEND'].includes(e.code),
    );
    assert.deepEqual(await h.store.get(text), Buffer.from('not a number'));
    // i64 overflow (the JavaScript API takes safe integers, so the
    // counter starts at i64::MAX as text).
    const big = h.key('increment', 'big');
    await h.store.set(big, I64_MAX);
    await assert.rejects(h.store.increment(big, 1), (e) =>
      ['RAMPART_INVALID_INPUT', 'RAMPART_BACKEND'].includes(e.code),
    );
    assert.deepEqual(await h.store.get(big), Buffer.from(I64_MAX));
    // A counter past 2^53 is refused rather than rounded (the memory store
    // says the input is out of range; over Redis the reply is not exact).
    const unsafe = h.key('increment', 'unsafe');
    await h.store.set(unsafe, String(2 ** 53));
    await assert.rejects(h.store.increment(unsafe, 1), (e) =>
      ['RAMPART_INVALID_INPUT', 'RAMPART_BACKEND'].includes(e.code),
    );
  },

  async batch_get_delete(h) {
    const keys = [0, 1, 2, 3, 4].map((i) => h.key('batch_get_delete', String(i)));
    for (const k of keys.filter((_, i) => i % 2 === 0)) await h.store.set(k, k);
    const got = await h.store.getMany(keys);
    assert.equal(got.length, 5);
    got.forEach((v, i) => assert.deepEqual(v, i % 2 === 0 ? Buffer.from(keys[i]) : null));
    assert.deepEqual(await h.store.getMany([]), []);
    assert.equal(await h.store.deleteMany(keys), 3);
    assert.equal(await h.store.deleteMany(keys), 0);
  },

  async scan_paging(h) {
    const ns = h.ns('scan_paging');
    const expected = Array.from({ length: 3000 }, (_, i) => `${ns}in:${String(i).padStart(5, '0')}`);
    await inBatches(expected, 200, (k) => h.store.set(k, 'v'));
    await inBatches(
      Array.from({ length: 50 }, (_, i) => `${ns}out:${i}`),
      50,
      (k) => h.store.set(k, 'v'),
    );
    await h.store.set(`${ns}i`, 'v');
    expected.sort();
    assert.deepEqual(await scanAll(h, `${ns}in:`, 100), expected);
    assert.equal((await scanAll(h, ns, 1000)).length, 3051);
    // The async iterator sees the same keys.
    const seen = new Set();
    for await (const k of h.store.keys(`${ns}in:`, { count: 500 })) seen.add(k);
    assert.equal(seen.size, 3000);
  },

  async scan_glob_characters(h) {
    const ns = h.ns('scan_glob_characters');
    const names = ['user*', 'user*1', 'user?', 'user[1]', 'user1', 'user\\x', 'userX'];
    for (const n of names) await h.store.set(`${ns}${n}`, 'v');
    assert.deepEqual(await scanAll(h, `${ns}user*`, 10), [`${ns}user*`, `${ns}user*1`]);
    assert.deepEqual(await scanAll(h, `${ns}user?`, 10), [`${ns}user?`]);
    assert.deepEqual(await scanAll(h, `${ns}user[1]`, 10), [`${ns}user[1]`]);
    assert.deepEqual(await scanAll(h, `${ns}user\\`, 10), [`${ns}user\\x`]);
    assert.equal((await scanAll(h, `${ns}user`, 3)).length, names.length);
  },

  async scan_skips_expired(h) {
    const ns = h.ns('scan_skips_expired');
    const ttl = h.shortTtl();
    for (let i = 0; i < 20; i++) {
      await h.store.set(`${ns}${String(i).padStart(2, '0')}`, 'v', i % 2 === 0 ? { ttl } : undefined);
    }
    await h.pass(ttl + 50);
    assert.equal((await scanAll(h, ns, 7)).length, 10);
  },

  async invalid_keys_rejected(h) {
    await rejectsWith(h.store.get(''), 'RAMPART_INVALID_KEY');
    await rejectsWith(h.store.get('k'.repeat(MAX_KEY_LEN + 1)), 'RAMPART_INVALID_KEY');
    await rejectsWith(h.store.scan('p'.repeat(MAX_KEY_LEN + 1)), 'RAMPART_INVALID_KEY');
    const ns = h.ns('invalid_keys_rejected');
    const longest = `${ns}${'k'.repeat(MAX_KEY_LEN - 128 - ns.length)}`;
    await h.store.set(longest, 'v');
    assert.deepEqual(await h.store.get(longest), Buffer.from('v'));
    // A key of exactly the limit, in multi-byte characters.
    const wide = 'é'.repeat(MAX_KEY_LEN / 2);
    await h.store.set(wide, 'v');
    assert.deepEqual(await h.store.get(wide), Buffer.from('v'));
    await rejectsWith(h.store.get(`${wide}x`), 'RAMPART_INVALID_KEY');
    await h.store.delete(wide);
  },

  async capabilities_and_stats(h) {
    // Stands in for the Rust `shared_as_dyn` case: the JavaScript Store is
    // always a shared, type-erased store.
    const caps = h.store.capabilities;
    assert.deepEqual(Object.keys(caps).sort(), ['atomicUpdate', 'pubsub', 'scripting', 'serverClock']);
    const k = h.key('capabilities_and_stats', 'k');
    await h.store.set(k, 'v');
    const stats = await h.store.stats();
    assert.ok(stats.keys === null || stats.keys >= 1, JSON.stringify(stats));
    assert.equal(await h.store.increment(`${k}:n`, 2), 2);
  },

  async pubsub(h) {
    const channel = h.key('pubsub', 'events');
    if (!h.store.capabilities.pubsub) {
      await rejectsWith(h.store.publish(channel, 'x'), 'RAMPART_UNSUPPORTED');
      await rejectsWith(h.store.subscribe(channel, () => {}), 'RAMPART_UNSUPPORTED');
      return;
    }
    const first = [];
    const second = [];
    const a = await h.store.subscribe(channel, (m) => first.push(m.toString()));
    const b = await h.store.subscribe(channel, (m) => second.push(m.toString()));
    await h.store.publish(h.key('pubsub', 'other'), 'not for you');
    for (let i = 0; i < 3; i++) await h.store.publish(channel, `m${i}`);
    const deadline = Date.now() + 5_000;
    while ((first.length < 3 || second.length < 3) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(first, ['m0', 'm1', 'm2']);
    assert.deepEqual(second, ['m0', 'm1', 'm2']);
    // After close(), nothing more arrives.
    a.close();
    b.close();
    await new Promise((r) => setTimeout(r, 50));
    await h.store.publish(channel, 'late');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(first, ['m0', 'm1', 'm2']);
  },
};

/** The names of the Rust suite's cases this port covers, or says why not. */
const COVERAGE = {
  shared_as_dyn: 'capabilities_and_stats (every JavaScript Store is type-erased)',
};

/**
 * Registers every case under `describe(name)`; `make()` returns the
 * harness fields { store, pass, realTime, clock? } (once, before the cases).
 */
function conformance(name, make, { only } = {}) {
  describe(`conformance: ${name}`, () => {
    let h;
    for (const [caseName, fn] of Object.entries(cases)) {
      if (only && !only.includes(caseName)) continue;
      it(caseName, async () => {
        h ??= harness(await make());
        await fn(h);
      });
    }
  });
}

module.exports = { conformance, cases, COVERAGE };
