//! Refresh tokens: families with rotation and reuse detection.
//!
//! Logging in issues a token that starts a **family**. Each refresh
//! presents the current token and gets the next one; the old one is spent.
//! Presenting a spent token (or any token of the family that is not the
//! current one) means two parties hold the family's tokens, one of them a
//! thief: the whole family is revoked at once, so neither can refresh
//! again ([OAuth 2.0 Security BCP, refresh token rotation]).
//!
//! A token is 48 random bytes as 64 base64url characters: a 16-byte family
//! id and a 32-byte secret. The store keeps one value per family under
//! `<namespace>:f:<SHA-256 of the family id>`:
//!
//! ```text
//! 1|<generation>|<created>|<expires>|<absolute>|<a or r>|<token hash>|<body>
//! ```
//!
//! with the SHA-256 of the current token (64 hex digits, compared in
//! constant time by both faces), `a`ctive or `r`evoked, times in
//! microseconds since the epoch, and a JSON body `{"u": user id}`. A leaked
//! store holds no usable token. Each user's families are in a per-user
//! index (the same [`IndexOp`] as sessions), which is authoritative:
//! [`RefreshTokens::revoke_all`] ends every family of a user in one step.
//!
//! [OAuth 2.0 Security BCP, refresh token rotation]: https://datatracker.ietf.org/doc/html/rfc9700#section-4.14.2
//! [`IndexOp`]: crate::session::ops::IndexOp

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::id::{b64, check_user_id, constant_time_eq, decode_b64, digest, digest_b64, user_part};
use super::index::{IndexAction, IndexEntry, IndexOp, IndexReply, INDEX_CAPACITY};
use super::record::{now_arg, parse_num, split_fields, ttl_until, MAX_SAFE};
use super::{check_lifetimes, check_max, check_namespace, micros};
use crate::{
    rt, Arg, AtomicOp, Change, Error, Key, MaybeSend, MaybeSync, Result, Script, ScriptTime,
    SharedClock, Store, SystemClock, Timestamp, Value,
};

static SCRIPT: Script = Script::new(lua!("session/refresh.lua"));

const FAMILY_BYTES: usize = 16;
const TOKEN_BYTES: usize = 48;
const TOKEN_CHARS: usize = 64;

/// A refresh token: the secret a client presents to get new tokens.
///
/// Equality is constant time; `Debug` shows `RefreshToken(..)` and there is
/// no `Display`. [`as_str`](RefreshToken::as_str) is the one way out.
///
/// ```
/// use rampart::session::RefreshToken;
/// assert!(RefreshToken::parse("too short").is_err());
/// ```
#[derive(Clone)]
pub struct RefreshToken {
    text: String,
    bytes: [u8; TOKEN_BYTES],
}

impl RefreshToken {
    fn random_in(family: [u8; FAMILY_BYTES]) -> Result<Self> {
        let secret = rt::random_bytes::<{ TOKEN_BYTES - FAMILY_BYTES }>()?;
        let mut bytes = [0u8; TOKEN_BYTES];
        bytes[..FAMILY_BYTES].copy_from_slice(&family);
        bytes[FAMILY_BYTES..].copy_from_slice(&secret);
        Ok(Self {
            text: b64(&bytes),
            bytes,
        })
    }

    /// A token a client presented.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless
    /// `text` is 64 base64url characters. The message never repeats it.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::invalid_input("a refresh token is 64 base64url characters");
        if text.len() != TOKEN_CHARS {
            return Err(bad());
        }
        let bytes = decode_b64::<TOKEN_BYTES>(text).ok_or_else(bad)?;
        Ok(Self {
            text: text.to_owned(),
            bytes,
        })
    }

    /// The token as text, to send to the client. A secret: do not log it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn family_id(&self) -> [u8; FAMILY_BYTES] {
        let mut f = [0u8; FAMILY_BYTES];
        f.copy_from_slice(&self.bytes[..FAMILY_BYTES]);
        f
    }

    /// The public handle of this token's family (not a secret).
    pub fn family(&self) -> String {
        digest_b64("rampart-refresh-family", &self.bytes[..FAMILY_BYTES])
    }

    /// What the store keeps instead of the token: its SHA-256, hex.
    fn hash_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let d = digest("rampart-refresh-token", &self.bytes);
        let mut out = String::with_capacity(64);
        for b in d {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }
}

