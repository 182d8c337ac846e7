//! The rampart demo API: every capability the way a web backend uses it.
//!
//! Run: `cargo run --example server --features axum` (in-process store), or
//! with `REDIS_URL=redis://127.0.0.1:6379` (any `REDIS_*` variable of the
//! README) to run on Redis. `PORT` (default 3000) and `HOST` (default
//! 127.0.0.1) choose the address; `COOKIE_SECURE=false` drops the cookie's
//! `Secure` flag for plain-HTTP tools; `TRUSTED_PROXIES=10.0.0.0/8,...`
//! makes `X-Forwarded-For` count from those peers; `RATE_LIMIT_*` tune the
//! tiers. Built with `--features axum,tracing`, it prints `tracing` events
//! (every store call and rate-limit decision with `LOG_LEVEL=debug`).
//!
//! | Route | What it shows |
//! |---|---|
//! | `GET /health` | store status and latency, cache stats (no rate limit) |
//! | `POST /auth/register`, `POST /auth/login` | auth tier: 5 per 15 min per client, then blocked 15 min |
//! | `GET /me`, `GET /sessions`, `POST /auth/logout`, `POST /auth/logout-everywhere` | cookie sessions: rotate on login, list, revoke |
//! | `GET /api/catalogue`, `GET/PUT /api/catalogue/{id}` | api tier (per `X-Api-Key`, else per client); GETs cached, a PUT invalidates |
//! | `POST /locks/{name}`, `GET /locks/{name}`, `POST /locks/{name}/extend`, `PUT /locks/{name}/resource`, `DELETE /locks/{name}` | process locks with `X-Lock-Token` and fencing |
//!
//! Every route but `/health` is under the general tier (100 per 15 min per
//! client). Rate-limit headers are IETF draft 8, one named item per tier.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rampart::cache::Cache;
use rampart::limit::{presets::Presets, HeaderStyle, Limiter};
use rampart::lock::{Extend, LockToken, Locks, Release};
use rampart::session::{SessionConfig, Sessions};
use rampart::web::{
    ApiError, CacheLayer, ClientIp, CookieConfig, KeyExtractor, RateLimitLayer, Session,
    SessionLayer,
};
use rampart::{Change, Error, ErrorKind, Key, SharedClock, Store, SystemClock};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The store every feature shares.
pub type DynStore = Arc<dyn Store>;

/// What the server reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The auth, general and api tiers.
    pub presets: Presets,
    /// The session cookie's `Secure` flag.
    pub cookie_secure: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// The clock of limiters, sessions, locks and the cache (tests use a
    /// manual one, shared with an in-process store).
    pub clock: SharedClock,
}

