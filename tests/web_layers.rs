//! The `rampart::web` layers on small routers, called as tower services
//! (no network): store-failure policies, key extraction, header styles,
//! what the cache refuses to store, a missing session layer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use rampart::cache::Cache;
use rampart::limit::{HeaderStyle, Limiter, OnStoreError, Quota, Rule};
use rampart::web::{CacheLayer, RateLimitLayer, Session};
use rampart::{ErrorKind, MemoryStore, Store};
use rampart_mock::FaultyStore;
use tower_service::Service;

async fn call(app: &mut Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    std::future::poll_fn(|cx| <Router as Service<Request<Body>>>::poll_ready(app, cx))
        .await
        .unwrap();
    let res: Response<Body> = app.call(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn req(path: &str, peer: &str) -> Request<Body> {
    let mut r = Request::builder().uri(path).body(Body::empty()).unwrap();
    r.extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    r
}

fn counting_router(hits: Arc<AtomicUsize>) -> Router {
    Router::new().route(
        "/",
        get(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    )
}

fn broken_limiter(policy: OnStoreError) -> Limiter<Arc<dyn Store>> {
    let faulty = FaultyStore::new(MemoryStore::new()).with_error(ErrorKind::Unavailable);
    faulty.break_now();
    let store: Arc<dyn Store> = Arc::new(faulty);
    Limiter::builder(store, Rule::fixed_window(Quota::per_minute(5)).unwrap())
        .on_store_error(policy)
        .build()
        .unwrap()
}

#[tokio::test]
async fn store_failures_follow_the_limiter_policy() {
    let hits = Arc::new(AtomicUsize::new(0));
    // Fail (the default): 503 with Retry-After, the handler is not called.
    let mut app = counting_router(hits.clone())
        .layer(RateLimitLayer::new(broken_limiter(OnStoreError::Fail)));
    let (status, headers, body) = call(&mut app, req("/", "192.0.2.1:1")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(body.contains("RAMPART_UNAVAILABLE"));
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    // Allow: fail open, the request goes through.
    let mut app = counting_router(hits.clone())
        .layer(RateLimitLayer::new(broken_limiter(OnStoreError::Allow)));
    let (status, _, _) = call(&mut app, req("/", "192.0.2.1:1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Deny: fail closed, 429 with the limiter's retry.
    let mut app = counting_router(hits.clone())
        .layer(RateLimitLayer::new(broken_limiter(OnStoreError::Deny)));
    let (status, headers, _) = call(&mut app, req("/", "192.0.2.1:1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Insurance: an in-process store decides instead.
    let insurance: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut app = counting_router(hits.clone()).layer(RateLimitLayer::new(broken_limiter(
        OnStoreError::Insurance(insurance),
    )));
    let (status, headers, _) = call(&mut app, req("/", "192.0.2.1:1")).await;
    assert_eq!(status, StatusCode::OK);
    let state = headers["ratelimit"].to_str().unwrap();
    assert!(state.starts_with("limit=5, remaining=4, reset="), "{state}");
}

#[tokio::test]
async fn no_key_is_a_500_and_custom_extractors_key_by_what_they_return() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let limiter = Limiter::new(store, Rule::fixed_window(Quota::per_minute(1)).unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let mut app = counting_router(hits.clone()).layer(RateLimitLayer::new(limiter));
    // No connect info: no client address.
    let bare = Request::builder().uri("/").body(Body::empty()).unwrap();
    let (status, _, body) = call(&mut app, bare).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("RAMPART_NO_RATE_LIMIT_KEY"), "{body}");

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let limiter = Limiter::new(store, Rule::fixed_window(Quota::per_minute(1)).unwrap());
    let by_user = |parts: &axum::http::request::Parts| {
        Some(format!(
            "user:{}",
            parts.headers.get("x-user")?.to_str().ok()?
        ))
    };
    let mut app = counting_router(hits.clone()).layer(
        RateLimitLayer::new(limiter)
            .key_extractor(by_user)
            .header_style(HeaderStyle::Legacy),
    );
    let as_user = |u: &str| {
        let mut r = req("/", "192.0.2.1:1");
        r.headers_mut().insert("x-user", u.parse().unwrap());
        r
    };
    let (status, headers, _) = call(&mut app, as_user("a")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-ratelimit-limit"], "1");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    // Same address, another user: another bucket.
    assert_eq!(call(&mut app, as_user("b")).await.0, StatusCode::OK);
    let (status, headers, _) = call(&mut app, as_user("a")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn stacked_layers_keep_the_innermost_headers_outside_draft_8() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let strict = Limiter::builder(
        store.clone(),
        Rule::fixed_window(Quota::per_minute(2)).unwrap(),
    )
    .prefix("strict")
    .build()
    .unwrap();
    let loose = Limiter::builder(store, Rule::fixed_window(Quota::per_minute(50)).unwrap())
        .prefix("loose")
        .build()
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let mut app = counting_router(hits)
        .route_layer(RateLimitLayer::new(strict))
        .layer(RateLimitLayer::new(loose));
    let (_, headers, _) = call(&mut app, req("/", "192.0.2.1:1")).await;
    assert_eq!(headers.get_all("ratelimit").iter().count(), 1);
    let state = headers["ratelimit"].to_str().unwrap();
    assert!(state.starts_with("limit=2, remaining=1, reset="), "{state}");
}

fn cache() -> Cache<Arc<dyn Store>> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    Cache::builder(store).namespace("t").build().unwrap()
}

#[tokio::test]
async fn the_cache_layer_stores_only_shareable_200s() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let handler = move |path: &'static str| {
        let h = h.clone();
        move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                match path {
                    "cookie" => ([("set-cookie", "a=b")], "personal").into_response(),
                    "private" => ([("cache-control", "private")], "mine").into_response(),
                    "big" => "x".repeat(100).into_response(),
                    // 100 bytes in 10 chunks, size unknown in advance.
                    "stream" => Body::from_stream(futures_util::stream::iter(
                        (0..10).map(|_| Ok::<_, std::io::Error>("y".repeat(10))),
                    ))
                    .into_response(),
                    _ => "shared".into_response(),
                }
            }
        }
    };
    let layer = CacheLayer::new(cache(), Duration::from_secs(60)).max_body(50);
    let mut app = Router::new()
        .route("/shared", get(handler("shared")))
        .route("/cookie", get(handler("cookie")))
        .route("/private", get(handler("private")))
        .route("/big", get(handler("big")))
        .route("/stream", get(handler("stream")))
        .layer(layer);
    let plain = |path: &str| Request::builder().uri(path).body(Body::empty()).unwrap();

    for path in ["/cookie", "/private", "/big", "/stream"] {
        for _ in 0..2 {
            let (status, headers, body) = call(&mut app, plain(path)).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers["x-cache"], "miss", "{path}");
            if path == "/big" || path == "/stream" {
                // Too large to store, passed on whole.
                assert_eq!(body.len(), 100, "{path}");
            }
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 8);

    assert_eq!(call(&mut app, plain("/shared")).await.1["x-cache"], "miss");
    let (_, headers, body) = call(&mut app, plain("/shared")).await;
    assert_eq!(
        (headers["x-cache"].to_str().unwrap(), body.as_str()),
        ("hit", "shared")
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        9,
        "a hit does not call the handler"
    );

    // Personal requests bypass the cache both ways.
    for (name, value) in [
        ("authorization", "Bearer x"),
        ("cookie", "sid=1"),
        ("cache-control", "no-cache"),
    ] {
        let r = Request::builder()
            .uri("/shared")
            .header(name, value)
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&mut app, r).await.1["x-cache"], "bypass", "{name}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 12);
    // Other methods pass untouched.
    let post = Request::builder()
        .method("POST")
        .uri("/shared")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = call(&mut app, post).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!headers.contains_key("x-cache"));
}

#[tokio::test]
async fn a_public_route_is_cached_for_requests_with_credentials() {
    let hits = Arc::new(AtomicUsize::new(0));
    let mut app = counting_router(hits.clone())
        .layer(CacheLayer::new(cache(), Duration::from_secs(60)).public());
    let with_cookie = || {
        Request::builder()
            .uri("/")
            .header("cookie", "sid=abc")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&mut app, with_cookie()).await.1["x-cache"], "miss");
    assert_eq!(call(&mut app, with_cookie()).await.1["x-cache"], "hit");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // An explicit no-cache still bypasses.
    let r = Request::builder()
        .uri("/")
        .header("cache-control", "no-cache")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&mut app, r).await.1["x-cache"], "bypass");
}

