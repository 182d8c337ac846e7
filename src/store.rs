//! The [`Store`] contract every backend implements.
//!
//! A backend implements six required methods (`get`, `set`, `delete`, `ttl`,
//! `compare_and_swap`, `scan`) and inherits correct versions of everything
//! else; a backend with an atomic update or Lua scripting overrides the
//! provided methods to do each in one step.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Arg, Error, Key, LocalUpdateFn, Result, Script, Timestamp, Value};

/// `Send` natively; nothing on wasm, where futures and values need not be.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` natively; nothing on wasm, where futures and values need not be.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` natively; nothing on wasm.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` natively; nothing on wasm.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// The closure of [`Store::update`]: sees the current value (`None` when the
/// key is missing or expired) and says what to do with it.
///
/// It may run more than once (a CAS store retries on conflict); only the
/// decision of its last run takes effect.
#[cfg(not(target_arch = "wasm32"))]
pub type UpdateFn<'a> = dyn FnMut(Option<&[u8]>) -> Change + Send + 'a;
/// The closure of [`Store::update`] (wasm: no `Send`).
#[cfg(target_arch = "wasm32")]
pub type UpdateFn<'a> = dyn FnMut(Option<&[u8]>) -> Change + 'a;

/// The messages published on a channel after [`Store::subscribe`], in
/// order; the stream ends when the store drops the subscription.
#[cfg(not(target_arch = "wasm32"))]
pub type Subscription = std::pin::Pin<Box<dyn futures_util::Stream<Item = Bytes> + Send + 'static>>;
/// The messages published on a channel after [`Store::subscribe`] (wasm).
#[cfg(target_arch = "wasm32")]
pub type Subscription = std::pin::Pin<Box<dyn futures_util::Stream<Item = Bytes> + 'static>>;

/// The longest TTL a store accepts (100 years); use `None` for "never expires".
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// How many times the default [`Store::update`] retries a lost
/// compare-and-swap before it gives up with [`crate::ErrorKind::Conflict`].
pub const MAX_CAS_ATTEMPTS: u32 = 1_000;

/// Checks a TTL: `None` (no expiry) or between 1 µs and [`MAX_TTL`].
///
/// Every store calls this, so a zero or absurd TTL is the same typed
/// [`crate::ErrorKind::InvalidInput`] error everywhere.
pub fn check_ttl(ttl: Option<Duration>) -> Result<()> {
    match ttl {
        Some(d) if d.is_zero() => Err(Error::invalid_input(
            "a TTL must be positive; pass None for a value that does not expire",
        )),
        Some(d) if d > MAX_TTL => Err(Error::invalid_input(format!(
            "a TTL of {}s is longer than the maximum of 100 years; pass None for a value that does not expire",
            d.as_secs()
        ))),
        _ => Ok(()),
    }
}

/// What a store can do beyond the required methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Runs Redis-compatible Lua ([`Store::eval`]): one round trip per
    /// atomic operation.
    pub scripting: bool,
    /// Offers publish/subscribe (cache invalidation broadcasts).
    pub pubsub: bool,
    /// Offers a server clock ([`Store::server_time`]).
    pub server_clock: bool,
    /// Runs [`Store::update`] in process under its own lock: one step, no
    /// retries, no round trip.
    pub atomic_update: bool,
}

impl Capabilities {
    /// No capabilities: a plain key-value store.
    pub const NONE: Capabilities = Capabilities {
        scripting: false,
        pubsub: false,
        server_clock: false,
        atomic_update: false,
    };
    /// An in-process store with an atomic update.
    pub const IN_PROCESS: Capabilities = Capabilities {
        scripting: false,
        pubsub: false,
        server_clock: false,
        atomic_update: true,
    };
    /// A Redis-compatible server.
    pub const REDIS: Capabilities = Capabilities {
        scripting: true,
        pubsub: true,
        server_clock: true,
        atomic_update: false,
    };
}

