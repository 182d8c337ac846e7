//! Rate limiting: token bucket, sliding window log, sliding window counter
//! and fixed window, each exact to the microsecond, on any [`Store`].
//!
//! A [`Rule`] says how to count (an [`Algorithm`]) and how much to allow
//! (one or more [`Quota`] tiers, all-or-nothing, plus an optional block
//! after a denial). A [`Limiter`] applies a rule to keys in a store:
//!
//! ```
//! use rampart::limit::{Limiter, Quota, Rule};
//! use rampart::{Key, MemoryStore};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // 10 per second and 1000 per hour on the same key, decided together.
//! let rule = Rule::builder(rampart::limit::Algorithm::TokenBucket)
//!     .quota(Quota::per_second(10))
//!     .quota(Quota::per_hour(1000))
//!     .build()?;
//! let limiter = Limiter::new(MemoryStore::new(), rule);
//! let key = limiter.key("user:42")?;
//! let decision = limiter.consume(&key, 1).await?;
//! assert!(decision.allowed);
//! assert_eq!(decision.remaining, 9);
//! for (name, value) in decision.headers(rampart::limit::HeaderStyle::Draft8) {
//!     println!("{name}: {value}");
//! }
//! # Ok::<(), rampart::Error>(()) }).unwrap();
//! ```
//!
//! # One decision, one store call
//! Every decision is an [`crate::AtomicOp`]: a pure function of the stored
//! state and `now` (run through [`Store::update`] on in-process and
//! CAS-only stores) with a Lua twin beside it (one script call on stores
//! with scripting; the script reads Redis `TIME`, so app servers with
//! skewed clocks agree). Both faces share one state encoding, described in
//! the `state` module: a tag, then decimal integers, e.g.
//! `tb1:0,1712345678901234`. Lua scripts signal a corrupt value with an
//! error reply starting `RAMPART_CORRUPT_DATA` (and a clock beyond what
//! they count with `RAMPART_INVALID_INPUT`); a backend maps those codes to
//! [`crate::ErrorKind::CorruptData`] and [`crate::ErrorKind::InvalidInput`].
//! Each twin is three commands (`TIME`, `GET`, `SET`/`DEL`) on one key, so
//! it runs on Redis Cluster as is.
//!
//! # Semantics shared by every algorithm
//! * A denied request consumes nothing.
//! * `cost` is at least 1 and at most the rule's [`Rule::capacity`]; a cost
//!   of 0 or above the capacity is [`crate::ErrorKind::InvalidInput`] (a
//!   request that could never pass is a bug, not a denial). To look without
//!   consuming, use [`Limiter::check`].
//! * Tiers of one rule live in one stored value, so one atomic step decides
//!   them all: when any tier denies, no tier is charged. Tiers on different
//!   keys (per-IP and per-user) go through [`consume_all`].
//! * With a block duration, a denied request blocks the key for that long;
//!   a local [`BlockCache`] then answers for it without calling the store.
//!
//! # Algorithms
//! * [`Algorithm::TokenBucket`]: GCRA, one timestamp of state per tier.
//!   A bucket of `burst` tokens (default: the quota's limit) refilled one
//!   token every `ceil(window / limit)` µs. In any interval of length `t`
//!   it admits at most `burst + floor(t / interval)`, and exactly that many
//!   under saturation (a client asking at least once every `burst - 1`
//!   intervals, so the bucket never overflows between two asks). When the window is not a multiple of the limit in
//!   microseconds, the interval rounds up: the bucket never refills faster
//!   than configured.
//! * [`Algorithm::SlidingLog`]: exact. Never more than `limit` in any window
//!   of length `window` (a window is the half-open `(now - window, now]`).
//!   State is O(limit): one fixed-width record (timestamp, running total)
//!   per distinct admitted microsecond, in one string rather than a Redis
//!   sorted set so the pure face and the Lua twin read the same bytes; the
//!   twin finds a window's count with a binary search, but every write
//!   copies the log (32 bytes a record), so a log tier's limit is at most
//!   [`MAX_LOG_LIMIT`]; larger limits belong to the counter.
//! * [`Algorithm::SlidingWindow`]: the sliding window counter, O(1) state
//!   (two counts). It estimates the last `window` as the current aligned
//!   window's count plus the previous window's count weighted by the share
//!   of it still inside the sliding window (`floor(prev * (window -
//!   elapsed) / window)`). **Error bound:** each aligned window admits at
//!   most `limit`; a sliding window of length `window` that ends `e` into
//!   an aligned window (whose predecessor admitted `prev`) holds at most
//!   `limit + ceil(prev * e / window)`, so never more than `2 * limit`,
//!   and the estimate is exact when the previous window's requests were
//!   evenly spread. It can also deny a request the exact log would admit
//!   (when the previous window's requests came early). The elapsed time is measured in
//!   microseconds, or in the coarsest power of ten up to a second that keeps
//!   `limit * window` products exact in Lua (a 1 000 000 per day rule counts
//!   in 100 µs steps).
//! * [`Algorithm::FixedWindow`]: windows aligned to the Unix epoch; never
//!   more than `limit` per aligned window (and up to `2 * limit` across a
//!   boundary, as every fixed window).
//!
//! # Clock skew
//! If `now` goes backwards (a clock step, a Redis failover), every
//! algorithm stays conservative: windows do not restart, log entries from
//! the "future" still count, and buckets do not refill.

