//! `Limiter::consume_within`: waiting for room instead of denying.
//!
//! Every test runs on tokio's paused clock, and the limiter and its store
//! read a clock that follows it ([`TokioClock`]): a sleep advances both at
//! once, so waits are exact and the figures below are virtual time, never
//! a measurement of this machine.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rampart::limit::{Algorithm, DecisionSource, Limiter, OnStoreError, Quota, Rule};
use rampart::{Clock, ErrorKind, Key, ManualClock, MemoryStore, SharedClock, Timestamp};
use tokio::time::Instant;

/// Wall time that moves with tokio's (paused) clock.
#[derive(Debug)]
struct TokioClock {
    start: Instant,
    base: Timestamp,
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.base.saturating_add(self.start.elapsed())
    }
}

fn tokio_clock() -> SharedClock {
    Arc::new(TokioClock {
        start: Instant::now(),
        // A day boundary, so fixed windows start now.
        base: Timestamp::from_secs(86_400 * 20_000),
    })
}

fn limiter(rule: Rule, clock: &SharedClock) -> Limiter<MemoryStore> {
    let store = MemoryStore::builder().clock(clock.clone()).build();
    Limiter::builder(store, rule)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_denied_request_waits_exactly_its_retry_and_is_admitted() {
    let clock = tokio_clock();
    // 10 a second, burst 2: the third request has room 100 ms later.
    let l = limiter(
        Rule::token_bucket(Quota::per_second(10).with_burst(2)).unwrap(),
        &clock,
    );
    let k = key("user:1");
    for _ in 0..2 {
        assert!(l.consume(&k, 1).await.unwrap().allowed);
    }
    let denied = l.consume(&k, 1).await.unwrap();
    assert_eq!(denied.retry_after, Some(Duration::from_millis(100)));

    let start = Instant::now();
    let d = l
        .consume_within(&k, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(d.allowed);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(d.remaining, 0);
}

#[tokio::test(start_paused = true)]
async fn every_algorithm_admits_a_waiter_once_its_window_has_room() {
    for algorithm in [
        Algorithm::TokenBucket,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
    ] {
        let clock = tokio_clock();
        let rule = Rule::builder(algorithm)
            .quota(Quota::new(3, Duration::from_secs(1)))
            .build()
            .unwrap();
        let l = limiter(rule, &clock);
        let k = key("user:2");
        for _ in 0..3 {
            assert!(l.consume(&k, 1).await.unwrap().allowed, "{algorithm:?}");
        }
        assert!(!l.consume(&k, 1).await.unwrap().allowed, "{algorithm:?}");
        let start = Instant::now();
        let d = l
            .consume_within(&k, 1, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(d.allowed, "{algorithm:?}");
        // Within the window, give or take the timers' millisecond grain
        // (a retry is rounded up to whole milliseconds).
        assert!(
            start.elapsed() <= Duration::from_millis(1_001),
            "{algorithm:?} waited {:?}",
            start.elapsed()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_on_one_key_are_admitted_at_the_rate_and_no_faster() {
    let clock = tokio_clock();
    // 10 a second, burst 1: one admission every 100 ms, whoever waits.
    let l = Arc::new(limiter(
        Rule::token_bucket(Quota::per_second(10).with_burst(1)).unwrap(),
        &clock,
    ));
    let k = key("user:3");
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let (l, k) = (l.clone(), k.clone());
            tokio::spawn(async move { l.consume_within(&k, 1, Duration::from_secs(5)).await })
        })
        .collect();
    let mut at = Vec::new();
    for w in waiters {
        let d = w.await.unwrap().unwrap();
        assert!(d.allowed, "every waiter fits in 5 s");
        at.push(d.at);
    }
    at.sort();
    for pair in at.windows(2) {
        assert!(
            pair[1].saturating_duration_since(pair[0]) >= Duration::from_millis(100),
            "two admissions {:?} apart",
            pair[1].saturating_duration_since(pair[0])
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_longer_than_the_wait_left_is_answered_at_once() {
    let clock = tokio_clock();
    let l = limiter(Rule::token_bucket(Quota::per_hour(1)).unwrap(), &clock);
    let k = key("user:4");
    assert!(l.consume(&k, 1).await.unwrap().allowed);
    let start = Instant::now();
    let d = l
        .consume_within(&k, 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!d.allowed);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no sleep that cannot end in an admission"
    );
    assert!(d.retry_after.unwrap() > Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_block_is_not_waited_out_unless_the_wait_covers_it() {
    let clock = tokio_clock();
    let rule = Rule::fixed_window(Quota::new(1, Duration::from_secs(1)))
        .unwrap()
        .with_block(Duration::from_secs(60))
        .unwrap();
    let l = limiter(rule, &clock);
    let k = key("user:5");
    assert!(l.consume(&k, 1).await.unwrap().allowed);
    assert!(
        !l.consume(&k, 1).await.unwrap().allowed,
        "over the limit: blocked"
    );
    let start = Instant::now();
    let d = l
        .consume_within(&k, 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(!d.allowed && d.blocked_until.is_some());
    assert_eq!(start.elapsed(), Duration::ZERO);
    // A wait that covers the block is admitted when it ends.
    let d = l
        .consume_within(&k, 1, Duration::from_secs(61))
        .await
        .unwrap();
    assert!(d.allowed);
    assert!(start.elapsed() <= Duration::from_secs(61));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_clock_still_ends_the_wait() {
    // The limiter's clock never moves: every retry is denied again, and
    // the time slept alone ends the wait, within max_wait.
    let manual = ManualClock::new(Timestamp::from_secs(86_400 * 20_000));
    let l = limiter(
        Rule::token_bucket(Quota::per_second(10).with_burst(1)).unwrap(),
        &manual.shared(),
    );
    let k = key("user:6");
    assert!(l.consume(&k, 1).await.unwrap().allowed);
    let start = Instant::now();
    let d = l
        .consume_within(&k, 1, Duration::from_millis(350))
        .await
        .unwrap();
    assert!(!d.allowed);
    // Three sleeps of 100 ms fit in 350 ms; a fourth does not.
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn zero_wait_is_consume_and_bad_costs_are_typed_errors() {
    let clock = tokio_clock();
    let l = limiter(Rule::token_bucket(Quota::per_second(2)).unwrap(), &clock);
    let k = key("user:7");
    for _ in 0..2 {
        assert!(
            l.consume_within(&k, 1, Duration::ZERO)
                .await
                .unwrap()
                .allowed
        );
    }
    let start = Instant::now();
    assert!(
        !l.consume_within(&k, 1, Duration::ZERO)
            .await
            .unwrap()
            .allowed
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    for cost in [0, 3] {
        let e = l
            .consume_within(&k, cost, Duration::from_secs(9))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "cost {cost}");
    }
}

/// Polls `f` to completion without any runtime (no tokio here).
fn poll_without_runtime<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn outside_a_runtime_a_needed_wait_is_a_typed_error_not_a_panic() {
    let clock = ManualClock::new(Timestamp::from_secs(86_400 * 20_000));
    let l = limiter(
        Rule::token_bucket(Quota::per_second(10).with_burst(1)).unwrap(),
        &clock.shared(),
    );
    let k = key("user:8");
    let first = poll_without_runtime(l.consume_within(&k, 1, Duration::from_secs(1)));
    assert!(first.unwrap().allowed, "no wait needed: no runtime needed");
    let e = poll_without_runtime(l.consume_within(&k, 1, Duration::from_secs(1))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.operation(), Some("limit.consume_within"));
    // The denied attempt counted nothing: room returns on schedule.
    clock.advance(Duration::from_millis(100));
    assert!(poll_without_runtime(l.consume(&k, 1)).unwrap().allowed);
}

fn broken(clock: &SharedClock) -> Arc<rampart_mock::FaultyStore<MemoryStore>> {
    let faulty =
        rampart_mock::FaultyStore::new(MemoryStore::builder().clock(clock.clone()).build())
            .with_error(ErrorKind::Unavailable);
    faulty.break_now();
    Arc::new(faulty)
}

#[tokio::test(start_paused = true)]
async fn a_fail_closed_denial_is_answered_at_once() {
    // The store is down: the denial's retry is a guess, not room to come.
    let clock = tokio_clock();
    let l = Limiter::builder(
        broken(&clock),
        Rule::token_bucket(Quota::per_second(10)).unwrap(),
    )
    .clock(clock.clone())
    .on_store_error(OnStoreError::Deny)
    .build()
    .unwrap();
    let start = Instant::now();
    let d = l
        .consume_within(&key("user:9"), 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!d.allowed);
    assert_eq!(d.source, DecisionSource::FailClosed);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn an_insurance_store_is_waited_on_like_the_store() {
    // The store is down and an in-process insurance store decides: its
    // denials are real, so a wait is worth it.
    let clock = tokio_clock();
    let insurance: Arc<dyn rampart::Store> =
        Arc::new(MemoryStore::builder().clock(clock.clone()).build());
    let l = Limiter::builder(
        broken(&clock),
        Rule::token_bucket(Quota::per_second(10).with_burst(1)).unwrap(),
    )
    .clock(clock.clone())
    .on_store_error(OnStoreError::Insurance(insurance))
    .build()
    .unwrap();
    let k = key("user:10");
    assert!(l.consume(&k, 1).await.unwrap().allowed);
    let start = Instant::now();
    let d = l
        .consume_within(&k, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(d.allowed);
    assert_eq!(d.source, DecisionSource::Insurance);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}
