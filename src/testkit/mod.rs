//! The conformance suite: one behavior test per documented [`Store`]
//! behavior, run by every backend and every layer.
//!
//! Each test is a free async function over a [`Harness`]; the
//! [`conformance_suite!`](crate::conformance_suite) macro expands to one
//! `#[tokio::test]` per function, so a backend's test file is one line:
//!
//! ```text
//! rampart::conformance_suite!(rampart::testkit::Harness::manual(|clock| {
//!     rampart::MemoryStore::builder().clock(clock).build()
//! }));
//! ```
//!
//! Tests keep to their own key namespace (`tk:<test>:<unique>:`), so they
//! may share one store and run in parallel.

pub mod session;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{
    Capabilities, Change, Clock, Cursor, ErrorKind, Key, KeyTtl, LocalChange, LocalValue,
    ManualClock, SharedClock, Store, Swap, Timestamp, INLINE_CAPACITY, MAX_KEY_LEN, MAX_TTL,
};

/// How a test moves time forward for the store under test.
#[derive(Debug, Clone)]
pub enum TimeControl {
    /// The store follows this manual clock: expiry is instant and exact.
    Manual(ManualClock),
    /// The store follows real time (e.g. a Redis server): tests sleep.
    Real,
}

/// A store under test and the means to move its time.
#[derive(Debug, Clone)]
pub struct Harness<S> {
    /// The store under test.
    pub store: Arc<S>,
    /// How to make time pass for it.
    pub time: TimeControl,
    run: u64,
}

static RUNS: AtomicU64 = AtomicU64::new(0);

impl<S: Store + 'static> Harness<S> {
    /// A store that follows a manual clock, built by `make` from it.
    pub fn manual(make: impl FnOnce(SharedClock) -> S) -> Self {
        let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
        Self::new(make(clock.shared()), TimeControl::Manual(clock))
    }

    /// A store that follows real time.
    pub fn real(store: S) -> Self {
        Self::new(store, TimeControl::Real)
    }

    /// A store with explicit time control.
    pub fn new(store: S, time: TimeControl) -> Self {
        Self {
            store: Arc::new(store),
            time,
            run: std::process::id() as u64 * 1_000 + RUNS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Lets `d` pass for the store (advances the manual clock, or sleeps).
    pub async fn pass(&self, d: Duration) {
        match &self.time {
            TimeControl::Manual(clock) => clock.advance(d),
            TimeControl::Real => tokio::time::sleep(d).await,
        }
    }

    /// A fresh namespace for test `name`: `tk:<name>:<run>:`.
    pub fn namespace(&self, name: &str) -> String {
        format!("tk:{name}:{}:", self.run)
    }

    /// A key inside test `name`'s namespace.
    pub fn key(&self, name: &str, part: &str) -> Key {
        Key::new(format!("{}{part}", self.namespace(name))).expect("test keys are valid")
    }

    /// A TTL long enough to outlive a test on real time and short enough
    /// to expire quickly when the test lets it.
    fn short_ttl(&self) -> Duration {
        match self.time {
            TimeControl::Manual(_) => Duration::from_secs(10),
            TimeControl::Real => Duration::from_millis(300),
        }
    }

    fn caps(&self) -> Capabilities {
        self.store.capabilities()
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Every test of the suite, by name, for the macro and for runners.
pub const TESTS: &[&str] = &[
    "get_missing",
    "set_get_overwrite",
    "empty_and_binary_values",
    "large_value",
    "delete",
    "ttl_states",
    "ttl_expiry",
    "set_clears_ttl",
    "invalid_ttl_rejected",
    "cas_create_and_conflict",
    "cas_delete_and_ttl",
    "update_paths",
    "update_keep_ttl",
    "update_concurrent",
    "update_local_paths",
    "set_if_absent",
    "delete_if_equal",
    "expire_if_equal",
    "increment",
    "batch_get_delete",
    "scan_paging",
    "scan_glob_characters",
    "scan_skips_expired",
    "invalid_keys_rejected",
    "shared_as_dyn",
    "pubsub",
];

/// A missing key reads as `None`, has no TTL, and deletes as `false`.
pub async fn get_missing<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("get_missing", "nothing");
    assert_eq!(h.store.get(&k).await.unwrap(), None);
    assert_eq!(h.store.ttl(&k).await.unwrap(), KeyTtl::Missing);
    assert!(!h.store.delete(&k).await.unwrap());
}

/// `set` stores and replaces.
pub async fn set_get_overwrite<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("set_get_overwrite", "k");
    h.store.set(&k, b("one"), None).await.unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("one")));
    h.store.set(&k, b("two"), None).await.unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("two")));
}