mod engine;
mod fixed_window;
mod headers;
mod limiter;
mod policy;
pub mod presets;
mod sliding_counter;
mod sliding_log;
mod state;
mod token_bucket;

use std::time::Duration;

use crate::{duration_micros, Error, Result, Timestamp, MAX_TTL};

#[cfg(feature = "fuzzing")]
pub(crate) use engine::reencode_state;
pub use engine::{scripts, LimitOp, Operation};
#[cfg(feature = "axum")]
pub(crate) use headers::secs as secs_ceil;
pub use headers::{HeaderOptions, HeaderStyle};
#[cfg(feature = "tracing")]
pub use limiter::TRACE_TARGET;
pub use limiter::{Begin, DecisionFuture, Limiter, LimiterBuilder, ScriptCall};
pub use policy::{consume_all, BlockCache, OnStoreError};

#[cfg(doc)]
use crate::Store;

/// The most tiers one rule holds.
pub const MAX_TIERS: usize = 4;

/// The largest limit (and burst) a quota accepts.
pub const MAX_LIMIT: u64 = u32::MAX as u64;

/// The largest limit of a sliding-log tier: the log keeps a record per
/// admitted microsecond (32 bytes, copied on every write), so larger
/// limits belong to the sliding window counter.
pub const MAX_LOG_LIMIT: u64 = 1_000;

/// How requests are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// GCRA token bucket: smooth refill, bursts up to the bucket size.
    TokenBucket,
    /// Exact sliding window over a log of admitted requests.
    SlidingLog,
    /// Approximate sliding window from two fixed-window counts.
    SlidingWindow,
    /// Counts per window aligned to the Unix epoch.
    FixedWindow,
}

impl Algorithm {
    /// A short lowercase name (`token_bucket`, `sliding_log`,
    /// `sliding_window`, `fixed_window`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::SlidingLog => "sliding_log",
            Algorithm::SlidingWindow => "sliding_window",
            Algorithm::FixedWindow => "fixed_window",
        }
    }
}

/// `limit` requests per `window`: one tier of a [`Rule`].
///
/// ```
/// use rampart::limit::Quota;
/// use std::time::Duration;
/// let q = Quota::per_minute(100);
/// assert_eq!((q.limit(), q.window()), (100, Duration::from_secs(60)));
/// assert_eq!(Quota::per_second(10).with_burst(50).burst(), 50);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    window: Duration,
    burst: Option<u64>,
}

