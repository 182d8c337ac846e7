//! Distributed locks: token-checked, auto-expiring, watchdog-extended, fenced.
//!
//! [`Locks`] takes, extends and releases named locks over any [`Store`]:
//! every step is one atomic operation ([`AcquireOp`], [`ExtendOp`],
//! [`ReleaseOp`], [`InspectOp`]), one Lua call on Redis and one
//! [`Store::update`] in process.
//!
//! * **Tokens.** Each hold carries a random 128-bit [`LockToken`]. Only its
//!   holder can release or extend the lock; a stranger's or stale token gets
//!   [`Release::NotHeld`] / [`Extend::NotHeld`] and changes nothing.
//!   Tokens are compared in constant time and never printed.
//! * **Expiry.** A hold ends after its TTL unless extended, so a crashed
//!   holder never blocks others for longer than that.
//! * **Fencing.** Each acquisition is issued a fencing token, strictly
//!   greater than every one issued before for the same resource. Pass it to
//!   the resource you protect and have it refuse writes carrying a smaller
//!   one: a holder that paused past its TTL can then do no harm.
//! * **Watchdog.** [`Locks::with_lock`] extends the lock every TTL/3 while
//!   your task runs, and tells the task through a [`LockHandle`] if the lock
//!   is lost.
//!
//! # The process lock flow
//!
//! ```
//! use rampart::lock::{Extend, Locks, Release};
//! use rampart::{Change, Key, MemoryStore, Store};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let locks = Locks::new(store.clone());
//!
//! // 1. Acquire: wait up to 5 s for the lock, hold it for 30 s.
//! let Some(mut lock) = locks.acquire("report:2024", Duration::from_secs(30), Duration::from_secs(5)).await? else {
//!     return Err(rampart::Error::new(rampart::ErrorKind::Conflict, "someone else is building the report"));
//! };
//!
//! // 2. Update the protected record with the lock's fencing token: the
//! //    record keeps the highest token it has seen and refuses older ones,
//! //    so a holder whose lock expired meanwhile cannot overwrite it.
//! let record = Key::new("report:2024:status")?;
//! let fence = lock.fence();
//! store.update(&record, &mut |current| {
//!     let seen = current
//!         .and_then(|v| std::str::from_utf8(v).ok()?.split_once(':')?.0.parse::<u64>().ok())
//!         .unwrap_or(0);
//!     if fence <= seen {
//!         return Change::Keep; // a newer holder wrote already
//!     }
//!     Change::Set { value: format!("{fence}:building").into(), ttl: None }
//! }).await?;
//!
//! // 3. Extend when the work takes longer than planned.
//! match lock.extend(Duration::from_secs(30)).await? {
//!     Extend::Extended { .. } => { /* still ours: keep working */ }
//!     Extend::NotHeld => { /* expired and maybe taken over: stop */ }
//! }
//!
//! // 4. Release; `NotHeld` says the lock expired before we finished.
//! assert_eq!(lock.release().await?, Release::Released);
//! # Ok::<(), rampart::Error>(()) }).unwrap();
//! ```
//!
//! # State and memory
//!
//! Each resource has one key, `<prefix>:<resource>`, holding
//! `1|<fence>|<expires_at_us>|<holder>` (see the `state` source for the
//! exact grammar; the Rust and Lua faces read and write the same text, and
//! anything else is [`ErrorKind::CorruptData`]). The key lives for the
//! hold plus [`LockConfig::fence_retention`] (default 10 minutes), then the
//! store drops it: memory grows with the resources locked in the last
//! retention period, not with every resource ever locked. Set the
//! retention to `None` to keep every resource's state forever.
//!
//! A fencing token is `max(last + 1, now in µs)`: it continues the
//! sequence while the state lives, and after the state was dropped (or
//! lost, say by a Redis restart without persistence) it starts from the
//! clock, above every earlier token as long as the clock moved past the
//! last one issued (tokens run ahead of the clock only when a resource is
//! locked more than once per microsecond). Tokens stay below 2^53, so they
//! are exact in JavaScript too.
//!
//! # Time
//!
//! Expiry is judged by the store's side of the operation: on Redis the Lua
//! twins read the server's `TIME` (app servers with skewed clocks agree);
//! elsewhere the [`Locks`] clock is used. Give an in-process store and its
//! `Locks` the same clock.
//!
//! Waiting (retries, the watchdog) sleeps through [`crate::rt::sleep`]:
//! natively that needs a tokio runtime with its timer enabled; on wasm it
//! is `setTimeout`. Nothing is spawned.
//!
//! # Limits
//!
//! Like every single-store lock (Redisson, redis-py, rslock with one
//! server), the lock is as safe as the store: a failover that loses a
//! write, or an eviction policy that evicts the state key, can let two
//! holders in. Fencing tokens are the defence for the protected resource.
//! A bounded in-process store ([`crate::MemoryStore`], moka) must be large
//! enough never to evict live lock states.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    check_ttl, AtomicOp, Error, ErrorKind, Key, MaybeSend, MaybeSync, Result, ScriptTime,
    SharedClock, Store, SystemClock, Timestamp, Value,
};

