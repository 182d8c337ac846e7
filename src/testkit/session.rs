//! The session suite: sessions, refresh tokens and the denylist, run over
//! any store with a manual clock.
//!
//! Each test is a free async function over a [`Harness`] whose time is
//! [`TimeControl::Manual`]; the Lua twins then read `now` from the same
//! clock ([`ScriptTime::Caller`]), so a Redis server and an in-process
//! store see identical times. The [`session_suite!`](crate::session_suite)
//! macro expands to one `#[tokio::test]` per function:
//!
//! ```text
//! rampart::session_suite!(rampart::testkit::Harness::manual(|clock| {
//!     rampart::MemoryStore::builder().clock(clock).build()
//! }));
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Harness, TimeControl};
use crate::session::{
    constant_time_eq, Denylist, Refresh, RefreshConfig, RefreshToken, RefreshTokens, SessionConfig,
    SessionId, SessionMeta, Sessions,
};
use crate::{
    Arg, Atomic, Capabilities, Clock, Cursor, ErrorKind, Key, KeyTtl, ManualClock, Page, Result,
    Script, ScriptTime, Store, Swap, Timestamp, UpdateFn, Updated, Value,
};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

/// Every test of the suite, by name, for the macro and for runners.
pub const TESTS: &[&str] = &[
    "session_lifecycle",
    "session_idle_expiry",
    "session_rolling_vs_absolute",
    "session_touch_interval",
    "session_rotate",
    "session_update_concurrent",
    "session_index",
    "session_max_per_user",
    "session_destroy_all_vs_create",
    "session_destroy_all_vs_rotate",
    "session_destroy_all_concurrent",
    "session_generation_guard",
    "session_corrupt_and_invalid",
    "session_secrets_hidden",
    "refresh_rotation_and_reuse",
    "refresh_revocation",
    "refresh_expiry",
    "denylist_expiry",
];

fn clock<S>(h: &Harness<S>) -> ManualClock {
    match &h.time {
        TimeControl::Manual(c) => c.clone(),
        TimeControl::Real => panic!(
            "the session suite moves time with a manual clock: build the harness with TimeControl::Manual"
        ),
    }
}

fn sessions<S: Store + 'static>(
    h: &Harness<S>,
    name: &str,
    config: SessionConfig,
) -> Sessions<Arc<S>> {
    let config = config.with_namespace(format!("{}sess", h.namespace(name)));
    Sessions::new(h.store.clone(), config)
        .expect("valid config")
        .with_clock(clock(h).shared())
        .with_script_time(ScriptTime::Caller)
}

fn refresh<S: Store + 'static>(
    h: &Harness<S>,
    name: &str,
    config: RefreshConfig,
) -> RefreshTokens<Arc<S>> {
    let config = config.with_namespace(format!("{}rt", h.namespace(name)));
    RefreshTokens::new(h.store.clone(), config)
        .expect("valid config")
        .with_clock(clock(h).shared())
        .with_script_time(ScriptTime::Caller)
}

/// Application data stored in test sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// Items.
    pub items: Vec<String>,
    /// A counter for concurrent updates.
    pub n: u64,
}

fn cart(item: &str) -> Cart {
    Cart {
        items: vec![item.to_owned()],
        n: 0,
    }
}

async fn live<S: Store>(s: &Sessions<S>, id: &SessionId) -> bool {
    s.get::<Cart>(id).await.expect("get").is_some()
}

