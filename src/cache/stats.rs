//! The cache's counters.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreStats;

/// What a [`super::Cache`] has done since it was built, plus what its
/// stores know about themselves.
///
/// Counters are per cache instance (per process), not shared between
/// processes. Read them with [`super::Cache::counters`] (no I/O) or
/// [`super::Cache::stats`] (with the stores' key count and memory).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered from the cache: fresh values, stale values served
    /// while a refresh runs, and cached "not found" answers.
    pub hits: u64,
    /// Reads the cache could not answer (missing, expired, invalidated by a
    /// tag, corrupt, or the store failed).
    pub misses: u64,
    /// Of the hits, stale values served during a background refresh.
    pub stale_served: u64,
    /// Of the hits, those answered by the in-process L1 of a two-tier cache.
    pub l1_hits: u64,
    /// Entries written (by `set`, by loaders and by refreshes).
    pub sets: u64,
    /// Entries deleted (by key, prefix or pattern).
    pub deletes: u64,
    /// Tags invalidated.
    pub tag_invalidations: u64,
    /// Store failures met, whether returned to the caller or absorbed
    /// (a `get_or_set` that still returned the loader's value).
    pub errors: u64,
    /// Stored entries that could not be decoded; each was treated as a
    /// miss (and is overwritten by the next write).
    pub corrupt: u64,
    /// Times a loader ran.
    pub loader_calls: u64,
    /// Times a loader failed (its error reached every waiting caller).
    pub loader_errors: u64,
    /// Callers that waited for a loader already running for the same key
    /// instead of calling their own.
    pub coalesced: u64,
    /// Background stale-while-revalidate refreshes that stored a new value.
    pub refreshes: u64,
    /// Invalidations broadcast by other cache instances that this one
    /// applied to its L1 (two-tier).
    pub l1_invalidations: u64,
    /// What the (L2) store reports: key count, memory; `None` from
    /// [`super::Cache::counters`] or when the store could not answer.
    pub store: Option<StoreStats>,
    /// What the L1 store of a two-tier cache reports.
    pub l1: Option<StoreStats>,
}

impl CacheStats {
    /// `hits / (hits + misses)`, `None` before the first read.
    ///
    /// ```
    /// let mut stats = rampart::cache::CacheStats::default();
    /// assert_eq!(stats.hit_rate(), None);
    /// stats.hits = 3;
    /// stats.misses = 1;
    /// assert_eq!(stats.hit_rate(), Some(0.75));
    /// ```
    pub fn hit_rate(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

/// The live counters (relaxed atomics: each is exact, a snapshot of all of
/// them is not atomic).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale_served: AtomicU64,
    pub l1_hits: AtomicU64,
    pub sets: AtomicU64,
    pub deletes: AtomicU64,
    pub tag_invalidations: AtomicU64,
    pub errors: AtomicU64,
    pub corrupt: AtomicU64,
    pub loader_calls: AtomicU64,
    pub loader_errors: AtomicU64,
    pub coalesced: AtomicU64,
    pub refreshes: AtomicU64,
    pub l1_invalidations: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            stale_served: get(&self.stale_served),
            l1_hits: get(&self.l1_hits),
            sets: get(&self.sets),
            deletes: get(&self.deletes),
            tag_invalidations: get(&self.tag_invalidations),
            errors: get(&self.errors),
            corrupt: get(&self.corrupt),
            loader_calls: get(&self.loader_calls),
            loader_errors: get(&self.loader_errors),
            coalesced: get(&self.coalesced),
            refreshes: get(&self.refreshes),
            l1_invalidations: get(&self.l1_invalidations),
            store: None,
            l1: None,
        }
    }
}
