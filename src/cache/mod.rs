//! [`Cache`]: a typed cache-aside over any [`Store`], with request
//! coalescing, stale-while-revalidate, O(1) tag invalidation, stats,
//! optional compression and an optional in-process L1 tier.
//!
//! ```
//! use std::time::Duration;
//! use rampart::{cache::{Cache, EntryOptions}, MemoryStore};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
//! struct User { id: u64, name: String }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cache = Cache::builder(MemoryStore::new())
//!     .namespace("app")
//!     .default_ttl(Duration::from_secs(60))
//!     .stale_while_revalidate(Duration::from_secs(30))
//!     .build()?;
//!
//! // Cache-aside: the loader runs on a miss (once, however many callers
//! // miss at the same time); the entry carries the tag "team:1".
//! let user: User = cache
//!     .get_or_set("user:1", EntryOptions::new().tag("team:1"), || async {
//!         Ok(User { id: 1, name: "Ada".into() })
//!     })
//!     .await?;
//! assert_eq!(cache.get::<User>("user:1").await?, Some(user));
//!
//! // One write invalidates every entry of the tag.
//! cache.invalidate_tag("team:1").await?;
//! assert_eq!(cache.get::<User>("user:1").await?, None);
//! assert_eq!(cache.counters().loader_calls, 1);
//! # Ok::<(), rampart::Error>(()) }).unwrap();
//! ```
//!
//! # Keys
//! Under a namespace (default `cache`), entries live at
//! `<namespace>:k:<key>`, tag versions at `<namespace>:t:<tag>`, and a
//! two-tier cache broadcasts on the channel `<namespace>:invalidations`.
//!
//! # Freshness
//! An entry is *fresh* for its TTL (the entry's own, else the cache's
//! default, shortened by up to the jitter ratio so entries written together
//! do not expire together), then *stale* for the grace period of
//! stale-while-revalidate, then gone (the store expires it). [`Cache::get`]
//! returns fresh values only; [`Cache::get_or_set`] serves a stale value at
//! once and starts exactly one background refresh per key and process.
//!
//! # Failures
//! [`Cache::get_or_set`] degrades gracefully: when the store fails it still
//! returns the loader's value (and counts the error). A stored value that
//! cannot be decoded (corrupt, foreign, another codec, another type) is a
//! miss, counted in [`CacheStats::corrupt`], and overwritten by the next
//! write. The explicit operations (`get`, `set`, `delete`, invalidations)
//! return store errors to the caller, since silently losing an
//! invalidation would serve stale data.
//!
//! The submodules' docs give the entry format ([`envelope`]), the tag
//! scheme and its cost on Redis ([`tags`]), coalescing ([`flight`]) and the
//! two-tier protocol ([`tier`]).

mod builder;
pub mod envelope;
pub mod flight;
mod load;
mod names;
mod options;
mod read;
mod stats;
pub mod tags;
pub mod tier;
mod write;

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{ready, Either, FutureExt, Shared};
use serde::{de::DeserializeOwned, Serialize};

use self::flight::Flights;
use self::names::{Names, Rng};
use self::options::Config;
use self::read::Found;
use self::stats::{bump, Counters};
use self::tags::encode_version;
use self::tier::{delete_scan, literal_prefix, Invalidation, Tier};
use crate::{
    glob_match, validate_prefix, Codec, Error, ErrorKind, Json, Key, KeyTtl, MaybeSend, Result,
    SharedClock, Store, MAX_KEY_LEN,
};

pub use self::builder::CacheBuilder;
pub use self::options::EntryOptions;
pub use self::stats::CacheStats;

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "cache";
/// The default TTL of entries (5 minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// The default life of a tag's version key (7 days).
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A typed cache over a [`Store`], values encoded with `C` (JSON by default).
///
/// Cheap to clone (clones share everything: store, counters, in-flight
/// loads). See the [module docs](self) for the behavior.
pub struct Cache<S, C = Json> {
    inner: Arc<Inner<S, C>>,
}

