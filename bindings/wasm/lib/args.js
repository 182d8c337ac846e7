'use strict';
// Caller arrays and byte values made plain before the module reads them.
//
// The module reads an array argument through JavaScript calls (its length,
// then each item) and a Uint8Array through its `length` and a copy. On a
// Proxy, through an accessor, or on an object that only passes for a
// Uint8Array, those calls run the caller's code; an exception there unwinds
// straight through the module's frames and skips their cleanup: the
// handle's borrow stays taken (later calls fail "while it was borrowed"),
// the call's shadow stack is never given back (some 1800 such calls trap
// the instance), a MemoryStore update keeps its lock. So the wrappers copy
// such arguments here first, where any throw is a RAMPART_INVALID_INPUT
// error, and hand the module fresh values that run no code when read (the
// same idea as the adapter replies in runtime.js). Strings, numbers and
// other primitives pass through untouched: no extra work on the hot paths.

const { invalidInput } = require('./errors');

/**
 * The most items copied from one array: at least every limit the module
 * enforces on an array argument (getMany/deleteMany's 100 000 keys is the
 * largest). A longer array reaches the module as a hole-filled array of the
 * same length, which it refuses by its length without reading an item.
 */
const MAX_ITEMS = 100_000;

/** The largest length an array can have (2^32 - 1). */
const MAX_LENGTH = 4_294_967_295;

/**
 * The array `v` copied into a fresh one, item by item by index, as the
 * module reads it (its iterator is never consulted). Anything that is not
 * an array is returned as it is: the module refuses it with its own message,
 * reading nothing from it. Throws RAMPART_INVALID_INPUT when reading `v`
 * throws (a revoked Proxy, a trap or a getter).
 * @param {unknown} v
 * @param {string} what the argument's name, for the error
 * @returns {unknown}
 */
function list(v, what) {
  if (v === null || typeof v !== 'object') return v;
  let n;
  let copy;
  try {
    if (!Array.isArray(v)) return v;
    n = v.length;
    if (Number.isInteger(n) && n >= 0 && n <= MAX_ITEMS) {
      copy = new Array(n);
      for (let i = 0; i < n; i++) copy[i] = v[i];
    }
  } catch (e) {
    throw invalidInput(`reading ${what} threw`, e);
  }
  if (copy !== undefined) return copy;
  if (!Number.isInteger(n) || n < 0 || n > MAX_LENGTH) throw invalidInput(`${what} has an invalid length`);
  return new Array(n);
}

// The engine's own accessors of typed arrays, taken before any caller code
// runs: they read a genuine typed array's internal slots (no getter of its
// own or of its prototype, no Proxy trap) and answer `undefined` or throw
// for anything else.
const TypedArray = Object.getPrototypeOf(Uint8Array.prototype);
const accessor = (name) => Object.getOwnPropertyDescriptor(TypedArray, name).get;
const tagOf = accessor(Symbol.toStringTag);
const bufferOf = accessor('buffer');
const offsetOf = accessor('byteOffset');
const lengthOf = accessor('byteLength');
const { apply } = Reflect;
const isArray = Array.isArray;

/** What non-bytes objects become: inert values the module refuses alike. */
const NOT_BYTES = Object.freeze({});
const NOT_BYTES_ARRAY = Object.freeze([]);

/**
 * A byte argument (a Uint8Array, a Buffer, or a string) the module can read
 * without running the caller's code: a genuine Uint8Array (a Buffer or
 * another subclass included) as a fresh view of the same bytes (no copy),
 * read through the engine's accessors; any other object as an inert stand-in
 * that the module refuses with its usual message (an object that only
 * passes for a Uint8Array included); primitives untouched.
 * @param {unknown} v
 * @param {string} what the argument's name, for the error
 * @returns {unknown}
 */
function bytes(v, what) {
  if (typeof v !== 'object' && typeof v !== 'function') return v;
  if (v === null) return v;
  try {
    if (apply(tagOf, v, []) === 'Uint8Array') {
      const n = apply(lengthOf, v, []);
      // A detached buffer reads as empty (and cannot be viewed again).
      return n === 0 ? new Uint8Array(0) : new Uint8Array(apply(bufferOf, v, []), apply(offsetOf, v, []), n);
    }
  } catch (e) {
    throw invalidInput(`reading ${what} threw`, e);
  }
  let array = false;
  try {
    array = isArray(v);
  } catch {
    // A revoked Proxy: an object.
  }
  return array ? NOT_BYTES_ARRAY : NOT_BYTES;
}

/** Stands in for a Promise returned as an update's change (refused as one). */
const A_PROMISE = Promise.resolve();

/**
 * The change an update callback returned (index.d.ts `Change`), read once
 * in the order the module reads it, as a plain object whose byte values
 * went through `bytes`. Anything but an object is returned as it is (the
 * module refuses it); a Promise becomes a settled one it refuses as such.
 * Throws RAMPART_INVALID_INPUT when reading the change throws.
 * @param {unknown} v
 */
function change(v) {
  if (v === null || typeof v !== 'object') return v;
  let set;
  let ttl;
  let setKeepTtl;
  let remove;
  let keep;
  try {
    if (v instanceof Promise) return A_PROMISE;
    set = v.set;
    if (set !== undefined) {
      ttl = v.ttl;
    } else {
      setKeepTtl = v.setKeepTtl;
      if (setKeepTtl === undefined) {
        remove = v.remove;
        if (remove !== true) keep = v.keep;
      }
    }
  } catch (e) {
    throw invalidInput('reading the change an update callback returned threw', e);
  }
  if (set !== undefined) return { set: bytes(set, 'the value to set'), ttl };
  if (setKeepTtl !== undefined) return { setKeepTtl: bytes(setKeepTtl, 'the value to set') };
  return remove === true ? { remove } : { keep };
}

module.exports = { list, bytes, change, MAX_ITEMS };
