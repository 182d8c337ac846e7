'use strict';
// Hostile JavaScript values thrown at every export: each async method must
// return a promise (never throw), and a failure must be a RampartError
// with a stable code — never a panic, which would poison the module.
// Synchronous constructors and methods throw RampartErrors.

const assert = require('node:assert/strict');
const { describe, it, after } = require('node:test');
const rampart = require('..');

const { MemoryStore, ManualClock, Store, RampartError, ERROR_CODES, fault } = rampart;

const throwingProxy = new Proxy(
  {},
  {
    get() {
      throw new Error('hostile getter');
    },
  },
);

/** A Proxy revoked at once: Array.isArray, and every trap, throw on it. */
const revokedProxy = (() => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
})();

/** Values no argument should choke on. */
const HOSTILE = [
  undefined,
  null,
  NaN,
  Infinity,
  -Infinity,
  -1,
  -0,
  0,
  0.5,
  2 ** 53,
  2 ** 64,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  '',
  ' ',
  '\uD800', // a lone surrogate
  'x'.repeat(1024 * 1024), // a 1 MB string
  'é'.repeat(600), // over the key limit in UTF-8 bytes, not in characters
  {},
  [],
  [1, 2, 3],
  Object.create(null),
  throwingProxy,
  revokedProxy,
  Symbol('s'),
  10n,
  -(2n ** 70n),
  () => 1,
  new Uint8Array(0),
  Buffer.from('buffer'),
  new Date(0),
  Promise.resolve(1),
];

const describeValue = (v) => {
  try {
    if (typeof v === 'string') return v.length > 20 ? `string(${v.length})` : JSON.stringify(v);
    if (typeof v === 'symbol' || typeof v === 'bigint') return String(v) + (typeof v === 'bigint' ? 'n' : '');
    if (typeof v === 'function') return 'function';
    if (v === throwingProxy) return 'throwing proxy';
    if (v === revokedProxy) return 'revoked proxy';
    if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
    return String(v);
  } catch {
    return typeof v;
  }
};

/** Calls `fn`; asserts it returned a promise that settles well. */
async function settlesWell(label, fn) {
  let p;
  try {
    p = fn();
  } catch (e) {
    assert.fail(`${label} threw synchronously instead of rejecting: ${e}`);
  }
  assert.ok(p instanceof Promise, `${label} did not return a promise`);
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RampartError, `${label} rejected with a non-RampartError: ${e}`);
    assert.ok(ERROR_CODES.includes(e.code), `${label}: unknown code ${e.code}`);
    assert.notEqual(e.code, 'RAMPART_PANIC', `${label} panicked: ${e.message}`);
    assert.equal(typeof e.message, 'string');
    assert.equal(typeof e.temporary, 'boolean');
  }
}

/** A store method and valid arguments for it. */
function methods(k) {
  return {
    get: [k],
    set: [k, 'v', { ttl: 1000 }],
    delete: [k],
    ttl: [k],
    compareAndSwap: [k, null, 'v', { ttl: 1000 }],
    scan: ['tk:', { cursor: null, count: 10 }],
    update: [k, () => ({ set: 'v' })],
    setIfAbsent: [k, 'v', { ttl: 1000 }],
    deleteIfEqual: [k, 'v'],
    expireIfEqual: [k, 'v', { ttl: 1000 }],
    increment: [`${k}:n`, 1, { ttlIfCreated: 1000 }],
    getMany: [[k, `${k}:2`]],
    deleteMany: [[`${k}:3`]],
    publish: [k, 'm'],
    subscribe: [k, () => {}],
    stats: [],
    serverTime: [],
  };
}

function storesUnderTest() {
  const clock = new ManualClock(1_700_000_000_000);
  const memory = new MemoryStore({ clock, maxEntries: 1000 });
  // A JavaScript store adapter over a Map: exercises the JsStore path.
  const map = new Map();
  const adapter = {
    async get(key) {
      return map.get(key) ?? null;
    },
    async set(key, value) {
      map.set(key, Buffer.from(value));
    },
    async delete(key) {
      return map.delete(key);
    },
    async ttl(key) {
      return map.has(key) ? Infinity : null;
    },
    async compareAndSwap(key, expected, value) {
      const current = map.get(key) ?? null;
      const same = current === null ? expected === null : expected !== null && current.equals(Buffer.from(expected));
      if (!same) return { swapped: false, current };
      if (value === null) map.delete(key);
      else map.set(key, Buffer.from(value));
      return { swapped: true };
    },
    async scan(prefix) {
      return { keys: [...map.keys()].filter((k) => k.startsWith(prefix)), cursor: null };
    },
  };
  return { memory, adapter: Store.fromAdapter(adapter) };
}

