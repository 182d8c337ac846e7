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

pub mod envelope;
pub mod flight;
mod stats;
pub mod tags;
pub mod tier;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{ready, Either, FutureExt, Shared};
use serde::{de::DeserializeOwned, Serialize};

use self::envelope::{Envelope, NewEntry, MAX_TAGS, MAX_TAG_LEN};
use self::flight::{share_error, Flight, FlightOutput, Flights};
use self::stats::{bump, Counters};
use self::tags::{encode_version, parse_version};
use self::tier::{delete_scan, literal_prefix, Invalidation, Tier};
use crate::{
    check_ttl, glob_match, rt, validate_prefix, Clock, Codec, Error, ErrorKind, Json, Key, KeyTtl,
    MaybeSend, Result, SharedClock, Store, Swap, SystemClock, MAX_KEY_LEN, MAX_TTL,
};

pub use self::stats::CacheStats;

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "cache";
/// The default TTL of entries (5 minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// The default life of a tag's version key (7 days).
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long an entry stays fresh, per write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Lifetime {
    #[default]
    CacheDefault,
    For(Duration),
    Forever,
}

/// Per-entry options: TTL, stale-while-revalidate grace and tags. The
/// default uses the cache's settings and no tags; a [`Duration`] converts
/// into options with that TTL.
///
/// ```
/// use rampart::cache::EntryOptions;
/// use std::time::Duration;
/// let opts = EntryOptions::new()
///     .ttl(Duration::from_secs(30))
///     .grace(Duration::from_secs(10))
///     .tags(["user:42", "team:7"]);
/// assert_eq!(opts.tag_names(), ["team:7", "user:42"]);
/// let short: EntryOptions = Duration::from_secs(5).into();
/// assert_eq!(short, EntryOptions::new().ttl(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryOptions {
    ttl: Lifetime,
    grace: Option<Option<Duration>>,
    tags: Vec<String>,
}

impl EntryOptions {
    /// The cache's defaults, no tags.
    pub fn new() -> Self {
        Self::default()
    }
    /// Fresh for `ttl` (before jitter).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Lifetime::For(ttl);
        self
    }
    /// Never expires (only deletes and invalidations remove it).
    pub fn no_expiry(mut self) -> Self {
        self.ttl = Lifetime::Forever;
        self
    }
    /// Served stale for `grace` after it stops being fresh, while a
    /// refresh runs (overrides the cache's setting).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(Some(grace));
        self
    }
    /// No stale-while-revalidate for this entry.
    pub fn no_grace(mut self) -> Self {
        self.grace = Some(None);
        self
    }
    /// Adds a tag (see [`Cache::invalidate_tag`]).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self.tags.sort();
        self.tags.dedup();
        self
    }
    /// Adds tags.
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self.tags.sort();
        self.tags.dedup();
        self
    }
    /// The tags, sorted, without duplicates.
    pub fn tag_names(&self) -> &[String] {
        &self.tags
    }
}

impl From<Duration> for EntryOptions {
    fn from(ttl: Duration) -> Self {
        EntryOptions::new().ttl(ttl)
    }
}

/// Cache-wide settings.
#[derive(Debug, Clone, Copy)]
struct Config {
    default_ttl: Option<Duration>,
    grace: Option<Duration>,
    jitter: f64,
    negative_ttl: Option<Duration>,
    compress_above: Option<usize>,
    tag_ttl: Option<Duration>,
}

/// Keys up to this long are joined on the stack.
const STACK_KEY: usize = 192;

/// Where the cache's keys live.
#[derive(Debug)]
struct Names {
    namespace: String,
    /// `<namespace>:k:`
    entries: String,
    /// `<namespace>:t:`
    tags: String,
    channel: Key,
}

impl Names {
    fn new(namespace: String) -> Result<Self> {
        if namespace.is_empty() {
            return Err(Error::invalid_key("a cache namespace is empty"));
        }
        if namespace.contains(['*', '?', '[', ']', '\\', '{', '}']) {
            return Err(Error::invalid_key(
                "a cache namespace may not contain glob characters or braces",
            ));
        }
        let channel = Key::new(format!("{namespace}:invalidations"))?;
        let names = Self {
            entries: format!("{namespace}:k:"),
            tags: format!("{namespace}:t:"),
            namespace,
            channel,
        };
        validate_prefix(&names.entries)?;
        Ok(names)
    }