/// An empty value is a value; arbitrary bytes round-trip.
pub async fn empty_and_binary_values<S: Store + 'static>(h: &Harness<S>) {
    let empty = h.key("empty_and_binary_values", "empty");
    h.store.set(&empty, Bytes::new(), None).await.unwrap();
    assert_eq!(h.store.get(&empty).await.unwrap(), Some(Bytes::new()));
    assert_eq!(h.store.ttl(&empty).await.unwrap(), KeyTtl::Persistent);
    let bin = h.key("empty_and_binary_values", "bin");
    let all: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    h.store.set(&bin, all.clone(), None).await.unwrap();
    assert_eq!(h.store.get(&bin).await.unwrap(), Some(all));
}

/// A 1 MiB value round-trips whole.
pub async fn large_value<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("large_value", "big");
    let big: Bytes = (0..1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    h.store.set(&k, big.clone(), None).await.unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), Some(big));
}

/// `delete` is true once, then false.
pub async fn delete<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("delete", "k");
    h.store.set(&k, b("v"), None).await.unwrap();
    assert!(h.store.delete(&k).await.unwrap());
    assert!(!h.store.delete(&k).await.unwrap());
    assert_eq!(h.store.get(&k).await.unwrap(), None);
}

/// `ttl` reports missing, persistent, and time left (at most the TTL set).
pub async fn ttl_states<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("ttl_states", "k");
    assert_eq!(h.store.ttl(&k).await.unwrap(), KeyTtl::Missing);
    h.store.set(&k, b("v"), None).await.unwrap();
    assert_eq!(h.store.ttl(&k).await.unwrap(), KeyTtl::Persistent);
    h.store
        .set(&k, b("v"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    match h.store.ttl(&k).await.unwrap() {
        KeyTtl::Expires(d) => assert!(
            d <= Duration::from_secs(60) && d > Duration::from_secs(50),
            "{d:?}"
        ),
        other => panic!("expected a TTL, got {other:?}"),
    }
    // The longest accepted TTL is stored as such.
    h.store.set(&k, b("v"), Some(MAX_TTL)).await.unwrap();
    assert!(
        matches!(h.store.ttl(&k).await.unwrap(), KeyTtl::Expires(d) if d > MAX_TTL - Duration::from_secs(60))
    );
}

/// A key is gone once its TTL has passed, and not before.
pub async fn ttl_expiry<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("ttl_expiry", "k");
    let ttl = h.short_ttl();
    h.store.set(&k, b("v"), Some(ttl)).await.unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("v")));
    if let TimeControl::Manual(clock) = &h.time {
        clock.advance(ttl - Duration::from_millis(1));
        assert_eq!(
            h.store.get(&k).await.unwrap(),
            Some(b("v")),
            "expired early"
        );
    }
    h.pass(ttl + Duration::from_millis(50)).await;
    assert_eq!(h.store.get(&k).await.unwrap(), None);
    assert_eq!(h.store.ttl(&k).await.unwrap(), KeyTtl::Missing);
    assert!(
        !h.store.delete(&k).await.unwrap(),
        "deleting an expired key reports a live value"
    );
}

/// `set` without a TTL makes an expiring key persistent.
pub async fn set_clears_ttl<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("set_clears_ttl", "k");
    h.store.set(&k, b("v"), Some(h.short_ttl())).await.unwrap();
    h.store.set(&k, b("w"), None).await.unwrap();
    h.pass(h.short_ttl() + Duration::from_millis(50)).await;
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("w")));
}

