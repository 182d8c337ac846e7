//! Sessions and tokens: server-side sessions with a per-user index,
//! rotation and revocation; refresh-token families with reuse detection;
//! an access-token denylist.
//!
//! ```
//! use rampart::session::{SessionConfig, SessionMeta, Sessions};
//! use rampart::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let sessions = Sessions::new(MemoryStore::new(), SessionConfig::default())?;
//! // Login: the id goes to the client (a cookie); the store keeps only its hash.
//! let meta = SessionMeta::new().with_ip("203.0.113.7").with_user_agent("curl/8");
//! let login = sessions.create("alice", &vec!["cart:42"], meta).await?;
//! // Every request: validates, renews the rolling expiry, returns typed data.
//! let session = sessions.get::<Vec<String>>(&login.id).await?.expect("live");
//! assert_eq!(session.user_id, "alice");
//! // Privilege change: a new id for the same session; the old one is dead.
//! let id = sessions.rotate(&login.id).await?.expect("live");
//! assert!(sessions.get::<Vec<String>>(&login.id).await?.is_none());
//! // Password change: log out everywhere.
//! assert_eq!(sessions.destroy_all("alice").await?, 1);
//! assert!(sessions.get::<Vec<String>>(&id).await?.is_none());
//! # Ok::<(), rampart::Error>(())
//! # }).unwrap();
//! ```
//!
//! # How it is stored
//!
//! * A session record lives under `<namespace>:s:<handle>`, where the
//!   handle is the SHA-256 of the id ([`SessionId::handle`]): a leaked store
//!   holds no usable id. Its store TTL follows the rolling expiry.
//! * Each user has one index under `<namespace>:u:<SHA-256 of the user id>`
//!   listing handles with their creation and expiry times (see
//!   [`ops::IndexOp`]). **The index is authoritative**: a session is live
//!   only while its record is live *and* its handle is in the index. Expired
//!   entries drop out whenever the index is read or written; no sweeper.
//! * Every step is one atomic operation on one key, with a pure Rust face
//!   and a Lua twin ([`ops`]): one round trip each on Redis, one locked
//!   update on in-process stores. No operation needs two keys at once, so
//!   nothing depends on Cluster slots.
//!
//! # Races, closed
//!
//! * `destroy_all` clears the index in one step: every session whose index
//!   entry existed at that moment is dead at once, whatever else is in
//!   flight. `create` adds its index entry *before* writing its record, so a
//!   create overlapping a `destroy_all` either lands after it (a genuinely
//!   new login) or is cleared by it; it can never leave a record the index
//!   does not know. `rotate` renames the entry only if it is still there.
//! * A login still in flight during a password change (it checked the old
//!   password, then calls `create` after `destroy_all`) is closed by the
//!   index's generation: read [`Sessions::generation`] before checking the
//!   password and create with [`Sessions::create_if_generation`].
//! * `update` is an atomic read-modify-write ([`Store::update`]): no update
//!   is lost under concurrency.
//!
//! Costs on Redis: `get` is two round trips (the record, then the index),
//! `create` two, `rotate` and `destroy` two or three; `list` two.

mod denylist;
mod id;
mod index;
mod record;
mod refresh;

use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::{
    check_ttl, duration_micros, AtomicOp, Change, Error, ErrorKind, Key, MaybeSend, MaybeSync,
    Result, ScriptTime, SharedClock, Store, SystemClock, Timestamp,
};

pub use denylist::{Denylist, MAX_TOKEN_ID_LEN};
pub use id::{
    constant_time_eq, SessionHandle, SessionId, MAX_USER_ID_LEN, SESSION_ID_BYTES, SESSION_ID_CHARS,
};
pub use refresh::{Issued, Refresh, RefreshConfig, RefreshToken, RefreshTokens, Rotated};

