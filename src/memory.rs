//! [`MemoryStore`]: the portable, bounded, in-process store.
//!
//! It runs everywhere the core does, wasm32 included: no threads, no
//! `Instant`; expiry follows the injected [`Clock`]. Natively, prefer
//! `rampart-moka`'s `MokaStore` for heavy concurrent use.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::num::NonZeroU64;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::clock::duration_micros;
use crate::{
    check_ttl, validate_prefix, Capabilities, Change, Cursor, Key, KeyTtl, LocalChange,
    LocalUpdateFn, LocalValue, Page, Result, SharedClock, Store, StoreStats, Swap, SystemClock,
    Timestamp, UpdateFn, Updated,
};

/// Default capacity of [`MemoryStore::new`].
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// How many entries one eviction looks at (Redis samples 5; we can afford more).
const EVICTION_SAMPLE: usize = 16;

/// How many entries each insertion of a new key checks for expiry, so dead
/// entries are reclaimed without a sweeper thread.
const SWEEP_PER_INSERT: usize = 2;

/// A bounded in-process store that works on every target, wasm32 included.
///
/// * Expiry follows the store's [`crate::Clock`] (pass a [`crate::ManualClock`] in
///   tests): expired entries are invisible at once, and reclaimed lazily
///   when touched and by a small incremental sweep on every insertion.
/// * At `max_entries`, inserting a new key first drops expired entries,
///   then evicts the least recently used of a sample (approximate LRU, the
///   way Redis' `allkeys-lru` does it).
/// * [`Store::update`] runs its closure once under the store's lock: no
///   retries, no lost updates.
///
/// ```
/// use rampart::{Key, ManualClock, MemoryStore, Store, Timestamp};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::new(Timestamp::from_secs(1_000));
/// let store = MemoryStore::builder().max_entries(10_000).clock(clock.shared()).build();
/// let k = Key::new("k")?;
/// store.set(&k, "v".into(), Some(Duration::from_secs(5))).await?;
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(store.get(&k).await?, None);
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
pub struct MemoryStore {
    inner: Mutex<Inner>,
    hub: crate::Hub,
    clock: SharedClock,
    max_entries: usize,
}

struct Entry {
    value: LocalValue,
    /// Microseconds since the epoch; `None` = never expires.
    expires_at: Option<NonZeroU64>,
    /// The store's access counter when the entry was last touched.
    last_used: u64,
}

impl Entry {
    fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|t| t.get() <= now)
    }
}

#[derive(Default)]
struct Inner {
    /// Lookups: one hash probe per call, with a keyed hash (SipHash and a
    /// secret seed), so keys chosen by clients cannot flood one bucket.
    map: HashMap<Key, Entry, Seeded>,
    /// The same keys in order, for `scan` cursors and the sweep; touched
    /// only when a key is created or removed, never on the hot path.
    order: BTreeSet<Key>,
    tick: u64,
    /// Where the next sweep or eviction sample starts (wraps around).
    sweep_from: Option<Key>,
    /// Bytes of keys and values held.
    bytes: u64,
}

/// When a value set at `now` with `ttl` expires (`None` = never; a
/// positive TTL never yields 0, so the niche keeps entries small).
/// std's `RandomState` natively (SipHash-1-3, keys from the OS).
#[cfg(not(target_arch = "wasm32"))]
type Seeded = std::collections::hash_map::RandomState;

/// On wasm32-unknown-unknown std has no entropy and `RandomState` uses
/// fixed keys, which would let a client precompute colliding keys: there,
/// SipHash-2-4 keyed from `crypto.getRandomValues` (through getrandom).
#[cfg(target_arch = "wasm32")]
#[derive(Clone)]
struct Seeded(u64, u64);

#[cfg(target_arch = "wasm32")]
impl Default for Seeded {
    fn default() -> Self {
        let k = crate::rt::random_bytes::<16>().unwrap_or_else(|_| {
            // No CSPRNG reachable: the clock and an address, better than
            // fixed keys.
            let t = crate::Clock::now(&SystemClock).as_micros();
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&t.to_le_bytes());
            k[8..].copy_from_slice(&(&t as *const u64 as usize as u64).to_le_bytes());
            k
        });
        let half = |r: &[u8]| u64::from_le_bytes(r.try_into().unwrap_or([0; 8]));
        Seeded(half(&k[..8]), half(&k[8..]))
    }
}

