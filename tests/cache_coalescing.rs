//! Request coalescing: concurrent misses of one key call the loader once;
//! its error reaches every waiter and is not cached.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::cache::Cache;
use rampart::layers::Prefixed;
use rampart::{Error, ErrorKind, MemoryStore, Store};
use support::{until, Gate};

const TTL: Duration = Duration::from_secs(60);

async fn hundred_misses_one_load<S: Store + 'static>(store: S) {
    let cache = Cache::builder(store).build().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let gate = Gate::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (cache, calls, gate) = (cache.clone(), calls.clone(), gate.clone());
        tasks.spawn(async move {
            cache
                .get_or_set("hot", TTL, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.pass().await;
                    Ok(vec![1u32, 2, 3])
                })
                .await
        });
    }
    // Every caller has missed and joined the one flight before it lands.
    until("100 misses, 99 of them coalesced", || {
        let c = cache.counters();
        c.misses == 100 && c.coalesced == 99
    })
    .await;
    gate.open();
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), vec![1, 2, 3]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let c = cache.counters();
    assert_eq!((c.loader_calls, c.sets, c.misses), (1, 1, 100));
    // And now it is cached.
    let again: Vec<u32> = cache
        .get_or_set("hot", TTL, || async { Err(Error::backend("not called")) })
        .await
        .unwrap();
    assert_eq!(again, vec![1, 2, 3]);
    assert_eq!(cache.counters().loader_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_misses_call_the_loader_once_memory() {
    hundred_misses_one_load(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_misses_call_the_loader_once_moka() {
    hundred_misses_one_load(rampart_moka::MokaStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_misses_call_the_loader_once_prefixed_dyn() {
    let store: Arc<dyn Store> = Arc::new(Prefixed::new(MemoryStore::new(), "app").unwrap());
    hundred_misses_one_load(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loader_error_reaches_every_waiter_and_is_not_cached() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let gate = Gate::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (cache, calls, gate) = (cache.clone(), calls.clone(), gate.clone());
        tasks.spawn(async move {
            cache
                .get_or_set::<String, _, _>("k", TTL, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.pass().await;
                    Err(Error::unavailable("database is down").with_operation("load_user"))
                })
                .await
        });
    }
    until("20 callers in one flight", || {
        cache.counters().coalesced == 19
    })
    .await;
    gate.open();
    while let Some(result) = tasks.join_next().await {
        let e = result.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_temporary());
        assert_eq!(e.operation(), Some("load_user"));
        assert!(e.to_string().contains("database is down"), "{e}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.counters().loader_errors, 1);
    // Not cached: the next call loads again and succeeds.
    let v: String = cache
        .get_or_set("k", TTL, || async { Ok("recovered".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "recovered");
    assert_eq!(cache.counters().loader_calls, 2);
}

#[tokio::test]
async fn a_cancelled_caller_does_not_strand_the_key() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    // The only caller gives up while its loader waits: the flight is
    // dropped with it, and the next caller starts a new one.
    let abandoned = cache.get_or_set("k", TTL, move || async move {
        g.pass().await;
        Ok(1u8)
    });
    let timed_out = tokio::time::timeout(Duration::from_millis(5), abandoned).await;
    assert!(timed_out.is_err());
    let v: u8 = cache
        .get_or_set("k", TTL, || async { Ok(2u8) })
        .await
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(cache.counters().loader_calls, 2);
}

#[tokio::test]
async fn different_keys_do_not_coalesce() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    let loads = futures_util::future::join_all((0..10).map(|i| {
        let cache = cache.clone();
        async move {
            cache
                .get_or_set(&format!("k{i}"), TTL, move || async move { Ok(i) })
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(loads, (0..10).collect::<Vec<_>>());
    assert_eq!(cache.counters().loader_calls, 10);
    assert_eq!(cache.counters().coalesced, 0);
}
