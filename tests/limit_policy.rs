//! Limiter policies: blocks and the block cache, refunds and penalties,
//! failure modes, multi-tier and multi-key all-or-nothing, bad input.

use std::sync::Arc;
use std::time::Duration;

use rampart::limit::{consume_all, Algorithm, DecisionSource, Limiter, OnStoreError, Quota, Rule};
use rampart::{ErrorKind, Key, ManualClock, MemoryStore, Store, Timestamp};
// Counts the calls that reach the store and can be "down" (every call
// fails with `Unavailable` before reaching the inner store).
use rampart_mock::FaultyStore;
use rampart_moka::MokaStore;

const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::TokenBucket,
    Algorithm::SlidingLog,
    Algorithm::SlidingWindow,
    Algorithm::FixedWindow,
];

/// A clock on a day boundary, so fixed windows start now.
fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_secs(86_400 * 20_000))
}

fn memory(clock: &ManualClock) -> MemoryStore {
    MemoryStore::builder().clock(clock.shared()).build()
}

fn limiter<S: Store>(store: S, rule: Rule, clock: &ManualClock) -> Limiter<S> {
    Limiter::builder(store, rule)
        .clock(clock.shared())
        .build()
        .unwrap()
}

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

#[tokio::test]
async fn a_denial_blocks_and_the_block_cache_answers_without_the_store() {
    for alg in ALGORITHMS {
        let clock = clock();
        let store = Arc::new(FaultyStore::new(memory(&clock)));
        let rule = Rule::builder(alg)
            .quota(Quota::per_minute(2))
            .block_for(Duration::from_secs(300))
            .build()
            .unwrap();
        let l = limiter(store.clone(), rule.clone(), &clock);
        let k = key("login:alice");
        assert!(l.consume(&k, 1).await.unwrap().allowed);
        assert!(l.consume(&k, 1).await.unwrap().allowed);
        // `check` never starts a block.
        assert!(!l.check(&k, 1).await.unwrap().is_blocked());
        let denied = l.consume(&k, 1).await.unwrap();
        assert!(!denied.allowed);
        assert_eq!(denied.source, DecisionSource::Store);
        assert_eq!(
            denied.blocked_until,
            Some(clock.now_plus(Duration::from_secs(300)))
        );
        assert_eq!(denied.retry_after, Some(Duration::from_secs(300)));
        assert_eq!(denied.remaining, 0);
        assert_eq!(l.block_cache().len(), 1);

        // Blocked: zero store calls, for consume and check alike.
        let calls = store.calls();
        clock.advance(Duration::from_secs(100));
        for _ in 0..10 {
            let d = l.consume(&k, 1).await.unwrap();
            assert!(!d.allowed, "{alg:?}");
            assert_eq!(d.source, DecisionSource::BlockCache);
            assert_eq!(d.retry_after, Some(Duration::from_secs(200)));
            assert!(!l.check(&k, 1).await.unwrap().allowed);
        }
        assert_eq!(
            store.calls(),
            calls,
            "{alg:?}: the block cache called the store"
        );

        // The block is in the store too: another process sees it.
        let other = limiter(store.clone(), rule.clone(), &clock);
        let d = other.consume(&k, 1).await.unwrap();
        assert_eq!(
            (d.allowed, d.source, d.retry_after),
            (false, DecisionSource::Store, Some(Duration::from_secs(200)))
        );

        // Once it ends, the key is counted afresh (the window passed too).
        clock.advance(Duration::from_secs(200));
        let d = l.consume(&k, 1).await.unwrap();
        assert!(d.allowed, "{alg:?}");
        assert_eq!(d.source, DecisionSource::Store);
        assert!(l.block_cache().is_empty());
    }
}

trait NowPlus {
    fn now_plus(&self, d: Duration) -> Timestamp;
}
impl NowPlus for ManualClock {
    fn now_plus(&self, d: Duration) -> Timestamp {
        rampart::Clock::now(self).saturating_add(d)
    }
}

