//! Property tests of every rate-limit algorithm against a naive reference
//! model, offline, on a manual clock: random rules (one or two tiers),
//! random request sequences (costs, checks, time steps from 0 to beyond
//! the window), run through a real `Limiter` on `MemoryStore` (so expiry
//! of the stored state is exercised too).

use std::time::Duration;

use proptest::prelude::*;
use rampart::limit::{Algorithm, Decision, Limiter, Quota, Rule};
use rampart::testkit::CasOnly;
use rampart::{Key, ManualClock, MemoryStore, Store, Timestamp};

/// The start of time in these tests: a multiple of every window used, so
/// aligned windows start at 0 in test time.
const EPOCH_US: u64 = 1_700_000_000_000_000 - 1_700_000_000_000_000 % 3_600_000_000;

/// The stores' futures never wait on anything (`CasOnly` only yields
/// before each swap): polling finishes them.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    for _ in 0..1_000 {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("an in-process store never waits")
}

#[derive(Debug, Clone)]
struct Req {
    /// µs to advance the clock before the request.
    dt: u64,
    /// Picks the cost in 1..=capacity.
    cost_pick: u64,
    /// A `check` instead of a `consume`.
    check: bool,
}

/// One result: time (µs since the Unix epoch), cost, check?, decision.
type Outcome = (u64, u64, bool, Decision);

fn run(rule: &Rule, reqs: &[Req]) -> Vec<Outcome> {
    let clock = ManualClock::new(Timestamp::from_micros(EPOCH_US));
    let store = MemoryStore::builder().clock(clock.shared()).build();
    run_on(store, &clock, rule, reqs)
}

/// [`run`] on `store`, whose clock must be `clock`.
fn run_on<S: Store>(store: S, clock: &ManualClock, rule: &Rule, reqs: &[Req]) -> Vec<Outcome> {
    let limiter = Limiter::builder(store, rule.clone())
        .clock(clock.shared())
        .build()
        .unwrap();
    let key = Key::new("prop").unwrap();
    let mut t = 0u64;
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        clock.advance(Duration::from_micros(r.dt));
        t += r.dt;
        let cost = 1 + r.cost_pick % rule.capacity();
        let d = if r.check {
            block_on(limiter.check(&key, cost)).unwrap()
        } else {
            block_on(limiter.consume(&key, cost)).unwrap()
        };
        assert_eq!(d.at.as_micros(), EPOCH_US + t);
        out.push((EPOCH_US + t, cost, r.check, d));
    }
    out
}

/// Tiers: (limit, window µs), one or two of them.
fn tiers() -> impl Strategy<Value = Vec<(u64, u64)>> {
    let tier = (
        1u64..=12,
        prop_oneof![
            (1u64..=20).prop_map(|ms| ms * 1_000),
            1u64..=2_000_000,
            Just(1_000_000u64),
            Just(3_600_000_000u64),
        ],
    );
    prop::collection::vec(tier, 1..=2)
}

/// Time steps around a window of `w` µs: often 0, often small, sometimes
/// longer than the window.
fn requests(w: u64) -> impl Strategy<Value = Vec<Req>> {
    let dt = prop_oneof![
        3 => Just(0u64),
        4 => 0..=w / 8 + 1,
        2 => 0..=w + 1,
        1 => 0..=3 * w + 1,
    ];
    prop::collection::vec(
        (dt, any::<u64>(), prop::bool::weighted(0.15)).prop_map(|(dt, cost_pick, check)| Req {
            dt,
            cost_pick,
            check,
        }),
        1..120,
    )
}