    fn entry(&self, key: &str) -> Result<Key> {
        if key.is_empty() {
            return Err(Error::invalid_key("a cache key is empty"));
        }
        // The hot path: join on the stack, so the key's own copy is the
        // only allocation.
        let (prefix, len) = (self.entries.as_bytes(), self.entries.len() + key.len());
        if len <= STACK_KEY {
            let mut buf = [0u8; STACK_KEY];
            buf[..prefix.len()].copy_from_slice(prefix);
            buf[prefix.len()..len].copy_from_slice(key.as_bytes());
            if let Ok(full) = std::str::from_utf8(&buf[..len]) {
                return Key::new(full);
            }
        }
        Key::new(format!("{}{key}", self.entries))
    }

    fn tag(&self, tag: &str) -> Result<Key> {
        if tag.is_empty() {
            return Err(Error::invalid_input("a cache tag is empty"));
        }
        if tag.len() > MAX_TAG_LEN {
            return Err(Error::invalid_input(format!(
                "a cache tag is {} bytes, longer than the limit of {MAX_TAG_LEN}",
                tag.len()
            )));
        }
        Key::new(format!("{}{tag}", self.tags))
    }
}

/// A small lock-free generator (SplitMix64) for jitter, tag versions and
/// instance ids, seeded from the OS.
#[derive(Debug)]
struct Rng(AtomicU64);

impl Rng {
    fn seeded(clock: &dyn Clock) -> Self {
        let seed = rt::random_u64().unwrap_or_else(|_| clock.now().as_micros());
        Rng(AtomicU64::new(seed))
    }
    fn next(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An options value resolved against the cache's settings and checked.
#[derive(Debug, Clone)]
struct Plan {
    fresh: Option<Duration>,
    grace: Option<Duration>,
    tags: Vec<String>,
    tag_keys: Vec<Key>,
}

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Age {
    Fresh,
    Stale,
    Dead,
}

/// What a read found.
enum Found {
    Fresh(Envelope),
    Stale(Envelope),
    Miss,
}

struct Read {
    found: Found,
    /// The current versions of the plan's tags, read with the entry; `None`
    /// when not read (an L1 hit, a failed read).
    versions: Option<Vec<Option<u64>>>,
    /// The L1 epoch before the L2 read (two-tier).
    epoch: u64,
}

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

/// Builds a [`Cache`].
pub struct CacheBuilder<S, C = Json> {
    store: S,
    codec: C,
    namespace: String,
    config: Config,
    clock: Option<SharedClock>,
    l1: Option<(Arc<dyn Store>, Duration)>,
}

impl<S, C: fmt::Debug> fmt::Debug for CacheBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("codec", &self.codec)
            .field("namespace", &self.namespace)
            .field("config", &self.config)
            .field("two_tier", &self.l1.is_some())
            .finish()
    }
}

impl<S: Store + 'static> Cache<S, Json> {
    /// A builder over `store`, with JSON values, the namespace `cache`, a
    /// default TTL of 5 minutes, no jitter, no grace period, no negative
    /// caching, no compression and no L1.
    pub fn builder(store: S) -> CacheBuilder<S, Json> {
        CacheBuilder {
            store,
            codec: Json,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            config: Config {
                default_ttl: Some(DEFAULT_TTL),
                grace: None,
                jitter: 0.0,
                negative_ttl: None,
                compress_above: None,
                tag_ttl: Some(DEFAULT_TAG_TTL),
            },
            clock: None,
            l1: None,
        }
    }

    /// A cache over `store` with the builder's defaults (which are valid:
    /// this fails only if the store is unusable as a cache, never today).
    pub fn new(store: S) -> Result<Self> {
        Self::builder(store).build()
    }
}