#[tokio::test]
async fn a_cache_whose_store_is_down_serves_misses() {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()).with_error(ErrorKind::Unavailable));
    let store: Arc<dyn Store> = faulty.clone();
    let cache = Cache::builder(store).build().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let mut app =
        counting_router(hits.clone()).layer(CacheLayer::new(cache, Duration::from_secs(5)));
    faulty.break_now();
    for _ in 0..2 {
        let r = Request::builder().uri("/").body(Body::empty()).unwrap();
        let (status, headers, body) = call(&mut app, r).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        assert_eq!(headers["x-cache"], "miss");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_session_extractor_without_its_layer_is_a_500() {
    let mut app = Router::new().route(
        "/",
        get(|session: Session| async move { format!("{:?}", session.id().is_some()) }),
    );
    let r = Request::builder().uri("/").body(Body::empty()).unwrap();
    let (status, _, body) = call(&mut app, r).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("RAMPART_NO_SESSION_LAYER"), "{body}");
}

#[tokio::test]
async fn the_session_layer_rotates_ids_and_writes_cookies() {
    use rampart::session::{SessionConfig, Sessions};
    use rampart::web::{CookieConfig, SameSite, SessionLayer};

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let sessions = Sessions::new(store, SessionConfig::default()).unwrap();
    let mut app = Router::new()
        .route(
            "/login",
            get(|s: Session| async move {
                s.login("u1", &serde_json::json!({ "role": "user" }))
                    .await
                    .unwrap();
                "in"
            }),
        )
        .route(
            "/rotate",
            get(|s: Session| async move { format!("{}", s.rotate().await.unwrap().is_some()) }),
        )
        .route(
            "/me",
            get(|s: Session| async move {
                match s.load::<serde_json::Value>().await.unwrap() {
                    Some(found) => found.user_id,
                    None => "nobody".into(),
                }
            }),
        )
        .layer(
            SessionLayer::new(sessions).cookie(
                CookieConfig::default()
                    .with_name("app")
                    .with_same_site(SameSite::Strict),
            ),
        );
    let get_with = |path: &str, cookie: Option<&str>| {
        let mut r = Request::builder().uri(path);
        if let Some(c) = cookie {
            r = r.header("cookie", format!("app={c}"));
        }
        r.body(Body::empty()).unwrap()
    };
    let cookie_of = |headers: &axum::http::HeaderMap| {
        let v = headers["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            v.contains("; SameSite=Strict") && v.contains("; HttpOnly"),
            "{v}"
        );
        v.split(';')
            .next()
            .unwrap()
            .strip_prefix("app=")
            .unwrap()
            .to_owned()
    };

    let (_, headers, _) = call(&mut app, get_with("/login", None)).await;
    let first = cookie_of(&headers);
    let (_, headers, body) = call(&mut app, get_with("/me", Some(&first))).await;
    assert_eq!(body, "u1");
    assert!(
        !headers.contains_key("set-cookie"),
        "no cookie change, no header"
    );

    // Rotation: a new id in the cookie, the old one dead.
    let (_, headers, body) = call(&mut app, get_with("/rotate", Some(&first))).await;
    assert_eq!(body, "true");
    let second = cookie_of(&headers);
    assert_ne!(first, second);
    assert_eq!(call(&mut app, get_with("/me", Some(&second))).await.2, "u1");
    let (_, headers, body) = call(&mut app, get_with("/me", Some(&first))).await;
    assert_eq!(body, "nobody");
    assert_eq!(cookie_of(&headers), "", "a dead cookie is cleared");
    // Nothing to rotate without a session.
    assert_eq!(call(&mut app, get_with("/rotate", None)).await.2, "false");
}