impl PartialEq for RefreshToken {
    /// Constant time (see [`constant_time_eq`]).
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.bytes, &other.bytes)
    }
}

impl Eq for RefreshToken {}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(..)")
    }
}

/// What a [`FamilyOp`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FamilyAction {
    /// If `presented` is the current token's hash, make `next` current and
    /// renew by `idle` (within the absolute cap); otherwise revoke.
    Rotate {
        /// The presented token's hash (64 lowercase hex digits).
        presented: String,
        /// The next token's hash (64 lowercase hex digits).
        next: String,
        /// How long the next token lives unused.
        idle: Duration,
    },
    /// Revoke the family.
    Revoke,
}

/// The outcome of a [`FamilyOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FamilyStatus {
    /// No such family, or it has expired.
    Missing,
    /// Rotated: the next token is current.
    Rotated,
    /// A token that is not the current one: the family is now revoked.
    ReuseDetected,
    /// The family was revoked before.
    AlreadyRevoked,
    /// Revoked now ([`FamilyAction::Revoke`]).
    RevokedNow,
}

/// What a [`FamilyOp`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FamilyReply {
    /// What happened.
    pub status: FamilyStatus,
    /// Rotations so far.
    pub generation: u64,
    /// When the current token dies unused.
    pub expires: Timestamp,
    /// The family's JSON body (empty when missing).
    pub body: Bytes,
}

/// One atomic step on a refresh-token family. Twin: `refresh.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyOp {
    action: FamilyAction,
}

fn is_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl FamilyOp {
    /// The operation.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// hash that is not 64 lowercase hex digits.
    pub fn new(action: FamilyAction) -> Result<Self> {
        if let FamilyAction::Rotate {
            presented, next, ..
        } = &action
        {
            if !is_hash(presented) || !is_hash(next) {
                return Err(Error::invalid_input(
                    "a token hash is 64 lowercase hex digits",
                ));
            }
        }
        Ok(Self { action })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Family<'a> {
    generation: u64,
    created: u64,
    expires: u64,
    absolute: u64,
    revoked: bool,
    pub(crate) hash: &'a [u8],
    body: &'a [u8],
}

impl<'a> Family<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let corrupt = || Error::corrupt("stored refresh-token family is not in rampart's format");
        let (f, body) = split_fields::<7>(bytes).ok_or_else(corrupt)?;
        let revoked = match f[5] {
            b"a" => false,
            b"r" => true,
            _ => return Err(corrupt()),
        };
        let hash_ok = f[6].len() == 64
            && f[6]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        if f[0] != b"1" || !hash_ok {
            return Err(corrupt());
        }
        let num = |i: usize| parse_num(f[i]).ok_or_else(corrupt);
        Ok(Family {
            generation: num(1)?,
            created: num(2)?,
            expires: num(3)?,
            absolute: num(4)?,
            revoked,
            hash: f[6],
            body,
        })
    }

    pub(crate) fn encode(&self, hash: &[u8]) -> Bytes {
        let mut out = format!(
            "1|{}|{}|{}|{}|{}|",
            self.generation,
            self.created,
            self.expires,
            self.absolute,
            if self.revoked { 'r' } else { 'a' }
        )
        .into_bytes();
        out.extend_from_slice(hash);
        out.push(b'|');
        out.extend_from_slice(self.body);
        Bytes::from(out)
    }
}

