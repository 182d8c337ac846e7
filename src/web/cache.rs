//! [`CacheLayer`]: `GET` responses cached by path and query.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_layer::Layer;
use tower_service::Service;

use super::{web_event, BoxFuture};
use crate::cache::{Cache, EntryOptions};
use crate::Store;

/// The largest body cached by default (1 MiB).
const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Keys longer than this are hashed.
const MAX_PLAIN_KEY: usize = 512;

/// A cached response: a `200` with its content type and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    /// `Content-Type`, if the response had one.
    #[serde(rename = "ct", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The body, base64 (standard alphabet).
    #[serde(rename = "b")]
    pub body: String,
}

/// A tower layer that caches `200 OK` responses to `GET` requests in a
/// [`Cache`], keyed by path and query, for a TTL per route (put it on a
/// route with `route_layer`), with optional tags so that a write can
/// invalidate them ([`Cache::invalidate_tag`]).
///
/// Every `GET` response gets `X-Cache: hit`, `miss` or `bypass`.
///
/// * **Bypass** (neither read nor written): requests with `Cache-Control:
///   no-store` or `no-cache`, or with `Authorization` or `Cookie` headers
///   (their answers may be personal: a URL-keyed cache would leak them)
///   unless the route is declared [`public`](Self::public).
///   Other methods pass through untouched.
/// * **Not stored**: statuses other than `200`, responses with
///   `Set-Cookie`, with `Cache-Control: no-store` or `private`, or with a
///   body larger than [`max_body`](Self::max_body) (default 1 MiB; such a
///   body is streamed on unchanged, whether or not its size was known).
/// * A cache that cannot be read (store down) is a miss; one that cannot
///   be written is ignored (both counted in the cache's stats).
///
/// Only `Content-Type` and the body are kept; other headers of the
/// original response are not replayed on a hit.
pub struct CacheLayer<St> {
    cache: Cache<St>,
    options: Arc<EntryOptions>,
    max_body: usize,
    public: bool,
}

impl<St> Clone for CacheLayer<St> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            options: self.options.clone(),
            max_body: self.max_body,
            public: self.public,
        }
    }
}

impl<St> fmt::Debug for CacheLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("options", &self.options)
            .field("max_body", &self.max_body)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl<St: Store + 'static> CacheLayer<St> {
    /// Caches responses in `cache` for `ttl`.
    pub fn new(cache: Cache<St>, ttl: Duration) -> Self {
        Self {
            cache,
            options: Arc::new(EntryOptions::new().ttl(ttl)),
            max_body: DEFAULT_MAX_BODY,
            public: false,
        }
    }

    /// Tags every entry this layer writes (invalidate them all with
    /// [`Cache::invalidate_tag`]).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        let options = (*self.options).clone().tag(tag);
        self.options = Arc::new(options);
        self
    }

    /// Declares the route's responses the same for every client, so
    /// requests carrying `Cookie` or `Authorization` are served from (and
    /// fill) the cache too. Browsers send cookies with every request, so a
    /// public page needs this to be cached for signed-in users; never use
    /// it on a route whose answer depends on who asks. Responses with
    /// `Set-Cookie` or `Cache-Control: private` are still not stored.
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// Stores bodies up to this many bytes (default 1 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The cache.
    pub fn cache(&self) -> &Cache<St> {
        &self.cache
    }
}

/// The body's bytes if it ends within `max` bytes; otherwise (or if it
/// fails) a body that replays what was read and streams the rest, error
/// included (trailers are dropped).
async fn collect_up_to(body: Body, max: usize) -> Result<Bytes, Body> {
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut size = 0usize;
    while let Some(next) = stream.next().await {
        match next {
            Ok(chunk) => {
                size = size.saturating_add(chunk.len());
                chunks.push(chunk);
                if size > max {
                    let head = futures_util::stream::iter(chunks.into_iter().map(Ok));
                    return Err(Body::from_stream(head.chain(stream)));
                }
            }
            Err(e) => {
                let head = futures_util::stream::iter(chunks.into_iter().map(Ok));
                let tail = futures_util::stream::once(async move { Err::<Bytes, _>(e) });
                return Err(Body::from_stream(head.chain(tail)));
            }
        }
    }
    if chunks.len() == 1 {
        return Ok(chunks.pop().unwrap_or_default());
    }
    let mut all = Vec::with_capacity(size);
    for chunk in &chunks {
        all.extend_from_slice(chunk);
    }
    Ok(Bytes::from(all))
}