/// The remaining life of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTtl {
    /// No such key (or it has expired).
    Missing,
    /// The key exists and does not expire.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// The outcome of [`Store::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The expected value was there and has been replaced.
    Swapped,
    /// Something else was there: the current value (`None` = absent), so a
    /// retry needs no second read.
    Conflict(Option<Bytes>),
}

/// What an [`UpdateFn`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Leave the key as it is.
    Keep,
    /// Store `value`, expiring after `ttl` (`None` = never).
    Set {
        /// The new value.
        value: Bytes,
        /// Its TTL (`None` = never expires).
        ttl: Option<Duration>,
    },
    /// Store `value` and keep the key's current TTL (none if it was missing).
    SetKeepTtl(Bytes),
    /// Delete the key.
    Remove,
}

/// The outcome of [`Store::update`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Updated {
    /// The key's value after the update (`None` = absent).
    pub value: Option<Bytes>,
    /// Whether the store was written (`false` for [`Change::Keep`], or
    /// removing a missing key).
    pub changed: bool,
    /// How many times the closure ran (1 unless a CAS lost a race).
    pub attempts: u32,
}

impl Updated {
    /// An outcome from its parts.
    pub fn new(value: Option<Bytes>, changed: bool, attempts: u32) -> Self {
        Self {
            value,
            changed,
            attempts,
        }
    }
}

/// The outcome of [`Store::run_atomic`]: a script's reply, or the update
/// that ran instead on a store without scripting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atomic {
    /// The Lua twin ran; its reply.
    Scripted(Value),
    /// The pure function ran through [`Store::update`].
    Applied(Updated),
}

/// Where a [`Store::scan`] continues; opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Cursor(String);

impl Cursor {
    /// The start of a scan.
    pub fn start() -> Self {
        Cursor(String::new())
    }
    /// A cursor from a backend's own representation.
    pub fn from_raw(raw: impl Into<String>) -> Self {
        Cursor(raw.into())
    }
    /// The backend's representation.
    pub fn as_raw(&self) -> &str {
        &self.0
    }
    /// Whether this is the start of a scan.
    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }
}

/// One page of a [`Store::scan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// Keys on this page (possibly none, even when more follow).
    pub keys: Vec<Key>,
    /// Where to continue; `None` when the scan is complete.
    pub next: Option<Cursor>,
}

/// What a store knows about itself, for `/health` and cache stats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Keys stored, if known.
    pub keys: Option<u64>,
    /// Bytes of memory used, if known.
    pub memory_bytes: Option<u64>,
    /// The store's kind and version (e.g. `redis 7.0.15`), if known.
    pub server: Option<String>,
}

