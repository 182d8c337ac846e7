//! Behavior of the layers beyond the conformance suite.

use std::time::Duration;

use rampart::layers::{Fallback, FallbackState, Prefixed};
use rampart::{
    Bytes, Cursor, ErrorKind, Key, ManualClock, MemoryStore, Store, Timestamp, MAX_KEY_LEN,
};
use rampart_mock::FaultyStore;

#[tokio::test]
async fn fallback_switches_on_outage_and_recovers() {
    let clock = ManualClock::new(Timestamp::from_secs(100));
    let primary = FaultyStore::new(MemoryStore::new()).with_error(ErrorKind::Timeout);
    let store = Fallback::new(primary, MemoryStore::new())
        .retry_after(Duration::from_secs(1))
        .with_clock(clock.shared());
    let k = Key::new("k").unwrap();
    store.set(&k, "primary".into(), None).await.unwrap();
    assert_eq!(store.state(), FallbackState::Primary);

    store.primary().break_now();
    // The failing call itself is answered by the insurance store.
    store.set(&k, "insurance".into(), None).await.unwrap();
    assert!(matches!(store.state(), FallbackState::Insurance { .. }));
    assert_eq!(store.switches(), 1);
    let calls = store.primary().calls();
    // While down, the primary is not even tried.
    for _ in 0..10 {
        assert_eq!(
            store.get(&k).await.unwrap().as_deref(),
            Some(&b"insurance"[..])
        );
    }
    assert_eq!(store.primary().calls(), calls);

    // It comes back; after retry_after the next call probes it and stays.
    store.primary().heal();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.get(&k).await.unwrap().as_deref(),
        Some(&b"primary"[..])
    );
    assert_eq!(store.state(), FallbackState::Primary);
    assert_eq!(store.switches(), 1);
}

#[tokio::test]
async fn fallback_passes_real_errors_through() {
    let primary = FaultyStore::new(MemoryStore::new()).with_error(ErrorKind::CorruptData);
    let store = Fallback::new(primary, MemoryStore::new());
    store.primary().break_now();
    let e = store.get(&Key::new("k").unwrap()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert_eq!(store.state(), FallbackState::Primary);
}

#[tokio::test]
async fn prefixed_namespaces_do_not_collide() {
    let shared = std::sync::Arc::new(MemoryStore::new());
    let a = Prefixed::new(shared.clone(), "a").unwrap();
    let b = Prefixed::new(shared.clone(), "b:").unwrap();
    assert_eq!(b.prefix(), "b:");
    let k = Key::new("same").unwrap();
    a.set(&k, "from a".into(), None).await.unwrap();
    b.set(&k, "from b".into(), None).await.unwrap();
    assert_eq!(a.get(&k).await.unwrap().as_deref(), Some(&b"from a"[..]));
    let page = a.scan("", &Cursor::start(), 10).await.unwrap();
    assert_eq!(page.keys, vec![k.clone()]);
    assert_eq!(shared.len(), 2);
    // A key that fits alone but not with the prefix is refused, typed.
    let long = Key::new("x".repeat(MAX_KEY_LEN)).unwrap();
    assert_eq!(
        a.get(&long).await.unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        Prefixed::new(MemoryStore::new(), "").unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
}

#[tokio::test]
async fn corrupt_stored_values_are_typed_errors() {
    use rampart::{Codec, Json};
    let store = MemoryStore::new();
    let k = Key::new("user:1").unwrap();
    store
        .set(&k, Bytes::from_static(b"\x00\xffgarbage"), None)
        .await
        .unwrap();
    let raw = store.get(&k).await.unwrap().unwrap();
    let e = Json
        .decode::<std::collections::HashMap<String, u32>>(&raw)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    let e = store.increment(&k, 1, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptData);
    assert_eq!(e.key(), Some("user:1"));
}