/// Create, read (data and metadata), destroy; ids are unique.
pub async fn session_lifecycle<S: Store + 'static>(h: &Harness<S>) {
    let s = sessions(h, "session_lifecycle", SessionConfig::default());
    let t0 = clock(h).now();
    let meta = SessionMeta::new()
        .with_ip("198.51.100.4")
        .with_user_agent("Mozilla/5.0 (X11)");
    let new = s
        .create("alice", &cart("book"), meta.clone())
        .await
        .unwrap();
    assert_eq!(new.id.as_str().len(), 43);
    assert_eq!(new.handle, new.id.handle());
    assert_eq!(new.expires, t0.saturating_add(7 * DAY));
    let got = s.get::<Cart>(&new.id).await.unwrap().expect("live");
    assert_eq!(got.user_id, "alice");
    assert_eq!(got.data, cart("book"));
    assert_eq!(got.meta, meta);
    assert_eq!(got.created, t0);
    assert_eq!(got.expires_at_most, t0.saturating_add(30 * DAY));
    let other = s
        .create("alice", &cart("pen"), SessionMeta::new())
        .await
        .unwrap();
    assert_ne!(other.id, new.id);
    assert_eq!(s.count("alice").await.unwrap(), 2);
    assert!(s.destroy(&new.id).await.unwrap());
    assert!(!s.destroy(&new.id).await.unwrap());
    assert!(!live(&s, &new.id).await);
    assert!(live(&s, &other.id).await);
    assert_eq!(s.count("alice").await.unwrap(), 1);
    // An id never issued is simply not a session.
    assert!(!live(&s, &SessionId::generate().unwrap()).await);
}

/// A session unused for the idle timeout dies, and drops out of the index
/// without any sweeper.
pub async fn session_idle_expiry<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let s = sessions(
        h,
        "session_idle_expiry",
        SessionConfig::default().with_idle_timeout(HOUR),
    );
    let a = s
        .create("bob", &cart("a"), SessionMeta::new())
        .await
        .unwrap();
    let b = s
        .create("bob", &cart("b"), SessionMeta::new())
        .await
        .unwrap();
    c.advance(HOUR - Duration::from_secs(1));
    assert!(live(&s, &b.id).await, "renewed just in time");
    c.advance(Duration::from_secs(1));
    assert!(!live(&s, &a.id).await, "idle for the whole timeout");
    assert_eq!(s.count("bob").await.unwrap(), 1);
    assert_eq!(s.list("bob").await.unwrap().len(), 1);
    c.advance(HOUR);
    assert!(!live(&s, &b.id).await);
    assert_eq!(s.count("bob").await.unwrap(), 0);
    assert!(s.list("bob").await.unwrap().is_empty());
}

/// Rolling renewal keeps an active session alive, but never past the
/// absolute cap.
pub async fn session_rolling_vs_absolute<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let s = sessions(
        h,
        "session_rolling_vs_absolute",
        SessionConfig::default()
            .with_idle_timeout(HOUR)
            .with_max_lifetime(3 * HOUR),
    );
    let t0 = c.now();
    let new = s
        .create("carol", &cart("x"), SessionMeta::new())
        .await
        .unwrap();
    for _ in 0..3 {
        c.advance(50 * MIN);
        let got = s.get::<Cart>(&new.id).await.unwrap().expect("renewed");
        assert_eq!(got.last_seen, c.now());
        let rolling = c.now().saturating_add(HOUR);
        assert_eq!(got.expires, rolling.min(t0.saturating_add(3 * HOUR)));
    }
    // 2h30m in: the rolling expiry would be 3h30m, the cap says 3h.
    c.advance(29 * MIN);
    assert!(live(&s, &new.id).await);
    c.advance(MIN);
    assert!(!live(&s, &new.id).await, "dead at the absolute cap");
    assert_eq!(s.count("carol").await.unwrap(), 0);
}

/// With a touch interval, reads within it do not write.
pub async fn session_touch_interval<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let s = sessions(
        h,
        "session_touch_interval",
        SessionConfig::default()
            .with_idle_timeout(HOUR)
            .with_touch_interval(10 * MIN),
    );
    let t0 = c.now();
    let new = s
        .create("dan", &cart("x"), SessionMeta::new())
        .await
        .unwrap();
    c.advance(5 * MIN);
    let got = s.get::<Cart>(&new.id).await.unwrap().unwrap();
    assert_eq!((got.last_seen, got.expires), (t0, t0.saturating_add(HOUR)));
    c.advance(6 * MIN);
    let got = s.get::<Cart>(&new.id).await.unwrap().unwrap();
    assert_eq!(got.last_seen, c.now());
    assert_eq!(got.expires, c.now().saturating_add(HOUR));
    // The index followed the renewal: the session outlives its first hour.
    c.advance(55 * MIN);
    assert!(live(&s, &new.id).await);
    assert_eq!(s.count("dan").await.unwrap(), 1);
}

