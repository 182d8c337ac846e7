'use strict';
// Sessions: the core's server-side sessions (src/session) over any Store.
// Data is any JSON-serializable value; times are ms since the epoch.

const { wasm, run, sync } = require('./runtime');
const { innerOf, clockOf } = require('./store');
const { options, field } = require('./options');
const { invalidInput } = require('./errors');

const INNER = Symbol('rampart.sessions');

function json(data) {
  let text;
  try {
    text = JSON.stringify(data);
  } catch (e) {
    throw invalidInput('session data must be JSON-serializable', e);
  }
  if (text === undefined) throw invalidInput('session data must be JSON-serializable');
  return text;
}

function session(s) {
  if (s === null) return null;
  const [handle, userId, data, ip, userAgent, created, lastSeen, expires, expiresAtMost] = s;
  return { handle, userId, data: JSON.parse(data), meta: { ip, userAgent }, created, lastSeen, expires, expiresAtMost };
}

function info([handle, ip, userAgent, created, lastSeen, expires, expiresAtMost]) {
  return { handle, meta: { ip, userAgent }, created, lastSeen, expires, expiresAtMost };
}

/** Server-side sessions: hashed ids, per-user index, rotation, revocation. */
class Sessions {
  /**
   * @param {object} opts { store, clock?, namespace?, idleTimeout?, maxLifetime?,
   *   maxSessionsPerUser?, touchInterval?, scriptTime? } (milliseconds)
   */
  constructor(opts) {
    this[INNER] = sync(() => {
      const o = options(opts, 'Sessions options');
      const store = innerOf(field(o, 'store', 'options'));
      const clock = field(o, 'clock', 'options');
      return clock === undefined || clock === null
        ? wasm.Sessions.create(store, o)
        : wasm.Sessions.createWithClock(store, clockOf(clock), o);
    });
  }

  /**
   * Opens a session for `userId` holding `data`; resolves to { id (the
   * secret for the client), handle, expires, generation }. With
   * `options.generation`, only if the user's sessions were not revoked since.
   */
  create(userId, data, opts) {
    return run(
      () => {
        const o = options(opts, 'options');
        return this[INNER].open(userId, json(data), field(o, 'ip', 'options'), field(o, 'userAgent', 'options'), field(o, 'generation', 'options'));
      },
      ([id, handle, expires, generation]) => ({ id, handle, expires, generation }),
    );
  }

  /** The live session `id` (renewing its rolling expiry), or null. */
  get(id) {
    return run(() => this[INNER].get(id), session);
  }

  /**
   * Changes the session's data atomically: `change(data)` returns the new
   * data (it may run more than once; it must not call rampart). Null if the
   * session is not live.
   */
  update(id, change) {
    if (typeof change !== 'function') {
      return Promise.reject(invalidInput(`update needs a callback function, got ${typeof change}`));
    }
    return run(() => this[INNER].update(id, (text) => json(change(JSON.parse(text)))), session);
  }

  /** Ends session `id`; true if it was live. */
  destroy(id) {
    return run(() => this[INNER].destroy(id));
  }

  /** A new id for the same session (the old one dies), or null. */
  rotate(id) {
    return run(() => this[INNER].rotate(id));
  }

  /** Ends every session of `userId`; resolves to how many. */
  destroyAll(userId) {
    return run(() => this[INNER].destroyAll(userId));
  }

  /** Ends every session of `userId` but `keepId`. */
  destroyOthers(userId, keepId) {
    return run(() => this[INNER].destroyOthers(userId, keepId));
  }

  /** Ends the session with public `handle` ("log out that device"). */
  destroyHandle(userId, handle) {
    return run(() => this[INNER].destroyHandle(userId, handle));
  }

  /** The user's live sessions (handles and metadata, never ids). */
  list(userId) {
    return run(() => this[INNER].list(userId), (all) => all.map(info));
  }

  /** How many live sessions `userId` has. */
  count(userId) {
    return run(() => this[INNER].count(userId));
  }

  /** The user's revocation generation, for create(..., { generation }). */
  generation(userId) {
    return run(() => this[INNER].generation(userId));
  }
}

module.exports = { Sessions };