#[cfg(target_arch = "wasm32")]
impl std::hash::BuildHasher for Seeded {
    #[allow(deprecated)] // std's only keyed SipHash; still maintained
    type Hasher = std::hash::SipHasher;
    #[allow(deprecated)]
    fn build_hasher(&self) -> std::hash::SipHasher {
        std::hash::SipHasher::new_with_keys(self.0, self.1)
    }
}

fn deadline(now: u64, ttl: Option<Duration>) -> Option<NonZeroU64> {
    ttl.and_then(|d| NonZeroU64::new(now.saturating_add(duration_micros(d))))
}

impl Inner {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The live entry under `key`, removing it if it has expired.
    fn live(&mut self, key: &str, now: u64) -> Option<&mut Entry> {
        let expired = self.map.get(key)?.is_expired(now);
        if expired {
            self.remove(key);
            return None;
        }
        let tick = self.next_tick();
        let entry = self.map.get_mut(key)?;
        entry.last_used = tick;
        Some(entry)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let (k, entry) = self.map.remove_entry(key)?;
        self.order.remove(key);
        self.bytes = self
            .bytes
            .saturating_sub((k.as_str().len() + entry.value.len()) as u64);
        Some(entry)
    }

    fn put(
        &mut self,
        key: &Key,
        value: LocalValue,
        expires_at: Option<NonZeroU64>,
        now: u64,
        cap: usize,
    ) {
        let tick = self.next_tick();
        let added = value.len() as u64;
        if let Some(entry) = self.map.get_mut(key.as_str()) {
            self.bytes = self.bytes.saturating_sub(entry.value.len() as u64) + added;
            entry.value = value;
            entry.expires_at = expires_at;
            entry.last_used = tick;
            return;
        }
        self.sweep(now, SWEEP_PER_INSERT, false);
        while self.map.len() >= cap.max(1) {
            self.sweep(now, EVICTION_SAMPLE, true);
        }
        self.bytes += key.as_str().len() as u64 + added;
        self.order.insert(key.clone());
        self.map.insert(
            key.clone(),
            Entry {
                value,
                expires_at,
                last_used: tick,
            },
        );
    }

    /// Looks at up to `n` entries from the sweep position (wrapping around),
    /// drops the expired ones, and, if `evict` and none had expired, the
    /// least recently used of them.
    fn sweep(&mut self, now: u64, n: usize, evict: bool) {
        if self.map.is_empty() {
            return;
        }
        let mut sample: Vec<(Key, bool, u64)> = Vec::with_capacity(n);
        let start = match &self.sweep_from {
            Some(k) => Bound::Excluded(k.as_str()),
            None => Bound::Unbounded,
        };
        let after = self.order.range::<str, _>((start, Bound::Unbounded));
        for k in after.chain(self.order.iter()).take(n.min(self.map.len())) {
            if let Some(e) = self.map.get(k.as_str()) {
                sample.push((k.clone(), e.is_expired(now), e.last_used));
            }
        }
        self.sweep_from = sample.last().map(|(k, _, _)| k.clone());
        let mut dropped = false;
        for (k, expired, _) in &sample {
            if *expired {
                self.remove(k.as_str());
                dropped = true;
            }
        }
        if evict && !dropped {
            if let Some((k, _, _)) = sample.iter().min_by_key(|(_, _, used)| *used) {
                self.remove(k.as_str());
            }
        }
    }
}