mod acquire;
mod extend;
mod inspect;
mod release;
mod state;
mod watchdog;

pub use acquire::{Acquire, AcquireOp};
pub use extend::{Extend, ExtendOp};
pub use inspect::{InspectOp, LockInfo};
pub use release::{Release, ReleaseOp};
#[cfg(feature = "fuzzing")]
pub(crate) use state::LockState;
pub use state::{constant_time_eq, LockToken, TOKEN_BYTES};
pub use watchdog::{LockHandle, Lost};

/// The default hold of [`Locks::lock`]: 30 s (Redisson's watchdog timeout).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// How many times [`Locks::lock`] and [`Locks::with_lock`] retry a held
/// lock by default: 10, as node-redlock.
pub const DEFAULT_RETRY_COUNT: u32 = 10;

/// The default steady delay between attempts: 200 ms, as node-redlock and
/// rslock.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);

/// The default random extra per attempt: up to 200 ms, as node-redlock.
pub const DEFAULT_RETRY_JITTER: Duration = Duration::from_millis(200);

/// How long a lock's state outlives its hold by default: 10 minutes.
pub const DEFAULT_FENCE_RETENTION: Duration = Duration::from_secs(600);

/// Retries start at 1/2^BACKOFF_STEPS of the steady delay and double.
const BACKOFF_STEPS: u32 = 4;

/// How [`Locks`] behaves; every field has a sensible default.
///
/// Deserializes from e.g. `{"prefix": "locks", "ttl_ms": 10000}`; missing
/// fields keep their defaults, and `"fence_retention_ms": null` keeps lock
/// states forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LockConfig {
    /// The namespace of lock keys: `<prefix>:<resource>`. Default `lock`.
    pub prefix: String,
    /// The hold of [`Locks::lock`]. Default [`DEFAULT_TTL`] (30 s).
    #[serde(rename = "ttl_ms", with = "millis")]
    pub ttl: Duration,
    /// How many times [`Locks::lock`] and [`Locks::with_lock`] retry a held
    /// lock before giving up. Default [`DEFAULT_RETRY_COUNT`] (10).
    /// [`Locks::acquire`] retries until its `wait` runs out instead.
    pub retry_count: u32,
    /// The steady delay between attempts. The first retry waits 1/16 of it
    /// and each next one twice as long, up to this (exponential backoff).
    /// Default [`DEFAULT_RETRY_DELAY`] (200 ms). Zero retries at once,
    /// yielding to other tasks in between.
    #[serde(rename = "retry_delay_ms", with = "millis")]
    pub retry_delay: Duration,
    /// Up to this much random extra per attempt, scaled like the delay, so
    /// contenders do not retry in step. Default [`DEFAULT_RETRY_JITTER`].
    #[serde(rename = "retry_jitter_ms", with = "millis")]
    pub retry_jitter: Duration,
    /// How long a lock's state (and so its fencing sequence) outlives the
    /// hold. Default [`DEFAULT_FENCE_RETENTION`]; `None` keeps it forever.
    #[serde(rename = "fence_retention_ms", with = "opt_millis")]
    pub fence_retention: Option<Duration>,
    /// How often [`Locks::with_lock`]'s watchdog extends the lock. Default
    /// (`None`) TTL/3; a longer interval is cut to TTL/3 so the lock cannot
    /// lapse between extensions.
    #[serde(rename = "watchdog_interval_ms", with = "opt_millis")]
    pub watchdog_interval: Option<Duration>,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self {
            prefix: "lock".into(),
            ttl: DEFAULT_TTL,
            retry_count: DEFAULT_RETRY_COUNT,
            retry_delay: DEFAULT_RETRY_DELAY,
            retry_jitter: DEFAULT_RETRY_JITTER,
            fence_retention: Some(DEFAULT_FENCE_RETENTION),
            watchdog_interval: None,
        }
    }
}