use id::check_user_id;
pub(crate) use id::user_part;
use index::{IndexAction, IndexEntry, IndexOp};
use record::{ttl_until, Body, BodyRef, Header, TakeRecord, TouchRecord, Touched, MAX_SAFE};
#[cfg(feature = "fuzzing")]
pub(crate) use {
    index::{decode as decode_index, encode as encode_index},
    record::{Body as RecordBody, Header as RecordHeader},
    refresh::Family,
};

/// The atomic operations sessions and tokens are built from, each a pure
/// function with a Lua twin beside it (for differential tests and for
/// backends that want to check both faces).
pub mod ops {
    pub use super::index::{IndexAction, IndexEntry, IndexOp, IndexReply, INDEX_CAPACITY};
    pub use super::record::{TakeRecord, TouchRecord, Touched};
    pub use super::refresh::{FamilyAction, FamilyOp, FamilyReply, FamilyStatus};
}

/// The longest IP address or user agent kept, in bytes (longer ones are cut
/// at a character boundary).
pub const MAX_META_LEN: usize = 512;

/// How sessions behave.
///
/// ```
/// use rampart::session::SessionConfig;
/// use std::time::Duration;
/// let config = SessionConfig::default()
///     .with_namespace("app:session")
///     .with_idle_timeout(Duration::from_secs(30 * 60))
///     .with_max_lifetime(Duration::from_secs(12 * 3600))
///     .with_max_sessions_per_user(5);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The key prefix of every session key (default `session`).
    pub namespace: String,
    /// Rolling expiry: a session unused this long dies (default 7 days).
    /// Each `get` renews it.
    pub idle_timeout: Duration,
    /// Absolute cap: no session outlives this from its creation, however
    /// active (default 30 days).
    pub max_lifetime: Duration,
    /// The most live sessions per user; creating one more ends the oldest
    /// (default: none, up to [`ops::INDEX_CAPACITY`]).
    pub max_sessions_per_user: Option<usize>,
    /// Renew at most this often per session, saving a write per request
    /// (default zero: every `get` renews).
    pub touch_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            namespace: "session".into(),
            idle_timeout: Duration::from_secs(7 * 86_400),
            max_lifetime: Duration::from_secs(30 * 86_400),
            max_sessions_per_user: None,
            touch_interval: Duration::ZERO,
        }
    }
}

impl SessionConfig {
    /// Sets [`namespace`](Self::namespace).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn with_idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets [`max_lifetime`](Self::max_lifetime).
    pub fn with_max_lifetime(mut self, d: Duration) -> Self {
        self.max_lifetime = d;
        self
    }
    /// Sets [`max_sessions_per_user`](Self::max_sessions_per_user).
    pub fn with_max_sessions_per_user(mut self, n: usize) -> Self {
        self.max_sessions_per_user = Some(n);
        self
    }
    /// Sets [`touch_interval`](Self::touch_interval).
    pub fn with_touch_interval(mut self, d: Duration) -> Self {
        self.touch_interval = d;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an empty or over-long namespace, a zero or
    /// over-long timeout, a touch interval not below the idle timeout, or a
    /// per-user maximum outside 1..=[`ops::INDEX_CAPACITY`].
    pub fn validate(&self) -> Result<()> {
        check_namespace(&self.namespace)?;
        check_lifetimes(self.idle_timeout, self.max_lifetime)?;
        if self.touch_interval >= self.idle_timeout {
            return Err(Error::config(
                "session touch_interval must be shorter than idle_timeout",
            ));
        }
        check_max(self.max_sessions_per_user)
    }
}

pub(crate) fn check_namespace(ns: &str) -> Result<()> {
    if ns.is_empty() || ns.len() > 256 {
        return Err(Error::config("a namespace must be between 1 and 256 bytes"));
    }
    Ok(())
}

pub(crate) fn check_lifetimes(idle: Duration, max: Duration) -> Result<()> {
    for d in [idle, max] {
        check_ttl(Some(d)).map_err(|e| Error::config(e.message().to_owned()))?;
    }
    Ok(())
}

pub(crate) fn check_max(max: Option<usize>) -> Result<()> {
    match max {
        Some(n) if n == 0 || n > ops::INDEX_CAPACITY => Err(Error::config(format!(
            "a per-user maximum must be between 1 and {}",
            ops::INDEX_CAPACITY
        ))),
        _ => Ok(()),
    }
}

fn micros(d: Duration) -> u64 {
    duration_micros(d).min(MAX_SAFE)
}

/// Where a session was opened from.
///
/// ```
/// use rampart::session::SessionMeta;
/// let meta = SessionMeta::new().with_ip("2001:db8::1").with_user_agent("Firefox");
/// assert_eq!(meta.ip.as_deref(), Some("2001:db8::1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionMeta {
    /// The client's IP address, as the application saw it.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_META_LEN {
        let mut end = MAX_META_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl SessionMeta {
    /// No metadata.
    pub fn new() -> Self {
        Self::default()
    }
    /// With the client's IP (cut to [`MAX_META_LEN`] bytes).
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(cut(ip.into()));
        self
    }
    /// With the client's user agent (cut to [`MAX_META_LEN`] bytes).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(cut(user_agent.into()));
        self
    }
}

