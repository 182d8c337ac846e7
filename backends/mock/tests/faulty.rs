//! `FaultyStore` injects exactly the faults it documents.

use std::sync::Arc;
use std::time::Duration;

use rampart::layers::{Fallback, FallbackState};
use rampart::{Bytes, Change, ErrorKind, Key, ManualClock, MemoryStore, Store, Timestamp};
use rampart_mock::{FaultMode, FaultyStore};

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

/// Makes `n` `get` calls; `true` for each that failed.
async fn failures<S: Store>(store: &S, n: usize) -> Vec<bool> {
    let k = key("probe");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(store.get(&k).await.is_err());
    }
    out
}

fn failed_calls(pattern: &[bool]) -> Vec<usize> {
    pattern
        .iter()
        .enumerate()
        .filter(|(_, failed)| **failed)
        .map(|(i, _)| i + 1)
        .collect()
}

#[tokio::test]
async fn no_faults_by_default() {
    let store = FaultyStore::new(MemoryStore::new());
    assert!(failures(&store, 50).await.iter().all(|f| !f));
    assert_eq!((store.calls(), store.injected()), (50, 0));
    assert_eq!(store.mode(), FaultMode::Rules);
}

#[tokio::test]
async fn fail_every_fails_every_nth_call() {
    let store = FaultyStore::new(MemoryStore::new()).fail_every(3);
    let pattern = failures(&store, 10).await;
    assert_eq!(failed_calls(&pattern), vec![3, 6, 9]);
    assert_eq!((store.calls(), store.injected()), (10, 3));
}

#[tokio::test]
async fn fail_every_one_fails_every_call_and_zero_none() {
    let all = FaultyStore::new(MemoryStore::new()).fail_every(1);
    assert!(failures(&all, 7).await.iter().all(|f| *f));
    assert_eq!((all.calls(), all.injected()), (7, 7));

    let none = FaultyStore::new(MemoryStore::new()).fail_every(0);
    assert!(failures(&none, 7).await.iter().all(|f| !f));
    assert_eq!(none.injected(), 0);
}

#[tokio::test]
async fn every_method_counts_and_fails() {
    let store = FaultyStore::new(MemoryStore::new()).fail_every(1);
    let k = key("k");
    let keys = [k.clone()];
    static SCRIPT: rampart::Script = rampart::Script::new("return 1");
    assert!(store.get(&k).await.is_err());
    assert!(store.set(&k, Bytes::new(), None).await.is_err());
    assert!(store.delete(&k).await.is_err());
    assert!(store.ttl(&k).await.is_err());
    assert!(store.compare_and_swap(&k, None, None, None).await.is_err());
    assert!(store.scan("", &rampart::Cursor::start(), 10).await.is_err());
    assert!(store.update(&k, &mut |_| Change::Keep).await.is_err());
    assert!(store
        .run_atomic(&k, &SCRIPT, &[], &mut |_| Change::Keep)
        .await
        .is_err());
    assert!(store.set_if_absent(&k, Bytes::new(), None).await.is_err());
    assert!(store.delete_if_equal(&k, b"v").await.is_err());
    assert!(store.expire_if_equal(&k, b"v", None).await.is_err());
    assert!(store.increment(&k, 1, None).await.is_err());
    assert!(store.get_many(&keys).await.is_err());
    assert!(store.delete_many(&keys).await.is_err());
    assert!(store.eval(&SCRIPT, &[&k], &[]).await.is_err());
    assert!(store.server_time().await.is_err());
    assert!(store.stats().await.is_err());
    // `capabilities` cannot fail and is not a call.
    assert_eq!(store.capabilities(), MemoryStore::new().capabilities());
    assert_eq!((store.calls(), store.injected()), (17, 17));
}

