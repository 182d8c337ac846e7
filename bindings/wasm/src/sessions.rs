//! `Sessions`: the core's server-side sessions ([`rampart::session`]) for
//! JavaScript. Thin forwarding: ids, hashing, the per-user index, rolling
//! and absolute expiry, rotation and revocation are the core's.
//!
//! Session data crosses the boundary as JSON text (`lib/sessions.js`
//! stringifies and parses), held by the core as a `serde_json::Value`.

use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Array, Function, Reflect};
use rampart::session::{
    Denylist, NewSession, Refresh, RefreshConfig, RefreshToken, RefreshTokens, Session,
    SessionConfig, SessionHandle, SessionId, SessionInfo, SessionMeta, Sessions,
};
use rampart::{Error, ScriptTime, Store, Timestamp};
use serde_json::value::RawValue;

/// Session data as its JSON text: checked once, never turned into a
/// tree (the core embeds it in the record as it is).
type Json = Box<RawValue>;
use wasm_bindgen::prelude::*;

use crate::clock::ManualClockHandle;
use crate::convert::{
    describe, duration_from_millis, integer_in, optional, well_formed_string, MAX_SAFE_INTEGER,
    MAX_VALUE_LEN,
};
use crate::error::js;
use crate::runtime::{spawn, CallbackGuard};
use crate::store::StoreHandle;

type DynSessions = Sessions<Arc<dyn Store>>;

fn field(obj: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(JsValue::UNDEFINED);
    }
    if !obj.is_object() {
        return Err(js(Error::config(format!(
            "session options must be an object, got {}",
            describe(obj)
        ))));
    }
    Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|_| js(Error::config(format!("reading options.{name} threw"))))
}

fn config_millis(obj: &JsValue, name: &str) -> Result<Option<std::time::Duration>, JsValue> {
    optional(&field(obj, name)?, name, |x| duration_from_millis(x, name))
        .map_err(|e| js(Error::config(e.message().to_owned())))
}

/// A [`SessionConfig`] from `{ namespace, idleTimeout, maxLifetime,
/// maxSessionsPerUser, touchInterval }` (milliseconds) and the script time.
fn config(options: &JsValue) -> Result<(SessionConfig, ScriptTime), JsValue> {
    let mut c = SessionConfig::default();
    let namespace = field(options, "namespace")?;
    if !namespace.is_undefined() {
        c = c.with_namespace(
            namespace
                .as_string()
                .ok_or_else(|| js(Error::config("options.namespace must be a string")))?,
        );
    }
    if let Some(d) = config_millis(options, "idleTimeout")? {
        c = c.with_idle_timeout(d);
    }
    if let Some(d) = config_millis(options, "maxLifetime")? {
        c = c.with_max_lifetime(d);
    }
    if let Some(d) = config_millis(options, "touchInterval")? {
        c = c.with_touch_interval(d);
    }
    if let Some(n) = optional(
        &field(options, "maxSessionsPerUser")?,
        "maxSessionsPerUser",
        |x| integer_in(x, 1, 1_000_000, "maxSessionsPerUser"),
    )
    .map_err(|e| js(Error::config(e.message().to_owned())))?
    {
        c = c.with_max_sessions_per_user(n as usize);
    }
    let script_time = match field(options, "scriptTime")?.as_string().as_deref() {
        None | Some("server") => ScriptTime::Server,
        Some("caller") => ScriptTime::Caller,
        Some(other) => {
            return Err(js(Error::config(format!(
                "scriptTime must be server or caller, got {other:?}"
            ))))
        }
    };
    Ok((c, script_time))
}

fn text(v: &JsValue, what: &str) -> Result<String, JsValue> {
    match well_formed_string(v) {
        Some(Ok(s)) if !s.is_empty() && s.len() <= rampart::MAX_KEY_LEN => Ok(s),
        Some(Ok(_)) => Err(js(Error::invalid_input(format!(
            "{what} must be a non-empty string of at most {} bytes",
            rampart::MAX_KEY_LEN
        )))),
        Some(Err(e)) => Err(js(Error::invalid_input(format!("{what}: {}", e.message())))),
        None => Err(js(Error::invalid_input(format!(
            "{what} must be a string, got {}",
            describe(v)
        )))),
    }
}

fn optional_text(v: &JsValue, what: &str) -> Result<Option<String>, JsValue> {
    if v.is_undefined() || v.is_null() {
        Ok(None)
    } else {
        text(v, what).map(Some)
    }
}

