//! Time, injectable.
//!
//! Every algorithm in rampart takes `now` as an argument; the [`Clock`] that
//! supplies it is chosen by the caller: [`SystemClock`] in production (on
//! wasm it reads JavaScript's `Date.now()`, because `std::time` panics
//! there), [`ManualClock`] in tests, where time moves only when told to.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{MaybeSend, MaybeSync};

/// A point in time: whole microseconds since the Unix epoch.
///
/// Microseconds keep every figure rampart stores or passes to Lua well under
/// 2^53, so the Rust and Lua faces of an algorithm agree exactly.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From microseconds since the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }
    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000))
    }
    /// From whole seconds since the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }
    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// Milliseconds since the epoch (truncated).
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }
    /// Whole seconds since the epoch (truncated).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }
    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_micros(d)))
    }
    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Timestamp({}.{:06}s)",
            self.0 / 1_000_000,
            self.0 % 1_000_000
        )
    }
}

/// A duration in whole microseconds, saturating at `u64::MAX`.
#[inline]
pub fn duration_micros(d: Duration) -> u64 {
    // `as_micros` is u128, which wasm32 computes in software; this is the
    // same value (saturating the same way) in u64 arithmetic. The bound is
    // a comparison, not `saturating_mul`: an overflow-checked 64-bit
    // multiply is a 128-bit library call on wasm32 too.
    let secs = d.as_secs();
    if secs > u64::MAX / 1_000_000 {
        return u64::MAX;
    }
    (secs * 1_000_000).saturating_add(u64::from(d.subsec_micros()))
}

/// Where `now` comes from.
pub trait Clock: MaybeSend + MaybeSync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A clock shared between the components that must agree on time.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock: `SystemTime` natively, `Date.now()` on wasm.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    /// Natively: the CPU's time-stamp counter (through `quanta`, ~10 ns)
    /// added to a wall-clock reading that each thread renews every
    /// [`REANCHOR_NS`](native::REANCHOR_NS), so the result follows the
    /// system clock (NTP adjustments included) within microseconds, at a
    /// fraction of the cost of `SystemTime::now` on every call. Where the
    /// counter is unusable, `quanta` falls back to the OS monotonic clock.
    #[cfg(not(target_arch = "wasm32"))]
    fn now(&self) -> Timestamp {
        native::now()
    }

    #[cfg(target_arch = "wasm32")]
    fn now(&self) -> Timestamp {
        let millis = js_sys::Date::now();
        if millis.is_finite() && millis > 0.0 {
            Timestamp((millis * 1_000.0) as u64)
        } else {
            Timestamp::EPOCH
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::Cell;
    use std::sync::OnceLock;

    use super::{duration_micros, Timestamp};

    /// How often a thread re-reads the wall clock (100 ms: the counter's
    /// drift against it stays in the microseconds).
    pub(super) const REANCHOR_NS: u64 = 100_000_000;

    static COUNTER: OnceLock<quanta::Clock> = OnceLock::new();

    thread_local! {
        /// (counter reading, wall-clock µs) at this thread's last anchor;
        /// (0, 0) before the first.
        static ANCHOR: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }

    /// The wall clock itself; before 1970 it reads as the epoch.
    pub(super) fn wall() -> u64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        duration_micros(since)
    }

    pub(super) fn now() -> Timestamp {
        let counter = COUNTER.get_or_init(quanta::Clock::new);
        let raw = counter.raw();
        let (at, base) = ANCHOR.with(Cell::get);
        if at != 0 && raw >= at {
            let ns = counter.delta_as_nanos(at, raw);
            if ns < REANCHOR_NS {
                return Timestamp(base + ns / 1_000);
            }
        }
        let base = wall();
        ANCHOR.with(|a| a.set((raw.max(1), base)));
        Timestamp(base)
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use rampart::{Clock, ManualClock, Timestamp};
/// use std::time::Duration;
/// let clock = ManualClock::new(Timestamp::from_secs(1_000));
/// clock.advance(Duration::from_millis(1_500));
/// assert_eq!(clock.now(), Timestamp::from_millis(1_001_500));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(start.as_micros())),
        }
    }
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.micros.fetch_add(duration_micros(d), Ordering::SeqCst);
    }
    /// Sets the clock to `t` (it may go backwards: tests of clock skew).
    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.as_micros(), Ordering::SeqCst);
    }
    /// This clock as a [`SharedClock`] (sharing the same time).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_micros_is_as_micros_saturated() {
        let cases = [
            Duration::ZERO,
            Duration::from_nanos(999),
            Duration::from_nanos(1_999),
            Duration::from_micros(1),
            Duration::new(1, 999_999_999),
            Duration::from_secs(u64::MAX / 1_000_000),
            Duration::new(u64::MAX / 1_000_000, 999_999_999),
            Duration::from_secs(u64::MAX / 1_000_000 + 1),
            Duration::MAX,
        ];
        for d in cases {
            let want = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            assert_eq!(duration_micros(d), want, "{d:?}");
        }
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_secs(1_577_836_800));
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn system_clock_follows_the_wall_clock() {
        // Across several re-anchorings, every reading lies between the
        // wall clock just before and just after it (allowing the counter's
        // drift over one anchoring period: well under a millisecond).
        let slack = 1_000;
        let end = native::wall() + 350_000;
        let mut n = 0u64;
        while native::wall() < end {
            let before = native::wall();
            let t = SystemClock.now().as_micros();
            let after = native::wall();
            assert!(
                t + slack >= before && t <= after + slack,
                "{before} {t} {after}"
            );
            n += 1;
        }
        assert!(n > 1_000);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(Timestamp::from_secs(5));
        let b = a.clone();
        a.advance(Duration::from_micros(7));
        assert_eq!(b.now().as_micros(), 5_000_007);
        b.set(Timestamp::EPOCH);
        assert_eq!(a.now(), Timestamp::EPOCH);
    }

    #[test]
    fn saturating_arithmetic() {
        let t = Timestamp::from_micros(u64::MAX - 1);
        assert_eq!(t.saturating_add(Duration::MAX).as_micros(), u64::MAX);
        assert_eq!(
            Timestamp::EPOCH.saturating_duration_since(t),
            Duration::ZERO
        );
    }
}