impl MemoryStore {
    /// A store of at most 100 000 entries on the system clock.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the capacity and the clock.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_entries: DEFAULT_MAX_ENTRIES,
            clock: None,
        }
    }

    /// The number of entries held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The clock expiry follows.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock is never held across a panic that leaves `Inner`
        // inconsistent (closures run before any mutation), so a poisoned
        // lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        self.clock.now().as_micros()
    }

    /// The one read-modify-write under the lock behind `update` and
    /// `update_local`: `decide` sees the live value (an expired one is
    /// dropped first) and the store's time; a live key costs one lookup
    /// and is written in place. An invalid TTL writes nothing.
    fn edit<R>(
        &self,
        key: &Key,
        decide: impl FnOnce(Option<&LocalValue>, Timestamp) -> (Edit, R),
    ) -> Result<R> {
        let now = self.clock.now();
        let at = now.as_micros();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let tick = inner.next_tick();
        let mut expired = false;
        if let Some(entry) = inner.map.get_mut(key.as_str()) {
            if entry.is_expired(at) {
                expired = true;
            } else {
                entry.last_used = tick;
                let (edit, out) = decide(Some(&entry.value), now);
                match edit {
                    Edit::Keep => {}
                    Edit::Set(value, ttl) => {
                        check_ttl(ttl)?;
                        inner.bytes = inner.bytes.saturating_sub(entry.value.len() as u64)
                            + value.len() as u64;
                        entry.value = value;
                        entry.expires_at = deadline(at, ttl);
                    }
                    Edit::SetKeepTtl(value) => {
                        inner.bytes = inner.bytes.saturating_sub(entry.value.len() as u64)
                            + value.len() as u64;
                        entry.value = value;
                    }
                    Edit::Remove => {
                        inner.remove(key.as_str());
                    }
                }
                return Ok(out);
            }
        }
        if expired {
            inner.remove(key.as_str());
        }
        let (edit, out) = decide(None, now);
        match edit {
            Edit::Keep | Edit::Remove => {}
            Edit::Set(value, ttl) => {
                check_ttl(ttl)?;
                inner.put(key, value, deadline(at, ttl), at, self.max_entries);
            }
            Edit::SetKeepTtl(value) => inner.put(key, value, None, at, self.max_entries),
        }
        Ok(out)
    }
}

