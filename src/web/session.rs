//! [`SessionLayer`] and the [`Session`] extractor: cookie sessions on
//! [`Sessions`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, Request, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use super::error::json_error;
use super::{web_event, BoxFuture};
use crate::session::{NewSession, SessionId, SessionMeta, Sessions};
use crate::{Result, Store};

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent on same-site requests and top-level navigations (the default).
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent everywhere (requires `Secure`).
    None,
}

/// How the session cookie is written.
///
/// Defaults: name `sid`, `Path=/`, `HttpOnly`, `Secure`, `SameSite=Lax`, no
/// `Domain`, no `Max-Age` (the browser keeps it until it closes; the
/// server-side session has its own rolling expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieConfig {
    /// The cookie's name.
    pub name: String,
    /// `Path`.
    pub path: String,
    /// `Domain`, if any.
    pub domain: Option<String>,
    /// `HttpOnly`: scripts cannot read the id.
    pub http_only: bool,
    /// `Secure`: sent over HTTPS only (browsers treat `localhost` as
    /// secure; turn it off only for plain-HTTP tools in development).
    pub secure: bool,
    /// `SameSite`.
    pub same_site: SameSite,
    /// `Max-Age`, if any.
    pub max_age: Option<Duration>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "sid".into(),
            path: "/".into(),
            domain: None,
            http_only: true,
            secure: true,
            same_site: SameSite::Lax,
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// Sets [`name`](Self::name).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Sets [`secure`](Self::secure).
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }
    /// Sets [`same_site`](Self::same_site).
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }
    /// Sets [`path`](Self::path).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }
    /// Sets [`domain`](Self::domain).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
    /// Sets [`max_age`](Self::max_age).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The `Set-Cookie` value for `value` (`None` = delete the cookie).
    pub fn set_cookie(&self, value: Option<&str>) -> String {
        let mut out = format!("{}={}", self.name, value.unwrap_or(""));
        out.push_str(&format!("; Path={}", self.path));
        if let Some(domain) = &self.domain {
            out.push_str(&format!("; Domain={domain}"));
        }
        match (value, self.max_age) {
            (None, _) => out.push_str("; Max-Age=0"),
            (Some(_), Some(age)) => out.push_str(&format!("; Max-Age={}", age.as_secs())),
            (Some(_), None) => {}
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str(match self.same_site {
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
            SameSite::None => "; SameSite=None",
        });
        out
    }

    /// This cookie's value in a request's `Cookie` headers.
    fn find<'a>(&self, headers: &'a http::HeaderMap) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name)
            .map(|(_, value)| value.trim().trim_matches('"'))
    }
}

/// A tower layer that reads the session cookie and lets handlers use the
/// [`Session`] extractor; it writes the `Set-Cookie` header they ask for
/// (and `Cache-Control: no-store` with it, so no shared cache keeps a
/// session id).
pub struct SessionLayer<St> {
    sessions: Arc<Sessions<St>>,
    cookie: Arc<CookieConfig>,
}

impl<St> Clone for SessionLayer<St> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            cookie: self.cookie.clone(),
        }
    }
}

impl<St> fmt::Debug for SessionLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("sessions", &self.sessions)
            .field("cookie", &self.cookie)
            .finish()
    }
}

impl<St: Store + 'static> SessionLayer<St> {
    /// Sessions from `sessions`, with the default [`CookieConfig`].
    pub fn new(sessions: impl Into<Arc<Sessions<St>>>) -> Self {
        Self {
            sessions: sessions.into(),
            cookie: Arc::new(CookieConfig::default()),
        }
    }

    /// Writes the cookie as `cookie` says.
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.cookie = Arc::new(cookie);
        self
    }

    /// The sessions.
    pub fn sessions(&self) -> &Arc<Sessions<St>> {
        &self.sessions
    }
}

impl<St, S> Layer<S> for SessionLayer<St> {
    type Service = SessionService<St, S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service of a [`SessionLayer`].
pub struct SessionService<St, S> {
    layer: SessionLayer<St>,
    inner: S,
}

impl<St, S: Clone> Clone for SessionService<St, S> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<St, S: fmt::Debug> fmt::Debug for SessionService<St, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("layer", &self.layer)
            .field("inner", &self.inner)
            .finish()
    }
}

/// What a handler did to the cookie.
#[derive(Default)]
struct State {
    /// The current id: the cookie's, or the one a login or rotation made.
    id: Option<SessionId>,
    /// `Some(Some(id))` = set the cookie to `id`; `Some(None)` = delete it.
    write: Option<Option<SessionId>>,
}

/// The per-request data the layer hands to the extractor.
struct RequestSession<St> {
    sessions: Arc<Sessions<St>>,
    meta: SessionMeta,
    state: Arc<Mutex<State>>,
}

impl<St> Clone for RequestSession<St> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            meta: self.meta.clone(),
            state: self.state.clone(),
        }
    }
}

