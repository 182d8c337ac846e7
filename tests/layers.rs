//! Behavior of the layers beyond the conformance suite.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rampart::layers::{Fallback, FallbackState, Prefixed};
use rampart::{
    Bytes, Cursor, Error, ErrorKind, Key, KeyTtl, ManualClock, MemoryStore, Page, Result, Store,
    Swap, Timestamp, MAX_KEY_LEN,
};

/// A memory store that can be switched off, counting the calls it gets.
#[derive(Debug, Default)]
struct Switchable {
    inner: MemoryStore,
    down: AtomicBool,
    corrupt: AtomicBool,
    calls: AtomicU64,
}

impl Switchable {
    fn check(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::timeout("no answer"));
        }
        if self.corrupt.load(Ordering::SeqCst) {
            return Err(Error::corrupt("bad bytes"));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Switchable {
    async fn get(&self, k: &Key) -> Result<Option<Bytes>> {
        self.check()?;
        self.inner.get(k).await
    }
    async fn set(&self, k: &Key, v: Bytes, t: Option<Duration>) -> Result<()> {
        self.check()?;
        self.inner.set(k, v, t).await
    }
    async fn delete(&self, k: &Key) -> Result<bool> {
        self.check()?;
        self.inner.delete(k).await
    }
    async fn ttl(&self, k: &Key) -> Result<KeyTtl> {
        self.check()?;
        self.inner.ttl(k).await
    }
    async fn compare_and_swap(
        &self,
        k: &Key,
        e: Option<&[u8]>,
        n: Option<Bytes>,
        t: Option<Duration>,
    ) -> Result<Swap> {
        self.check()?;
        self.inner.compare_and_swap(k, e, n, t).await
    }
    async fn scan(&self, p: &str, c: &Cursor, n: usize) -> Result<Page> {
        self.check()?;
        self.inner.scan(p, c, n).await
    }
}

#[tokio::test]
async fn fallback_switches_on_outage_and_recovers() {
    let clock = ManualClock::new(Timestamp::from_secs(100));
    let store = Fallback::new(Switchable::default(), MemoryStore::new())
        .retry_after(Duration::from_secs(1))
        .with_clock(clock.shared());
    let k = Key::new("k").unwrap();
    store.set(&k, "primary".into(), None).await.unwrap();
    assert_eq!(store.state(), FallbackState::Primary);

    store.primary().down.store(true, Ordering::SeqCst);
    // The failing call itself is answered by the insurance store.
    store.set(&k, "insurance".into(), None).await.unwrap();
    assert!(matches!(store.state(), FallbackState::Insurance { .. }));
    assert_eq!(store.switches(), 1);
    let calls = store.primary().calls.load(Ordering::SeqCst);
    // While down, the primary is not even tried.
    for _ in 0..10 {
        assert_eq!(
            store.get(&k).await.unwrap().as_deref(),
            Some(&b"insurance"[..])
        );
    }
    assert_eq!(store.primary().calls.load(Ordering::SeqCst), calls);

    // It comes back; after retry_after the next call probes it and stays.
    store.primary().down.store(false, Ordering::SeqCst);
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
    let store = Fallback::new(Switchable::default(), MemoryStore::new());
    store.primary().corrupt.store(true, Ordering::SeqCst);
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