#[tokio::test]
async fn an_injected_failure_writes_nothing() {
    let store = FaultyStore::new(MemoryStore::new()).fail_every(2);
    let k = key("k");
    store.set(&k, "a".into(), None).await.unwrap(); // call 1
    assert!(store.set(&k, "b".into(), None).await.is_err()); // call 2
    assert_eq!(
        store.inner().get(&k).await.unwrap().as_deref(),
        Some(&b"a"[..])
    );

    store.get(&k).await.unwrap(); // call 3
    let mut ran = false;
    let failed = store
        .update(&k, &mut |_| {
            ran = true;
            Change::Remove
        })
        .await; // call 4
    assert!(failed.is_err());
    assert!(!ran, "the closure of a failed update must not run");
    assert!(store.inner().get(&k).await.unwrap().is_some());

    store.delete(&k).await.unwrap(); // call 5
    assert!(store.increment(&k, 5, None).await.is_err()); // call 6
    assert_eq!(store.inner().get(&k).await.unwrap(), None);
}

#[tokio::test]
async fn fail_fraction_is_reproducible_with_a_seed() {
    let run = |seed| async move {
        let store = FaultyStore::new(MemoryStore::new())
            .fail_fraction(0.25)
            .seed(seed);
        let pattern = failures(&store, 1000).await;
        assert_eq!(
            store.injected(),
            pattern.iter().filter(|f| **f).count() as u64
        );
        pattern
    };
    let a = run(42).await;
    let b = run(42).await;
    let other = run(43).await;
    assert_eq!(a, b, "the same seed fails the same calls");
    assert_ne!(a, other, "another seed fails other calls");

    let failed = a.iter().filter(|f| **f).count();
    // Pinned, and checked against an independent SplitMix64: the draw for
    // call n is the n-th SplitMix64 output from the seed, so a seed keeps
    // failing the same calls across releases.
    assert_eq!(failed, 273);
    assert_eq!(&failed_calls(&a)[..5], &[2, 5, 7, 11, 16]);
}

#[tokio::test]
async fn fail_fraction_bounds() {
    let never = FaultyStore::new(MemoryStore::new()).fail_fraction(0.0);
    assert!(failures(&never, 100).await.iter().all(|f| !f));
    let nan = FaultyStore::new(MemoryStore::new()).fail_fraction(f64::NAN);
    assert!(failures(&nan, 100).await.iter().all(|f| !f));
    let negative = FaultyStore::new(MemoryStore::new()).fail_fraction(-3.0);
    assert!(failures(&negative, 100).await.iter().all(|f| !f));

    let always = FaultyStore::new(MemoryStore::new()).fail_fraction(1.0);
    assert!(failures(&always, 100).await.iter().all(|f| *f));
    let above = FaultyStore::new(MemoryStore::new()).fail_fraction(7.5);
    assert!(failures(&above, 100).await.iter().all(|f| *f));
    assert_eq!(above.injected(), 100);
}

#[tokio::test]
async fn rules_combine_with_or() {
    let seed = 9;
    let fraction_only = FaultyStore::new(MemoryStore::new())
        .fail_fraction(0.1)
        .seed(seed);
    let both = FaultyStore::new(MemoryStore::new())
        .fail_fraction(0.1)
        .seed(seed)
        .fail_every(4);
    let a = failures(&fraction_only, 200).await;
    let b = failures(&both, 200).await;
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        let n = i + 1;
        assert_eq!(*fb, *fa || n % 4 == 0, "call {n}");
    }
}