/// Rotation: a new id for the same session; the old id is dead at once.
pub async fn session_rotate<S: Store + 'static>(h: &Harness<S>) {
    let s = sessions(h, "session_rotate", SessionConfig::default());
    let old = s
        .create("erin", &cart("keep"), SessionMeta::new())
        .await
        .unwrap();
    let new = s.rotate(&old.id).await.unwrap().expect("rotated");
    assert_ne!(new, old.id);
    assert!(!live(&s, &old.id).await, "the old id is dead");
    let got = s.get::<Cart>(&new).await.unwrap().expect("same session");
    assert_eq!((got.user_id.as_str(), got.data), ("erin", cart("keep")));
    assert_eq!(got.created, s.list("erin").await.unwrap()[0].created);
    assert_eq!(s.rotate(&old.id).await.unwrap(), None);
    assert_eq!(s.count("erin").await.unwrap(), 1);
    let listed = s.list("erin").await.unwrap();
    assert_eq!(listed[0].handle, new.handle());
    assert!(s.destroy(&new).await.unwrap());
    assert_eq!(s.count("erin").await.unwrap(), 0);
}

/// 32 concurrent updates of one session: none lost.
pub async fn session_update_concurrent<S: Store + 'static>(h: &Harness<S>) {
    let s = Arc::new(sessions(
        h,
        "session_update_concurrent",
        SessionConfig::default(),
    ));
    let new = s
        .create("frank", &Cart::default(), SessionMeta::new())
        .await
        .unwrap();
    let id = Arc::new(new.id);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (s, id) = (s.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            s.update::<Cart, _>(&id, |c| {
                c.n += 1;
                c.items.push(format!("item{i}"));
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap().expect("live");
    }
    let got = s.get::<Cart>(&id).await.unwrap().unwrap();
    assert_eq!(got.data.n, 32);
    let distinct: HashSet<_> = got.data.items.iter().collect();
    assert_eq!(distinct.len(), 32);
    // A dead session is not updated.
    s.destroy(&id).await.unwrap();
    assert!(s
        .update::<Cart, _>(&id, |c| c.n += 1)
        .await
        .unwrap()
        .is_none());
}

/// list, count, destroy_others, destroy_handle; users are independent.
pub async fn session_index<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let s = sessions(h, "session_index", SessionConfig::default());
    let mut ids = Vec::new();
    for ua in ["phone", "laptop", "tablet"] {
        let meta = SessionMeta::new().with_user_agent(ua);
        ids.push(s.create("gina", &cart(ua), meta).await.unwrap().id);
        c.advance(Duration::from_secs(1));
    }
    let other = s
        .create("hank", &cart("x"), SessionMeta::new())
        .await
        .unwrap();
    let listed = s.list("gina").await.unwrap();
    let agents: Vec<_> = listed
        .iter()
        .map(|i| i.meta.user_agent.clone().unwrap())
        .collect();
    assert_eq!(agents, ["phone", "laptop", "tablet"]);
    assert_eq!(listed[1].handle, ids[1].handle());
    assert_eq!(s.count("gina").await.unwrap(), 3);
    assert!(s.destroy_handle("gina", &listed[0].handle).await.unwrap());
    assert!(!s.destroy_handle("gina", &listed[0].handle).await.unwrap());
    assert!(
        !s.destroy_handle("hank", &listed[1].handle).await.unwrap(),
        "not hank's"
    );
    assert!(!live(&s, &ids[0]).await);
    assert_eq!(s.destroy_others("gina", &ids[2]).await.unwrap(), 1);
    assert!(!live(&s, &ids[1]).await);
    assert!(live(&s, &ids[2]).await);
    assert_eq!(s.count("gina").await.unwrap(), 1);
    assert!(live(&s, &other.id).await, "another user is untouched");
    assert_eq!(s.destroy_all("gina").await.unwrap(), 1);
    assert_eq!(s.destroy_all("gina").await.unwrap(), 0);
    assert!(live(&s, &other.id).await);
}

