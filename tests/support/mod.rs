//! Helpers shared by the cache tests: a store that can fail on demand and
//! counts the calls it gets, stores on a manual clock, and a bounded wait.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rampart::{
    Bytes, Cursor, Error, Key, KeyTtl, ManualClock, MemoryStore, Page, Result, Store, StoreStats,
    Subscription, Swap, Timestamp,
};

/// A manual clock at a fixed start.
pub fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_secs(1_700_000_000))
}

/// A memory store following `clock`.
pub fn memory(clock: &ManualClock) -> MemoryStore {
    MemoryStore::builder().clock(clock.shared()).build()
}

/// Wraps a store: fails every call with `Unavailable` while `down` (reads
/// only while `reads_down`, writes only while `writes_down`), and counts
/// the calls that reach it.
#[derive(Debug, Default)]
pub struct Faulty<S> {
    pub inner: S,
    pub down: AtomicBool,
    pub reads_down: AtomicBool,
    pub writes_down: AtomicBool,
    pub calls: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

impl<S: Store> Faulty<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            reads_down: AtomicBool::new(false),
            writes_down: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn read(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) || self.reads_down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("connection refused"));
        }
        Ok(())
    }

    fn write(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) || self.writes_down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("connection refused"));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Store> Store for Faulty<S> {
    fn capabilities(&self) -> rampart::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, k: &Key) -> Result<Option<Bytes>> {
        self.read()?;
        self.inner.get(k).await
    }
    async fn set(&self, k: &Key, v: Bytes, t: Option<Duration>) -> Result<()> {
        self.write()?;
        self.inner.set(k, v, t).await
    }
    async fn delete(&self, k: &Key) -> Result<bool> {
        self.write()?;
        self.inner.delete(k).await
    }
    async fn ttl(&self, k: &Key) -> Result<KeyTtl> {
        self.read()?;
        self.inner.ttl(k).await
    }
    async fn compare_and_swap(
        &self,
        k: &Key,
        e: Option<&[u8]>,
        n: Option<Bytes>,
        t: Option<Duration>,
    ) -> Result<Swap> {
        self.write()?;
        self.inner.compare_and_swap(k, e, n, t).await
    }
    async fn scan(&self, p: &str, c: &Cursor, n: usize) -> Result<Page> {
        self.read()?;
        self.inner.scan(p, c, n).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.read()?;
        self.inner.get_many(keys).await
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        self.write()?;
        self.inner.delete_many(keys).await
    }
    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        self.write()?;
        self.inner.publish(channel, message).await
    }
    async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
        self.read()?;
        self.inner.subscribe(channel).await
    }
    async fn stats(&self) -> Result<StoreStats> {
        self.read()?;
        self.inner.stats().await
    }
}

/// Waits (yielding, then sleeping a millisecond at a time) until `cond`
/// holds; fails the test after 10 000 tries. Never a timing assertion:
/// only a bound on how long a broken test hangs.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for i in 0..10_000 {
        if cond() {
            return;
        }
        if i < 100 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    panic!("gave up waiting for: {what}");
}

/// `until` for a condition that needs to await.
pub async fn until_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for i in 0..10_000 {
        if cond().await {
            return;
        }
        if i < 100 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    panic!("gave up waiting for: {what}");
}

/// A gate loaders wait at until the test opens it.
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::Semaphore>);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    pub fn new() -> Self {
        Gate(Arc::new(tokio::sync::Semaphore::new(0)))
    }
    pub async fn pass(&self) {
        // Each pass returns its permit, so once open, the gate stays open.
        let permit = self.0.acquire().await.expect("gate never closes");
        drop(permit);
    }
    pub fn open(&self) {
        self.0.add_permits(1);
    }
}