/// A live session, as [`Sessions::get`] returns it.
///
/// `Debug` leaves out `data`: session data often holds secrets (CSRF
/// tokens, OAuth state).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session<T> {
    /// The session's public handle.
    pub handle: SessionHandle,
    /// Whose session it is.
    pub user_id: String,
    /// The application's data.
    pub data: T,
    /// Where it was opened from.
    pub meta: SessionMeta,
    /// When it was created.
    pub created: Timestamp,
    /// When it was last renewed.
    pub last_seen: Timestamp,
    /// When it dies unless renewed.
    pub expires: Timestamp,
    /// When it dies however active (the absolute cap).
    pub expires_at_most: Timestamp,
}

impl<T> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("handle", &self.handle)
            .field("user_id", &self.user_id)
            .field("data", &format_args!(".."))
            .field("meta", &self.meta)
            .field("created", &self.created)
            .field("last_seen", &self.last_seen)
            .field("expires", &self.expires)
            .field("expires_at_most", &self.expires_at_most)
            .finish()
    }
}

/// One of a user's sessions, as [`Sessions::list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's public handle ([`SessionId::handle`] tells which is
    /// the current one).
    pub handle: SessionHandle,
    /// Where it was opened from.
    pub meta: SessionMeta,
    /// When it was created.
    pub created: Timestamp,
    /// When it was last renewed.
    pub last_seen: Timestamp,
    /// When it dies unless renewed.
    pub expires: Timestamp,
    /// When it dies however active.
    pub expires_at_most: Timestamp,
}

/// A session just created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewSession {
    /// The id to give the client (a secret).
    pub id: SessionId,
    /// Its public handle.
    pub handle: SessionHandle,
    /// When it dies unless renewed.
    pub expires: Timestamp,
    /// The user's index generation it was created under.
    pub generation: u64,
}

/// Server-side sessions over any [`Store`].
///
/// Cheap to share behind an `Arc`. See the [module docs](self) for the
/// storage layout and the guarantees.
pub struct Sessions<S> {
    store: S,
    config: SessionConfig,
    clock: SharedClock,
    script_time: ScriptTime,
}