impl LockConfig {
    /// Checks the configuration: a valid key prefix, a positive TTL, a
    /// positive retention and watchdog interval.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let config = |field: &str, e: Error| {
            Error::config(format!("lock config `{field}`: {}", e.message()))
        };
        if self.prefix.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "lock config `prefix` is empty",
            ));
        }
        Key::new(&self.prefix).map_err(|e| config("prefix", e))?;
        check_ttl(Some(self.ttl)).map_err(|e| config("ttl", e))?;
        check_ttl(self.fence_retention).map_err(|e| config("fence_retention", e))?;
        if self.watchdog_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::config(
                "lock config `watchdog_interval` must be positive",
            ));
        }
        Ok(())
    }
}

/// Named locks over a store.
///
/// Cheap to clone (the store, clock and configuration are shared); guards
/// keep a clone, so they can move into other tasks.
///
/// ```
/// use rampart::lock::{Locks, Release};
/// use rampart::MemoryStore;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let locks = Locks::new(MemoryStore::new());
/// let guard = locks.try_acquire("jobs:nightly", Duration::from_secs(10)).await?.expect("free");
/// assert!(locks.try_acquire("jobs:nightly", Duration::from_secs(10)).await?.is_none());
/// assert!(locks.is_locked("jobs:nightly").await?);
/// assert_eq!(guard.release().await?, Release::Released);
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
pub struct Locks<S> {
    inner: Arc<Shared<S>>,
}

struct Shared<S> {
    store: S,
    clock: SharedClock,
    config: LockConfig,
    script_time: ScriptTime,
}

impl<S> Clone for Locks<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for Locks<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locks")
            .field("config", &self.inner.config)
            .field("clock", &self.inner.clock)
            .field("script_time", &self.inner.script_time)
            .finish_non_exhaustive()
    }
}

/// Builds [`Locks`] with a clock and configuration.
pub struct LocksBuilder<S> {
    store: S,
    clock: Option<SharedClock>,
    config: LockConfig,
    script_time: ScriptTime,
}

impl<S> fmt::Debug for LocksBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocksBuilder")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("script_time", &self.script_time)
            .finish_non_exhaustive()
    }
}

impl<S: Store> LocksBuilder<S> {
    /// The clock that judges expiry where the store runs no scripts
    /// (default: [`SystemClock`]); use the store's own clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// The configuration (default: [`LockConfig::default`]).
    pub fn config(mut self, config: LockConfig) -> Self {
        self.config = config;
        self
    }
    /// Where Lua twins take `now` (default: the server's `TIME`).
    pub fn script_time(mut self, script_time: ScriptTime) -> Self {
        self.script_time = script_time;
        self
    }
    /// The locks.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] if the configuration is invalid (see
    /// [`LockConfig::validate`]).
    pub fn build(self) -> Result<Locks<S>> {
        self.config.validate()?;
        Ok(Locks {
            inner: Arc::new(Shared {
                store: self.store,
                clock: self.clock.unwrap_or_else(SystemClock::shared),
                config: self.config,
                script_time: self.script_time,
            }),
        })
    }
}

/// When an acquisition stops retrying.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// After this many retries.
    Retries(u32),
    /// Once this long has passed.
    Wait(Duration),
}

impl<S: Store> Locks<S> {
    /// Locks over `store` with the default configuration and the system
    /// clock.
    pub fn new(store: S) -> Self {
        Self {
            inner: Arc::new(Shared {
                store,
                clock: SystemClock::shared(),
                config: LockConfig::default(),
                script_time: ScriptTime::default(),
            }),
        }
    }

    /// A builder to set the clock and configuration.
    pub fn builder(store: S) -> LocksBuilder<S> {
        LocksBuilder {
            store,
            clock: None,
            config: LockConfig::default(),
            script_time: ScriptTime::default(),
        }
    }

    /// The store the locks live in.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The configuration.
    pub fn config(&self) -> &LockConfig {
        &self.inner.config
    }

    /// The key holding `resource`'s lock state: `<prefix>:<resource>`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] for an empty resource or a key longer than
    /// [`crate::MAX_KEY_LEN`].
    pub fn key(&self, resource: &str) -> Result<Key> {
        if resource.is_empty() {
            return Err(Error::invalid_key("a lock resource is empty"));
        }
        Key::new(format!("{}:{resource}", self.inner.config.prefix))
    }

