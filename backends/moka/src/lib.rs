//! rampart's native in-process [`Store`] on [moka](https://docs.rs/moka).
//!
//! [`MokaStore`] is a bounded, concurrent, in-process store: the one to use
//! natively when Redis is not configured (the core's
//! [`rampart::MemoryStore`] is the portable one, for wasm).
//!
//! ```
//! use rampart::{Change, Key, ManualClock, Store, Timestamp};
//! use rampart_moka::MokaStore;
//! use std::time::Duration;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::new(Timestamp::from_secs(1_000));
//! let store = MokaStore::builder()
//!     .max_capacity(10_000)
//!     .clock(clock.shared())
//!     .build();
//! let k = Key::new("session:42")?;
//! store.set(&k, "alice".into(), Some(Duration::from_secs(30))).await?;
//! assert_eq!(store.increment(&Key::new("hits")?, 2, None).await?, 2);
//! // `update` runs its closure once, under the key's own lock.
//! let up = store.update(&k, &mut |cur| match cur {
//!     Some(v) => Change::SetKeepTtl([v, b"!"].concat().into()),
//!     None => Change::Keep,
//! }).await?;
//! assert_eq!(up.value.as_deref(), Some(&b"alice!"[..]));
//! // Expiry follows the store's clock, to the microsecond.
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(store.get(&k).await?, None);
//! # Ok::<(), rampart::Error>(()) }).unwrap();
//! ```
//!
//! # How it works
//!
//! The moka cache maps each key to a small slot (a `parking_lot` mutex
//! around the value, its deadline and a "removed" flag). A write to an
//! existing key locks the slot and changes it in place: no moka insert, so
//! a rate-limit decision or a counter costs a moka lookup and an
//! uncontended lock. Creating a key, or replacing a slot that was removed,
//! goes through moka's per-key `and_compute_with`, which serialises
//! creators; removal marks the slot dead under its lock and then unlinks it
//! only if the map still holds that very slot, so a writer that raced with
//! a delete notices and starts again on a fresh slot.
//!
//! Expiry is decided by the store's [`Clock`] alone, checked on every read.
//! On the system clock moka also drops entries on its own timer, some time
//! after their deadline, as garbage collection; with any other clock that
//! is off (see [`MokaStoreBuilder::reclaim_in_real_time`]) and expired
//! entries are reclaimed when touched, scanned, or evicted for capacity.

#![deny(missing_docs)]

use std::cell::Cell;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::ops::compute::Op;
use moka::policy::{EvictionPolicy, Expiry};
use moka::sync::Cache;
use parking_lot::Mutex;
use rampart::{
    check_ttl, duration_micros, validate_prefix, Capabilities, Change, Clock, Cursor, Error,
    ErrorKind, Key, KeyTtl, LocalChange, LocalUpdateFn, LocalValue, Page, Result, SharedClock,
    Store, StoreStats, Swap, SystemClock, Timestamp, UpdateFn, Updated,
};

/// Default capacity of [`MokaStore::new`], in entries.
pub const DEFAULT_MAX_CAPACITY: u64 = 100_000;

/// A `gc_deadline` meaning "moka never expires this entry".
const NEVER: u64 = u64::MAX;

/// A write in place is allowed only while moka's own deadline for the entry
/// is at least this far away (µs), so moka cannot drop it mid-write.
const GC_MARGIN: u64 = 1_000_000;

/// The least slack (µs) added to a deadline registered with moka, so keys
/// whose deadline creeps forward on every call re-register rarely.
const MIN_GC_SLACK: u64 = 1_000_000;

/// A bounded in-process store on moka, with in-place per-key updates.
///
/// * Bounded to [`MokaStoreBuilder::max_capacity`] entries (moka evicts
///   the least recently used by default; the bound is enforced by moka's
///   housekeeping, so it can be overshot briefly under heavy writes).
/// * Expiry follows the store's [`Clock`] exactly; expired values are
///   never returned.
/// * [`Store::update`] runs its closure once under the key's lock: no
///   retries, no lost updates. Writes to existing keys mutate them in
///   place. The closure must not call the store back on the same key
///   (it would wait on its own lock).
/// * [`Store::scan`] is O(n) in the store's size per page (moka has no
///   ordered iteration): fine for maintenance, not for a request path.
pub struct MokaStore {
    cache: Cache<Key, Arc<Slot>>,
    clock: SharedClock,
    /// Whether moka's timer drops expired entries (`gc_deadline` in use).
    reclaim: bool,
    max_capacity: u64,
}