/// A zero TTL and one above `MAX_TTL` are `InvalidInput` and write nothing.
pub async fn invalid_ttl_rejected<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("invalid_ttl_rejected", "k");
    for ttl in [
        Duration::ZERO,
        MAX_TTL + Duration::from_secs(1),
        Duration::MAX,
    ] {
        let e = h.store.set(&k, b("v"), Some(ttl)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = h
            .store
            .compare_and_swap(&k, None, Some(b("v")), Some(ttl))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = h
            .store
            .set_if_absent(&k, b("v"), Some(ttl))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    assert_eq!(h.store.get(&k).await.unwrap(), None);
}

/// CAS creates from absent, and a conflict returns the current value.
pub async fn cas_create_and_conflict<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("cas_create_and_conflict", "k");
    assert_eq!(
        h.store
            .compare_and_swap(&k, None, Some(b("1")), None)
            .await
            .unwrap(),
        Swap::Swapped
    );
    assert_eq!(
        h.store
            .compare_and_swap(&k, None, Some(b("x")), None)
            .await
            .unwrap(),
        Swap::Conflict(Some(b("1")))
    );
    assert_eq!(
        h.store
            .compare_and_swap(&k, Some(b"0"), Some(b("x")), None)
            .await
            .unwrap(),
        Swap::Conflict(Some(b("1")))
    );
    assert_eq!(
        h.store
            .compare_and_swap(&k, Some(b"1"), Some(b("2")), None)
            .await
            .unwrap(),
        Swap::Swapped
    );
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("2")));
    let missing = h.key("cas_create_and_conflict", "missing");
    assert_eq!(
        h.store
            .compare_and_swap(&missing, Some(b"2"), Some(b("3")), None)
            .await
            .unwrap(),
        Swap::Conflict(None)
    );
    assert_eq!(h.store.get(&missing).await.unwrap(), None);
}

/// CAS to `None` deletes; CAS sets the TTL it is given; an expired key is absent.
pub async fn cas_delete_and_ttl<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("cas_delete_and_ttl", "k");
    h.store.set(&k, b("v"), None).await.unwrap();
    assert_eq!(
        h.store
            .compare_and_swap(&k, Some(b"v"), None, None)
            .await
            .unwrap(),
        Swap::Swapped
    );
    assert_eq!(h.store.get(&k).await.unwrap(), None);
    let ttl = h.short_ttl();
    assert_eq!(
        h.store
            .compare_and_swap(&k, None, Some(b("t")), Some(ttl))
            .await
            .unwrap(),
        Swap::Swapped
    );
    assert!(matches!(h.store.ttl(&k).await.unwrap(), KeyTtl::Expires(_)));
    h.pass(ttl + Duration::from_millis(50)).await;
    assert_eq!(
        h.store
            .compare_and_swap(&k, None, Some(b("new")), None)
            .await
            .unwrap(),
        Swap::Swapped
    );
    assert_eq!(h.store.ttl(&k).await.unwrap(), KeyTtl::Persistent);
}

/// `update_local`, where a store offers it: creates (inline and shared
/// values), sees the store's time, modifies, keeps, expires and removes,
/// rejects a bad TTL without writing; every other method sees its writes.
/// A store without it answers `None` without running the closure.
pub async fn update_local_paths<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("update_local_paths", "k");
    let mut seen = Vec::new();
    let set = |v: &[u8], ttl| LocalChange::Set {
        value: LocalValue::copy_from_slice(v),
        ttl,
    };
    let Some(ran) = h.store.update_local(&k, &mut |cur, now| {
        seen.push((cur.map(<[u8]>::to_vec), now));
        set(b"a", None)
    }) else {
        assert!(
            seen.is_empty(),
            "a store without a local path ran the closure"
        );
        return;
    };
    ran.unwrap();
    let (cur, now) = seen.pop().unwrap();
    assert_eq!(cur, None);
    if let TimeControl::Manual(clock) = &h.time {
        assert_eq!(now, clock.now(), "the closure gets the store's time");
    }
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("a")));
    assert_eq!(h.store.ttl(&k).await.unwrap(), KeyTtl::Persistent);
    // A value too large to keep inline, with a TTL.
    let big = vec![7u8; INLINE_CAPACITY * 3];
    h.store
        .update_local(&k, &mut |cur, _| {
            assert_eq!(cur, Some(&b"a"[..]));
            set(&big, Some(h.short_ttl()))
        })
        .unwrap()
        .unwrap();
    assert_eq!(h.store.get(&k).await.unwrap().as_deref(), Some(&big[..]));
    assert!(matches!(h.store.ttl(&k).await.unwrap(), KeyTtl::Expires(_)));
    h.store
        .update_local(&k, &mut |_, _| LocalChange::Keep)
        .unwrap()
        .unwrap();
    assert_eq!(h.store.get(&k).await.unwrap().as_deref(), Some(&big[..]));
    // Compare-and-swap and update see the local write.
    let swap = h
        .store
        .compare_and_swap(&k, Some(&big), Some(b("c")), Some(h.short_ttl()))
        .await
        .unwrap();
    assert_eq!(swap, Swap::Swapped);
    h.store
        .update_local(&k, &mut |cur, _| {
            assert_eq!(cur, Some(&b"c"[..]));
            set(b"d", Some(h.short_ttl()))
        })
        .unwrap()
        .unwrap();
    // Expired: the closure sees nothing.
    h.pass(h.short_ttl() + Duration::from_millis(50)).await;
    h.store
        .update_local(&k, &mut |cur, _| {
            assert_eq!(cur, None, "an expired value is not seen");
            LocalChange::Keep
        })
        .unwrap()
        .unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), None);
    // A zero TTL is rejected and writes nothing.
    let e = h
        .store
        .update_local(&k, &mut |_, _| set(b"x", Some(Duration::ZERO)))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(h.store.get(&k).await.unwrap(), None);
    h.store
        .update_local(&k, &mut |_, _| set(b"e", None))
        .unwrap()
        .unwrap();
    h.store
        .update_local(&k, &mut |_, _| LocalChange::Remove)
        .unwrap()
        .unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), None);
}

