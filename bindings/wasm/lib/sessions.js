'use strict';
// Sessions: the core's server-side sessions (src/session) over any Store.
// Data is any JSON-serializable value; times are ms since the epoch.

const { bound, run, sync } = require('./runtime');
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
        ? bound('Sessions', 'sessions').create(store, o)
        : bound('Sessions', 'sessions').createWithClock(store, clockOf(clock), o);
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

const REFRESH = Symbol('rampart.refresh');

/**
 * Refresh-token families: each rotation spends the presented token and
 * issues the next; presenting a spent one revokes the whole family (reuse
 * detection).
 */
class RefreshTokens {
  /** @param {object} opts { store, clock?, namespace?, idleTimeout?, maxLifetime?, maxFamiliesPerUser?, scriptTime? } */
  constructor(opts) {
    this[REFRESH] = sync(() => {
      const o = options(opts, 'RefreshTokens options');
      const store = innerOf(field(o, 'store', 'options'));
      const clock = field(o, 'clock', 'options');
      return clock === undefined || clock === null
        ? bound('RefreshTokens', 'sessions').create(store, o)
        : bound('RefreshTokens', 'sessions').createWithClock(store, clockOf(clock), o);
    });
  }

  /** Starts a family at login: { token (the secret), family, expires }. */
  issue(userId) {
    return run(() => this[REFRESH].issue(userId), ([token, family, expires]) => ({ token, family, expires }));
  }

  /**
   * Presents `token`. { status: 'rotated', token, userId, expires,
   * generation } authorizes new tokens; 'reuse' (with userId) means a spent
   * token came back and the family is now revoked; 'revoked'; 'unknown'.
   */
  rotate(token) {
    return run(
      () => this[REFRESH].rotate(token),
      (r) => {
        switch (r[0]) {
          case 'rotated':
            return { status: 'rotated', token: r[1], userId: r[2], expires: r[3], generation: r[4] };
          case 'reuse':
            return { status: 'reuse', userId: r[1] };
          default:
            return { status: r[0] };
        }
      },
    );
  }

  /** Revokes `token`'s family (logout); true if it was live. */
  revoke(token) {
    return run(() => this[REFRESH].revoke(token));
  }

  /** Revokes every family of `userId`; resolves to how many. */
  revokeAll(userId) {
    return run(() => this[REFRESH].revokeAll(userId));
  }

  /** How many live families `userId` has. */
  count(userId) {
    return run(() => this[REFRESH].count(userId));
  }
}

const DENYLIST = Symbol('rampart.denylist');

/** Revoked access tokens (a JWT's jti), remembered until they expire. */
class Denylist {
  /** @param {object} opts { store, clock?, namespace? } */
  constructor(opts) {
    this[DENYLIST] = sync(() => {
      const o = options(opts, 'Denylist options');
      const store = innerOf(field(o, 'store', 'options'));
      const clock = field(o, 'clock', 'options');
      const namespace = field(o, 'namespace', 'options');
      return clock === undefined || clock === null
        ? bound('Denylist', 'sessions').create(store, namespace)
        : bound('Denylist', 'sessions').createWithClock(store, clockOf(clock), namespace);
    });
  }

  /** Denies `tokenId` until `expiresAt` (ms since the epoch); false if it has expired already. */
  deny(tokenId, expiresAt) {
    return run(() => this[DENYLIST].deny(tokenId, expiresAt));
  }

  /** Whether `tokenId` is denied. */
  isDenied(tokenId) {
    return run(() => this[DENYLIST].isDenied(tokenId));
  }
}

module.exports = { Sessions, RefreshTokens, Denylist };