impl Config {
    /// From `RATE_LIMIT_*`, `COOKIE_SECURE` and `TRUSTED_PROXIES`.
    pub fn from_env() -> rampart::Result<Config> {
        Ok(Config {
            presets: Presets::from_env()?,
            cookie_secure: std::env::var("COOKIE_SECURE").map_or(true, |v| v != "false"),
            trusted_proxies: std::env::var("TRUSTED_PROXIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            clock: SystemClock::shared(),
        })
    }
}

#[derive(Clone)]
struct App {
    store: DynStore,
    cache: Cache<DynStore>,
    locks: Locks<DynStore>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Product {
    id: u32,
    name: String,
    price_cents: u64,
}

#[derive(Serialize, Deserialize)]
struct UserRecord {
    salt: String,
    hash: String,
}

#[derive(Serialize, Deserialize)]
struct SessionData {
    username: String,
}

const CATALOGUE_KEY: &str = "demo:catalogue";
const CATALOGUE_TAG: &str = "catalogue";
const MAX_LOCK_TTL: Duration = Duration::from_secs(600);

/// The demo API over `store`.
///
/// # Errors
/// A bad configuration (a trusted proxy that is not a CIDR block).
pub fn app(store: DynStore, config: Config) -> rampart::Result<Router> {
    let client_ip = ClientIp::new().trust_proxies(&config.trusted_proxies)?;
    let clock = config.clock.clone();
    let tier = |rule, prefix: &str| {
        Limiter::builder(store.clone(), rule)
            .prefix(prefix)
            .clock(clock.clone())
            .build()
    };
    // Registration and login each get the auth tier, counted apart: five
    // login attempts per client per 15 minutes, whatever the sign-ups.
    let auth = |prefix| -> rampart::Result<_> {
        Ok(
            RateLimitLayer::new(tier(config.presets.auth.clone(), prefix)?)
                .key_extractor(client_ip.clone())
                .header_style(HeaderStyle::Draft8)
                .policy_name("auth"),
        )
    };
    let general = RateLimitLayer::new(tier(config.presets.general, "rl:general")?)
        .key_extractor(client_ip.clone())
        .header_style(HeaderStyle::Draft8)
        .policy_name("general");
    // API clients are counted by their key; anonymous callers by address.
    let api_key = |parts: &axum::http::request::Parts| {
        let key = parts.headers.get("x-api-key")?.to_str().ok()?;
        (!key.is_empty() && key.len() <= 128).then(|| format!("key:{key}"))
    };
    let api = RateLimitLayer::new(tier(config.presets.api, "rl:api")?)
        .key_extractor(api_key.or(client_ip.clone()))
        .header_style(HeaderStyle::Draft8)
        .policy_name("api");

    let sessions = Sessions::new(
        store.clone(),
        SessionConfig::default().with_namespace("demo:session"),
    )?
    .with_clock(clock.clone());
    let cookie = CookieConfig::default().with_secure(config.cookie_secure);
    let cache = Cache::builder(store.clone())
        .namespace("demo:http")
        .clock(clock.clone())
        .build()?;
    let state = App {
        store: store.clone(),
        cache: cache.clone(),
        locks: Locks::builder(store.clone()).clock(clock.clone()).build()?,
    };

    let auth_routes = Router::new()
        .route(
            "/auth/register",
            post(register).route_layer(auth("rl:auth:register")?),
        )
        .route(
            "/auth/login",
            post(login).route_layer(auth("rl:auth:login")?),
        );
    // The catalogue is the same for everyone (`public`: cached even for
    // requests that carry a session cookie); a TTL per route; one tag.
    let cached = |ttl| {
        CacheLayer::new(cache.clone(), Duration::from_secs(ttl))
            .tag(CATALOGUE_TAG)
            .public()
    };
    let api_routes = Router::new()
        .route("/api/catalogue", get(list_products).route_layer(cached(30)))
        .route(
            "/api/catalogue/{id}",
            get(get_product).put(put_product).route_layer(cached(60)),
        )
        .route_layer(api);
    let limited = Router::new()
        .merge(auth_routes)
        .merge(api_routes)
        .route("/auth/logout", post(logout))
        .route("/auth/logout-everywhere", post(logout_everywhere))
        .route("/me", get(me))
        .route("/sessions", get(list_sessions))
        .route(
            "/locks/{name}",
            post(acquire).get(lock_status).delete(release),
        )
        .route("/locks/{name}/extend", post(extend))
        .route(
            "/locks/{name}/resource",
            axum::routing::put(update_resource),
        )
        .layer(SessionLayer::new(sessions).cookie(cookie))
        .layer(general);
    Ok(Router::new()
        .route("/health", get(health))
        .merge(limited)
        .with_state(state))
}

/// A handler's failure: an HTTP error of the demo's own, or a rampart
/// error (answered by [`ApiError`]: 503 for a store that is down).
enum Fail {
    Http(StatusCode, &'static str, &'static str),
    Store(Box<Error>),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Store(Box::new(e))
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::Http(status, code, message) => {
                (status, Json(json!({ "error": code, "message": message }))).into_response()
            }
            Fail::Store(e) => ApiError(*e).into_response(),
        }
    }
}

type Reply = Result<Response, Fail>;

// ---------------------------------------------------------------- health

