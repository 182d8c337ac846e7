'use strict';
// Locks: the core's distributed locks (src/lock) over any Store.

const { bound, run, sync } = require('./runtime');
const { innerOf, clockOf } = require('./store');
const { options, field } = require('./options');

const INNER = Symbol('rampart.locks');

/** A held lock. Pass `fence` to the resource you protect with every write. */
class Lock {
  constructor(locks, resource, [fence, token, expiresAt]) {
    /** The resource locked. */
    this.resource = resource;
    /** The fencing token: strictly greater than every earlier one for the resource. */
    this.fence = fence;
    /** The hold's secret token (hex): only its holder can extend or release. */
    this.token = token;
    /** When the hold ends unless extended, in ms since the epoch. */
    this.expiresAt = expiresAt;
    Object.defineProperty(this, INNER, { value: locks });
  }

  /** Makes the hold end `ttl` ms from now; false if the lock is no longer ours. */
  extend(ttl) {
    return run(
      () => this[INNER].extend(this.resource, this.token, ttl),
      (expiresAt) => {
        if (expiresAt === null) return false;
        this.expiresAt = expiresAt;
        return true;
      },
    );
  }

  /** Releases the lock; false if it had expired (and maybe passed to someone else). */
  release() {
    return run(() => this[INNER].release(this.resource, this.token));
  }
}

/** Token-checked, fenced, auto-expiring locks. */
class Locks {
  /**
   * @param {object} opts { store, clock?, prefix?, ttl?, retryCount?, retryDelay?,
   *   retryJitter?, fenceRetention?, watchdogInterval?, scriptTime? } (milliseconds)
   */
  constructor(opts) {
    this[INNER] = sync(() => {
      const o = options(opts, 'Locks options');
      const store = innerOf(field(o, 'store', 'options'));
      const clock = field(o, 'clock', 'options');
      return clock === undefined || clock === null
        ? bound('Locks', 'locks').create(store, o)
        : bound('Locks', 'locks').createWithClock(store, clockOf(clock), o);
    });
  }

  #held(resource) {
    return (h) => (h === null ? null : new Lock(this[INNER], resource, h));
  }

  /** Takes the lock once for `ttl` ms; null if someone holds it. */
  tryAcquire(resource, opts) {
    return run(() => this[INNER].tryAcquire(resource, field(options(opts, 'options'), 'ttl', 'options')), this.#held(resource));
  }

  /** Takes the lock for `ttl` ms, retrying with backoff for up to `wait` ms; null if it stayed held. */
  acquire(resource, opts) {
    return run(() => {
      const o = options(opts, 'options');
      return this[INNER].acquire(resource, field(o, 'ttl', 'options'), field(o, 'wait', 'options') ?? 0);
    }, this.#held(resource));
  }

  /** Takes the lock for the configured TTL with the configured retries; null if it stayed held. */
  lock(resource) {
    return run(() => this[INNER].lock(resource), this.#held(resource));
  }

  /** Releases `resource` if `token` holds it. */
  release(resource, token) {
    return run(() => this[INNER].release(resource, token));
  }

  /** Extends `token`'s hold by `ttl` ms; false if it no longer holds the lock. */
  extend(resource, token, opts) {
    return run(() => this[INNER].extend(resource, token, field(options(opts, 'options'), 'ttl', 'options')), (e) => e !== null);
  }

  /** Whether someone holds the lock now. */
  isLocked(resource) {
    return run(() => this[INNER].info(resource), ([, remaining]) => remaining !== null);
  }

  /** The last fencing token issued, and the hold's time left (null when free). */
  info(resource) {
    return run(() => this[INNER].info(resource), ([fence, remaining]) => ({ fence, remaining }));
  }

  /**
   * Runs `task(handle)` under the lock, extended by the core's watchdog
   * while it runs, and releases it after. `handle.isLost()` turns true if
   * the lock was lost. Rejects with RAMPART_CONFLICT if the lock stayed
   * held, or with the task's own error.
   */
  withLock(resource, opts, task) {
    return run(() => this[INNER].withLock(resource, field(options(opts, 'options'), 'ttl', 'options'), task));
  }
}

module.exports = { Locks, Lock };