impl<S: Store + 'static, C: Codec + 'static> CacheBuilder<S, C> {
    /// Encodes values with `codec` (e.g. [`crate::MsgPack`]) instead of JSON.
    pub fn codec<C2: Codec + 'static>(self, codec: C2) -> CacheBuilder<S, C2> {
        CacheBuilder {
            store: self.store,
            codec,
            namespace: self.namespace,
            config: self.config,
            clock: self.clock,
            l1: self.l1,
        }
    }
    /// Keys live under `<namespace>:` (default `cache`). Glob characters and
    /// braces are refused at [`build`](Self::build).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
    /// The TTL of entries written without one (default 5 minutes).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = Some(ttl);
        self
    }
    /// Entries written without a TTL never expire.
    pub fn no_default_ttl(mut self) -> Self {
        self.config.default_ttl = None;
        self
    }
    /// Stale-while-revalidate: after its TTL an entry is served stale for
    /// `grace` more, while one background refresh per key runs.
    pub fn stale_while_revalidate(mut self, grace: Duration) -> Self {
        self.config.grace = Some(grace);
        self
    }
    /// Shortens each TTL by a random fraction of up to `ratio` (0 ≤ ratio
    /// < 1; e.g. 0.1 = up to 10%), so entries written together do not all
    /// expire together. TTLs are never lengthened.
    pub fn jitter(mut self, ratio: f64) -> Self {
        self.config.jitter = ratio;
        self
    }
    /// Caches "not found" answers of [`Cache::get_or_set_optional`] loaders
    /// for `ttl` (default: not cached).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.config.negative_ttl = Some(ttl);
        self
    }
    /// Compresses (LZ4) encoded values of at least `bytes` bytes, when that
    /// makes them smaller.
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.config.compress_above = Some(bytes);
        self
    }
    /// How long a tag's version key lives (default 7 days); entries that
    /// outlive it miss once.
    pub fn tag_ttl(mut self, ttl: Duration) -> Self {
        self.config.tag_ttl = Some(ttl);
        self
    }
    /// The clock of freshness and jitter (default: the system clock). Give
    /// the store the same one in tests.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Two tiers: `l1` (usually a small [`crate::MemoryStore`]) in front of
    /// the store, holding entries for at most `l1_ttl`. Invalidations are
    /// broadcast over the store's pub/sub, so the store must offer it.
    /// Needs a runtime to spawn the listener on ([`rt::spawn`]).
    pub fn two_tier(mut self, l1: impl Store + 'static, l1_ttl: Duration) -> Self {
        self.l1 = Some((Arc::new(l1), l1_ttl));
        self
    }

    /// The cache. Invalid settings are [`ErrorKind::InvalidInput`] (or
    /// [`ErrorKind::InvalidKey`] for the namespace); a two-tier cache over a
    /// store without pub/sub is [`ErrorKind::Unsupported`], and one built
    /// outside a runtime fails as [`rt::spawn`] does.
    pub fn build(self) -> Result<Cache<S, C>> {
        let config = self.config;
        check_ttl(config.default_ttl)?;
        check_ttl(config.grace)?;
        check_ttl(config.negative_ttl)?;
        check_ttl(config.tag_ttl)?;
        if !(config.jitter.is_finite() && (0.0..1.0).contains(&config.jitter)) {
            return Err(Error::invalid_input(
                "the jitter ratio must be at least 0 and below 1",
            ));
        }
        if let Some((_, l1_ttl)) = &self.l1 {
            check_ttl(Some(*l1_ttl))?;
            if !self.store.capabilities().pubsub {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "a two-tier cache needs a store with publish/subscribe",
                )
                .with_operation("cache.build"));
            }
        }
        let names = Names::new(self.namespace.clone())?;
        Ok(Cache::from_builder(self, names))
    }
}

impl<S: Store + 'static, C: Codec + 'static> Cache<S, C> {
    /// Builds from checked settings (`Cache::new`'s defaults are valid).
    // On wasm nothing is `Send`; the `Arc`s are shared with spawned local
    // tasks all the same (one code path for both targets).
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    fn from_builder(b: CacheBuilder<S, C>, names: Names) -> Self {
        let system_clock = b.clock.is_none();
        let clock = b.clock.unwrap_or_else(SystemClock::shared);
        let rng = Rng::seeded(&*clock);
        let counters = Arc::new(Counters::default());
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let tier = b.l1.map(|(store, ttl)| {
            Arc::new(Tier::new(
                store,
                ttl,
                rng.next(),
                format!("{}:", names.namespace),
                names.entries.clone(),
                counters.clone(),
            ))
        });
        let inner = Arc::new(Inner {
            store: b.store,
            codec: b.codec,
            names,
            config: b.config,
            clock,
            rng,
            counters,
            flights: Arc::new(Flights::default()),
            system_clock,
            ready: tier.as_ref().map(|_| ready_rx.shared()),
            _shutdown: tier.as_ref().map(|_| shutdown_tx),
            tier,
        });
        if let Some(tier) = &inner.tier {
            let weak = Arc::downgrade(&inner);
            let subscribe = move || {
                let weak = weak.clone();
                async move {
                    let inner = weak.upgrade()?;
                    Some(inner.store.subscribe(&inner.names.channel).await)
                }
            };
            let listener = tier::listen(tier.clone(), subscribe, shutdown_rx, ready_tx);
            if rt::spawn(listener).is_err() {
                // No runtime: the L1 stays off (reads and writes go to the
                // store) and `ready` reports it.
                bump(&inner.counters.errors);
            }
        }
        Cache { inner }
    }

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
            glob_match(pattern, &k.as_str()[at..])
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