/// With a per-user maximum, the oldest sessions end first.
pub async fn session_max_per_user<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let s = sessions(
        h,
        "session_max_per_user",
        SessionConfig::default().with_max_sessions_per_user(2),
    );
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            s.create("ivy", &cart(&i.to_string()), SessionMeta::new())
                .await
                .unwrap()
                .id,
        );
        c.advance(Duration::from_secs(1));
    }
    assert!(!live(&s, &ids[0]).await);
    assert!(!live(&s, &ids[1]).await);
    assert!(live(&s, &ids[2]).await);
    assert!(live(&s, &ids[3]).await);
    assert_eq!(s.count("ivy").await.unwrap(), 2);
    let handles: Vec<_> = s
        .list("ivy")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.handle)
        .collect();
    assert_eq!(handles, [ids[2].handle(), ids[3].handle()]);
}

/// The race `destroy_all` must win: a create whose index entry is in but
/// whose record is not yet written when the user's sessions are cleared.
pub async fn session_destroy_all_vs_create<S: Store + 'static>(h: &Harness<S>) {
    let gate = Arc::new(Gate::new(h.store.clone()));
    let config = SessionConfig::default().with_namespace(format!(
        "{}sess",
        h.namespace("session_destroy_all_vs_create")
    ));
    let s = Arc::new(
        Sessions::new(gate.clone(), config)
            .unwrap()
            .with_clock(clock(h).shared())
            .with_script_time(ScriptTime::Caller),
    );
    let before = s
        .create("jack", &cart("old"), SessionMeta::new())
        .await
        .unwrap();
    let (reached, release) = gate.arm(":s:");
    let task = tokio::spawn({
        let s = s.clone();
        async move { s.create("jack", &cart("racing"), SessionMeta::new()).await }
    });
    reached.await.expect("create reached its record write");
    assert_eq!(s.destroy_all("jack").await.unwrap(), 2);
    release.send(()).expect("create waits");
    let racing = task.await.unwrap().unwrap();
    assert!(!live(&s, &before.id).await);
    assert!(
        !live(&s, &racing.id).await,
        "the racing create must not survive"
    );
    assert_eq!(s.count("jack").await.unwrap(), 0);
    assert!(s.list("jack").await.unwrap().is_empty());
    // Nor can it be revived by rotating it.
    assert_eq!(s.rotate(&racing.id).await.unwrap(), None);
}

/// A rotation caught between writing the new record and renaming the
/// index entry does not bring the session back after `destroy_all`.
pub async fn session_destroy_all_vs_rotate<S: Store + 'static>(h: &Harness<S>) {
    let gate = Arc::new(Gate::new(h.store.clone()));
    let config = SessionConfig::default().with_namespace(format!(
        "{}sess",
        h.namespace("session_destroy_all_vs_rotate")
    ));
    let s = Arc::new(
        Sessions::new(gate.clone(), config)
            .unwrap()
            .with_clock(clock(h).shared())
            .with_script_time(ScriptTime::Caller),
    );
    let old = s
        .create("kate", &cart("x"), SessionMeta::new())
        .await
        .unwrap();
    let (reached, release) = gate.arm(":s:");
    let task = tokio::spawn({
        let (s, id) = (s.clone(), old.id.clone());
        async move { s.rotate(&id).await }
    });
    reached.await.expect("rotate reached its record write");
    assert_eq!(s.destroy_all("kate").await.unwrap(), 1);
    release.send(()).expect("rotate waits");
    assert_eq!(task.await.unwrap().unwrap(), None);
    assert!(!live(&s, &old.id).await);
    assert_eq!(s.count("kate").await.unwrap(), 0);
}