impl Quota {
    /// `limit` per `window` (checked when the rule is built).
    pub const fn new(limit: u64, window: Duration) -> Self {
        Self {
            limit,
            window,
            burst: None,
        }
    }
    /// `limit` per second.
    pub const fn per_second(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(1))
    }
    /// `limit` per minute.
    pub const fn per_minute(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }
    /// `limit` per hour.
    pub const fn per_hour(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(3_600))
    }
    /// `limit` per day.
    pub const fn per_day(limit: u64) -> Self {
        Self::new(limit, Duration::from_secs(86_400))
    }
    /// The token bucket's size (default: the limit). Only the token bucket
    /// has one; other algorithms reject it when the rule is built.
    pub const fn with_burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }
    /// Requests per window.
    pub const fn limit(&self) -> u64 {
        self.limit
    }
    /// The window.
    pub const fn window(&self) -> Duration {
        self.window
    }
    /// The bucket size: the burst if set, else the limit.
    pub const fn burst(&self) -> u64 {
        match self.burst {
            Some(b) => b,
            None => self.limit,
        }
    }
}

/// One tier as the algorithms see it: three integers, passed to the Lua
/// twin as they are.
///
/// * token bucket: `a` = bucket size, `b` = µs per token;
/// * windows: `a` = limit, `b` = window in µs; the counter's `c` is the
///   resolution of elapsed time in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tier {
    pub(crate) a: u64,
    pub(crate) b: u64,
    pub(crate) c: u64,
    /// What decisions report as the limit (bucket size or window limit).
    pub(crate) limit: u64,
    /// What decisions report as the window (µs, for headers): the
    /// quota's, or for a token bucket the time its burst takes to refill.
    pub(crate) window_us: u64,
}

/// How to count and how much to allow: an [`Algorithm`], one to
/// [`MAX_TIERS`] [`Quota`] tiers, and an optional block after a denial.
///
/// Built with [`Rule::builder`] (or the one-tier shortcuts); every figure is
/// checked then, so a [`Limiter`] never fails on its configuration.
///
/// ```
/// use rampart::limit::{Algorithm, Quota, Rule};
/// use std::time::Duration;
/// let auth = Rule::builder(Algorithm::SlidingLog)
///     .quota(Quota::new(5, Duration::from_secs(15 * 60)))
///     .block_for(Duration::from_secs(15 * 60))
///     .build()?;
/// assert_eq!(auth.capacity(), 5);
/// assert!(Rule::fixed_window(Quota::per_second(0)).is_err());
/// # Ok::<(), rampart::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    algorithm: Algorithm,
    quotas: Vec<Quota>,
    block: Option<Duration>,
    tiers: [Tier; MAX_TIERS],
    n: usize,
    capacity: u64,
    max_amount: u64,
}

/// Builds a [`Rule`].
#[derive(Debug, Clone)]
pub struct RuleBuilder {
    algorithm: Algorithm,
    quotas: Vec<Quota>,
    block: Option<Duration>,
}

impl RuleBuilder {
    /// Adds a tier.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quotas.push(quota);
        self
    }
    /// Blocks a key for `d` once a request is denied (`Duration::ZERO` = no
    /// block, the default).
    pub fn block_for(mut self, d: Duration) -> Self {
        self.block = (!d.is_zero()).then_some(d);
        self
    }
    /// The rule, or [`crate::ErrorKind::Config`] naming what is wrong.
    pub fn build(self) -> Result<Rule> {
        Rule::compile(self.algorithm, self.quotas, self.block)
    }
}

impl Rule {
    /// A builder for a rule counting with `algorithm`.
    pub fn builder(algorithm: Algorithm) -> RuleBuilder {
        RuleBuilder {
            algorithm,
            quotas: Vec::new(),
            block: None,
        }
    }
    /// A one-tier token bucket.
    pub fn token_bucket(quota: Quota) -> Result<Rule> {
        Self::builder(Algorithm::TokenBucket).quota(quota).build()
    }
    /// A one-tier sliding window log.
    pub fn sliding_log(quota: Quota) -> Result<Rule> {
        Self::builder(Algorithm::SlidingLog).quota(quota).build()
    }
    /// A one-tier sliding window counter.
    pub fn sliding_window(quota: Quota) -> Result<Rule> {
        Self::builder(Algorithm::SlidingWindow).quota(quota).build()
    }
    /// A one-tier fixed window.
    pub fn fixed_window(quota: Quota) -> Result<Rule> {
        Self::builder(Algorithm::FixedWindow).quota(quota).build()
    }