impl<S> fmt::Debug for Sessions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("script_time", &self.script_time)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Sessions<S> {
    /// Sessions in `store`, on the system clock.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] if `config` does not
    /// [`validate`](SessionConfig::validate).
    pub fn new(store: S, config: SessionConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            store,
            config,
            clock: SystemClock::shared(),
            script_time: ScriptTime::Server,
        })
    }

    /// Uses `clock` for `now` (a [`crate::ManualClock`] in tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Where Lua twins read `now` (default: the server's `TIME`).
    pub fn with_script_time(mut self, script_time: ScriptTime) -> Self {
        self.script_time = script_time;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn record_key(&self, handle: &str) -> Result<Key> {
        Key::new(format!("{}:s:{handle}", self.config.namespace))
    }

    fn index_key(&self, user_id: &str) -> Result<Key> {
        Key::new(format!(
            "{}:u:{}",
            self.config.namespace,
            user_part(user_id)
        ))
    }

    fn now(&self) -> u64 {
        self.clock.now().as_micros().min(MAX_SAFE)
    }

    async fn run<O>(&self, key: &Key, op: &O) -> Result<O::Output>
    where
        O: AtomicOp + MaybeSync,
        O::Output: MaybeSend,
    {
        crate::run(&self.store, key, op, &*self.clock, self.script_time).await
    }

    async fn index(&self, user_id: &str, action: IndexAction) -> Result<ops::IndexReply> {
        let key = self.index_key(user_id)?;
        let op = IndexOp::new(action, self.config.idle_timeout)?;
        self.run(&key, &op).await
    }

    /// Deletes the records of sessions the index no longer lists. They are
    /// dead already (the index is authoritative); this only frees memory
    /// early, so a failure is left to the records' own TTLs.
    async fn forget(&self, handles: &[String]) {
        let keys: Vec<Key> = handles
            .iter()
            .filter_map(|h| self.record_key(h).ok())
            .collect();
        if !keys.is_empty() {
            let _ = self.store.delete_many(&keys).await;
        }
    }

    /// Opens a session for `user_id` holding `data`; the returned id goes to
    /// the client. With a per-user maximum, the user's oldest sessions
    /// beyond it end.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty or over-long user id or data
    /// that cannot be encoded as JSON; store errors.
    pub async fn create<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        data: &T,
        meta: SessionMeta,
    ) -> Result<NewSession> {
        self.create_inner(user_id, data, meta, None).await
    }

    /// [`create`](Self::create), only if the user's index generation is
    /// still `generation` (read with [`generation`](Self::generation) before
    /// checking the password): a login racing a password change cannot
    /// outlive the change.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] (permanent) if the user's sessions were
    /// cleared since; as [`create`](Self::create) otherwise.
    pub async fn create_if_generation<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        data: &T,
        meta: SessionMeta,
        generation: u64,
    ) -> Result<NewSession> {
        self.create_inner(user_id, data, meta, Some(generation))
            .await
    }

    async fn create_inner<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        data: &T,
        meta: SessionMeta,
        expect_generation: Option<u64>,
    ) -> Result<NewSession> {
        check_user_id(user_id).map_err(|e| e.with_operation("session.create"))?;
        let body = serde_json::to_vec(&BodyRef {
            u: user_id,
            ip: meta.ip.as_deref(),
            ua: meta.user_agent.as_deref(),
            d: data,
        })
        .map_err(|e| {
            Error::invalid_input("session data cannot be encoded as JSON")
                .with_source(e)
                .with_operation("session.create")
        })?;
        let id = SessionId::generate()?;
        let handle = id.handle();
        let now = self.now();
        let absolute = now
            .saturating_add(micros(self.config.max_lifetime))
            .min(MAX_SAFE);
        let expires = now
            .saturating_add(micros(self.config.idle_timeout))
            .min(absolute);
        let header = Header {
            created: now,
            last_seen: now,
            expires,
            absolute,
        };
        // The index entry first: a record exists only once the index knows
        // it, so a concurrent destroy_all can always see (and kill) it.
        let reply = self
            .index(
                user_id,
                IndexAction::Add {
                    entry: IndexEntry {
                        handle: handle.0.clone(),
                        created: Timestamp::from_micros(now),
                        expires: Timestamp::from_micros(expires),
                    },
                    max: self
                        .config
                        .max_sessions_per_user
                        .unwrap_or(ops::INDEX_CAPACITY),
                    expect_generation,
                },
            )
            .await
            .map_err(|e| e.with_operation("session.create"))?;
        if !reply.found {
            return Err(Error::new(
                ErrorKind::Conflict,
                "the user's sessions were revoked after this login began; authenticate again",
            )
            .permanent()
            .with_operation("session.create"));
        }
        let key = self.record_key(&handle.0)?;
        let written = self
            .store
            .set(&key, header.encode(&body), Some(ttl_until(expires, now)))
            .await;
        if let Err(e) = written {
            let _ = self
                .index(
                    user_id,
                    IndexAction::Remove {
                        handle: handle.0.clone(),
                    },
                )
                .await;
            return Err(e.with_operation("session.create"));
        }
        self.forget(&reply.removed).await;
        Ok(NewSession {
            id,
            handle,
            expires: Timestamp::from_micros(expires),
            generation: reply.generation,
        })
    }

    /// The live session `id` names, with its data as `T`; renews its
    /// rolling expiry (within the absolute cap). `None` if it does not
    /// exist, has expired, or was destroyed.
    ///
    /// # Errors
    /// [`ErrorKind::CorruptData`] if the stored session (or its user's
    /// index) cannot be decoded, or its data is not a `T`; store errors.
    pub async fn get<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<Session<T>>> {
        let handle = id.handle();
        let key = self.record_key(&handle.0)?;
        let touch = TouchRecord::new(self.config.idle_timeout, self.config.touch_interval);
        let (bytes, renewed) = match self.run(&key, &touch).await? {
            Touched::Missing => return Ok(None),
            Touched::Live(b) => (b, false),
            Touched::Renewed(b) => (b, true),
        };
        let (header, body) = Header::parse(&bytes).map_err(|e| e.with_key(&key))?;
        let body = Body::<T>::decode(body).map_err(|e| e.with_key(&key))?;
        let reply = self
            .index(
                &body.u,
                IndexAction::Touch {
                    handle: handle.0.clone(),
                    expires: renewed.then_some(Timestamp::from_micros(header.expires)),
                },
            )
            .await?;
        if !reply.found {
            // Destroyed (or cleared by destroy_all) while its record lived on.
            let _ = self.store.delete(&key).await;
            return Ok(None);
        }
        Ok(Some(session(handle, header, body)))
    }

    /// Changes the data of session `id` with `f`, atomically: concurrent
    /// updates are applied one after another, none lost. Does not renew the
    /// session. `None` if the session is not live.
    ///
    /// `f` may run more than once (a compare-and-swap store retries on
    /// conflict); only its last run takes effect.
    ///
    /// # Errors
    /// As [`get`](Self::get), and [`ErrorKind::InvalidInput`] if the new
    /// data cannot be encoded.
    pub async fn update<T, F>(&self, id: &SessionId, mut f: F) -> Result<Option<Session<T>>>
    where
        T: Serialize + DeserializeOwned + MaybeSend,
        F: FnMut(&mut T) + MaybeSend,
    {
        let handle = id.handle();
        let key = self.record_key(&handle.0)?;
        let now = self.now();
        let mut outcome: Option<Result<(Header, Body<T>)>> = None;
        self.store
            .update(&key, &mut |state| {
                let Some(bytes) = state else {
                    outcome = None;
                    return Change::Keep;
                };
                match rewrite(bytes, now, &mut f) {
                    Ok(Some((change, header, body))) => {
                        outcome = Some(Ok((header, body)));
                        change
                    }
                    Ok(None) => {
                        outcome = None;
                        Change::Keep
                    }
                    Err(e) => {
                        outcome = Some(Err(e));
                        Change::Keep
                    }
                }
            })
            .await
            .map_err(|e| e.with_operation("session.update"))?;
        let (header, body) = match outcome {
            None => return Ok(None),
            Some(r) => r.map_err(|e| e.with_operation("session.update").with_key(&key))?,
        };
        let reply = self
            .index(
                &body.u,
                IndexAction::Touch {
                    handle: handle.0.clone(),
                    expires: None,
                },
            )
            .await?;
        if !reply.found {
            let _ = self.store.delete(&key).await;
            return Ok(None);
        }
        Ok(Some(session(handle, header, body)))
    }

    /// Ends session `id` (logout). `true` if it was live.
    ///
    /// # Errors
    /// Store errors.
    pub async fn destroy(&self, id: &SessionId) -> Result<bool> {
        let handle = id.handle();
        let key = self.record_key(&handle.0)?;
        let Some(bytes) = self.run(&key, &TakeRecord).await? else {
            return Ok(false);
        };
        let user = match Header::parse(&bytes).and_then(|(_, b)| Body::<IgnoredAny>::decode(b)) {
            Ok(body) => body.u,
            // A record we cannot read names no user; it is gone now.
            Err(_) => return Ok(true),
        };
        let reply = self
            .index(&user, IndexAction::Remove { handle: handle.0 })
            .await?;
        Ok(reply.found)
    }

    /// Gives session `id` a new id, keeping its data, user and lifetime:
    /// the old id is dead when this returns (session fixation protection;
    /// call it on login and privilege changes). `None` if `id` is not live.
    ///
    /// # Errors
    /// [`ErrorKind::CorruptData`] for an undecodable record; store errors
    /// (the session may then be lost: it fails closed).
    pub async fn rotate(&self, id: &SessionId) -> Result<Option<SessionId>> {
        let old = id.handle();
        let old_key = self.record_key(&old.0)?;
        // Take the record: from here on the old id finds nothing, and an
        // update racing this one either landed before (and is carried
        // over) or finds no record.
        let Some(bytes) = self.run(&old_key, &TakeRecord).await? else {
            return Ok(None);
        };
        let (header, body) = Header::parse(&bytes).map_err(|e| e.with_key(&old_key))?;
        let now = self.now();
        if header.expires <= now {
            return Ok(None);
        }
        let user = Body::<IgnoredAny>::decode(body)
            .map_err(|e| e.with_key(&old_key))?
            .u;
        let new_id = SessionId::generate()?;
        let new = new_id.handle();
        let new_key = self.record_key(&new.0)?;
        let renewed = header.renewed(now, micros(self.config.idle_timeout));
        let ttl = ttl_until(renewed.expires, now);
        if let Err(e) = self
            .store
            .set(&new_key, renewed.encode(body), Some(ttl))
            .await
        {
            let _ = self
                .index(&user, IndexAction::Remove { handle: old.0 })
                .await;
            return Err(e.with_operation("session.rotate"));
        }
        let reply = self
            .index(
                &user,
                IndexAction::Replace {
                    old: old.0,
                    new: new.0,
                    expires: Timestamp::from_micros(renewed.expires),
                },
            )
            .await?;
        if !reply.found {
            // Destroyed meanwhile: the new record must not come alive.
            let _ = self.store.delete(&new_key).await;
            return Ok(None);
        }
        Ok(Some(new_id))
    }

    /// Ends every session of `user_id` at once (password change, "log out
    /// everywhere"); returns how many were live. Sessions created
    /// concurrently either end too or are created after this returns.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a bad user id;
    /// [`ErrorKind::CorruptData`] for an undecodable index; store errors.
    pub async fn destroy_all(&self, user_id: &str) -> Result<u64> {
        check_user_id(user_id)?;
        let reply = self
            .index(user_id, IndexAction::Clear { keep: None })
            .await?;
        self.forget(&reply.removed).await;
        Ok(reply.removed.len() as u64)
    }

    /// Ends every session of `user_id` except `keep` (the current one);
    /// returns how many ended.
    ///
    /// # Errors
    /// As [`destroy_all`](Self::destroy_all).
    pub async fn destroy_others(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        check_user_id(user_id)?;
        let keep = Some(keep.handle().0);
        let reply = self.index(user_id, IndexAction::Clear { keep }).await?;
        self.forget(&reply.removed).await;
        Ok(reply.removed.len() as u64)
    }

    /// Ends the session of `user_id` named by `handle` (a "sign out that
    /// device" button); `true` if it was live.
    ///
    /// # Errors
    /// As [`destroy_all`](Self::destroy_all).
    pub async fn destroy_handle(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        check_user_id(user_id)?;
        let reply = self
            .index(
                user_id,
                IndexAction::Remove {
                    handle: handle.0.clone(),
                },
            )
            .await?;
        if reply.found {
            self.forget(std::slice::from_ref(&handle.0)).await;
        }
        Ok(reply.found)
    }

    /// The live sessions of `user_id`, oldest first, with their metadata.
    ///
    /// # Errors
    /// As [`destroy_all`](Self::destroy_all), and
    /// [`ErrorKind::CorruptData`] for an undecodable session record.
    pub async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        check_user_id(user_id)?;
        let reply = self.index(user_id, IndexAction::List).await?;
        let keys = reply
            .entries
            .iter()
            .map(|e| self.record_key(&e.handle))
            .collect::<Result<Vec<_>>>()?;
        let records = self.store.get_many(&keys).await?;
        let now = self.now();
        let mut out = Vec::with_capacity(records.len());
        for ((entry, key), record) in reply.entries.into_iter().zip(&keys).zip(records) {
            // A record not yet written (a create in flight) or gone.
            let Some(bytes) = record else { continue };
            let (header, body) = Header::parse(&bytes).map_err(|e| e.with_key(key))?;
            let body = Body::<IgnoredAny>::decode(body).map_err(|e| e.with_key(key))?;
            if header.expires <= now || body.u != user_id {
                continue;
            }
            let s = session(SessionHandle(entry.handle), header, body);
            out.push(SessionInfo {
                handle: s.handle,
                meta: s.meta,
                created: s.created,
                last_seen: s.last_seen,
                expires: s.expires,
                expires_at_most: s.expires_at_most,
            });
        }
        out.sort_by_key(|s| s.created);
        Ok(out)
    }

    /// How many sessions `user_id` has (from the index alone: one round
    /// trip; a create in flight counts).
    ///
    /// # Errors
    /// As [`destroy_all`](Self::destroy_all).
    pub async fn count(&self, user_id: &str) -> Result<usize> {
        check_user_id(user_id)?;
        Ok(self.index(user_id, IndexAction::List).await?.entries.len())
    }

    /// The generation of `user_id`'s index: how many times their sessions
    /// were cleared. Read it before checking a password, then create with
    /// [`create_if_generation`](Self::create_if_generation).
    ///
    /// # Errors
    /// As [`destroy_all`](Self::destroy_all).
    pub async fn generation(&self, user_id: &str) -> Result<u64> {
        check_user_id(user_id)?;
        Ok(self.index(user_id, IndexAction::List).await?.generation)
    }
}