    /// Takes the lock on `resource` for `ttl` if it is free; `None` if
    /// someone holds it. One attempt, no waiting.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] for an empty resource,
    /// [`ErrorKind::InvalidInput`] for a zero TTL or one above
    /// [`crate::MAX_TTL`], [`ErrorKind::CorruptData`] if the lock's key
    /// holds something else, and the store's errors.
    pub async fn try_acquire(&self, resource: &str, ttl: Duration) -> Result<Option<LockGuard<S>>> {
        self.acquire_with(resource, ttl, Limit::Retries(0), "lock.try_acquire")
            .await
    }

    /// Takes the lock on `resource` for `ttl`, retrying with exponential
    /// backoff and jitter (see [`LockConfig::retry_delay`]) until `wait` has
    /// passed; `None` if it stayed held.
    ///
    /// The first attempt is made even when `wait` is zero. Time waited is
    /// the [`Locks`] clock's, or the time slept if that is more (so a
    /// stopped test clock still ends the wait).
    ///
    /// # Errors
    /// As [`try_acquire`](Locks::try_acquire).
    pub async fn acquire(
        &self,
        resource: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<LockGuard<S>>> {
        self.acquire_with(resource, ttl, Limit::Wait(wait), "lock.acquire")
            .await
    }

    /// Takes the lock on `resource` for the configured TTL (default 30 s),
    /// retrying up to the configured [`LockConfig::retry_count`] times;
    /// `None` if it stayed held.
    ///
    /// # Errors
    /// As [`try_acquire`](Locks::try_acquire).
    pub async fn lock(&self, resource: &str) -> Result<Option<LockGuard<S>>> {
        let config = &self.inner.config;
        self.acquire_with(
            resource,
            config.ttl,
            Limit::Retries(config.retry_count),
            "lock.lock",
        )
        .await
    }

    /// Releases `resource`'s lock if `token` holds it.
    ///
    /// # Behavior
    /// [`Release::NotHeld`] for a stranger's or stale token (the lock
    /// expired, or passed to someone else): the holder's lock is untouched.
    /// One atomic operation.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`], [`ErrorKind::CorruptData`], store errors.
    pub async fn release(&self, resource: &str, token: &LockToken) -> Result<Release> {
        const OP: &str = "lock.release";
        let key = self.key(resource).map_err(|e| e.with_operation(OP))?;
        self.release_key(&key, token).await
    }

    /// Makes `token`'s hold on `resource` end `ttl` from now.
    ///
    /// # Behavior
    /// [`Extend::NotHeld`] for a stranger's or stale token (an expired hold
    /// cannot be revived): the holder's lock is untouched. One atomic
    /// operation.
    ///
    /// # Errors
    /// As [`release`](Locks::release), and [`ErrorKind::InvalidInput`] for
    /// a bad `ttl`.
    pub async fn extend(&self, resource: &str, token: &LockToken, ttl: Duration) -> Result<Extend> {
        const OP: &str = "lock.extend";
        let key = self.key(resource).map_err(|e| e.with_operation(OP))?;
        self.extend_key(&key, token, ttl).await
    }

    /// Whether someone holds `resource`'s lock now.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`], [`ErrorKind::CorruptData`], store errors.
    pub async fn is_locked(&self, resource: &str) -> Result<bool> {
        Ok(self.info(resource).await?.is_locked())
    }

    /// How long the current hold on `resource` has left; `None` when free.
    ///
    /// # Errors
    /// As [`is_locked`](Locks::is_locked).
    pub async fn ttl(&self, resource: &str) -> Result<Option<Duration>> {
        Ok(self.info(resource).await?.remaining)
    }

    /// `resource`'s lock state: the hold's remaining time and the last
    /// fencing token issued.
    ///
    /// # Errors
    /// As [`is_locked`](Locks::is_locked).
    pub async fn info(&self, resource: &str) -> Result<LockInfo> {
        const OP: &str = "lock.info";
        let key = self.key(resource).map_err(|e| e.with_operation(OP))?;
        self.run(&key, &InspectOp, OP).await
    }

    async fn run<O>(&self, key: &Key, op: &O, name: &'static str) -> Result<O::Output>
    where
        O: AtomicOp + MaybeSync,
        O::Output: MaybeSend,
    {
        let inner = &*self.inner;
        crate::run(&inner.store, key, op, &*inner.clock, inner.script_time)
            .await
            .map_err(|e| e.with_operation(name).with_key(key))
    }

    pub(crate) async fn release_key(&self, key: &Key, token: &LockToken) -> Result<Release> {
        const OP: &str = "lock.release";
        let op = ReleaseOp::new(token.clone(), self.inner.config.fence_retention)
            .map_err(|e| e.with_operation(OP).with_key(key))?;
        self.run(key, &op, OP).await
    }

    pub(crate) async fn extend_key(
        &self,
        key: &Key,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Extend> {
        const OP: &str = "lock.extend";
        let op = ExtendOp::new(token.clone(), ttl, self.inner.config.fence_retention)
            .map_err(|e| e.with_operation(OP).with_key(key))?;
        self.run(key, &op, OP).await
    }

    async fn acquire_with(
        &self,
        resource: &str,
        ttl: Duration,
        limit: Limit,
        name: &'static str,
    ) -> Result<Option<LockGuard<S>>> {
        let key = self.key(resource).map_err(|e| e.with_operation(name))?;
        let token = LockToken::random().map_err(|e| e.with_operation(name))?;
        let op = AcquireOp::new(token.clone(), ttl, self.inner.config.fence_retention)
            .map_err(|e| e.with_operation(name).with_key(&key))?;
        let clock = &self.inner.clock;
        let started = clock.now();
        let mut slept = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            let attempt_started = clock.now();
            let remaining = match self.run(&key, &op, name).await? {
                Acquire::Acquired { fence, expires_at } => {
                    return Ok(Some(LockGuard {
                        locks: self.clone(),
                        resource: resource.into(),
                        key,
                        token,
                        fence,
                        expires_at,
                        valid_until: attempt_started.saturating_add(ttl),
                    }));
                }
                Acquire::Held { remaining } => remaining,
            };
            // No point sleeping past the moment the current hold expires.
            let mut pause = self
                .retry_pause(attempt)
                .map_err(|e| e.with_operation(name))?
                .min(remaining);
            match limit {
                Limit::Retries(n) if attempt >= n => return Ok(None),
                Limit::Retries(_) => {}
                Limit::Wait(wait) => {
                    let waited = clock.now().saturating_duration_since(started).max(slept);
                    if waited >= wait {
                        return Ok(None);
                    }
                    pause = pause.min(wait - waited);
                }
            }
            crate::rt::sleep_available().map_err(|e| e.with_operation(name).with_key(&key))?;
            watchdog::pause(pause).await;
            slept += pause;
            attempt = attempt.saturating_add(1);
        }
    }

    /// The pause before retry number `attempt + 1`: exponential backoff up
    /// to `retry_delay`, plus a random share of `retry_jitter` scaled alike.
    fn retry_pause(&self, attempt: u32) -> Result<Duration> {
        let config = &self.inner.config;
        let scale = 1u32 << BACKOFF_STEPS.saturating_sub(attempt);
        let delay = config.retry_delay / scale;
        let jitter_us = state::micros(config.retry_jitter / scale);
        let extra = if jitter_us == 0 {
            0
        } else {
            crate::rt::random_u64()? % (jitter_us + 1)
        };
        Ok(delay + Duration::from_micros(extra))
    }
}

/// A held lock: its resource, token and fencing token.
///
/// Release it with [`release`](LockGuard::release). A guard dropped
/// without releasing leaves the lock held until its TTL runs out, exactly
/// like a holder that crashed (releasing needs a store round trip, which
/// `Drop` cannot make).
#[must_use = "the lock stays held until released or until its TTL runs out"]
pub struct LockGuard<S> {
    locks: Locks<S>,
    resource: String,
    key: Key,
    token: LockToken,
    fence: u64,
    expires_at: Timestamp,
    /// The [`Locks`] clock's time by which the hold surely ends: the start
    /// of the successful request plus the TTL.
    valid_until: Timestamp,
}

impl<S> fmt::Debug for LockGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("resource", &self.resource)
            .field("fence", &self.fence)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl<S: Store> LockGuard<S> {
    /// The resource locked.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The key holding the lock state.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The fencing token of this hold: greater than that of every earlier
    /// hold on the resource. Pass it with every write to the protected
    /// resource.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// The secret token that proves this hold.
    pub fn token(&self) -> &LockToken {
        &self.token
    }

    /// When the hold ends unless extended, by the store's clock (the
    /// server's on Redis).
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Makes the hold end `ttl` from now; [`Extend::NotHeld`] if it has
    /// expired or passed to someone else (nothing is changed then).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a bad `ttl`, store errors.
    pub async fn extend(&mut self, ttl: Duration) -> Result<Extend> {
        let started = self.locks.clock().now();
        let outcome = self.locks.extend_key(&self.key, &self.token, ttl).await?;
        if let Extend::Extended { expires_at } = outcome {
            self.expires_at = expires_at;
            self.valid_until = started.saturating_add(ttl);
        }
        Ok(outcome)
    }

    /// Releases the lock; [`Release::NotHeld`] if it expired (and maybe
    /// passed to someone else) before this call.
    ///
    /// # Errors
    /// Store errors; the lock then expires after its TTL.
    pub async fn release(self) -> Result<Release> {
        self.locks.release_key(&self.key, &self.token).await
    }
}

/// The `now` argument of a Lua twin: only when the caller's clock rules.
pub(crate) fn script_now(now: Option<Timestamp>) -> Option<crate::Arg> {
    now.map(|t| crate::Arg::from(t.as_micros()))
}

/// The status code that starts every lock script reply; `-1` (corrupt
/// state) and `-2` (time out of range) become the errors the pure faces
/// return.
pub(crate) fn reply_code(items: &[Value]) -> Result<i64> {
    let code = items
        .first()
        .ok_or_else(|| Error::backend("empty reply from a lock script"))?
        .as_int()?;
    match code {
        -1 => Err(Error::corrupt(
            "the value is not a rampart lock state (version 1)",
        )),
        -2 => Err(Error::invalid_input(
            "the clock or fencing token is beyond 2^53 microseconds",
        )),
        code => Ok(code),
    }
}

/// A non-negative integer in a script reply.
pub(crate) fn reply_u64(value: &Value) -> Result<u64> {
    u64::try_from(value.as_int()?)
        .map_err(|_| Error::backend("negative number in a lock script reply"))
}

/// Durations as whole milliseconds in configuration files.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Optional durations as whole milliseconds (`null` = none).
mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_serde() {
        let c = LockConfig::default();
        assert_eq!(c.ttl, Duration::from_secs(30));
        assert!(c.validate().is_ok());
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"ttl_ms\":30000"), "{json}");
        let back: LockConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let custom: LockConfig =
            serde_json::from_str(r#"{"prefix":"locks","ttl_ms":5000,"fence_retention_ms":null}"#)
                .unwrap();
        assert_eq!(custom.prefix, "locks");
        assert_eq!(custom.ttl, Duration::from_secs(5));
        assert_eq!(custom.fence_retention, None);
        assert_eq!(custom.retry_count, DEFAULT_RETRY_COUNT);
    }