#[tokio::test]
async fn a_layer_with_wait_queues_requests_for_room_instead_of_a_429() {
    // 20 a second, no burst: back to back, each request waits ~50 ms.
    let rule = || Rule::token_bucket(Quota::per_second(20).with_burst(1)).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let mut waiting = counting_router(hits.clone()).layer(
        RateLimitLayer::new(Limiter::new(MemoryStore::new(), rule())).wait(Duration::from_secs(1)),
    );
    for _ in 0..3 {
        let (status, _, body) = call(&mut waiting, req("/", "192.0.2.7:1")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Without it, the second request is denied at once.
    let mut plain = counting_router(hits.clone()).layer(RateLimitLayer::new(Limiter::new(
        MemoryStore::new(),
        rule(),
    )));
    assert_eq!(
        call(&mut plain, req("/", "192.0.2.7:1")).await.0,
        StatusCode::OK
    );
    let (status, headers, _) = call(&mut plain, req("/", "192.0.2.7:1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
}

/// `/login?ok=1` answers 200, anything else 401.
fn login_router() -> Router {
    Router::new().route(
        "/login",
        get(|req: Request<Body>| async move {
            if req.uri().query() == Some("ok=1") {
                (StatusCode::OK, "welcome").into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "wrong password").into_response()
            }
        }),
    )
}

#[tokio::test]
async fn a_layer_can_count_only_failed_or_only_successful_requests() {
    let rule = || Rule::fixed_window(Quota::per_minute(2)).unwrap();
    // Only failures count: any number of good logins, two bad ones.
    let mut failures_only = login_router().layer(
        RateLimitLayer::new(Limiter::new(MemoryStore::new(), rule())).skip_successful_requests(),
    );
    for _ in 0..5 {
        assert_eq!(
            call(&mut failures_only, req("/login?ok=1", "192.0.2.9:1"))
                .await
                .0,
            StatusCode::OK
        );
    }
    for _ in 0..2 {
        assert_eq!(
            call(&mut failures_only, req("/login?ok=0", "192.0.2.9:1"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, _, body) = call(&mut failures_only, req("/login?ok=1", "192.0.2.9:1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    // Only successes count.
    let mut successes_only = login_router().layer(
        RateLimitLayer::new(Limiter::new(MemoryStore::new(), rule())).skip_failed_requests(),
    );
    for _ in 0..5 {
        assert_eq!(
            call(&mut successes_only, req("/login?ok=0", "192.0.2.9:1"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..2 {
        assert_eq!(
            call(&mut successes_only, req("/login?ok=1", "192.0.2.9:1"))
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(
        call(&mut successes_only, req("/login?ok=0", "192.0.2.9:1"))
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Neither (the default): every admitted request counts.
    let mut plain = login_router().layer(RateLimitLayer::new(Limiter::new(
        MemoryStore::new(),
        rule(),
    )));
    assert_eq!(
        call(&mut plain, req("/login?ok=1", "192.0.2.9:1")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&mut plain, req("/login?ok=0", "192.0.2.9:1")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&mut plain, req("/login?ok=1", "192.0.2.9:1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_fail_open_admission_is_not_refunded() {
    // The store is down and the limiter fails open: nothing was counted,
    // so no refund is attempted. The store sees exactly the calls of a
    // layer that never refunds.
    let calls = |refunding: bool| async move {
        let faulty =
            Arc::new(FaultyStore::new(MemoryStore::new()).with_error(ErrorKind::Unavailable));
        faulty.break_now();
        let limiter = Limiter::builder(
            faulty.clone(),
            Rule::fixed_window(Quota::per_minute(5)).unwrap(),
        )
        .on_store_error(OnStoreError::Allow)
        .build()
        .unwrap();
        let layer = RateLimitLayer::new(limiter);
        let mut app = login_router().layer(if refunding {
            layer.skip_successful_requests()
        } else {
            layer
        });
        for _ in 0..3 {
            assert_eq!(
                call(&mut app, req("/login?ok=1", "192.0.2.9:1")).await.0,
                StatusCode::OK
            );
        }
        faulty.calls()
    };
    let plain = calls(false).await;
    assert!(plain > 0);
    assert_eq!(calls(true).await, plain);
}

#[tokio::test]
async fn a_request_dropped_before_its_answer_is_a_refunded_failure() {
    // The client goes away while the handler runs: the request's future
    // is dropped, which counts as a failure, refunded in the background.
    let limiter = Arc::new(Limiter::new(
        MemoryStore::new(),
        Rule::fixed_window(Quota::per_minute(2)).unwrap(),
    ));
    let never = Router::new().route(
        "/slow",
        get(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    );
    let key = limiter.key("ip4:192.0.2.9").unwrap();
    for (layer, refunded) in [
        (
            RateLimitLayer::new(limiter.clone()).skip_failed_requests(),
            true,
        ),
        (
            RateLimitLayer::new(limiter.clone()).skip_successful_requests(),
            false,
        ),
    ] {
        limiter.reset(&key).await.unwrap();
        let mut app = never.clone().layer(layer);
        std::future::poll_fn(|cx| <Router as Service<Request<Body>>>::poll_ready(&mut app, cx))
            .await
            .unwrap();
        let pending = app.call(req("/slow", "192.0.2.9:1"));
        assert!(tokio::time::timeout(Duration::from_millis(20), pending)
            .await
            .is_err());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let left = limiter.check(&key, 1).await.unwrap().remaining;
        assert_eq!(left, if refunded { 2 } else { 1 }, "refunded: {refunded}");
    }
}

#[tokio::test]
async fn skipped_requests_pass_uncounted_and_without_headers() {
    let hits = Arc::new(AtomicUsize::new(0));
    let limiter = Limiter::new(
        MemoryStore::new(),
        Rule::fixed_window(Quota::per_minute(1)).unwrap(),
    );
    let mut app = counting_router(hits.clone())
        .layer(RateLimitLayer::new(limiter).skip_if(|req| req.headers.contains_key("x-internal")));
    let internal = || {
        let mut r = req("/", "192.0.2.11:1");
        r.headers_mut().insert("x-internal", "1".parse().unwrap());
        r
    };
    for _ in 0..5 {
        let (status, headers, _) = call(&mut app, internal()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !headers.contains_key("ratelimit"),
            "a skipped request has no rate-limit headers"
        );
    }
    // The client's one request a minute is still there, then a 429.
    let (status, headers, _) = call(&mut app, req("/", "192.0.2.11:1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("ratelimit"));
    assert_eq!(
        call(&mut app, req("/", "192.0.2.11:1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(hits.load(Ordering::SeqCst), 6);
}
