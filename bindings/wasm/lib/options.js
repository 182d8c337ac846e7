'use strict';
// Reading option objects defensively: a wrong type, or a getter that
// throws, is a RAMPART_INVALID_INPUT error, never a stray TypeError.

const { invalidInput } = require('./errors');

/**
 * The option object `o` (undefined/null: none).
 * @param {unknown} o
 * @param {string} what
 * @returns {Record<string, unknown>}
 */
function options(o, what) {
  if (o === undefined || o === null) return {};
  if (typeof o !== 'object') {
    throw invalidInput(`${what} must be an object, got ${typeof o}`);
  }
  return /** @type {Record<string, unknown>} */ (o);
}

/** `o[name]`, with a throwing getter turned into RAMPART_INVALID_INPUT. */
function field(o, name, what) {
  try {
    return o[name];
  } catch (e) {
    throw invalidInput(`reading ${what}.${name} threw`, e);
  }
}

/** A Uint8Array as a Buffer over the same memory (no copy). */
function toBuffer(u8) {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** A Uint8Array, Buffer or null as a Buffer or null. */
function toOptBuffer(u8) {
  return u8 === null || u8 === undefined ? null : toBuffer(u8);
}

module.exports = { options, field, toBuffer, toOptBuffer };
