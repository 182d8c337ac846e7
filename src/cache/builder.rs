//! [`CacheBuilder`]: a cache's settings, checked once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::FutureExt;

use super::flight::Flights;
use super::names::{Names, Rng};
use super::options::Config;
use super::stats::Counters;
use super::tier::{self, Tier};
use super::{Cache, Inner, DEFAULT_NAMESPACE, DEFAULT_TAG_TTL, DEFAULT_TTL};
use crate::{
    check_ttl, rt, Codec, Error, ErrorKind, Json, Result, SharedClock, Store, SystemClock,
};

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
        Cache::from_builder(self, names)
    }
}

impl<S: Store + 'static, C: Codec + 'static> Cache<S, C> {
    /// Builds from checked settings; fails only if a two-tier cache cannot
    /// start its invalidation listener (no runtime).
    // On wasm nothing is `Send`; the `Arc`s are shared with spawned local
    // tasks all the same (one code path for both targets).
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    fn from_builder(b: CacheBuilder<S, C>, names: Names) -> Result<Self> {
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
            // Without a runtime to listen on, an L1 could never be told of
            // invalidations: refuse rather than quietly run without it.
            rt::spawn(listener).map_err(|e| e.with_operation("cache.build"))?;
        }
        Ok(Cache { inner })
    }
}
