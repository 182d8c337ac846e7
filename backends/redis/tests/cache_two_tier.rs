//! The cache over a real redis-server (and a 3-master Cluster): two-tier
//! invalidation between two cache instances, each with its own connection
//! and L1, as two app servers would run; the documented round trips;
//! coalescing, SWR, tags and glob-safe deletes; and the L1 listener
//! resubscribing after Redis restarts.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::cache::{Cache, EntryOptions};
use rampart::{escape_glob, Key, ManualClock, MemoryStore, Store, Timestamp};
use rampart_redis::RedisStore;

const TTL: Duration = Duration::from_secs(600);

/// Waits until `cond` holds (1 ms steps, at most ~10 s; not a timing
/// assertion, only a bound on how long a broken test hangs).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("gave up waiting for: {what}");
}

/// `calls=` of one command in `INFO commandstats`.
fn calls(server: &common::Server, command: &str) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("cmdstat_{command}:calls="))
                .map(|r| r.split(',').next().unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

struct App {
    cache: Cache<RedisStore>,
    l1: Arc<MemoryStore>,
}

impl App {
    async fn start(server: &common::Server) -> App {
        let l1 = Arc::new(MemoryStore::new());
        let cache = Cache::builder(server.store())
            .default_ttl(TTL)
            .two_tier(l1.clone(), Duration::from_secs(60))
            .build()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), cache.ready())
            .await
            .expect("subscribed")
            .unwrap();
        App { cache, l1 }
    }

    async fn in_l1(&self, key: &str) -> bool {
        self.l1
            .get(&Key::new(key).unwrap())
            .await
            .unwrap()
            .is_some()
    }

    async fn received(&self, n: u64) {
        until(&format!("{n} invalidations applied"), || {
            self.cache.counters().l1_invalidations >= n
        })
        .await;
        assert_eq!(self.cache.counters().l1_invalidations, n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_app_servers_invalidate_each_others_l1_over_redis() {
    let server = common::Server::start();
    let (a, b) = (App::start(&server).await, App::start(&server).await);

    a.cache.set("user:1", &"Ada", TTL).await.unwrap();
    b.received(1).await;
    assert_eq!(
        b.cache.get::<String>("user:1").await.unwrap().as_deref(),
        Some("Ada")
    );
    assert!(b.in_l1("cache:k:user:1").await);
    let gets = calls(&server, "get");
    for _ in 0..10 {
        assert_eq!(
            b.cache.get::<String>("user:1").await.unwrap().as_deref(),
            Some("Ada")
        );
    }
    assert_eq!(calls(&server, "get"), gets, "L1 hits send nothing to Redis");

    a.cache.set("user:1", &"Grace", TTL).await.unwrap();
    b.received(2).await;
    assert!(!b.in_l1("cache:k:user:1").await);
    assert_eq!(
        b.cache.get::<String>("user:1").await.unwrap().as_deref(),
        Some("Grace")
    );

    // Tags: one SET on Redis, one message, one key dropped per L1.
    let team = EntryOptions::new().ttl(TTL).tag("team:7");
    for i in 0..20 {
        a.cache
            .set(&format!("member:{i}"), &i, team.clone())
            .await
            .unwrap();
    }
    b.received(22).await;
    for i in 0..20 {
        assert_eq!(
            b.cache.get::<i32>(&format!("member:{i}")).await.unwrap(),
            Some(i)
        );
    }
    let sets = calls(&server, "set");
    a.cache.invalidate_tag("team:7").await.unwrap();
    assert_eq!(calls(&server, "set") - sets, 1);
    b.received(23).await;
    for i in 0..20 {
        assert_eq!(
            b.cache.get::<i32>(&format!("member:{i}")).await.unwrap(),
            None
        );
    }

    // Deletes by key and by prefix with a glob character in the user id.
    a.cache.set("user:*:x", &1, TTL).await.unwrap();
    a.cache.set("user:2:x", &2, TTL).await.unwrap();
    b.received(25).await;
    assert!(b.cache.get::<i32>("user:*:x").await.unwrap().is_some());
    assert!(b.cache.get::<i32>("user:2:x").await.unwrap().is_some());
    assert_eq!(a.cache.invalidate_prefix("user:*:").await.unwrap(), 1);
    b.received(26).await;
    assert_eq!(b.cache.get::<i32>("user:*:x").await.unwrap(), None);
    assert_eq!(b.cache.get::<i32>("user:2:x").await.unwrap(), Some(2));
    b.cache.delete("user:2:x").await.unwrap();
    a.received(1).await;
    assert_eq!(a.cache.get::<i32>("user:2:x").await.unwrap(), None);

    let stats = b.cache.stats().await;
    assert!(stats.store.unwrap().server.unwrap().starts_with("redis "));
    assert!(stats.l1_hits >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_l1_listener_resubscribes_after_redis_restarts() {
    let mut server = common::Server::start();
    let (a, b) = (App::start(&server).await, App::start(&server).await);
    a.cache.set("k", &1, TTL).await.unwrap();
    b.received(1).await;
    assert_eq!(b.cache.get::<i32>("k").await.unwrap(), Some(1));

    server.restart();
    // Messages sent before B has resubscribed are lost, so keep writing
    // until one arrives: B is then subscribed again, with a cleared L1.
    let mut i = 2;
    loop {
        match a.cache.set("k", &i, TTL).await {
            Ok(()) if b.cache.counters().l1_invalidations >= 2 => break,
            _ => {}
        }
        i += 1;
        assert!(i < 5_000, "B never resubscribed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // B's command connection notices the restart on its first use (one
    // temporary error) and reconnects by itself.
    let mut now = None;
    for _ in 0..1_000 {
        match b.cache.get::<i32>("k").await {
            Ok(v) => {
                now = v;
                break;
            }
            Err(e) => assert!(e.is_temporary(), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let now = now.expect("B reads the current value");
    assert!(
        now >= i - 1,
        "B serves a current value, not its pre-restart L1: {now} vs {i}"
    );
}

/// Commands Redis executed for clients, from `INFO commandstats` (the
/// `INFO` readings themselves left out).
fn commands(server: &common::Server) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coalescing_and_round_trips_over_redis() {
    let server = common::Server::start();
    let cache = Cache::builder(server.store()).build().unwrap();
    let loads = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let opts = EntryOptions::new().tags(["a", "b"]);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (cache, loads, gate, opts) = (cache.clone(), loads.clone(), gate.clone(), opts.clone());
        tasks.spawn(async move {
            cache
                .get_or_set("hot", opts, move || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    drop(gate.acquire().await.unwrap());
                    Ok("value".to_string())
                })
                .await
                .unwrap()
        });
    }
    until("100 misses in one flight", || {
        let c = cache.counters();
        c.misses == 100 && c.coalesced == 99
    })
    .await;
    gate.add_permits(1);
    while let Some(v) = tasks.join_next().await {
        assert_eq!(v.unwrap(), "value");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.counters().loader_calls, 1);

    // A tagged get_or_set hit: one MGET (entry + tag versions), nothing else.
    let (mget, before) = (calls(&server, "mget"), commands(&server));
    let v: String = cache
        .get_or_set("hot", opts, || async { Ok("other".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "value");
    assert_eq!(calls(&server, "mget") - mget, 1);
    assert_eq!(commands(&server) - before, 1);

    // An untagged hit: one GET.
    cache.set("plain", &1, TTL).await.unwrap();
    let (get, before) = (calls(&server, "get"), commands(&server));
    assert_eq!(cache.get::<i32>("plain").await.unwrap(), Some(1));
    assert_eq!(calls(&server, "get") - get, 1);
    assert_eq!(commands(&server) - before, 1);
}

#[tokio::test]
async fn swr_tags_and_corrupt_values_over_redis() {
    let server = common::Server::start();
    let store = server.store();
    // Freshness follows the cache's manual clock; Redis keeps the entry
    // for fresh + grace in real time, far longer than the test runs.
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let cache = Cache::builder(server.store())
        .clock(clock.shared())
        .default_ttl(Duration::from_secs(10))
        .stale_while_revalidate(Duration::from_secs(600))
        .build()
        .unwrap();
    let _: String = cache
        .get_or_set("k", EntryOptions::new().tag("t"), || async {
            Ok("v1".to_string())
        })
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    let refreshes = Arc::new(AtomicU64::new(0));
    for _ in 0..5 {
        let r = refreshes.clone();
        let v: String = cache
            .get_or_set("k", EntryOptions::new().tag("t"), move || async move {
                r.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok("v2".to_string())
            })
            .await
            .unwrap();
        assert_eq!(v, "v1");
    }
    until("the refresh", || cache.counters().refreshes == 1).await;
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v2")
    );
    cache.invalidate_tag("t").await.unwrap();
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);

    // Bytes that are not an entry: a miss, counted, then overwritten.
    server.cli(&["SET", "cache:k:junk", "\u{1}\u{2}not an entry"]);
    assert_eq!(cache.get::<String>("junk").await.unwrap(), None);
    assert_eq!(cache.counters().corrupt, 1);
    let v: String = cache
        .get_or_set("junk", EntryOptions::new(), || async {
            Ok("fixed".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "fixed");
    assert!(store
        .get(&Key::new("cache:k:junk").unwrap())
        .await
        .unwrap()
        .unwrap()
        .starts_with(&[0xCA, 1]));
    // A hostile user id in a pattern deletes only its own keys.
    cache.set("u:*:a", &1, TTL).await.unwrap();
    cache.set("u:1:a", &1, TTL).await.unwrap();
    let pattern = format!("u:{}:*", escape_glob("*"));
    assert_eq!(cache.invalidate_matching(&pattern).await.unwrap(), 1);
    assert_eq!(cache.get::<i32>("u:1:a").await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_two_tiers_on_a_cluster() {
    let cluster = common::Cluster::start();
    let l1 = || Arc::new(MemoryStore::new());
    let a = Cache::builder(cluster.store())
        .two_tier(l1(), Duration::from_secs(60))
        .build()
        .unwrap();
    let b_l1 = l1();
    let b = Cache::builder(cluster.store())
        .two_tier(b_l1.clone(), Duration::from_secs(60))
        .build()
        .unwrap();
    for cache in [&a, &b] {
        tokio::time::timeout(Duration::from_secs(10), cache.ready())
            .await
            .expect("subscribed")
            .unwrap();
    }
    // Entry and tag keys land in different slots: the MGET is split.
    let opts = EntryOptions::new().ttl(TTL).tags(["x", "y", "z"]);
    for i in 0..10 {
        let v: i32 = a
            .get_or_set(&format!("k{i}"), opts.clone(), move || async move { Ok(i) })
            .await
            .unwrap();
        assert_eq!(v, i);
    }
    for i in 0..10 {
        assert_eq!(b.get::<i32>(&format!("k{i}")).await.unwrap(), Some(i));
    }
    a.invalidate_tag("y").await.unwrap();
    until("B applied the tag invalidation", || {
        b.counters().l1_invalidations >= 1
    })
    .await;
    for i in 0..10 {
        assert_eq!(b.get::<i32>(&format!("k{i}")).await.unwrap(), None);
    }
    assert_eq!(a.invalidate_prefix("k").await.unwrap(), 10);
}