/// `update` creates, modifies, keeps and removes.
pub async fn update_paths<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("update_paths", "k");
    let mut seen = Vec::new();
    let up = h
        .store
        .update(&k, &mut |cur| {
            seen.push(cur.map(<[u8]>::to_vec));
            Change::Set {
                value: b("a"),
                ttl: None,
            }
        })
        .await
        .unwrap();
    assert_eq!(seen.last().unwrap(), &None);
    assert!(up.changed);
    assert_eq!(up.value, Some(b("a")));
    let up = h
        .store
        .update(&k, &mut |cur| {
            let mut v = cur.unwrap().to_vec();
            v.push(b'b');
            Change::Set {
                value: v.into(),
                ttl: None,
            }
        })
        .await
        .unwrap();
    assert_eq!(up.value, Some(b("ab")));
    let up = h.store.update(&k, &mut |_| Change::Keep).await.unwrap();
    assert!(!up.changed);
    assert_eq!(up.value, Some(b("ab")));
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("ab")));
    let up = h.store.update(&k, &mut |_| Change::Remove).await.unwrap();
    assert!(up.changed);
    assert_eq!(h.store.get(&k).await.unwrap(), None);
    let up = h.store.update(&k, &mut |_| Change::Remove).await.unwrap();
    assert!(!up.changed, "removing a missing key changed something");
    // A zero TTL from the closure is rejected like anywhere else.
    let e = h
        .store
        .update(&k, &mut |_| Change::Set {
            value: b("x"),
            ttl: Some(Duration::ZERO),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(h.store.get(&k).await.unwrap(), None);
}

/// `SetKeepTtl` keeps the remaining TTL.
pub async fn update_keep_ttl<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("update_keep_ttl", "k");
    h.store
        .set(&k, b("v"), Some(Duration::from_secs(100)))
        .await
        .unwrap();
    h.store
        .update(&k, &mut |_| Change::SetKeepTtl(b("w")))
        .await
        .unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("w")));
    assert!(
        matches!(h.store.ttl(&k).await.unwrap(), KeyTtl::Expires(d) if d > Duration::from_secs(90))
    );
    let p = h.key("update_keep_ttl", "persistent");
    h.store
        .update(&p, &mut |_| Change::SetKeepTtl(b("new")))
        .await
        .unwrap();
    assert_eq!(h.store.ttl(&p).await.unwrap(), KeyTtl::Persistent);
}