fn rule_and_requests(alg: Algorithm) -> impl Strategy<Value = (Rule, Vec<Req>)> {
    tiers().prop_flat_map(move |ts| {
        let mut b = Rule::builder(alg);
        for &(limit, w) in &ts {
            b = b.quota(Quota::new(limit, Duration::from_micros(w)));
        }
        let rule = b.build().unwrap();
        let w = ts.iter().map(|t| t.1).min().unwrap();
        (Just(rule), requests(w))
    })
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// The admitted (time, cost) pairs.
fn admitted(out: &[Outcome]) -> Vec<(u64, u64)> {
    out.iter()
        .filter(|(_, _, check, d)| !check && d.allowed)
        .map(|&(t, c, _, _)| (t, c))
        .collect()
}

// --------------------------------------------------------- in place vs generic

proptest! {
    /// `Limiter::consume` admits in place on a one-tier rule, keeping the
    /// decision as three numbers until it is taken; everything else goes
    /// the generic way. On a store without the in-place path (`CasOnly`:
    /// text state, compare-and-swap) every decision is generic. Both give
    /// identical decisions, every tier's figures included, for every
    /// algorithm, with or without a block.
    #[test]
    fn in_place_admission_decides_as_the_generic_path(
        (rule, reqs) in prop::sample::select(vec![
            Algorithm::TokenBucket,
            Algorithm::SlidingLog,
            Algorithm::SlidingWindow,
            Algorithm::FixedWindow,
        ]).prop_flat_map(rule_and_requests),
        block_ms in prop::option::of(1u64..=5_000),
    ) {
        let rule = match block_ms {
            Some(ms) => rule.with_block(Duration::from_millis(ms)).unwrap(),
            None => rule,
        };
        let clock = ManualClock::new(Timestamp::from_micros(EPOCH_US));
        let fast = run(&rule, &reqs);
        let generic = run_on(CasOnly(MemoryStore::builder().clock(clock.shared()).build()), &clock, &rule, &reqs);
        for (a, b) in fast.iter().zip(&generic) {
            prop_assert_eq!(a, b);
            prop_assert_eq!(a.3.tiers().collect::<Vec<_>>(), b.3.tiers().collect::<Vec<_>>());
        }
    }
}

// ---------------------------------------------------------------- token bucket

/// A bucket by its level, in µs of refill (`tokens * interval`), refilled
/// continuously: a different formulation from GCRA's single timestamp.
#[derive(Clone)]
struct Bucket {
    size: u64,
    interval: u64,
    level: u64,
    last: u64,
}

impl Bucket {
    fn new(limit: u64, window: u64) -> Self {
        let interval = window.div_ceil(limit);
        Bucket {
            size: limit,
            interval,
            level: limit * interval,
            last: EPOCH_US,
        }
    }
    fn at(&mut self, t: u64) {
        self.level = (self.level + (t - self.last)).min(self.size * self.interval);
        self.last = t;
    }
    /// 0 if `cost` fits now, else the wait.
    fn wait(&self, cost: u64) -> u64 {
        (cost * self.interval).saturating_sub(self.level)
    }
}

proptest! {
    #[test]
    fn token_bucket_matches_a_level_bucket((rule, reqs) in rule_and_requests(Algorithm::TokenBucket)) {
        let out = run(&rule, &reqs);
        let mut model: Vec<Bucket> = rule
            .quotas()
            .iter()
            .map(|q| Bucket::new(q.limit(), us(q.window())))
            .collect();
        for (t, cost, check, d) in &out {
            for b in &mut model {
                b.at(*t);
            }
            let waits: Vec<u64> = model.iter().map(|b| b.wait(*cost)).collect();
            let allowed = waits.iter().all(|w| *w == 0);
            prop_assert_eq!(d.allowed, allowed, "t={} cost={}", t, cost);
            if allowed && !check {
                for b in &mut model {
                    b.level -= cost * b.interval;
                }
            }
            for (i, (tier, b)) in d.tiers().zip(&model).enumerate() {
                prop_assert_eq!(tier.remaining, b.level / b.interval, "tier {} t={}", i, t);
                prop_assert_eq!(us(tier.reset_after), b.size * b.interval - b.level);
            }
            let want_retry = (!allowed).then(|| *waits.iter().max().unwrap());
            prop_assert_eq!(d.retry_after.map(us), want_retry);
        }
        // Never more than burst + floor(t / interval) in any interval t.
        let log = admitted(&out);
        for q in rule.quotas() {
            let interval = us(q.window()).div_ceil(q.limit());
            for i in 0..log.len() {
                let mut sum = 0;
                for j in i..log.len() {
                    sum += log[j].1;
                    let span = log[j].0 - log[i].0;
                    prop_assert!(sum <= q.limit() + span / interval,
                        "{} admitted in {} µs (interval {})", sum, span, interval);
                }
            }
        }
    }

    #[test]
    fn token_bucket_admits_exactly_the_bound_under_saturation(
        limit in 1u64..=20,
        burst in 1u64..=30,
        window in 1_000u64..=3_000_000,
        step_pick in any::<u64>(),
        steps in 1usize..=60,
    ) {
        // Saturation: the client asks at least once every (burst - 1)
        // intervals, so the bucket never overflows between two asks (with
        // a bucket of 1, it asks exactly once per interval).
        let interval = window.div_ceil(limit);
        let step = if burst >= 2 { 1 + step_pick % ((burst - 1) * interval) } else { interval };
        let rule = Rule::token_bucket(
            Quota::new(limit, Duration::from_micros(window)).with_burst(burst),
        ).unwrap();
        let clock = ManualClock::new(Timestamp::from_micros(EPOCH_US));
        let store = MemoryStore::builder().clock(clock.shared()).build();
        let limiter = Limiter::builder(store, rule).clock(clock.shared()).build().unwrap();
        let key = Key::new("saturated").unwrap();
        let mut total = 0u64;
        for k in 0..steps as u64 {
            // A client that always wants more: consume until denied.
            loop {
                let d = block_on(limiter.consume(&key, 1)).unwrap();
                if !d.allowed {
                    break;
                }
                total += 1;
            }
            prop_assert_eq!(total, burst + k * step / interval, "after {} µs", k * step);
            clock.advance(Duration::from_micros(step));
        }
    }
}

// ----------------------------------------------------------------- sliding log

/// Units in `(t - w, t]` of the log.
fn in_window(log: &[(u64, u64)], t: u64, w: u64) -> u64 {
    log.iter()
        .filter(|(ts, _)| *ts <= t && ts + w > t)
        .map(|(_, c)| c)
        .sum()
}

proptest! {
    #[test]
    fn sliding_log_is_exact((rule, reqs) in rule_and_requests(Algorithm::SlidingLog)) {
        let out = run(&rule, &reqs);
        let mut log: Vec<(u64, u64)> = Vec::new();
        let tiers: Vec<(u64, u64)> = rule.quotas().iter().map(|q| (q.limit(), us(q.window()))).collect();
        let fits = |log: &[(u64, u64)], t: u64, cost: u64| {
            tiers.iter().all(|&(l, w)| in_window(log, t, w) + cost <= l)
        };
        for (t, cost, check, d) in &out {
            let allowed = fits(&log, *t, *cost);
            prop_assert_eq!(d.allowed, allowed, "t={} cost={}", t, cost);
            if allowed && !check {
                log.push((*t, *cost));
            }
            for (tier, &(l, w)) in d.tiers().zip(&tiers) {
                prop_assert_eq!(tier.remaining, l - in_window(&log, *t, w));
            }
            if let Some(r) = d.retry_after {
                // Waiting exactly that long is enough, and necessary.
                let r = us(r);
                prop_assert!(r > 0);
                prop_assert!(fits(&log, t + r, *cost), "not admitted after retry_after");
                prop_assert!(!fits(&log, t + r - 1, *cost), "retry_after is too long");
            }
        }
        // Exact: no window of any tier ever holds more than its limit.
        let log = admitted(&out);
        for &(l, w) in &tiers {
            for &(t, _) in &log {
                prop_assert!(in_window(&log, t, w) <= l);
            }
        }
    }
}

// ---------------------------------------------------------------- fixed window

fn aligned_sum(log: &[(u64, u64)], t: u64, w: u64) -> u64 {
    let start = t - t % w;
    log.iter()
        .filter(|(ts, _)| *ts >= start && *ts <= t)
        .map(|(_, c)| c)
        .sum()
}

proptest! {
    #[test]
    fn fixed_window_never_exceeds_the_limit_per_aligned_window(
        (rule, reqs) in rule_and_requests(Algorithm::FixedWindow)
    ) {
        let out = run(&rule, &reqs);
        let tiers: Vec<(u64, u64)> = rule.quotas().iter().map(|q| (q.limit(), us(q.window()))).collect();
        let mut log: Vec<(u64, u64)> = Vec::new();
        for (t, cost, check, d) in &out {
            let allowed = tiers.iter().all(|&(l, w)| aligned_sum(&log, *t, w) + cost <= l);
            prop_assert_eq!(d.allowed, allowed, "t={} cost={}", t, cost);
            if allowed && !check {
                log.push((*t, *cost));
            }
            for (tier, &(l, w)) in d.tiers().zip(&tiers) {
                prop_assert_eq!(tier.remaining, l - aligned_sum(&log, *t, w));
            }
            if !allowed {
                // Denied until the end of the window of the tier that denies.
                let want = tiers
                    .iter()
                    .filter(|&&(l, w)| aligned_sum(&log, *t, w) + cost > l)
                    .map(|&(_, w)| w - t % w)
                    .max();
                prop_assert_eq!(d.retry_after.map(us), want);
            }
        }
        let log = admitted(&out);
        for &(l, w) in &tiers {
            for &(t, _) in &log {
                prop_assert!(aligned_sum(&log, t, w) <= l);
            }
        }
    }
}

// -------------------------------------------------------- sliding window counter

/// The counter's estimate at `t` from the full log: the previous aligned
/// window's count weighted by the part of it still inside the sliding
/// window, plus the current window's count. (Rules here are small, so the
/// counter measures in 1 µs steps.)
fn estimate(log: &[(u64, u64)], t: u64, w: u64) -> (u64, u64, u64) {
    let start = t - t % w;
    let cur: u64 = log
        .iter()
        .filter(|(ts, _)| *ts >= start && *ts <= t)
        .map(|(_, c)| c)
        .sum();
    let prev: u64 = log
        .iter()
        .filter(|(ts, _)| *ts < start && ts + w >= start)
        .map(|(_, c)| c)
        .sum();
    let e = t - start;
    (prev * (w - e) / w + cur, prev, e)
}

proptest! {
    #[test]
    fn sliding_counter_matches_its_estimate_and_stays_within_the_bound(
        (rule, reqs) in rule_and_requests(Algorithm::SlidingWindow)
    ) {
        let out = run(&rule, &reqs);
        let tiers: Vec<(u64, u64)> = rule.quotas().iter().map(|q| (q.limit(), us(q.window()))).collect();
        let mut log: Vec<(u64, u64)> = Vec::new();
        let fits = |log: &[(u64, u64)], t: u64, cost: u64| {
            tiers.iter().all(|&(l, w)| estimate(log, t, w).0 + cost <= l)
        };
        for (t, cost, check, d) in &out {
            let allowed = fits(&log, *t, *cost);
            prop_assert_eq!(d.allowed, allowed, "t={} cost={}", t, cost);
            if allowed && !check {
                log.push((*t, *cost));
            }
            for (tier, &(l, w)) in d.tiers().zip(&tiers) {
                prop_assert_eq!(tier.remaining, l.saturating_sub(estimate(&log, *t, w).0));
            }
            if let Some(r) = d.retry_after {
                let r = us(r);
                prop_assert!(r > 0);
                prop_assert!(fits(&log, t + r, *cost), "not admitted after retry_after");
                prop_assert!(!fits(&log, t + r - 1, *cost), "retry_after is too long");
            }
        }
        let log = admitted(&out);
        for &(l, w) in &tiers {
            for &(t, _) in &log {
                // Exact per aligned window...
                prop_assert!(aligned_sum(&log, t, w) <= l);
                // ...and within the documented bound over any sliding window.
                let (_, prev, e) = estimate(&log, t, w);
                let held = in_window(&log, t, w);
                prop_assert!(held <= l + (prev * e).div_ceil(w),
                    "{} in a window; prev {} e {} limit {}", held, prev, e, l);
                prop_assert!(held <= 2 * l);
            }
        }
    }
}