    #[test]
    fn invalid_configs_are_config_errors() {
        let bad = [
            LockConfig {
                prefix: String::new(),
                ..LockConfig::default()
            },
            LockConfig {
                ttl: Duration::ZERO,
                ..LockConfig::default()
            },
            LockConfig {
                fence_retention: Some(Duration::ZERO),
                ..LockConfig::default()
            },
            LockConfig {
                watchdog_interval: Some(Duration::ZERO),
                ..LockConfig::default()
            },
            LockConfig {
                prefix: "p".repeat(crate::MAX_KEY_LEN + 1),
                ..LockConfig::default()
            },
        ];
        for config in bad {
            let err = config.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{config:?}");
        }
    }

    #[test]
    fn backoff_grows_to_the_steady_delay() {
        let locks = Locks::builder(crate::MemoryStore::new())
            .config(LockConfig {
                retry_jitter: Duration::ZERO,
                ..LockConfig::default()
            })
            .build()
            .unwrap();
        let pauses: Vec<_> = (0..7).map(|a| locks.retry_pause(a).unwrap()).collect();
        assert_eq!(
            pauses,
            [12_500, 25_000, 50_000, 100_000, 200_000, 200_000, 200_000].map(Duration::from_micros)
        );
        let jittery = Locks::new(crate::MemoryStore::new());
        for attempt in 0..8 {
            let p = jittery.retry_pause(attempt).unwrap();
            let scale = 1u32 << BACKOFF_STEPS.saturating_sub(attempt);
            assert!(p >= DEFAULT_RETRY_DELAY / scale);
            assert!(p <= (DEFAULT_RETRY_DELAY + DEFAULT_RETRY_JITTER) / scale);
        }
    }
}