    /// The same tiers and block, counted with another algorithm.
    pub fn with_algorithm(&self, algorithm: Algorithm) -> Result<Rule> {
        Rule::compile(algorithm, self.quotas.clone(), self.block)
    }
    /// The same rule with another block duration (`Duration::ZERO` = none).
    pub fn with_block(&self, d: Duration) -> Result<Rule> {
        Rule::compile(
            self.algorithm,
            self.quotas.clone(),
            (!d.is_zero()).then_some(d),
        )
    }

    /// How requests are counted.
    #[inline]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    /// The tiers, in the order given.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }
    /// How long a denial blocks the key, if it does.
    pub fn block_duration(&self) -> Option<Duration> {
        self.block
    }
    /// The largest cost one request may have: the smallest tier limit (or
    /// bucket size).
    #[inline]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    #[inline]
    pub(crate) fn tiers(&self) -> &[Tier] {
        &self.tiers[..self.n]
    }
    pub(crate) fn block_us(&self) -> u64 {
        self.block.map_or(0, duration_micros)
    }
    /// The largest refund or penalty one call accepts.
    pub(crate) fn max_amount(&self) -> u64 {
        self.max_amount
    }

    fn compile(algorithm: Algorithm, quotas: Vec<Quota>, block: Option<Duration>) -> Result<Rule> {
        if quotas.is_empty() {
            return Err(Error::config("a rate-limit rule needs at least one quota"));
        }
        if quotas.len() > MAX_TIERS {
            return Err(Error::config(format!(
                "a rate-limit rule has at most {MAX_TIERS} quotas, got {}",
                quotas.len()
            )));
        }
        if block.is_some_and(|d| d > MAX_TTL) {
            return Err(Error::config("a block duration is at most 100 years"));
        }
        let mut tiers = [Tier::default(); MAX_TIERS];
        let mut max_amount = MAX_LIMIT;
        for (i, q) in quotas.iter().enumerate() {
            let w = duration_micros(q.window);
            if q.limit == 0 || q.limit > MAX_LIMIT {
                return Err(Error::config(format!(
                    "quota {}: the limit must be between 1 and {MAX_LIMIT}, got {}",
                    i + 1,
                    q.limit
                )));
            }
            if w == 0 || q.window > MAX_TTL {
                return Err(Error::config(format!(
                    "quota {}: the window must be between 1 µs and 100 years",
                    i + 1
                )));
            }
            if q.burst.is_some() && algorithm != Algorithm::TokenBucket {
                return Err(Error::config(format!(
                    "quota {}: only the token bucket has a burst size",
                    i + 1
                )));
            }
            tiers[i] = match algorithm {
                Algorithm::TokenBucket => {
                    let burst = q.burst();
                    if burst == 0 || burst > MAX_LIMIT {
                        return Err(Error::config(format!(
                            "quota {}: the burst must be between 1 and {MAX_LIMIT}, got {burst}",
                            i + 1
                        )));
                    }
                    let interval = w.div_ceil(q.limit);
                    if u128::from(burst) * u128::from(interval) > u128::from(state::MAX_COUNT) {
                        return Err(Error::config(format!(
                            "quota {}: the bucket (burst × window / limit) spans more than 142 years",
                            i + 1
                        )));
                    }
                    max_amount = max_amount.min(state::MAX_COUNT / interval);
                    Tier {
                        a: burst,
                        b: interval,
                        c: 0,
                        limit: burst,
                        // What the headers announce: `burst` requests per
                        // the time a full bucket takes to refill, which is
                        // the sustained rate (the quota's window when
                        // burst = limit). "burst per window" would promise
                        // a client limit/burst times the real rate.
                        window_us: u64::try_from(
                            (u128::from(burst) * u128::from(w)).div_ceil(u128::from(q.limit)),
                        )
                        .unwrap_or(u64::MAX),
                    }
                }
                Algorithm::SlidingLog => {
                    if q.limit > MAX_LOG_LIMIT {
                        return Err(Error::config(format!(
                            "quota {}: a sliding log keeps one entry per request, so its limit is at most {MAX_LOG_LIMIT} (got {}); use the sliding window counter",
                            i + 1,
                            q.limit
                        )));
                    }
                    Tier {
                        a: q.limit,
                        b: w,
                        c: 0,
                        limit: q.limit,
                        window_us: w,
                    }
                }
                Algorithm::SlidingWindow => {
                    let step = counter_step(q.limit, w).ok_or_else(|| {
                        Error::config(format!(
                            "quota {}: limit × window is too large for an exact sliding window counter; use a window that is a whole number of milliseconds or seconds",
                            i + 1
                        ))
                    })?;
                    Tier {
                        a: q.limit,
                        b: w,
                        c: step,
                        limit: q.limit,
                        window_us: w,
                    }
                }
                Algorithm::FixedWindow => Tier {
                    a: q.limit,
                    b: w,
                    c: 0,
                    limit: q.limit,
                    window_us: w,
                },
            };
        }
        let n = quotas.len();
        let capacity = tiers[..n].iter().map(|t| t.limit).min().unwrap_or(1);
        Ok(Rule {
            algorithm,
            quotas,
            block,
            tiers,
            n,
            capacity,
            max_amount,
        })
    }
}

