//! Mutual exclusion under contention: 16 workers doing 10,000 acquire /
//! critical section / release cycles each (160,000 in all) on 4 resources,
//! on every in-process store: zero overlapping critical sections, no lost
//! update, and fencing tokens that strictly increase per resource.
//!
//! The workers run on a 4-thread runtime and yield inside the critical
//! section, so other workers run (in parallel and on the same thread)
//! while a lock is held; every store call is real, none is mocked.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::lock::{LockConfig, Locks, Release};
use rampart::{ManualClock, MemoryStore, SharedClock, Store, Timestamp};
use rampart_moka::MokaStore;

const WORKERS: usize = 16;
const RESOURCES: usize = 4;
/// Cycles per worker: 16 × 10,000 = 160,000 in all (about 2 s per store in
/// a debug build on 2 cores).
const CYCLES: usize = 10_000;

#[derive(Default)]
struct Resource {
    /// Set while a worker is inside the critical section.
    busy: AtomicBool,
    /// A counter incremented non-atomically (load, yield, store) inside the
    /// critical section: any overlap loses increments.
    count: AtomicU64,
    /// The fencing token of the last hold that entered.
    last_fence: AtomicU64,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    cycles: u64,
    overlaps: u64,
    lost_increments: u64,
    fence_regressions: u64,
    releases_not_held: u64,
}

/// Runs the scenario on `store` (whose clock is `clock`); returns what
/// happened and how many acquisitions found the lock held first.
async fn contend<S: Store + 'static>(store: S, clock: SharedClock, cycles: usize) -> (Report, u64) {
    let mut config = LockConfig::default();
    // Short backoff so the test is about contention, not waiting. The
    // clock stands still and the TTL is an hour: no hold ever expires, so
    // any overlap is a broken lock.
    config.retry_delay = Duration::from_millis(1);
    config.retry_jitter = Duration::from_millis(1);
    let locks = Locks::builder(store)
        .clock(clock)
        .config(config)
        .build()
        .expect("valid config");
    let resources: Arc<Vec<Resource>> =
        Arc::new((0..RESOURCES).map(|_| Resource::default()).collect());
    let stats: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let locks = locks.clone();
        let resources = Arc::clone(&resources);
        let stats = Arc::clone(&stats);
        tasks.push(tokio::spawn(async move {
            let hour = Duration::from_secs(3_600);
            for i in 0..cycles {
                let r = (worker + i) % RESOURCES;
                let name = format!("res{r}");
                let lock = match locks.try_acquire(&name, hour).await.expect("store works") {
                    Some(lock) => lock,
                    None => {
                        stats[4].fetch_add(1, Ordering::Relaxed);
                        locks
                            .acquire(&name, hour, hour)
                            .await
                            .expect("store works")
                            .expect("the lock frees up")
                    }
                };
                let res = &resources[r];
                if res.busy.swap(true, Ordering::SeqCst) {
                    stats[1].fetch_add(1, Ordering::SeqCst);
                }
                let previous = res.last_fence.swap(lock.fence(), Ordering::SeqCst);
                if previous >= lock.fence() {
                    stats[2].fetch_add(1, Ordering::SeqCst);
                }
                let count = res.count.load(Ordering::SeqCst);
                // Let other workers run while we hold the lock.
                tokio::task::yield_now().await;
                res.count.store(count + 1, Ordering::SeqCst);
                res.busy.store(false, Ordering::SeqCst);
                if lock.release().await.expect("store works") != Release::Released {
                    stats[3].fetch_add(1, Ordering::SeqCst);
                }
                stats[0].fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker panicked");
    }
    let counted: u64 = resources
        .iter()
        .map(|r| r.count.load(Ordering::SeqCst))
        .sum();
    let cycles_done = stats[0].load(Ordering::SeqCst);
    let report = Report {
        cycles: cycles_done,
        overlaps: stats[1].load(Ordering::SeqCst),
        lost_increments: cycles_done - counted,
        fence_regressions: stats[2].load(Ordering::SeqCst),
        releases_not_held: stats[3].load(Ordering::SeqCst),
    };
    (report, stats[4].load(Ordering::SeqCst))
}

async fn check<S: Store + 'static>(name: &str, store: S, clock: &ManualClock, cycles: usize) {
    let started = std::time::Instant::now();
    let (report, contended) = contend(store, clock.shared(), cycles).await;
    eprintln!(
        "{name}: {report:?}, {contended} acquisitions waited, in {:?}",
        started.elapsed()
    );
    assert_eq!(
        report,
        Report {
            cycles: (WORKERS * cycles) as u64,
            ..Report::default()
        }
    );
    // The scenario is only a test of exclusion if workers met held locks.
    assert!(contended > 0, "no contention happened");
}

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_secs(1_700_000_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_excludes_under_contention() {
    let clock = clock();
    let store = MemoryStore::builder().clock(clock.shared()).build();
    check("MemoryStore", store, &clock, CYCLES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moka_store_excludes_under_contention() {
    let clock = clock();
    let store = MokaStore::builder().clock(clock.shared()).build();
    check("MokaStore", store, &clock, CYCLES).await;
}

use rampart::testkit::CasOnly;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_only_store_excludes_under_contention() {
    let clock = clock();
    let store = CasOnly(MemoryStore::builder().clock(clock.shared()).build());
    assert!(!store.capabilities().atomic_update);
    // A tenth of the cycles: the same code path as above, through CAS.
    check("CAS-only store", store, &clock, CYCLES / 10).await;
}