impl<S, C> Clone for Cache<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S, C> {
    store: S,
    codec: C,
    names: Names,
    config: Config,
    clock: SharedClock,
    rng: Rng,
    counters: Arc<Counters>,
    flights: Arc<Flights>,
    tier: Option<Arc<Tier>>,
    /// The clock is the system clock, as the store's expiry is.
    system_clock: bool,
    /// Resolves once the L1 listener has subscribed (`true`) or given up.
    ready: Option<Shared<oneshot::Receiver<bool>>>,
    /// Dropped with the cache: stops the L1 listener.
    _shutdown: Option<oneshot::Sender<()>>,
}

impl<S, C> fmt::Debug for Cache<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Cache")
            .field("namespace", &inner.names.namespace)
            .field("config", &inner.config)
            .field("two_tier", &inner.tier.is_some())
            .field("clock", &inner.clock)
            .finish()
    }
}

impl<S: Store + 'static, C: Codec + 'static> Cache<S, C> {
    /// The store (the L2 of a two-tier cache).
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.names.namespace
    }

    /// Waits until a two-tier cache's L1 is in use (its invalidation
    /// subscription is live); at once for a one-tier cache.
    ///
    /// The L1 is bypassed until then, so waiting is never needed for
    /// correctness; tests and warm-up code use it. An error if the
    /// subscription can never work (no runtime, no pub/sub).
    pub async fn ready(&self) -> Result<()> {
        match &self.inner.ready {
            None => Ok(()),
            Some(ready) => match ready.clone().await {
                Ok(true) => Ok(()),
                _ => Err(Error::new(
                    ErrorKind::Unavailable,
                    "the two-tier cache could not subscribe to invalidations",
                )
                .with_operation("cache.ready")),
            },
        }
    }

    /// The fresh value under `key`, `None` when missing, expired, stale,
    /// invalidated, cached as "not found", or undecodable (counted as
    /// corrupt).
    ///
    /// # Errors
    /// An invalid key, or the store failing.
    pub fn get<'a, T: DeserializeOwned + 'a>(
        &'a self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>>> + 'a {
        match self.inner.names.entry(key) {
            Ok(key) => Either::Left(self.get_entry(key)),
            Err(e) => Either::Right(ready(Err(e))),
        }
    }

    async fn get_entry<T: DeserializeOwned>(&self, key: Key) -> Result<Option<T>> {
        let inner = &*self.inner;
        let read = inner
            .read(&key, &[])
            .await
            .map_err(|e| inner.failed(e, "cache.get"))?;
        match read.found {
            Found::Fresh(env) => match inner.decode_value(&env) {
                Ok(value) => {
                    bump(&inner.counters.hits);
                    Ok(value)
                }
                Err(_) => {
                    bump(&inner.counters.corrupt);
                    bump(&inner.counters.misses);
                    Ok(None)
                }
            },
            Found::Stale(_) | Found::Miss => {
                bump(&inner.counters.misses);
                Ok(None)
            }
        }
    }

    /// Stores `value` under `key` with `options` (a [`Duration`] is a TTL;
    /// `EntryOptions::new()` the defaults), replacing any entry.
    ///
    /// # Errors
    /// An invalid key, TTL or tag; a value the codec cannot encode; the
    /// store failing.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        options: impl Into<EntryOptions>,
    ) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.names.entry(key)?;
        let plan = inner.plan(options.into())?;
        let payload = inner.codec.encode(value).map_err(|e| e.with_key(&key))?;
        let tags = inner
            .current_tags(&plan, None)
            .await
            .map_err(|e| inner.failed(e, "cache.set"))?;
        let (raw, ttl) = inner.entry_bytes(&plan, &tags, Some(&payload));
        inner
            .store
            .set(&key, raw, ttl)
            .await
            .map_err(|e| inner.failed(e, "cache.set"))?;
        bump(&inner.counters.sets);
        inner.broadcast(Invalidation::Key(key)).await;
        Ok(())
    }

    /// Deletes `key`; `true` if an entry was there.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let inner = &*self.inner;
        let key = inner.names.entry(key)?;
        let deleted = inner
            .store
            .delete(&key)
            .await
            .map_err(|e| inner.failed(e, "cache.delete"))?;
        if deleted {
            bump(&inner.counters.deletes);
        }
        inner.broadcast(Invalidation::Key(key)).await;
        Ok(deleted)
    }

    /// Whether a fresh entry is under `key` (what [`Cache::get`] would
    /// return, without decoding it).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let inner = &*self.inner;
        let key = inner.names.entry(key)?;
        let read = inner
            .read(&key, &[])
            .await
            .map_err(|e| inner.failed(e, "cache.exists"))?;
        Ok(match read.found {
            // Checked as `get` would decode it, whatever the type.
            Found::Fresh(env) if !env.negative => {
                let valid = inner.decode_value::<serde::de::IgnoredAny>(&env).is_ok();
                if !valid {
                    bump(&inner.counters.corrupt);
                }
                valid
            }
            _ => false,
        })
    }

    /// How long the entry under `key` stays fresh: [`KeyTtl::Missing`] if
    /// there is no fresh entry, [`KeyTtl::Persistent`] if it never expires.
    pub async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let inner = &*self.inner;
        let key = inner.names.entry(key)?;
        let read = inner
            .read(&key, &[])
            .await
            .map_err(|e| inner.failed(e, "cache.ttl"))?;
        Ok(match read.found {
            Found::Fresh(env) if env.negative => KeyTtl::Missing,
            Found::Fresh(env) if env.fresh_until == u64::MAX => KeyTtl::Persistent,
            Found::Fresh(env) => KeyTtl::Expires(Duration::from_micros(
                env.fresh_until.saturating_sub(inner.now()).max(1),
            )),
            Found::Stale(_) | Found::Miss => KeyTtl::Missing,
        })
    }

    /// Cache-aside: the value under `key`, or the loader's, which is then
    /// stored with `options`.
    ///
    /// * **Coalescing**: callers in this process that miss the same key
    ///   while a loader runs wait for it instead of calling theirs; all get
    ///   its value, or its error (errors are never cached).
    /// * **Stale-while-revalidate**: a stale entry (within its grace
    ///   period) is returned at once and exactly one background refresh
    ///   runs (on this process's runtime; without one, the caller waits for
    ///   the refresh instead).
    /// * **Degradation**: if the store fails, the loader's value is still
    ///   returned and the error counted; a corrupt entry is a miss.
    ///
    /// The loader must be `'static` (it may outlive the call, as a
    /// background refresh): move clones of what it needs into it.
    ///
    /// (An `async fn` in effect: the key and options are checked when it
    /// is called, the rest happens when the future is awaited; the future
    /// borrows only the cache.)
    ///
    /// # Errors
    /// An invalid key, TTL or tag; the loader's error; a value that cannot
    /// be encoded.
    pub fn get_or_set<T, F, Fut>(
        &self,
        key: &str,
        options: impl Into<EntryOptions>,
        loader: F,
    ) -> impl Future<Output = Result<T>> + '_
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<T>> + MaybeSend + 'static,
    {
        let loader = move || {
            let load = loader();
            async move { load.await.map(Some) }
        };
        self.load(key, options.into(), false, loader)
            .map(|loaded| match loaded? {
                Some(value) => Ok(value),
                None => Err(Error::new(ErrorKind::NotFound, "the loader found nothing")
                    .with_operation("cache.get_or_set")),
            })
    }

    /// [`Cache::get_or_set`] for lookups that may find nothing: the loader
    /// returns `None` for "not found", which is cached for the cache's
    /// [negative TTL](CacheBuilder::negative_ttl) if one is set (so a
    /// missing row is not looked up again and again).
    pub fn get_or_set_optional<T, F, Fut>(
        &self,
        key: &str,
        options: impl Into<EntryOptions>,
        loader: F,
    ) -> impl Future<Output = Result<Option<T>>> + '_
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        self.load(key, options.into(), true, loader)
    }

    /// Makes every entry tagged `tag` miss: one store write, whatever the
    /// number of entries.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<()> {
        let inner = &*self.inner;
        let tag_key = inner.names.tag(tag)?;
        let version = encode_version(inner.rng.next());
        inner
            .store
            .set(&tag_key, version, inner.config.tag_ttl)
            .await
            .map_err(|e| inner.failed(e, "cache.invalidate_tag"))?;
        bump(&inner.counters.tag_invalidations);
        inner.broadcast(Invalidation::Tag(tag_key)).await;
        Ok(())
    }

    /// Deletes every entry whose key starts with `prefix`, taken literally:
    /// `*` or `?` in it (in a user id, say) match only themselves. Returns
    /// how many were deleted. Costs a scan of the matching keys (one page
    /// of up to 500 keys per round trip), never Redis `KEYS`.
    pub async fn invalidate_prefix(&self, prefix: &str) -> Result<u64> {
        let inner = &*self.inner;
        let full = format!("{}{prefix}", inner.names.entries);
        validate_prefix(&full)?;
        let n = delete_scan(&inner.store, &full, |_| true)
            .await
            .map_err(|e| inner.failed(e, "cache.invalidate_prefix"))?;
        inner.counters.deletes.fetch_add(n, Ordering::Relaxed);
        inner.broadcast(Invalidation::Prefix(full)).await;
        Ok(n)
    }

    /// Deletes every entry whose key matches the Redis-style glob
    /// `pattern` (`*`, `?`, `[a-z]`, `\` escapes). Put user input through
    /// [`crate::escape_glob`] so it cannot widen the match:
    ///
    /// ```
    /// # use rampart::{cache::Cache, escape_glob, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache = Cache::new(MemoryStore::new())?;
    /// cache.set("user:*:profile", &1, std::time::Duration::from_secs(60)).await?;
    /// cache.set("user:7:profile", &2, std::time::Duration::from_secs(60)).await?;
    /// let user_id = "*"; // hostile input
    /// let n = cache.invalidate_matching(&format!("user:{}:*", escape_glob(user_id))).await?;
    /// assert_eq!(n, 1);
    /// assert_eq!(cache.get::<i32>("user:7:profile").await?, Some(2));
    /// # Ok::<(), rampart::Error>(()) }).unwrap();
    /// ```
    ///
    /// The scan covers the pattern's literal prefix (the text before its
    /// first wildcard); a pattern starting with a wildcard scans the whole
    /// namespace.
    pub async fn invalidate_matching(&self, pattern: &str) -> Result<u64> {
        let inner = &*self.inner;
        if pattern.len() > MAX_KEY_LEN {
            return Err(Error::invalid_input(
                "the pattern is longer than a key may be",
            ));
        }
        let at = inner.names.entries.len();
        let scan = format!("{}{}", inner.names.entries, literal_prefix(pattern));
        validate_prefix(&scan)?;
        let n = delete_scan(&inner.store, &scan, |k| {
            // (A store returns keys under the scanned prefix; `get` keeps a
            // misbehaving one from making this panic.)
            k.as_str()
                .get(at..)
                .is_some_and(|rest| glob_match(pattern, rest))
        })
        .await
        .map_err(|e| inner.failed(e, "cache.invalidate_matching"))?;
        inner.counters.deletes.fetch_add(n, Ordering::Relaxed);
        inner
            .broadcast(Invalidation::Matching(pattern.to_owned()))
            .await;
        Ok(n)
    }

    /// Deletes every entry of the namespace; returns how many.
    pub async fn clear(&self) -> Result<u64> {
        let inner = &*self.inner;
        let n = delete_scan(&inner.store, &inner.names.entries, |_| true)
            .await
            .map_err(|e| inner.failed(e, "cache.clear"))?;
        inner.counters.deletes.fetch_add(n, Ordering::Relaxed);
        inner.broadcast(Invalidation::Clear).await;
        Ok(n)
    }

    /// The counters, without I/O (`store` and `l1` are `None`).
    pub fn counters(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// The counters plus what the store (and the L1) report about
    /// themselves: key count and memory where they know them. A store
    /// that fails to answer leaves its field `None` (and counts an error).
    pub async fn stats(&self) -> CacheStats {
        let inner = &*self.inner;
        let store = match inner.store.stats().await {
            Ok(s) => Some(s),
            Err(_) => {
                bump(&inner.counters.errors);
                None
            }
        };
        let l1 = match &inner.tier {
            Some(tier) => match tier.store.stats().await {
                Ok(s) => Some(s),
                Err(_) => {
                    bump(&inner.counters.errors);
                    None
                }
            },
            None => None,
        };
        let mut stats = inner.counters.snapshot();
        stats.store = store;
        stats.l1 = l1;
        stats
    }
}