describe('hostile arguments to every Store method', () => {
  const stores = storesUnderTest();
  for (const [storeName, store] of Object.entries(stores)) {
    for (const [method, valid] of Object.entries(methods(`tk:hostile:${storeName}`))) {
      it(`${storeName}.${method}`, async () => {
        // Every argument position, and one past the end, gets every value.
        for (let position = 0; position <= valid.length; position++) {
          for (const value of HOSTILE) {
            const args = [...valid];
            args[position] = value;
            await settlesWell(`${storeName}.${method}(#${position} = ${describeValue(value)})`, () =>
              store[method](...args),
            );
          }
        }
        // Option objects with hostile fields.
        for (const value of HOSTILE) {
          const args = valid.map((a) =>
            a !== null && typeof a === 'object' && !Array.isArray(a)
              ? { ttl: value, cursor: value, count: value, ttlIfCreated: value }
              : a,
          );
          await settlesWell(`${storeName}.${method}(options = ${describeValue(value)})`, () => store[method](...args));
        }
      });
    }
  }

  it('update callbacks returning hostile changes', async () => {
    const { memory, adapter } = storesUnderTest();
    for (const store of [memory, adapter]) {
      for (const value of HOSTILE) {
        const changes = [value, { set: value }, { setKeepTtl: value }, { set: 'v', ttl: value }, { remove: value }, { keep: value }];
        for (const change of changes) {
          await settlesWell(`update -> ${describeValue(change)}`, () => store.update('tk:hostile:cb', () => change));
        }
      }
      // A callback that calls back into rampart is refused (the memory
      // store holds its lock while the callback runs), not deadlocked.
      let inner;
      const outcome = await store.update('tk:hostile:cb', () => {
        inner = store.get('tk:hostile:cb');
        return { keep: true };
      });
      assert.equal(outcome.changed, false);
      await assert.rejects(inner, (e) => e instanceof RampartError && e.code === 'RAMPART_INVALID_INPUT');
    }
  });
});

describe('hostile arguments to synchronous exports', () => {
  const throwsCoded = (label, fn) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof RampartError, `${label} threw a non-RampartError: ${e}`);
      assert.ok(ERROR_CODES.includes(e.code) && e.code !== 'RAMPART_PANIC', `${label}: ${e.code}`);
    }
  };

  it('MemoryStore options', () => {
    for (const value of HOSTILE) {
      throwsCoded(`new MemoryStore(${describeValue(value)})`, () => new MemoryStore(value));
      throwsCoded(`maxEntries ${describeValue(value)}`, () => new MemoryStore({ maxEntries: value }));
      throwsCoded(`clock ${describeValue(value)}`, () => new MemoryStore({ clock: value }));
    }
  });

  it('ManualClock', () => {
    const clock = new ManualClock(0);
    for (const value of HOSTILE) {
      throwsCoded(`new ManualClock(${describeValue(value)})`, () => new ManualClock(value));
      throwsCoded(`advance(${describeValue(value)})`, () => clock.advance(value));
      throwsCoded(`set(${describeValue(value)})`, () => clock.set(value));
    }
    assert.equal(typeof clock.now(), 'number');
  });

  it('Store.fromAdapter', () => {
    for (const value of HOSTILE) {
      throwsCoded(`fromAdapter(${describeValue(value)})`, () => Store.fromAdapter(value));
      const partial = { get: value, set() {}, delete() {}, ttl() {}, compareAndSwap() {}, scan() {}, eval: value };
      throwsCoded(`fromAdapter(methods = ${describeValue(value)})`, () => Store.fromAdapter(partial));
    }
  });
});

describe('hostile store adapters', () => {
  /** An adapter whose every method answers `answer` (or throws it). */
  const adapterAnswering = (answer, mode) => {
    const method = () => {
      if (mode === 'throw') throw answer;
      if (mode === 'reject') return Promise.reject(answer);
      return mode === 'sync' ? answer : Promise.resolve(answer);
    };
    return Object.fromEntries(
      ['get', 'set', 'delete', 'ttl', 'compareAndSwap', 'scan', 'eval', 'publish', 'time', 'setIfAbsent', 'deleteIfEqual', 'expireIfEqual', 'increment', 'getMany', 'deleteMany', 'stats'].map(
        (name) => [name, method],
      ),
    );
  };
  const cyclic = [];
  cyclic.push(cyclic);
  const answers = [
    // (The throwing proxy too: rejected with, its reading once threw
    // through the module and shut it down.)
    ...HOSTILE,
    { toString: () => { throw new Error('hostile toString'); } },
    cyclic,
    { swapped: 'yes' },
    { keys: 'not an array', cursor: 5 },
    { keys: [1, 2], cursor: null },
    { keys: ['ok'], cursor: {} },
    new Error('plain error'),
    Object.assign(new Error('coded'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('RAMPART_CORRUPT_DATA state'), {}),
  ];

  it('every answer becomes a value or a coded rejection', async () => {
    for (const answer of answers) {
      for (const mode of ['resolve', 'sync', 'reject', 'throw']) {
        const store = Store.fromAdapter(adapterAnswering(answer, mode));
        for (const [method, args] of Object.entries(methods('tk:hostile:adapter'))) {
          await settlesWell(`${method} over an adapter that ${mode}s ${describeValue(answer)}`, () => store[method](...args));
        }
      }
    }
  });
});

describe('hostile messages from a store adapter', () => {
  it('a message that only passes for a Uint8Array is dropped; the next is delivered', async () => {
    let deliver;
    const adapter = {
      get() {}, set() {}, delete() {}, ttl() {}, compareAndSwap() {}, scan() {},
      async publish() {},
      async subscribe(channel, onMessage) {
        deliver = onMessage;
        return () => {};
      },
    };
    const store = Store.fromAdapter(adapter);
    const got = [];
    const sub = await store.subscribe('tk:hostile:channel', (m) => got.push(m.toString()));
    class Sly extends Uint8Array {
      get length() {
        throw new Error('hostile length');
      }
    }
    const hostile = [
      Object.create(Uint8Array.prototype),
      new Proxy(new Uint8Array(2), {}),
      throwingProxy,
      revokedProxy,
      { toString: () => { throw new Error('hostile toString'); } },
    ];
    for (const m of hostile) assert.doesNotThrow(() => deliver(m));
    deliver(new Sly([104, 105]));
    deliver(Buffer.from('ok'));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, ['hi', 'ok']);
    sub.close();
    assert.equal(fault(), null);
  });
});

