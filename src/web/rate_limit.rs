//! [`RateLimitLayer`]: one limiter decision per request.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::Response;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::error::{json_error, status_of};
use super::{web_event, BoxFuture, ClientIp, KeyExtractor};
use crate::limit::{Decision, DecisionSource, HeaderOptions, HeaderStyle, Limiter};
use crate::{Key, Store, Timestamp};

/// A tower layer that rate-limits requests with a [`Limiter`].
///
/// For each request it takes the key from its [`KeyExtractor`] (default
/// [`ClientIp`]: the peer address, IPv6 grouped by /64), consumes `cost`
/// (default 1) and then:
///
/// * admitted: calls the service and adds the rate-limit headers (default
///   [`HeaderStyle::Draft7`]) to its response;
/// * denied: answers `429 Too Many Requests` with the same headers,
///   `Retry-After` (seconds) and a JSON body
///   `{"error": "RAMPART_RATE_LIMITED", "retry_after": seconds}`; the
///   service is not called;
/// * no key (the extractor found nothing, e.g. no connect info): `500`;
/// * the store failed: what the limiter's
///   [`OnStoreError`](crate::limit::OnStoreError) policy decided (admit,
///   deny, or decide on an insurance store); an error that still reaches
///   the layer is answered `503` with `Retry-After: 1`, never a panic.
///
/// Layers stack (a general tier on the router, a stricter tier on a
/// route). With [`HeaderStyle::Draft8`] each adds its own list item (name
/// them with [`policy_name`](Self::policy_name)); with the other styles the
/// innermost (most specific) layer's headers win.
pub struct RateLimitLayer<St, K = ClientIp> {
    limiter: Arc<Limiter<St>>,
    extractor: Arc<K>,
    style: HeaderStyle,
    name: Option<Arc<str>>,
    cost: u64,
    wait: Duration,
    /// Which admitted requests are given back once answered.
    refund: Refund,
    /// Requests let through uncounted.
    skip: Option<Skip>,
}

/// A predicate on a request: `true` lets it through uncounted.
type Skip = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Which admitted requests a [`RateLimitLayer`] refunds once the inner
/// service has answered (express-rate-limit's `skipSuccessfulRequests`
/// and `skipFailedRequests`); a status below 400 is a success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Refund {
    successes: bool,
    failures: bool,
}

impl Refund {
    /// Whether a response with `status` failed (400 and above).
    fn failed(status: StatusCode) -> bool {
        status.is_client_error() || status.is_server_error()
    }

    /// Whether a request that `failed` (or succeeded) is given back.
    fn applies(self, failed: bool) -> bool {
        if failed {
            self.failures
        } else {
            self.successes
        }
    }
}

/// Gives back an admitted request's charge if dropped while it still
/// holds it (the request's future was dropped before the inner service
/// answered): on the runtime, in the background, as `Drop` cannot wait.
struct RefundOnDrop<St: Store + 'static> {
    charge: Option<(Arc<Limiter<St>>, Key, Timestamp)>,
    cost: u64,
}

impl<St: Store + 'static> Drop for RefundOnDrop<St> {
    fn drop(&mut self) {
        if let Some((limiter, key, at)) = self.charge.take() {
            let cost = self.cost;
            // No runtime (never under axum): the charge stays counted.
            let _ = crate::rt::spawn(async move {
                let _ = limiter.undo(&key, cost, at).await;
            });
        }
    }
}

impl<St, K> Clone for RateLimitLayer<St, K> {
    fn clone(&self) -> Self {
        Self {
            limiter: self.limiter.clone(),
            extractor: self.extractor.clone(),
            style: self.style,
            name: self.name.clone(),
            cost: self.cost,
            wait: self.wait,
            refund: self.refund,
            skip: self.skip.clone(),
        }
    }
}

impl<St, K> std::fmt::Debug for RateLimitLayer<St, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.limiter)
            .field("style", &self.style)
            .field("name", &self.name)
            .field("cost", &self.cost)
            .field("wait", &self.wait)
            .field("refund", &self.refund)
            .field("skip", &self.skip.is_some())
            .finish_non_exhaustive()
    }
}

impl<St: Store + 'static> RateLimitLayer<St, ClientIp> {
    /// Limits requests with `limiter`, keyed by [`ClientIp::new`].
    pub fn new(limiter: impl Into<Arc<Limiter<St>>>) -> Self {
        Self {
            limiter: limiter.into(),
            extractor: Arc::new(ClientIp::new()),
            style: HeaderStyle::Draft7,
            name: None,
            cost: 1,
            wait: Duration::ZERO,
            refund: Refund::default(),
            skip: None,
        }
    }
}

