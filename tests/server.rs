//! The demo server (`examples/server.rs`) on a free loopback port, hit
//! with real HTTP requests: rate-limit tiers and their headers, sessions
//! with cookies, the GET cache with invalidation, process locks, health,
//! and a store that is down.

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

// Shared with the Redis variant (backends/redis/tests/web_server.rs).
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http_client;

use std::sync::Arc;
use std::time::Duration;

use http_client::{serve_app, TestServer};
use rampart::limit::presets::Presets;
use rampart::{ErrorKind, ManualClock, MemoryStore, Store, Timestamp};
use rampart_mock::FaultyStore;
use serde_json::json;

fn config(clock: &ManualClock) -> server::Config {
    server::Config {
        presets: Presets::standard().unwrap(),
        cookie_secure: true,
        trusted_proxies: vec!["127.0.0.1".into()],
        clock: clock.shared(),
    }
}

/// A fresh server on an in-process store and a manual clock.
async fn start() -> (TestServer, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::builder().clock(clock.shared()).build());
    let srv = serve(store, config(&clock)).await;
    (srv, clock)
}

async fn serve(store: Arc<dyn Store>, config: server::Config) -> TestServer {
    serve_app(server::app(store, config).expect("app")).await
}

impl TestServer {
    async fn register(&self, user: &str, password: &str) {
        let r = self
            .post(
                "/auth/register",
                &[],
                json!({ "username": user, "password": password }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    /// Logs in; returns the session cookie value.
    async fn login(&self, user: &str, password: &str, headers: &[(&str, &str)]) -> String {
        let r = self
            .post(
                "/auth/login",
                headers,
                json!({ "username": user, "password": password }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let cookie = r.cookie().expect("a session cookie");
        assert!(!cookie.is_empty());
        cookie
    }
}

fn cookie(value: &str) -> String {
    format!("theme=dark; sid={value}")
}

#[tokio::test]
async fn sixth_login_attempt_in_15_minutes_gets_429_and_stays_blocked() {
    let (srv, clock) = start().await;
    srv.register("ann", "correct horse").await;
    let attempt = |password: &'static str| {
        srv.post(
            "/auth/login",
            &[],
            json!({ "username": "ann", "password": password }),
        )
    };
    // Five attempts in the window: answered (wrong password = 401), each
    // with the auth tier's headers counting down.
    for i in 1..=5u64 {
        let r = attempt("wrong").await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
        assert_eq!(
            r.policy("auth").as_deref(),
            Some("\"auth\"; q=5; w=900"),
            "attempt {i}"
        );
        assert_eq!(
            r.rate_limit("auth"),
            Some(format!("\"auth\"; r={}; t=900", 5 - i)),
            "attempt {i}"
        );
        assert!(r.header("retry-after").is_none());
        clock.advance(Duration::from_secs(60));
    }
    // The sixth, even with the right password: 429, Retry-After = the
    // 15-minute block, nothing left.
    let r = attempt("correct horse").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("900"));
    // `t`: the log empties in 840 s, but the 900 s block outlasts it, and
    // the quota is back only when both are over.
    assert_eq!(
        r.rate_limit("auth").as_deref(),
        Some("\"auth\"; r=0; t=900")
    );
    assert_eq!(r.policy("auth").as_deref(), Some("\"auth\"; q=5; w=900"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["error"], "RAMPART_RATE_LIMITED");
    assert_eq!(r.json()["retry_after"], 900);
    assert!(r.cookie().is_none(), "a denied login sets no cookie");
    // The general tier still reports itself on the denial.
    assert!(
        r.rate_limit("general").is_some(),
        "{:?}",
        r.all("ratelimit")
    );

    // Still blocked later in the block, and once the window alone would
    // have admitted it again.
    clock.advance(Duration::from_secs(600));
    let r = attempt("correct horse").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("300"));

    // After the block: admitted.
    clock.advance(Duration::from_secs(300));
    let r = attempt("correct horse").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Registration has its own auth budget, unaffected by the logins (the
    // first sign-up, 20 minutes ago, has left its window).
    let r = srv
        .post(
            "/auth/register",
            &[],
            json!({ "username": "bob", "password": "12345678" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.rate_limit("auth").as_deref(),
        Some("\"auth\"; r=4; t=900")
    );
}

#[tokio::test]
async fn ipv6_clients_of_one_64_share_the_auth_budget() {
    let (srv, _clock) = start().await;
    // The server trusts X-Forwarded-For from 127.0.0.1 (the test's proxy).
    for i in 0..5 {
        let addr = format!("2001:db8:1:2::{:x}", i + 1);
        let r = srv
            .post(
                "/auth/login",
                &[("x-forwarded-for", &addr)],
                json!({ "username": "nobody", "password": "whatever1" }),
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // A sixth address in the same /64: rotating does not help.
    let r = srv
        .post(
            "/auth/login",
            &[("x-forwarded-for", "2001:db8:1:2:ffff:ffff:ffff:fffe")],
            json!({ "username": "nobody", "password": "whatever1" }),
        )
        .await;
    assert_eq!(r.status, 429);
    // Another /64 has its own budget; so does the proxy itself.
    let r = srv
        .post(
            "/auth/login",
            &[("x-forwarded-for", "2001:db8:1:3::1")],
            json!({ "username": "nobody", "password": "whatever1" }),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.rate_limit("auth").as_deref(),
        Some("\"auth\"; r=4; t=900")
    );
    // An IPv4-mapped address is its IPv4 address.
    let r = srv
        .post(
            "/auth/login",
            &[("x-forwarded-for", "::ffff:203.0.113.5")],
            json!({ "username": "nobody", "password": "whatever1" }),
        )
        .await;
    assert_eq!(
        r.rate_limit("auth").as_deref(),
        Some("\"auth\"; r=4; t=900")
    );
    let r = srv
        .post(
            "/auth/login",
            &[("x-forwarded-for", "203.0.113.5")],
            json!({ "username": "nobody", "password": "whatever1" }),
        )
        .await;
    assert_eq!(
        r.rate_limit("auth").as_deref(),
        Some("\"auth\"; r=3; t=900")
    );
}

#[tokio::test]
async fn general_and_api_tiers_send_their_headers() {
    let (srv, _clock) = start().await;
    // /health is not rate limited.
    let r = srv.get("/health", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.all("ratelimit").is_empty());

    let r = srv.get("/api/catalogue", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.policy("general").as_deref(),
        Some("\"general\"; q=100; w=900")
    );
    assert_eq!(r.policy("api").as_deref(), Some("\"api\"; q=1000; w=3600"));
    assert!(r
        .rate_limit("general")
        .unwrap()
        .starts_with("\"general\"; r=99; t="));
    assert!(r
        .rate_limit("api")
        .unwrap()
        .starts_with("\"api\"; r=999; t="));
    assert!(r.header("retry-after").is_none());

    // An API key has its own api budget; the general tier is per client.
    let r = srv.get("/api/catalogue", &[("x-api-key", "k-1")]).await;
    assert!(r
        .rate_limit("api")
        .unwrap()
        .starts_with("\"api\"; r=999; t="));
    assert!(r
        .rate_limit("general")
        .unwrap()
        .starts_with("\"general\"; r=98; t="));
    let r = srv.get("/api/catalogue", &[]).await;
    assert!(r
        .rate_limit("api")
        .unwrap()
        .starts_with("\"api\"; r=998; t="));

    // Outside /api only the general tier applies.
    let r = srv.get("/me", &[]).await;
    assert_eq!(r.status, 401);
    assert!(r
        .rate_limit("general")
        .unwrap()
        .starts_with("\"general\"; r=96; t="));
    assert!(r.rate_limit("api").is_none());
    assert!(r.policy("auth").is_none());
}

#[tokio::test]
async fn general_tier_denies_the_101st_request() {
    let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::builder().clock(clock.shared()).build());
    let mut config = config(&clock);
    config.presets =
        Presets::from_lookup(|name| (name == "RATE_LIMIT_GENERAL_POINTS").then(|| "3".to_owned()))
            .unwrap();
    let srv = serve(store, config).await;
    for _ in 0..3 {
        assert_eq!(srv.get("/me", &[]).await.status, 401);
    }
    let r = srv.get("/me", &[]).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    // The sliding window counter may ask for up to two windows.
    assert!((1..=1800).contains(&retry), "{retry}");
    assert!(r
        .rate_limit("general")
        .unwrap()
        .starts_with("\"general\"; r=0; t="));
}

#[tokio::test]
async fn sessions_login_me_list_logout_and_logout_everywhere() {
    let (srv, _clock) = start().await;
    srv.register("carol", "open sesame").await;
    // Logged out: 401.
    assert_eq!(srv.get("/me", &[]).await.status, 401);

    let a = srv
        .login("carol", "open sesame", &[("user-agent", "laptop")])
        .await;
    let r = srv
        .post(
            "/auth/login",
            &[],
            json!({ "username": "carol", "password": "open sesame" }),
        )
        .await;
    let set_cookie = r.all("set-cookie").join("\n");
    assert!(set_cookie.contains("; Path=/"), "{set_cookie}");
    assert!(set_cookie.contains("; HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("; SameSite=Lax"), "{set_cookie}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let b = r.cookie().unwrap();
    assert_ne!(a, b);

    let r = srv.get("/me", &[("cookie", &cookie(&a))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["username"], "carol");

    // Two sessions, the caller's marked current, with where they came from.
    let r = srv.get("/sessions", &[("cookie", &cookie(&b))]).await;
    let list = r.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{}", r.body);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list.iter().any(|s| s["user_agent"] == "laptop"));
    assert!(list.iter().all(|s| s["ip"] == "127.0.0.1"));

    // Logging in with a live cookie rotates: a new id, the old one dead.
    let a2 = srv
        .login("carol", "open sesame", &[("cookie", &cookie(&a))])
        .await;
    assert_ne!(a2, a);
    let r = srv.get("/me", &[("cookie", &cookie(&a))]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.cookie().as_deref(), Some(""), "a dead cookie is cleared");
    let r = srv.get("/sessions", &[("cookie", &cookie(&a2))]).await;
    assert_eq!(r.json()["sessions"].as_array().unwrap().len(), 2);

    // Logout ends one session and clears its cookie.
    let r = srv
        .post("/auth/logout", &[("cookie", &cookie(&a2))], json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["logged_out"], true);
    assert_eq!(r.cookie().as_deref(), Some(""));
    assert!(r.all("set-cookie")[0].contains("Max-Age=0"));
    assert_eq!(
        srv.get("/me", &[("cookie", &cookie(&a2))]).await.status,
        401
    );
    assert_eq!(srv.get("/me", &[("cookie", &cookie(&b))]).await.status, 200);

    // Log out everywhere ends every session of the user.
    let c = srv.login("carol", "open sesame", &[]).await;
    let r = srv
        .post(
            "/auth/logout-everywhere",
            &[("cookie", &cookie(&b))],
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ended"], 2);
    for id in [&b, &c] {
        assert_eq!(srv.get("/me", &[("cookie", &cookie(id))]).await.status, 401);
    }
    // A forged cookie is no session.
    let r = srv.get("/me", &[("cookie", "sid=forged")]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.cookie().as_deref(), Some(""));
}

#[tokio::test]
async fn catalogue_is_cached_and_invalidated_on_update() {
    let (srv, _clock) = start().await;
    let first = srv.get("/api/catalogue/2", &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-cache"), Some("miss"));
    assert_eq!(first.json()["name"], "Chair");
    let second = srv.get("/api/catalogue/2", &[]).await;
    assert_eq!(second.header("x-cache"), Some("hit"));
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("content-type"), Some("application/json"));
    // The list is another entry (another key), with the same tag.
    assert_eq!(
        srv.get("/api/catalogue", &[]).await.header("x-cache"),
        Some("miss")
    );
    assert_eq!(
        srv.get("/api/catalogue", &[]).await.header("x-cache"),
        Some("hit")
    );
    // Query strings are part of the key.
    assert_eq!(
        srv.get("/api/catalogue?page=2", &[])
            .await
            .header("x-cache"),
        Some("miss")
    );
    // The catalogue is public: a signed-in browser's cookie does not stop
    // the cache.
    let r = srv
        .get("/api/catalogue/2", &[("cookie", "sid=whatever")])
        .await;
    assert_eq!(r.header("x-cache"), Some("hit"));
    // The client can opt out.
    let r = srv
        .get("/api/catalogue/2", &[("cache-control", "no-store")])
        .await;
    assert_eq!(r.header("x-cache"), Some("bypass"));

    // An update invalidates every catalogue entry.
    let r = srv
        .send(
            "PUT",
            "/api/catalogue/2",
            &[],
            Some(json!({ "name": "Stool", "price_cents": 2500 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("x-cache").is_none(), "writes are not cached");
    let r = srv.get("/api/catalogue/2", &[]).await;
    assert_eq!(r.header("x-cache"), Some("miss"));
    assert_eq!(r.json()["name"], "Stool");
    assert_eq!(
        srv.get("/api/catalogue/2", &[]).await.header("x-cache"),
        Some("hit")
    );
    let list = srv.get("/api/catalogue", &[]).await;
    assert_eq!(list.header("x-cache"), Some("miss"));
    assert!(list.body.contains("Stool"));

    // Errors are not cached.
    assert_eq!(srv.get("/api/catalogue/99", &[]).await.status, 404);
    let r = srv.get("/api/catalogue/99", &[]).await;
    assert_eq!((r.status, r.header("x-cache")), (404, Some("miss")));

    // /health shows the cache counters.
    let health = srv.get("/health", &[]).await.json();
    assert_eq!(health["cache"]["hits"], 4, "{health}");
    assert_eq!(health["cache"]["tag_invalidations"], 1, "{health}");
}

#[tokio::test]
async fn process_lock_acquire_conflict_update_extend_status_release() {
    let (srv, clock) = start().await;
    let r = srv
        .post("/locks/report", &[], json!({ "ttl_ms": 30_000 }))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let fence = r.json()["fence"].as_u64().unwrap();
    assert_eq!(token.len(), 32);

    // A second acquirer: 409 with a Retry-After.
    let r = srv.post("/locks/report", &[], json!({})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["error"], "locked");
    assert_eq!(r.header("retry-after"), Some("30"));

    // Update with the holder's token, then with a wrong one, then none.
    let update = |token: String, value: i64| {
        let srv = &srv;
        async move {
            let headers: Vec<(&str, &str)> = if token.is_empty() {
                vec![]
            } else {
                vec![("x-lock-token", token.as_str())]
            };
            srv.send(
                "PUT",
                "/locks/report/resource",
                &headers,
                Some(json!({ "value": value })),
            )
            .await
        }
    };
    let r = update(token.clone(), 1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["fence"], fence);
    assert_eq!(r.json()["value"], 1);
    let wrong = "0123456789abcdef0123456789abcdef".to_owned();
    assert_eq!(update(wrong.clone(), 2).await.status, 409);
    assert_eq!(update(String::new(), 2).await.status, 400);
    assert_eq!(update("not-hex".into(), 2).await.status, 400);

    // Extend: the holder can, a stranger cannot.
    clock.advance(Duration::from_secs(20));
    let r = srv
        .post(
            "/locks/report/extend",
            &[("x-lock-token", &token)],
            json!({ "ttl_ms": 60_000 }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = srv
        .post(
            "/locks/report/extend",
            &[("x-lock-token", &wrong)],
            json!({ "ttl_ms": 60_000 }),
        )
        .await;
    assert_eq!(r.status, 409);

    // Status: held, 60 s left after the extension, the same fence.
    clock.advance(Duration::from_secs(15));
    let s = srv.get("/locks/report", &[]).await.json();
    assert_eq!(s["locked"], true);
    assert_eq!(s["remaining_ms"], 45_000);
    assert_eq!(s["fence"], fence);

    // Release: a stranger cannot, the holder can.
    let r = srv
        .send("DELETE", "/locks/report", &[("x-lock-token", &wrong)], None)
        .await;
    assert_eq!(r.status, 409);
    let r = srv
        .send("DELETE", "/locks/report", &[("x-lock-token", &token)], None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(srv.get("/locks/report", &[]).await.json()["locked"], false);

    // The next holder gets a greater fence; the old token is worthless.
    let r = srv
        .post("/locks/report", &[], json!({ "ttl_ms": 1_000 }))
        .await;
    assert_eq!(r.status, 201);
    let next = r.json()["token"].as_str().unwrap().to_owned();
    assert!(r.json()["fence"].as_u64().unwrap() > fence);
    assert_eq!(update(token.clone(), 3).await.status, 409);
    assert_eq!(update(next.clone(), 3).await.status, 200);
    // A hold that expired is not held: its token can no longer write.
    clock.advance(Duration::from_secs(2));
    assert_eq!(update(next, 4).await.status, 409);
    assert_eq!(srv.get("/locks/report", &[]).await.json()["locked"], false);
}

#[tokio::test]
async fn health_reports_the_store_and_the_cache() {
    let (srv, _clock) = start().await;
    let r = srv.get("/health", &[]).await;
    assert_eq!(r.status, 200);
    let h = r.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["store"]["backend"], "in-process");
    assert!(h["store"]["latency_us"].is_u64(), "{h}");
    assert!(h["store"]["keys"].is_u64(), "{h}");
    assert_eq!(h["cache"]["hits"], 0);
    assert!(h["cache"]["hit_rate"].is_null());
}

#[tokio::test]
async fn a_store_that_is_down_gives_503_never_a_panic() {
    let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
    let faulty = Arc::new(
        FaultyStore::new(MemoryStore::builder().clock(clock.shared()).build())
            .with_error(ErrorKind::Unavailable),
    );
    let srv = serve(faulty.clone(), config(&clock)).await;
    assert_eq!(srv.get("/health", &[]).await.status, 200);
    faulty.break_now();
    let r = srv.get("/health", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "unavailable");
    // The general tier cannot decide (its policy is to fail): 503 with a
    // Retry-After, and the handler is not reached.
    let r = srv.get("/api/catalogue", &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"], "RAMPART_UNAVAILABLE");
    faulty.heal();
    assert_eq!(srv.get("/api/catalogue", &[]).await.status, 200);
}