impl AtomicOp for FamilyOp {
    type Output = FamilyReply;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, FamilyReply)> {
        let missing = FamilyReply {
            status: FamilyStatus::Missing,
            generation: 0,
            expires: Timestamp::EPOCH,
            body: Bytes::new(),
        };
        let Some(bytes) = state else {
            return Ok((Change::Keep, missing));
        };
        let now = now.as_micros();
        let mut family = Family::parse(bytes)?;
        if family.expires <= now {
            return Ok((Change::Keep, missing));
        }
        let reply = |status, f: &Family<'_>| FamilyReply {
            status,
            generation: f.generation,
            expires: Timestamp::from_micros(f.expires),
            body: Bytes::copy_from_slice(f.body),
        };
        if family.revoked {
            return Ok((Change::Keep, reply(FamilyStatus::AlreadyRevoked, &family)));
        }
        if let FamilyAction::Rotate {
            presented,
            next,
            idle,
        } = &self.action
        {
            if constant_time_eq(family.hash, presented.as_bytes()) {
                family.expires = now
                    .saturating_add(micros(*idle))
                    .min(family.absolute)
                    .max(family.expires);
                if family.generation < MAX_SAFE {
                    family.generation += 1;
                }
                let change = Change::Set {
                    value: family.encode(next.as_bytes()),
                    ttl: Some(ttl_until(family.expires, now)),
                };
                return Ok((change, reply(FamilyStatus::Rotated, &family)));
            }
        }
        let hash = family.hash;
        family.revoked = true;
        let change = Change::SetKeepTtl(family.encode(hash));
        let status = match self.action {
            FamilyAction::Rotate { .. } => FamilyStatus::ReuseDetected,
            FamilyAction::Revoke => FamilyStatus::RevokedNow,
        };
        Ok((change, reply(status, &family)))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        match &self.action {
            FamilyAction::Rotate {
                presented,
                next,
                idle,
            } => vec![
                Arg::from("rotate"),
                now_arg(now),
                Arg::from(presented.as_str()),
                Arg::from(next.as_str()),
                Arg::from(micros(*idle)),
            ],
            FamilyAction::Revoke => vec![
                Arg::from("revoke"),
                now_arg(now),
                Arg::Str(String::new()),
                Arg::Str(String::new()),
                Arg::Int(0),
            ],
        }
    }

    fn decode_reply(&self, reply: Value) -> Result<FamilyReply> {
        let bad = || Error::backend("unexpected reply from the refresh-token script");
        let items = reply.into_array()?;
        let code = items.first().ok_or_else(bad)?.as_int()?;
        let status = match code {
            0 => {
                return Ok(FamilyReply {
                    status: FamilyStatus::Missing,
                    generation: 0,
                    expires: Timestamp::EPOCH,
                    body: Bytes::new(),
                })
            }
            1 => FamilyStatus::Rotated,
            2 => FamilyStatus::ReuseDetected,
            3 => FamilyStatus::AlreadyRevoked,
            4 => FamilyStatus::RevokedNow,
            -1 => {
                return Err(Error::corrupt(
                    "stored refresh-token family is not in rampart's format",
                ))
            }
            _ => return Err(bad()),
        };
        let mut items = items.into_iter().skip(1);
        let generation = items.next().ok_or_else(bad)?.as_int()?;
        let expires = items.next().ok_or_else(bad)?.as_int()?;
        let body = items
            .next()
            .ok_or_else(bad)?
            .into_bytes()?
            .unwrap_or_default();
        Ok(FamilyReply {
            status,
            generation: generation.max(0) as u64,
            expires: Timestamp::from_micros(expires.max(0) as u64),
            body,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct FamilyBody {
    u: String,
}

/// How refresh tokens behave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RefreshConfig {
    /// The key prefix of every refresh-token key (default `refresh`).
    pub namespace: String,
    /// A token unused this long dies; each rotation renews (default 30 days).
    pub idle_timeout: Duration,
    /// No family outlives this from its login (default 90 days).
    pub max_lifetime: Duration,
    /// The most families (logged-in clients) per user; issuing one more
    /// revokes the oldest (default: none, up to
    /// [`INDEX_CAPACITY`](crate::session::ops::INDEX_CAPACITY)).
    pub max_families_per_user: Option<usize>,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            namespace: "refresh".into(),
            idle_timeout: Duration::from_secs(30 * 86_400),
            max_lifetime: Duration::from_secs(90 * 86_400),
            max_families_per_user: None,
        }
    }
}