    /// Checks the key and options at once; the returned future holds only
    /// what it needs (a hit's future stays small).
    fn load<T, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        optional: bool,
        loader: F,
    ) -> impl Future<Output = Result<Option<T>>> + '_
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let prepared = self
            .inner
            .names
            .entry(key)
            .and_then(|key| Ok((key, self.inner.plan(options)?)));
        match prepared {
            Ok((key, plan)) => Either::Left(self.load_prepared(key, plan, optional, loader)),
            Err(e) => Either::Right(ready(Err(e))),
        }
    }

    async fn load_prepared<T, F, Fut>(
        &self,
        key: Key,
        plan: Plan,
        optional: bool,
        loader: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let inner = &self.inner;
        let read = match inner.read(&key, &plan.tag_keys).await {
            Ok(read) => read,
            Err(_) => {
                bump(&inner.counters.errors);
                Read {
                    found: Found::Miss,
                    versions: None,
                    epoch: inner.epoch(),
                }
            }
        };
        if let Found::Fresh(env) = &read.found {
            if env.negative && optional {
                bump(&inner.counters.hits);
                return Ok(None);
            }
            if !env.negative {
                match inner.decode_value::<T>(env) {
                    Ok(value) => {
                        bump(&inner.counters.hits);
                        return Ok(value);
                    }
                    Err(_) => bump(&inner.counters.corrupt),
                }
            }
        }
        // Stale or missing: the rest lives in its own (boxed) future, so
        // a hit's future stays small.
        Box::pin(self.load_slow(key, plan, read, optional, loader)).await
    }

    /// `load` past a fresh hit: serve stale and refresh, or load.
    async fn load_slow<T, F, Fut>(
        &self,
        key: Key,
        plan: Plan,
        read: Read,
        optional: bool,
        loader: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let inner = &self.inner;
        if let Found::Stale(env) = &read.found {
            if !env.negative {
                match inner.decode_value::<T>(env) {
                    Ok(stale) => {
                        bump(&inner.counters.hits);
                        bump(&inner.counters.stale_served);
                        let (flight, new) =
                            inner.start_flight(key, plan, read.versions, read.epoch, true, loader);
                        if !new {
                            return Ok(stale);
                        }
                        let driver = flight.clone();
                        if rt::spawn(async move {
                            let _ = driver.await;
                        })
                        .is_ok()
                        {
                            return Ok(stale);
                        }
                        // No runtime to refresh in the background: refresh
                        // now, and keep serving the stale value if that fails.
                        return match flight.await {
                            Ok(Some(bytes)) => Ok(inner.codec.decode(&bytes).ok().or(stale)),
                            _ => Ok(stale),
                        };
                    }
                    Err(_) => bump(&inner.counters.corrupt),
                }
            }
        }
        bump(&inner.counters.misses);
        let (flight, new) =
            inner.start_flight(key.clone(), plan, read.versions, read.epoch, false, loader);
        if !new {
            bump(&inner.counters.coalesced);
        }
        match flight.await {
            Ok(Some(bytes)) => inner
                .codec
                .decode(&bytes)
                .map(Some)
                .map_err(|e| e.with_key(&key)),
            Ok(None) if optional => Ok(None),
            Ok(None) => Err(Error::new(
                ErrorKind::NotFound,
                "the loader of a concurrent caller found nothing for this key",
            )
            .with_operation("cache.get_or_set")
            .with_key(&key)),
            Err(e) => Err(share_error(&e)),
        }
    }
}

impl<S: Store + 'static, C: Codec + 'static> Inner<S, C> {
    fn now(&self) -> u64 {
        self.clock.now().as_micros()
    }

