//! Policies around decisions: the local block cache, what to do when the
//! store fails, and all-or-nothing limits across keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Decision, DecisionSource, Limiter};
use crate::{Error, ErrorKind, Key, Result, Store, Timestamp};

/// The default capacity of a limiter's [`BlockCache`].
pub(crate) const DEFAULT_BLOCK_CACHE: usize = 10_000;

/// What a [`Limiter`] decides when its store fails (unavailable, timed
/// out, a lost compare-and-swap race, or an unexpected reply).
///
/// Other errors (an invalid cost, a key holding foreign data) are always
/// returned: they are bugs to see, not outages to ride out.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Return the error (the default).
    #[default]
    Fail,
    /// Fail open: admit the request, count nothing
    /// ([`DecisionSource::FailOpen`]). Refunds, penalties and blocks still
    /// return the error.
    Allow,
    /// Fail closed: deny the request with a retry after
    /// [`super::FAIL_CLOSED_RETRY`] ([`DecisionSource::FailClosed`]).
    /// Refunds, penalties and blocks still return the error.
    Deny,
    /// Decide with this store instead (usually an in-process one), with the
    /// same rule and clock ([`DecisionSource::Insurance`]). Counts made
    /// there stay there; they are not copied back when the store returns.
    Insurance(Arc<dyn Store>),
}

impl fmt::Debug for OnStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnStoreError::Fail => "Fail",
            OnStoreError::Allow => "Allow",
            OnStoreError::Deny => "Deny",
            OnStoreError::Insurance(_) => "Insurance(..)",
        })
    }
}

/// Whether `e` means the store could not decide (vs. a real answer).
pub(crate) fn is_store_failure(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Conflict | ErrorKind::Backend
    )
}

/// Keys known to be blocked, and until when: a blocked key is answered
/// without calling the store.
///
/// Filled from decisions that carry a block; bounded (when full, expired
/// entries are dropped, and if none have expired a new block is simply
/// not cached: the store still enforces it). [`Limiter::reset`] forgets a
/// key here; other processes keep their cached block until it ends.
/// On Redis the block's end comes from the server's clock and the cache
/// compares it with the limiter's: a skew between them moves the cached
/// end by that much (the store stays authoritative after it).
pub struct BlockCache {
    map: Mutex<HashMap<Key, u64>>,
    len: AtomicUsize,
    capacity: usize,
}

impl BlockCache {
    /// A cache of at most `capacity` keys (0: never caches).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            len: AtomicUsize::new(0),
            capacity,
        }
    }

    /// The most keys it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys held (expired ones not yet dropped included).
    #[inline]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether it holds nothing (one atomic load: the hot path's check).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, u64>> {
        // The map is never left half-updated, so a poisoned lock is usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Until when `key` is blocked, if the cache knows it is at `now`.
    pub fn blocked_until(&self, key: &Key, now: Timestamp) -> Option<Timestamp> {
        let mut map = self.lock();
        let until = *map.get(key)?;
        if until > now.as_micros() {
            return Some(Timestamp::from_micros(until));
        }
        map.remove(key);
        self.len.store(map.len(), Ordering::Relaxed);
        None
    }

    /// Forgets `key`.
    #[inline]
    pub fn forget(&self, key: &Key) {
        if self.is_empty() {
            return;
        }
        let mut map = self.lock();
        map.remove(key);
        self.len.store(map.len(), Ordering::Relaxed);
    }

    /// Forgets every key.
    pub fn clear(&self) {
        let mut map = self.lock();
        map.clear();
        self.len.store(0, Ordering::Relaxed);
    }

    /// Learns from a decision the store made about `key`.
    pub(crate) fn observe(&self, key: &Key, d: &Decision) {
        match d.blocked_until {
            Some(until) if self.capacity > 0 => {
                let mut map = self.lock();
                if map.len() >= self.capacity && !map.contains_key(key) {
                    let now = d.at.as_micros();
                    map.retain(|_, until| *until > now);
                }
                if map.len() < self.capacity || map.contains_key(key) {
                    map.insert(key.clone(), until.as_micros());
                }
                self.len.store(map.len(), Ordering::Relaxed);
            }
            Some(_) => {}
            None => self.forget(key),
        }
    }
}

impl fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Consumes on several limiters and keys, all or nothing: per-IP *and*
/// per-user, say. Returns the first denial, or, when every limiter
/// admits, the admitting decision with the fewest remaining.
///
/// Tiers of one [`super::Rule`] share a key and are decided in one atomic
/// step. Across keys no store offers that through a single-key update, and
/// on Redis Cluster the keys usually live on different nodes, so this
/// charges the limiters in order and, when one denies (or fails), refunds
/// the ones already charged, newest first. The guarantee:
///
/// * never over-admits: each key's own limit holds at every instant;
/// * a denied call leaves no charge behind once it returns;
/// * while it runs, a concurrent request on an earlier key may see the
///   pending charge and be denied (a false denial, never a false
///   admission);
/// * if the store fails during a rollback, the charge stays until its
///   window passes (over-counting, never under-counting) and the denial
///   is still returned.
///
/// Costs are all checked before anything is charged.
///
/// ```
/// use rampart::limit::{consume_all, Limiter, Quota, Rule};
/// use rampart::MemoryStore;
/// use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let per_ip = Limiter::builder(store.clone(), Rule::fixed_window(Quota::per_minute(100))?)
///     .prefix("rl:ip").build()?;
/// let per_user = Limiter::builder(store, Rule::fixed_window(Quota::per_minute(1))?)
///     .prefix("rl:user").build()?;
/// let (ip, user) = (per_ip.key("10.0.0.1")?, per_user.key("alice")?);
/// assert!(consume_all(&[(&per_ip, &ip, 1), (&per_user, &user, 1)]).await?.allowed);
/// assert!(!consume_all(&[(&per_ip, &ip, 1), (&per_user, &user, 1)]).await?.allowed);
/// // The denied call did not charge the IP.
/// assert_eq!(per_ip.check(&ip, 1).await?.remaining, 99);
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
pub async fn consume_all<S: Store>(requests: &[(&Limiter<S>, &Key, u64)]) -> Result<Decision> {
    if requests.is_empty() {
        return Err(
            Error::invalid_input("consume_all needs at least one limiter")
                .with_operation("limit.consume_all"),
        );
    }
    for (limiter, key, cost) in requests {
        limiter
            .validate_cost(*cost)
            .map_err(|e| e.with_operation("limit.consume_all").with_key(key))?;
    }
    let mut charged: Vec<(usize, Decision)> = Vec::with_capacity(requests.len());
    for (i, (limiter, key, cost)) in requests.iter().enumerate() {
        match limiter.consume(key, *cost).await {
            Ok(d) if d.allowed => charged.push((i, d)),
            outcome => {
                rollback(requests, &charged).await;
                return outcome;
            }
        }
    }
    let binding = charged
        .into_iter()
        .map(|(_, d)| d)
        .min_by_key(|d| d.remaining);
    binding.ok_or_else(|| Error::invalid_input("consume_all needs at least one limiter"))
}

async fn rollback<S: Store>(requests: &[(&Limiter<S>, &Key, u64)], charged: &[(usize, Decision)]) {
    for (i, d) in charged.iter().rev() {
        if !matches!(d.source, DecisionSource::Store | DecisionSource::Insurance) {
            continue; // a fail-open admission counted nothing
        }
        let (limiter, key, cost) = requests[*i];
        // A failed rollback over-counts until the window passes; the
        // denial being returned is right either way.
        let _ = limiter.undo(key, cost, d.at).await;
    }
}