/// Many creates racing one `destroy_all`: every session created before it
/// (generation 0) is dead, every one after it (generation 1) is live and
/// listed, and nothing else is live.
pub async fn session_destroy_all_concurrent<S: Store + 'static>(h: &Harness<S>) {
    let s = Arc::new(sessions(
        h,
        "session_destroy_all_concurrent",
        SessionConfig::default(),
    ));
    let mut creates = Vec::new();
    let mut clear = None;
    for i in 0..48 {
        let s2 = s.clone();
        creates.push(tokio::spawn(async move {
            s2.create("liam", &cart(&i.to_string()), SessionMeta::new())
                .await
        }));
        if i == 20 {
            let s2 = s.clone();
            clear = Some(tokio::spawn(async move { s2.destroy_all("liam").await }));
        }
    }
    let mut created = Vec::new();
    for t in creates {
        created.push(t.await.unwrap().unwrap());
    }
    clear.unwrap().await.unwrap().unwrap();
    assert_eq!(s.generation("liam").await.unwrap(), 1);
    let mut survivors = HashSet::new();
    for new in &created {
        let is_live = live(&s, &new.id).await;
        match new.generation {
            0 => assert!(!is_live, "created before destroy_all, yet live"),
            _ => {
                assert!(is_live, "created after destroy_all, yet dead");
                survivors.insert(new.handle.clone());
            }
        }
    }
    let listed: HashSet<_> = s
        .list("liam")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.handle)
        .collect();
    assert_eq!(listed, survivors);
    assert_eq!(s.count("liam").await.unwrap(), survivors.len());
}

/// A login that read the generation before a password change cannot
/// create a session after it.
pub async fn session_generation_guard<S: Store + 'static>(h: &Harness<S>) {
    let s = sessions(h, "session_generation_guard", SessionConfig::default());
    let g = s.generation("mia").await.unwrap();
    assert_eq!(g, 0);
    let ok = s
        .create_if_generation("mia", &cart("x"), SessionMeta::new(), g)
        .await
        .unwrap();
    assert_eq!(ok.generation, 0);
    // The password changes while a second login is between its password
    // check and its create.
    s.destroy_all("mia").await.unwrap();
    let err = s
        .create_if_generation("mia", &cart("x"), SessionMeta::new(), g)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(!err.is_temporary());
    assert_eq!(s.count("mia").await.unwrap(), 0);
    let g = s.generation("mia").await.unwrap();
    assert_eq!(g, 1);
    let new = s
        .create_if_generation("mia", &cart("x"), SessionMeta::new(), g)
        .await
        .unwrap();
    assert!(live(&s, &new.id).await);
}