/// One run of an update: decode, apply `f`, encode. `None` if expired.
fn rewrite<T, F>(bytes: &[u8], now: u64, f: &mut F) -> Result<Option<(Change, Header, Body<T>)>>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(&mut T),
{
    let (header, body) = Header::parse(bytes)?;
    if header.expires <= now {
        return Ok(None);
    }
    let mut body = Body::<T>::decode(body)?;
    f(&mut body.d);
    let encoded = serde_json::to_vec(&BodyRef {
        u: &body.u,
        ip: body.ip.as_deref(),
        ua: body.ua.as_deref(),
        d: &body.d,
    })
    .map_err(|e| Error::invalid_input("session data cannot be encoded as JSON").with_source(e))?;
    let change = Change::Set {
        value: header.encode(&encoded),
        ttl: Some(ttl_until(header.expires, now)),
    };
    Ok(Some((change, header, body)))
}

fn session<T>(handle: SessionHandle, header: Header, body: Body<T>) -> Session<T> {
    Session {
        handle,
        user_id: body.u,
        data: body.d,
        meta: SessionMeta {
            ip: body.ip,
            user_agent: body.ua,
        },
        created: Timestamp::from_micros(header.created),
        last_seen: Timestamp::from_micros(header.last_seen),
        expires: Timestamp::from_micros(header.expires),
        expires_at_most: Timestamp::from_micros(header.absolute),
    }
}
