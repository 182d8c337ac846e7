//! Two-tier caching over an in-process L2 (a memory store, whose pub/sub
//! is in-process): two cache instances, each with its own L1, stand for
//! two app servers. (backends/redis/tests/cache_two_tier.rs runs the same
//! over a real redis-server.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use rampart::cache::{Cache, EntryOptions};
use rampart::{ErrorKind, Key, ManualClock, MemoryStore, Store};
use support::{clock, memory, until, Faulty};

type L2 = Arc<Faulty<MemoryStore>>;

struct Server {
    cache: Cache<L2>,
    l1: Arc<MemoryStore>,
}

async fn server(l2: &L2, clock: &ManualClock) -> Server {
    let l1 = Arc::new(memory(clock));
    let cache = Cache::builder(l2.clone())
        .clock(clock.shared())
        .default_ttl(Duration::from_secs(600))
        .two_tier(l1.clone(), Duration::from_secs(30))
        .build()
        .unwrap();
    cache.ready().await.unwrap();
    Server { cache, l1 }
}

async fn in_l1(server: &Server, key: &str) -> bool {
    server
        .l1
        .get(&Key::new(key).unwrap())
        .await
        .unwrap()
        .is_some()
}

/// Waits until `server` has applied `n` broadcasts from other instances.
async fn received(server: &Server, n: u64) {
    until(&format!("{n} invalidations applied"), || {
        server.cache.counters().l1_invalidations >= n
    })
    .await;
    assert_eq!(server.cache.counters().l1_invalidations, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_hits_skip_the_l2_and_writes_elsewhere_drop_them() {
    let clock = clock();
    let l2: L2 = Arc::new(Faulty::new(memory(&clock)));
    let (a, b) = (server(&l2, &clock).await, server(&l2, &clock).await);

    a.cache.set("k", &1u32, EntryOptions::new()).await.unwrap();
    received(&b, 1).await;
    assert_eq!(b.cache.get::<u32>("k").await.unwrap(), Some(1));
    assert!(in_l1(&b, "cache:k:k").await, "the L2 hit filled B's L1");
    let reads = l2.reads();
    for _ in 0..5 {
        assert_eq!(b.cache.get::<u32>("k").await.unwrap(), Some(1));
    }
    assert_eq!(l2.reads(), reads, "L1 hits never touch the L2");
    assert_eq!(b.cache.counters().l1_hits, 5);

    // A write on A reaches B's L1 through the L2's pub/sub.
    a.cache.set("k", &2u32, EntryOptions::new()).await.unwrap();
    received(&b, 2).await;
    assert!(!in_l1(&b, "cache:k:k").await);
    assert_eq!(b.cache.get::<u32>("k").await.unwrap(), Some(2));

    // Each instance applies its own writes to its L1 at once.
    assert_eq!(a.cache.get::<u32>("k").await.unwrap(), Some(2));
    assert!(in_l1(&a, "cache:k:k").await);
    b.cache.set("k", &3u32, EntryOptions::new()).await.unwrap();
    assert_eq!(b.cache.get::<u32>("k").await.unwrap(), Some(3));
    received(&a, 1).await;
    assert!(!in_l1(&a, "cache:k:k").await);
    assert_eq!(a.cache.get::<u32>("k").await.unwrap(), Some(3));

    a.cache.delete("k").await.unwrap();
    received(&b, 3).await;
    assert_eq!(b.cache.get::<u32>("k").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_invalidation_reaches_every_l1_in_constant_work() {
    let clock = clock();
    let l2: L2 = Arc::new(Faulty::new(memory(&clock)));
    let (a, b) = (server(&l2, &clock).await, server(&l2, &clock).await);
    let team = EntryOptions::new().tag("team:1");
    for i in 0..50 {
        a.cache
            .set(&format!("m{i}"), &i, team.clone())
            .await
            .unwrap();
    }
    received(&b, 50).await;
    for i in 0..50 {
        assert_eq!(b.cache.get::<i32>(&format!("m{i}")).await.unwrap(), Some(i));
    }
    assert!(
        in_l1(&b, "cache:t:team:1").await,
        "B keeps a copy of the tag version"
    );
    let reads = l2.reads();
    assert_eq!(b.cache.get::<i32>("m7").await.unwrap(), Some(7));
    assert_eq!(
        l2.reads(),
        reads,
        "a tagged L1 hit checks the L1's tag copy only"
    );

    a.cache.invalidate_tag("team:1").await.unwrap();
    // One message; B drops one key (the tag copy), not fifty.
    received(&b, 51).await;
    assert!(!in_l1(&b, "cache:t:team:1").await);
    assert!(
        in_l1(&b, "cache:k:m7").await,
        "entries stay, they just miss"
    );
    for i in 0..50 {
        assert_eq!(b.cache.get::<i32>(&format!("m{i}")).await.unwrap(), None);
        assert_eq!(a.cache.get::<i32>(&format!("m{i}")).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_pattern_and_clear_reach_every_l1() {
    let clock = clock();
    let l2: L2 = Arc::new(Faulty::new(memory(&clock)));
    let (a, b) = (server(&l2, &clock).await, server(&l2, &clock).await);
    let keys = ["user:*:a", "user:1:a", "user:2:a", "post:1"];
    for k in keys {
        a.cache.set(k, &k, EntryOptions::new()).await.unwrap();
    }
    received(&b, 4).await;
    for k in keys {
        assert!(b.cache.get::<String>(k).await.unwrap().is_some());
        assert!(in_l1(&b, &format!("cache:k:{k}")).await);
    }
    a.cache.invalidate_prefix("user:*:").await.unwrap();
    received(&b, 5).await;
    assert!(!in_l1(&b, "cache:k:user:*:a").await);
    assert!(
        in_l1(&b, "cache:k:user:1:a").await,
        "`*` in the prefix is literal"
    );

    a.cache
        .invalidate_matching(&format!("user:{}:*", rampart::escape_glob("1")))
        .await
        .unwrap();
    received(&b, 6).await;
    assert!(!in_l1(&b, "cache:k:user:1:a").await);
    assert!(in_l1(&b, "cache:k:user:2:a").await);

    a.cache.clear().await.unwrap();
    received(&b, 7).await;
    for k in keys {
        assert!(!in_l1(&b, &format!("cache:k:{k}")).await);
        assert_eq!(b.cache.get::<String>(k).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_message_is_bounded_by_the_l1_ttl() {
    let clock = clock();
    let l2: L2 = Arc::new(Faulty::new(memory(&clock)));
    let b = server(&l2, &clock).await;
    // A writer that does not broadcast (a one-tier cache on the same L2),
    // standing for a message lost on the wire.
    let silent = Cache::builder(l2.clone())
        .clock(clock.shared())
        .default_ttl(Duration::from_secs(600))
        .build()
        .unwrap();
    silent.set("k", &"old", EntryOptions::new()).await.unwrap();
    assert_eq!(
        b.cache.get::<String>("k").await.unwrap().as_deref(),
        Some("old")
    );
    silent.set("k", &"new", EntryOptions::new()).await.unwrap();
    assert_eq!(
        b.cache.get::<String>("k").await.unwrap().as_deref(),
        Some("old")
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        b.cache.get::<String>("k").await.unwrap().as_deref(),
        Some("new")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_fills_the_l1_and_stats_report_both_tiers() {
    let clock = clock();
    let l2: L2 = Arc::new(Faulty::new(memory(&clock)));
    let a = server(&l2, &clock).await;
    let v: String = a
        .cache
        .get_or_set("k", EntryOptions::new().tag("t"), || async {
            Ok("v".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "v");
    assert!(in_l1(&a, "cache:k:k").await);
    assert!(in_l1(&a, "cache:t:t").await);
    let v: String = a
        .cache
        .get_or_set("k", EntryOptions::new().tag("t"), || async {
            Ok("other".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "v");
    let stats = a.cache.stats().await;
    assert_eq!((stats.l1_hits, stats.loader_calls), (1, 1));
    assert_eq!(stats.l1.unwrap().keys, Some(2));
    assert_eq!(stats.store.unwrap().keys, Some(2));
}

#[tokio::test]
async fn two_tiers_need_pubsub_on_the_l2() {
    #[derive(Debug)]
    struct NoPubSub(MemoryStore);
    #[async_trait::async_trait]
    impl Store for NoPubSub {
        async fn get(&self, k: &Key) -> rampart::Result<Option<rampart::Bytes>> {
            self.0.get(k).await
        }
        async fn set(
            &self,
            k: &Key,
            v: rampart::Bytes,
            t: Option<Duration>,
        ) -> rampart::Result<()> {
            self.0.set(k, v, t).await
        }
        async fn delete(&self, k: &Key) -> rampart::Result<bool> {
            self.0.delete(k).await
        }
        async fn ttl(&self, k: &Key) -> rampart::Result<rampart::KeyTtl> {
            self.0.ttl(k).await
        }
        async fn compare_and_swap(
            &self,
            k: &Key,
            e: Option<&[u8]>,
            n: Option<rampart::Bytes>,
            t: Option<Duration>,
        ) -> rampart::Result<rampart::Swap> {
            self.0.compare_and_swap(k, e, n, t).await
        }
        async fn scan(
            &self,
            p: &str,
            c: &rampart::Cursor,
            n: usize,
        ) -> rampart::Result<rampart::Page> {
            self.0.scan(p, c, n).await
        }
    }
    let e = Cache::builder(NoPubSub(MemoryStore::new()))
        .two_tier(MemoryStore::new(), Duration::from_secs(10))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[test]
fn a_two_tier_cache_needs_a_runtime_for_its_listener() {
    // Outside any runtime the L1 could never hear of invalidations: the
    // build says so instead of quietly running without it.
    let e = Cache::builder(MemoryStore::new())
        .two_tier(MemoryStore::new(), Duration::from_secs(10))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    // A one-tier cache needs no runtime to be built.
    assert!(Cache::builder(MemoryStore::new()).build().is_ok());
}