describe('hostile script replies', () => {
  // A reply of safe integers is read in one call (src/runtime.rs
  // safe_integers); anything else, item by item. Either way: a decision or
  // a coded rejection, never a panic.
  const throwing = [1, 2, 3];
  Object.defineProperty(throwing, 1, {
    get() {
      throw new Error('hostile item');
    },
  });
  const replies = [
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, 0],
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, 0.5],
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, 2 ** 53],
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, -0],
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, NaN],
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, '0'],
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, Buffer.from('0')],
    [1, 1_700_000_000_000_000, 0, 5, 60_000_000, -1],
    Array.from({ length: 63 }, () => 1),
    Array.from({ length: 64 }, () => 1),
    Array.from({ length: 100_000 }, () => 1),
    new Proxy([1, 2, 3], {}),
    throwing,
    [],
  ];
  it('every reply becomes a decision or a coded rejection', async () => {
    for (const reply of replies) {
      const adapter = {
        get() {}, set() {}, delete() {}, ttl() {}, compareAndSwap() {}, scan() {},
        eval: () => Promise.resolve(reply),
      };
      const limiter = new rampart.RateLimiter({ store: Store.fromAdapter(adapter), algorithm: 'fixed-window', limit: 10, window: 60_000 });
      await settlesWell(`eval -> ${describeValue(reply)}`, () => limiter.consume('k'));
    }
    const ok = { get() {}, set() {}, delete() {}, ttl() {}, compareAndSwap() {}, scan() {}, eval: () => Promise.resolve(replies[0]) };
    const d = await new rampart.RateLimiter({ store: Store.fromAdapter(ok), algorithm: 'fixed-window', limit: 10, window: 60_000 }).consume('k');
    assert.equal(d.allowed, true);
    assert.equal(d.remaining, 5);
  });
});

describe('seeded random calls', () => {
  it('2000 random calls with random hostile arguments', async () => {
    let seed = 0x5eed;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = (xs) => xs[Math.floor(random() * xs.length)];
    const { memory, adapter } = storesUnderTest();
    const names = Object.keys(methods('k'));
    const pool = [...HOSTILE, 'tk:rand:a', 'tk:rand:b', 'v', { ttl: 5 }, { count: 3 }, 1, 7, ['tk:rand:a']];
    for (let i = 0; i < 2000; i++) {
      const store = random() < 0.5 ? memory : adapter;
      const method = pick(names);
      const args = Array.from({ length: Math.floor(random() * 4) }, () => pick(pool));
      await settlesWell(`#${i} ${method}(${args.map(describeValue).join(', ')})`, () => store[method](...args));
    }
  });
});