/// The resolution (µs) at which the sliding window counter measures
/// elapsed time: the finest power of ten up to a second that divides the
/// window and keeps `(2 * limit + 1) * (window / step)` below 2^52, so
/// every product in the estimate is exact in Lua's doubles.
fn counter_step(limit: u64, window_us: u64) -> Option<u64> {
    let mut step = 1u64;
    while step <= 1_000_000 {
        if window_us.is_multiple_of(step) {
            let units = u128::from(window_us / step);
            if (2 * u128::from(limit) + 1) * units <= u128::from(state::MAX_COUNT) {
                return Some(step);
            }
        }
        step *= 10;
    }
    None
}

/// Where a [`Decision`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecisionSource {
    /// The store decided (one atomic call).
    Store,
    /// The local block cache knew the key is blocked: no store call.
    BlockCache,
    /// The store failed and the limiter fails open ([`OnStoreError::Allow`]):
    /// nothing was counted.
    FailOpen,
    /// The store failed and the limiter fails closed ([`OnStoreError::Deny`]).
    FailClosed,
    /// The store failed and the insurance store decided
    /// ([`OnStoreError::Insurance`]).
    Insurance,
}

/// The state of one tier after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierStatus {
    /// The tier's limit (the bucket size for a token bucket).
    pub limit: u64,
    /// Requests (cost units) this tier would still admit now.
    pub remaining: u64,
    /// Time until this tier is back to its full limit, if nothing else comes.
    pub reset_after: Duration,
    /// For a denied request, how long until this tier would admit it
    /// (`None` if this tier admits it).
    pub retry_after: Option<Duration>,
    /// The tier's window: with [`limit`](Self::limit), its policy
    /// (`RateLimit-Policy`). For a token bucket, the time a full bucket
    /// takes to refill, burst × window / limit (the quota's window when
    /// the burst is the limit), so that "`limit` per `window`" is its
    /// sustained rate.
    pub window: Duration,
}

/// One tier of a decision, packed (a decision is copied through a few
/// futures; keeping it small keeps that cheap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PackedTier {
    limit: u32,
    remaining: u32,
    reset_us: u64,
    /// 0 when this tier admits the request.
    retry_us: u64,
    window_us: u64,
}

impl PackedTier {
    const ZERO: PackedTier = PackedTier {
        limit: 0,
        remaining: 0,
        reset_us: 0,
        retry_us: 0,
        window_us: 0,
    };

    fn unpack(&self) -> TierStatus {
        TierStatus {
            limit: u64::from(self.limit),
            remaining: u64::from(self.remaining),
            reset_after: Duration::from_micros(self.reset_us),
            retry_after: (self.retry_us > 0).then(|| Duration::from_micros(self.retry_us)),
            window: Duration::from_micros(self.window_us),
        }
    }
}