/// 32 concurrent tasks × 50 read-modify-writes on one key lose nothing.
pub async fn update_concurrent<S: Store + 'static>(h: &Harness<S>) {
    const TASKS: u64 = 32;
    const EACH: u64 = 50;
    let k = h.key("update_concurrent", "counter");
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = h.store.clone();
        let k = k.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..EACH {
                store
                    .update(&k, &mut |cur| {
                        let n: u64 =
                            cur.map_or(0, |b| std::str::from_utf8(b).unwrap().parse().unwrap());
                        Change::Set {
                            value: Bytes::from((n + 1).to_string()),
                            ttl: None,
                        }
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(
        h.store.get(&k).await.unwrap(),
        Some(Bytes::from((TASKS * EACH).to_string()))
    );
    // The same through `increment`.
    let c = h.key("update_concurrent", "incr");
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = h.store.clone();
        let c = c.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..EACH {
                store.increment(&c, 1, None).await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(
        h.store.increment(&c, 0, None).await.unwrap(),
        (TASKS * EACH) as i64
    );
}

/// `set_if_absent` writes only to a missing (or expired) key.
pub async fn set_if_absent<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("set_if_absent", "k");
    let ttl = h.short_ttl();
    assert!(h
        .store
        .set_if_absent(&k, b("first"), Some(ttl))
        .await
        .unwrap());
    assert!(!h.store.set_if_absent(&k, b("second"), None).await.unwrap());
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("first")));
    h.pass(ttl + Duration::from_millis(50)).await;
    assert!(h.store.set_if_absent(&k, b("third"), None).await.unwrap());
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("third")));
}

/// `delete_if_equal` never deletes someone else's value.
pub async fn delete_if_equal<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("delete_if_equal", "lock");
    h.store.set(&k, b("mine"), None).await.unwrap();
    assert!(!h.store.delete_if_equal(&k, b"stranger").await.unwrap());
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("mine")));
    assert!(h.store.delete_if_equal(&k, b"mine").await.unwrap());
    assert!(!h.store.delete_if_equal(&k, b"mine").await.unwrap());
}

/// `expire_if_equal` never extends someone else's value.
pub async fn expire_if_equal<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("expire_if_equal", "lock");
    let ttl = h.short_ttl();
    h.store.set(&k, b("mine"), Some(ttl)).await.unwrap();
    assert!(!h
        .store
        .expire_if_equal(&k, b"stranger", Some(Duration::from_secs(600)))
        .await
        .unwrap());
    assert!(h
        .store
        .expire_if_equal(&k, b"mine", Some(Duration::from_secs(600)))
        .await
        .unwrap());
    h.pass(ttl + Duration::from_millis(50)).await;
    assert_eq!(
        h.store.get(&k).await.unwrap(),
        Some(b("mine")),
        "extension did not take"
    );
    assert!(h.store.expire_if_equal(&k, b"mine", None).await.unwrap());
    assert_eq!(h.store.ttl(&k).await.unwrap(), KeyTtl::Persistent);
    let missing = h.key("expire_if_equal", "missing");
    assert!(!h
        .store
        .expire_if_equal(&missing, b"mine", Some(ttl))
        .await
        .unwrap());
    assert_eq!(h.store.get(&missing).await.unwrap(), None);
}

/// `increment` counts, keeps TTLs, and refuses non-integers and overflow.
pub async fn increment<S: Store + 'static>(h: &Harness<S>) {
    let k = h.key("increment", "n");
    assert_eq!(
        h.store
            .increment(&k, 5, Some(Duration::from_secs(100)))
            .await
            .unwrap(),
        5
    );
    assert_eq!(h.store.increment(&k, -7, None).await.unwrap(), -2);
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("-2")));
    assert!(
        matches!(h.store.ttl(&k).await.unwrap(), KeyTtl::Expires(d) if d > Duration::from_secs(90))
    );
    let text = h.key("increment", "text");
    h.store.set(&text, b("not a number"), None).await.unwrap();
    let e = h.store.increment(&text, 1, None).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::CorruptData | ErrorKind::Backend),
        "{e}"
    );
    assert_eq!(h.store.get(&text).await.unwrap(), Some(b("not a number")));
    let big = h.key("increment", "big");
    h.store.increment(&big, i64::MAX, None).await.unwrap();
    let e = h.store.increment(&big, 1, None).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Backend),
        "{e}"
    );
    assert_eq!(
        h.store.get(&big).await.unwrap(),
        Some(Bytes::from(i64::MAX.to_string()))
    );
}

/// `get_many` answers in order; `delete_many` counts live deletions.
pub async fn batch_get_delete<S: Store + 'static>(h: &Harness<S>) {
    let keys: Vec<Key> = (0..5)
        .map(|i| h.key("batch_get_delete", &i.to_string()))
        .collect();
    for k in keys.iter().step_by(2) {
        h.store
            .set(k, Bytes::from(k.to_string()), None)
            .await
            .unwrap();
    }
    let got = h.store.get_many(&keys).await.unwrap();
    assert_eq!(got.len(), 5);
    for (i, (k, v)) in keys.iter().zip(&got).enumerate() {
        assert_eq!(v.clone(), (i % 2 == 0).then(|| Bytes::from(k.to_string())));
    }
    assert_eq!(
        h.store.get_many(&[]).await.unwrap(),
        Vec::<Option<Bytes>>::new()
    );
    assert_eq!(h.store.delete_many(&keys).await.unwrap(), 3);
    assert_eq!(h.store.delete_many(&keys).await.unwrap(), 0);
}