describe('hostile arguments to RateLimiter.consume', () => {
  // On a MemoryStore the limiter decides synchronously (no task: the
  // figures come back during the call, keys in a scratch buffer when short
  // and ASCII); on a store adapter it runs the async path. Both must settle
  // every input alike: same code, same message.
  const inProcess = (limiter) =>
    limiter[Object.getOwnPropertySymbols(limiter).find((s) => s.description === 'rampart.limiter.inProcess')];
  const KEYS = [
    ...HOSTILE,
    'k',
    'é',
    'ключ',
    '\u{1F600}',
    'a\uD800b',
    '\0',
    'x'.repeat(1023),
    'x'.repeat(1024),
    'x'.repeat(1025),
    'é'.repeat(512),
  ];
  const COSTS = [...HOSTILE, 1, 2, 9];
  const outcome = async (p) => {
    assert.ok(p instanceof Promise);
    try {
      const d = await p;
      return `resolved ${Object.keys(d).join(',')}`;
    } catch (e) {
      assert.ok(e instanceof RampartError, `rejected with a non-RampartError: ${e}`);
      assert.ok(ERROR_CODES.includes(e.code) && e.code !== 'RAMPART_PANIC', e.code);
      return `${e.code}: ${e.message}`;
    }
  };

  for (const prefix of [undefined, 'p']) {
    it(`synchronous and async paths agree on every key and cost (prefix ${prefix})`, async () => {
      const { memory, adapter } = storesUnderTest();
      const rule = { algorithm: 'fixed-window', limit: 10, window: 60_000, prefix };
      const sync = new rampart.RateLimiter({ store: memory, ...rule });
      const later = new rampart.RateLimiter({ store: adapter, ...rule });
      assert.equal(inProcess(sync), true);
      assert.equal(inProcess(later), false);
      for (const key of KEYS) {
        for (const cost of [1, 'hostile']) {
          const costs = cost === 'hostile' ? COSTS : [cost];
          for (const c of costs) {
            const label = `consume(${describeValue(key)}, ${describeValue(c)})`;
            const a = await outcome(sync.consume(key, c));
            const b = await outcome(later.consume(key, c));
            assert.equal(a, b, label);
          }
        }
      }
    });
  }

  // Header options, hostile or not, each with a key and cost from above:
  // read in JavaScript, then the key, the cost and the options are checked
  // by the module in that order on both paths.
  const throwingGetter = (name) => Object.defineProperty({ headers: 'draft-8' }, name, {
    get() {
      throw new Error('hostile getter');
    },
    enumerable: true,
  });
  const HEADER_OPTIONS = [
    ...HOSTILE,
    { headers: 'draft-8' },
    { headers: 'draft-7' },
    { headers: 'draft-6' },
    { headers: 'legacy' },
    { headers: false },
    { headers: 'draft-9' },
    { headers: 8 },
    { headers: {} },
    { headers: throwingProxy },
    { headers: 'draft-8', names: ['api', 'x"y\\', 'é\n\0', 'n'.repeat(256)] },
    { headers: 'draft-8', names: ['n'.repeat(257)] },
    { headers: 'draft-8', names: [1] },
    { headers: 'draft-8', names: 'api' },
    { headers: 'draft-8', names: [throwingProxy] },
    { headers: 'draft-8', names: throwingProxy },
    { headers: 'draft-8', names: revokedProxy },
    { headers: 'draft-8', names: new Array(100_000).fill('n') },
    { headers: 'draft-8', partitionKey: 'é\n' },
    { headers: 'draft-8', partitionKey: '\uD800' },
    { headers: 'draft-8', partitionKey: 'p'.repeat(1025) },
    { headers: 'draft-8', partitionKey: 7 },
    { headers: 'legacy', partitionKey: throwingProxy, names: [revokedProxy] },
    throwingGetter('headers'),
    throwingGetter('names'),
    throwingGetter('partitionKey'),
    new Proxy({ headers: 'draft-8' }, { get: (t, p) => (p === 'names' ? revokedProxy : t[p]) }),
  ];
  /** The names of the headers a resolved decision carries for `opts`. */
  const headerNames = (d, opts) => {
    try {
      const style = opts?.headers;
      if (typeof style !== 'string' || !['draft-8', 'draft-7', 'draft-6', 'legacy'].includes(style)) return '';
      return d.headers(style, { names: opts.names, partitionKey: opts.partitionKey }).map(([name]) => name).join(',');
    } catch (e) {
      return `headers() threw ${e.code}`;
    }
  };

  it('synchronous and async paths agree on every key, cost and header options', async () => {
    const { memory, adapter } = storesUnderTest();
    // A limit no call reaches: no denial (no Retry-After) on either side.
    const rule = { algorithm: 'fixed-window', limit: 1_000_000, window: 60_000, prefix: 'h' };
    const sync = new rampart.RateLimiter({ store: memory, ...rule });
    const later = new rampart.RateLimiter({ store: adapter, ...rule });
    assert.equal(inProcess(sync), true);
    assert.equal(inProcess(later), false);
    const cases = [];
    for (const opts of HEADER_OPTIONS) {
      for (const key of ['k', 'é', '', 'x'.repeat(1025), '\0', 'a\uD800b', 7]) cases.push([key, 1, opts]);
      for (const cost of [0, -1, 0.5, NaN, 2 ** 53, '1', undefined]) cases.push(['k', cost, opts]);
    }
    for (const key of KEYS) cases.push([key, 1, { headers: 'draft-8', names: ['n'], partitionKey: key }]);
    for (const [key, cost, opts] of cases) {
      const label = `consume(${describeValue(key)}, ${describeValue(cost)}, ${describeValue(opts)} #${HEADER_OPTIONS.indexOf(opts)})`;
      const pa = sync.consume(key, cost, opts);
      const pb = later.consume(key, cost, opts);
      const a = await outcome(pa);
      const b = await outcome(pb);
      assert.equal(a, b, label);
      if (a.startsWith('resolved')) assert.equal(headerNames(await pa, opts), headerNames(await pb, opts), label);
    }
    // Both limiters still decide, with headers.
    for (const limiter of [sync, later]) {
      const d = await limiter.consume('k', 1, { headers: 'draft-8', names: ['api'] });
      assert.match(d.headers('draft-8', { names: ['api'] })[1][1], /^"api"; r=\d+; t=\d+$/);
    }
  });

  it('an in-process limiter insured by an adapter, or on one, takes the async path', () => {
    const { memory, adapter } = storesUnderTest();
    const rule = { algorithm: 'fixed-window', limit: 10, window: 60_000 };
    assert.equal(inProcess(new rampart.RateLimiter({ store: memory, ...rule, onStoreError: { insurance: adapter } })), false);
    assert.equal(inProcess(new rampart.RateLimiter({ store: adapter, ...rule, onStoreError: { insurance: memory } })), false);
    assert.equal(inProcess(new rampart.RateLimiter({ store: memory, ...rule, onStoreError: { insurance: new MemoryStore() } })), true);
    assert.equal(inProcess(rampart.RateLimiter.preset('api', { store: memory, env: {} })), true);
  });

  it('a synchronous decision from inside an update callback is refused, not deadlocked', async () => {
    const { memory } = storesUnderTest();
    const limiter = new rampart.RateLimiter({ store: memory, limit: 10, window: 60_000 });
    let inner;
    const outcomeOf = await memory.update('tk:hostile:limiter', () => {
      inner = limiter.consume('tk:hostile:limiter');
      return { keep: true };
    });
    assert.equal(outcomeOf.changed, false);
    await assert.rejects(inner, (e) => e instanceof RampartError && e.code === 'RAMPART_INVALID_INPUT');
    // And the limiter still decides afterwards.
    assert.equal((await limiter.consume('tk:hostile:limiter')).allowed, true);
  });
});