#[tokio::test]
async fn explicit_blocks_and_reset() {
    for alg in ALGORITHMS {
        let clock = clock();
        let l = limiter(
            memory(&clock),
            Rule::builder(alg)
                .quota(Quota::per_minute(5))
                .build()
                .unwrap(),
            &clock,
        );
        let k = key("k");
        let d = l.block(&k, Duration::from_secs(30)).await.unwrap();
        assert!(!d.allowed && d.is_blocked());
        // A shorter block does not shorten it.
        let d = l.block(&k, Duration::from_secs(1)).await.unwrap();
        assert_eq!(d.retry_after, Some(Duration::from_secs(30)));
        assert_eq!(
            l.consume(&k, 1).await.unwrap().source,
            DecisionSource::BlockCache
        );
        l.reset(&k).await.unwrap();
        let d = l.consume(&k, 1).await.unwrap();
        assert!(d.allowed, "{alg:?}");
        assert_eq!(d.remaining, 4);
        l.reset(&k).await.unwrap();
        assert_eq!(l.check(&k, 1).await.unwrap().remaining, 5);
    }
}

#[tokio::test]
async fn refunds_rewards_and_penalties() {
    for alg in ALGORITHMS {
        let clock = clock();
        let l = limiter(
            memory(&clock),
            Rule::builder(alg)
                .quota(Quota::per_minute(10))
                .build()
                .unwrap(),
            &clock,
        );
        let k = key("k");
        assert_eq!(l.consume(&k, 6).await.unwrap().remaining, 4);
        assert_eq!(l.refund(&k, 2).await.unwrap().remaining, 6, "{alg:?}");
        assert_eq!(l.reward(&k, 1).await.unwrap().remaining, 7, "{alg:?}");
        // A refund never goes above the limit.
        let d = l.refund(&k, 100).await.unwrap();
        assert_eq!(d.remaining, 10, "{alg:?}");
        assert!(d.allowed);
        // A penalty may push the key over its limit.
        let d = l.penalty(&k, 15).await.unwrap();
        assert_eq!(d.remaining, 0, "{alg:?}");
        assert!(!d.allowed, "{alg:?}: over the limit after a penalty");
        assert!(d.retry_after.is_some());
        assert!(!l.consume(&k, 1).await.unwrap().allowed);
        // Amounts are checked.
        assert_eq!(
            l.refund(&k, 0).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            l.penalty(&k, u64::MAX).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}

#[tokio::test]
async fn bad_costs_are_typed_errors_that_touch_nothing() {
    let clock = clock();
    let store = Arc::new(FaultyStore::new(memory(&clock)));
    let l = limiter(
        store.clone(),
        Rule::token_bucket(Quota::per_second(5)).unwrap(),
        &clock,
    );
    let k = key("k");
    for cost in [0, 6, u64::MAX] {
        let e = l.consume(&k, cost).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.operation(), Some("limit.consume"));
        assert_eq!(e.key(), Some("k"));
        assert_eq!(
            l.check(&k, cost).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
    assert_eq!(store.calls(), 0);
    // The full capacity is a valid cost.
    assert!(l.consume(&k, 5).await.unwrap().allowed);
}

#[tokio::test]
async fn corrupt_state_is_reported_even_when_failing_open() {
    let clock = clock();
    let store = memory(&clock);
    let k = key("k");
    store.set(&k, "not a limit".into(), None).await.unwrap();
    let l = Limiter::builder(store, Rule::sliding_log(Quota::per_second(5)).unwrap())
        .clock(clock.shared())
        .on_store_error(OnStoreError::Allow)
        .build()
        .unwrap();
    let e = l.consume(&k, 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert_eq!(e.key(), Some("k"));
    assert_eq!(
        l.store().get(&k).await.unwrap().as_deref(),
        Some(&b"not a limit"[..])
    );
}

#[tokio::test]
async fn failure_modes() {
    let clock = clock();
    let rule = Rule::fixed_window(Quota::per_minute(3)).unwrap();
    let down = || {
        let s = Arc::new(FaultyStore::new(memory(&clock)));
        s.break_now();
        s
    };
    let k = key("k");

    let fail = limiter(down(), rule.clone(), &clock);
    assert_eq!(
        fail.consume(&k, 1).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    let open = Limiter::builder(down(), rule.clone())
        .clock(clock.shared())
        .on_store_error(OnStoreError::Allow)
        .build()
        .unwrap();
    for _ in 0..10 {
        let d = open.consume(&k, 1).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.source, DecisionSource::FailOpen);
    }
    assert_eq!(
        open.refund(&k, 1).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    let closed = Limiter::builder(down(), rule.clone())
        .clock(clock.shared())
        .on_store_error(OnStoreError::Deny)
        .build()
        .unwrap();
    let d = closed.consume(&k, 1).await.unwrap();
    assert_eq!(
        (d.allowed, d.source, d.retry_after),
        (
            false,
            DecisionSource::FailClosed,
            Some(Duration::from_secs(1))
        )
    );

    // Insurance: the same rule, counted in process while the store is down,
    // and the store again once it is back.
    let primary = down();
    let insurance = Arc::new(memory(&clock));
    let insured = Limiter::builder(primary.clone(), rule.clone())
        .clock(clock.shared())
        .on_store_error(OnStoreError::Insurance(insurance.clone()))
        .build()
        .unwrap();
    for i in 0..3 {
        let d = insured.consume(&k, 1).await.unwrap();
        assert_eq!(
            (d.allowed, d.source, d.remaining),
            (true, DecisionSource::Insurance, 2 - i)
        );
    }
    assert!(!insured.consume(&k, 1).await.unwrap().allowed);
    primary.heal();
    let d = insured.consume(&k, 1).await.unwrap();
    assert_eq!(
        (d.allowed, d.source, d.remaining),
        (true, DecisionSource::Store, 2)
    );
    insured.reset(&k).await.unwrap();
}

#[tokio::test]
async fn tiers_on_one_key_are_all_or_nothing() {
    for alg in ALGORITHMS {
        let clock = clock();
        let rule = Rule::builder(alg)
            .quota(Quota::per_second(3))
            .quota(Quota::per_minute(5))
            .build()
            .unwrap();
        let l = limiter(
            MokaStore::builder().clock(clock.shared()).build(),
            rule,
            &clock,
        );
        let k = key("k");
        let d = l.consume(&k, 3).await.unwrap();
        assert!(d.allowed);
        assert_eq!(
            d.tiers().map(|t| t.remaining).collect::<Vec<_>>(),
            vec![0, 2]
        );
        clock.advance(Duration::from_secs(2));
        // The second tier has 2 left: a cost of 3 is denied by it, and the
        // first tier, which had room, is not charged either.
        let d = l.consume(&k, 3).await.unwrap();
        assert!(!d.allowed, "{alg:?}");
        assert_eq!(
            d.limit, 5,
            "{alg:?}: the binding tier is the one that denied"
        );
        assert_eq!(d.tier(0).unwrap().retry_after, None);
        assert!(d.tier(1).unwrap().retry_after.is_some());
        let d = l.check(&k, 1).await.unwrap();
        assert_eq!(
            d.tiers().map(|t| t.remaining).collect::<Vec<_>>(),
            vec![3, 2],
            "{alg:?}"
        );
        assert!(l.consume(&k, 2).await.unwrap().allowed);
        assert!(!l.consume(&k, 1).await.unwrap().allowed);
    }
}

#[tokio::test]
async fn limits_on_different_keys_roll_back_when_one_denies() {
    for alg in ALGORITHMS {
        let clock = clock();
        let store: Arc<dyn Store> = Arc::new(memory(&clock));
        let make = |limit, prefix: &str| {
            Limiter::builder(
                store.clone(),
                Rule::builder(alg)
                    .quota(Quota::per_minute(limit))
                    .build()
                    .unwrap(),
            )
            .clock(clock.shared())
            .prefix(prefix)
            .build()
            .unwrap()
        };
        let (per_ip, per_user) = (make(5, "rl:ip"), make(2, "rl:user"));
        let ip = per_ip.key("10.0.0.1").unwrap();
        let (alice, bob) = (per_user.key("alice").unwrap(), per_user.key("bob").unwrap());
        assert_eq!(ip.as_str(), "rl:ip:10.0.0.1");

        let both = |user| [(&per_ip, &ip, 1u64), (&per_user, user, 1u64)];
        let d = consume_all(&both(&alice)).await.unwrap();
        assert!(d.allowed);
        assert_eq!(
            d.remaining, 1,
            "the binding decision has the fewest remaining"
        );
        assert!(consume_all(&both(&alice)).await.unwrap().allowed);
        clock.advance(Duration::from_millis(10));
        let denied = consume_all(&both(&alice)).await.unwrap();
        assert!(!denied.allowed);
        assert_eq!(denied.limit, 2);
        // The IP was charged twice, not three times.
        assert_eq!(per_ip.check(&ip, 1).await.unwrap().remaining, 3, "{alg:?}");
        assert!(consume_all(&both(&bob)).await.unwrap().allowed);
        assert_eq!(per_ip.check(&ip, 1).await.unwrap().remaining, 2, "{alg:?}");

        // A failing store rolls back too, and the error is returned.
        let flaky_dyn = Limiter::builder(
            store.clone(),
            Rule::builder(alg)
                .quota(Quota::per_minute(5))
                .build()
                .unwrap(),
        )
        .clock(clock.shared())
        .prefix("rl:ip")
        .build()
        .unwrap();
        // Same store type for every limiter of one call: wrap the broken
        // store behind `Arc<dyn Store>`.
        let broken: Arc<dyn Store> = {
            let s = Arc::new(FaultyStore::new(memory(&clock)));
            s.break_now();
            s
        };
        let failing = Limiter::builder(
            broken,
            Rule::builder(alg)
                .quota(Quota::per_minute(9))
                .build()
                .unwrap(),
        )
        .clock(clock.shared())
        .build()
        .unwrap();
        let e = consume_all(&[(&flaky_dyn, &ip, 1), (&failing, &alice, 1)])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(per_ip.check(&ip, 1).await.unwrap().remaining, 2, "{alg:?}");

        // Bad costs are caught before anything is charged.
        let e = consume_all(&[(&per_ip, &ip, 1), (&per_user, &bob, 3)])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(per_ip.check(&ip, 1).await.unwrap().remaining, 2);
        assert_eq!(
            consume_all::<Arc<dyn Store>>(&[]).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}

#[tokio::test]
async fn block_cache_is_bounded() {
    let clock = clock();
    let rule = Rule::builder(Algorithm::FixedWindow)
        .quota(Quota::per_minute(1))
        .block_for(Duration::from_secs(60))
        .build()
        .unwrap();
    let l: Limiter<MemoryStore> = Limiter::builder(memory(&clock), rule)
        .clock(clock.shared())
        .block_cache(3)
        .build()
        .unwrap();
    for i in 0..10 {
        let k = key(&format!("k{i}"));
        l.consume(&k, 1).await.unwrap();
        assert!(l.consume(&k, 1).await.unwrap().is_blocked());
    }
    assert_eq!(l.block_cache().len(), 3);
    // Uncached blocks are still enforced by the store.
    let d = l.consume(&key("k9"), 1).await.unwrap();
    assert!(d.is_blocked());
    // Once the cached blocks end, they make room.
    clock.advance(Duration::from_secs(61));
    let k = key("fresh");
    l.consume(&k, 1).await.unwrap();
    assert!(l.consume(&k, 1).await.unwrap().is_blocked());
    assert!(l
        .block_cache()
        .blocked_until(&k, rampart::Clock::now(&clock))
        .is_some());
    l.block_cache().clear();
    assert!(l.block_cache().is_empty());
}

#[tokio::test]
async fn a_decision_future_polled_again_is_an_error_not_a_panic() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let clock = clock();
    let rule = Rule::token_bucket(Quota::per_minute(1)).unwrap();
    let limiter = limiter(memory(&clock), rule, &clock);
    let k = key("twice");
    let mut cx = Context::from_waker(Waker::noop());
    // An admission (kept unexpanded until taken), then a denial.
    for admitted in [true, false] {
        let mut f = std::pin::pin!(limiter.consume(&k, 1));
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(d)) => assert_eq!(d.allowed, admitted),
            other => panic!("an in-process decision is ready at once: {other:?}"),
        }
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
            other => panic!("a second poll gave {other:?}"),
        }
    }
}

/// A MockStore with scripting whose every call fails (`Unavailable`), or
/// which must not be called at all (`calls: false`).
fn scripted_mock(calls: bool) -> rampart_mock::MockStore {
    let mut store = rampart_mock::MockStore::new();
    store
        .expect_capabilities()
        .return_const(rampart::Capabilities::REDIS);
    store.expect_update_local().returning(|_, _| None);
    if calls {
        store
            .expect_run_atomic()
            .returning(|_, _, _, _| Err(rampart::Error::unavailable("down")));
    } else {
        store.expect_run_atomic().never();
        store.expect_eval().never();
    }
    store
}

/// `begin_consume` + `finish_consume` (the host makes the script call)
/// decide as `consume` does: the failure policies on a failed call, the
/// block cache and bad costs before any call, in-process stores at once.
#[tokio::test]
async fn begin_and_finish_consume_decide_as_consume() {
    use rampart::limit::Begin;
    use rampart::Clock;
    let clock = clock();
    let rule = Rule::builder(Algorithm::FixedWindow)
        .quota(Quota::per_minute(3))
        .block_for(Duration::from_secs(30))
        .build()
        .unwrap();
    let k = key("k");
    let down = || rampart::Error::unavailable("down");
    let policies = || {
        [
            OnStoreError::Fail,
            OnStoreError::Allow,
            OnStoreError::Deny,
            OnStoreError::Insurance(Arc::new(memory(&clock))),
        ]
    };
    for (a, b) in policies().into_iter().zip(policies()) {
        let build = |policy| {
            Limiter::builder(scripted_mock(true), rule.clone())
                .clock(clock.shared())
                .on_store_error(policy)
                .build()
                .unwrap()
        };
        let (whole, split) = (build(a), build(b));
        for _ in 0..5 {
            let want = whole.consume(&k, 1).await;
            let got = match split.begin_consume(&k, 1) {
                Begin::Call(call) => {
                    let sha1 = rampart::limit::scripts::FIXED_WINDOW.sha1();
                    assert_eq!(call.script.sha1(), sha1);
                    assert_eq!(call.args[..2], [rampart::Arg::Int(1), rampart::Arg::Int(1)]);
                    split.finish_consume(&k, 1, Err(down())).await
                }
                // The insurance store's denial started a block.
                Begin::Decided(d) => d,
            };
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g),
                (Err(w), Err(g)) => {
                    assert_eq!((w.kind(), w.operation()), (g.kind(), g.operation()));
                    assert_eq!(g.key(), Some("k"));
                }
                other => panic!("consume and begin/finish differ: {other:?}"),
            }
        }
    }

    // A reply decoded as consume decodes it; a malformed one is an error.
    let split = limiter(scripted_mock(false), rule.clone(), &clock);
    let reply = rampart::Value::Array(
        [1, clock.now().as_micros() as i64, 0, 2, 60_000_000, 0]
            .into_iter()
            .map(rampart::Value::Int)
            .collect(),
    );
    let d = split.finish_consume(&k, 1, Ok(reply)).await.unwrap();
    assert_eq!(
        (d.allowed, d.remaining, d.source),
        (true, 2, DecisionSource::Store)
    );
    let bad = rampart::Value::Array(vec![rampart::Value::Int(1)]);
    let e = split.finish_consume(&k, 1, Ok(bad)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);

    // A denial that starts a block is remembered: the next begin answers
    // from the block cache, without a call (the mock refuses any).
    let denied = rampart::Value::Array(
        [
            0,
            clock.now().as_micros() as i64,
            clock.now().as_micros() as i64 + 30_000_000,
            0,
            60_000_000,
            60_000_000,
        ]
        .into_iter()
        .map(rampart::Value::Int)
        .collect(),
    );
    let d = split.finish_consume(&k, 1, Ok(denied)).await.unwrap();
    assert!(!d.allowed && d.blocked_until.is_some());
    match split.begin_consume(&k, 1) {
        Begin::Decided(Ok(d)) => {
            assert_eq!((d.allowed, d.source), (false, DecisionSource::BlockCache))
        }
        other => panic!("the block cache should answer: {other:?}"),
    }

    // Bad costs: typed errors before any call.
    for cost in [0, rule.capacity() + 1] {
        match split.begin_consume(&k, cost) {
            Begin::Decided(Err(e)) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
            other => panic!("cost {cost}: {other:?}"),
        }
        let e = split
            .finish_consume(&k, cost, Err(down()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    // An in-process store decides at once; a remote one without scripting
    // cannot be driven this way.
    let memory = limiter(memory(&clock), rule.clone(), &clock);
    match memory.begin_consume(&k, 1) {
        Begin::Decided(Ok(d)) => assert_eq!((d.allowed, d.remaining), (true, 2)),
        other => panic!("{other:?}"),
    }
    let mut plain = rampart_mock::MockStore::new();
    plain
        .expect_capabilities()
        .return_const(rampart::Capabilities::NONE);
    plain.expect_update_local().returning(|_, _| None);
    plain.expect_update().never();
    match limiter(plain, rule, &clock).begin_consume(&k, 1) {
        Begin::Decided(Err(e)) => assert_eq!(e.kind(), ErrorKind::Unsupported),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn undo_gives_back_only_what_is_still_counted_of_that_charge() {
    // Fixed window, 2 a minute: a charge from the last window is no
    // longer counted, so undoing it frees nothing (a plain refund would
    // give back one of this window's units).
    let c = clock();
    let l = limiter(
        memory(&c),
        Rule::fixed_window(Quota::per_minute(2)).unwrap(),
        &c,
    );
    let k = key("undo:fw");
    let old = l.consume(&k, 1).await.unwrap();
    c.advance(Duration::from_secs(60));
    for _ in 0..2 {
        assert!(l.consume(&k, 1).await.unwrap().allowed);
    }
    assert_eq!(l.undo(&k, 1, old.at).await.unwrap().remaining, 0);
    assert!(!l.consume(&k, 1).await.unwrap().allowed);
    // This window's charge is given back.
    let now = l.check(&k, 1).await.unwrap().at;
    assert_eq!(l.undo(&k, 1, now).await.unwrap().remaining, 1);

    // Sliding window: a charge in the previous window comes off the
    // previous window's count, which still weighs in.
    let c = clock();
    let l = limiter(
        memory(&c),
        Rule::sliding_window(Quota::per_minute(2)).unwrap(),
        &c,
    );
    let k = key("undo:sw");
    let first = l.consume(&k, 1).await.unwrap();
    assert!(l.consume(&k, 1).await.unwrap().allowed);
    c.advance(Duration::from_secs(60));
    // Both units of the last window still weigh fully at its end.
    assert!(!l.consume(&k, 1).await.unwrap().allowed);
    l.undo(&k, 1, first.at).await.unwrap();
    assert!(
        l.consume(&k, 1).await.unwrap().allowed,
        "one unit of the previous window given back"
    );

    // Sliding log: that charge's own entry goes, not the newest.
    let c = clock();
    let l = limiter(
        memory(&c),
        Rule::sliding_log(Quota::per_minute(2)).unwrap(),
        &c,
    );
    let k = key("undo:sl");
    let early = l.consume(&k, 1).await.unwrap();
    c.advance(Duration::from_secs(30));
    assert!(l.consume(&k, 1).await.unwrap().allowed);
    l.undo(&k, 1, early.at).await.unwrap();
    assert!(l.consume(&k, 1).await.unwrap().allowed);
    // Had the newest entry gone instead, the early one would expire in
    // 30 s; with it gone, the log holds two entries from 30 s on.
    c.advance(Duration::from_secs(31));
    assert!(!l.consume(&k, 1).await.unwrap().allowed);
    // A charge older than the window is out of the log: undoing it gives
    // nothing back (not the newest units, which are other requests').
    let k = key("undo:sl:aged");
    let aged = l.consume(&k, 1).await.unwrap();
    c.advance(Duration::from_secs(61));
    for _ in 0..2 {
        assert!(l.consume(&k, 1).await.unwrap().allowed);
    }
    assert_eq!(l.undo(&k, 1, aged.at).await.unwrap().remaining, 0);
    assert!(!l.consume(&k, 1).await.unwrap().allowed);
}