/// One key's state, shared by the map and by in-flight operations.
struct Slot {
    state: Mutex<State>,
    /// The deadline (µs, store clock) moka was last told, or [`NEVER`].
    /// Always at or after `state.expires_at`; unused unless `reclaim`.
    gc_deadline: AtomicU64,
}

struct State {
    value: LocalValue,
    /// Microseconds since the epoch on the store's clock; `None` = never.
    expires_at: Option<u64>,
    /// Removed from the store: the slot may still be in the map for a
    /// moment, but it holds nothing and must not be written.
    dead: bool,
}

impl State {
    fn is_expired(&self, now: &Now<'_>) -> bool {
        self.expires_at.is_some_and(|t| t <= now.get())
    }

    fn kill(&mut self) {
        self.dead = true;
        self.value = LocalValue::Shared(Bytes::new());
        self.expires_at = None;
    }
}

impl Slot {
    fn new(value: LocalValue, expires_at: Option<u64>, gc_deadline: u64) -> Arc<Self> {
        Arc::new(Slot {
            state: Mutex::new(State {
                value,
                expires_at,
                dead: false,
            }),
            gc_deadline: AtomicU64::new(gc_deadline),
        })
    }
}

/// What a write decided on seeing the key's current value.
enum Write {
    /// Change nothing.
    Keep,
    /// Store this value with this deadline.
    Put(LocalValue, Option<u64>),
    /// Remove the key.
    Remove,
}

/// The live value a write decision sees: the value and its deadline.
type Current<'a> = Option<(&'a LocalValue, Option<u64>)>;

/// The store's clock, read at most once per operation and only when
/// needed: a key without a TTL costs no clock read at all.
struct Now<'a> {
    clock: &'a dyn Clock,
    micros: Cell<Option<u64>>,
}

impl<'a> Now<'a> {
    fn new(clock: &'a dyn Clock) -> Self {
        Now {
            clock,
            micros: Cell::new(None),
        }
    }

    fn get(&self) -> u64 {
        match self.micros.get() {
            Some(t) => t,
            None => {
                let t = self.clock.now().as_micros();
                self.micros.set(Some(t));
                t
            }
        }
    }

    /// The deadline of a TTL starting now (`None` = never).
    fn deadline(&self, ttl: Option<Duration>) -> Option<u64> {
        ttl.map(|d| deadline_after(self.get(), d))
    }
}

/// The deadline (µs) of a TTL starting at `now`, rounded up to the µs.
fn deadline_after(now: u64, ttl: Duration) -> u64 {
    let round_up = u64::from(!ttl.subsec_nanos().is_multiple_of(1_000));
    now.saturating_add(duration_micros(ttl).saturating_add(round_up))
}

/// The deadline to tell moka for a value expiring at `expires_at`: later,
/// by half the TTL (at least a second), so a key refreshed on every call
/// re-registers about once per half TTL rather than every time.
fn gc_deadline_for(expires_at: Option<u64>, now: impl FnOnce() -> u64) -> u64 {
    match expires_at {
        None => NEVER,
        Some(t) => {
            let slack = (t.saturating_sub(now()) / 2).max(MIN_GC_SLACK);
            t.saturating_add(slack).min(NEVER - 1)
        }
    }
}

/// Tells moka, on insert and on re-registration, how long an entry may live.
struct GcExpiry {
    clock: SharedClock,
}

impl GcExpiry {
    fn remaining(&self, slot: &Slot) -> Option<Duration> {
        let gc = slot.gc_deadline.load(Ordering::Acquire);
        (gc != NEVER)
            .then(|| Duration::from_micros(gc.saturating_sub(self.clock.now().as_micros())))
    }
}

impl Expiry<Key, Arc<Slot>> for GcExpiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        slot: &Arc<Slot>,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.remaining(slot)
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        slot: &Arc<Slot>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(slot)
    }
}

