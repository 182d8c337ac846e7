//! tower/axum integration (feature `axum`): a rate-limit layer, a session
//! layer with its extractor, and a cache layer for GET responses.
//!
//! ```no_run
//! use std::{net::SocketAddr, sync::Arc, time::Duration};
//! use axum::{routing::get, Router};
//! use rampart::cache::Cache;
//! use rampart::limit::{presets::Presets, Limiter};
//! use rampart::session::{SessionConfig, Sessions};
//! use rampart::web::{CacheLayer, ClientIp, RateLimitLayer, SessionLayer};
//! use rampart::{MemoryStore, Store};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let presets = Presets::from_env()?;
//! let general = Limiter::builder(store.clone(), presets.general).prefix("rl:general").build()?;
//! let cache = Cache::builder(store.clone()).namespace("http").build()?;
//! let sessions = Sessions::new(store.clone(), SessionConfig::default())?;
//!
//! let app = Router::new()
//!     .route("/catalogue", get(|| async { "[]" })
//!         .route_layer(CacheLayer::new(cache, Duration::from_secs(60)).tag("catalogue")))
//!     .layer(SessionLayer::new(sessions))
//!     // Per client IP; IPv6 clients grouped by /64.
//!     .layer(RateLimitLayer::new(general).key_extractor(ClientIp::new()));
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // The rate limiter needs the peer address: serve with connect info.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! * [`RateLimitLayer`] consumes from a [`crate::limit::Limiter`] per
//!   request, keyed by a [`KeyExtractor`] ([`ClientIp`] by default, with
//!   IPv6 addresses grouped by /64), adds the rate-limit headers to every
//!   response and answers `429 Too Many Requests` with `Retry-After`.
//! * [`SessionLayer`] reads the session cookie; the [`Session`] extractor
//!   loads, creates (rotating the id on login), and destroys sessions, and
//!   the layer writes the `Set-Cookie` header.
//! * [`CacheLayer`] caches `200` responses to `GET` requests by path and
//!   query, with a TTL per route and tags to invalidate, and says
//!   `X-Cache: hit|miss|bypass`.
//!
//! [`ApiError`] turns a [`crate::Error`] into a JSON response with a status
//! that matches its kind (`503` for a store that is down).
//!
//! With the `tracing` feature, the layers emit events under the target
//! `rampart::web` (each rate-limit decision, cache hits and misses,
//! session cookie changes).

mod cache;
mod error;
mod ip;
mod rate_limit;
mod session;

pub use cache::{CacheLayer, CacheService, CachedResponse};
pub use error::ApiError;
pub use ip::{group_ip, Cidr, ClientIp, KeyExtractor, Or};
pub use rate_limit::{RateLimitLayer, RateLimitService};
pub use session::{CookieConfig, SameSite, Session, SessionLayer, SessionService};

/// The boxed future of the layers' services.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// A `tracing` event under the target `rampart::web`; nothing without the
/// `tracing` feature.
macro_rules! web_event {
    ($level:ident, $($field:tt)*) => {
        #[cfg(feature = "tracing")]
        {
            tracing::$level!(target: "rampart::web", $($field)*);
        }
    };
}
pub(crate) use web_event;
