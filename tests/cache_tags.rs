//! Tag invalidation (O(1) in the number of entries) and prefix / pattern
//! invalidation with glob characters in user input.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rampart::cache::{Cache, EntryOptions};
use rampart::layers::Prefixed;
use rampart::{escape_glob, ErrorKind, Key, MemoryStore, Store};
use support::{Faulty, Gate};

const TTL: Duration = Duration::from_secs(60);

fn tagged(tags: &[&str]) -> EntryOptions {
    EntryOptions::new().ttl(TTL).tags(tags.iter().copied())
}

async fn tag_invalidation<S: Store + 'static>(store: S) {
    let cache = Cache::builder(store).build().unwrap();
    cache.set("a", &"A", tagged(&["team:1"])).await.unwrap();
    cache
        .set("b", &"B", tagged(&["team:1", "org:9"]))
        .await
        .unwrap();
    cache
        .set("c", &"C", tagged(&["team:2", "org:9"]))
        .await
        .unwrap();
    cache.set("plain", &"P", TTL).await.unwrap();
    let c: String = cache
        .get_or_set("d", tagged(&["team:1"]), || async { Ok("D".to_string()) })
        .await
        .unwrap();
    assert_eq!(c, "D");

    cache.invalidate_tag("team:1").await.unwrap();
    for (key, expect) in [
        ("a", None),
        ("b", None),
        ("c", Some("C")),
        ("d", None),
        ("plain", Some("P")),
    ] {
        assert_eq!(
            cache.get::<String>(key).await.unwrap().as_deref(),
            expect,
            "{key}"
        );
    }
    // get_or_set reloads an invalidated entry.
    let d: String = cache
        .get_or_set("d", tagged(&["team:1"]), || async { Ok("D2".to_string()) })
        .await
        .unwrap();
    assert_eq!(d, "D2");
    assert_eq!(
        cache.get::<String>("d").await.unwrap().as_deref(),
        Some("D2")
    );

    cache.invalidate_tag("org:9").await.unwrap();
    assert_eq!(cache.get::<String>("c").await.unwrap(), None);
    assert_eq!(
        cache.get::<String>("d").await.unwrap().as_deref(),
        Some("D2")
    );
    assert_eq!(cache.counters().tag_invalidations, 2);
}

#[tokio::test]
async fn tags_invalidate_their_entries_memory() {
    tag_invalidation(MemoryStore::new()).await;
}

#[tokio::test]
async fn tags_invalidate_their_entries_moka() {
    tag_invalidation(rampart_moka::MokaStore::new()).await;
}

#[tokio::test]
async fn tags_invalidate_their_entries_prefixed_dyn() {
    let store: Arc<dyn Store> = Arc::new(Prefixed::new(MemoryStore::new(), "app").unwrap());
    tag_invalidation(store).await;
}

#[tokio::test]
async fn invalidating_a_tag_costs_one_write_whatever_the_entry_count() {
    for entries in [1usize, 10, 1_000] {
        let store = Arc::new(Faulty::new(MemoryStore::new()));
        let cache = Cache::builder(store.clone()).build().unwrap();
        for i in 0..entries {
            cache
                .set(&format!("k{i}"), &i, tagged(&["big"]))
                .await
                .unwrap();
        }
        let before = store.calls();
        cache.invalidate_tag("big").await.unwrap();
        assert_eq!(store.calls() - before, 1, "{entries} entries");
        assert_eq!(cache.get::<usize>("k0").await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_tagged_get_or_set_hit_is_one_store_read() {
    let store = Arc::new(Faulty::new(MemoryStore::new()));
    let cache = Cache::builder(store.clone()).build().unwrap();
    let opts = tagged(&["t1", "t2", "t3"]);
    let _: u8 = cache
        .get_or_set("k", opts.clone(), || async { Ok(1u8) })
        .await
        .unwrap();
    let before = store.calls();
    let v: u8 = cache
        .get_or_set("k", opts, || async { Ok(2u8) })
        .await
        .unwrap();
    assert_eq!(v, 1);
    // The entry and its three tag versions come back in one batch read.
    assert_eq!(store.calls() - before, 1);
    // A plain get of a tagged entry: the entry, then its tags' versions.
    let before = store.calls();
    assert_eq!(cache.get::<u8>("k").await.unwrap(), Some(1));
    assert_eq!(store.calls() - before, 2);
}

#[tokio::test]
async fn an_invalidation_during_a_load_makes_the_loaded_entry_miss() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let load = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set("k", tagged(&["t"]), move || async move {
                    g.pass().await;
                    Ok("loaded before the invalidation".to_string())
                })
                .await
        })
    };
    support::until("the loader to start", || cache.counters().loader_calls == 1).await;
    cache.invalidate_tag("t").await.unwrap();
    gate.open();
    // The caller gets its value; the cache does not keep it.
    assert_eq!(
        load.await.unwrap().unwrap(),
        "loaded before the invalidation"
    );
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
}