/// Corrupt records and indexes, wrong data types and bad input are typed
/// errors, never panics, and never echo a secret.
pub async fn session_corrupt_and_invalid<S: Store + 'static>(h: &Harness<S>) {
    let s = sessions(h, "session_corrupt_and_invalid", SessionConfig::default());
    let ns = s.config().namespace.clone();
    let new = s
        .create("nora", &cart("x"), SessionMeta::new())
        .await
        .unwrap();
    // Data of another type.
    let err = s.get::<u64>(&new.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CorruptData);
    assert!(!format!("{err} {err:?}").contains(new.id.as_str()));
    // A record rampart did not write.
    let record = Key::new(format!("{ns}:s:{}", new.handle)).unwrap();
    let now = clock(h).now().as_micros();
    let future = now + 3_600_000_000;
    let not_json = format!("1|{now}|{now}|{future}|{future}|not json");
    let overflow = format!("1|{now}|{now}|99999999999999999|{future}|{{}}");
    for garbage in [
        &b"garbage"[..],
        not_json.as_bytes(),
        overflow.as_bytes(),
        b"\xff\xfe",
        b"",
    ] {
        h.store
            .set(&record, Bytes::copy_from_slice(garbage), None)
            .await
            .unwrap();
        let err = s.get::<Cart>(&new.id).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptData, "{garbage:?}");
        assert!(!format!("{err} {err:?}").contains(new.id.as_str()));
        let err = s.update::<Cart, _>(&new.id, |c| c.n += 1).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::CorruptData);
    }
    // A corrupt index fails closed: its sessions cannot be used.
    let fresh = s
        .create("nora", &cart("y"), SessionMeta::new())
        .await
        .unwrap();
    let index = Key::new(format!("{ns}:u:{}", crate::session::user_part("nora"))).unwrap();
    h.store
        .set(&index, Bytes::from_static(b"1|0|bad entry"), None)
        .await
        .unwrap();
    assert_eq!(
        s.get::<Cart>(&fresh.id).await.unwrap_err().kind(),
        ErrorKind::CorruptData
    );
    assert_eq!(
        s.count("nora").await.unwrap_err().kind(),
        ErrorKind::CorruptData
    );
    // Bad input.
    let kind = |r: Result<_>| {
        r.map(|_: crate::session::NewSession| ())
            .unwrap_err()
            .kind()
    };
    assert_eq!(
        kind(s.create("", &1, SessionMeta::new()).await),
        ErrorKind::InvalidInput
    );
    let long = "u".repeat(crate::session::MAX_USER_ID_LEN + 1);
    assert_eq!(
        kind(s.create(&long, &1, SessionMeta::new()).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        s.count("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    for text in [
        "",
        "short",
        "not base64 but exactly forty-three chars!!",
        "==================",
    ] {
        let err = SessionId::parse(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        if !text.is_empty() {
            assert!(!err.to_string().contains(text));
        }
    }
    let bad = SessionConfig::default().with_idle_timeout(Duration::ZERO);
    assert_eq!(
        Sessions::new(h.store.clone(), bad).unwrap_err().kind(),
        ErrorKind::Config
    );
    let bad = SessionConfig::default().with_max_sessions_per_user(0);
    assert_eq!(
        Sessions::new(h.store.clone(), bad).unwrap_err().kind(),
        ErrorKind::Config
    );
    // Metadata is bounded.
    let meta = SessionMeta::new().with_user_agent("é".repeat(600));
    assert!(meta.user_agent.as_ref().unwrap().len() <= crate::session::MAX_META_LEN);
}

/// No session id or token appears in `Debug` output or error messages,
/// and the store holds only their hashes.
pub async fn session_secrets_hidden<S: Store + 'static>(h: &Harness<S>) {
    let s = sessions(h, "session_secrets_hidden", SessionConfig::default());
    let r = refresh(h, "session_secrets_hidden", RefreshConfig::default());
    let secret_data = "hunter2-password";
    let new = s
        .create("olga", &secret_data, SessionMeta::new())
        .await
        .unwrap();
    let got = s.get::<String>(&new.id).await.unwrap().unwrap();
    let issued = r.issue("olga").await.unwrap();
    let Refresh::Rotated(rotated) = r.rotate(&issued.token).await.unwrap() else {
        panic!("not rotated")
    };
    let reuse = r.rotate(&issued.token).await.unwrap();
    let shown = format!(
        "{new:?} {:?} {got:?} {issued:?} {rotated:?} {reuse:?} {s:?} {r:?} {:?}",
        new.id, issued.token
    );
    for secret in [
        new.id.as_str(),
        issued.token.as_str(),
        rotated.token.as_str(),
        secret_data,
    ] {
        assert!(!shown.contains(secret), "a secret in Debug output: {shown}");
    }
    // Errors about bad tokens do not repeat them.
    let mangled = &issued.token.as_str()[..60];
    let err = RefreshToken::parse(mangled).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(mangled));
    // The store holds hashes, never the id or token.
    let prefix = h.namespace("session_secrets_hidden");
    let mut cursor = Cursor::start();
    loop {
        let page = h.store.scan(&prefix, &cursor, 100).await.unwrap();
        for key in &page.keys {
            let value = h.store.get(key).await.unwrap().unwrap_or_default();
            for secret in [
                new.id.as_str(),
                issued.token.as_str(),
                rotated.token.as_str(),
            ] {
                assert!(!key.as_str().contains(secret));
                assert!(!String::from_utf8_lossy(&value).contains(secret));
            }
        }
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert!(constant_time_eq(
        new.id.as_str().as_bytes(),
        new.id.as_str().as_bytes()
    ));
}

/// Refresh tokens rotate; presenting a spent one revokes the whole family.
pub async fn refresh_rotation_and_reuse<S: Store + 'static>(h: &Harness<S>) {
    let r = refresh(h, "refresh_rotation_and_reuse", RefreshConfig::default());
    let first = r.issue("pete").await.unwrap();
    let Refresh::Rotated(second) = r.rotate(&first.token).await.unwrap() else {
        panic!("the first token is current")
    };
    assert_eq!((second.user_id.as_str(), second.generation), ("pete", 1));
    assert_ne!(second.token, first.token);
    assert_eq!(second.token.family(), first.family);
    let Refresh::Rotated(third) = r.rotate(&second.token).await.unwrap() else {
        panic!("the second token is current")
    };
    assert_eq!(third.generation, 2);
    // A thief replays the first token: the family is revoked...
    assert_eq!(
        r.rotate(&first.token).await.unwrap(),
        Refresh::ReuseDetected {
            user_id: "pete".into()
        }
    );
    // ...so the legitimate client's current token is refused too.
    assert_eq!(r.rotate(&third.token).await.unwrap(), Refresh::Revoked);
    assert_eq!(r.rotate(&second.token).await.unwrap(), Refresh::Revoked);
    assert_eq!(r.count("pete").await.unwrap(), 0);
    // Another family of the same user is untouched.
    let other = r.issue("pete").await.unwrap();
    assert!(matches!(
        r.rotate(&other.token).await.unwrap(),
        Refresh::Rotated(_)
    ));
    // A well-formed token nobody issued.
    let stranger = RefreshToken::parse(&"A".repeat(64)).unwrap();
    assert_eq!(r.rotate(&stranger).await.unwrap(), Refresh::Unknown);
}

