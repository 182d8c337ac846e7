'use strict';
// Sessions end to end: on MemoryStore with a manual clock, and over the
// ioredis and node-redis adapters on a real redis-server; hostile inputs.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const Redis = require('ioredis');
const { createClient } = require('redis');
const { Sessions, RefreshTokens, Denylist, MemoryStore, ManualClock, RampartError, ioredisStore, nodeRedisStore, fault } = require('..');
const { startRedis } = require('../testing/redis-server');

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

function memory(options = {}) {
  const clock = new ManualClock(T0);
  const store = new MemoryStore({ clock });
  return { clock, store, sessions: new Sessions({ store, clock, idleTimeout: HOUR, maxLifetime: 24 * HOUR, ...options }) };
}

/** The flow every store must support. */
async function flow(sessions, user) {
  const login = await sessions.create(user, { cart: [42], admin: false }, { ip: '203.0.113.7', userAgent: 'curl/8' });
  assert.equal(typeof login.id, 'string');
  assert.notEqual(login.id, login.handle);
  const s = await sessions.get(login.id);
  assert.equal(s.userId, user);
  assert.deepEqual(s.data, { cart: [42], admin: false });
  assert.deepEqual(s.meta, { ip: '203.0.113.7', userAgent: 'curl/8' });
  assert.equal(s.handle, login.handle);
  const updated = await sessions.update(login.id, (data) => ({ ...data, admin: true }));
  assert.equal(updated.data.admin, true);
  // Privilege change: a new id, the old one dead.
  const rotated = await sessions.rotate(login.id);
  assert.equal(await sessions.get(login.id), null);
  const current = await sessions.get(rotated);
  assert.deepEqual(current.data, { cart: [42], admin: true });
  assert.notEqual(current.handle, login.handle, 'the handle follows the id');
  const other = await sessions.create(user, 'second device');
  assert.equal(await sessions.count(user), 2);
  const listed = await sessions.list(user);
  assert.deepEqual(listed.map((i) => i.handle).sort(), [current.handle, other.handle].sort());
  assert.equal(listed.find((i) => i.handle === current.handle).meta.ip, '203.0.113.7');
  assert.equal(await sessions.destroyOthers(user, rotated), 1);
  assert.equal(await sessions.get(other.id), null);
  // Password change: log out everywhere; a login that began before fails.
  const generation = await sessions.generation(user);
  assert.equal(await sessions.destroyAll(user), 1);
  assert.equal(await sessions.get(rotated), null);
  await assert.rejects(sessions.create(user, null, { generation }), (e) => e.code === 'RAMPART_CONFLICT');
  const fresh = await sessions.create(user, [1, 'two', { three: 3 }], { generation: await sessions.generation(user) });
  assert.deepEqual((await sessions.get(fresh.id)).data, [1, 'two', { three: 3 }]);
  assert.equal(await sessions.destroyHandle(user, fresh.handle), true);
  assert.equal(await sessions.destroy(fresh.id), false);
}

describe('Sessions on MemoryStore', () => {
  it('the login flow', async () => {
    await flow(memory().sessions, 'alice');
  });

  it('rolling expiry renewed by get, under an absolute cap', async () => {
    const { clock, sessions } = memory();
    const { id } = await sessions.create('bob', { n: 1 });
    for (let i = 0; i < 5; i++) {
      clock.advance(HOUR - 1_000);
      assert.ok(await sessions.get(id), `expired after ${i + 1} renewals`);
    }
    clock.advance(HOUR);
    assert.equal(await sessions.get(id), null, 'idle timeout did not end it');
    const capped = await sessions.create('bob', {});
    for (let i = 0; i < 30; i++) {
      clock.advance(HOUR - 1_000);
      await sessions.get(capped.id);
    }
    assert.equal(await sessions.get(capped.id), null, 'outlived the absolute cap');
  });

  it('caps sessions per user, ending the oldest', async () => {
    const { clock, sessions } = memory({ maxSessionsPerUser: 2 });
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await sessions.create('carol', i)).id);
      clock.advance(1_000);
    }
    assert.equal(await sessions.get(ids[0]), null);
    assert.ok(await sessions.get(ids[2]));
    assert.equal(await sessions.count('carol'), 2);
  });

  it('updates lose nothing under concurrency; a throwing change leaves the data', async () => {
    const { sessions } = memory();
    const { id } = await sessions.create('dave', { n: 0 });
    await Promise.all(Array.from({ length: 50 }, () => sessions.update(id, (d) => ({ n: d.n + 1 }))));
    assert.deepEqual((await sessions.get(id)).data, { n: 50 });
    const mine = new Error('no');
    await assert.rejects(sessions.update(id, () => {
      throw mine;
    }), (e) => e === mine);
    assert.deepEqual((await sessions.get(id)).data, { n: 50 });
    await assert.rejects(sessions.update(id, () => undefined), (e) => e.code === 'RAMPART_INVALID_INPUT');
    await assert.rejects(sessions.update(id, () => 10n), (e) => e.code === 'RAMPART_INVALID_INPUT');
    assert.equal(await sessions.update('not-a-session-id', (d) => d).catch((e) => e.code), 'RAMPART_INVALID_INPUT');
  });
});