    fn epoch(&self) -> u64 {
        self.tier.as_ref().map_or(0, |t| t.epoch())
    }

    /// Where `env` is in its life.
    ///
    /// The stores expire an entry when its stale period ends, so an entry
    /// the store returned is alive. When it has no stale period and the
    /// cache runs on the system clock, as the store does, the store's
    /// expiry already answers "fresh?" (to the store's precision, at worst
    /// a millisecond late), so the hot path skips reading the clock; with
    /// an injected clock or a grace period, the envelope is checked.
    fn age(&self, env: &Envelope) -> Age {
        if env.fresh_until == u64::MAX || (self.system_clock && env.fresh_until == env.stale_until)
        {
            return Age::Fresh;
        }
        let now = self.now();
        if now >= env.stale_until {
            Age::Dead
        } else if now >= env.fresh_until {
            Age::Stale
        } else {
            Age::Fresh
        }
    }

    fn live_tier(&self) -> Option<&Tier> {
        self.tier.as_deref().filter(|t| t.live())
    }

    /// Counts a store failure and names the operation.
    fn failed(&self, e: Error, operation: &'static str) -> Error {
        bump(&self.counters.errors);
        e.with_operation(operation)
    }

    fn plan(&self, options: EntryOptions) -> Result<Plan> {
        let fresh = match options.ttl {
            Lifetime::CacheDefault => self.config.default_ttl,
            Lifetime::For(ttl) => Some(ttl),
            Lifetime::Forever => None,
        };
        let grace = options.grace.unwrap_or(self.config.grace);
        check_ttl(fresh)?;
        check_ttl(grace)?;
        if options.tags.len() > MAX_TAGS {
            return Err(Error::invalid_input(format!(
                "an entry may carry at most {MAX_TAGS} tags"
            )));
        }
        let mut tag_keys = Vec::new();
        if !options.tags.is_empty() {
            tag_keys.reserve_exact(options.tags.len());
            for tag in &options.tags {
                tag_keys.push(self.names.tag(tag)?);
            }
        }
        Ok(Plan {
            fresh,
            grace,
            tags: options.tags,
            tag_keys,
        })
    }

    /// Decodes an entry's value (`None` for a negative entry).
    fn decode_value<T: DeserializeOwned>(&self, env: &Envelope) -> Result<Option<T>> {
        if env.negative {
            return Ok(None);
        }
        self.codec.decode(&env.payload()?).map(Some)
    }

    /// Fresh-until, stale-until and the store TTL of an entry written now.
    fn lifetimes(
        &self,
        fresh: Option<Duration>,
        grace: Option<Duration>,
    ) -> (u64, u64, Option<Duration>) {
        let Some(fresh) = fresh else {
            return (u64::MAX, u64::MAX, None);
        };
        let fresh = if self.config.jitter > 0.0 {
            fresh
                .mul_f64(1.0 - self.config.jitter * self.rng.unit())
                .max(Duration::from_micros(1))
        } else {
            fresh
        };
        let total = fresh.saturating_add(grace.unwrap_or_default()).min(MAX_TTL);
        let now = self.now();
        let fresh_until = now.saturating_add(crate::duration_micros(fresh));
        let stale_until = now.saturating_add(crate::duration_micros(total));
        (fresh_until, stale_until.max(fresh_until), Some(total))
    }

    /// The envelope of a new entry (`payload: None` = negative) and its
    /// store TTL.
    fn entry_bytes(
        &self,
        plan: &Plan,
        tags: &[(String, u64)],
        payload: Option<&[u8]>,
    ) -> (Bytes, Option<Duration>) {
        let (fresh_until, stale_until, ttl) = match payload {
            Some(_) => self.lifetimes(plan.fresh, plan.grace),
            None => self.lifetimes(self.config.negative_ttl, None),
        };
        let raw = NewEntry {
            codec: self.codec.format_id(),
            fresh_until,
            stale_until,
            tags,
            payload,
            compress_above: self.config.compress_above,
        }
        .encode();
        (raw, ttl)
    }