#[tokio::test]
async fn the_error_is_unavailable_temporary_with_context() {
    let store = FaultyStore::new(MemoryStore::new()).fail_every(1);
    let err = store.get(&key("app:k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_temporary());
    assert_eq!(err.operation(), Some("get"));
    assert_eq!(err.key(), Some("app:k"));

    let err = store
        .scan("app:", &rampart::Cursor::start(), 5)
        .await
        .unwrap_err();
    assert_eq!(err.operation(), Some("scan"));
    assert_eq!(err.key(), Some("app:"));
    let err = store.stats().await.unwrap_err();
    assert_eq!((err.operation(), err.key()), (Some("stats"), None));
}

#[tokio::test]
async fn with_error_sets_the_kind() {
    let timeout = FaultyStore::new(MemoryStore::new())
        .fail_every(1)
        .with_error(ErrorKind::Timeout);
    let err = timeout.delete(&key("k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_temporary());
    assert_eq!(err.operation(), Some("delete"));

    let corrupt = FaultyStore::new(MemoryStore::new())
        .fail_every(1)
        .with_error(ErrorKind::CorruptData);
    let err = corrupt.get(&key("k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CorruptData);
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn runtime_switches() {
    let store = FaultyStore::new(MemoryStore::new()).fail_every(2);
    store.break_now();
    assert_eq!(store.mode(), FaultMode::Broken);
    assert!(failures(&store, 4).await.iter().all(|f| *f)); // calls 1-4

    store.heal();
    assert_eq!(store.mode(), FaultMode::Healed);
    assert!(failures(&store, 4).await.iter().all(|f| !f)); // calls 5-8

    store.apply_rules();
    assert_eq!(store.mode(), FaultMode::Rules);
    // Calls 9-12: the even ones fail; numbering never restarted.
    assert_eq!(failures(&store, 4).await, vec![false, true, false, true]);
    assert_eq!((store.calls(), store.injected()), (12, 6));

    store.reset_counters();
    assert_eq!((store.calls(), store.injected()), (0, 0));
    assert_eq!(failures(&store, 2).await, vec![false, true]);

    store.set_mode(FaultMode::Broken);
    assert!(store.get(&key("k")).await.is_err());
}

#[tokio::test]
async fn switches_work_through_a_shared_handle() {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()));
    let shared: Arc<dyn Store> = faulty.clone();
    faulty.break_now();
    assert!(shared.get(&key("k")).await.is_err());
    faulty.heal();
    assert!(shared.get(&key("k")).await.is_ok());
    assert_eq!((faulty.calls(), faulty.injected()), (2, 1));
}

// Latency is checked on tokio's paused clock: virtual time, exact, no
// dependence on the machine's speed.
#[tokio::test(start_paused = true)]
async fn latency_delays_every_call() {
    let store = FaultyStore::new(MemoryStore::new()).latency(Duration::from_millis(250));
    let k = key("k");
    let start = tokio::time::Instant::now();
    store.set(&k, "v".into(), None).await.unwrap();
    store.get(&k).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(500));

    // A call does not complete before its latency has passed.
    let early = tokio::time::timeout(Duration::from_millis(249), store.get(&k)).await;
    assert!(early.is_err(), "the call finished before its latency");
    assert_eq!(store.calls(), 2, "an unfinished call has not been counted");

    store.set_latency(Duration::ZERO);
    let start = tokio::time::Instant::now();
    store.get(&k).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn latency_applies_to_failing_calls_too() {
    let store = FaultyStore::new(MemoryStore::new())
        .latency(Duration::from_secs(1))
        .fail_every(1);
    let start = tokio::time::Instant::now();
    assert!(store.get(&key("k")).await.is_err());
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(store.injected(), 1);
}

#[tokio::test]
async fn fallback_moves_traffic_while_broken() {
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let primary = Arc::new(FaultyStore::new(MemoryStore::new()));
    let store = Fallback::new(primary.clone(), MemoryStore::new())
        .with_clock(clock.shared())
        .retry_after(Duration::from_secs(5));
    let k = key("k");

    store.set(&k, "up".into(), None).await.unwrap();
    assert_eq!(store.state(), FallbackState::Primary);

    primary.break_now();
    store.set(&k, "down".into(), None).await.unwrap();
    assert!(matches!(store.state(), FallbackState::Insurance { .. }));
    assert_eq!(
        store.insurance().get(&k).await.unwrap().as_deref(),
        Some(&b"down"[..])
    );
    assert_eq!(
        primary.inner().get(&k).await.unwrap().as_deref(),
        Some(&b"up"[..]),
        "the failed write did not reach the primary"
    );
    assert_eq!(primary.injected(), 1);

    primary.heal();
    clock.advance(Duration::from_secs(5));
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some(&b"up"[..]));
    assert_eq!(store.state(), FallbackState::Primary);
    assert_eq!(store.switches(), 1);
}