describe('RefreshTokens and Denylist on MemoryStore', () => {
  it('rotation spends the token; a reused one revokes the family', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStore({ clock });
    const tokens = new RefreshTokens({ store, clock, idleTimeout: HOUR, maxFamiliesPerUser: 2 });
    const login = await tokens.issue('alice');
    assert.equal(typeof login.token, 'string');
    const next = await tokens.rotate(login.token);
    assert.equal(next.status, 'rotated');
    assert.equal(next.userId, 'alice');
    assert.equal(next.generation, 1);
    // The spent token comes back (stolen): the family dies, even the new token.
    assert.deepEqual(await tokens.rotate(login.token), { status: 'reuse', userId: 'alice' });
    assert.deepEqual(await tokens.rotate(next.token), { status: 'revoked' });
    const other = await tokens.issue('alice');
    assert.equal(await tokens.count('alice'), 1);
    clock.advance(HOUR + 1);
    assert.equal((await tokens.rotate(other.token)).status, 'unknown');
    const a = await tokens.issue('bob');
    await tokens.issue('bob');
    await tokens.issue('bob');
    assert.equal(await tokens.count('bob'), 2);
    assert.notEqual((await tokens.rotate(a.token)).status, 'rotated', 'the oldest family outlived the cap');
    assert.equal(await tokens.revokeAll('bob'), 2);
    await assert.rejects(tokens.rotate('not a token'), (e) => e.code === 'RAMPART_INVALID_INPUT');
  });

  it('the denylist remembers a token until it expires', async () => {
    const clock = new ManualClock(T0);
    const denylist = new Denylist({ store: new MemoryStore({ clock }), clock });
    assert.equal(await denylist.deny('jti-1', T0 + 60_000), true);
    assert.equal(await denylist.deny('jti-old', T0 - 1), false);
    assert.equal(await denylist.isDenied('jti-1'), true);
    assert.equal(await denylist.isDenied('jti-2'), false);
    clock.advance(60_000);
    assert.equal(await denylist.isDenied('jti-1'), false);
    for (const bad of ['', 5, null, 'x'.repeat(1 << 20)]) {
      await assert.rejects(denylist.isDenied(bad), (e) => e instanceof RampartError && e.code !== 'RAMPART_PANIC');
    }
    for (const bad of [NaN, -1, Infinity, '1', 2 ** 60]) {
      await assert.rejects(denylist.deny('jti', bad), (e) => e instanceof RampartError && e.code !== 'RAMPART_PANIC');
    }
  });
});

describe('Sessions over the Redis adapters', () => {
  let server;
  const closers = [];
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    for (const close of closers) await close();
    await server?.stop();
  });

  it('the login flow over ioredis', async () => {
    const client = new Redis({ host: '127.0.0.1', port: server.port });
    closers.push(() => client.quit());
    await flow(new Sessions({ store: ioredisStore(client), namespace: 'io' }), 'alice');
  });

  it('refresh-token reuse detection over ioredis', async () => {
    const client = new Redis({ host: '127.0.0.1', port: server.port });
    closers.push(() => client.quit());
    const tokens = new RefreshTokens({ store: ioredisStore(client) });
    const login = await tokens.issue('alice');
    const next = await tokens.rotate(login.token);
    assert.equal(next.status, 'rotated');
    assert.equal((await tokens.rotate(login.token)).status, 'reuse');
    assert.equal((await tokens.rotate(next.token)).status, 'revoked');
  });

  it('the login flow over node-redis', async () => {
    const client = createClient({ url: server.url });
    await client.connect();
    closers.push(() => client.quit());
    await flow(new Sessions({ store: nodeRedisStore(client), namespace: 'nr' }), 'alice');
  });
});

describe('hostile inputs to Sessions', () => {
  const cyclic = {};
  cyclic.self = cyclic;
  const hostile = [undefined, null, NaN, Infinity, -1, 0, 0.5, 2 ** 64, '', 'x'.repeat(1 << 20), {}, [], Symbol('s'), 10n, () => 1, cyclic, '\uD800'];
  it('constructor options are refused with codes', () => {
    const store = new MemoryStore();
    for (const v of hostile) {
      for (const opts of [v, { store: v }, { store, namespace: v }, { store, idleTimeout: v }, { store, maxLifetime: v }, { store, maxSessionsPerUser: v }, { store, touchInterval: v }, { store, clock: v }]) {
        try {
          new Sessions(opts);
        } catch (e) {
          assert.ok(e instanceof RampartError, String(e));
          assert.notEqual(e.code, 'RAMPART_PANIC');
        }
      }
    }
  });
  it('every method settles with a code', async () => {
    const { sessions } = memory();
    const { id } = await sessions.create('eve', {});
    for (const v of hostile) {
      for (const call of [
        () => sessions.create(v, {}),
        () => sessions.create('eve', v),
        () => sessions.create('eve', {}, v),
        () => sessions.create('eve', {}, { ip: v, userAgent: v, generation: v }),
        () => sessions.get(v),
        () => sessions.update(v, (d) => d),
        () => sessions.update(id, () => v),
        () => sessions.destroy(v),
        () => sessions.rotate(v),
        () => sessions.destroyAll(v),
        () => sessions.destroyOthers(v, v),
        () => sessions.destroyHandle('eve', v),
        () => sessions.list(v),
        () => sessions.count(v),
        () => sessions.generation(v),
      ]) {
        const p = call();
        assert.ok(p instanceof Promise);
        await p.catch((e) => {
          assert.ok(e instanceof RampartError, String(e));
          assert.notEqual(e.code, 'RAMPART_PANIC');
        });
      }
    }
    assert.equal(fault(), null);
  });
});
