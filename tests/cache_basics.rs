//! Typed get/set/delete/exists/ttl, TTLs and jitter, namespaces, codecs,
//! compression, negative caching, stats and input validation.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::cache::{Cache, EntryOptions};
use rampart::{ErrorKind, Key, KeyTtl, MemoryStore, MsgPack, Store};
use support::{clock, memory};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    items: Vec<String>,
    total_cents: i64,
    note: Option<String>,
}

fn order(id: u64) -> Order {
    Order {
        id,
        items: vec!["tea".into(), "scone".into()],
        total_cents: 1_250,
        note: None,
    }
}

#[tokio::test]
async fn typed_round_trips_with_ttls() {
    let clock = clock();
    let cache = Cache::builder(memory(&clock))
        .clock(clock.shared())
        .default_ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    assert_eq!(cache.get::<Order>("o:1").await.unwrap(), None);
    assert!(!cache.exists("o:1").await.unwrap());
    assert_eq!(cache.ttl("o:1").await.unwrap(), KeyTtl::Missing);

    cache
        .set("o:1", &order(1), EntryOptions::new())
        .await
        .unwrap();
    cache
        .set("o:2", &order(2), Duration::from_secs(5))
        .await
        .unwrap();
    cache
        .set("o:3", &order(3), EntryOptions::new().no_expiry())
        .await
        .unwrap();
    assert_eq!(cache.get::<Order>("o:1").await.unwrap(), Some(order(1)));
    assert!(cache.exists("o:2").await.unwrap());
    assert_eq!(
        cache.ttl("o:1").await.unwrap(),
        KeyTtl::Expires(Duration::from_secs(30))
    );
    assert_eq!(
        cache.ttl("o:2").await.unwrap(),
        KeyTtl::Expires(Duration::from_secs(5))
    );
    assert_eq!(cache.ttl("o:3").await.unwrap(), KeyTtl::Persistent);

    clock.advance(Duration::from_secs(5));
    assert_eq!(cache.get::<Order>("o:2").await.unwrap(), None);
    assert!(cache.exists("o:1").await.unwrap());
    clock.advance(Duration::from_secs(25));
    assert_eq!(cache.get::<Order>("o:1").await.unwrap(), None);
    clock.advance(Duration::from_secs(1_000_000));
    assert_eq!(cache.get::<Order>("o:3").await.unwrap(), Some(order(3)));

    assert!(cache.delete("o:3").await.unwrap());
    assert!(!cache.delete("o:3").await.unwrap());
    assert_eq!(cache.get::<Order>("o:3").await.unwrap(), None);
    let c = cache.counters();
    assert_eq!((c.sets, c.deletes), (3, 1));
}

#[tokio::test]
async fn jitter_shortens_ttls_within_bounds() {
    let clock = clock();
    let cache = Cache::builder(memory(&clock))
        .clock(clock.shared())
        .default_ttl(Duration::from_secs(100))
        .jitter(0.2)
        .build()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..500 {
        let key = format!("k{i}");
        cache.set(&key, &i, EntryOptions::new()).await.unwrap();
        let KeyTtl::Expires(ttl) = cache.ttl(&key).await.unwrap() else {
            panic!("{key} has no TTL");
        };
        assert!(
            ttl >= Duration::from_secs(80) && ttl <= Duration::from_secs(100),
            "{key}: {ttl:?} outside [80s, 100s]"
        );
        seen.insert(ttl.as_secs());
    }
    // Spread over the window, not clumped at one end.
    assert!(seen.contains(&80) || seen.contains(&81), "{seen:?}");
    assert!(seen.contains(&99) || seen.contains(&98), "{seen:?}");
    assert!(seen.len() >= 15, "{seen:?}");

    for ratio in [1.0, -0.1, f64::NAN, 7.0] {
        let e = Cache::builder(MemoryStore::new())
            .jitter(ratio)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{ratio}");
    }
}

#[tokio::test]
async fn namespaces_keep_caches_apart() {
    let store = Arc::new(MemoryStore::new());
    let users = Cache::builder(store.clone())
        .namespace("users")
        .build()
        .unwrap();
    let orders = Cache::builder(store.clone())
        .namespace("orders")
        .build()
        .unwrap();
    users
        .set("1", &"ada", Duration::from_secs(60))
        .await
        .unwrap();
    orders
        .set("1", &order(1), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        users.get::<String>("1").await.unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(orders.get::<Order>("1").await.unwrap(), Some(order(1)));
    assert!(store
        .get(&Key::new("users:k:1").unwrap())
        .await
        .unwrap()
        .is_some());
    assert_eq!(users.namespace(), "users");
    for bad in ["", "a*", "b{c}"] {
        let e = Cache::builder(MemoryStore::new())
            .namespace(bad)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey, "{bad:?}");
    }
}

