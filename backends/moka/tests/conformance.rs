//! The conformance suite against `MokaStore`, plus what the suite cannot
//! show: the capacity bound, moka's real-time reclamation, and exact
//! results under contention.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::testkit::Harness;
use rampart::{Change, Cursor, Key, ManualClock, Store, Timestamp};
use rampart_moka::MokaStore;

/// On a manual clock: expiry is exact and instant.
mod manual {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| MokaStore::builder()
        .clock(clock)
        .build()));
}

/// On the system clock, with moka reclaiming expired entries in real time.
mod system_clock {
    use super::*;
    rampart::conformance_suite!(Harness::real(MokaStore::new()));
}

/// Behind `Arc<dyn Store>`.
mod dyn_store {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| Arc::new(
        MokaStore::builder().clock(clock).build()
    ) as Arc<dyn Store>));
}

/// The store never waits, so one poll completes any call.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("MokaStore futures never wait"),
    }
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

mod eviction {
    use super::*;

    #[test]
    fn the_capacity_bound_holds_and_new_writes_are_admitted() {
        let clock = ManualClock::new(Timestamp::from_secs(1));
        let store = MokaStore::builder()
            .max_capacity(100)
            .clock(clock.shared())
            .build();
        for i in 0..1_000 {
            block_on(store.set(&key(&format!("k{i:04}")), "v".into(), None)).unwrap();
        }
        let stats = block_on(store.stats()).unwrap();
        let held = stats.keys.unwrap();
        assert!(held <= 100, "{held} entries held, capacity 100");
        assert!(held > 0);
        let readable = (0..1_000)
            .filter(|i| {
                block_on(store.get(&key(&format!("k{i:04}"))))
                    .unwrap()
                    .is_some()
            })
            .count();
        assert!(readable <= 100, "{readable} keys readable, capacity 100");
        // LRU admits every write: the latest one is there.
        assert_eq!(
            block_on(store.get(&key("k0999"))).unwrap(),
            Some("v".into())
        );
        let page = block_on(store.scan("k", &Cursor::start(), 10_000)).unwrap();
        assert!(page.keys.len() <= 100);
        assert_eq!(page.next, None);
    }

    #[test]
    fn evicted_keys_can_be_written_again() {
        let store = MokaStore::builder().max_capacity(10).build();
        for round in 0..3u8 {
            for i in 0..100 {
                let k = key(&format!("r{i}"));
                block_on(store.set(&k, vec![round].into(), None)).unwrap();
                assert_eq!(block_on(store.get(&k)).unwrap(), Some(vec![round].into()));
                let n = block_on(store.increment(&k.child("n").unwrap(), 1, None)).unwrap();
                assert!((1..=3).contains(&n), "{n}");
            }
            store.run_pending_tasks();
            assert!(block_on(store.stats()).unwrap().keys.unwrap() <= 10);
        }
    }
}

mod reclaim {
    use super::*;

    /// A manual clock that does not move keeps entries alive however much
    /// real time passes: moka's real-time timer is off for it.
    #[test]
    fn a_manual_clock_is_not_overruled_by_real_time() {
        let clock = ManualClock::new(Timestamp::from_secs(1));
        let store = MokaStore::builder().clock(clock.shared()).build();
        let k = key("k");
        block_on(store.set(&k, "v".into(), Some(Duration::from_millis(20)))).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        store.run_pending_tasks();
        assert_eq!(block_on(store.get(&k)).unwrap(), Some("v".into()));
        clock.advance(Duration::from_millis(20));
        assert_eq!(block_on(store.get(&k)).unwrap(), None);
    }

    /// On the system clock moka drops expired entries by itself, without
    /// anyone touching them.
    #[test]
    fn expired_entries_are_reclaimed_without_reads() {
        let store = MokaStore::new();
        for i in 0..50 {
            block_on(store.set(
                &key(&format!("short{i}")),
                "v".into(),
                Some(Duration::from_millis(1)),
            ))
            .unwrap();
        }
        block_on(store.set(&key("long"), "v".into(), None)).unwrap();
        // Moka's deadline is the TTL plus at least a second of slack.
        std::thread::sleep(Duration::from_millis(1_300));
        store.run_pending_tasks();
        assert_eq!(block_on(store.stats()).unwrap().keys, Some(1));
        assert_eq!(block_on(store.get(&key("long"))).unwrap(), Some("v".into()));
    }

    /// Extending a TTL in place tells moka, which would otherwise drop the
    /// entry at the first deadline plus slack (here 0.5 s + 1 s).
    #[test]
    fn an_extended_ttl_outlives_the_first_deadline() {
        let store = MokaStore::new();
        let k = key("lock");
        block_on(store.set(&k, "me".into(), Some(Duration::from_millis(500)))).unwrap();
        assert!(block_on(store.expire_if_equal(&k, b"me", Some(Duration::from_secs(30)))).unwrap());
        let c = key("counter");
        block_on(store.increment(&c, 1, Some(Duration::from_millis(500)))).unwrap();
        block_on(store.update(&c, &mut |_| Change::Set {
            value: "7".into(),
            ttl: None,
        }))
        .unwrap();
        std::thread::sleep(Duration::from_millis(1_800));
        store.run_pending_tasks();
        assert_eq!(block_on(store.get(&k)).unwrap(), Some("me".into()));
        assert_eq!(block_on(store.get(&c)).unwrap(), Some("7".into()));
    }
}

mod contention {
    use super::*;

    /// Increments racing with removals lose nothing: every increment ends
    /// up either in a value some removal took, or in the final value.
    #[test]
    fn increments_survive_concurrent_removals() {
        const THREADS: u64 = 4;
        const EACH: u64 = 2_000;
        let store = Arc::new(MokaStore::new());
        let k = key("counter");
        let taken = Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..EACH {
                        block_on(store.increment(&k, 1, Some(Duration::from_secs(60)))).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..500 {
                    let mut seen = 0;
                    block_on(store.update(&k, &mut |cur| {
                        seen = cur.map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                        Change::Remove
                    }))
                    .unwrap();
                    taken.fetch_add(seen, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            });
        });
        let left = block_on(store.increment(&k, 0, None)).unwrap() as u64;
        assert_eq!(taken.load(Ordering::Relaxed) + left, THREADS * EACH);
    }

    /// A lock taken with `set_if_absent` and released with
    /// `delete_if_equal` is held by one thread at a time.
    #[test]
    fn lock_handoff_is_mutually_exclusive() {
        let store = Arc::new(MokaStore::new());
        let lock = key("lock");
        let held = AtomicBool::new(false);
        let acquired = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let (store, lock, held, acquired) = (&store, &lock, &held, &acquired);
                s.spawn(move || {
                    let token = [t];
                    for _ in 0..500 {
                        while !block_on(store.set_if_absent(
                            lock,
                            token.to_vec().into(),
                            Some(Duration::from_secs(60)),
                        ))
                        .unwrap()
                        {
                            std::thread::yield_now();
                        }
                        assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                        acquired.fetch_add(1, Ordering::Relaxed);
                        held.store(false, Ordering::SeqCst);
                        assert!(block_on(store.delete_if_equal(lock, &token)).unwrap());
                    }
                });
            }
        });
        assert_eq!(acquired.load(Ordering::Relaxed), 2_000);
        assert_eq!(block_on(store.get(&lock)).unwrap(), None);
    }
}