    /// Reads `key` (L1 first when live), with the versions of `tag_keys`
    /// in the same round trip, and checks freshness and tags.
    async fn read(&self, key: &Key, tag_keys: &[Key]) -> Result<Read> {
        if self.tier.is_none() && tag_keys.is_empty() {
            // The common case, kept to one small future: one store read.
            let raw = self.store.get(key).await?;
            // (Scoped so nothing big stays in the future across the await.)
            let tagged = match self.judge(raw, Vec::new(), 0) {
                Ok(read) => return Ok(read),
                Err((env, versions)) => Box::pin(self.check_tags(key, tag_keys, env, versions, 0)),
            };
            return tagged.await;
        }
        Box::pin(self.read_tiered(key, tag_keys)).await
    }

    /// [`Inner::read`] with an L1, or with tag versions to fetch.
    async fn read_tiered(&self, key: &Key, tag_keys: &[Key]) -> Result<Read> {
        if let Some(tier) = self.live_tier() {
            if let Some(env) = self.read_l1(tier, key).await {
                bump(&self.counters.l1_hits);
                return Ok(Read {
                    found: Found::Fresh(env),
                    versions: None,
                    epoch: tier.epoch(),
                });
            }
        }
        let epoch = self.epoch();
        let (raw, versions) = if tag_keys.is_empty() {
            (self.store.get(key).await?, Vec::new())
        } else {
            let mut keys = Vec::with_capacity(1 + tag_keys.len());
            keys.push(key.clone());
            keys.extend(tag_keys.iter().cloned());
            let mut values = self.store.get_many(&keys).await?.into_iter();
            let raw = values.next().flatten();
            let versions = values.map(|v| self.version(v.as_deref())).collect();
            (raw, versions)
        };
        match self.judge(raw, versions, epoch) {
            Ok(read) => {
                if let Found::Fresh(env) = &read.found {
                    self.fill_l1(epoch, key, env, &[]).await;
                }
                Ok(read)
            }
            Err((env, versions)) => self.check_tags(key, tag_keys, env, versions, epoch).await,
        }
    }

    /// Decodes and ages what the store returned: the read, or (`Err`) an
    /// entry whose tags still have to be checked.
    #[allow(clippy::type_complexity)]
    fn judge(
        &self,
        raw: Option<Bytes>,
        versions: Vec<Option<u64>>,
        epoch: u64,
    ) -> std::result::Result<Read, (Envelope, Vec<Option<u64>>)> {
        let found = match raw.map(Envelope::decode) {
            None => Found::Miss,
            Some(Ok(env)) if env.codec == self.codec.format_id() => match self.age(&env) {
                Age::Dead => Found::Miss,
                _ if !env.tags.is_empty() => return Err((env, versions)),
                Age::Stale => Found::Stale(env),
                Age::Fresh => Found::Fresh(env),
            },
            Some(_) => {
                bump(&self.counters.corrupt);
                Found::Miss
            }
        };
        Ok(Read {
            found,
            versions: Some(versions),
            epoch,
        })
    }

    /// Finishes a read of a tagged entry: its tags' current versions
    /// (from those read with it, the rest fetched) must match.
    async fn check_tags(
        &self,
        key: &Key,
        tag_keys: &[Key],
        env: Envelope,
        versions: Vec<Option<u64>>,
        epoch: u64,
    ) -> Result<Read> {
        let current = self.versions_of(&env.tags, tag_keys, &versions).await?;
        let valid = env
            .tags
            .iter()
            .zip(&current)
            .all(|((_, recorded), (_, now))| Some(*recorded) == *now);
        let read = |found| Read {
            found,
            versions: Some(versions),
            epoch,
        };
        if !valid {
            return Ok(read(Found::Miss));
        }
        Ok(match self.age(&env) {
            Age::Dead => read(Found::Miss),
            Age::Stale => read(Found::Stale(env)),
            Age::Fresh => {
                let copies: Vec<(Key, u64)> = current
                    .into_iter()
                    .filter_map(|(k, v)| Some((k?, v?)))
                    .collect();
                self.fill_l1(epoch, key, &env, &copies).await;
                read(Found::Fresh(env))
            }
        })
    }

    /// Copies a fresh entry read from the L2 into a live L1.
    async fn fill_l1(&self, epoch: u64, key: &Key, env: &Envelope, tags: &[(Key, u64)]) {
        if let Some(tier) = self.live_tier() {
            let now = self.now();
            let left = (env.stale_until != u64::MAX)
                .then(|| Duration::from_micros(env.stale_until.saturating_sub(now).max(1)));
            tier.fill(epoch, key, env.raw.clone(), left, tags).await;
        }
    }

