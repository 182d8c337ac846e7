//! Security review (issue 10): Redis credentials never show, neither in
//! `Debug` of the config and the store nor in the errors (and their source
//! chains) of a server that refuses them.

mod common;

use std::error::Error as _;
use std::time::Duration;

use rampart::{ErrorKind, Key, Store};
use rampart_redis::{RedisConfig, RedisStore};

const RIGHT: &str = "correct-horse-battery-staple";
const WRONG: &str = "wrong-but-still-secret-9f8e7d";

/// The error as a log line would show it, its whole source chain included.
fn shown(e: &rampart::Error) -> String {
    let mut out = format!("{e} | {e:?}");
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(" | {s} | {s:?}"));
        source = s.source();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_show() {
    let server = common::Server::start();
    assert_eq!(
        server.cli(&["CONFIG", "SET", "requirepass", RIGHT]).trim(),
        "OK"
    );
    let key = Key::new("k").unwrap();

    // A wrong password from a URL: refused, and not repeated anywhere.
    let mut config =
        RedisConfig::from_url(&format!("redis://:{WRONG}@127.0.0.1:{}", server.port)).unwrap();
    config.command_timeout = Duration::from_secs(2);
    assert!(!format!("{config:?}").contains(WRONG));
    let store = RedisStore::new(config).unwrap();
    assert!(!format!("{store:?}").contains(WRONG));
    let e = store.get(&key).await.unwrap_err();
    let text = shown(&e);
    println!("wrong password: {text}");
    assert!(!text.contains(WRONG), "{text}");
    assert_eq!(e.kind(), ErrorKind::Config, "{text}");
    assert!(
        !e.is_temporary(),
        "refused credentials are permanent: {text}"
    );

    // The right one from the environment: works, and is not shown either.
    let port = server.port.to_string();
    let config = RedisConfig::from_vars(|name| match name {
        "REDIS_HOST" => Some("127.0.0.1".into()),
        "REDIS_PORT" => Some(port.clone()),
        "REDIS_PASSWORD" => Some(RIGHT.into()),
        _ => None,
    })
    .unwrap()
    .expect("configured");
    assert!(!format!("{config:?}").contains(RIGHT));
    let store = RedisStore::new(config).unwrap();
    store.set(&key, "v".into(), None).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
    assert!(!format!("{store:?}").contains(RIGHT));

    // A server-side error about a key names the key, not a credential.
    let e = store.increment(&key, 1, None).await.unwrap_err();
    let text = shown(&e);
    assert!(!text.contains(RIGHT), "{text}");
}
