//! The demo server (`examples/server.rs` of the core crate) over a real
//! redis-server, hit with HTTP requests: the same flows as the core's
//! `tests/server.rs`, with every decision made by the Lua twins on Redis.

mod common;

// `main` is unused here, and its `tracing` feature is the core crate's.
#[allow(dead_code, unexpected_cfgs)]
#[path = "../../../examples/server.rs"]
mod server;

// The core's HTTP test client, shared with its tests/server.rs.
#[allow(dead_code)]
#[path = "../../../tests/support/http.rs"]
mod http_client;

use std::sync::Arc;

use http_client::{serve_app, TestServer as Http};
use rampart::limit::presets::Presets;
use rampart::{Store, SystemClock};
use serde_json::{json, Value};

/// A redis-server and the demo app over it.
async fn start() -> (common::Server, Http) {
    let redis = common::Server::start();
    let store: Arc<dyn Store> = Arc::new(redis.store());
    let config = server::Config {
        presets: Presets::standard().unwrap(),
        cookie_secure: true,
        trusted_proxies: vec![],
        clock: SystemClock::shared(),
    };
    let http = serve_app(server::app(store, config).expect("app")).await;
    (redis, http)
}

fn creds(user: &str, password: &str) -> Option<Value> {
    Some(json!({ "username": user, "password": password }))
}

#[tokio::test]
async fn sixth_login_attempt_gets_429_over_redis() {
    let (redis, http) = start().await;
    let r = http
        .send("POST", "/auth/register", &[], creds("ann", "correct horse"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    for i in 1..=5u64 {
        let r = http
            .send("POST", "/auth/login", &[], creds("ann", "wrong pass"))
            .await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
        let remaining = format!("\"auth\"; r={};", 5 - i);
        assert!(
            r.rate_limit("auth").unwrap().starts_with(&remaining),
            "attempt {i}"
        );
    }
    for _ in 0..2 {
        let r = http
            .send("POST", "/auth/login", &[], creds("ann", "correct horse"))
            .await;
        assert_eq!(r.status, 429, "{}", r.body);
        // The 15-minute block starts with the denial (Redis TIME).
        assert_eq!(r.header("retry-after"), Some("900"));
        assert!(r.rate_limit("auth").unwrap().starts_with("\"auth\"; r=0;"));
        assert_eq!(r.json()["error"], "RAMPART_RATE_LIMITED");
    }
    // The decisions live in Redis.
    let keys = redis.cli(&["--scan", "--pattern", "rl:auth:login:*"]);
    assert!(keys.contains("rl:auth:login:ip4:127.0.0.1"), "{keys}");
}

#[tokio::test]
async fn sessions_and_the_cached_catalogue_over_redis() {
    let (_redis, http) = start().await;
    assert_eq!(
        http.send("POST", "/auth/register", &[], creds("bo", "12345678"))
            .await
            .status,
        201
    );
    let r = http
        .send("POST", "/auth/login", &[], creds("bo", "12345678"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.cookie().unwrap();
    let b = http
        .send("POST", "/auth/login", &[], creds("bo", "12345678"))
        .await
        .cookie()
        .unwrap();
    let cookie_a = format!("sid={a}");
    let cookie_b = format!("sid={b}");
    let me = http
        .send("GET", "/me", &[("cookie", &cookie_a)], None)
        .await;
    assert_eq!(me.json()["username"], "bo");
    let list = http
        .send("GET", "/sessions", &[("cookie", &cookie_b)], None)
        .await
        .json();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2, "{list}");
    let r = http
        .send(
            "POST",
            "/auth/logout",
            &[("cookie", &cookie_a)],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.cookie().as_deref(), Some(""));
    assert_eq!(
        http.send("GET", "/me", &[("cookie", &cookie_a)], None)
            .await
            .status,
        401
    );
    let r = http
        .send(
            "POST",
            "/auth/logout-everywhere",
            &[("cookie", &cookie_b)],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.json()["ended"], 1);
    assert_eq!(
        http.send("GET", "/me", &[("cookie", &cookie_b)], None)
            .await
            .status,
        401
    );

    let get = |path: &'static str| http.send("GET", path, &[], None);
    assert_eq!(
        get("/api/catalogue/1").await.header("x-cache"),
        Some("miss")
    );
    let hit = get("/api/catalogue/1").await;
    assert_eq!(hit.header("x-cache"), Some("hit"));
    assert_eq!(hit.json()["name"], "Lamp");
    let r = http
        .send(
            "PUT",
            "/api/catalogue/1",
            &[],
            Some(json!({ "name": "Lantern", "price_cents": 999 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = get("/api/catalogue/1").await;
    assert_eq!(after.header("x-cache"), Some("miss"));
    assert_eq!(after.json()["name"], "Lantern");

    let health = get("/health").await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"]["backend"], "redis");
    assert!(
        health["store"]["server"]
            .as_str()
            .unwrap()
            .starts_with("redis "),
        "{health}"
    );
    assert_eq!(health["cache"]["hits"], 1);
}

#[tokio::test]
async fn lock_flow_over_redis() {
    let (_redis, http) = start().await;
    let r = http
        .send("POST", "/locks/job", &[], Some(json!({ "ttl_ms": 30_000 })))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let fence = r.json()["fence"].as_u64().unwrap();
    assert_eq!(
        http.send("POST", "/locks/job", &[], Some(json!({})))
            .await
            .status,
        409
    );
    let wrong = "ffffffffffffffffffffffffffffffff";
    let put = |t: &str| {
        let t = t.to_owned();
        let http = &http;
        async move {
            http.send(
                "PUT",
                "/locks/job/resource",
                &[("x-lock-token", &t)],
                Some(json!({ "value": "v" })),
            )
            .await
        }
    };
    let r = put(&token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["fence"], fence);
    assert_eq!(put(wrong).await.status, 409);
    let r = http
        .send(
            "POST",
            "/locks/job/extend",
            &[("x-lock-token", &token)],
            Some(json!({ "ttl_ms": 60_000 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let status = http.send("GET", "/locks/job", &[], None).await.json();
    assert_eq!(status["locked"], true);
    assert!(
        status["remaining_ms"].as_u64().unwrap() > 30_000,
        "{status}"
    );
    assert_eq!(
        http.send("DELETE", "/locks/job", &[("x-lock-token", wrong)], None)
            .await
            .status,
        409
    );
    assert_eq!(
        http.send("DELETE", "/locks/job", &[("x-lock-token", &token)], None)
            .await
            .status,
        204
    );
    assert_eq!(
        http.send("GET", "/locks/job", &[], None).await.json()["locked"],
        false
    );
}
