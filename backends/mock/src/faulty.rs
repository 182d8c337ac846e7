//! [`FaultyStore`]: a real store with failures and latency injected.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rampart::{
    Arg, Atomic, Capabilities, Cursor, Error, ErrorKind, Key, KeyTtl, LocalUpdateFn, Page, Result,
    Script, Store, StoreStats, Subscription, Swap, Timestamp, UpdateFn, Updated, Value,
};

/// Which calls a [`FaultyStore`] fails right now; switched at run time
/// through `&self`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The configured rules decide ([`FaultyStore::fail_every`],
    /// [`FaultyStore::fail_fraction`]); the starting mode.
    Rules,
    /// Every call fails (the server is down).
    Broken,
    /// No call fails, whatever the rules say (the server is back).
    Healed,
}

impl FaultMode {
    fn to_u8(self) -> u8 {
        match self {
            FaultMode::Rules => 0,
            FaultMode::Broken => 1,
            FaultMode::Healed => 2,
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            1 => FaultMode::Broken,
            2 => FaultMode::Healed,
            _ => FaultMode::Rules,
        }
    }
}

/// Wraps a store and makes some of its calls fail, for fault tests.
///
/// Every call but [`capabilities`](Store::capabilities) (which cannot fail)
/// counts as one call ([`calls`](Self::calls)), numbered from 1, and may
/// fail:
///
/// - [`fail_every(n)`](Self::fail_every): calls n, 2n, 3n, ... fail
///   (`1` = every call);
/// - [`fail_fraction(p)`](Self::fail_fraction): each call fails with
///   probability `p`, drawn from a PRNG seeded with [`seed`](Self::seed),
///   so a test sees the same failures on every run;
/// - [`break_now`](Self::break_now) / [`heal`](Self::heal) /
///   [`apply_rules`](Self::apply_rules) override the rules at run time.
///
/// A call fails when any rule says so. The failure is decided *before*
/// the inner store is called, so a failed call has no effect (a failed
/// `set` writes nothing, a failed `update` never runs its closure). The
/// error is of kind [`with_error`](Self::with_error) (default
/// [`ErrorKind::Unavailable`], temporary), carries the operation and key,
/// and is counted by [`injected`](Self::injected).
/// [`latency`](Self::latency) delays every call, failing or not.
///
/// A provided method (`update`, `increment`, ...) is forwarded to the
/// inner store's own version, so it is one call here however many steps
/// the inner store takes.
///
/// ```
/// use rampart::{layers::Fallback, Key, MemoryStore, Store};
/// use rampart_mock::FaultyStore;
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let primary = Arc::new(FaultyStore::new(MemoryStore::new()));
/// let store = Fallback::new(primary.clone(), MemoryStore::new());
/// let key = Key::new("k")?;
///
/// primary.break_now(); // the primary goes down...
/// store.set(&key, "v".into(), None).await?; // ...and the insurance store answers
/// assert!(store.insurance().get(&key).await?.is_some());
/// assert_eq!(primary.injected(), 1);
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
pub struct FaultyStore<S> {
    inner: S,
    every: u64,
    fraction: f64,
    seed: u64,
    kind: ErrorKind,
    latency_nanos: AtomicU64,
    mode: AtomicU8,
    calls: AtomicU64,
    injected: AtomicU64,
}

