'use strict';
// Store, MemoryStore and ManualClock: thin wrappers over the wasm classes.
// Arguments are checked in Rust; here option objects are unpacked, arrays
// and byte values made plain (lib/args.js) and results shaped (Buffers,
// plain objects).

const { wasm, run, sync } = require('./runtime');
const { RampartError, invalidInput } = require('./errors');
const { options, field, toBuffer, toOptBuffer } = require('./options');
const { list, bytes, change } = require('./args');

const INNER = Symbol('rampart.inner');
/**
 * The wasm handle of every Store and ManualClock, keyed by the object
 * itself: unlike `instanceof` and a symbol property, a lookup that no Proxy
 * trap or getter can throw from or fake.
 */
const STORES = new WeakMap();
const CLOCKS = new WeakMap();

/** Time that moves only when told to (tests). */
class ManualClock {
  /** @param {number} [startMs] milliseconds since the epoch (default: now, whole ms) */
  constructor(startMs = Math.floor(Date.now())) {
    this[INNER] = sync(() => new wasm.ManualClock(startMs));
    CLOCKS.set(this, this[INNER]);
  }
  /** Moves the clock forward by `ms`. */
  advance(ms) {
    sync(() => this[INNER].advance(ms));
  }
  /** Sets the clock to `ms` since the epoch (it may go back). */
  set(ms) {
    sync(() => this[INNER].set(ms));
  }
  /** Milliseconds since the epoch. */
  now() {
    return sync(() => this[INNER].now());
  }
}

function ttlOption(o, what) {
  return field(options(o, what), 'ttl', what);
}

function casResult(r) {
  return r[0] ? { swapped: true } : { swapped: false, current: toOptBuffer(r[1]) };
}

/** A live subscription: close() stops its messages. */
class Subscription {
  #handle;
  constructor(handle) {
    this.#handle = handle;
  }
  close() {
    sync(() => this.#handle.close());
  }
}

/** A key-value store: MemoryStore, or a StoreAdapter through Store.fromAdapter. */
class Store {
  /** @param {unknown} inner @param {symbol} token */
  constructor(inner, token) {
    if (token !== INNER) {
      throw new TypeError('use new MemoryStore(...) or Store.fromAdapter(adapter)');
    }
    this[INNER] = inner;
    STORES.set(this, inner);
  }

  /** A store over a JavaScript object implementing the store interface. */
  static fromAdapter(adapter) {
    return new Store(sync(() => wasm.Store.fromAdapter(adapter)), INNER);
  }

  /** What the store can do beyond the required operations. */
  get capabilities() {
    const [scripting, pubsub, serverClock, atomicUpdate] = sync(() => this[INNER].capabilities());
    return { scripting, pubsub, serverClock, atomicUpdate };
  }

  get(key) {
    return run(() => this[INNER].get(key), toOptBuffer);
  }

  set(key, value, opts) {
    return run(() => this[INNER].set(key, bytes(value, 'value'), ttlOption(opts, 'options')));
  }

  delete(key) {
    return run(() => this[INNER].delete(key));
  }

  ttl(key) {
    return run(() => this[INNER].ttl(key));
  }

  compareAndSwap(key, expected, value, opts) {
    return run(
      () => this[INNER].compareAndSwap(key, bytes(expected, 'expected'), bytes(value, 'value'), ttlOption(opts, 'options')),
      casResult,
    );
  }

  scan(prefix, opts) {
    return run(
      () => {
        const o = options(opts, 'options');
        return this[INNER].scan(prefix, field(o, 'cursor', 'options'), field(o, 'count', 'options'));
      },
      ([keys, cursor]) => ({ keys, cursor }),
    );
  }

  /** Every key under `prefix` (each at least once), page by page. */
  async *keys(prefix, opts) {
    const count = field(options(opts, 'options'), 'count', 'options');
    let cursor = null;
    do {
      const page = await this.scan(prefix, { cursor, count });
      yield* page.keys;
      cursor = page.cursor;
    } while (cursor !== null);
  }

  update(key, fn) {
    if (typeof fn !== 'function') {
      return Promise.reject(invalidInput(`update needs a callback function, got ${typeof fn}`));
    }
    // The change is read here, not by the module (lib/args.js).
    const callback = (current) => change(fn(toOptBuffer(current)));
    return run(
      () => this[INNER].update(key, callback),
      ([value, changed, attempts]) => ({ value: toOptBuffer(value), changed, attempts }),
    );
  }

  setIfAbsent(key, value, opts) {
    return run(() => this[INNER].setIfAbsent(key, bytes(value, 'value'), ttlOption(opts, 'options')));
  }

  deleteIfEqual(key, expected) {
    return run(() => this[INNER].deleteIfEqual(key, bytes(expected, 'expected')));
  }

  expireIfEqual(key, expected, opts) {
    return run(() => this[INNER].expireIfEqual(key, bytes(expected, 'expected'), ttlOption(opts, 'options')));
  }

  increment(key, delta, opts) {
    return run(() =>
      this[INNER].increment(
        key,
        delta,
        field(options(opts, 'options'), 'ttlIfCreated', 'options'),
      ),
    );
  }

  getMany(keys) {
    return run(() => this[INNER].getMany(list(keys, 'keys')), (values) => values.map(toOptBuffer));
  }

  deleteMany(keys) {
    return run(() => this[INNER].deleteMany(list(keys, 'keys')));
  }

  publish(channel, message) {
    return run(() => this[INNER].publish(channel, bytes(message, 'message')));
  }

  /**
   * Calls `onMessage(message)` (a Buffer) for every message published on
   * `channel` from now on; resolves once subscribed to a Subscription whose
   * `close()` stops it. At most once, in order; the callback's exceptions
   * are dropped.
   */
  subscribe(channel, onMessage) {
    if (typeof onMessage !== 'function') {
      return Promise.reject(invalidInput(`subscribe needs a callback function, got ${typeof onMessage}`));
    }
    return run(
      () => this[INNER].subscribe(channel, (m) => onMessage(toBuffer(m))),
      (handle) => new Subscription(handle),
    );
  }

  stats() {
    return run(
      () => this[INNER].stats(),
      ([keys, memoryBytes, server]) => ({ keys, memoryBytes, server }),
    );
  }

  serverTime() {
    return run(() => this[INNER].serverTime());
  }
}

/** The core's bounded in-process store (works wherever the module does). */
class MemoryStore extends Store {
  constructor(opts) {
    const inner = sync(() => {
      const o = options(opts, 'MemoryStore options');
      const maxEntries = field(o, 'maxEntries', 'options');
      const clock = field(o, 'clock', 'options');
      if (clock === undefined || clock === null) return wasm.Store.memory(maxEntries);
      const handle = CLOCKS.get(clock);
      if (handle === undefined) throw invalidInput('options.clock must be a ManualClock');
      return wasm.Store.memoryWithClock(maxEntries, handle);
    });
    super(inner, INNER);
  }
}

/** The wasm object behind a Store (for the classes built on stores). */
function innerOf(store) {
  const inner = STORES.get(store);
  if (inner === undefined) {
    throw new RampartError('RAMPART_INVALID_INPUT', 'expected a rampart Store (MemoryStore or Store.fromAdapter)');
  }
  return inner;
}

/** The wasm object behind a ManualClock. */
function clockOf(clock) {
  const handle = CLOCKS.get(clock);
  if (handle === undefined) throw invalidInput('expected a ManualClock');
  return handle;
}

module.exports = { Store, MemoryStore, ManualClock, innerOf, clockOf, toBuffer };