/// A key-value store with expiry and compare-and-swap: everything rampart
/// needs, and all a new backend has to provide.
///
/// Values are opaque bytes. Every method validates its TTL with
/// [`check_ttl`]; keys are valid by construction ([`Key`]).
///
/// # Implementing
/// Required: [`get`](Store::get), [`set`](Store::set),
/// [`delete`](Store::delete), [`ttl`](Store::ttl),
/// [`compare_and_swap`](Store::compare_and_swap), [`scan`](Store::scan).
/// Everything else has a correct default built on those; override it to
/// do the same in one step. Run `rampart::testkit`'s suite against the
/// backend to check it.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait Store: MaybeSend + MaybeSync {
    /// What this store can do beyond the required methods.
    ///
    /// # Behavior
    /// Cheap and constant for a store's life; callers may ask on every
    /// operation.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// The value under `key`.
    ///
    /// # Behavior
    /// `None` for a missing or expired key. Values of any size the store
    /// accepted are returned whole.
    async fn get(&self, key: &Key) -> Result<Option<Bytes>>;

    /// Stores `value` under `key`, replacing any value and TTL.
    ///
    /// # Behavior
    /// `ttl: None` means the value never expires; `Some(d)` means it is gone
    /// after `d` (stores round up to their precision, at worst a
    /// millisecond). A zero TTL or one above [`MAX_TTL`] is
    /// [`crate::ErrorKind::InvalidInput`] and nothing is written. Empty
    /// values are values (distinct from a missing key).
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()>;

    /// Deletes `key`.
    ///
    /// # Behavior
    /// `true` if a live value was deleted, `false` if the key was missing or
    /// already expired.
    async fn delete(&self, key: &Key) -> Result<bool>;

    /// The remaining life of `key`.
    ///
    /// # Behavior
    /// [`KeyTtl::Missing`] for a missing or expired key,
    /// [`KeyTtl::Persistent`] for one without a TTL, otherwise the time left
    /// (never zero: a key with no time left is missing).
    async fn ttl(&self, key: &Key) -> Result<KeyTtl>;

    /// Atomically: if `key` holds `expected` (`None` = missing or expired),
    /// replace it with `new` (`None` = delete) expiring after `ttl`.
    ///
    /// # Behavior
    /// [`Swap::Swapped`] when the swap happened. [`Swap::Conflict`] carries
    /// the value found instead, so a retry needs no second read. `ttl` is
    /// checked with [`check_ttl`] and ignored when `new` is `None`.
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap>;

    /// One page of the keys that start with `prefix`, from `cursor`.
    ///
    /// # Behavior
    /// `prefix` is literal text (glob characters in it match only
    /// themselves; `""` means every key). Start with [`Cursor::start`] and
    /// follow `next` until it is `None`: every key that lives through the
    /// whole scan is returned at least once; keys created or deleted during
    /// it may or may not be. `count` is a hint for the page size; a page may
    /// be empty while more follow. Expired keys are not returned. Never
    /// blocks the store the way Redis `KEYS` does.
    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page>;

    /// The in-process fast path of [`update`](Store::update): runs `f`
    /// synchronously, once, under the store's own lock, giving it the
    /// current value and the store's `now`. `None` when the store has no
    /// such path (every store with I/O; the default): callers then use
    /// [`update`](Store::update).
    ///
    /// # Behavior
    /// Like [`update`](Store::update) with [`crate::LocalChange`] in place of
    /// [`Change`]: an expired key is `None`; a TTL is checked with
    /// [`check_ttl`] (nothing is written when it is invalid). Values set
    /// here are read back by every other method as usual. A store may
    /// answer `None` on one call and run the next; the rate limiter's
    /// decisions are the same either way.
    fn update_local(&self, key: &Key, f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
        let _ = (key, f);
        None
    }

    /// Atomic read-modify-write: `f` sees the current value and returns the
    /// [`Change`] to make.
    ///
    /// # Behavior
    /// The default is a compare-and-swap loop: read, run `f`, swap; on a
    /// conflict run `f` again on the value the swap found, up to
    /// [`MAX_CAS_ATTEMPTS`] times (then [`crate::ErrorKind::Conflict`]).
    /// In-process stores override it to run `f` once under their own lock.
    /// No update is lost under concurrency. [`Change::SetKeepTtl`] keeps the
    /// key's remaining TTL (the default reads it first).
    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        let mut current = self.get(key).await?;
        for attempt in 1..=MAX_CAS_ATTEMPTS {
            let (new, ttl) = match f(current.as_deref()) {
                Change::Keep => return Ok(Updated::new(current, false, attempt)),
                Change::Remove if current.is_none() => {
                    return Ok(Updated::new(None, false, attempt))
                }
                Change::Remove => (None, None),
                Change::Set { value, ttl } => (Some(value), ttl),
                Change::SetKeepTtl(value) => {
                    let ttl = match self.ttl(key).await? {
                        KeyTtl::Expires(d) => Some(d),
                        KeyTtl::Missing | KeyTtl::Persistent => None,
                    };
                    (Some(value), ttl)
                }
            };
            match self
                .compare_and_swap(key, current.as_deref(), new.clone(), ttl)
                .await?
            {
                Swap::Swapped => return Ok(Updated::new(new, true, attempt)),
                Swap::Conflict(found) => current = found,
            }
        }
        Err(Error::new(
            crate::ErrorKind::Conflict,
            "update lost the compare-and-swap race too many times",
        )
        .with_operation("update")
        .with_key(key))
    }

    /// Runs one atomic operation: `script` (with `key` as `KEYS[1]` and
    /// `args` as `ARGV`) where the store runs Lua, otherwise `apply` through
    /// [`Store::update`]. Both faces compute the same thing; see
    /// [`crate::AtomicOp`].
    ///
    /// # Behavior
    /// Layers such as `Fallback` override it so an operation can move to a
    /// store with the other face.
    async fn run_atomic(
        &self,
        key: &Key,
        script: &Script,
        args: &[Arg],
        apply: &mut UpdateFn<'_>,
    ) -> Result<Atomic> {
        if self.capabilities().scripting {
            Ok(Atomic::Scripted(self.eval(script, &[key], args).await?))
        } else {
            Ok(Atomic::Applied(self.update(key, apply).await?))
        }
    }

    /// Stores `value` only if `key` is missing; `true` if it did.
    ///
    /// # Behavior
    /// Atomic (Redis `SET NX`). An expired key counts as missing.
    async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        check_ttl(ttl)?;
        Ok(matches!(
            self.compare_and_swap(key, None, Some(value), ttl).await?,
            Swap::Swapped
        ))
    }

    /// Deletes `key` only if it holds `expected`; `true` if it did.
    ///
    /// # Behavior
    /// Atomic: a lock release that never deletes another holder's lock.
    async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
        Ok(matches!(
            self.compare_and_swap(key, Some(expected), None, None)
                .await?,
            Swap::Swapped
        ))
    }

    /// Sets a new TTL on `key` only if it holds `expected`; `true` if it did.
    ///
    /// # Behavior
    /// Atomic: a lock extension that never extends another holder's lock.
    /// `ttl: None` makes the key persistent.
    async fn expire_if_equal(
        &self,
        key: &Key,
        expected: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        check_ttl(ttl)?;
        let value = Bytes::copy_from_slice(expected);
        Ok(matches!(
            self.compare_and_swap(key, Some(expected), Some(value), ttl)
                .await?,
            Swap::Swapped
        ))
    }

    /// Adds `delta` to the integer under `key` and returns the new value.
    ///
    /// # Behavior
    /// Values are decimal text, as Redis `INCRBY` keeps them. A missing key
    /// counts as 0 and is created with `ttl_if_created`; an existing key
    /// keeps its TTL. A value that is not an integer is
    /// [`crate::ErrorKind::CorruptData`]; overflow is
    /// [`crate::ErrorKind::InvalidInput`]; neither changes the value.
    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64> {
        check_ttl(ttl_if_created)?;
        let mut outcome: Result<i64> = Ok(0);
        self.update(key, &mut |current| {
            let (next, created) = match current.map(parse_counter).transpose() {
                Ok(value) => match value.unwrap_or(0).checked_add(delta) {
                    Some(next) => (next, value.is_none()),
                    None => {
                        outcome = Err(Error::invalid_input("increment overflows an i64"));
                        return Change::Keep;
                    }
                },
                Err(e) => {
                    outcome = Err(e);
                    return Change::Keep;
                }
            };
            outcome = Ok(next);
            let value = Bytes::from(next.to_string());
            if created {
                Change::Set {
                    value,
                    ttl: ttl_if_created,
                }
            } else {
                Change::SetKeepTtl(value)
            }
        })
        .await?;
        outcome.map_err(|e| e.with_operation("increment").with_key(key))
    }

    /// The values of several keys, in order.
    ///
    /// # Behavior
    /// One entry per key, `None` for missing ones; not a snapshot (each key
    /// is read atomically on its own).
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    /// Deletes several keys; returns how many live values were deleted.
    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        let mut n = 0;
        for key in keys {
            n += u64::from(self.delete(key).await?);
        }
        Ok(n)
    }

    /// Runs a Redis-compatible Lua script.
    ///
    /// # Behavior
    /// Only when `capabilities().scripting`; otherwise
    /// [`crate::ErrorKind::Unsupported`].
    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        let _ = (script, keys, args);
        Err(Error::unsupported("eval"))
    }

    /// Sends `message` to every current subscriber of `channel` (in this
    /// process and, on a shared store, in every other one).
    ///
    /// # Behavior
    /// Only when `capabilities().pubsub`; otherwise
    /// [`crate::ErrorKind::Unsupported`]. Fire-and-forget: a message with no
    /// subscriber is dropped. Channel names follow the rules of keys.
    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        let _ = (channel, message);
        Err(Error::unsupported("publish"))
    }

    /// Receives the messages published on `channel` from now on.
    ///
    /// # Behavior
    /// Only when `capabilities().pubsub`; otherwise
    /// [`crate::ErrorKind::Unsupported`]. Delivery is at most once: a
    /// message published while a store reconnects may be lost, so
    /// subscribers must tolerate gaps (the two-tier cache bounds staleness
    /// with its L1 TTL).
    async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
        let _ = channel;
        Err(Error::unsupported("subscribe"))
    }

    /// The store's own clock, so app servers with skewed clocks agree.
    ///
    /// # Behavior
    /// Only when `capabilities().server_clock`; otherwise
    /// [`crate::ErrorKind::Unsupported`].
    async fn server_time(&self) -> Result<Timestamp> {
        Err(Error::unsupported("server_time"))
    }

    /// What the store knows about itself (key count, memory, version).
    ///
    /// # Behavior
    /// Fields the store cannot tell are `None`.
    async fn stats(&self) -> Result<StoreStats> {
        Ok(StoreStats::default())
    }
}