/// What [`MemoryStore::edit`]'s closure decides.
enum Edit {
    Keep,
    Set(LocalValue, Option<Duration>),
    SetKeepTtl(LocalValue),
    Remove,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("max_entries", &self.max_entries)
            .field("clock", &self.clock)
            .finish()
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryStoreBuilder {
    max_entries: usize,
    clock: Option<SharedClock>,
}

impl MemoryStoreBuilder {
    /// The most entries held before eviction starts (at least 1).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }
    /// The clock expiry follows (default: [`SystemClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// The store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            hub: crate::Hub::default(),
            clock: self.clock.unwrap_or_else(SystemClock::shared),
            max_entries: self.max_entries,
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl Store for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::IN_PROCESS;
        caps.pubsub = true;
        caps
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let now = self.now();
        Ok(self
            .lock()
            .live(key.as_str(), now)
            .map(|e| e.value.to_bytes()))
    }

    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        check_ttl(ttl)?;
        let now = self.now();
        self.lock()
            .put(key, value.into(), deadline(now, ttl), now, self.max_entries);
        Ok(())
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let now = self.now();
        let mut inner = self.lock();
        Ok(inner
            .remove(key.as_str())
            .is_some_and(|e| !e.is_expired(now)))
    }

    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        let now = self.now();
        Ok(match self.lock().live(key.as_str(), now) {
            None => KeyTtl::Missing,
            Some(Entry {
                expires_at: None, ..
            }) => KeyTtl::Persistent,
            Some(Entry {
                expires_at: Some(t),
                ..
            }) => KeyTtl::Expires(Duration::from_micros(t.get() - now)),
        })
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        if new.is_some() {
            check_ttl(ttl)?;
        }
        let now = self.now();
        let mut inner = self.lock();
        let current = inner.live(key.as_str(), now).map(|e| &e.value);
        if current.map(|v| v.as_slice()) != expected {
            return Ok(Swap::Conflict(current.map(LocalValue::to_bytes)));
        }
        match new {
            Some(value) => inner.put(key, value.into(), deadline(now, ttl), now, self.max_entries),
            None => {
                inner.remove(key.as_str());
            }
        }
        Ok(Swap::Swapped)
    }

    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        validate_prefix(prefix)?;
        let now = self.now();
        let count = count.max(1);
        let mut inner = self.lock();
        let start = if cursor.is_start() {
            Bound::Included(prefix)
        } else {
            Bound::Excluded(cursor.as_raw())
        };
        let mut keys = Vec::with_capacity(count.min(1024));
        let mut expired = Vec::new();
        let mut more = false;
        for k in inner.order.range::<str, _>((start, Bound::Unbounded)) {
            let Some(e) = inner.map.get(k.as_str()) else {
                continue;
            };
            if !k.as_str().starts_with(prefix) {
                if k.as_str() > prefix {
                    break;
                }
                continue;
            }
            if keys.len() == count {
                more = true;
                break;
            }
            if e.is_expired(now) {
                expired.push(k.clone());
            } else {
                keys.push(k.clone());
            }
        }
        for k in expired {
            inner.remove(k.as_str());
        }
        let next = match keys.last() {
            Some(last) if more => Some(Cursor::from_raw(last.as_str())),
            _ => None,
        };
        Ok(Page { keys, next })
    }

    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        self.edit(key, |current, _| {
            let existed = current.is_some();
            match f(current.map(LocalValue::as_slice)) {
                Change::Keep => (
                    Edit::Keep,
                    Updated::new(current.map(LocalValue::to_bytes), false, 1),
                ),
                Change::Remove => (Edit::Remove, Updated::new(None, existed, 1)),
                Change::Set { value, ttl } => (
                    Edit::Set(value.clone().into(), ttl),
                    Updated::new(Some(value), true, 1),
                ),
                Change::SetKeepTtl(value) => (
                    Edit::SetKeepTtl(value.clone().into()),
                    Updated::new(Some(value), true, 1),
                ),
            }
        })
    }

    fn update_local(&self, key: &Key, f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
        Some(self.edit(key, |current, now| {
            let edit = match f(current.map(LocalValue::as_slice), now) {
                LocalChange::Keep => Edit::Keep,
                LocalChange::Remove => Edit::Remove,
                LocalChange::Set { value, ttl } => Edit::Set(value, ttl),
            };
            (edit, ())
        }))
    }

    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        self.hub.publish(channel, message);
        Ok(())
    }

    async fn subscribe(&self, channel: &Key) -> Result<crate::Subscription> {
        Ok(self.hub.subscribe(channel))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let inner = self.lock();
        Ok(StoreStats {
            keys: Some(inner.map.len() as u64),
            memory_bytes: Some(inner.bytes),
            server: Some(format!(
                "rampart memory store (max {} entries)",
                self.max_entries
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, Timestamp};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The store never awaits anything, so one poll finishes any call.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("memory store futures never wait"),
        }
    }

    #[test]
    fn eviction_keeps_the_bound_and_prefers_expired_then_cold_entries() {
        let clock = ManualClock::new(Timestamp::from_secs(1));
        let store = MemoryStore::builder()
            .max_entries(100)
            .clock(clock.shared())
            .build();
        let hot = Key::new("hot").unwrap();
        block_on(store.set(&hot, "h".into(), None)).unwrap();
        for i in 0..1_000 {
            let k = Key::new(format!("k{i:04}")).unwrap();
            block_on(store.set(&k, "v".into(), None)).unwrap();
            // Keep one key hot: sampled LRU must not evict it.
            assert!(
                block_on(store.get(&hot)).unwrap().is_some(),
                "hot key evicted at {i}"
            );
            assert!(store.len() <= 100);
        }
        let stats = block_on(store.stats()).unwrap();
        assert_eq!(stats.keys, Some(100));
        assert_eq!(stats.memory_bytes, Some(3 + 1 + 99 * 6));
    }

    #[test]
    fn expired_entries_are_reclaimed_without_reads() {
        let clock = ManualClock::new(Timestamp::from_secs(1));
        let store = MemoryStore::builder().clock(clock.shared()).build();
        for i in 0..50 {
            let k = Key::new(format!("short{i:02}")).unwrap();
            block_on(store.set(&k, "v".into(), Some(Duration::from_secs(1)))).unwrap();
        }
        clock.advance(Duration::from_secs(2));
        for i in 0..50 {
            let k = Key::new(format!("long{i:02}")).unwrap();
            block_on(store.set(&k, "v".into(), None)).unwrap();
        }
        assert!(store.len() < 100, "incremental sweep reclaimed nothing");
    }
}
