'use strict';
// The JavaScript half of the executor in src/runtime.rs.
//
// Every call into the WebAssembly module goes through `run` (async
// operations) or `sync`, inside a `try`: a trap (a Rust panic aborts on
// wasm32) is caught here, never in a promise callback where it would end
// the process. After a trap the module's memory cannot be trusted, so the
// instance is poisoned: every pending promise is rejected with
// RAMPART_PANIC (carrying the panic message) and later calls reject at
// once with the same error. The process lives on to log it and fail its
// health check.

const wasm = require('../pkg/rampart_wasm.js');
const { RampartError } = require('./errors');

/** What an async export returns while its future waits. */
const PENDING = Object.freeze({ rampartPending: true });

/** Pending tasks: id -> { resolve, reject, map }. */
const pending = new Map();
let poisoned = null;
let panicMessage = null;

function settle(id, ok, value) {
  const task = pending.get(id);
  if (task === undefined) return;
  pending.delete(id);
  if (!ok) {
    task.reject(value);
    return;
  }
  let mapped;
  try {
    mapped = task.map === undefined ? value : task.map(value);
  } catch (e) {
    task.reject(e);
    return;
  }
  task.resolve(mapped);
}

function drain() {
  try {
    wasm.drain();
  } catch (e) {
    unwound(e);
  }
}

function schedule() {
  queueMicrotask(drain);
}

function onPanic(message) {
  panicMessage = String(message);
}

function resume(id, ok, value) {
  try {
    wasm.resume(id, ok, value);
  } catch (e) {
    unwound(e);
  }
}

/**
 * An exception out of drain or resume, which report every outcome through
 * settle and never throw: a trap, or a JavaScript exception that unwound
 * through the module's frames and skipped their cleanup (the executor's
 * state is then unknown, and later tasks could wait forever). Either way
 * the instance is poisoned.
 */
function unwound(e) {
  trap(e);
}

/** Hands the outcome of `value` (promise, thenable or plain) to task await `id`. */
function awaitPromise(value, id) {
  Promise.resolve(value).then(
    (v) => resume(id, true, v),
    (e) => resume(id, false, e),
  );
}

function makeError(code, message, temporary, operation, key) {
  return new RampartError(code, message, { temporary, operation, key });
}

/** Poisons the instance after a trap and rejects everything pending. */
function trap(e) {
  if (poisoned === null) {
    let what = panicMessage;
    if (what === null) {
      try {
        what = e instanceof Error ? e.message : String(e);
      } catch {
        what = 'an exception that cannot be printed';
      }
    }
    const how = panicMessage !== null || e instanceof WebAssembly.RuntimeError ? 'panicked' : 'was interrupted by an exception';
    poisoned = new RampartError(
      'RAMPART_PANIC',
      `rampart's WebAssembly module ${how} and was shut down; restart the process (${what})`,
      { temporary: false, cause: e },
    );
  }
  const tasks = [...pending.values()];
  pending.clear();
  for (const task of tasks) task.reject(poisoned);
  return poisoned;
}

/**
 * What a throw from the module means: a RampartError as it is, a trap
 * poisons the instance, anything else (a user callback's own error) passes
 * through unchanged.
 */
function failure(e) {
  if (e instanceof RampartError) return e;
  if (e instanceof WebAssembly.RuntimeError) return trap(e);
  return e;
}

/**
 * Runs an async export: `start()` calls it and returns its value or
 * PENDING; `map` shapes the value. Never throws: every failure is a
 * rejected promise.
 * @template T
 * @param {() => unknown} start
 * @param {(value: any) => T} [map]
 * @returns {Promise<T>}
 */
function run(start, map) {
  if (poisoned !== null) return Promise.reject(poisoned);
  let value;
  try {
    value = start();
    if (value !== PENDING) {
      return Promise.resolve(map === undefined ? value : map(value));
    }
  } catch (e) {
    return Promise.reject(failure(e));
  }
  const id = wasm.takePending();
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, map });
  });
}

/** Runs a synchronous export; a failure is thrown (as a RampartError). */
function sync(call) {
  if (poisoned !== null) throw poisoned;
  try {
    return call();
  } catch (e) {
    throw failure(e);
  }
}

const OUT_LEN = 64;
const outPointer = wasm.outPointer();
const wasmMemory = wasm.wasmMemory();
let outView = new Float64Array(wasmMemory.buffer, outPointer, OUT_LEN);

/**
 * The numbers a result just wrote (src/runtime.rs `write_out`); read them
 * at once. The view is remade when the memory grew (its old buffer is
 * then detached, length 0).
 */
function out() {
  if (outView.length === 0) outView = new Float64Array(wasmMemory.buffer, outPointer, OUT_LEN);
  return outView;
}

