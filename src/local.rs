//! The in-process fast path: [`crate::Store::update_local`].
//!
//! An in-process store can run a read-modify-write synchronously, under
//! its own lock, with no future to box and no round trip. The rate
//! limiter's hot path uses it: one map lookup, one clock read (the
//! store's, passed to the closure), a fixed-size binary state decoded and
//! written back in place without allocating ([`LocalValue::Inline`]).

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use bytes::Bytes;

use crate::Timestamp;

/// The most bytes a [`LocalValue`] holds inline.
pub const INLINE_CAPACITY: usize = 38;

/// A value held by an in-process store: small values written through
/// [`crate::Store::update_local`] live inline (no allocation), everything
/// else is shared [`Bytes`].
#[derive(Clone)]
pub enum LocalValue {
    /// Up to [`INLINE_CAPACITY`] bytes, stored in place.
    Inline {
        /// How many bytes of `buf` are the value.
        len: u8,
        /// The bytes (those past `len` are unused).
        buf: [u8; INLINE_CAPACITY],
    },
    /// Any other value.
    Shared(Bytes),
}

impl LocalValue {
    /// `bytes` inline when they fit, else copied into shared [`Bytes`].
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_CAPACITY {
            let mut buf = [0u8; INLINE_CAPACITY];
            buf[..bytes.len()].copy_from_slice(bytes);
            LocalValue::Inline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            LocalValue::Shared(Bytes::copy_from_slice(bytes))
        }
    }

    /// The value's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            LocalValue::Inline { len, buf } => &buf[..usize::from(*len)],
            LocalValue::Shared(b) => b,
        }
    }

    /// The value as [`Bytes`] (a reference-count bump when shared, a copy
    /// when inline).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            LocalValue::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            LocalValue::Shared(b) => b.clone(),
        }
    }

    /// The value as [`Bytes`], without a copy when it is shared.
    pub fn into_bytes(self) -> Bytes {
        match self {
            LocalValue::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            LocalValue::Shared(b) => b,
        }
    }
}

impl Deref for LocalValue {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Bytes> for LocalValue {
    fn from(b: Bytes) -> Self {
        LocalValue::Shared(b)
    }
}

impl PartialEq for LocalValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for LocalValue {}

impl fmt::Debug for LocalValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The length only: values may be secrets.
        f.debug_struct("LocalValue")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// What a [`LocalUpdateFn`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalChange {
    /// Leave the key as it is.
    Keep,
    /// Store `value`, expiring after `ttl` (`None` = never).
    Set {
        /// The new value.
        value: LocalValue,
        /// Its TTL (`None` = never expires).
        ttl: Option<Duration>,
    },
    /// Delete the key.
    Remove,
}

/// The closure of [`crate::Store::update_local`]: sees the current value
/// (`None` when missing or expired) and the store's `now`, and says what
/// to do. It runs exactly once, under the store's lock.
pub type LocalUpdateFn<'a> = dyn FnMut(Option<&[u8]>, Timestamp) -> LocalChange + 'a;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_stay_inline_and_large_ones_are_shared() {
        let small = LocalValue::copy_from_slice(b"abc");
        assert!(matches!(small, LocalValue::Inline { len: 3, .. }));
        assert_eq!(&*small, b"abc");
        assert_eq!(small.to_bytes(), Bytes::from_static(b"abc"));
        let edge = LocalValue::copy_from_slice(&[7; INLINE_CAPACITY]);
        assert!(matches!(edge, LocalValue::Inline { .. }));
        let big = LocalValue::copy_from_slice(&[7; INLINE_CAPACITY + 1]);
        assert!(matches!(big, LocalValue::Shared(_)));
        assert_eq!(big.len(), INLINE_CAPACITY + 1);
        assert_eq!(LocalValue::from(Bytes::from_static(b"abc")), small);
        assert_eq!(format!("{small:?}"), "LocalValue { len: 3, .. }");
    }
}
