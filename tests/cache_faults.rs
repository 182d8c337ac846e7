//! Graceful degradation when the store fails, and corrupt stored values.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rampart::cache::{Cache, EntryOptions};
use rampart::layers::Fallback;
use rampart::{Bytes, ErrorKind, Json, Key, MemoryStore, MsgPack, Store};
use support::Faulty;

const TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
}

fn ada() -> User {
    User {
        id: 1,
        name: "Ada".into(),
    }
}

#[tokio::test]
async fn a_down_store_still_returns_the_loaders_value() {
    let store = Arc::new(Faulty::new(MemoryStore::new()));
    let cache = Cache::builder(store.clone()).build().unwrap();
    store.set_down(true);
    for round in 1..=3u64 {
        let user: User = cache
            .get_or_set("user:1", TTL, || async { Ok(ada()) })
            .await
            .unwrap();
        assert_eq!(user, ada());
        let c = cache.counters();
        assert_eq!(c.loader_calls, round, "nothing can be cached while down");
        assert_eq!(c.errors, 2 * round, "the failed read and the failed write");
    }
    // Explicit operations report the outage, typed.
    for e in [
        cache.get::<User>("user:1").await.unwrap_err(),
        cache.set("user:1", &ada(), TTL).await.unwrap_err(),
        cache.delete("user:1").await.map(drop).unwrap_err(),
        cache.invalidate_tag("t").await.unwrap_err(),
        cache
            .invalidate_prefix("user:")
            .await
            .map(drop)
            .unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_temporary());
        assert!(
            e.operation().is_some_and(|op| op.starts_with("cache.")),
            "{e}"
        );
    }
    assert_eq!(cache.stats().await.store, None);

    // Back up: the next call caches, the one after hits.
    store.set_down(false);
    let _: User = cache
        .get_or_set("user:1", TTL, || async { Ok(ada()) })
        .await
        .unwrap();
    let _: User = cache
        .get_or_set("user:1", TTL, || async { Ok(ada()) })
        .await
        .unwrap();
    assert_eq!(cache.counters().loader_calls, 4);
    assert_eq!(cache.counters().hits, 1);
}

#[tokio::test]
async fn failing_writes_or_tag_reads_still_return_the_value() {
    let store = Arc::new(Faulty::new(MemoryStore::new()));
    let cache = Cache::builder(store.clone()).build().unwrap();
    store.writes_down.store(true, Ordering::SeqCst);
    let v: u32 = cache
        .get_or_set("k", EntryOptions::new().tag("t"), || async { Ok(7u32) })
        .await
        .unwrap();
    assert_eq!(v, 7);
    assert!(cache.counters().errors >= 1);
    store.writes_down.store(false, Ordering::SeqCst);
    store.reads_down.store(true, Ordering::SeqCst);
    let v: u32 = cache
        .get_or_set("k", EntryOptions::new().tag("t"), || async { Ok(8u32) })
        .await
        .unwrap();
    assert_eq!(v, 8);
}

#[tokio::test]
async fn over_a_fallback_store_the_cache_keeps_caching_during_an_outage() {
    let primary = Arc::new(Faulty::new(MemoryStore::new()));
    let cache = Cache::builder(Fallback::new(primary.clone(), MemoryStore::new()))
        .build()
        .unwrap();
    primary.set_down(true);
    for _ in 0..3 {
        let v: u32 = cache
            .get_or_set("k", TTL, || async { Ok(1u32) })
            .await
            .unwrap();
        assert_eq!(v, 1);
    }
    assert_eq!(
        cache.counters().loader_calls,
        1,
        "cached in the insurance store"
    );
    assert_eq!(cache.counters().errors, 0);
}

async fn put_raw<S: Store>(store: &S, key: &str, raw: &[u8]) {
    store
        .set(&Key::new(key).unwrap(), Bytes::copy_from_slice(raw), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn corrupt_values_are_misses_that_get_overwritten() {
    let store = Arc::new(MemoryStore::new());
    let cache = Cache::builder(store.clone()).build().unwrap();
    let valid = {
        cache.set("probe", &ada(), TTL).await.unwrap();
        store
            .get(&Key::new("cache:k:probe").unwrap())
            .await
            .unwrap()
            .unwrap()
    };
    let junk: Vec<Vec<u8>> = vec![
        b"\x00\xffgarbage".to_vec(),
        b"{\"id\":1,\"name\":\"raw json, no envelope\"}".to_vec(),
        valid[..valid.len() - 3].to_vec(), // truncated value
        valid[..10].to_vec(),              // truncated header
        [&valid[..2], &[0xF0], &valid[3..]].concat(), // unknown flags
        Vec::new(),
    ];
    for (i, raw) in junk.iter().enumerate() {
        let key = format!("user:{i}");
        put_raw(&*store, &format!("cache:k:{key}"), raw).await;
        let before = cache.counters().corrupt;
        assert_eq!(cache.get::<User>(&key).await.unwrap(), None, "case {i}");
        assert!(!cache.exists(&key).await.unwrap());
        assert_eq!(cache.counters().corrupt, before + 2, "case {i}");
        // get_or_set loads and overwrites it.
        let user: User = cache
            .get_or_set(&key, TTL, || async { Ok(ada()) })
            .await
            .unwrap();
        assert_eq!(user, ada());
        assert_eq!(
            cache.get::<User>(&key).await.unwrap(),
            Some(ada()),
            "case {i}"
        );
    }
    assert_eq!(cache.counters().loader_calls, junk.len() as u64);
}

#[tokio::test]
async fn a_value_of_another_type_or_codec_is_a_miss() {
    let store = Arc::new(MemoryStore::new());
    let json = Cache::builder(store.clone()).build().unwrap();
    let msgpack = Cache::builder(store.clone())
        .codec(MsgPack)
        .build()
        .unwrap();
    json.set("n", &42u64, TTL).await.unwrap();
    // Another type: a miss, counted, then overwritten by get_or_set.
    assert_eq!(json.get::<User>("n").await.unwrap(), None);
    assert_eq!(json.counters().corrupt, 1);
    // Another codec: never decoded as MessagePack (JSON `42` would be).
    assert_eq!(msgpack.get::<u64>("n").await.unwrap(), None);
    assert_eq!(msgpack.counters().corrupt, 1);
    let v: u64 = msgpack
        .get_or_set("n", TTL, || async { Ok(7u64) })
        .await
        .unwrap();
    assert_eq!(v, 7);
    assert_eq!(msgpack.get::<u64>("n").await.unwrap(), Some(7));
    assert_eq!(json.get::<u64>("n").await.unwrap(), None);
    let _ = Json; // the default codec, named for the reader
}

#[tokio::test]
async fn values_the_codec_cannot_encode_are_typed_errors() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    // JSON object keys must be strings.
    let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let e = cache.set("k", &map, TTL).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = cache
        .get_or_set("k", TTL, move || async move { Ok(map) })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