impl RefreshConfig {
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
    /// Sets [`max_families_per_user`](Self::max_families_per_user).
    pub fn with_max_families_per_user(mut self, n: usize) -> Self {
        self.max_families_per_user = Some(n);
        self
    }
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for an empty
    /// namespace, a zero or over-long timeout, or a per-user maximum
    /// outside 1..=[`INDEX_CAPACITY`](crate::session::ops::INDEX_CAPACITY).
    pub fn validate(&self) -> Result<()> {
        check_namespace(&self.namespace)?;
        check_lifetimes(self.idle_timeout, self.max_lifetime)?;
        check_max(self.max_families_per_user)
    }
}

/// A family just started ([`RefreshTokens::issue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Issued {
    /// The token to give the client (a secret).
    pub token: RefreshToken,
    /// The family's public handle.
    pub family: String,
    /// When the token dies unused.
    pub expires: Timestamp,
}

/// A successful rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotated {
    /// The next token to give the client; the presented one is spent.
    pub token: RefreshToken,
    /// Whose family it is (to mint the access token for).
    pub user_id: String,
    /// When the new token dies unused.
    pub expires: Timestamp,
    /// Rotations of this family so far.
    pub generation: u64,
}

/// What presenting a refresh token did ([`RefreshTokens::rotate`]).
#[must_use = "only `Refresh::Rotated` authorizes issuing new tokens"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refresh {
    /// The token was current: here is the next one.
    Rotated(Rotated),
    /// The token was already spent (or otherwise not the current one): the
    /// whole family is revoked now. Someone else holds this user's tokens;
    /// consider ending their sessions too.
    ReuseDetected {
        /// Whose family it was.
        user_id: String,
    },
    /// The family was revoked (logout, reuse, or log out everywhere).
    Revoked,
    /// No such family, or it expired.
    Unknown,
}

/// Refresh-token families over any [`Store`].
pub struct RefreshTokens<S> {
    store: S,
    config: RefreshConfig,
    clock: SharedClock,
    script_time: ScriptTime,
}

impl<S> fmt::Debug for RefreshTokens<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokens")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("script_time", &self.script_time)
            .finish_non_exhaustive()
    }
}

