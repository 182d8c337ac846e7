'use strict';
// RampartError: every error rampart raises, with a stable `code`.

/** The codes of rampart's error kinds, plus the binding's own RAMPART_PANIC. */
const CODES = Object.freeze([
  'RAMPART_INVALID_KEY',
  'RAMPART_INVALID_INPUT',
  'RAMPART_CONFIG',
  'RAMPART_NOT_FOUND',
  'RAMPART_CONFLICT',
  'RAMPART_CORRUPT_DATA',
  'RAMPART_UNAVAILABLE',
  'RAMPART_TIMEOUT',
  'RAMPART_UNSUPPORTED',
  'RAMPART_BACKEND',
  'RAMPART_PANIC',
]);

const TEMPORARY = new Set(['RAMPART_UNAVAILABLE', 'RAMPART_TIMEOUT', 'RAMPART_CONFLICT']);

class RampartError extends Error {
  /**
   * @param {string} code one of CODES
   * @param {string} message
   * @param {{ temporary?: boolean, operation?: string, key?: string, cause?: unknown }} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RampartError';
    this.code = code;
    this.temporary = details.temporary ?? TEMPORARY.has(code);
    if (details.operation !== undefined) this.operation = details.operation;
    if (details.key !== undefined) this.key = details.key;
  }
}

/** A RAMPART_INVALID_INPUT error. */
function invalidInput(message, cause) {
  return new RampartError('RAMPART_INVALID_INPUT', message, { cause });
}

module.exports = { RampartError, CODES, invalidInput };