impl MokaStore {
    /// A store of at most [`DEFAULT_MAX_CAPACITY`] entries on the system
    /// clock, with moka reclaiming expired entries in real time.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the capacity, the clock and the eviction policy.
    pub fn builder() -> MokaStoreBuilder {
        MokaStoreBuilder {
            max_capacity: DEFAULT_MAX_CAPACITY,
            clock: None,
            reclaim: None,
            policy: EvictionPolicy::lru(),
        }
    }

    /// The clock expiry follows.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The most entries the store holds (moka may overshoot it briefly).
    pub fn max_capacity(&self) -> u64 {
        self.max_capacity
    }

    /// Runs moka's pending maintenance (evictions, expirations) now.
    ///
    /// Never needed for correctness; useful before reading
    /// [`Store::stats`]-like figures or in tests of the capacity bound.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    fn now(&self) -> Now<'_> {
        Now::new(&*self.clock)
    }

    /// The moka deadline a new slot expiring at `expires_at` needs.
    fn initial_gc(&self, expires_at: Option<u64>, now: &Now<'_>) -> u64 {
        if self.reclaim {
            gc_deadline_for(expires_at, || now.get())
        } else {
            NEVER
        }
    }

    /// Whether a slot may be written in place (moka will not drop it
    /// before the write is done and re-registered).
    fn writable_in_place(&self, slot: &Slot, now: &Now<'_>) -> bool {
        if !self.reclaim {
            return true;
        }
        let gc = slot.gc_deadline.load(Ordering::Acquire);
        gc == NEVER || gc > now.get().saturating_add(GC_MARGIN)
    }

    /// Raises the deadline moka knows for `slot` to cover `expires_at`;
    /// `true` if moka must be told (the caller holds the slot's lock).
    fn raise_gc(&self, slot: &Slot, expires_at: Option<u64>, now: &Now<'_>) -> bool {
        if !self.reclaim {
            return false;
        }
        let needed = expires_at.unwrap_or(NEVER);
        if needed <= slot.gc_deadline.load(Ordering::Acquire) {
            return false;
        }
        slot.gc_deadline
            .store(gc_deadline_for(expires_at, || now.get()), Ordering::Release);
        true
    }

    /// Re-inserts `slot` (the same one) so moka reads its new deadline;
    /// nothing if the map holds another slot by now.
    fn reregister(&self, key: &Key, slot: &Arc<Slot>) {
        self.cache
            .entry(key.clone())
            .and_compute_with(|entry| match entry {
                Some(e) if Arc::ptr_eq(e.value(), slot) => Op::Put(Arc::clone(slot)),
                _ => Op::Nop,
            });
    }

    /// Removes `slot` (already marked dead) from the map if it is still
    /// the one there.
    fn unlink(&self, key: &Key, slot: &Arc<Slot>) {
        self.cache
            .entry(key.clone())
            .and_compute_with(|entry| match entry {
                Some(e) if Arc::ptr_eq(e.value(), slot) => Op::Remove,
                _ => Op::Nop,
            });
    }

    /// The live value and deadline of `key`, reclaiming it if it expired.
    fn read<R>(&self, key: &Key, f: impl FnOnce(Current<'_>, &Now<'_>) -> R) -> R {
        let now = &self.now();
        let Some(slot) = self.cache.get(key) else {
            return f(None, now);
        };
        let mut st = slot.state.lock();
        if st.dead {
            return f(None, now);
        }
        if st.is_expired(now) {
            st.kill();
            drop(st);
            self.unlink(key, &slot);
            return f(None, now);
        }
        f(Some((&st.value, st.expires_at)), now)
    }

    /// One atomic write: `decide` runs exactly once on the key's live
    /// value (under the key's lock) and says what to do; its result is
    /// returned. `missing` may answer at once for a missing key (a write
    /// that would not create it), saving the creation path.
    fn write<R>(
        &self,
        key: &Key,
        now: &Now<'_>,
        decide: impl FnOnce(Current<'_>) -> (Write, R),
        missing: impl FnOnce() -> Option<R>,
    ) -> Result<R> {
        let found = self.cache.get(key);
        if let Some(slot) = &found {
            let mut st = slot.state.lock();
            if !st.dead && self.writable_in_place(slot, now) {
                let live = !st.is_expired(now);
                let (write, out) = decide(live.then(|| (&st.value, st.expires_at)));
                match write {
                    Write::Keep if live => {}
                    Write::Keep | Write::Remove => {
                        st.kill();
                        drop(st);
                        self.unlink(key, slot);
                    }
                    Write::Put(value, expires_at) => {
                        st.value = value;
                        st.expires_at = expires_at;
                        let tell_moka = self.raise_gc(slot, expires_at, now);
                        drop(st);
                        if tell_moka {
                            self.reregister(key, slot);
                        }
                    }
                }
                return Ok(out);
            }
            if st.dead {
                drop(st);
                if let Some(out) = missing() {
                    return Ok(out);
                }
                return self.write_creating(key, now, decide);
            }
        } else if let Some(out) = missing() {
            return Ok(out);
        }
        self.write_creating(key, now, decide)
    }

    /// The slow path of [`Self::write`], under moka's per-key compute lock:
    /// the key is missing, its slot was removed, or moka's own deadline for
    /// it is close and must be renewed with the write.
    fn write_creating<R>(
        &self,
        key: &Key,
        now: &Now<'_>,
        decide: impl FnOnce(Current<'_>) -> (Write, R),
    ) -> Result<R> {
        let mut out = None;
        self.cache.entry(key.clone()).and_compute_with(|entry| {
            let existing = entry.map(|e| e.into_value());
            if let Some(slot) = existing.as_ref() {
                let mut st = slot.state.lock();
                if !st.dead {
                    let live = !st.is_expired(now);
                    let (write, r) = decide(live.then(|| (&st.value, st.expires_at)));
                    out = Some(r);
                    return match write {
                        Write::Keep if live => Op::Nop,
                        Write::Keep | Write::Remove => {
                            st.kill();
                            Op::Remove
                        }
                        Write::Put(value, expires_at) => {
                            st.value = value;
                            st.expires_at = expires_at;
                            if self.reclaim {
                                // Always renew: moka may think the entry is
                                // about to expire (that is why we are here).
                                slot.gc_deadline.store(
                                    gc_deadline_for(expires_at, || now.get())
                                        .max(slot.gc_deadline.load(Ordering::Acquire)),
                                    Ordering::Release,
                                );
                                Op::Put(Arc::clone(slot))
                            } else {
                                Op::Nop
                            }
                        }
                    };
                }
            }
            let (write, r) = decide(None);
            out = Some(r);
            match write {
                Write::Put(value, expires_at) => Op::Put(Slot::new(
                    value,
                    expires_at,
                    self.initial_gc(expires_at, now),
                )),
                // A dead slot still in the map: its remover will unlink
                // it too, but there is no reason to wait.
                Write::Keep | Write::Remove if existing.is_some() => Op::Remove,
                Write::Keep | Write::Remove => Op::Nop,
            }
        });
        out.ok_or_else(|| {
            Error::new(ErrorKind::Backend, "moka did not run the compute closure").with_key(key)
        })
    }
}

impl Default for MokaStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MokaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MokaStore")
            .field("entries", &self.cache.entry_count())
            .field("max_capacity", &self.max_capacity)
            .field("clock", &self.clock)
            .field("reclaim_in_real_time", &self.reclaim)
            .finish()
    }
}