describe('hostile arguments to Cache', () => {
  const cacheMethods = (k) => ({
    get: [k],
    set: [k, { v: 1 }, { ttl: 1000, tags: ['t'] }],
    getOrSet: [k, async () => ({ v: 2 }), { ttl: 1000, tags: ['t'] }],
    delete: [k],
    invalidateTag: ['t'],
    invalidatePrefix: ['tk:'],
  });

  it('every method, every argument', async () => {
    const { memory, adapter } = storesUnderTest();
    for (const [storeName, store] of [['memory', memory], ['adapter', adapter]]) {
      const cache = new rampart.Cache({ store, namespace: 'hostile', defaultTtl: 60_000 });
      for (const [method, args] of Object.entries(cacheMethods('tk:cache'))) {
        for (let position = 0; position < args.length; position++) {
          for (const value of HOSTILE) {
            const bad = [...args];
            bad[position] = value;
            await settlesWell(`${storeName} cache.${method}(#${position} = ${describeValue(value)})`, () => cache[method](...bad));
          }
        }
        const last = args[args.length - 1];
        if (last !== null && typeof last === 'object' && !Array.isArray(last)) {
          for (const name of Object.keys(last)) {
            for (const value of HOSTILE) {
              const bad = [...args];
              bad[args.length - 1] = { ...last, [name]: value };
              await settlesWell(`${storeName} cache.${method}(${name} = ${describeValue(value)})`, () => cache[method](...bad));
            }
          }
        }
      }
      for (const value of HOSTILE) {
        await settlesWell(`cache.set(tags = [${describeValue(value)}])`, () => cache.set('k', 1, { tags: [value] }));
        // (A promise resolved with the throwing or the revoked proxy rejects
        // with the proxy's own error, reading its `then`: the loader's errors
        // reach its caller as thrown.)
        if (value === throwingProxy || value === revokedProxy) continue;
        await settlesWell(`getOrSet loader -> ${describeValue(value)}`, () => cache.getOrSet(`tk:l:${HOSTILE.indexOf(value)}`, async () => value));
      }
      await settlesWell('cache.set(too many tags)', () => cache.set('k', 1, { tags: Array.from({ length: 10_000 }, (_, i) => `t${i}`) }));
      assert.equal(typeof cache.stats().hits, 'number');
    }
  });

  it('Cache options', () => {
    const store = new MemoryStore();
    for (const value of HOSTILE) {
      for (const build of [
        () => new rampart.Cache(value),
        () => new rampart.Cache({ store: value }),
        () => new rampart.Cache({ store, namespace: value }),
        () => new rampart.Cache({ store, defaultTtl: value }),
        () => new rampart.Cache({ store, staleWhileRevalidate: value }),
        () => new rampart.Cache({ store, clock: value }),
      ]) {
        try {
          build();
        } catch (e) {
          assert.ok(e instanceof RampartError, `Cache options ${describeValue(value)} threw a non-RampartError: ${e}`);
          assert.ok(ERROR_CODES.includes(e.code) && e.code !== 'RAMPART_PANIC', `${describeValue(value)}: ${e.code}`);
        }
      }
    }
  });
});