impl<S: fmt::Debug> fmt::Debug for FaultyStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("every", &self.every)
            .field("fraction", &self.fraction)
            .field("seed", &self.seed)
            .field("kind", &self.kind)
            .field("latency", &self.latency_now())
            .field("mode", &self.mode())
            .field("calls", &self.calls())
            .field("injected", &self.injected())
            .finish()
    }
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner`; no faults until some are configured.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            every: 0,
            fraction: 0.0,
            seed: 0x5EED_5EED_5EED_5EED,
            kind: ErrorKind::Unavailable,
            latency_nanos: AtomicU64::new(0),
            mode: AtomicU8::new(FaultMode::Rules.to_u8()),
            calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }
}

impl<S> FaultyStore<S> {
    /// Fails every `n`-th call: calls `n`, `2n`, ... (`1` fails every call;
    /// `0` turns the rule off).
    pub fn fail_every(mut self, n: u64) -> Self {
        self.every = n;
        self
    }

    /// Fails each call with probability `p`, from a seeded PRNG (see
    /// [`seed`](Self::seed)): the same seed fails the same calls on every
    /// run. `p` is clamped to `0.0..=1.0`; NaN counts as `0.0` (off).
    pub fn fail_fraction(mut self, p: f64) -> Self {
        self.fraction = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self
    }

    /// Seeds the PRNG of [`fail_fraction`](Self::fail_fraction) (a fixed
    /// seed by default). Whether call `i` fails depends only on the seed
    /// and `i`, so the pattern holds even under concurrency.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The kind of the injected errors (default [`ErrorKind::Unavailable`]);
    /// they are temporary when the kind is by default
    /// ([`ErrorKind::is_temporary_by_default`]).
    pub fn with_error(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Delays every call by `d` before anything else (the fault decision
    /// included), on the runtime's timer (`rampart::rt::sleep`).
    pub fn latency(self, d: Duration) -> Self {
        self.set_latency(d);
        self
    }

    /// Changes the [`latency`](Self::latency) at run time.
    pub fn set_latency(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    /// From now on every call fails, whatever the rules say.
    pub fn break_now(&self) {
        self.set_mode(FaultMode::Broken);
    }

    /// From now on no call fails, whatever the rules say.
    pub fn heal(&self) {
        self.set_mode(FaultMode::Healed);
    }

    /// From now on the configured rules decide again (the starting mode).
    pub fn apply_rules(&self) {
        self.set_mode(FaultMode::Rules);
    }

    /// Switches to `mode`.
    pub fn set_mode(&self, mode: FaultMode) {
        self.mode.store(mode.to_u8(), Ordering::Release);
    }

    /// The current mode.
    pub fn mode(&self) -> FaultMode {
        FaultMode::from_u8(self.mode.load(Ordering::Acquire))
    }

    /// How many calls were made (failed or not); `capabilities` does not
    /// count.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many calls failed with an injected error.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Sets both counters back to zero; call numbering restarts at 1.
    pub fn reset_counters(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.injected.store(0, Ordering::Relaxed);
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped store, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn latency_now(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    /// Whether call number `n` (from 1) fails under the rules.
    fn rules_fail(&self, n: u64) -> bool {
        if self.every != 0 && n.is_multiple_of(self.every) {
            return true;
        }
        self.fraction > 0.0 && unit_draw(self.seed, n) < self.fraction
    }

    /// Runs before every call: the latency, then the fault decision.
    async fn enter(&self, operation: &'static str, key: Option<&str>) -> Result<()> {
        let latency = self.latency_now();
        if !latency.is_zero() {
            rampart::rt::sleep(latency).await;
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let fail = match self.mode() {
            FaultMode::Broken => true,
            FaultMode::Healed => false,
            FaultMode::Rules => self.rules_fail(n),
        };
        if !fail {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        let err = Error::new(self.kind, "fault injected by FaultyStore").with_operation(operation);
        Err(match key {
            Some(key) => err.with_key(key),
            None => err,
        })
    }
}

/// The `n`-th output of SplitMix64 from `seed`, as a float in `[0, 1)`.
fn unit_draw(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits, exactly representable in an f64.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for FaultyStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.enter("get", Some(key.as_str())).await?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.enter("set", Some(key.as_str())).await?;
        self.inner.set(key, value, ttl).await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.enter("delete", Some(key.as_str())).await?;
        self.inner.delete(key).await
    }
    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        self.enter("ttl", Some(key.as_str())).await?;
        self.inner.ttl(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        self.enter("compare_and_swap", Some(key.as_str())).await?;
        self.inner.compare_and_swap(key, expected, new, ttl).await
    }
    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        self.enter("scan", Some(prefix)).await?;
        self.inner.scan(prefix, cursor, count).await
    }
    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        self.enter("update", Some(key.as_str())).await?;
        self.inner.update(key, f).await
    }
    /// None: every call goes through `update`, where faults are injected.
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
        self.enter("run_atomic", Some(key.as_str())).await?;
        self.inner.run_atomic(key, script, args, apply).await
    }
    async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.enter("set_if_absent", Some(key.as_str())).await?;
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
        self.enter("delete_if_equal", Some(key.as_str())).await?;
        self.inner.delete_if_equal(key, expected).await
    }
    async fn expire_if_equal(
        &self,
        key: &Key,
        expected: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        self.enter("expire_if_equal", Some(key.as_str())).await?;
        self.inner.expire_if_equal(key, expected, ttl).await
    }
    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64> {
        self.enter("increment", Some(key.as_str())).await?;
        self.inner.increment(key, delta, ttl_if_created).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.enter("get_many", None).await?;
        self.inner.get_many(keys).await
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        self.enter("delete_many", None).await?;
        self.inner.delete_many(keys).await
    }
    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        self.enter("eval", keys.first().map(|k| k.as_str())).await?;
        self.inner.eval(script, keys, args).await
    }
    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        self.enter("publish", Some(channel.as_str())).await?;
        self.inner.publish(channel, message).await
    }
    async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
        self.enter("subscribe", Some(channel.as_str())).await?;
        self.inner.subscribe(channel).await
    }
    async fn server_time(&self) -> Result<Timestamp> {
        self.enter("server_time", None).await?;
        self.inner.server_time().await
    }
    async fn stats(&self) -> Result<StoreStats> {
        self.enter("stats", None).await?;
        self.inner.stats().await
    }
}