#[tokio::test]
async fn a_lost_tag_version_never_resurrects_old_entries() {
    let store = Arc::new(MemoryStore::new());
    let cache = Cache::builder(store.clone()).build().unwrap();
    cache.set("k", &1u8, tagged(&["t"])).await.unwrap();
    cache.invalidate_tag("t").await.unwrap();
    // The tag's version key is evicted (or expires): entries recorded under
    // any version still miss; new writes create a fresh version.
    store.delete(&Key::new("cache:t:t").unwrap()).await.unwrap();
    assert_eq!(cache.get::<u8>("k").await.unwrap(), None);
    cache.set("k2", &2u8, tagged(&["t"])).await.unwrap();
    assert_eq!(cache.get::<u8>("k2").await.unwrap(), Some(2));
    assert_eq!(cache.get::<u8>("k").await.unwrap(), None);
    // A corrupt version value is a miss too, then replaced by a write.
    store
        .set(&Key::new("cache:t:t").unwrap(), "not a number".into(), None)
        .await
        .unwrap();
    assert_eq!(cache.get::<u8>("k2").await.unwrap(), None);
    cache.set("k3", &3u8, tagged(&["t"])).await.unwrap();
    assert_eq!(cache.get::<u8>("k3").await.unwrap(), Some(3));
}

#[tokio::test]
async fn bad_tags_are_typed_errors() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    for opts in [
        tagged(&[""]),
        EntryOptions::new().tag("x".repeat(300)),
        EntryOptions::new().tags((0..33).map(|i| format!("t{i}"))),
    ] {
        let e = cache.set("k", &1, opts).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(
        cache.invalidate_tag("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

/// Keys whose user-id part is full of glob characters.
const KEYS: &[&str] = &[
    "user:*:profile",
    "user:*:settings",
    "user:1:profile",
    "user:12:profile",
    "user:?:profile",
    "user:[1]:profile",
    "user:\\:profile",
    "userx:1",
];

async fn fill(cache: &Cache<MemoryStore>) {
    for k in KEYS {
        cache.set(k, k, TTL).await.unwrap();
    }
}

async fn left(cache: &Cache<MemoryStore>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for k in KEYS {
        if cache.get::<String>(k).await.unwrap().is_some() {
            out.push(*k);
        }
    }
    out
}

#[tokio::test]
async fn prefix_invalidation_takes_user_input_literally() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    for (user_id, deleted) in [
        ("*", vec!["user:*:profile", "user:*:settings"]),
        ("?", vec!["user:?:profile"]),
        ("[1]", vec!["user:[1]:profile"]),
        ("\\", vec!["user:\\:profile"]),
        ("1", vec!["user:1:profile"]),
    ] {
        fill(&cache).await;
        let n = cache
            .invalidate_prefix(&format!("user:{user_id}:"))
            .await
            .unwrap();
        assert_eq!(n as usize, deleted.len(), "user id {user_id:?}");
        let expect: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|k| !deleted.contains(k))
            .collect();
        assert_eq!(left(&cache).await, expect, "user id {user_id:?}");
    }
}

#[tokio::test]
async fn pattern_invalidation_with_escaped_user_input() {
    let cache = Cache::builder(MemoryStore::new()).build().unwrap();
    for (user_id, deleted) in [
        ("*", vec!["user:*:profile", "user:*:settings"]),
        ("?", vec!["user:?:profile"]),
        ("[1]", vec!["user:[1]:profile"]),
        ("\\", vec!["user:\\:profile"]),
    ] {
        fill(&cache).await;
        let pattern = format!("user:{}:*", escape_glob(user_id));
        let n = cache.invalidate_matching(&pattern).await.unwrap();
        assert_eq!(n as usize, deleted.len(), "user id {user_id:?}");
        let expect: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|k| !deleted.contains(k))
            .collect();
        assert_eq!(left(&cache).await, expect, "user id {user_id:?}");
    }
    // The pattern's own wildcards still work.
    fill(&cache).await;
    assert_eq!(
        cache.invalidate_matching("user:1*:profile").await.unwrap(),
        2
    );
    assert_eq!(cache.invalidate_matching("*:settings").await.unwrap(), 1);
    assert_eq!(cache.clear().await.unwrap(), (KEYS.len() - 3) as u64);
    assert!(left(&cache).await.is_empty());
    assert_eq!(cache.counters().deletes, 5 + 3 + (KEYS.len() as u64 - 3));
}

#[tokio::test]
async fn invalidation_stays_inside_the_namespace() {
    let store = Arc::new(MemoryStore::new());
    let a = Cache::builder(store.clone())
        .namespace("a")
        .build()
        .unwrap();
    let b = Cache::builder(store.clone())
        .namespace("b")
        .build()
        .unwrap();
    a.set("k", &1, TTL).await.unwrap();
    b.set("k", &2, TTL).await.unwrap();
    assert_eq!(a.clear().await.unwrap(), 1);
    assert_eq!(a.get::<i32>("k").await.unwrap(), None);
    assert_eq!(b.get::<i32>("k").await.unwrap(), Some(2));
    assert_eq!(b.invalidate_matching("*").await.unwrap(), 1);
    assert!(store
        .get(&Key::new("b:k:k").unwrap())
        .await
        .unwrap()
        .is_none());
}
