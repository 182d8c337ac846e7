//! The secrets of sessions and their public handles.
//!
//! A [`SessionId`] is what the browser holds (the cookie value): 256 random
//! bits from the operating system's CSPRNG, as 43 base64url characters. The
//! store never sees it: records live under its [`SessionHandle`], the
//! SHA-256 of the id, so a dump of the store yields no usable id. Handles are
//! not secret; they name sessions in lists ("signed in on 3 devices") and
//! in the per-user index.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::{rt, Error, Result};

/// Random bytes in a [`SessionId`] (256 bits).
pub const SESSION_ID_BYTES: usize = 32;

/// Characters of a [`SessionId`] or a [`SessionHandle`] (base64url, no padding).
pub const SESSION_ID_CHARS: usize = 43;

pub use crate::rt::constant_time_eq;

/// base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes canonical base64url (no padding) of exactly `N` bytes.
pub(crate) fn decode_b64<const N: usize>(text: &str) -> Option<[u8; N]> {
    let raw = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
    raw.try_into().ok()
}

/// SHA-256 of `domain`, a zero byte and `bytes`: hashes for different
/// purposes never collide.
pub(crate) fn digest(domain: &str, bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

/// [`digest`] as 43 base64url characters (a key part or an index handle).
pub(crate) fn digest_b64(domain: &str, bytes: &[u8]) -> String {
    b64(&digest(domain, bytes))
}

/// The key part naming a user: a hash, so user ids of any content (emails,
/// braces, 1 KiB of text) make valid keys and are not readable in key names.
pub(crate) fn user_part(user_id: &str) -> String {
    digest_b64("rampart-user", user_id.as_bytes())
}

/// The longest user id accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 1024;

/// Checks a user id: non-empty, at most [`MAX_USER_ID_LEN`] bytes.
pub(crate) fn check_user_id(user_id: &str) -> Result<()> {
    if user_id.is_empty() {
        return Err(Error::invalid_input("a user id is empty"));
    }
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(Error::invalid_input(format!(
            "a user id is longer than {MAX_USER_ID_LEN} bytes"
        )));
    }
    Ok(())
}

/// A session id: the secret a client presents (a cookie value).
///
/// 256 bits from the OS CSPRNG ([`crate::rt::random_bytes`]) as 43
/// base64url characters. Equality is constant time; `Debug` shows
/// `SessionId(..)` and there is no `Display`, so an id does not end up in
/// logs by accident. [`as_str`](SessionId::as_str) is the one way out.
///
/// ```
/// use rampart::session::SessionId;
/// let id = SessionId::generate()?;
/// assert_eq!(id.as_str().len(), 43);
/// assert_eq!(format!("{id:?}"), "SessionId(..)");
/// assert_eq!(SessionId::parse(id.as_str())?, id);
/// assert!(SessionId::parse("not an id").is_err());
/// # Ok::<(), rampart::Error>(())
/// ```
#[derive(Clone)]
pub struct SessionId {
    text: String,
    bytes: [u8; SESSION_ID_BYTES],
}

impl SessionId {
    /// A fresh random id.
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) if the
    /// system random number generator fails.
    pub fn generate() -> Result<Self> {
        let bytes = rt::random_bytes::<SESSION_ID_BYTES>()?;
        Ok(Self {
            text: b64(&bytes),
            bytes,
        })
    }

    /// The id a client presented.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless
    /// `text` is 43 canonical base64url characters. The message never
    /// repeats the text.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() != SESSION_ID_CHARS {
            return Err(Error::invalid_input(
                "a session id is 43 base64url characters",
            ));
        }
        let bytes = decode_b64::<SESSION_ID_BYTES>(text)
            .ok_or_else(|| Error::invalid_input("a session id is 43 base64url characters"))?;
        Ok(Self {
            text: text.to_owned(),
            bytes,
        })
    }

    /// The id as text, to send to the client. A secret: do not log it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The public handle of this session (the hash it is stored under).
    pub fn handle(&self) -> SessionHandle {
        SessionHandle(digest_b64("rampart-session", &self.bytes))
    }
}

impl PartialEq for SessionId {
    /// Constant time (see [`constant_time_eq`]).
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.bytes, &other.bytes)
    }
}

impl Eq for SessionId {}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// The public name of a session: the SHA-256 of its id, base64url.
///
/// Not a secret and not usable as an id: it names a session in
/// [`Sessions::list`](crate::session::Sessions::list) and the per-user
/// index, so a "sign out that device" button can send it back
/// ([`Sessions::destroy_handle`](crate::session::Sessions::destroy_handle)).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(pub(crate) String);

impl SessionHandle {
    /// A handle a client sent back (from a session list).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless
    /// `text` is 43 canonical base64url characters.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() != SESSION_ID_CHARS || decode_b64::<32>(text).is_none() {
            return Err(Error::invalid_input(
                "a session handle is 43 base64url characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The handle as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.0)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_canonical_and_hashed() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.handle(), b.handle());
        assert_eq!(a.handle(), SessionId::parse(a.as_str()).unwrap().handle());
        assert_ne!(a.handle().as_str(), a.as_str());
        // 256 bits leave the last character's two low bits unused: a
        // non-zero one ('B' is 000001) is not canonical and is refused.
        let mut text = a.as_str().to_owned();
        text.pop();
        text.push('B');
        assert!(SessionId::parse(&text).is_err());
        assert!(SessionId::parse(&"A".repeat(42)).is_err());
        assert!(SessionId::parse(&"*".repeat(43)).is_err());
    }
}