/// The cache key of a request: its path and query (hashed if long).
fn cache_key(uri: &http::Uri) -> String {
    let text = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    if text.len() <= MAX_PLAIN_KEY {
        format!("GET {text}")
    } else {
        let digest = Sha256::digest(text.as_bytes());
        format!("GET #{}", STANDARD.encode(digest))
    }
}

fn has_directive(headers: &HeaderMap, names: &[&str]) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .any(|d| names.iter().any(|n| d == *n))
}

fn x_cache(res: &mut Response, value: &'static str) {
    res.headers_mut()
        .insert("x-cache", HeaderValue::from_static(value));
}

impl<St, S> Layer<S> for CacheLayer<St> {
    type Service = CacheService<St, S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service of a [`CacheLayer`].
pub struct CacheService<St, S> {
    layer: CacheLayer<St>,
    inner: S,
}

impl<St, S: Clone> Clone for CacheService<St, S> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<St, S: fmt::Debug> fmt::Debug for CacheService<St, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("layer", &self.layer)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<St, S, B> Service<Request<B>> for CacheService<St, S>
where
    St: Store + 'static,
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
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if req.method() != Method::GET {
            return Box::pin(inner.call(req));
        }
        let layer = self.layer.clone();
        let personal = req.headers().contains_key(header::AUTHORIZATION)
            || req.headers().contains_key(header::COOKIE);
        let bypass =
            has_directive(req.headers(), &["no-store", "no-cache"]) || (personal && !layer.public);
        let key = cache_key(req.uri());
        Box::pin(async move {
            if bypass {
                let mut res = inner.call(req).await?;
                x_cache(&mut res, "bypass");
                return Ok(res);
            }
            match layer.cache.get::<CachedResponse>(&key).await {
                Ok(Some(hit)) => {
                    if let Ok(body) = STANDARD.decode(hit.body.as_bytes()) {
                        web_event!(debug, key_len = key.len(), "cache: hit");
                        let mut res = Response::new(Body::from(body));
                        if let Some(ct) = hit
                            .content_type
                            .as_deref()
                            .and_then(|ct| HeaderValue::from_str(ct).ok())
                        {
                            res.headers_mut().insert(header::CONTENT_TYPE, ct);
                        }
                        x_cache(&mut res, "hit");
                        return Ok(res);
                    }
                }
                Ok(None) => {}
                Err(_e) => {
                    web_event!(
                        warn,
                        error = _e.code(),
                        "cache: read failed, serving a miss"
                    );
                }
            }
            web_event!(debug, key_len = key.len(), "cache: miss");
            let res = inner.call(req).await?;
            let storable = res.status() == StatusCode::OK
                && !res.headers().contains_key(header::SET_COOKIE)
                && !has_directive(res.headers(), &["no-store", "private"])
                && HttpBody::size_hint(res.body()).lower() <= layer.max_body as u64;
            if !storable {
                let mut res = res;
                x_cache(&mut res, "miss");
                return Ok(res);
            }
            let (mut parts, body) = res.into_parts();
            let bytes = match collect_up_to(body, layer.max_body).await {
                Ok(bytes) => bytes,
                Err(body) => {
                    // Larger than announced, or broken: passed on as it
                    // comes, not stored.
                    web_event!(debug, "cache: response too large to store");
                    parts
                        .headers
                        .insert("x-cache", HeaderValue::from_static("miss"));
                    return Ok(Response::from_parts(parts, body));
                }
            };
            let entry = CachedResponse {
                content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: STANDARD.encode(&bytes),
            };
            if let Err(_e) = layer
                .cache
                .set(&key, &entry, (*layer.options).clone())
                .await
            {
                web_event!(warn, error = _e.code(), "cache: write failed");
            }
            parts
                .headers
                .insert("x-cache", HeaderValue::from_static("miss"));
            Ok(Response::from_parts(parts, Body::from(bytes)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_path_and_query_and_long_ones_are_hashed() {
        let uri: http::Uri = "/catalogue?page=2".parse().unwrap();
        assert_eq!(cache_key(&uri), "GET /catalogue?page=2");
        let long: http::Uri = format!("/x?q={}", "a".repeat(600)).parse().unwrap();
        let k = cache_key(&long);
        assert!(k.starts_with("GET #") && k.len() < 60, "{k}");
    }

    #[test]
    fn cache_control_directives_are_matched_whole() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=0, No-Store"),
        );
        assert!(has_directive(&h, &["no-store"]));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-storex"));
        assert!(!has_directive(&h, &["no-store"]));
    }
}
