//! What the web layers add to a request, against the same axum router
//! without them (the peer, measured in the same run).
//!
//! ```text
//! cargo bench --bench web --features axum -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Requests go through the router as a tower service (no sockets), on the
//! in-process `MemoryStore`: the cost is the layers' own (key extraction,
//! one limiter decision, header rendering; a cache lookup and replay).
//!
//! Measured on the shared 2-core machine (median of criterion's estimate):
//! bare router 1.05 µs; with the rate-limit layer 3.73 µs (+2.7 µs: one
//! sliding-window decision and draft-8 headers); a cache-layer hit 2.96 µs
//! (more than this trivial handler, less than any handler that does I/O).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use rampart::cache::Cache;
use rampart::limit::{HeaderStyle, Limiter, Quota, Rule};
use rampart::web::{CacheLayer, RateLimitLayer};
use rampart::{MemoryStore, Store};
use tower_service::Service;

const BODY: &str =
    r#"[{"id":1,"name":"Lamp","price_cents":1999},{"id":2,"name":"Chair","price_cents":4950}]"#;

fn request() -> Request<Body> {
    let mut req = Request::builder()
        .uri("/catalogue")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(
        "203.0.113.7:4000".parse::<SocketAddr>().unwrap(),
    ));
    req
}

async fn run(app: &mut Router) -> usize {
    std::future::poll_fn(|cx| <Router as Service<Request<Body>>>::poll_ready(app, cx))
        .await
        .unwrap();
    let res = app.call(request()).await.unwrap();
    res.into_body().collect().await.unwrap().to_bytes().len()
}

fn routers() -> Vec<(&'static str, Router)> {
    let bare = || Router::new().route("/catalogue", get(|| async { BODY }));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // A quota no benchmark reaches: every request is admitted and counted.
    let rule = Rule::sliding_window(Quota::per_hour(4_000_000_000)).unwrap();
    let limiter = Limiter::builder(store.clone(), rule)
        .prefix("rl")
        .build()
        .unwrap();
    let cache = Cache::builder(store).namespace("http").build().unwrap();
    vec![
        ("bare axum router (peer)", bare()),
        (
            "+ RateLimitLayer (draft-8 headers)",
            bare().layer(RateLimitLayer::new(limiter).header_style(HeaderStyle::Draft8)),
        ),
        (
            "+ CacheLayer hit",
            bare().layer(CacheLayer::new(cache, Duration::from_secs(3600))),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("web");
    for (name, app) in routers() {
        let mut app = app;
        // Fill the cache before measuring its hits.
        rt.block_on(run(&mut app));
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(run(&mut app)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