/// Builds a [`MokaStore`].
#[derive(Debug)]
pub struct MokaStoreBuilder {
    max_capacity: u64,
    clock: Option<SharedClock>,
    reclaim: Option<bool>,
    policy: EvictionPolicy,
}

impl MokaStoreBuilder {
    /// The most entries held before eviction (at least 1; default
    /// [`DEFAULT_MAX_CAPACITY`]).
    pub fn max_capacity(mut self, n: u64) -> Self {
        self.max_capacity = n.max(1);
        self
    }

    /// The clock expiry follows (default: [`SystemClock`]).
    ///
    /// Setting a clock turns off moka's real-time reclamation unless
    /// [`reclaim_in_real_time`](Self::reclaim_in_real_time) turns it back
    /// on: moka's timer runs on real time, and would drop entries that a
    /// manual clock still considers alive.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Whether moka drops expired entries on its own timer (some time
    /// after their deadline) instead of only when they are touched,
    /// scanned or evicted.
    ///
    /// Default: on for the default system clock, off when
    /// [`clock`](Self::clock) is set. Turn it on only for a clock that
    /// advances at real speed (an offset does not matter).
    pub fn reclaim_in_real_time(mut self, on: bool) -> Self {
        self.reclaim = Some(on);
        self
    }

    /// Which entries moka evicts when full (default
    /// [`EvictionPolicy::lru`]: a write is always admitted, which locks and
    /// rate limits need; [`EvictionPolicy::tiny_lfu`] gives a plain cache a
    /// better hit ratio but may refuse to admit new keys).
    pub fn eviction_policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The store.
    pub fn build(self) -> MokaStore {
        let reclaim = self.reclaim.unwrap_or(self.clock.is_none());
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        let builder = Cache::builder()
            .max_capacity(self.max_capacity)
            .eviction_policy(self.policy);
        let cache = if reclaim {
            builder
                .expire_after(GcExpiry {
                    clock: Arc::clone(&clock),
                })
                .build()
        } else {
            builder.build()
        };
        MokaStore {
            cache,
            clock,
            reclaim,
            max_capacity: self.max_capacity,
        }
    }
}

