//! [`Fallback`]: keep serving while the primary store is down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    Arg, Atomic, Capabilities, Cursor, Error, ErrorKind, Key, KeyTtl, LocalUpdateFn, Page, Result,
    Script, SharedClock, Store, StoreStats, Subscription, Swap, SystemClock, Timestamp, UpdateFn,
    Updated, Value,
};

/// Whether a [`Fallback`] is using its primary store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackState {
    /// Calls go to the primary.
    Primary,
    /// The primary failed; calls go to the insurance store until `retry_at`,
    /// when the next call probes the primary again.
    Insurance {
        /// When the primary is tried again.
        retry_at: Timestamp,
    },
}

/// Sends calls to a primary store and, while it is unreachable, to an
/// insurance store (usually an in-process one), going back to the primary
/// by itself once it answers again.
///
/// Only outages move traffic: [`ErrorKind::Unavailable`] and
/// [`ErrorKind::Timeout`]. Other errors (a corrupt value, an invalid key)
/// are the caller's to see. After a failure the primary is skipped for
/// `retry_after` (default 1 s), so a dead Redis costs one timeout per
/// interval instead of one per call; then one call probes it.
///
/// Data written to the insurance store during an outage stays there: it is
/// not copied back (rate-limit and lock state is short-lived by nature).
///
/// ```
/// use rampart::{layers::Fallback, Key, MemoryStore, Store};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Fallback::new(MemoryStore::new(), MemoryStore::new());
/// store.set(&Key::new("k")?, "v".into(), None).await?;
/// assert!(store.primary().get(&Key::new("k")?).await?.is_some());
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct Fallback<P, F> {
    primary: P,
    insurance: F,
    clock: SharedClock,
    retry_after: Duration,
    /// Microseconds since the epoch until which the primary is skipped; 0 = up.
    down_until: AtomicU64,
    switches: AtomicU64,
}

impl<P: Store, F: Store> Fallback<P, F> {
    /// `primary`, with `insurance` while it is down.
    pub fn new(primary: P, insurance: F) -> Self {
        Self {
            primary,
            insurance,
            clock: SystemClock::shared(),
            retry_after: Duration::from_secs(1),
            down_until: AtomicU64::new(0),
            switches: AtomicU64::new(0),
        }
    }

    /// How long the primary is skipped after it fails (default 1 s).
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }

    /// The clock that times `retry_after` (default: the system clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The primary store.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The insurance store.
    pub fn insurance(&self) -> &F {
        &self.insurance
    }

    /// Where calls go now.
    pub fn state(&self) -> FallbackState {
        match self.down_until.load(Ordering::Acquire) {
            0 => FallbackState::Primary,
            t => FallbackState::Insurance {
                retry_at: Timestamp::from_micros(t),
            },
        }
    }

    /// How many times traffic moved to the insurance store.
    pub fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    fn use_primary(&self) -> bool {
        match self.down_until.load(Ordering::Acquire) {
            0 => true,
            t => self.clock.now().as_micros() >= t,
        }
    }

    /// Records the primary's answer; `true` if the call should go to the
    /// insurance store instead.
    fn outcome<T>(&self, result: &Result<T>) -> bool {
        match result {
            Err(e) if is_outage(e) => {
                let until = self
                    .clock
                    .now()
                    .saturating_add(self.retry_after)
                    .as_micros();
                if self.down_until.swap(until.max(1), Ordering::AcqRel) == 0 {
                    self.switches.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            _ => {
                self.down_until.store(0, Ordering::Release);
                false
            }
        }
    }
}

/// Whether `e` means the store could not be reached (vs. a real answer).
fn is_outage(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
}

/// Calls `$call` with `$s` bound to the primary, or to the insurance store
/// when the primary is down or fails with an outage.
macro_rules! route {
    ($self:ident, |$s:ident| $call:expr) => {{
        if $self.use_primary() {
            let $s = &$self.primary;
            let result = $call;
            if !$self.outcome(&result) {
                return result;
            }
        }
        let $s = &$self.insurance;
        $call
    }};
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[deny(clippy::missing_trait_methods)]
impl<P: Store, F: Store> Store for Fallback<P, F> {
    fn capabilities(&self) -> Capabilities {
        self.primary.capabilities()
    }
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        route!(self, |s| s.get(key).await)
    }
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        route!(self, |s| s.set(key, value.clone(), ttl).await)
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        route!(self, |s| s.delete(key).await)
    }
    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        route!(self, |s| s.ttl(key).await)
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        route!(self, |s| s
            .compare_and_swap(key, expected, new.clone(), ttl)
            .await)
    }
    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        route!(self, |s| s.scan(prefix, cursor, count).await)
    }
    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        route!(self, |s| s.update(key, &mut *f).await)
    }
    /// None: the switch between primary and insurance happens on the
    /// async path, so every update goes through it.
    fn update_local(&self, _key: &Key, _f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
        None
    }
    async fn run_atomic(
        &self,
        key: &Key,
        script: &Script,
        args: &[Arg],
        apply: &mut UpdateFn<'_>,
    ) -> Result<Atomic> {
        route!(self, |s| s.run_atomic(key, script, args, &mut *apply).await)
    }
    async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        route!(self, |s| s.set_if_absent(key, value.clone(), ttl).await)
    }
    async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
        route!(self, |s| s.delete_if_equal(key, expected).await)
    }
    async fn expire_if_equal(
        &self,
        key: &Key,
        expected: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        route!(self, |s| s.expire_if_equal(key, expected, ttl).await)
    }
    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64> {
        route!(self, |s| s.increment(key, delta, ttl_if_created).await)
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        route!(self, |s| s.get_many(keys).await)
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        route!(self, |s| s.delete_many(keys).await)
    }
    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        route!(self, |s| s.eval(script, keys, args).await)
    }
    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        route!(self, |s| s.publish(channel, message.clone()).await)
    }
    async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
        route!(self, |s| s.subscribe(channel).await)
    }
    async fn server_time(&self) -> Result<Timestamp> {
        route!(self, |s| s.server_time().await)
    }
    async fn stats(&self) -> Result<StoreStats> {
        route!(self, |s| s.stats().await)
    }
}