/// Logout revokes one family; revoke_all every family of a user; the
/// per-user maximum revokes the oldest.
pub async fn refresh_revocation<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let r = refresh(
        h,
        "refresh_revocation",
        RefreshConfig::default().with_max_families_per_user(2),
    );
    let a = r.issue("quinn").await.unwrap();
    c.advance(Duration::from_secs(1));
    let b = r.issue("quinn").await.unwrap();
    assert!(r.revoke(&a.token).await.unwrap());
    assert!(!r.revoke(&a.token).await.unwrap());
    assert_eq!(r.rotate(&a.token).await.unwrap(), Refresh::Revoked);
    assert_eq!(r.count("quinn").await.unwrap(), 1);
    c.advance(Duration::from_secs(1));
    let c1 = r.issue("quinn").await.unwrap();
    c.advance(Duration::from_secs(1));
    let d = r.issue("quinn").await.unwrap();
    // Three issued, at most two kept: b, the oldest, is revoked.
    assert_eq!(r.rotate(&b.token).await.unwrap(), Refresh::Revoked);
    let Refresh::Rotated(c2) = r.rotate(&c1.token).await.unwrap() else {
        panic!("c is current")
    };
    assert_eq!(r.revoke_all("quinn").await.unwrap(), 2);
    assert_eq!(r.rotate(&c2.token).await.unwrap(), Refresh::Revoked);
    assert_eq!(r.rotate(&d.token).await.unwrap(), Refresh::Revoked);
    assert_eq!(r.count("quinn").await.unwrap(), 0);
}

/// An unused refresh token dies after the idle timeout; rotation renews
/// it, but not past the family's absolute lifetime.
pub async fn refresh_expiry<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let r = refresh(
        h,
        "refresh_expiry",
        RefreshConfig::default()
            .with_idle_timeout(DAY)
            .with_max_lifetime(3 * DAY),
    );
    let start = c.now();
    let idle = r.issue("rita").await.unwrap();
    let mut token = r.issue("rita").await.unwrap().token;
    c.advance(DAY - MIN);
    let Refresh::Rotated(next) = r.rotate(&token).await.unwrap() else {
        panic!("still current")
    };
    token = next.token;
    c.advance(MIN);
    assert_eq!(r.rotate(&idle.token).await.unwrap(), Refresh::Unknown);
    for _ in 0..2 {
        c.advance(20 * HOUR);
        let Refresh::Rotated(next) = r.rotate(&token).await.unwrap() else {
            panic!("renewed by rotation")
        };
        token = next.token;
    }
    // 2d16h in, the token would live to 3d16h unused, but the family's
    // absolute lifetime ends at 3d.
    c.advance(7 * HOUR + 59 * MIN);
    let Refresh::Rotated(next) = r.rotate(&token).await.unwrap() else {
        panic!("within the absolute lifetime")
    };
    assert_eq!(next.expires, start.saturating_add(3 * DAY));
    token = next.token;
    c.advance(MIN);
    assert_eq!(r.rotate(&token).await.unwrap(), Refresh::Unknown);
    assert_eq!(r.count("rita").await.unwrap(), 0);
}