/// The answer of a [`Limiter`].
///
/// The top-level figures are those of the *binding* tier: the one with the
/// longest wait when denied, the one with the fewest remaining when
/// admitted. [`Decision::tiers`] has every tier.
///
/// A one-tier decision is small (about 100 bytes) and allocates nothing;
/// a multi-tier one keeps its per-tier figures in one boxed table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the request is admitted (and was counted, for `consume`).
    pub allowed: bool,
    /// The binding tier's limit.
    pub limit: u64,
    /// Cost units the binding tier still admits (0 while blocked).
    pub remaining: u64,
    /// Time until the binding tier is back to its full limit.
    pub reset_after: Duration,
    /// When denied: how long to wait before the same request would pass,
    /// if nothing else is admitted meanwhile. `None` when allowed.
    pub retry_after: Option<Duration>,
    /// The binding tier's window (for `RateLimit-Policy` headers; see
    /// [`TierStatus::window`] for a token bucket's).
    pub window: Duration,
    /// When the decision was made (the store's time on Redis).
    pub at: Timestamp,
    /// When the key is blocked, until when.
    pub blocked_until: Option<Timestamp>,
    /// Where the decision came from.
    pub source: DecisionSource,
    /// A one-tier rule's tier: its retry wait in µs (0 when it admits);
    /// its other figures are the top-level ones.
    solo_retry_us: u64,
    /// A multi-tier rule's tiers (`None` for one tier: the common case
    /// stays small to move and free to build).
    tiers: Option<Box<TierTable>>,
}

/// Every tier of a multi-tier decision.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TierTable {
    n: u8,
    tiers: [PackedTier; MAX_TIERS],
}

impl Decision {
    /// A placeholder the in-place path overwrites.
    pub(crate) const EMPTY: Decision = Decision {
        allowed: false,
        limit: 0,
        remaining: 0,
        reset_after: Duration::ZERO,
        retry_after: None,
        window: Duration::ZERO,
        at: Timestamp::EPOCH,
        blocked_until: None,
        source: DecisionSource::Store,
        solo_retry_us: 0,
        tiers: None,
    };