    /// A fresh entry from the L1 whose tags match the L1's copies of the
    /// tag versions; `None` sends the read to the L2.
    async fn read_l1(&self, tier: &Tier, key: &Key) -> Option<Envelope> {
        let raw = match tier.store.get(key).await {
            Ok(raw) => raw?,
            Err(_) => {
                bump(&self.counters.errors);
                return None;
            }
        };
        let env = match Envelope::decode(raw) {
            Ok(env) if env.codec == self.codec.format_id() => env,
            _ => {
                bump(&self.counters.corrupt);
                let _ = tier.store.delete(key).await;
                return None;
            }
        };
        if self.age(&env) != Age::Fresh {
            return None;
        }
        if !env.tags.is_empty() {
            let keys = env
                .tags
                .iter()
                .map(|(t, _)| self.names.tag(t))
                .collect::<Result<Vec<_>>>()
                .ok()?;
            let copies = tier.store.get_many(&keys).await.ok()?;
            let valid = env.tags.iter().zip(&copies).all(|((_, recorded), copy)| {
                copy.as_deref().and_then(parse_version) == Some(*recorded)
            });
            if !valid {
                return None;
            }
        }
        Some(env)
    }

    /// A tag version read from the store.
    fn version(&self, stored: Option<&[u8]>) -> Option<u64> {
        let stored = stored?;
        let version = parse_version(stored);
        if version.is_none() {
            bump(&self.counters.corrupt);
        }
        version
    }

    /// The current versions of an entry's tags (with their keys): from the
    /// ones read with the entry where it named the same tags, the rest in
    /// one more batch read.
    async fn versions_of(
        &self,
        tags: &[(String, u64)],
        read_keys: &[Key],
        read_versions: &[Option<u64>],
    ) -> Result<Vec<(Option<Key>, Option<u64>)>> {
        let mut out = Vec::with_capacity(tags.len());
        let mut missing = Vec::new();
        for (i, (tag, _)) in tags.iter().enumerate() {
            let Ok(key) = self.names.tag(tag) else {
                // A tag this cache could not have written: never valid.
                out.push((None, None));
                continue;
            };
            match read_keys.iter().position(|k| *k == key) {
                Some(at) => out.push((Some(key), read_versions.get(at).copied().flatten())),
                None => {
                    missing.push((i, key.clone()));
                    out.push((Some(key), None));
                }
            }
        }
        if !missing.is_empty() {
            let keys: Vec<Key> = missing.iter().map(|(_, k)| k.clone()).collect();
            let values = self.store.get_many(&keys).await?;
            for ((i, _), value) in missing.iter().zip(values) {
                out[*i].1 = self.version(value.as_deref());
            }
        }
        Ok(out)
    }

    /// The versions of the plan's tags to record in a new entry: those read
    /// before the value was loaded (`known`), reading them if unknown, and
    /// creating a version for each tag that has none.
    async fn current_tags(
        &self,
        plan: &Plan,
        known: Option<Vec<Option<u64>>>,
    ) -> Result<Vec<(String, u64)>> {
        if plan.tags.is_empty() {
            return Ok(Vec::new());
        }
        let versions = match known {
            Some(v) if v.len() == plan.tags.len() => v,
            _ => {
                let values = self.store.get_many(&plan.tag_keys).await?;
                values.iter().map(|v| self.version(v.as_deref())).collect()
            }
        };
        let mut out = Vec::with_capacity(plan.tags.len());
        for ((tag, key), version) in plan.tags.iter().zip(&plan.tag_keys).zip(versions) {
            let version = match version {
                Some(v) => v,
                None => self.create_version(key).await?,
            };
            out.push((tag.clone(), version));
        }
        Ok(out)
    }

    /// Gives a tag without a (valid) version one; concurrent writers agree
    /// through compare-and-swap.
    async fn create_version(&self, key: &Key) -> Result<u64> {
        for _ in 0..8 {
            let version = self.rng.next();
            let swap = self
                .store
                .compare_and_swap(
                    key,
                    None,
                    Some(encode_version(version)),
                    self.config.tag_ttl,
                )
                .await?;
            match swap {
                Swap::Swapped => return Ok(version),
                Swap::Conflict(Some(current)) => match parse_version(&current) {
                    Some(v) => return Ok(v),
                    None => {
                        // A corrupt version: replace it (its entries miss).
                        self.store
                            .set(key, encode_version(version), self.config.tag_ttl)
                            .await?;
                        return Ok(version);
                    }
                },
                Swap::Conflict(None) => continue,
            }
        }
        Err(
            Error::new(ErrorKind::Conflict, "could not create a tag version")
                .with_operation("cache.tag")
                .with_key(key),
        )
    }