/** How deep a reply may nest (src/js_store.rs MAX_REPLY_DEPTH is 32). */
const MAX_REPLY_DEPTH = 32;

/**
 * The fields of an adapter's reply objects that src/js_store.rs reads
 * (compareAndSwap, scan, stats): a reply object is copied through them.
 */
const REPLY_FIELDS = Object.freeze(['swapped', 'current', 'keys', 'cursor', 'memoryBytes', 'server']);

/**
 * `v` as plain data Rust can read without running the adapter's code:
 * arrays copied, Uint8Arrays (Buffers) viewed afresh, Errors kept, other objects
 * copied through REPLY_FIELDS (read as Rust would, getters included).
 * Throws what a getter or a proxy trap throws.
 */
function plain(v, depth) {
  if (v === null || typeof v !== 'object') return v;
  if (depth > MAX_REPLY_DEPTH) throw new RampartError('RAMPART_BACKEND', 'a store reply nests too deep');
  // A fresh view of the same bytes (no copy), free of own properties.
  if (ArrayBuffer.isView(v)) return v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : {};
  if (Array.isArray(v)) {
    const n = v.length;
    const copy = new Array(n);
    for (let i = 0; i < n; i++) copy[i] = plain(v[i], depth + 1);
    return copy;
  }
  if (v instanceof Error) return v;
  const copy = {};
  for (const name of REPLY_FIELDS) {
    const x = v[name];
    if (x !== undefined) copy[name] = plain(x, depth + 1);
  }
  return copy;
}

/**
 * A store adapter's reply made safe for the module to read (src/runtime.rs
 * `adapter_reply`): with `ints`, an array of fewer than OUT_LEN safe
 * integers goes through the shared buffer (its length, then its items; the
 * module checks them again); otherwise the buffer holds -1 and the plain
 * copy is returned, or -2 and what copying threw.
 */
function reply(value, ints) {
  let n = -1;
  let result;
  try {
    let items = null;
    if (ints && Array.isArray(value) && value.length < OUT_LEN) {
      items = [];
      for (let i = 0; i < value.length; i++) {
        const x = value[i];
        if (!Number.isSafeInteger(x)) {
          items = null;
          break;
        }
        items.push(x);
      }
    }
    if (items === null) {
      result = plain(value, 0);
    } else {
      n = items.length;
      // Written last, after every getter ran (one could call rampart, which
      // writes the same buffer, or grow the memory).
      const o = out();
      for (let i = 0; i < n; i++) o[i + 1] = items[i];
    }
  } catch (e) {
    n = -2;
    result = e;
  }
  out()[0] = n;
  return result;
}

wasm.install(settle, schedule, onPanic, awaitPromise, makeError, reply, PENDING);

const KEY_IN_LEN = 1024;
const keyInPointer = wasm.keyInPointer();
let keyInView = new Uint8Array(wasmMemory.buffer, keyInPointer, KEY_IN_LEN);

/**
 * Writes `key` to the module's key scratch buffer (src/runtime.rs
 * `KEY_IN`) when it is ASCII and fits, sparing the allocation and the extra
 * call of passing a string; returns its length, or -1 (pass it as a string
 * then). The export that reads it must be called at once.
 * @param {string} key
 */
function keyIn(key) {
  const n = key.length;
  if (n > KEY_IN_LEN) return -1;
  if (keyInView.length === 0) keyInView = new Uint8Array(wasmMemory.buffer, keyInPointer, KEY_IN_LEN);
  const view = keyInView;
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c > 0x7f) return -1;
    view[i] = c;
  }
  return n;
}

/**
 * The WebAssembly class `name`, or a RAMPART_UNSUPPORTED error when this
 * build left out the cargo feature that binds it (`scripts/build
 * --features ...` makes slimmer packages; the default build has them all).
 * @param {string} name
 * @param {string} feature
 */
function bound(name, feature) {
  const cls = wasm[name];
  if (cls === undefined) {
    throw new RampartError(
      'RAMPART_UNSUPPORTED',
      `this build of rampart has no ${name}: build the package with the "${feature}" feature (bindings/wasm/scripts/build)`,
    );
  }
  return cls;
}

/** The poison error, or null while the instance is healthy. */
function health() {
  return poisoned;
}

/** The error of the synchronous export that just answered 0 (src/runtime.rs `status`). */
function takeFailure() {
  const e = wasm.takeFailure();
  return e === undefined ? new RampartError('RAMPART_BACKEND', 'rampart reported a failure without its error') : failure(e);
}

module.exports = { wasm, bound, run, sync, out, keyIn, takeFailure, failure, health, pendingCount: () => pending.size };
