//! Security review (issue 10): secrets never show in `Debug`, in error
//! messages, or at rest in the store. The session id, the refresh token and
//! the lock token are what a client (or a lock holder) proves itself with;
//! a log line or a store dump holding one would hand it to whoever reads it.

use std::sync::Arc;
use std::time::Duration;

use rampart::lock::{LockToken, Locks};
use rampart::session::{
    Denylist, Refresh, RefreshConfig, RefreshTokens, SessionConfig, SessionMeta, Sessions,
};
use rampart::{Cursor, ErrorKind, Key, MemoryStore, Store, Timestamp};

/// Every key and value in `store`, as lossy text.
async fn dump(store: &MemoryStore) -> String {
    let mut out = String::new();
    let mut cursor = Cursor::start();
    loop {
        let page = store.scan("", &cursor, 100).await.unwrap();
        for key in &page.keys {
            out.push_str(key.as_str());
            out.push('=');
            if let Some(v) = store.get(key).await.unwrap() {
                out.push_str(&String::from_utf8_lossy(&v));
            }
            out.push('\n');
        }
        match page.next {
            Some(next) => cursor = next,
            None => return out,
        }
    }
}

#[tokio::test]
async fn session_ids_stay_out_of_debug_and_the_store() {
    let store = Arc::new(MemoryStore::new());
    let sessions = Sessions::new(store.clone(), SessionConfig::default()).unwrap();
    let created = sessions
        .create(
            "alice",
            &"private cart",
            SessionMeta::new().with_ip("203.0.113.7"),
        )
        .await
        .unwrap();
    let id = created.id.as_str().to_owned();
    let shown = format!("{created:?}");
    assert!(!shown.contains(&id), "{shown}");
    let session = sessions.get::<String>(&created.id).await.unwrap().unwrap();
    let shown = format!("{session:?}");
    assert!(
        !shown.contains(&id) && !shown.contains("private cart"),
        "{shown}"
    );
    let rotated = sessions.rotate(&created.id).await.unwrap().unwrap();
    assert!(!format!("{:?}", Some(&rotated)).contains(rotated.as_str()));
    // A dump of the store yields neither id: records live under hashes.
    let at_rest = dump(&store).await;
    assert!(!at_rest.is_empty());
    assert!(!at_rest.contains(&id), "{at_rest}");
    assert!(!at_rest.contains(rotated.as_str()), "{at_rest}");
}

#[tokio::test]
async fn refresh_tokens_stay_out_of_debug_and_the_store() {
    let store = Arc::new(MemoryStore::new());
    let tokens = RefreshTokens::new(store.clone(), RefreshConfig::default()).unwrap();
    let issued = tokens.issue("alice").await.unwrap();
    let first = issued.token.as_str().to_owned();
    let shown = format!("{issued:?}");
    assert!(!shown.contains(&first), "{shown}");
    let Refresh::Rotated(rotated) = tokens.rotate(&issued.token).await.unwrap() else {
        panic!("a current token rotates");
    };
    let second = rotated.token.as_str().to_owned();
    let shown = format!("{rotated:?}");
    assert!(
        !shown.contains(&second) && !shown.contains(&first),
        "{shown}"
    );
    let at_rest = dump(&store).await;
    assert!(!at_rest.is_empty());
    for token in [&first, &second] {
        assert!(!at_rest.contains(token.as_str()), "{at_rest}");
    }
    // Reuse of the spent token is detected and revokes the family.
    assert!(matches!(
        tokens.rotate(&issued.token).await.unwrap(),
        Refresh::ReuseDetected { .. }
    ));
}

#[tokio::test]
async fn denied_token_ids_are_stored_hashed() {
    let store = Arc::new(MemoryStore::new());
    let denylist = Denylist::new(store.clone());
    let jti = "eyJhbGciOiJIUzI1NiJ9.secret-access-token";
    let exp = Timestamp::from_secs(4_000_000_000);
    assert!(denylist.deny(jti, exp).await.unwrap());
    assert!(denylist.is_denied(jti).await.unwrap());
    let at_rest = dump(&store).await;
    assert!(!at_rest.is_empty());
    assert!(!at_rest.contains("secret-access-token"), "{at_rest}");
}

#[tokio::test]
async fn lock_tokens_stay_out_of_debug_and_errors() {
    let store = Arc::new(MemoryStore::new());
    let locks = Locks::new(store.clone());
    let guard = locks
        .try_acquire("report", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free lock");
    let hex = guard.token().as_hex().to_owned();
    assert_eq!(format!("{:?}", guard.token()), "LockToken(..)");
    let shown = format!("{guard:?}");
    assert!(!shown.contains(&hex), "{shown}");
    // A token that is not 32 hex digits is refused without being repeated.
    let secret = "not-a-token-but-secret-looking-text";
    let e = LockToken::from_hex(secret).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!format!("{e} {e:?}").contains(secret));

    // A corrupt lock state holding a token-like value: the error names the
    // key, never the stored bytes.
    let key = Key::new("lock:broken").unwrap();
    let planted = format!("1|x|y|{hex}");
    store.set(&key, planted.into(), None).await.unwrap();
    let e = locks
        .try_acquire("broken", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptData, "{e}");
    assert!(!format!("{e} {e:?}").contains(&hex), "{e:?}");
    assert!(guard.release().await.unwrap().is_released());
}