describe('throwing getters and proxies inside array and object arguments', () => {
  // The module reads these arguments through JavaScript calls; an exception
  // there would unwind straight through its frames, skipping their cleanup:
  // the handle's borrow (`&self`) stays taken, the call's shadow stack is
  // never given back, and a MemoryStore update left its lock held. Each must
  // instead be a coded RampartError, and the same handle must keep working.
  const boom = () => {
    throw new Error('hostile');
  };
  const revoked = (target) => {
    const r = Proxy.revocable(target, {});
    r.revoke();
    return r.proxy;
  };
  /** Arrays holding `items` (at least one) that throw when read. */
  const throwingArrays = (items) => [
    ['a proxy whose length throws', new Proxy([...items], { get: (t, p, r) => (p === 'length' ? boom() : Reflect.get(t, p, r)) })],
    ['an array whose item getter throws', Object.defineProperty([...items], 0, { get: boom })],
    ['a proxy whose item trap throws', new Proxy([...items], { get: (t, p, r) => (p === '0' ? boom() : Reflect.get(t, p, r)) })],
    ['a proxy whose every trap throws', new Proxy([...items], { get: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom, getPrototypeOf: boom })],
    ['a revoked proxy over an array', revoked([...items])],
  ];
  /** Values that pass for a Uint8Array and throw when read as one. */
  const fakeBytes = () => [
    ['an object on Uint8Array.prototype', Object.create(Uint8Array.prototype)],
    ['a proxy over a Uint8Array', new Proxy(new Uint8Array([1, 2]), {})],
    ['a proxy claiming Uint8Array.prototype', new Proxy({}, { getPrototypeOf: () => Uint8Array.prototype, get: boom })],
    ['a revoked proxy', revoked(new Uint8Array(2))],
  ];
  const codedAs = async (label, p, code = 'RAMPART_INVALID_INPUT') => {
    assert.ok(p instanceof Promise, `${label}: no promise`);
    await assert.rejects(p, (e) => {
      assert.ok(e instanceof RampartError, `${label} rejected with a non-RampartError: ${e}`);
      assert.equal(e.code, code, `${label}: ${e.code} ${e.message}`);
      return true;
    });
  };
  const throwsCoded = (label, fn, code = 'RAMPART_INVALID_INPUT') => {
    assert.throws(fn, (e) => {
      assert.ok(e instanceof RampartError, `${label} threw a non-RampartError: ${e}`);
      assert.equal(e.code, code, `${label}: ${e.code} ${e.message}`);
      return true;
    });
  };
  /** The WebAssembly handle inside a wrapper (its symbol's description). */
  const handleOf = (wrapper, description) =>
    wrapper[Object.getOwnPropertySymbols(wrapper).find((s) => s.description === description)];
  /**
   * Frees the handle: wasm-bindgen refuses ("while it was borrowed") when a
   * call's borrow of it leaked.
   */
  const freesCleanly = (wrapper, description) => {
    assert.doesNotThrow(() => handleOf(wrapper, description).free());
  };

  it('Store.getMany and deleteMany', async () => {
    for (const [storeName, store] of Object.entries(storesUnderTest())) {
      await store.set('tk:args:a', 'A');
      for (const [label, keys] of throwingArrays(['tk:args:a', 'tk:args:b'])) {
        await codedAs(`${storeName}.getMany(${label})`, store.getMany(keys));
        await codedAs(`${storeName}.deleteMany(${label})`, store.deleteMany(keys));
        assert.deepEqual(await store.getMany(['tk:args:a', 'tk:args:b']), [Buffer.from('A'), null], `${storeName} after ${label}`);
      }
      // A proxy over an array may claim any length: past the module's limit
      // it is refused without an item being read; a length that no array
      // can have is refused as such.
      const claiming = (length) =>
        new Proxy([], { get: (t, p, r) => (p === 'length' ? length : typeof p === 'string' && /^\d+$/.test(p) ? boom() : Reflect.get(t, p, r)) });
      await assert.rejects(store.getMany(claiming(200_000)), (e) => e.code === 'RAMPART_INVALID_INPUT' && /at most 100000 keys/.test(e.message));
      await assert.rejects(store.getMany(claiming(2 ** 32 - 1)), (e) => e.code === 'RAMPART_INVALID_INPUT' && /at most 100000 keys/.test(e.message));
      for (const length of [-1, 1.5, 2 ** 32, '2', NaN, {}]) {
        await codedAs(`${storeName}.getMany(claiming length ${String(length)})`, store.getMany(claiming(length)));
      }
      // Read by index, as documented: an array's iterator is never consulted.
      const noIterator = ['tk:args:a'];
      Object.defineProperty(noIterator, Symbol.iterator, { get: boom });
      assert.deepEqual(await store.getMany(noIterator), [Buffer.from('A')]);
      assert.equal(await store.deleteMany(noIterator), 1);
    }
    const store = new MemoryStore();
    for (const [, keys] of throwingArrays(['k'])) await store.getMany(keys).catch(() => {});
    freesCleanly(store, 'rampart.inner');
  });

  it('thousands of throwing arguments leave the module whole', async () => {
    // Each exception that unwound through the module kept its shadow stack:
    // some 1800 of them exhausted it and trapped the instance.
    const store = new MemoryStore();
    const [, keys] = throwingArrays(['k'])[0];
    for (let i = 0; i < 5000; i++) {
      await codedAs('getMany', store.getMany(keys));
    }
    assert.equal(fault(), null);
    await store.set('tk:args:many', 'ok');
    assert.deepEqual(await store.get('tk:args:many'), Buffer.from('ok'));
  });

  it('Store byte values that pass for Uint8Arrays', async () => {
    for (const [storeName, store] of Object.entries(storesUnderTest())) {
      for (const [label, v] of fakeBytes()) {
        const k = `tk:args:bytes:${storeName}`;
        await codedAs(`${storeName}.set(${label})`, store.set(k, v));
        await codedAs(`${storeName}.compareAndSwap(expected = ${label})`, store.compareAndSwap(k, v, 'x'));
        await codedAs(`${storeName}.compareAndSwap(value = ${label})`, store.compareAndSwap(k, null, v));
        await codedAs(`${storeName}.setIfAbsent(${label})`, store.setIfAbsent(k, v));
        await codedAs(`${storeName}.deleteIfEqual(${label})`, store.deleteIfEqual(k, v));
        await codedAs(`${storeName}.expireIfEqual(${label})`, store.expireIfEqual(k, v, { ttl: 1000 }));
        await codedAs(`${storeName}.publish(${label})`, store.publish(k, v));
        await store.set(k, 'fine');
        assert.deepEqual(await store.get(k), Buffer.from('fine'), `${storeName} after ${label}`);
      }
      // A genuine Uint8Array is read through the intrinsic accessors: its
      // own or inherited getters that throw are never called.
      class Sly extends Uint8Array {
        get length() {
          return boom();
        }
      }
      const own = Object.defineProperty(new Uint8Array([3, 4]), 'length', { get: boom });
      for (const v of [new Sly([1, 2]), own]) {
        await store.set('tk:args:sly', v);
        assert.deepEqual(await store.get('tk:args:sly'), Buffer.from(v.buffer));
      }
    }
    const store = new MemoryStore();
    for (const [, v] of fakeBytes()) await store.set('k', v).catch(() => {});
    freesCleanly(store, 'rampart.inner');
  });

  it('Store.update changes with throwing getters or fake bytes', async () => {
    for (const [storeName, store] of Object.entries(storesUnderTest())) {
      const k = `tk:args:update:${storeName}`;
      const changes = [
        ['a throwing set getter', { get set() {
          return boom();
        } }],
        ['a throwing ttl getter', { set: 'v', get ttl() {
          return boom();
        } }],
        ['a throwing keep getter', { get keep() {
          return boom();
        } }],
        ['a proxy whose every trap throws', new Proxy({}, { get: boom, has: boom, getPrototypeOf: boom })],
        ['a revoked proxy', revoked({})],
        ...fakeBytes().flatMap(([label, v]) => [
          [`set: ${label}`, { set: v }],
          [`setKeepTtl: ${label}`, { setKeepTtl: v }],
        ]),
      ];
      for (const [label, change] of changes) {
        await codedAs(`${storeName}.update -> ${label}`, store.update(k, () => change));
        // The memory store's lock was released, and the handle works.
        const done = await store.update(k, () => ({ set: 'after' }));
        assert.equal(done.changed, true, `${storeName} after ${label}`);
        assert.deepEqual(await store.get(k), Buffer.from('after'));
      }
    }
  });

  it('Cache tags', async () => {
    for (const [storeName, store] of Object.entries(storesUnderTest())) {
      const cache = new rampart.Cache({ store, namespace: 'args' });
      for (const [label, tags] of throwingArrays(['t'])) {
        await codedAs(`${storeName} cache.set(tags = ${label})`, cache.set('k', 1, { tags }));
        await codedAs(`${storeName} cache.getOrSet(tags = ${label})`, cache.getOrSet('k2', async () => 2, { tags }));
        await cache.set('k', 3, { tags: ['t'] });
        assert.equal(await cache.get('k'), 3, `${storeName} after ${label}`);
      }
      await codedAs('a throwing tags getter', cache.set('k', 1, { get tags() {
        return boom();
      } }));
      const noIterator = ['t'];
      Object.defineProperty(noIterator, Symbol.iterator, { get: boom });
      await cache.set('k', 4, { tags: noIterator });
      await cache.invalidateTag('t');
      assert.equal(await cache.get('k'), null);
    }
    const cache = new rampart.Cache({ store: new MemoryStore() });
    for (const [, tags] of throwingArrays(['t'])) await cache.set('k', 1, { tags }).catch(() => {});
    freesCleanly(cache, 'rampart.cache');
  });

  it('RateLimiter header names', async () => {
    for (const [storeName, store] of Object.entries(storesUnderTest())) {
      const limiter = new rampart.RateLimiter({ store, limit: 100, window: 60_000 });
      for (const [label, names] of throwingArrays(['per-minute'])) {
        await codedAs(`${storeName} consume(names = ${label})`, limiter.consume('k', 1, { headers: 'draft-8', names }));
        const d = await limiter.consume('k', 1, { headers: 'draft-8', names: ['per-minute'] });
        assert.equal(d.allowed, true, `${storeName} after ${label}`);
        assert.match(d.headers('draft-8', { names: ['per-minute'] })[0][1], /per-minute/);
      }
      await codedAs('a throwing names getter', limiter.consume('k', 1, { headers: 'draft-8', get names() {
        return boom();
      } }));
      await codedAs('names as a revoked proxy', limiter.consume('k', 1, { headers: 'draft-8', names: revoked({}) }));
      assert.equal((await limiter.consume('k')).allowed, true);
    }
    const limiter = new rampart.RateLimiter({ store: new MemoryStore(), limit: 100, window: 60_000 });
    for (const [, names] of throwingArrays(['n'])) await limiter.consume('k', 1, { headers: 'draft-8', names }).catch(() => {});
    freesCleanly(limiter, 'rampart.limiter');
  });

  it('RateLimiter quotas', async () => {
    const store = new MemoryStore();
    for (const [label, quotas] of throwingArrays([{ limit: 5, window: 1000 }])) {
      throwsCoded(`quotas = ${label}`, () => new rampart.RateLimiter({ store, quotas }));
    }
    const quota = { window: 1000, get limit() {
      return boom();
    } };
    throwsCoded('a quota with a throwing getter', () => new rampart.RateLimiter({ store, quotas: [quota] }), 'RAMPART_CONFIG');
    throwsCoded('a revoked quota', () => new rampart.RateLimiter({ store, quotas: [revoked({})] }), 'RAMPART_CONFIG');
    // The store they were all built on is intact.
    const limiter = new rampart.RateLimiter({ store, quotas: [{ limit: 5, window: 1000 }] });
    assert.equal((await limiter.consume('k')).allowed, true);
    freesCleanly(store, 'rampart.inner');
  });

  it('option objects of every constructor', async () => {
    // Read field by field, by the wrappers (lib/options.js) or by the module
    // through a Reflect.get that catches: every throw is a coded error.
    const store = new MemoryStore();
    const builds = {
      Cache: [(o) => new rampart.Cache(o), ['namespace', 'defaultTtl', 'staleWhileRevalidate', 'clock']],
      Locks: [(o) => new rampart.Locks(o), ['prefix', 'ttl', 'retryCount', 'retryDelay', 'retryJitter', 'fenceRetention', 'watchdogInterval', 'scriptTime', 'clock']],
      Sessions: [(o) => new rampart.Sessions(o), ['namespace', 'idleTimeout', 'maxLifetime', 'maxSessionsPerUser', 'touchInterval', 'scriptTime', 'clock']],
      RefreshTokens: [(o) => new rampart.RefreshTokens(o), ['namespace', 'idleTimeout', 'maxLifetime', 'maxFamiliesPerUser', 'scriptTime', 'clock']],
      Denylist: [(o) => new rampart.Denylist(o), ['namespace', 'clock']],
      RateLimiter: [(o) => new rampart.RateLimiter(o), ['limit', 'window', 'burst', 'algorithm', 'quotas', 'blockFor', 'prefix', 'scriptTime', 'blockCache', 'onStoreError', 'clock']],
      preset: [(o) => rampart.RateLimiter.preset('api', o), ['env', 'prefix', 'scriptTime', 'blockCache', 'onStoreError', 'clock']],
    };
    // (A value never read, such as a revoked proxy for `env`, is no error.)
    const anyCode = (label, fn) => {
      try {
        fn();
      } catch (e) {
        assert.ok(e instanceof RampartError, `${label} threw a non-RampartError: ${e}`);
        assert.ok(ERROR_CODES.includes(e.code) && e.code !== 'RAMPART_PANIC', `${label}: ${e.code}`);
      }
    };
    for (const [name, [build, fields]] of Object.entries(builds)) {
      const base = name === 'RateLimiter' ? { limit: 5, window: 1000 } : {};
      anyCode(`${name}(a proxy whose every trap throws)`, () => build(new Proxy({}, { get: boom, has: boom, ownKeys: boom, getPrototypeOf: boom })));
      anyCode(`${name}(a revoked proxy)`, () => build(revoked({})));
      anyCode(`${name}(store: a revoked proxy)`, () => build({ store: revoked({}) }));
      for (const field of ['store', ...fields]) {
        const o = Object.defineProperty({ store, ...base }, field, { get: boom });
        assert.throws(() => build(o), (e) => e instanceof RampartError && e.code !== 'RAMPART_PANIC', `${name}(a throwing ${field} getter)`);
        anyCode(`${name}(${field}: a revoked proxy)`, () => build({ store, ...base, [field]: revoked({}) }));
      }
    }
    await store.set('tk:args:options', 'ok');
    assert.deepEqual(await store.get('tk:args:options'), Buffer.from('ok'));
    freesCleanly(store, 'rampart.inner');
  });

  it('RateLimiter.consumeAll entries', async () => {
    const store = new MemoryStore();
    const a = new rampart.RateLimiter({ store, limit: 100, window: 60_000, prefix: 'a' });
    const b = new rampart.RateLimiter({ store, limit: 100, window: 60_000, prefix: 'b' });
    const entryThrows = [a, 'k', 1];
    Object.defineProperty(entryThrows, 1, { get: boom });
    const cases = [
      ...throwingArrays([[a, 'k'], [b, 'k']]),
      ['an entry whose key getter throws', [entryThrows]],
      ['an entry that is a proxy whose traps throw', [new Proxy([a, 'k'], { get: boom, getPrototypeOf: boom })]],
      ['an entry that is a revoked proxy', [revoked([a, 'k'])]],
      ['a proxy passing for a RateLimiter', [[new Proxy({}, { getPrototypeOf: () => rampart.RateLimiter.prototype, get: boom }), 'k']]],
    ];
    for (const [label, entries] of cases) {
      await codedAs(`consumeAll(${label})`, rampart.RateLimiter.consumeAll(entries));
      const d = await rampart.RateLimiter.consumeAll([[a, 'k'], [b, 'k', 2]]);
      assert.equal(d.allowed, true, `after ${label}`);
    }
    const noIterator = [[a, 'k']];
    Object.defineProperty(noIterator, Symbol.iterator, { get: boom });
    assert.equal((await rampart.RateLimiter.consumeAll(noIterator)).allowed, true);
  });
});

after(async () => {
  // Nothing panicked, and the module still works.
  assert.equal(fault(), null);
  const store = new MemoryStore();
  await store.set('tk:hostile:after', 'ok');
  assert.deepEqual(await store.get('tk:hostile:after'), Buffer.from('ok'));
});