async fn scan_all<S: Store + 'static>(h: &Harness<S>, prefix: &str, count: usize) -> Vec<String> {
    let mut cursor = Cursor::start();
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let page = h.store.scan(prefix, &cursor, count).await.unwrap();
        out.extend(page.keys.iter().map(|k| k.to_string()));
        match page.next {
            Some(next) => cursor = next,
            None => {
                out.sort();
                out.dedup();
                return out;
            }
        }
    }
    panic!("scan did not finish");
}

/// Scanning 3,000 keys in pages returns each exactly once (after dedup),
/// and nothing outside the prefix.
pub async fn scan_paging<S: Store + 'static>(h: &Harness<S>) {
    let ns = h.namespace("scan_paging");
    let mut expected = Vec::new();
    for i in 0..3_000 {
        let k = Key::new(format!("{ns}in:{i:05}")).unwrap();
        h.store.set(&k, b("v"), None).await.unwrap();
        expected.push(k.to_string());
    }
    for i in 0..50 {
        h.store
            .set(&Key::new(format!("{ns}out:{i}")).unwrap(), b("v"), None)
            .await
            .unwrap();
    }
    // A key that shares the prefix text but is not under it.
    h.store
        .set(&Key::new(format!("{ns}i")).unwrap(), b("v"), None)
        .await
        .unwrap();
    expected.sort();
    let found = scan_all(h, &format!("{ns}in:"), 100).await;
    assert_eq!(found.len(), expected.len());
    assert_eq!(found, expected);
    let everything = scan_all(h, &ns, 1_000).await;
    assert_eq!(everything.len(), 3_051);
}

/// Glob characters in keys and prefixes are literal.
pub async fn scan_glob_characters<S: Store + 'static>(h: &Harness<S>) {
    let ns = h.namespace("scan_glob_characters");
    let names = [
        "user*", "user*1", "user?", "user[1]", "user1", "user\\x", "userX",
    ];
    for n in names {
        h.store
            .set(&Key::new(format!("{ns}{n}")).unwrap(), b("v"), None)
            .await
            .unwrap();
    }
    let star = scan_all(h, &format!("{ns}user*"), 10).await;
    assert_eq!(star, vec![format!("{ns}user*"), format!("{ns}user*1")]);
    let q = scan_all(h, &format!("{ns}user?"), 10).await;
    assert_eq!(q, vec![format!("{ns}user?")]);
    let class = scan_all(h, &format!("{ns}user[1]"), 10).await;
    assert_eq!(class, vec![format!("{ns}user[1]")]);
    let backslash = scan_all(h, &format!("{ns}user\\"), 10).await;
    assert_eq!(backslash, vec![format!("{ns}user\\x")]);
    assert_eq!(
        scan_all(h, &format!("{ns}user"), 3).await.len(),
        names.len()
    );
}

/// Expired keys do not appear in scans.
pub async fn scan_skips_expired<S: Store + 'static>(h: &Harness<S>) {
    let ns = h.namespace("scan_skips_expired");
    let ttl = h.short_ttl();
    for i in 0..20 {
        let k = Key::new(format!("{ns}{i:02}")).unwrap();
        let t = if i % 2 == 0 { Some(ttl) } else { None };
        h.store.set(&k, b("v"), t).await.unwrap();
    }
    h.pass(ttl + Duration::from_millis(50)).await;
    let found = scan_all(h, &ns, 7).await;
    assert_eq!(found.len(), 10, "{found:?}");
}

/// Empty and over-long keys are refused before they reach a store; an
/// over-long scan prefix is refused by the store.
pub async fn invalid_keys_rejected<S: Store + 'static>(h: &Harness<S>) {
    assert_eq!(Key::new("").unwrap_err().kind(), ErrorKind::InvalidKey);
    assert_eq!(
        Key::new("k".repeat(MAX_KEY_LEN + 1)).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    let e = h
        .store
        .scan(&"p".repeat(MAX_KEY_LEN + 1), &Cursor::start(), 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey);
    // A key near the limit works (leaving room for a layer's namespace
    // prefix of up to 128 bytes).
    let ns = h.namespace("invalid_keys_rejected");
    let longest = Key::new(format!("{ns}{}", "k".repeat(MAX_KEY_LEN - 128 - ns.len()))).unwrap();
    h.store.set(&longest, b("v"), None).await.unwrap();
    assert_eq!(h.store.get(&longest).await.unwrap(), Some(b("v")));
}