    /// Every tier, in the rule's order.
    pub fn tiers(&self) -> impl ExactSizeIterator<Item = TierStatus> + '_ {
        let (n, tiers) = self.packed();
        tiers.into_iter().take(n).map(|t| t.unpack())
    }

    /// Tier `i` (in the rule's order), if the rule has it.
    pub fn tier(&self, i: usize) -> Option<TierStatus> {
        let (n, tiers) = self.packed();
        tiers[..n].get(i).map(PackedTier::unpack)
    }

    /// The per-tier figures: the table, or the one tier rebuilt from the
    /// top-level figures.
    fn packed(&self) -> (usize, [PackedTier; MAX_TIERS]) {
        match &self.tiers {
            Some(table) => (usize::from(table.n), table.tiers),
            None => {
                let mut tiers = [PackedTier::ZERO; MAX_TIERS];
                tiers[0] = PackedTier {
                    limit: self.limit as u32,
                    remaining: self.remaining as u32,
                    reset_us: duration_micros(self.reset_after),
                    retry_us: self.solo_retry_us,
                    window_us: duration_micros(self.window),
                };
                (1, tiers)
            }
        }
    }

    /// Whether the key is blocked (by a block duration or
    /// [`Limiter::block`]).
    pub fn is_blocked(&self) -> bool {
        self.blocked_until.is_some()
    }

    /// The decision with the binding tier's figures on top.
    fn assemble(
        allowed: bool,
        now: u64,
        blocked_until: u64,
        source: DecisionSource,
        tiers: [PackedTier; MAX_TIERS],
        n: usize,
    ) -> Decision {
        let live = &tiers[..n];
        let binding = if allowed {
            (0..n)
                .min_by_key(|&i| (live[i].remaining, std::cmp::Reverse(live[i].reset_us)))
                .unwrap_or(0)
        } else {
            (0..n)
                .max_by_key(|&i| (live[i].retry_us, std::cmp::Reverse(i)))
                .unwrap_or(0)
        };
        let b = tiers[binding];
        let blocked_for = blocked_until.saturating_sub(now);
        let retry = live
            .iter()
            .map(|t| t.retry_us)
            .max()
            .unwrap_or(0)
            .max(blocked_for);
        Decision {
            allowed,
            limit: u64::from(b.limit),
            remaining: u64::from(b.remaining),
            reset_after: Duration::from_micros(b.reset_us.max(blocked_for)),
            retry_after: (!allowed).then(|| Duration::from_micros(retry)),
            window: Duration::from_micros(b.window_us),
            at: Timestamp::from_micros(now),
            blocked_until: (blocked_for > 0).then(|| Timestamp::from_micros(blocked_until)),
            source,
            solo_retry_us: if n == 1 { tiers[0].retry_us } else { 0 },
            tiers: (n > 1).then(|| Box::new(TierTable { n: n as u8, tiers })),
        }
    }

    /// What [`from_raw`](Self::from_raw) makes of an admitted request on a
    /// one-tier rule, without the per-tier bookkeeping (the in-process hot
    /// path; `binary_and_text_forms_decide_alike` holds the two equal).
    #[inline]
    pub(crate) fn one_tier_admitted(t: &Tier, a: Admitted) -> Decision {
        Decision {
            allowed: true,
            limit: t.limit,
            remaining: a.remaining.min(t.limit),
            reset_after: Duration::from_micros(a.reset_us),
            retry_after: None,
            window: Duration::from_micros(t.window_us),
            at: Timestamp::from_micros(a.now),
            blocked_until: None,
            source: DecisionSource::Store,
            solo_retry_us: 0,
            tiers: None,
        }
    }

    /// A decision from per-tier results.
    pub(crate) fn from_raw(rule: &Rule, raw: &engine::Raw, source: DecisionSource) -> Decision {
        let blocked = raw.blocked_until > raw.now;
        let blocked_for = raw.blocked_until.saturating_sub(raw.now);
        let mut tiers = [PackedTier::default(); MAX_TIERS];
        for ((p, t), r) in tiers.iter_mut().zip(rule.tiers()).zip(&raw.tiers) {
            *p = PackedTier {
                limit: t.limit as u32,
                remaining: if blocked {
                    0
                } else {
                    r.remaining.min(t.limit) as u32
                },
                // A blocked key's every tier is full again only when the
                // block ends (draft-8 `t=` must not promise earlier).
                reset_us: r.reset_after.max(blocked_for),
                retry_us: if raw.allowed { 0 } else { r.retry_after },
                window_us: t.window_us,
            };
        }
        Self::assemble(
            raw.allowed,
            raw.now,
            raw.blocked_until,
            source,
            tiers,
            rule.tiers().len(),
        )
    }

    /// The decision of a limiter that could not reach its store and fails
    /// open (`allowed`) or closed.
    pub(crate) fn degraded(rule: &Rule, now: Timestamp, cost: u64, allowed: bool) -> Decision {
        let retry = duration_micros(FAIL_CLOSED_RETRY);
        let mut tiers = [PackedTier::default(); MAX_TIERS];
        for (p, t) in tiers.iter_mut().zip(rule.tiers()) {
            *p = PackedTier {
                limit: t.limit as u32,
                remaining: if allowed {
                    t.limit.saturating_sub(cost) as u32
                } else {
                    0
                },
                reset_us: 0,
                retry_us: if allowed { 0 } else { retry },
                window_us: t.window_us,
            };
        }
        let source = if allowed {
            DecisionSource::FailOpen
        } else {
            DecisionSource::FailClosed
        };
        Self::assemble(
            allowed,
            now.as_micros(),
            0,
            source,
            tiers,
            rule.tiers().len(),
        )
    }

    /// The decision for a key the block cache knows is blocked.
    pub(crate) fn cached_block(rule: &Rule, now: Timestamp, until: Timestamp) -> Decision {
        let wait = until.as_micros().saturating_sub(now.as_micros());
        let mut tiers = [PackedTier::default(); MAX_TIERS];
        for (p, t) in tiers.iter_mut().zip(rule.tiers()) {
            *p = PackedTier {
                limit: t.limit as u32,
                remaining: 0,
                reset_us: wait,
                retry_us: wait,
                window_us: t.window_us,
            };
        }
        Self::assemble(
            false,
            now.as_micros(),
            until.as_micros(),
            DecisionSource::BlockCache,
            tiers,
            rule.tiers().len(),
        )
    }
}