impl<St: Store + 'static, K: KeyExtractor> RateLimitLayer<St, K> {
    /// Keys requests with `extractor` instead (a user id, an API key, a
    /// [`ClientIp`] with other prefixes or trusted proxies).
    pub fn key_extractor<K2: KeyExtractor>(self, extractor: K2) -> RateLimitLayer<St, K2> {
        RateLimitLayer {
            limiter: self.limiter,
            extractor: Arc::new(extractor),
            style: self.style,
            name: self.name,
            cost: self.cost,
            wait: self.wait,
            refund: self.refund,
            skip: self.skip,
        }
    }

    /// The header format (default [`HeaderStyle::Draft7`]).
    pub fn header_style(mut self, style: HeaderStyle) -> Self {
        self.style = style;
        self
    }

    /// The draft-8 policy name of this layer's tier (e.g. `"auth"`).
    pub fn policy_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// What each request costs (default 1; at most the rule's capacity).
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = cost;
        self
    }

    /// How long a request may wait for room before it is denied (default
    /// zero: none): [`Limiter::consume_within`], which needs the tokio
    /// timer (axum's runtime has it). A waiting request holds its
    /// connection: keep the wait short (a burst smoothed over a few
    /// hundred milliseconds), or a flood of requests a wait could admit
    /// becomes a flood of open connections.
    pub fn wait(mut self, max_wait: Duration) -> Self {
        self.wait = max_wait;
        self
    }

    /// Gives back the cost of an admitted request whose response is a
    /// success (status below 400), so only failures count: a login
    /// limiter that counts wrong passwords (express-rate-limit's
    /// `skipSuccessfulRequests`).
    ///
    /// The refund undoes that request's own charge
    /// ([`Limiter::undo`]: nothing once its window is over) after the
    /// inner service answers, one store call on those responses. Only a
    /// charge the store made is given back (not a fail-open admission,
    /// nor an insurance store's). A refund that fails leaves the request
    /// counted. The headers sent show the count before the refund.
    pub fn skip_successful_requests(mut self) -> Self {
        self.refund.successes = true;
        self
    }

    /// Gives back the cost of an admitted request whose response is a
    /// client or server error (status 400 and above), so only successes
    /// count (express-rate-limit's `skipFailedRequests`). An error from
    /// the inner service, or a request dropped before it answered (the
    /// client went away), is a failure too, refunded in the background.
    /// Otherwise as
    /// [`skip_successful_requests`](Self::skip_successful_requests).
    pub fn skip_failed_requests(mut self) -> Self {
        self.refund.failures = true;
        self
    }

    /// Lets the requests for which `skip` is true through uncounted and
    /// without rate-limit headers: health checks, an internal network,
    /// an allowlist (express-rate-limit's `skip`).
    ///
    /// ```
    /// use rampart::limit::{Limiter, Quota, Rule};
    /// use rampart::web::RateLimitLayer;
    /// use rampart::MemoryStore;
    ///
    /// let limiter = Limiter::new(MemoryStore::new(), Rule::fixed_window(Quota::per_minute(100))?);
    /// let layer = RateLimitLayer::new(limiter)
    ///     .skip_if(|req| req.uri.path() == "/health" || req.headers.contains_key("x-internal-token"));
    /// # Ok::<(), rampart::Error>(())
    /// ```
    pub fn skip_if(
        mut self,
        skip: impl Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.skip = Some(Arc::new(skip));
        self
    }

    /// The limiter.
    pub fn limiter(&self) -> &Limiter<St> {
        &self.limiter
    }

    fn headers(&self, decision: &Decision) -> Vec<(&'static str, String)> {
        let names: Vec<&str> = self.name.as_deref().into_iter().collect();
        decision.headers_with(&HeaderOptions::new(self.style).names(&names))
    }
}

impl<St, K, S> Layer<S> for RateLimitLayer<St, K> {
    type Service = RateLimitService<St, K, S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service of a [`RateLimitLayer`].
pub struct RateLimitService<St, K, S> {
    layer: RateLimitLayer<St, K>,
    inner: S,
}

impl<St, K, S: Clone> Clone for RateLimitService<St, K, S> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<St, K, S: std::fmt::Debug> std::fmt::Debug for RateLimitService<St, K, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitService")
            .field("layer", &self.layer)
            .field("inner", &self.inner)
            .finish()
    }
}