/// The store works the same behind `Arc<dyn Store>`.
pub async fn shared_as_dyn<S: Store + 'static>(h: &Harness<S>) {
    let dynamic: Arc<dyn Store> = h.store.clone();
    let k = h.key("shared_as_dyn", "k");
    dynamic.set(&k, b("v"), None).await.unwrap();
    assert_eq!(h.store.get(&k).await.unwrap(), Some(b("v")));
    assert_eq!(dynamic.capabilities(), h.caps());
    assert_eq!(
        dynamic
            .increment(&k.child("n").unwrap(), 2, None)
            .await
            .unwrap(),
        2
    );
}

/// Subscribers receive what is published after they subscribed, in order;
/// a store without the capability says `Unsupported`.
pub async fn pubsub<S: Store + 'static>(h: &Harness<S>) {
    use futures_util::StreamExt;
    let channel = h.key("pubsub", "events");
    if !h.caps().pubsub {
        let e = h.store.publish(&channel, b("x")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        return;
    }
    let mut first = h.store.subscribe(&channel).await.unwrap();
    let mut second = h.store.subscribe(&channel).await.unwrap();
    let other = h.key("pubsub", "other");
    h.store.publish(&other, b("not for you")).await.unwrap();
    for i in 0..3 {
        h.store
            .publish(&channel, Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    for sub in [&mut first, &mut second] {
        for i in 0..3 {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .expect("a published message arrives")
                .expect("the subscription is open");
            assert_eq!(got, Bytes::from(format!("m{i}")));
        }
    }
}

/// A store that offers only the six required methods of the store it
/// wraps, so everything else runs through the trait's provided defaults
/// (the compare-and-swap `update` loop, `increment`, `set_if_absent`, ...),
/// as on any CAS-only backend. Each compare-and-swap yields first, so
/// concurrent tasks interleave between their read and their swap the way
/// they would over a network.
#[derive(Debug, Default)]
pub struct CasOnly<S>(pub S);

#[async_trait::async_trait]
impl<S: Store> Store for CasOnly<S> {
    async fn get(&self, key: &Key) -> crate::Result<Option<Bytes>> {
        self.0.get(key).await
    }
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> crate::Result<()> {
        self.0.set(key, value, ttl).await
    }
    async fn delete(&self, key: &Key) -> crate::Result<bool> {
        self.0.delete(key).await
    }
    async fn ttl(&self, key: &Key) -> crate::Result<KeyTtl> {
        self.0.ttl(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> crate::Result<Swap> {
        tokio::task::yield_now().await;
        self.0.compare_and_swap(key, expected, new, ttl).await
    }
    async fn scan(
        &self,
        prefix: &str,
        cursor: &Cursor,
        count: usize,
    ) -> crate::Result<crate::Page> {
        self.0.scan(prefix, cursor, count).await
    }
}

/// Expands to one `#[tokio::test]` per conformance test, each building its
/// harness with `$make` (an expression evaluating to a [`Harness`]).
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as
/// a dev-dependency.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            get_missing set_get_overwrite empty_and_binary_values large_value delete
            ttl_states ttl_expiry set_clears_ttl invalid_ttl_rejected
            cas_create_and_conflict cas_delete_and_ttl update_paths update_keep_ttl
            update_concurrent update_local_paths set_if_absent delete_if_equal expire_if_equal increment
            batch_get_delete scan_paging scan_glob_characters scan_skips_expired
            invalid_keys_rejected shared_as_dyn pubsub);
    };
    (@tests $make:expr; $($name:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let harness = $make;
                $crate::testkit::$name(&harness).await;
            }
        )*
        #[test]
        fn suite_is_complete() {
            let mut listed = vec![$(stringify!($name)),*];
            let mut all = $crate::testkit::TESTS.to_vec();
            listed.sort();
            all.sort();
            assert_eq!(listed, all, "the macro and TESTS disagree");
        }
    };
}