#[tokio::test]
async fn msgpack_and_compression_shrink_what_is_stored() {
    let big = Order {
        note: Some("a long note that repeats. ".repeat(200)),
        ..order(9)
    };
    let ttl = Duration::from_secs(60);
    let stored = |store: Arc<MemoryStore>| async move {
        let raw = store.get(&Key::new("cache:k:o").unwrap()).await.unwrap();
        raw.unwrap().len()
    };

    let store = Arc::new(MemoryStore::new());
    let json = Cache::builder(store.clone()).build().unwrap();
    json.set("o", &big, ttl).await.unwrap();
    assert_eq!(json.get::<Order>("o").await.unwrap(), Some(big.clone()));
    let json_len = stored(store).await;

    let store = Arc::new(MemoryStore::new());
    let msgpack = Cache::builder(store.clone())
        .codec(MsgPack)
        .build()
        .unwrap();
    msgpack.set("o", &order(1), ttl).await.unwrap();
    assert_eq!(msgpack.get::<Order>("o").await.unwrap(), Some(order(1)));
    let msgpack_small = stored(store.clone()).await;
    json.set("small", &order(1), ttl).await.unwrap();
    let raw = json
        .store()
        .get(&Key::new("cache:k:small").unwrap())
        .await
        .unwrap();
    assert!(
        msgpack_small < raw.unwrap().len(),
        "MessagePack is smaller than JSON"
    );

    let store = Arc::new(MemoryStore::new());
    let compressed = Cache::builder(store.clone())
        .compress_above(1_024)
        .build()
        .unwrap();
    compressed.set("o", &big, ttl).await.unwrap();
    compressed.set("small", &order(1), ttl).await.unwrap();
    assert_eq!(compressed.get::<Order>("o").await.unwrap(), Some(big));
    assert_eq!(
        compressed.get::<Order>("small").await.unwrap(),
        Some(order(1))
    );
    let compressed_len = stored(store).await;
    assert!(
        compressed_len * 5 < json_len,
        "compressed {compressed_len} vs JSON {json_len}"
    );
}

#[tokio::test]
async fn not_found_is_cached_for_the_negative_ttl() {
    let clock = clock();
    let cache = Cache::builder(memory(&clock))
        .clock(clock.shared())
        .negative_ttl(Duration::from_secs(10))
        .build()
        .unwrap();
    let lookups = Arc::new(AtomicU64::new(0));
    let find = |lookups: Arc<AtomicU64>| {
        move || async move {
            lookups.fetch_add(1, Ordering::SeqCst);
            Ok(None::<Order>)
        }
    };
    for _ in 0..3 {
        let found = cache
            .get_or_set_optional("order:404", EntryOptions::new(), find(lookups.clone()))
            .await
            .unwrap();
        assert_eq!(found, None);
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get::<Order>("order:404").await.unwrap(), None);
    assert!(!cache.exists("order:404").await.unwrap());
    clock.advance(Duration::from_secs(10));
    let _ = cache
        .get_or_set_optional("order:404", EntryOptions::new(), find(lookups.clone()))
        .await
        .unwrap();
    assert_eq!(lookups.load(Ordering::SeqCst), 2);
    // A non-optional loader is not answered by a negative entry.
    let found: Order = cache
        .get_or_set("order:404", EntryOptions::new(), || async {
            Ok(order(404))
        })
        .await
        .unwrap();
    assert_eq!(found, order(404));

    // Without a negative TTL, "not found" is not cached.
    let plain = Cache::builder(MemoryStore::new()).build().unwrap();
    for _ in 0..2 {
        let _ = plain
            .get_or_set_optional("x", EntryOptions::new(), find(lookups.clone()))
            .await
            .unwrap();
    }
    assert_eq!(lookups.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn stats_count_and_include_the_store() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    let ttl = Duration::from_secs(60);
    for i in 0..4 {
        let _: u32 = cache
            .get_or_set("a", ttl, move || async move { Ok(i) })
            .await
            .unwrap();
    }
    let _ = cache.get::<u32>("missing").await.unwrap();
    let stats = cache.stats().await;
    assert_eq!(
        (stats.hits, stats.misses, stats.loader_calls, stats.sets),
        (3, 2, 1, 1)
    );
    assert_eq!(stats.hit_rate(), Some(0.6));
    let store = stats.store.expect("the memory store reports itself");
    assert_eq!(store.keys, Some(1));
    assert!(store.memory_bytes.unwrap() > 0);
    assert_eq!(stats.l1, None);
    assert_eq!(cache.counters().store, None);
}

#[tokio::test]
async fn bad_input_is_typed_errors() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    assert_eq!(
        cache.get::<u8>("").await.unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    let long = "k".repeat(2_000);
    assert_eq!(
        cache.get::<u8>(&long).await.unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    let e = cache.set("k", &1, Duration::ZERO).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = cache
        .set("k", &1, Duration::from_secs(200 * 365 * 24 * 3600))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = cache
        .get_or_set("k", Duration::ZERO, || async { Ok(1u8) })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = cache
        .invalidate_matching(&"*".repeat(2_000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = Cache::builder(MemoryStore::new())
        .default_ttl(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // Nothing was written by the failed calls.
    assert_eq!(cache.stats().await.store.unwrap().keys, Some(0));
}

#[tokio::test]
async fn on_the_system_clock_entries_expire_with_their_store_ttl() {
    // No injected clock: freshness without a grace period is the store's
    // own expiry (the hot path reads no clock); with a grace period the
    // envelope decides. Time really passes here; nothing is timed.
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    cache
        .set("short", &1u8, Duration::from_millis(20))
        .await
        .unwrap();
    cache
        .set(
            "swr",
            &1u8,
            EntryOptions::new()
                .ttl(Duration::from_millis(20))
                .grace(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    cache
        .set("long", &1u8, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get::<u8>("short").await.unwrap(), Some(1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(cache.get::<u8>("short").await.unwrap(), None);
    assert_eq!(
        cache.get::<u8>("swr").await.unwrap(),
        None,
        "stale: not served by get"
    );
    assert!(cache.store().len() >= 2, "the stale entry is still stored");
    assert_eq!(cache.get::<u8>("long").await.unwrap(), Some(1));
}
