//! Contention: 64 concurrent tasks on one key with a limit of 100 admit
//! exactly 100, for every algorithm on every in-process store (and on a
//! store with only compare-and-swap, through the default update loop).

use std::sync::Arc;

use rampart::limit::{Algorithm, Limiter, Quota, Rule};
use rampart::{Key, ManualClock, MemoryStore, SharedClock, Store, Timestamp};
use rampart_moka::MokaStore;

const TASKS: usize = 64;
const ATTEMPTS: usize = 4;
const LIMIT: u64 = 100;

use rampart::testkit::CasOnly;

fn rules() -> Vec<Rule> {
    [
        Algorithm::TokenBucket,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
    ]
    .into_iter()
    .map(|alg| {
        Rule::builder(alg)
            .quota(Quota::per_minute(LIMIT))
            .quota(Quota::per_hour(10 * LIMIT))
            .build()
            .unwrap()
    })
    .collect()
}

async fn contend<S: Store + 'static>(name: &str, make: impl Fn(SharedClock) -> S) {
    for rule in rules() {
        // Frozen time: nothing refills while the tasks race.
        let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
        let limiter = Arc::new(
            Limiter::builder(make(clock.shared()), rule.clone())
                .clock(clock.shared())
                .build()
                .unwrap(),
        );
        let key = Key::new("contended").unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let (limiter, key, barrier) = (limiter.clone(), key.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut remaining = Vec::new();
                for _ in 0..ATTEMPTS {
                    let d = limiter.consume(&key, 1).await.unwrap();
                    if d.allowed {
                        remaining.push(d.remaining);
                    }
                }
                remaining
            }));
        }
        let mut remaining = Vec::new();
        for t in tasks {
            remaining.extend(t.await.unwrap());
        }
        remaining.sort_unstable();
        assert_eq!(
            remaining.len() as u64,
            LIMIT,
            "{name}, {:?}: admitted {} of {} attempts",
            rule.algorithm(),
            remaining.len(),
            TASKS * ATTEMPTS
        );
        // Serializable: every admission saw a distinct count.
        assert_eq!(remaining, (0..LIMIT).collect::<Vec<_>>(), "{name}");
        assert!(!limiter.check(&key, 1).await.unwrap().allowed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_admits_exactly_the_limit() {
    contend("MemoryStore", |clock| {
        MemoryStore::builder().clock(clock).build()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moka_store_admits_exactly_the_limit() {
    contend("MokaStore", |clock| {
        MokaStore::builder().clock(clock).build()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_dyn_store_admits_exactly_the_limit() {
    contend("Arc<dyn Store>", |clock| {
        Arc::new(MokaStore::builder().clock(clock).build()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_swap_store_admits_exactly_the_limit() {
    contend("CAS-only store", |clock| {
        CasOnly(MemoryStore::builder().clock(clock).build())
    })
    .await;
}
