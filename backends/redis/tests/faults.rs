//! Redis misbehaving: down at start, killed mid-load, restarted, paused,
//! its script cache flushed. Every call must come back within the command
//! timeout (plus a generous margin that only catches hangs) with a typed
//! temporary error, and the store must recover by itself.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart::layers::Fallback;
use rampart::{ErrorKind, Key, MemoryStore, Script, Store};
use rampart_redis::{RedisConfig, RedisStore};

const TIMEOUT: Duration = Duration::from_millis(300);
/// Far above TIMEOUT: exceeding it means a call hung, not that it was slow.
const HANG: Duration = Duration::from_secs(3);

fn store_for(port: u16) -> RedisStore {
    let mut config = RedisConfig::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    config.command_timeout = TIMEOUT;
    config.connect_timeout = TIMEOUT;
    RedisStore::new(config).unwrap()
}

/// Retries `get` until it succeeds; returns how long recovery took.
async fn recover(store: &RedisStore, key: &Key) -> Duration {
    let start = Instant::now();
    loop {
        if store.get(key).await.is_ok() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the store did not recover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starts_while_redis_is_down_then_connects() {
    let port = common::free_port();
    let store = store_for(port);
    let key = Key::new("k").unwrap();
    let start = Instant::now();
    let e = store.get(&key).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_temporary());
    assert!(
        start.elapsed() < HANG,
        "a call to a dead Redis hung for {:?}",
        start.elapsed()
    );
    // Redis appears on that port: the same store starts working.
    let server = common::Server::start_on(port);
    let took = recover(&store, &key).await;
    println!("connected {took:?} after Redis appeared");
    store.set(&key, "v".into(), None).await.unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_load_then_restarted() {
    let mut server = common::Server::start();
    let store = Arc::new(store_for(server.port));
    let key = Key::new("counter").unwrap();
    store.set(&key, "0".into(), None).await.unwrap();

    let load = |store: Arc<RedisStore>| {
        tokio::spawn(async move {
            let key = Key::new("counter").unwrap();
            let (mut ok, mut failed, mut slowest) = (0u32, 0u32, Duration::ZERO);
            let until = Instant::now() + Duration::from_millis(1_500);
            while Instant::now() < until {
                let start = Instant::now();
                match store.increment(&key, 1, None).await {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        assert!(
                            matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                            "{e}"
                        );
                        assert!(e.is_temporary());
                        failed += 1;
                    }
                }
                slowest = slowest.max(start.elapsed());
            }
            (ok, failed, slowest)
        })
    };
    let tasks: Vec<_> = (0..16).map(|_| load(store.clone())).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let mut slowest = Duration::ZERO;
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (o, f, s) = t.await.expect("no panic under faults");
        ok += o;
        failed += f;
        slowest = slowest.max(s);
    }
    println!(
        "killed mid-load: {ok} ok, {failed} failed, slowest call {slowest:?} (timeout {TIMEOUT:?})"
    );
    assert!(ok > 0 && failed > 0);
    assert!(slowest < TIMEOUT + HANG, "a call hung for {slowest:?}");

    server.restart();
    let took = recover(&store, &key).await;
    println!("recovered {took:?} after restart");
    assert_eq!(
        store.increment(&key, 1, None).await.unwrap(),
        1,
        "a fresh server starts empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn script_flush_is_survived() {
    static SCRIPT: Script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let server = common::Server::start();
    let store = store_for(server.port);
    let key = Key::new("n").unwrap();
    let args = [rampart::Arg::Int(2)];
    let keys = [&key];
    assert_eq!(
        store
            .eval(&SCRIPT, &keys, &args)
            .await
            .unwrap()
            .as_int()
            .unwrap(),
        2
    );
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]).trim(), "OK");
    assert_eq!(
        store
            .eval(&SCRIPT, &keys, &args)
            .await
            .unwrap()
            .as_int()
            .unwrap(),
        4
    );
    // The store's own scripts too.
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]).trim(), "OK");
    assert_eq!(store.increment(&key, 1, None).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_pause_times_out_then_recovers() {
    let server = common::Server::start();
    let store = store_for(server.port);
    let key = Key::new("k").unwrap();
    store.set(&key, "v".into(), None).await.unwrap();
    assert_eq!(server.cli(&["CLIENT", "PAUSE", "1500", "ALL"]).trim(), "OK");
    let start = Instant::now();
    let e = store.get(&key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_temporary());
    assert!(start.elapsed() < TIMEOUT + HANG);
    let took = recover(&store, &key).await;
    println!("recovered {took:?} after the pause began to end");
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fallback_serves_while_redis_is_down() {
    let mut server = common::Server::start();
    let store = Fallback::new(store_for(server.port), MemoryStore::new())
        .retry_after(Duration::from_millis(200));
    let key = Key::new("k").unwrap();
    store.set(&key, "redis".into(), None).await.unwrap();
    server.kill();
    // Answered by the insurance store, without an error.
    store.set(&key, "memory".into(), None).await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"memory"[..])
    );
    server.restart();
    let start = Instant::now();
    loop {
        if matches!(store.state(), rampart::layers::FallbackState::Primary)
            && store.get(&key).await.unwrap().is_none()
        {
            break; // back on the (fresh, empty) Redis
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "never went back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = store.get(&key).await;
    }
}

#[tokio::test]
async fn health_reports_server_figures() {
    let server = common::Server::start();
    let store = store_for(server.port);
    store
        .set(&Key::new("a").unwrap(), "1".into(), None)
        .await
        .unwrap();
    let health = store.health().await.unwrap();
    assert!(
        health.version.starts_with(|c: char| c.is_ascii_digit()),
        "{health:?}"
    );
    assert!(health.used_memory > 0);
    assert_eq!(health.keys, 1);
    let now = store.server_time().await.unwrap();
    assert!(now.as_secs() > 1_600_000_000);
}

#[tokio::test]
async fn invalid_config_is_a_clear_error() {
    let e = RedisStore::from_url("http://nope").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = RedisStore::from_url("rediss://127.0.0.1:1").err();
    if !cfg!(feature = "tls") {
        assert_eq!(e.unwrap().kind(), ErrorKind::Config);
    }
}