/// A one-tier admitted decision as three numbers: what the in-process hot
/// path produces, expanded into a [`Decision`] only when the caller takes
/// it (a decision is ~100 bytes; moving it through the store's closure,
/// the limiter and its future cost more than deciding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// When (µs since the epoch).
    pub(crate) now: u64,
    /// Cost units still admitted.
    pub(crate) remaining: u64,
    /// µs until the tier is back to its full limit.
    pub(crate) reset_us: u64,
}

/// How long a fail-closed decision asks the client to wait.
pub const FAIL_CLOSED_RETRY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn rules_are_checked_when_built() {
        let err = |r: Result<Rule>| r.unwrap_err().kind();
        assert_eq!(
            err(Rule::token_bucket(Quota::per_second(0))),
            ErrorKind::Config
        );
        assert_eq!(
            err(Rule::token_bucket(Quota::new(1, Duration::ZERO))),
            ErrorKind::Config
        );
        assert_eq!(
            err(Rule::fixed_window(Quota::per_second(5).with_burst(9))),
            ErrorKind::Config
        );
        assert_eq!(
            err(Rule::sliding_log(Quota::per_hour(MAX_LOG_LIMIT + 1))),
            ErrorKind::Config
        );
        assert_eq!(
            err(Rule::builder(Algorithm::FixedWindow).build()),
            ErrorKind::Config
        );
        let five = Rule::builder(Algorithm::FixedWindow)
            .quota(Quota::per_second(1))
            .quota(Quota::per_second(2))
            .quota(Quota::per_second(3))
            .quota(Quota::per_second(4))
            .quota(Quota::per_second(5))
            .build();
        assert_eq!(err(five), ErrorKind::Config);
        assert_eq!(
            err(Rule::token_bucket(Quota::per_second(MAX_LIMIT + 1))),
            ErrorKind::Config
        );
    }

    #[test]
    fn token_bucket_interval_rounds_up() {
        let r = Rule::token_bucket(Quota::per_second(3)).unwrap();
        assert_eq!((r.tiers()[0].a, r.tiers()[0].b), (3, 333_334));
        let r = Rule::token_bucket(Quota::per_second(10).with_burst(50)).unwrap();
        assert_eq!((r.tiers()[0].a, r.tiers()[0].b), (50, 100_000));
        assert_eq!(r.capacity(), 50);
    }

    #[test]
    fn counter_resolution_keeps_products_exact() {
        assert_eq!(counter_step(100, 60_000_000), Some(1));
        assert_eq!(counter_step(1_000_000, 86_400_000_000), Some(100));
        assert_eq!(counter_step(MAX_LIMIT, 3_600_000_000), Some(10_000));
        assert_eq!(
            counter_step(MAX_LIMIT, 100 * 365 * 86_400_000_000 + 7),
            None
        );
        assert!(Rule::sliding_window(Quota::per_day(1_000_000)).is_ok());
    }

    #[test]
    fn capacity_is_the_smallest_tier() {
        let r = Rule::builder(Algorithm::SlidingWindow)
            .quota(Quota::per_second(10))
            .quota(Quota::per_hour(1000))
            .build()
            .unwrap();
        assert_eq!(r.capacity(), 10);
        assert_eq!(r.quotas().len(), 2);
        let r2 = r.with_algorithm(Algorithm::FixedWindow).unwrap();
        assert_eq!(r2.algorithm(), Algorithm::FixedWindow);
        assert_eq!(
            r2.with_block(Duration::from_secs(5)).unwrap().block_us(),
            5_000_000
        );
    }
}