/// Parses a counter stored as decimal text.
pub(crate) fn parse_counter(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Error::corrupt("stored value is not a decimal integer"))
}

macro_rules! forward_store {
    ($($t:tt)*) => {
        #[cfg_attr(not(target_arch = "wasm32"), async_trait)]
        #[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
        #[deny(clippy::missing_trait_methods)]
        impl<S: Store + ?Sized> Store for $($t)* {
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
                (**self).get(key).await
            }
            async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
                (**self).set(key, value, ttl).await
            }
            async fn delete(&self, key: &Key) -> Result<bool> {
                (**self).delete(key).await
            }
            async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
                (**self).ttl(key).await
            }
            async fn compare_and_swap(
                &self,
                key: &Key,
                expected: Option<&[u8]>,
                new: Option<Bytes>,
                ttl: Option<Duration>,
            ) -> Result<Swap> {
                (**self).compare_and_swap(key, expected, new, ttl).await
            }
            async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
                (**self).scan(prefix, cursor, count).await
            }
            async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
                (**self).update(key, f).await
            }
            fn update_local(&self, key: &Key, f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
                (**self).update_local(key, f)
            }
            async fn run_atomic(
                &self,
                key: &Key,
                script: &Script,
                args: &[Arg],
                apply: &mut UpdateFn<'_>,
            ) -> Result<Atomic> {
                (**self).run_atomic(key, script, args, apply).await
            }
            async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
                (**self).set_if_absent(key, value, ttl).await
            }
            async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
                (**self).delete_if_equal(key, expected).await
            }
            async fn expire_if_equal(&self, key: &Key, expected: &[u8], ttl: Option<Duration>) -> Result<bool> {
                (**self).expire_if_equal(key, expected, ttl).await
            }
            async fn increment(&self, key: &Key, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
                (**self).increment(key, delta, ttl_if_created).await
            }
            async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
                (**self).get_many(keys).await
            }
            async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
                (**self).delete_many(keys).await
            }
            async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
                (**self).eval(script, keys, args).await
            }
            async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
                (**self).publish(channel, message).await
            }
            async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
                (**self).subscribe(channel).await
            }
            async fn server_time(&self) -> Result<Timestamp> {
                (**self).server_time().await
            }
            async fn stats(&self) -> Result<StoreStats> {
                (**self).stats().await
            }
        }
    };
}

forward_store!(std::sync::Arc<S>);
forward_store!(Box<S>);