    /// Joins the loader flight in the air for `key`, or starts one.
    fn start_flight<T, F, Fut>(
        self: &Arc<Self>,
        key: Key,
        plan: Plan,
        versions: Option<Vec<Option<u64>>>,
        epoch: u64,
        refresh: bool,
        loader: F,
    ) -> (Flight, bool)
    where
        T: Serialize + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let inner = self.clone();
        let flight_key = key.clone();
        self.flights.join_or_start(&flight_key, move |guard| {
            Box::pin(async move {
                let _guard = guard;
                inner
                    .run_loader(key, plan, versions, epoch, refresh, loader)
                    .await
            })
        })
    }

    /// The body of a flight: load, encode, store (failures to store are
    /// counted, not returned), deliver the encoded value.
    async fn run_loader<T, F, Fut>(
        &self,
        key: Key,
        plan: Plan,
        versions: Option<Vec<Option<u64>>>,
        epoch: u64,
        refresh: bool,
        loader: F,
    ) -> FlightOutput
    where
        T: Serialize + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        bump(&self.counters.loader_calls);
        // Versions are settled before loading: an invalidation while the
        // loader runs then makes the new entry miss, as it should.
        let tags = match self.current_tags(&plan, versions).await {
            Ok(tags) => Some(tags),
            Err(_) => {
                bump(&self.counters.errors);
                None
            }
        };
        let value = match loader().await {
            Ok(value) => value,
            Err(e) => {
                bump(&self.counters.loader_errors);
                return Err(Arc::new(e.with_key(&key)));
            }
        };
        let payload = match &value {
            Some(v) => Some(
                self.codec
                    .encode(v)
                    .map_err(|e| Arc::new(e.with_key(&key)))?,
            ),
            None => None,
        };
        let cacheable = payload.is_some() || self.config.negative_ttl.is_some();
        if let (Some(tags), true) = (tags, cacheable) {
            let (raw, ttl) = self.entry_bytes(&plan, &tags, payload.as_deref());
            match self.store.set(&key, raw.clone(), ttl).await {
                Ok(()) => {
                    bump(&self.counters.sets);
                    if refresh {
                        bump(&self.counters.refreshes);
                    }
                    if let Some(tier) = self.live_tier() {
                        let copies: Vec<(Key, u64)> = plan
                            .tag_keys
                            .iter()
                            .cloned()
                            .zip(tags.iter().map(|(_, v)| *v))
                            .collect();
                        tier.fill(epoch, &key, raw, ttl.map(|t| t.min(tier.ttl)), &copies)
                            .await;
                    }
                }
                Err(_) => bump(&self.counters.errors),
            }
        }
        Ok(payload)
    }

    /// Applies an invalidation to this process's L1 and tells the others.
    async fn broadcast(&self, inv: Invalidation) {
        let Some(tier) = &self.tier else {
            return;
        };
        tier.apply(&inv).await;
        let msg = inv.encode(tier.sender);
        if self.store.publish(&self.names.channel, msg).await.is_err() {
            bump(&self.counters.errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_uniform_enough_and_unit_is_in_range() {
        let rng = Rng(AtomicU64::new(7));
        let mut below_half = 0;
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            below_half += usize::from(u < 0.5);
        }
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }

    #[test]
    fn names_refuse_bad_namespaces_keys_and_tags() {
        assert_eq!(
            Names::new(String::new()).unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert!(Names::new("a*".into()).is_err());
        assert!(Names::new("{a}".into()).is_err());
        let names = Names::new("app".into()).unwrap();
        assert_eq!(names.entry("u:1").unwrap().as_str(), "app:k:u:1");
        assert_eq!(names.tag("t").unwrap().as_str(), "app:t:t");
        assert_eq!(names.entry("").unwrap_err().kind(), ErrorKind::InvalidKey);
        assert_eq!(names.tag("").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(
            names.tag(&"x".repeat(MAX_TAG_LEN + 1)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            names.entry(&"x".repeat(MAX_KEY_LEN)).unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
    }
}
