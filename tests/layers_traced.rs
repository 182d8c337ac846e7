//! `layers::Traced` (feature `tracing`): a complete store, and one event
//! per call with the operation, key length, duration and outcome.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Once;

use rampart::layers::Traced;
use rampart::testkit::Harness;
use rampart::{ErrorKind, Key, MemoryStore, Store};
use rampart_mock::FaultyStore;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

mod conformance {
    use super::*;
    rampart::conformance_suite!(Harness::manual(|clock| Traced::new(
        MemoryStore::builder().clock(clock).build()
    )));
}

type Captured = Vec<BTreeMap<String, String>>;

thread_local! {
    /// This thread's capture: `None` when not capturing, else whether
    /// TRACE is on and the events so far.
    static CAPTURE: RefCell<Option<(bool, Captured)>> = const { RefCell::new(None) };
}

/// One global subscriber for the whole test binary (tests run in parallel
/// threads, and scoped subscribers race on callsite interest caching); it
/// records `rampart::*` events for the threads that are capturing.
struct Capture;

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target().starts_with("rampart")
            && CAPTURE.with(|c| match &*c.borrow() {
                Some((trace, _)) => *trace || *meta.level() != Level::TRACE,
                None => false,
            })
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        fields.insert("level".into(), event.metadata().level().to_string());
        fields.insert("target".into(), event.metadata().target().into());
        event.record(&mut Fields(&mut fields));
        CAPTURE.with(|c| {
            if let Some((_, events)) = &mut *c.borrow_mut() {
                events.push(fields);
            }
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn capture<F: std::future::Future<Output = ()>>(trace: bool, f: F) -> Captured {
    static INIT: Once = Once::new();
    INIT.call_once(|| tracing::subscriber::set_global_default(Capture).unwrap());
    CAPTURE.with(|c| *c.borrow_mut() = Some((trace, Vec::new())));
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f);
    CAPTURE.with(|c| c.borrow_mut().take().map(|(_, e)| e).unwrap_or_default())
}

#[test]
fn every_call_is_an_event_without_the_key() {
    let events = capture(false, async {
        let store = Traced::named(MemoryStore::new(), "mem");
        let key = Key::new("user:alice@example.com").unwrap();
        store.set(&key, "v".into(), None).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_some());
        assert!(store.delete(&key).await.unwrap());
    });
    let ops: Vec<&str> = events.iter().map(|e| e["op"].as_str()).collect();
    assert_eq!(ops, ["set", "get", "delete"]);
    for e in &events {
        assert_eq!(e["target"], "rampart::store");
        assert_eq!(e["level"], "DEBUG");
        assert_eq!(e["store"], "mem");
        assert_eq!(e["key_len"], "22");
        assert_eq!(e["outcome"], "ok");
        assert!(e["duration_us"].parse::<u64>().is_ok(), "{e:?}");
        assert!(
            !e.contains_key("key"),
            "the key is only shown at TRACE: {e:?}"
        );
        assert!(!format!("{e:?}").contains("alice"));
    }
}

#[test]
fn the_key_appears_only_at_trace_level() {
    let events = capture(true, async {
        let store = Traced::new(MemoryStore::new());
        store.get(&Key::new("k1").unwrap()).await.unwrap();
    });
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["level"], "TRACE");
    assert_eq!(events[0]["key"], "k1");
}

#[test]
fn failures_are_warnings_with_the_error_code() {
    let events = capture(false, async {
        let faulty = FaultyStore::new(MemoryStore::new()).with_error(ErrorKind::Unavailable);
        faulty.break_now();
        let store = Traced::new(faulty);
        let e = store.get(&Key::new("k").unwrap()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    });
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["level"], "WARN");
    assert_eq!(events[0]["outcome"], "RAMPART_UNAVAILABLE");
    assert_eq!(events[0]["temporary"], "true");
}

#[test]
fn no_subscriber_no_events_and_the_same_results() {
    // Outside any subscriber the layer only forwards.
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let store = Traced::new(MemoryStore::new());
            let key = Key::new("n").unwrap();
            assert_eq!(store.increment(&key, 2, None).await.unwrap(), 2);
            assert_eq!(store.increment(&key, 3, None).await.unwrap(), 5);
        });
}

#[test]
fn limiter_decisions_are_events_without_the_key() {
    use rampart::limit::{Limiter, Quota, Rule};
    let events = capture(false, async {
        let limiter = Limiter::new(
            MemoryStore::new(),
            Rule::fixed_window(Quota::per_minute(1)).unwrap(),
        );
        let key = Key::new("ip:198.51.100.9").unwrap();
        assert!(limiter.consume(&key, 1).await.unwrap().allowed);
        assert!(!limiter.consume(&key, 1).await.unwrap().allowed);
        let e = limiter.consume(&key, 2).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    });
    let limit: Vec<_> = events
        .iter()
        .filter(|e| e["target"] == "rampart::limit")
        .collect();
    assert_eq!(limit.len(), 3, "{events:?}");
    assert_eq!(limit[0]["level"], "DEBUG");
    assert_eq!(limit[0]["op"], "limit.consume");
    assert_eq!(limit[0]["allowed"], "true");
    assert_eq!(limit[0]["remaining"], "0");
    assert_eq!(limit[0]["key_len"], "15");
    assert_eq!(limit[1]["allowed"], "false");
    assert!(limit[1]["retry_after_ms"].parse::<u64>().unwrap() > 0);
    assert_eq!(limit[2]["level"], "WARN");
    assert_eq!(limit[2]["outcome"], "RAMPART_INVALID_INPUT");
    assert!(!format!("{events:?}").contains("198.51.100.9"));
}

/// The web layers' decision events (features `axum` and `tracing`).
#[cfg(feature = "axum")]
mod web {
    use super::*;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use axum::routing::get;
    use axum::Router;
    use rampart::limit::{Limiter, Quota, Rule};
    use rampart::web::RateLimitLayer;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tower_service::Service;

    #[test]
    fn rate_limit_decisions_are_events() {
        let events = capture(false, async {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let limiter = Limiter::new(store, Rule::fixed_window(Quota::per_minute(1)).unwrap());
            let mut app = Router::new()
                .route("/", get(|| async { "ok" }))
                .layer(RateLimitLayer::new(limiter).policy_name("login"));
            for expected in [200, 429] {
                let mut req = Request::builder().uri("/").body(Body::empty()).unwrap();
                req.extensions_mut()
                    .insert(ConnectInfo("192.0.2.7:1".parse::<SocketAddr>().unwrap()));
                std::future::poll_fn(|cx| {
                    <Router as Service<Request<Body>>>::poll_ready(&mut app, cx)
                })
                .await
                .unwrap();
                assert_eq!(app.call(req).await.unwrap().status(), expected);
            }
        });
        let web: Vec<_> = events
            .iter()
            .filter(|e| e["target"] == "rampart::web")
            .collect();
        assert_eq!(web.len(), 2, "{events:?}");
        assert_eq!(web[0]["level"], "DEBUG");
        assert_eq!(web[0]["allowed"], "true");
        assert_eq!(web[0]["policy"], "login");
        assert_eq!(web[0]["remaining"], "0");
        assert_eq!(web[1]["level"], "INFO");
        assert_eq!(web[1]["allowed"], "false");
        assert!(web[1]["retry_after_s"].parse::<u64>().unwrap() >= 1);
        assert!(
            !format!("{events:?}").contains("192.0.2.7"),
            "no client address in events"
        );
    }
}
