'use strict';
// Locks end to end: on MemoryStore with a manual clock, and over the
// ioredis adapter on a real redis-server (exactly one winner among
// concurrent contenders; one EVALSHA per step); withLock and its
// watchdog; hostile inputs.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const Redis = require('ioredis');
const { Locks, Lock, MemoryStore, ManualClock, RampartError, ioredisStore, fault } = require('..');
const { startRedis } = require('../testing/redis-server');

const T0 = 1_700_000_000_000;

function memory(options = {}) {
  const clock = new ManualClock(T0);
  const store = new MemoryStore({ clock });
  return { clock, store, locks: new Locks({ store, clock, ...options }) };
}

describe('Locks on MemoryStore', () => {
  it('one holder at a time; only the token releases or extends', async () => {
    const { clock, locks } = memory();
    const lock = await locks.tryAcquire('report', { ttl: 30_000 });
    assert.ok(lock instanceof Lock);
    assert.equal(lock.resource, 'report');
    assert.match(lock.token, /^[0-9a-f]{32}$/);
    assert.equal(lock.expiresAt, T0 + 30_000);
    assert.equal(await locks.tryAcquire('report', { ttl: 30_000 }), null);
    assert.equal(await locks.isLocked('report'), true);
    assert.equal(await locks.release('report', '0'.repeat(32)), false, 'a stranger released the lock');
    assert.equal(await locks.extend('report', '0'.repeat(32), { ttl: 60_000 }), false);
    clock.advance(10_000);
    assert.equal(await lock.extend(60_000), true);
    assert.equal(lock.expiresAt, T0 + 70_000);
    assert.deepEqual(await locks.info('report'), { fence: lock.fence, remaining: 60_000 });
    assert.equal(await lock.release(), true);
    assert.equal(await lock.release(), false);
    assert.equal(await locks.isLocked('report'), false);
  });

  it('a hold expires; fencing tokens only grow', async () => {
    const { clock, locks } = memory();
    const first = await locks.tryAcquire('job', { ttl: 1_000 });
    clock.advance(1_000);
    const second = await locks.tryAcquire('job', { ttl: 1_000 });
    assert.ok(second, 'the expired hold still blocks');
    assert.ok(second.fence > first.fence);
    assert.equal(await first.release(), false, 'a stale token released the new hold');
    assert.equal(await first.extend(5_000), false);
    assert.equal(await second.release(), true);
  });

  it('acquire waits for a release', async () => {
    const store = new MemoryStore();
    const locks = new Locks({ store, retryDelay: 10, retryJitter: 0 });
    const held = await locks.tryAcquire('w', { ttl: 5_000 });
    setTimeout(() => held.release(), 30);
    const started = Date.now();
    const lock = await locks.acquire('w', { ttl: 1_000, wait: 2_000 });
    assert.ok(lock, 'acquire gave up while the lock was released');
    assert.ok(Date.now() - started >= 25);
    assert.equal(await locks.acquire('w', { ttl: 1_000, wait: 50 }), null);
    await lock.release();
  });

  it('withLock runs the task under the lock and releases it', async () => {
    const store = new MemoryStore();
    const locks = new Locks({ store, retryCount: 0 });
    let seen;
    const result = await locks.withLock('billing', { ttl: 300 }, async (handle) => {
      seen = { fence: handle.fence, resource: handle.resource, lost: handle.isLost() };
      assert.equal(await locks.isLocked('billing'), true);
      // Longer than the TTL: the watchdog keeps extending it.
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(handle.isLost(), false);
      assert.equal(await locks.isLocked('billing'), true);
      return 42;
    });
    assert.equal(result, 42);
    assert.equal(seen.resource, 'billing');
    assert.ok(seen.fence > 0);
    assert.equal(seen.lost, false);
    assert.equal(await locks.isLocked('billing'), false);
    // The task's own error comes back as it is, and the lock is released.
    const mine = new Error('task failed');
    await assert.rejects(locks.withLock('billing', { ttl: 1_000 }, () => Promise.reject(mine)), (e) => e === mine);
    await assert.rejects(locks.withLock('billing', { ttl: 1_000 }, () => {
      throw mine;
    }), (e) => e === mine);
    assert.equal(await locks.isLocked('billing'), false);
    // A held lock: RAMPART_CONFLICT.
    const held = await locks.tryAcquire('billing', { ttl: 5_000 });
    await assert.rejects(locks.withLock('billing', { ttl: 1_000 }, () => 1), (e) => e.code === 'RAMPART_CONFLICT');
    await held.release();
  });
});

describe('Locks over the ioredis adapter', () => {
  let server;
  let client;
  before(async () => {
    server = await startRedis();
    client = new Redis({ host: '127.0.0.1', port: server.port });
  });
  after(async () => {
    await client?.quit();
    await server?.stop();
  });

  it('exactly one of 50 concurrent contenders wins, in one EVALSHA each', async () => {
    const locks = new Locks({ store: ioredisStore(client), prefix: 'lk' });
    await locks.tryAcquire('warm', { ttl: 1_000 }); // loads the script
    await client.config('RESETSTAT');
    const holds = await Promise.all(Array.from({ length: 50 }, () => locks.tryAcquire('hot', { ttl: 10_000 })));
    const winners = holds.filter((h) => h !== null);
    assert.equal(winners.length, 1);
    const stats = await client.info('commandstats');
    assert.match(stats, /cmdstat_evalsha:calls=50,/);
    assert.equal(await winners[0].release(), true);
    const next = await locks.tryAcquire('hot', { ttl: 10_000 });
    assert.ok(next.fence > winners[0].fence);
    await next.release();
  });
});

describe('hostile inputs to Locks', () => {
  const hostile = [undefined, null, NaN, Infinity, -1, 0, 0.5, 2 ** 64, '', 'x'.repeat(1 << 20), {}, [], Symbol('s'), 10n, () => 1, 'zz'];
  it('constructor options are refused with codes', () => {
    const store = new MemoryStore();
    for (const v of hostile) {
      for (const opts of [v, { store: v }, { store, ttl: v }, { store, prefix: v }, { store, retryCount: v }, { store, fenceRetention: v }, { store, scriptTime: v }, { store, clock: v }]) {
        try {
          new Locks(opts);
        } catch (e) {
          assert.ok(e instanceof RampartError, String(e));
          assert.notEqual(e.code, 'RAMPART_PANIC');
        }
      }
    }
  });
  it('every method settles with a code', async () => {
    const { locks } = memory();
    for (const v of hostile) {
      for (const call of [
        () => locks.tryAcquire(v, { ttl: 1 }),
        () => locks.tryAcquire('r', { ttl: v }),
        () => locks.tryAcquire('r', v),
        () => locks.acquire('r', { ttl: 1, wait: v }),
        () => locks.lock(v),
        () => locks.release('r', v),
        () => locks.extend('r', v, { ttl: 1 }),
        () => locks.extend('r', '0'.repeat(32), { ttl: v }),
        () => locks.info(v),
        () => locks.isLocked(v),
        () => locks.withLock('r', { ttl: 1_000 }, v),
        () => locks.withLock(v, { ttl: v }, () => 1),
      ]) {
        const p = call();
        assert.ok(p instanceof Promise);
        await p.catch((e) => {
          assert.ok(e instanceof RampartError, String(e));
          assert.notEqual(e.code, 'RAMPART_PANIC');
        });
        // Free whatever a hostile-but-valid call took.
        await locks.info('r');
      }
      const held = await locks.tryAcquire('r', { ttl: 1 });
      if (held) await held.release();
    }
    assert.equal(fault(), null);
  });
});