/// Denied access tokens stay denied until they would have expired.
pub async fn denylist_expiry<S: Store + 'static>(h: &Harness<S>) {
    let c = clock(h);
    let d = Denylist::new(h.store.clone())
        .with_namespace(format!("{}deny", h.namespace("denylist_expiry")))
        .unwrap()
        .with_clock(c.shared());
    let exp = c.now().saturating_add(15 * MIN);
    assert!(d.deny("jti-1", exp).await.unwrap());
    assert!(d.is_denied("jti-1").await.unwrap());
    assert!(!d.is_denied("jti-2").await.unwrap());
    c.advance(15 * MIN - Duration::from_secs(1));
    assert!(d.is_denied("jti-1").await.unwrap());
    c.advance(Duration::from_secs(1));
    assert!(
        !d.is_denied("jti-1").await.unwrap(),
        "expired with the token"
    );
    // A token that has expired already needs no entry.
    assert!(!d.deny("jti-3", c.now()).await.unwrap());
    assert!(!d.is_denied("jti-3").await.unwrap());
    assert_eq!(
        d.deny("", exp).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let far = Timestamp::from_micros(u64::MAX);
    assert_eq!(
        d.deny("jti-4", far).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

type Armed = (oneshot::Sender<()>, oneshot::Receiver<()>);

/// A store that can hold one `set` of a matching key until released: it
/// forces the interleavings the race tests need.
pub struct Gate<S> {
    inner: S,
    armed: Mutex<Option<(String, Armed)>>,
}

impl<S> std::fmt::Debug for Gate<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl<S: Store> Gate<S> {
    /// A gate in front of `inner`, open.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            armed: Mutex::new(None),
        }
    }

    /// Holds the next `set` of a key containing `needle`: the first
    /// receiver fires when it is held, and the sender releases it.
    pub fn arm(&self, needle: &str) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((needle.to_owned(), (reached_tx, release_rx)));
        (reached_rx, release_tx)
    }
}

#[async_trait]
impl<S: Store> Store for Gate<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let held = {
            let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
            match armed.take() {
                Some((needle, pair)) if key.as_str().contains(&needle) => Some(pair),
                other => {
                    *armed = other;
                    None
                }
            }
        };
        if let Some((reached, release)) = held {
            let _ = reached.send(());
            let _ = release.await;
        }
        self.inner.set(key, value, ttl).await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        self.inner.ttl(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        self.inner.compare_and_swap(key, expected, new, ttl).await
    }
    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        self.inner.scan(prefix, cursor, count).await
    }
    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        self.inner.update(key, f).await
    }
    async fn run_atomic(
        &self,
        key: &Key,
        script: &Script,
        args: &[Arg],
        apply: &mut UpdateFn<'_>,
    ) -> Result<Atomic> {
        self.inner.run_atomic(key, script, args, apply).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.inner.get_many(keys).await
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        self.inner.delete_many(keys).await
    }
    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        self.inner.eval(script, keys, args).await
    }
}

/// Expands to one `#[tokio::test]` per test of the session suite, each on
/// a harness built by `$make` (whose time must be manual).
#[macro_export]
macro_rules! session_suite {
    ($make:expr) => {
        $crate::session_suite!(@tests $make;
            session_lifecycle session_idle_expiry session_rolling_vs_absolute
            session_touch_interval session_rotate session_update_concurrent
            session_index session_max_per_user session_destroy_all_vs_create
            session_destroy_all_vs_rotate session_destroy_all_concurrent
            session_generation_guard session_corrupt_and_invalid
            session_secrets_hidden refresh_rotation_and_reuse refresh_revocation
            refresh_expiry denylist_expiry);
    };
    (@tests $make:expr; $($name:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let harness = $make;
                $crate::testkit::session::$name(&harness).await;
            }
        )*
        #[test]
        fn session_suite_is_complete() {
            let mut listed = vec![$(stringify!($name)),*];
            let mut all = $crate::testkit::session::TESTS.to_vec();
            listed.sort();
            all.sort();
            assert_eq!(listed, all, "the macro and TESTS disagree");
        }
    };
}
