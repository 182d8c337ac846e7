//! Stale-while-revalidate on a manual clock: a stale entry is served at
//! once while exactly one background refresh runs.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::cache::{Cache, EntryOptions};
use rampart::{Error, KeyTtl, MemoryStore};
use support::{clock, memory, until, Gate};

fn swr_cache(clock: &rampart::ManualClock) -> Cache<MemoryStore> {
    Cache::builder(memory(clock))
        .clock(clock.shared())
        .default_ttl(Duration::from_secs(10))
        .stale_while_revalidate(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_is_served_while_exactly_one_refresh_runs() {
    let clock = clock();
    let cache = swr_cache(&clock);
    let v: String = cache
        .get_or_set("k", EntryOptions::new(), || async { Ok("v1".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "v1");

    clock.advance(Duration::from_secs(15)); // past fresh, within grace
    assert_eq!(
        cache.get::<String>("k").await.unwrap(),
        None,
        "get returns fresh values only"
    );
    assert_eq!(cache.ttl("k").await.unwrap(), KeyTtl::Missing);

    let refresh_calls = Arc::new(AtomicU64::new(0));
    let gate = Gate::new();
    for _ in 0..10 {
        let (calls, gate) = (refresh_calls.clone(), gate.clone());
        let served: String = cache
            .get_or_set("k", EntryOptions::new(), move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                gate.pass().await;
                Ok("v2".to_string())
            })
            .await
            .unwrap();
        assert_eq!(served, "v1", "stale value served at once");
    }
    let c = cache.counters();
    assert_eq!(c.stale_served, 10);
    assert_eq!(c.refreshes, 0);

    gate.open();
    until("the refresh to land", || cache.counters().refreshes == 1).await;
    assert_eq!(
        refresh_calls.load(Ordering::SeqCst),
        1,
        "exactly one refresh"
    );
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v2")
    );
    assert_eq!(
        cache.ttl("k").await.unwrap(),
        KeyTtl::Expires(Duration::from_secs(10))
    );
    let c = cache.counters();
    assert_eq!((c.loader_calls, c.refreshes, c.sets), (2, 1, 2));
}

#[tokio::test]
async fn past_the_grace_period_it_is_a_plain_miss() {
    let clock = clock();
    let cache = swr_cache(&clock);
    cache.set("k", &1u32, EntryOptions::new()).await.unwrap();
    clock.advance(Duration::from_secs(71));
    let v: u32 = cache
        .get_or_set("k", EntryOptions::new(), || async { Ok(2u32) })
        .await
        .unwrap();
    assert_eq!(
        v, 2,
        "nothing stale left to serve: the caller waits for the loader"
    );
    let c = cache.counters();
    assert_eq!((c.stale_served, c.misses, c.refreshes), (0, 1, 0));
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_stale_and_is_retried() {
    let clock = clock();
    let cache = swr_cache(&clock);
    cache.set("k", &"old", EntryOptions::new()).await.unwrap();
    clock.advance(Duration::from_secs(11));
    let served: String = cache
        .get_or_set("k", EntryOptions::new(), || async {
            Err(Error::unavailable("db down"))
        })
        .await
        .unwrap();
    assert_eq!(served, "old");
    until("the failed refresh", || cache.counters().loader_errors == 1).await;
    // The stale entry is still there; the next stale read refreshes again.
    let served: String = cache
        .get_or_set("k", EntryOptions::new(), || async { Ok("new".to_string()) })
        .await
        .unwrap();
    assert_eq!(served, "old");
    until("the second refresh", || cache.counters().refreshes == 1).await;
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("new")
    );
}

#[tokio::test]
async fn per_entry_grace_overrides_the_cache() {
    let clock = clock();
    let cache = swr_cache(&clock);
    cache
        .set("strict", &1u8, EntryOptions::new().no_grace())
        .await
        .unwrap();
    cache
        .set(
            "lenient",
            &1u8,
            EntryOptions::new().grace(Duration::from_secs(1_000)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(500));
    let strict: u8 = cache
        .get_or_set("strict", EntryOptions::new(), || async { Ok(2u8) })
        .await
        .unwrap();
    let lenient: u8 = cache
        .get_or_set("lenient", EntryOptions::new(), || async { Ok(2u8) })
        .await
        .unwrap();
    assert_eq!((strict, lenient), (2, 1));
}

#[test]
fn without_a_runtime_to_spawn_on_the_caller_refreshes_in_the_foreground() {
    let clock = clock();
    let cache = swr_cache(&clock);
    // A bare executor (no tokio runtime): rt::spawn is unavailable.
    futures_executor_block_on(async {
        cache.set("k", &"old", EntryOptions::new()).await.unwrap();
        clock.advance(Duration::from_secs(11));
        let v: String = cache
            .get_or_set("k", EntryOptions::new(), || async { Ok("new".to_string()) })
            .await
            .unwrap();
        assert_eq!(v, "new");
        assert_eq!(cache.counters().refreshes, 1);
    });
}

/// Polls a future to completion without any runtime (the memory store and
/// these loaders never wait on I/O).
fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