impl<S: Store> RefreshTokens<S> {
    /// Refresh tokens in `store`, on the system clock.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `config` does not
    /// [`validate`](RefreshConfig::validate).
    pub fn new(store: S, config: RefreshConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            store,
            config,
            clock: SystemClock::shared(),
            script_time: ScriptTime::Server,
        })
    }

    /// Uses `clock` for `now`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Where Lua twins read `now` (default: the server's `TIME`).
    pub fn with_script_time(mut self, script_time: ScriptTime) -> Self {
        self.script_time = script_time;
        self
    }

    fn family_key(&self, family: &str) -> Result<Key> {
        Key::new(format!("{}:f:{family}", self.config.namespace))
    }

    async fn run<O>(&self, key: &Key, op: &O) -> Result<O::Output>
    where
        O: AtomicOp + MaybeSync,
        O::Output: MaybeSend,
    {
        crate::run(&self.store, key, op, &*self.clock, self.script_time).await
    }

    async fn index(&self, user_id: &str, action: IndexAction) -> Result<IndexReply> {
        let key = Key::new(format!(
            "{}:u:{}",
            self.config.namespace,
            user_part(user_id)
        ))?;
        let op = IndexOp::new(action, self.config.idle_timeout)?;
        self.run(&key, &op).await
    }

    /// Starts a family for `user_id` (a login) and returns its first token.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty or over-long user id; store errors.
    pub async fn issue(&self, user_id: &str) -> Result<Issued> {
        check_user_id(user_id).map_err(|e| e.with_operation("refresh.issue"))?;
        let token = RefreshToken::random_in(rt::random_bytes::<FAMILY_BYTES>()?)?;
        let family = token.family();
        let now = self.clock.now().as_micros().min(MAX_SAFE);
        let absolute = now
            .saturating_add(micros(self.config.max_lifetime))
            .min(MAX_SAFE);
        let expires = now
            .saturating_add(micros(self.config.idle_timeout))
            .min(absolute);
        // Evicted families (over the per-user maximum) are dead by the
        // index; their records stay until they expire, so a client that
        // presents one is told `Revoked`.
        self.index(
            user_id,
            IndexAction::Add {
                entry: IndexEntry {
                    handle: family.clone(),
                    created: Timestamp::from_micros(now),
                    expires: Timestamp::from_micros(expires),
                },
                max: self.config.max_families_per_user.unwrap_or(INDEX_CAPACITY),
                expect_generation: None,
            },
        )
        .await?;
        let body = serde_json::to_vec(&FamilyBody { u: user_id.into() })
            .map_err(|e| Error::invalid_input("user id cannot be encoded").with_source(e))?;
        let hash = token.hash_hex();
        let value = Family {
            generation: 0,
            created: now,
            expires,
            absolute,
            revoked: false,
            hash: hash.as_bytes(),
            body: &body,
        }
        .encode(hash.as_bytes());
        let key = self.family_key(&family)?;
        if let Err(e) = self
            .store
            .set(&key, value, Some(ttl_until(expires, now)))
            .await
        {
            let _ = self
                .index(user_id, IndexAction::Remove { handle: family })
                .await;
            return Err(e.with_operation("refresh.issue"));
        }
        Ok(Issued {
            token,
            family,
            expires: Timestamp::from_micros(expires),
        })
    }

    /// Presents `token`: the next token if it is current; otherwise the
    /// family is (or already was) revoked.
    ///
    /// # Errors
    /// [`ErrorKind::CorruptData`](crate::ErrorKind::CorruptData) for an
    /// undecodable family; store errors.
    pub async fn rotate(&self, token: &RefreshToken) -> Result<Refresh> {
        let family = token.family();
        let key = self.family_key(&family)?;
        let next = RefreshToken::random_in(token.family_id())?;
        let op = FamilyOp::new(FamilyAction::Rotate {
            presented: token.hash_hex(),
            next: next.hash_hex(),
            idle: self.config.idle_timeout,
        })?;
        let reply = self.run(&key, &op).await?;
        let user_id = || -> Result<String> {
            let body: FamilyBody = serde_json::from_slice(&reply.body).map_err(|e| {
                Error::corrupt("stored refresh-token family is not in rampart's format")
                    .with_source(e)
                    .with_key(&key)
            })?;
            Ok(body.u)
        };
        match reply.status {
            FamilyStatus::Missing => Ok(Refresh::Unknown),
            FamilyStatus::AlreadyRevoked | FamilyStatus::RevokedNow => Ok(Refresh::Revoked),
            FamilyStatus::ReuseDetected => {
                let user_id = user_id()?;
                self.index(&user_id, IndexAction::Remove { handle: family })
                    .await?;
                Ok(Refresh::ReuseDetected { user_id })
            }
            FamilyStatus::Rotated => {
                let user_id = user_id()?;
                let index = self
                    .index(
                        &user_id,
                        IndexAction::Touch {
                            handle: family,
                            expires: Some(reply.expires),
                        },
                    )
                    .await?;
                if !index.found {
                    // Revoked by revoke_all (or evicted): the new token must
                    // not live.
                    self.run(&key, &FamilyOp::new(FamilyAction::Revoke)?)
                        .await?;
                    return Ok(Refresh::Revoked);
                }
                Ok(Refresh::Rotated(Rotated {
                    token: next,
                    user_id,
                    expires: reply.expires,
                    generation: reply.generation,
                }))
            }
        }
    }

    /// Revokes the family of `token` (logout); `true` if it was active.
    ///
    /// # Errors
    /// Store errors.
    pub async fn revoke(&self, token: &RefreshToken) -> Result<bool> {
        let family = token.family();
        let key = self.family_key(&family)?;
        let reply = self
            .run(&key, &FamilyOp::new(FamilyAction::Revoke)?)
            .await?;
        if reply.status != FamilyStatus::RevokedNow {
            return Ok(false);
        }
        if let Ok(body) = serde_json::from_slice::<FamilyBody>(&reply.body) {
            self.index(&body.u, IndexAction::Remove { handle: family })
                .await?;
        }
        Ok(true)
    }

    /// Revokes every family of `user_id` at once; returns how many.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// bad user id; store errors.
    pub async fn revoke_all(&self, user_id: &str) -> Result<u64> {
        check_user_id(user_id)?;
        let reply = self
            .index(user_id, IndexAction::Clear { keep: None })
            .await?;
        Ok(reply.removed.len() as u64)
    }

    /// How many families (logged-in clients) `user_id` has.
    ///
    /// # Errors
    /// As [`revoke_all`](Self::revoke_all).
    pub async fn count(&self, user_id: &str) -> Result<usize> {
        check_user_id(user_id)?;
        Ok(self.index(user_id, IndexAction::List).await?.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn family(revoked: bool, h: &str) -> Bytes {
        Family {
            generation: 3,
            created: 0,
            expires: 100,
            absolute: 1_000,
            revoked,
            hash: h.as_bytes(),
            body: br#"{"u":"bob"}"#,
        }
        .encode(h.as_bytes())
    }

    fn rotate(presented: char) -> FamilyOp {
        FamilyOp::new(FamilyAction::Rotate {
            presented: hash(presented),
            next: hash('b'),
            idle: Duration::from_micros(500),
        })
        .unwrap()
    }

    #[test]
    fn rotation_and_reuse() {
        let state = family(false, &hash('a'));
        let (change, reply) = rotate('a')
            .apply(Some(&state), Timestamp::from_micros(50))
            .unwrap();
        assert_eq!(reply.status, FamilyStatus::Rotated);
        assert_eq!((reply.generation, reply.expires.as_micros()), (4, 550));
        let Change::Set { value, .. } = change else {
            panic!("not stored")
        };
        let f = Family::parse(&value).unwrap();
        assert_eq!(f.hash, hash('b').as_bytes());
        // The spent token again: reuse, the family is revoked.
        let (change, reply) = rotate('a')
            .apply(Some(&value), Timestamp::from_micros(60))
            .unwrap();
        assert_eq!(reply.status, FamilyStatus::ReuseDetected);
        let Change::SetKeepTtl(value) = change else {
            panic!("not revoked")
        };
        assert!(Family::parse(&value).unwrap().revoked);
        // Now even the current token is refused.
        let (change, reply) = rotate('b')
            .apply(Some(&value), Timestamp::from_micros(70))
            .unwrap();
        assert_eq!(
            (change, reply.status),
            (Change::Keep, FamilyStatus::AlreadyRevoked)
        );
    }

    #[test]
    fn expired_missing_corrupt_and_bad_input() {
        let state = family(false, &hash('a'));
        let (_, reply) = rotate('a')
            .apply(Some(&state), Timestamp::from_micros(100))
            .unwrap();
        assert_eq!(reply.status, FamilyStatus::Missing);
        let (_, reply) = rotate('a').apply(None, Timestamp::EPOCH).unwrap();
        assert_eq!(reply.status, FamilyStatus::Missing);
        for bad in [&b"1|0|0|1|1|x|"[..], b"1|0|0|1|1|a|abc|{}", b"garbage"] {
            let err = rotate('a').apply(Some(bad), Timestamp::EPOCH).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::CorruptData);
        }
        assert!(FamilyOp::new(FamilyAction::Rotate {
            presented: "A".repeat(64),
            next: hash('b'),
            idle: Duration::from_secs(1),
        })
        .is_err());
    }

    #[test]
    fn tokens_parse_and_hide() {
        let t = RefreshToken::random_in([7; FAMILY_BYTES]).unwrap();
        assert_eq!(t.as_str().len(), TOKEN_CHARS);
        assert_eq!(RefreshToken::parse(t.as_str()).unwrap(), t);
        assert_eq!(format!("{t:?}"), "RefreshToken(..)");
        let u = RefreshToken::random_in([7; FAMILY_BYTES]).unwrap();
        assert_eq!(t.family(), u.family());
        assert_ne!(t.hash_hex(), u.hash_hex());
        let err = RefreshToken::parse(&t.as_str()[1..]).unwrap_err();
        assert!(!err.to_string().contains(&t.as_str()[1..]));
    }
}