fn session_id(v: &JsValue) -> Result<SessionId, JsValue> {
    let s = v.as_string().ok_or_else(|| {
        js(Error::invalid_input(format!(
            "a session id must be a string, got {}",
            describe(v)
        )))
    })?;
    SessionId::parse(&s).map_err(js)
}

/// Session data from its JSON text.
fn data(v: &JsValue) -> Result<Json, JsValue> {
    let s = v.as_string().ok_or_else(|| {
        js(Error::invalid_input(
            "session data must be JSON-serializable",
        ))
    })?;
    if s.len() > MAX_VALUE_LEN {
        return Err(js(Error::invalid_input(format!(
            "session data is larger than {MAX_VALUE_LEN} bytes"
        ))));
    }
    serde_json::from_str(&s).map_err(|_| js(Error::invalid_input("session data is not valid JSON")))
}

fn ms(t: Timestamp) -> JsValue {
    JsValue::from_f64(t.as_micros() as f64 / 1_000.0)
}

fn opt_str(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

fn meta(ip: &JsValue, user_agent: &JsValue) -> Result<SessionMeta, JsValue> {
    let mut m = SessionMeta::new();
    if let Some(ip) = optional_text(ip, "ip")? {
        m = m.with_ip(ip);
    }
    if let Some(ua) = optional_text(user_agent, "userAgent")? {
        m = m.with_user_agent(ua);
    }
    Ok(m)
}

fn meta_js(m: &SessionMeta) -> [JsValue; 2] {
    [opt_str(m.ip.as_deref()), opt_str(m.user_agent.as_deref())]
}

/// `[id, handle, expires, generation]`.
fn new_session(s: &NewSession) -> JsValue {
    Array::of4(
        &JsValue::from_str(s.id.as_str()),
        &JsValue::from_str(s.handle.as_str()),
        &ms(s.expires),
        &JsValue::from_f64(s.generation as f64),
    )
    .into()
}

/// `[handle, userId, dataJson, ip, userAgent, created, lastSeen, expires,
/// expiresAtMost]`, or `null`.
fn session(s: Option<Session<Json>>) -> Result<JsValue, JsValue> {
    let Some(s) = s else {
        return Ok(JsValue::NULL);
    };
    let [ip, ua] = meta_js(&s.meta);
    let out = Array::new();
    for v in [
        JsValue::from_str(s.handle.as_str()),
        JsValue::from_str(&s.user_id),
        JsValue::from_str(s.data.get()),
        ip,
        ua,
        ms(s.created),
        ms(s.last_seen),
        ms(s.expires),
        ms(s.expires_at_most),
    ] {
        out.push(&v);
    }
    Ok(out.into())
}

/// `[handle, ip, userAgent, created, lastSeen, expires, expiresAtMost]`.
fn info(s: &SessionInfo) -> JsValue {
    let [ip, ua] = meta_js(&s.meta);
    let out = Array::new();
    for v in [
        JsValue::from_str(s.handle.as_str()),
        ip,
        ua,
        ms(s.created),
        ms(s.last_seen),
        ms(s.expires),
        ms(s.expires_at_most),
    ] {
        out.push(&v);
    }
    out.into()
}

/// The core's sessions over a `Store`.
#[wasm_bindgen(js_name = Sessions)]
pub struct SessionsHandle {
    sessions: Rc<DynSessions>,
}

#[wasm_bindgen(js_class = Sessions)]
impl SessionsHandle {
    /// Sessions on `store` on the system clock; `options` as [`config`].
    pub fn create(store: &StoreHandle, options: JsValue) -> Result<SessionsHandle, JsValue> {
        let (config, script_time) = config(&options)?;
        let sessions = Sessions::new(store.store(), config)
            .map_err(js)?
            .with_script_time(script_time);
        Ok(Self {
            sessions: Rc::new(sessions),
        })
    }

    /// Sessions on `store` following `clock` (tests).
    #[wasm_bindgen(js_name = createWithClock)]
    pub fn create_with_clock(
        store: &StoreHandle,
        clock: &ManualClockHandle,
        options: JsValue,
    ) -> Result<SessionsHandle, JsValue> {
        let (config, script_time) = config(&options)?;
        let sessions = Sessions::new(store.store(), config)
            .map_err(js)?
            .with_clock(clock.shared())
            .with_script_time(script_time);
        Ok(Self {
            sessions: Rc::new(sessions),
        })
    }

    /// Opens a session for `user_id` holding `data_json`; with
    /// `generation`, only if the user's sessions were not revoked since.
    #[wasm_bindgen(js_name = open)]
    pub fn open(
        &self,
        user_id: JsValue,
        data_json: JsValue,
        ip: JsValue,
        user_agent: JsValue,
        generation: JsValue,
    ) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let data = data(&data_json)?;
        let meta = meta(&ip, &user_agent)?;
        let generation = optional(&generation, "generation", |x| {
            integer_in(x, 0, MAX_SAFE_INTEGER as u64, "generation")
        })
        .map_err(js)?;
        let sessions = self.sessions.clone();
        spawn(async move {
            let created = match generation {
                None => sessions.create(&user_id, &data, meta).await,
                Some(g) => {
                    sessions
                        .create_if_generation(&user_id, &data, meta, g)
                        .await
                }
            };
            Ok(new_session(&created.map_err(js)?))
        })
    }

    /// The live session `id` (renewing its rolling expiry), or `null`.
    pub fn get(&self, id: JsValue) -> Result<JsValue, JsValue> {
        let id = session_id(&id)?;
        let sessions = self.sessions.clone();
        spawn(async move { session(sessions.get::<Json>(&id).await.map_err(js)?) })
    }

    /// Changes the data of session `id` atomically: `f(dataJson)` returns
    /// the new data's JSON text. `null` if the session is not live. If `f`
    /// throws or returns something else, the data is left as it was and
    /// the call rejects with that error.
    pub fn update(&self, id: JsValue, f: JsValue) -> Result<JsValue, JsValue> {
        let id = session_id(&id)?;
        let f: Function = f.dyn_into().map_err(|f| {
            js(Error::invalid_input(format!(
                "update needs a callback function, got {}",
                describe(&f)
            )))
        })?;
        let sessions = self.sessions.clone();
        spawn(async move {
            let mut failure: Option<JsValue> = None;
            let outcome = sessions
                .update::<Json, _>(&id, |current: &mut Json| {
                    failure = None;
                    let Ok(text) = serde_json::to_string(current) else {
                        failure =
                            Some(js(Error::corrupt("session data cannot be written as JSON")));
                        return;
                    };
                    let returned = {
                        let _guard = CallbackGuard::enter();
                        f.call1(&JsValue::NULL, &JsValue::from_str(&text))
                    };
                    match returned.and_then(|v| data(&v)) {
                        Ok(new) => *current = new,
                        Err(e) => failure = Some(e),
                    }
                })
                .await
                .map_err(js)?;
            if let Some(e) = failure {
                return Err(e);
            }
            session(outcome)
        })
    }

    /// Ends session `id`; `true` if it was live.
    pub fn destroy(&self, id: JsValue) -> Result<JsValue, JsValue> {
        let id = session_id(&id)?;
        let sessions = self.sessions.clone();
        spawn(async move { Ok(sessions.destroy(&id).await.map_err(js)?.into()) })
    }

    /// A new id for the same session (the old one dies), or `null`.
    pub fn rotate(&self, id: JsValue) -> Result<JsValue, JsValue> {
        let id = session_id(&id)?;
        let sessions = self.sessions.clone();
        spawn(async move {
            Ok(opt_str(
                sessions
                    .rotate(&id)
                    .await
                    .map_err(js)?
                    .as_ref()
                    .map(SessionId::as_str),
            ))
        })
    }

    /// Ends every session of `user_id`; resolves to how many.
    #[wasm_bindgen(js_name = destroyAll)]
    pub fn destroy_all(&self, user_id: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let sessions = self.sessions.clone();
        spawn(async move {
            let n = sessions.destroy_all(&user_id).await.map_err(js)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// Ends every session of `user_id` but `keep`; resolves to how many.
    #[wasm_bindgen(js_name = destroyOthers)]
    pub fn destroy_others(&self, user_id: JsValue, keep: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let keep = session_id(&keep)?;
        let sessions = self.sessions.clone();
        spawn(async move {
            let n = sessions.destroy_others(&user_id, &keep).await.map_err(js)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// Ends the session of `user_id` with public `handle` (a "log out that
    /// device" button); `true` if it was live.
    #[wasm_bindgen(js_name = destroyHandle)]
    pub fn destroy_handle(&self, user_id: JsValue, handle: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let handle = SessionHandle::parse(&text(&handle, "handle")?).map_err(js)?;
        let sessions = self.sessions.clone();
        spawn(async move {
            Ok(sessions
                .destroy_handle(&user_id, &handle)
                .await
                .map_err(js)?
                .into())
        })
    }

    /// The live sessions of `user_id`.
    pub fn list(&self, user_id: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let sessions = self.sessions.clone();
        spawn(async move {
            let list = sessions.list(&user_id).await.map_err(js)?;
            Ok(list.iter().map(info).collect::<Array>().into())
        })
    }

    /// How many live sessions `user_id` has.
    pub fn count(&self, user_id: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let sessions = self.sessions.clone();
        spawn(async move {
            let n = sessions.count(&user_id).await.map_err(js)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// The user's revocation generation (for `open` with a generation).
    pub fn generation(&self, user_id: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let sessions = self.sessions.clone();
        spawn(async move {
            let g = sessions.generation(&user_id).await.map_err(js)?;
            Ok(JsValue::from_f64(g as f64))
        })
    }
}

/// A [`RefreshConfig`] from `{ namespace, idleTimeout, maxLifetime,
/// maxFamiliesPerUser }` (milliseconds) and the script time.
fn refresh_config(options: &JsValue) -> Result<(RefreshConfig, ScriptTime), JsValue> {
    let mut c = RefreshConfig::default();
    let namespace = field(options, "namespace")?;
    if !namespace.is_undefined() {
        c = c.with_namespace(
            namespace
                .as_string()
                .ok_or_else(|| js(Error::config("options.namespace must be a string")))?,
        );
    }
    if let Some(d) = config_millis(options, "idleTimeout")? {
        c = c.with_idle_timeout(d);
    }
    if let Some(d) = config_millis(options, "maxLifetime")? {
        c = c.with_max_lifetime(d);
    }
    if let Some(n) = optional(
        &field(options, "maxFamiliesPerUser")?,
        "maxFamiliesPerUser",
        |x| integer_in(x, 1, 1_000_000, "maxFamiliesPerUser"),
    )
    .map_err(|e| js(Error::config(e.message().to_owned())))?
    {
        c = c.with_max_families_per_user(n as usize);
    }
    let script_time = match field(options, "scriptTime")?.as_string().as_deref() {
        None | Some("server") => ScriptTime::Server,
        Some("caller") => ScriptTime::Caller,
        Some(other) => {
            return Err(js(Error::config(format!(
                "scriptTime must be server or caller, got {other:?}"
            ))))
        }
    };
    Ok((c, script_time))
}

fn refresh_token(v: &JsValue) -> Result<RefreshToken, JsValue> {
    let s = v.as_string().ok_or_else(|| {
        js(Error::invalid_input(format!(
            "a refresh token must be a string, got {}",
            describe(v)
        )))
    })?;
    RefreshToken::parse(&s).map_err(js)
}

/// The core's refresh-token families with reuse detection.
#[wasm_bindgen(js_name = RefreshTokens)]
pub struct RefreshTokensHandle {
    tokens: Rc<RefreshTokens<Arc<dyn Store>>>,
}

#[wasm_bindgen(js_class = RefreshTokens)]
impl RefreshTokensHandle {
    /// Refresh tokens on `store` (optionally following `clock`).
    pub fn create(store: &StoreHandle, options: JsValue) -> Result<RefreshTokensHandle, JsValue> {
        let (config, script_time) = refresh_config(&options)?;
        let tokens = RefreshTokens::new(store.store(), config)
            .map_err(js)?
            .with_script_time(script_time);
        Ok(Self {
            tokens: Rc::new(tokens),
        })
    }

    /// Refresh tokens on `store` following `clock` (tests).
    #[wasm_bindgen(js_name = createWithClock)]
    pub fn create_with_clock(
        store: &StoreHandle,
        clock: &ManualClockHandle,
        options: JsValue,
    ) -> Result<RefreshTokensHandle, JsValue> {
        let (config, script_time) = refresh_config(&options)?;
        let tokens = RefreshTokens::new(store.store(), config)
            .map_err(js)?
            .with_clock(clock.shared())
            .with_script_time(script_time);
        Ok(Self {
            tokens: Rc::new(tokens),
        })
    }

    /// Starts a family for `user_id`: `[token, family, expires]`.
    pub fn issue(&self, user_id: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let tokens = self.tokens.clone();
        spawn(async move {
            let i = tokens.issue(&user_id).await.map_err(js)?;
            Ok(Array::of3(
                &JsValue::from_str(i.token.as_str()),
                &JsValue::from_str(&i.family),
                &ms(i.expires),
            )
            .into())
        })
    }

    /// Presents `token`: `["rotated", next, userId, expires, generation]`,
    /// `["reuse", userId]` (the family is revoked now), `["revoked"]` or
    /// `["unknown"]`.
    pub fn rotate(&self, token: JsValue) -> Result<JsValue, JsValue> {
        let token = refresh_token(&token)?;
        let tokens = self.tokens.clone();
        spawn(async move {
            let out = Array::new();
            match tokens.rotate(&token).await.map_err(js)? {
                Refresh::Rotated(r) => {
                    for v in [
                        JsValue::from_str("rotated"),
                        JsValue::from_str(r.token.as_str()),
                        JsValue::from_str(&r.user_id),
                        ms(r.expires),
                        JsValue::from_f64(r.generation as f64),
                    ] {
                        out.push(&v);
                    }
                }
                Refresh::ReuseDetected { user_id } => {
                    out.push(&JsValue::from_str("reuse"));
                    out.push(&JsValue::from_str(&user_id));
                }
                Refresh::Revoked => {
                    out.push(&JsValue::from_str("revoked"));
                }
                _ => {
                    out.push(&JsValue::from_str("unknown"));
                }
            }
            Ok(out.into())
        })
    }

    /// Revokes `token`'s family (logout); `true` if it was live.
    pub fn revoke(&self, token: JsValue) -> Result<JsValue, JsValue> {
        let token = refresh_token(&token)?;
        let tokens = self.tokens.clone();
        spawn(async move { Ok(tokens.revoke(&token).await.map_err(js)?.into()) })
    }

    /// Revokes every family of `user_id`; resolves to how many.
    #[wasm_bindgen(js_name = revokeAll)]
    pub fn revoke_all(&self, user_id: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let tokens = self.tokens.clone();
        spawn(async move {
            let n = tokens.revoke_all(&user_id).await.map_err(js)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// How many live families `user_id` has.
    pub fn count(&self, user_id: JsValue) -> Result<JsValue, JsValue> {
        let user_id = text(&user_id, "userId")?;
        let tokens = self.tokens.clone();
        spawn(async move {
            let n = tokens.count(&user_id).await.map_err(js)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }
}

/// The core's access-token denylist (revoked JWTs until they expire).
#[wasm_bindgen(js_name = Denylist)]
pub struct DenylistHandle {
    denylist: Rc<Denylist<Arc<dyn Store>>>,
}

fn denylist(
    store: &StoreHandle,
    namespace: &JsValue,
    clock: Option<&ManualClockHandle>,
) -> Result<DenylistHandle, JsValue> {
    let mut d = Denylist::new(store.store());
    if let Some(c) = clock {
        d = d.with_clock(c.shared());
    }
    if !(namespace.is_undefined() || namespace.is_null()) {
        let ns = namespace
            .as_string()
            .ok_or_else(|| js(Error::config("namespace must be a string")))?;
        d = d.with_namespace(ns).map_err(js)?;
    }
    Ok(DenylistHandle {
        denylist: Rc::new(d),
    })
}

#[wasm_bindgen(js_class = Denylist)]
impl DenylistHandle {
    /// A denylist on `store` under `namespace` (default the core's).
    pub fn create(store: &StoreHandle, namespace: JsValue) -> Result<DenylistHandle, JsValue> {
        denylist(store, &namespace, None)
    }

    /// A denylist following `clock` (tests).
    #[wasm_bindgen(js_name = createWithClock)]
    pub fn create_with_clock(
        store: &StoreHandle,
        clock: &ManualClockHandle,
        namespace: JsValue,
    ) -> Result<DenylistHandle, JsValue> {
        denylist(store, &namespace, Some(clock))
    }

    /// Denies `token_id` until `expires_at_ms` (ms since the epoch);
    /// `false` if it has expired already.
    pub fn deny(&self, token_id: JsValue, expires_at_ms: JsValue) -> Result<JsValue, JsValue> {
        let token_id = text(&token_id, "tokenId")?;
        let expires = integer_in(
            crate::convert::number(&expires_at_ms, "expiresAt").map_err(js)?,
            0,
            MAX_SAFE_INTEGER as u64,
            "expiresAt",
        )
        .map_err(js)?;
        let denylist = self.denylist.clone();
        spawn(async move {
            Ok(denylist
                .deny(&token_id, Timestamp::from_millis(expires))
                .await
                .map_err(js)?
                .into())
        })
    }

    /// Whether `token_id` is denied.
    #[wasm_bindgen(js_name = isDenied)]
    pub fn is_denied(&self, token_id: JsValue) -> Result<JsValue, JsValue> {
        let token_id = text(&token_id, "tokenId")?;
        let denylist = self.denylist.clone();
        spawn(async move { Ok(denylist.is_denied(&token_id).await.map_err(js)?.into()) })
    }
}