#[async_trait]
impl Store for MokaStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::IN_PROCESS
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        Ok(self.read(key, |cur, _| cur.map(|(v, _)| v.to_bytes())))
    }

    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        check_ttl(ttl)?;
        let now = &self.now();
        let expires_at = now.deadline(ttl);
        self.write(
            key,
            now,
            |_| (Write::Put(value.into(), expires_at), ()),
            || None,
        )
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let now = &self.now();
        self.write(
            key,
            now,
            |cur| match cur {
                Some(_) => (Write::Remove, true),
                None => (Write::Keep, false),
            },
            || Some(false),
        )
    }

    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        Ok(self.read(key, |cur, now| match cur {
            None => KeyTtl::Missing,
            Some((_, None)) => KeyTtl::Persistent,
            Some((_, Some(t))) => KeyTtl::Expires(Duration::from_micros(t - now.get())),
        }))
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        let creates = new.is_some();
        if creates {
            check_ttl(ttl)?;
        }
        let now = &self.now();
        let expires_at = if creates { now.deadline(ttl) } else { None };
        self.write(
            key,
            now,
            |cur| {
                let current = cur.map(|(v, _)| v);
                if current.map(|v| &v[..]) != expected {
                    return (
                        Write::Keep,
                        Swap::Conflict(current.map(LocalValue::to_bytes)),
                    );
                }
                match new {
                    Some(value) => (Write::Put(value.into(), expires_at), Swap::Swapped),
                    None => (Write::Remove, Swap::Swapped),
                }
            },
            || match expected {
                Some(_) => Some(Swap::Conflict(None)),
                None if !creates => Some(Swap::Swapped),
                None => None,
            },
        )
    }

    /// One page of keys under `prefix`, in key order.
    ///
    /// # Behavior
    /// As [`Store::scan`]. The cursor is the last key returned, so a key
    /// alive through the whole scan is returned exactly once. Each page
    /// walks the whole cache (O(n), keeping only the `count` smallest
    /// matches): fine for maintenance, too slow for a request path on a
    /// large store.
    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        validate_prefix(prefix)?;
        let count = count.max(1);
        let now = &self.now();
        let after = cursor.as_raw();
        // A max-heap of the `count` smallest matching keys seen so far.
        let mut page: BinaryHeap<Key> = BinaryHeap::with_capacity(count.min(4_096) + 1);
        let mut more = false;
        let mut expired = Vec::new();
        for (key, slot) in self.cache.iter() {
            let k = key.as_str();
            if !k.starts_with(prefix) || k <= after {
                continue;
            }
            if page.len() == count && page.peek().is_some_and(|top| k > top.as_str()) {
                more = true;
                continue;
            }
            {
                let mut st = slot.state.lock();
                if st.dead {
                    continue;
                }
                if st.is_expired(now) {
                    st.kill();
                    drop(st);
                    expired.push((key, slot));
                    continue;
                }
            }
            page.push(Key::clone(&key));
            if page.len() > count {
                page.pop();
                more = true;
            }
        }
        for (key, slot) in expired {
            self.unlink(&key, &slot);
        }
        let keys = page.into_sorted_vec();
        let next = match keys.last() {
            Some(last) if more => Some(Cursor::from_raw(last.as_str())),
            _ => None,
        };
        Ok(Page { keys, next })
    }

    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        let now = &self.now();
        self.write(
            key,
            now,
            |cur| {
                let current = cur.map(|(v, _)| v);
                match f(current.map(|v| &v[..])) {
                    Change::Keep => (
                        Write::Keep,
                        Ok(Updated::new(current.map(LocalValue::to_bytes), false, 1)),
                    ),
                    Change::Remove => (Write::Remove, Ok(Updated::new(None, current.is_some(), 1))),
                    Change::Set { value, ttl } => match check_ttl(ttl) {
                        Err(e) => (Write::Keep, Err(e.with_operation("update").with_key(key))),
                        Ok(()) => (
                            Write::Put(value.clone().into(), now.deadline(ttl)),
                            Ok(Updated::new(Some(value), true, 1)),
                        ),
                    },
                    Change::SetKeepTtl(value) => (
                        Write::Put(value.clone().into(), cur.and_then(|(_, t)| t)),
                        Ok(Updated::new(Some(value), true, 1)),
                    ),
                }
            },
            || None,
        )?
    }

    fn update_local(&self, key: &Key, f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
        let now = &self.now();
        let done = self.write(
            key,
            now,
            |cur| {
                let at = Timestamp::from_micros(now.get());
                match f(cur.map(|(v, _)| v.as_slice()), at) {
                    LocalChange::Keep => (Write::Keep, Ok(())),
                    LocalChange::Remove => (Write::Remove, Ok(())),
                    LocalChange::Set { value, ttl } => match check_ttl(ttl) {
                        Err(e) => (Write::Keep, Err(e.with_operation("update").with_key(key))),
                        Ok(()) => (Write::Put(value, now.deadline(ttl)), Ok(())),
                    },
                }
            },
            || None,
        );
        Some(done.and_then(|r| r))
    }

    /// Key count (after running moka's pending evictions; expired keys not
    /// yet reclaimed included). Memory is not tracked.
    async fn stats(&self) -> Result<StoreStats> {
        self.cache.run_pending_tasks();
        let mut stats = StoreStats::default();
        stats.keys = Some(self.cache.entry_count());
        stats.server = Some(format!(
            "rampart moka store (max {} entries)",
            self.max_capacity
        ));
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_and_saturate() {
        assert_eq!(deadline_after(10, Duration::from_nanos(1)), 11);
        assert_eq!(deadline_after(10, Duration::from_micros(5)), 15);
        assert_eq!(deadline_after(10, Duration::from_nanos(5_001)), 16);
        assert_eq!(deadline_after(u64::MAX - 1, Duration::MAX), u64::MAX);
    }

    #[test]
    fn the_clock_is_read_once_and_only_when_needed() {
        let clock = rampart::ManualClock::new(rampart::Timestamp::from_micros(7));
        let now = Now::new(&clock);
        assert_eq!(now.deadline(None), None);
        assert_eq!(now.micros.get(), None, "no TTL, no clock read");
        assert_eq!(now.get(), 7);
        clock.advance(Duration::from_secs(1));
        assert_eq!(now.get(), 7, "one operation sees one instant");
    }

    #[test]
    fn gc_deadline_has_slack_and_never_means_never() {
        assert_eq!(gc_deadline_for(None, || 0), NEVER);
        // Half the TTL of slack...
        assert_eq!(gc_deadline_for(Some(10_000_000), || 0), 15_000_000);
        // ...but at least a second.
        assert_eq!(gc_deadline_for(Some(100), || 0), 100 + MIN_GC_SLACK);
        assert!(gc_deadline_for(Some(u64::MAX - 5), || 0) < NEVER);
    }
}