/// Adds `headers` to `res`: appended for draft-8 (one list item per tier),
/// otherwise only where the response has none yet (an inner layer's win).
fn apply_headers(res: &mut Response, headers: Vec<(&'static str, String)>, style: HeaderStyle) {
    let map = res.headers_mut();
    for (name, value) in headers {
        let Ok(value) = HeaderValue::from_str(&value) else {
            continue;
        };
        let name = HeaderName::from_static(static_lower(name));
        if style == HeaderStyle::Draft8 && name != http::header::RETRY_AFTER {
            map.append(name, value);
        } else if !map.contains_key(&name) {
            map.insert(name, value);
        }
    }
}

/// The lowercase form of the header names `headers_with` emits
/// (`HeaderName::from_static` needs lowercase).
fn static_lower(name: &'static str) -> &'static str {
    match name {
        "RateLimit-Policy" => "ratelimit-policy",
        "RateLimit" => "ratelimit",
        "RateLimit-Limit" => "ratelimit-limit",
        "RateLimit-Remaining" => "ratelimit-remaining",
        "RateLimit-Reset" => "ratelimit-reset",
        "X-RateLimit-Limit" => "x-ratelimit-limit",
        "X-RateLimit-Remaining" => "x-ratelimit-remaining",
        "X-RateLimit-Reset" => "x-ratelimit-reset",
        "Retry-After" => "retry-after",
        // Unknown names (a future style) fall back to a neutral header
        // rather than panicking in `from_static`.
        _ => "x-ratelimit-unknown",
    }
}

impl<St, K, S, B> Service<Request<B>> for RateLimitService<St, K, S>
where
    St: Store + 'static,
    K: KeyExtractor,
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was not polled ready stays here; the ready one runs.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            if layer.skip.as_ref().is_some_and(|skip| skip(&parts)) {
                return inner.call(Request::from_parts(parts, body)).await;
            }
            let Some(id) = layer.extractor.extract(&parts) else {
                web_event!(
                    error,
                    path = parts.uri.path(),
                    "rate limit: no key for the request"
                );
                return Ok(json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "RAMPART_NO_RATE_LIMIT_KEY",
                    "the rate limiter found no key for this request (serve with into_make_service_with_connect_info::<SocketAddr>())",
                ));
            };
            let req = Request::from_parts(parts, body);
            let decided = match layer.limiter.key(&id) {
                Ok(key) => {
                    let decision = if layer.wait.is_zero() {
                        layer.limiter.consume(&key, layer.cost).await
                    } else {
                        layer
                            .limiter
                            .consume_within(&key, layer.cost, layer.wait)
                            .await
                    };
                    decision.map(|d| (key, d))
                }
                Err(e) => Err(e),
            };
            let (key, decision) = match decided {
                Ok(decided) => decided,
                Err(e) => {
                    web_event!(warn, error = e.code(), "rate limit: no decision");
                    let status = match status_of(&e) {
                        StatusCode::SERVICE_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
                        _ if e.is_temporary() => StatusCode::SERVICE_UNAVAILABLE,
                        StatusCode::CONFLICT => StatusCode::SERVICE_UNAVAILABLE,
                        _ => StatusCode::INTERNAL_SERVER_ERROR,
                    };
                    let mut res = json_error(status, e.code(), e.message());
                    if status == StatusCode::SERVICE_UNAVAILABLE {
                        res.headers_mut()
                            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                    }
                    return Ok(res);
                }
            };
            let headers = layer.headers(&decision);
            if !decision.allowed {
                let retry = decision.retry_after.map_or(1, crate::limit::secs_ceil);
                web_event!(
                    info,
                    allowed = false,
                    policy = layer.name.as_deref().unwrap_or(""),
                    retry_after_s = retry,
                    blocked = decision.is_blocked(),
                    source = ?decision.source,
                    "rate limit: denied"
                );
                let body = serde_json::json!({
                    "error": "RAMPART_RATE_LIMITED",
                    "message": "too many requests",
                    "retry_after": retry,
                })
                .to_string();
                let mut res = Response::new(axum::body::Body::from(body));
                *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                res.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                apply_headers(&mut res, headers, layer.style);
                return Ok(res);
            }
            web_event!(
                debug,
                allowed = true,
                policy = layer.name.as_deref().unwrap_or(""),
                remaining = decision.remaining,
                source = ?decision.source,
                "rate limit: admitted"
            );
            // Only a charge the store made is given back: a fail-open
            // admission counted nothing, and an insurance store's charge
            // is not the store's to refund.
            let refunds = decision.source == DecisionSource::Store;
            // Dropped before the inner service answers (the client went
            // away), or answered with an error: a failure, refunded in the
            // background.
            let mut on_drop = RefundOnDrop {
                charge: (refunds && layer.refund.failures)
                    .then(|| (layer.limiter.clone(), key.clone(), decision.at)),
                cost: layer.cost,
            };
            let mut res = inner.call(req).await?;
            on_drop.charge = None;
            if refunds && layer.refund.applies(Refund::failed(res.status())) {
                if let Err(e) = layer.limiter.undo(&key, layer.cost, decision.at).await {
                    web_event!(warn, error = e.code(), "rate limit: refund failed");
                }
            }
            apply_headers(&mut res, headers, layer.style);
            Ok(res)
        })
    }
}