impl<St, S, B> Service<Request<B>> for SessionService<St, S>
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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cookie = self.layer.cookie.clone();
        let present = cookie.find(req.headers()).map(str::to_owned);
        let id = present.as_deref().and_then(|v| SessionId::parse(v).ok());
        let mut meta = SessionMeta::new();
        if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
            meta = meta.with_ip(addr.ip().to_canonical().to_string());
        }
        if let Some(ua) = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            meta = meta.with_user_agent(ua);
        }
        let state = Arc::new(Mutex::new(State {
            // A cookie that is not a well-formed id is cleared on the way out.
            write: (present.is_some() && id.is_none()).then_some(None),
            id,
        }));
        req.extensions_mut().insert(RequestSession {
            sessions: self.layer.sessions.clone(),
            meta,
            state: state.clone(),
        });
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            let write = lock(&state).write.take();
            if let Some(write) = write {
                let value = cookie.set_cookie(write.as_ref().map(SessionId::as_str));
                web_event!(debug, set = write.is_some(), "session: cookie written");
                if let Ok(value) = HeaderValue::from_str(&value) {
                    res.headers_mut().append(header::SET_COOKIE, value);
                    res.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
            }
            Ok(res)
        })
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A handler that panicked mid-request leaves a usable state.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The current request's session, in a handler (needs a
/// [`SessionLayer`] on the route; without one the extractor answers
/// `500`).
///
/// ```no_run
/// use axum::{http::StatusCode, Json};
/// use rampart::web::{ApiError, Session};
///
/// async fn me(session: Session) -> Result<Json<String>, ApiError> {
///     match session.load::<serde_json::Value>().await? {
///         Some(s) => Ok(Json(s.user_id)),
///         None => Err(ApiError(rampart::Error::new(rampart::ErrorKind::NotFound, "not logged in"))),
///     }
/// }
/// ```
pub struct Session<St = Arc<dyn Store>> {
    ctx: RequestSession<St>,
}

impl<St> fmt::Debug for Session<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("has_id", &lock(&self.ctx.state).id.is_some())
            .finish_non_exhaustive()
    }
}

impl<St: Store + 'static, AppState: Send + Sync> FromRequestParts<AppState> for Session<St> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        match parts.extensions.get::<RequestSession<St>>() {
            Some(ctx) => Ok(Session { ctx: ctx.clone() }),
            None => Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "RAMPART_NO_SESSION_LAYER",
                "the Session extractor needs a SessionLayer (with the same store type) on the route",
            )
            .into_response()),
        }
    }
}

impl<St: Store + 'static> Session<St> {
    /// The sessions.
    pub fn sessions(&self) -> &Sessions<St> {
        &self.ctx.sessions
    }

    /// The id the request carries (or the one this request's login or
    /// rotation made), if any; it may not be live: use
    /// [`load`](Self::load).
    pub fn id(&self) -> Option<SessionId> {
        lock(&self.ctx.state).id.clone()
    }

    /// The client's address and user agent, as a login records them.
    pub fn meta(&self) -> &SessionMeta {
        &self.ctx.meta
    }

    /// The live session with its data, renewing its rolling expiry; `None`
    /// (and the cookie is cleared) when there is no cookie or its session
    /// is gone.
    ///
    /// # Errors
    /// As [`Sessions::get`].
    pub async fn load<T: DeserializeOwned>(&self) -> Result<Option<crate::session::Session<T>>> {
        let Some(id) = self.id() else {
            return Ok(None);
        };
        let found = self.ctx.sessions.get::<T>(&id).await?;
        if found.is_none() {
            let mut state = lock(&self.ctx.state);
            if state.id.as_ref() == Some(&id) {
                state.id = None;
                state.write = Some(None);
            }
        }
        Ok(found)
    }

    /// Logs `user_id` in: ends the session the request carried (if any),
    /// opens a new one with a fresh id (so an id planted before login is
    /// worthless: session fixation) and sets the cookie.
    ///
    /// # Errors
    /// As [`Sessions::create`].
    pub async fn login<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        data: &T,
    ) -> Result<NewSession> {
        if let Some(old) = self.id() {
            self.ctx.sessions.destroy(&old).await?;
        }
        let created = self
            .ctx
            .sessions
            .create(user_id, data, self.ctx.meta.clone())
            .await?;
        let mut state = lock(&self.ctx.state);
        state.id = Some(created.id.clone());
        state.write = Some(Some(created.id.clone()));
        Ok(created)
    }

    /// Gives the current session a new id (after a privilege change) and
    /// sets the cookie; `None` if there is no live session.
    ///
    /// # Errors
    /// As [`Sessions::rotate`].
    pub async fn rotate(&self) -> Result<Option<SessionId>> {
        let Some(id) = self.id() else {
            return Ok(None);
        };
        let new = self.ctx.sessions.rotate(&id).await?;
        let mut state = lock(&self.ctx.state);
        state.id = new.clone();
        state.write = Some(new.clone());
        Ok(new)
    }

    /// Ends the current session and clears the cookie; `true` if it was
    /// live.
    ///
    /// # Errors
    /// As [`Sessions::destroy`].
    pub async fn logout(&self) -> Result<bool> {
        let id = self.id();
        {
            let mut state = lock(&self.ctx.state);
            state.id = None;
            state.write = Some(None);
        }
        match id {
            Some(id) => self.ctx.sessions.destroy(&id).await,
            None => Ok(false),
        }
    }

    /// Ends every session of `user_id` (this one included) and clears the
    /// cookie; returns how many ended.
    ///
    /// # Errors
    /// As [`Sessions::destroy_all`].
    pub async fn logout_everywhere(&self, user_id: &str) -> Result<u64> {
        {
            let mut state = lock(&self.ctx.state);
            state.id = None;
            state.write = Some(None);
        }
        self.ctx.sessions.destroy_all(user_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_the_configured_flags() {
        let c = CookieConfig::default();
        assert_eq!(
            c.set_cookie(Some("abc")),
            "sid=abc; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            c.set_cookie(None),
            "sid=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        let c = CookieConfig::default()
            .with_name("app")
            .with_secure(false)
            .with_same_site(SameSite::Strict)
            .with_domain("example.com")
            .with_max_age(Duration::from_secs(60));
        assert_eq!(
            c.set_cookie(Some("x")),
            "app=x; Path=/; Domain=example.com; Max-Age=60; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let c = CookieConfig::default();
        let mut headers = http::HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; sidx=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; sid=v; b=3"),
        );
        assert_eq!(c.find(&headers), Some("v"));
        assert_eq!(CookieConfig::default().with_name("zz").find(&headers), None);
    }
}
