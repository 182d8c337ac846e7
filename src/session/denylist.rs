//! The access-token denylist: tokens revoked before they expire.
//!
//! Stateless access tokens (JWTs) cannot be recalled; a denylist entry
//! makes one invalid anyway, and disappears by itself when the token would
//! have expired, so the list holds only tokens that still matter. The entry
//! holds the token's expiry (decimal microseconds) and is checked against
//! the clock as well as left to the store's TTL, so a store that keeps keys
//! a little longer never denies a token past its expiry.

use std::fmt;

use bytes::Bytes;

use super::check_namespace;
use super::id::digest_b64;
use super::record::parse_num;
use crate::{Error, Key, Result, SharedClock, Store, SystemClock, Timestamp, MAX_TTL};

/// The longest token id accepted, in bytes (a whole JWT fits).
pub const MAX_TOKEN_ID_LEN: usize = 16 * 1024;

/// Denied access tokens over any [`Store`], under
/// `<namespace>:<SHA-256 of the token id>` (the token id is not stored).
///
/// ```
/// use rampart::session::Denylist;
/// use rampart::{Clock, ManualClock, MemoryStore, Timestamp};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
/// let store = MemoryStore::builder().clock(clock.shared()).build();
/// let denylist = Denylist::new(store).with_clock(clock.shared());
/// // Logout: the access token's `jti` and `exp`.
/// let exp = clock.now().saturating_add(Duration::from_secs(900));
/// denylist.deny("jti-8f2c", exp).await?;
/// assert!(denylist.is_denied("jti-8f2c").await?);
/// clock.advance(Duration::from_secs(900));
/// assert!(!denylist.is_denied("jti-8f2c").await?); // expired with the token
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
pub struct Denylist<S> {
    store: S,
    namespace: String,
    clock: SharedClock,
}

impl<S> fmt::Debug for Denylist<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Denylist")
            .field("namespace", &self.namespace)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

fn check_token_id(token_id: &str) -> Result<()> {
    if token_id.is_empty() || token_id.len() > MAX_TOKEN_ID_LEN {
        return Err(Error::invalid_input(format!(
            "a token id must be between 1 and {MAX_TOKEN_ID_LEN} bytes"
        )));
    }
    Ok(())
}

impl<S: Store> Denylist<S> {
    /// A denylist in `store` under the namespace `denylist`, on the system
    /// clock.
    pub fn new(store: S) -> Self {
        Self {
            store,
            namespace: "denylist".into(),
            clock: SystemClock::shared(),
        }
    }

    /// Uses `namespace` as the key prefix.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for an empty or
    /// over-long namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Result<Self> {
        let namespace = namespace.into();
        check_namespace(&namespace)?;
        self.namespace = namespace;
        Ok(self)
    }

    /// Uses `clock` for `now`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn key(&self, token_id: &str) -> Result<Key> {
        check_token_id(token_id)?;
        Key::new(format!(
            "{}:{}",
            self.namespace,
            digest_b64("rampart-denylist", token_id.as_bytes())
        ))
    }

    /// Denies the token `token_id` (its `jti`, or the whole token) until
    /// `expires_at` (its `exp`). `false` if it has expired already, so there
    /// is nothing to deny.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty or over-long token id, or an expiry beyond
    /// [`MAX_TTL`](crate::MAX_TTL) from now; store errors.
    pub async fn deny(&self, token_id: &str, expires_at: Timestamp) -> Result<bool> {
        let key = self.key(token_id)?;
        let now = self.clock.now();
        if expires_at <= now {
            return Ok(false);
        }
        let ttl = expires_at.saturating_duration_since(now);
        if ttl > MAX_TTL {
            return Err(Error::invalid_input(
                "a token expiry is more than 100 years away",
            ));
        }
        let value = Bytes::from(expires_at.as_micros().to_string());
        self.store.set(&key, value, Some(ttl)).await?;
        Ok(true)
    }

    /// Whether `token_id` is denied.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty or over-long token id; [`ErrorKind::CorruptData`](crate::ErrorKind::CorruptData)
    /// for an entry rampart did not write; store errors.
    pub async fn is_denied(&self, token_id: &str) -> Result<bool> {
        let key = self.key(token_id)?;
        let Some(value) = self.store.get(&key).await? else {
            return Ok(false);
        };
        let expires_at = parse_num(&value).ok_or_else(|| {
            Error::corrupt("stored denylist entry is not a decimal expiry").with_key(&key)
        })?;
        Ok(expires_at > self.clock.now().as_micros())
    }
}