async fn health(State(app): State<App>) -> Response {
    let started = Instant::now();
    let probe = match Key::new("demo:health") {
        Ok(key) => app.store.get(&key).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let latency_us = started.elapsed().as_micros() as u64;
    let stats = app.store.stats().await.ok();
    let counters = app.cache.counters();
    let backend = if app.store.capabilities().scripting {
        "redis"
    } else {
        "in-process"
    };
    let cache = json!({
        "hits": counters.hits,
        "misses": counters.misses,
        "hit_rate": counters.hit_rate(),
        "sets": counters.sets,
        "errors": counters.errors,
        "tag_invalidations": counters.tag_invalidations,
    });
    match probe {
        Ok(()) => Json(json!({
            "status": "ok",
            "store": {
                "backend": backend,
                "latency_us": latency_us,
                "keys": stats.as_ref().and_then(|s| s.keys),
                "memory_bytes": stats.as_ref().and_then(|s| s.memory_bytes),
                "server": stats.as_ref().and_then(|s| s.server.clone()),
            },
            "cache": cache,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "store": { "backend": backend, "error": e.code(), "latency_us": latency_us },
                "cache": cache,
            })),
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------- auth + sessions

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

fn user_key(username: &str) -> Result<Key, Fail> {
    let valid = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid {
        return Err(Fail::Http(
            StatusCode::BAD_REQUEST,
            "invalid_username",
            "1 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    Ok(Key::new(format!("demo:user:{username}"))?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A salted SHA-256, enough for a demo; a real service uses argon2 or
/// scrypt.
fn password_hash(salt: &str, password: &str) -> String {
    hex(&Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update([0])
        .chain_update(password.as_bytes())
        .finalize())
}

async fn register(State(app): State<App>, Json(c): Json<Credentials>) -> Reply {
    let key = user_key(&c.username)?;
    if c.password.len() < 8 {
        return Err(Fail::Http(
            StatusCode::BAD_REQUEST,
            "weak_password",
            "at least 8 characters",
        ));
    }
    let salt = hex(&rampart::rt::random_bytes::<16>()?);
    let record = UserRecord {
        hash: password_hash(&salt, &c.password),
        salt,
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    if !app.store.set_if_absent(&key, bytes.into(), None).await? {
        return Err(Fail::Http(
            StatusCode::CONFLICT,
            "user_exists",
            "that username is taken",
        ));
    }
    Ok((StatusCode::CREATED, Json(json!({ "username": c.username }))).into_response())
}

async fn login(State(app): State<App>, session: Session, Json(c): Json<Credentials>) -> Reply {
    let key = user_key(&c.username)?;
    let stored = app
        .store
        .get(&key)
        .await?
        .and_then(|b| serde_json::from_slice::<UserRecord>(&b).ok());
    // The same work whether or not the user exists.
    let (salt, expected) = match &stored {
        Some(u) => (u.salt.as_str(), u.hash.as_str()),
        None => ("", ""),
    };
    let given = password_hash(salt, &c.password);
    if stored.is_none() || !rampart::rt::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(Fail::Http(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        ));
    }
    let data = SessionData {
        username: c.username.clone(),
    };
    // A fresh session id; the one the request carried (if any) ends.
    let created = session.login(&c.username, &data).await?;
    Ok(Json(json!({ "username": c.username, "session": created.handle.as_str() })).into_response())
}

/// The logged-in user's session, or a 401.
async fn current_user(session: &Session) -> Result<rampart::session::Session<SessionData>, Fail> {
    session.load::<SessionData>().await?.ok_or(Fail::Http(
        StatusCode::UNAUTHORIZED,
        "not_logged_in",
        "log in first",
    ))
}

async fn me(session: Session) -> Reply {
    let s = current_user(&session).await?;
    Ok(Json(json!({
        "username": s.data.username,
        "session": s.handle.as_str(),
        "expires_ms": s.expires.as_millis(),
    }))
    .into_response())
}

async fn logout(session: Session) -> Reply {
    let was_live = session.logout().await?;
    Ok(Json(json!({ "logged_out": was_live })).into_response())
}

async fn logout_everywhere(session: Session) -> Reply {
    let user = current_user(&session).await?.user_id;
    let ended = session.logout_everywhere(&user).await?;
    Ok(Json(json!({ "ended": ended })).into_response())
}

async fn list_sessions(session: Session) -> Reply {
    let user = current_user(&session).await?;
    let list = session.sessions().list(&user.user_id).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|s| {
            json!({
                "session": s.handle.as_str(),
                "current": s.handle == user.handle,
                "ip": s.meta.ip,
                "user_agent": s.meta.user_agent,
                "created_ms": s.created.as_millis(),
                "last_seen_ms": s.last_seen.as_millis(),
                "expires_ms": s.expires.as_millis(),
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": items })).into_response())
}

// ---------------------------------------------------------------- catalogue

fn seed() -> BTreeMap<u32, Product> {
    [(1, "Lamp", 1_999), (2, "Chair", 4_950), (3, "Desk", 12_900)]
        .into_iter()
        .map(|(id, name, price_cents)| {
            (
                id,
                Product {
                    id,
                    name: name.into(),
                    price_cents,
                },
            )
        })
        .collect()
}

/// The "database": the catalogue as one JSON value in the store (seeded on
/// first read), so several instances over Redis see the same data.
async fn load_catalogue(store: &DynStore) -> rampart::Result<BTreeMap<u32, Product>> {
    let key = Key::new(CATALOGUE_KEY)?;
    let seeded = serde_json::to_vec(&seed()).unwrap_or_default();
    store.set_if_absent(&key, seeded.into(), None).await?;
    match store.get(&key).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt("the demo catalogue is not JSON").with_source(e)),
        None => Ok(seed()),
    }
}

async fn list_products(State(app): State<App>) -> Reply {
    let all: Vec<Product> = load_catalogue(&app.store).await?.into_values().collect();
    Ok(Json(all).into_response())
}

async fn get_product(State(app): State<App>, Path(id): Path<u32>) -> Reply {
    match load_catalogue(&app.store).await?.remove(&id) {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(Fail::Http(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such product",
        )),
    }
}

#[derive(Deserialize)]
struct ProductUpdate {
    name: String,
    price_cents: u64,
}

async fn put_product(
    State(app): State<App>,
    Path(id): Path<u32>,
    Json(update): Json<ProductUpdate>,
) -> Reply {
    load_catalogue(&app.store).await?; // seeds it if needed
    let product = Product {
        id,
        name: update.name,
        price_cents: update.price_cents,
    };
    let key = Key::new(CATALOGUE_KEY)?;
    let written = product.clone();
    app.store
        .update(&key, &mut |current| {
            let mut all: BTreeMap<u32, Product> = current
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_else(seed);
            all.insert(id, written.clone());
            Change::SetKeepTtl(serde_json::to_vec(&all).unwrap_or_default().into())
        })
        .await?;
    // Every cached catalogue page carries the tag: one write makes them miss.
    app.cache.invalidate_tag(CATALOGUE_TAG).await?;
    Ok(Json(product).into_response())
}

// ---------------------------------------------------------------- locks

#[derive(Deserialize, Default)]
struct LockRequest {
    ttl_ms: Option<u64>,
    wait_ms: Option<u64>,
}

fn lock_ttl(ms: Option<u64>) -> Result<Duration, Fail> {
    let ttl = Duration::from_millis(ms.unwrap_or(30_000));
    if ttl.is_zero() || ttl > MAX_LOCK_TTL {
        return Err(Fail::Http(
            StatusCode::BAD_REQUEST,
            "invalid_ttl",
            "ttl_ms must be between 1 and 600000",
        ));
    }
    Ok(ttl)
}

/// The lock name from the path, and the token from `X-Lock-Token`.
fn name_and_token(name: &str, headers: &HeaderMap) -> Result<LockToken, Fail> {
    check_name(name)?;
    let Some(value) = headers.get("x-lock-token") else {
        return Err(Fail::Http(
            StatusCode::BAD_REQUEST,
            "missing_token",
            "send the token from the acquire response in X-Lock-Token",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|t| LockToken::from_hex(t.trim()).ok())
        .ok_or(Fail::Http(
            StatusCode::BAD_REQUEST,
            "bad_token",
            "a lock token is 32 hex digits",
        ))
}

const NOT_HELD: Fail = Fail::Http(
    StatusCode::CONFLICT,
    "not_held",
    "this token does not hold the lock (wrong token, or the hold expired)",
);

fn check_name(name: &str) -> Result<(), Fail> {
    if name.is_empty() || name.len() > 128 {
        return Err(Fail::Http(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "a lock name is 1 to 128 bytes",
        ));
    }
    Ok(())
}

async fn acquire(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Option<Json<LockRequest>>,
) -> Reply {
    check_name(&name)?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let ttl = lock_ttl(req.ttl_ms)?;
    let wait = Duration::from_millis(req.wait_ms.unwrap_or(0).min(10_000));
    let Some(guard) = app.locks.acquire(&name, ttl, wait).await? else {
        let remaining = app.locks.ttl(&name).await?;
        let retry = remaining.map_or(1, |d| d.as_secs().max(1));
        let mut res = Fail::Http(
            StatusCode::CONFLICT,
            "locked",
            "someone else holds this lock",
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(res);
    };
    // The guard is dropped here: the lock stays held until released with
    // the token or until its TTL runs out.
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "resource": name,
            "token": guard.token().as_hex(),
            "fence": guard.fence(),
            "expires_at_ms": guard.expires_at().as_millis(),
        })),
    )
        .into_response())
}

async fn lock_status(State(app): State<App>, Path(name): Path<String>) -> Reply {
    check_name(&name)?;
    let info = app.locks.info(&name).await?;
    Ok(Json(json!({
        "resource": name,
        "locked": info.is_locked(),
        "remaining_ms": info.remaining.map(|d| d.as_millis() as u64),
        "fence": info.fence,
    }))
    .into_response())
}

async fn extend(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<LockRequest>>,
) -> Reply {
    let token = name_and_token(&name, &headers)?;
    let ttl = lock_ttl(body.and_then(|Json(b)| b.ttl_ms))?;
    match app.locks.extend(&name, &token, ttl).await? {
        Extend::Extended { expires_at } => Ok(Json(
            json!({ "resource": name, "expires_at_ms": expires_at.as_millis() }),
        )
        .into_response()),
        Extend::NotHeld => Err(NOT_HELD),
    }
}

#[derive(Deserialize)]
struct ResourceUpdate {
    value: Value,
}

/// Writes the protected resource: only the token's holder may, and the
/// record keeps the highest fencing token it has seen, refusing older ones
/// (a holder that paused past its TTL can do no harm).
async fn update_resource(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(update): Json<ResourceUpdate>,
) -> Reply {
    let token = name_and_token(&name, &headers)?;
    // The fence of the current hold, then proof that the token holds it:
    // an extension to the time it has left (so the expiry is unchanged).
    let info = app.locks.info(&name).await?;
    let remaining = info.remaining.ok_or(NOT_HELD)?;
    let proof = app
        .locks
        .extend(&name, &token, remaining.max(Duration::from_millis(1)))
        .await?;
    if !proof.is_extended() {
        return Err(NOT_HELD);
    }
    let fence = info.fence;
    let key = Key::new(format!("demo:resource:{name}"))?;
    let record = json!({ "fence": fence, "value": update.value });
    let mut stale = false;
    app.store
        .update(&key, &mut |current| {
            let seen = current
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|v| v.get("fence")?.as_u64())
                .unwrap_or(0);
            stale = fence < seen;
            if stale {
                Change::Keep
            } else {
                Change::Set {
                    value: record.to_string().into(),
                    ttl: None,
                }
            }
        })
        .await?;
    if stale {
        return Err(Fail::Http(
            StatusCode::CONFLICT,
            "stale_fence",
            "a newer holder has written this resource",
        ));
    }
    Ok(Json(json!({ "resource": name, "fence": fence, "value": record["value"] })).into_response())
}

async fn release(State(app): State<App>, Path(name): Path<String>, headers: HeaderMap) -> Reply {
    let token = name_and_token(&name, &headers)?;
    match app.locks.release(&name, &token).await? {
        Release::Released => Ok(StatusCode::NO_CONTENT.into_response()),
        Release::NotHeld => Err(NOT_HELD),
    }
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Redis when REDIS_URL (or another REDIS_* variable) says so; the
    // embedded in-process store otherwise.
    let store = rampart_redis::store_from_env()?;
    // With `--features tracing`: an event per store call and per decision,
    // printed at `LOG_LEVEL` (default info; `debug` shows every call).
    #[cfg(feature = "tracing")]
    let store: DynStore = {
        let level = std::env::var("LOG_LEVEL")
            .ok()
            .and_then(|l| l.parse::<tracing::Level>().ok())
            .unwrap_or(tracing::Level::INFO);
        tracing_subscriber::fmt().with_max_level(level).init();
        Arc::new(rampart::layers::Traced::named(store, "store"))
    };
    let router = app(store.clone(), Config::from_env()?)?;
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| Error::new(ErrorKind::Config, "PORT must be a port number"))?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
    let backend = if store.capabilities().scripting {
        "Redis"
    } else {
        "the in-process store"
    };
    println!(
        "rampart demo on http://{} ({backend})",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
