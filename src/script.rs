//! Lua scripts, their arguments and replies, for stores that run them.

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::{Error, Result};

/// A Redis-compatible Lua script with its SHA1 (for `EVALSHA`), computed once.
///
/// Scripts are `static`s beside the pure function they twin:
///
/// ```
/// use rampart::Script;
/// static GET: Script = Script::new("return redis.call('GET', KEYS[1])");
/// assert_eq!(GET.sha1().len(), 40);
/// ```
pub struct Script {
    source: &'static str,
    sha1: OnceLock<String>,
}

impl Script {
    /// A script from its Lua source.
    pub const fn new(source: &'static str) -> Self {
        Self {
            source,
            sha1: OnceLock::new(),
        }
    }
    /// The Lua source.
    pub fn source(&self) -> &'static str {
        self.source
    }
    /// The lowercase hex SHA1 of the source, as `EVALSHA` wants it.
    pub fn sha1(&self) -> &str {
        self.sha1
            .get_or_init(|| sha1_smol::Sha1::from(self.source).digest().to_string())
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("sha1", &self.sha1())
            .finish()
    }
}

/// An argument passed to a script (`ARGV`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// An integer, sent as its decimal text.
    Int(i64),
    /// Raw bytes.
    Bytes(Bytes),
    /// Text.
    Str(String),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<u64> for Arg {
    /// Values above `i64::MAX` saturate (no rampart figure gets near it).
    fn from(v: u64) -> Self {
        Arg::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Str(v.to_owned())
    }
}
impl From<Bytes> for Arg {
    fn from(v: Bytes) -> Self {
        Arg::Bytes(v)
    }
}

/// A script's reply, as Redis returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `nil` / `false`.
    Nil,
    /// An integer (Lua numbers are truncated to integers by Redis).
    Int(i64),
    /// A bulk string.
    Data(Bytes),
    /// A status reply such as `OK`.
    Status(String),
    /// A table.
    Array(Vec<Value>),
}

impl Value {
    /// The integer in `self`, also parsing a decimal bulk string.
    pub fn as_int(&self) -> Result<i64> {
        match self {
            Value::Int(i) => Ok(*i),
            Value::Data(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::backend("script reply is not an integer")),
            _ => Err(Error::backend(format!(
                "script reply is not an integer: {self:?}"
            ))),
        }
    }
    /// The elements of an array reply.
    pub fn into_array(self) -> Result<Vec<Value>> {
        match self {
            Value::Array(items) => Ok(items),
            other => Err(Error::backend(format!(
                "script reply is not an array: {other:?}"
            ))),
        }
    }
    /// The bytes of a bulk reply, `None` for nil.
    pub fn into_bytes(self) -> Result<Option<Bytes>> {
        match self {
            Value::Nil => Ok(None),
            Value::Data(b) => Ok(Some(b)),
            Value::Status(s) => Ok(Some(Bytes::from(s))),
            Value::Int(i) => Ok(Some(Bytes::from(i.to_string()))),
            other => Err(Error::backend(format!(
                "script reply is not a string: {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis() {
        // `redis-cli SCRIPT LOAD "return 1"` answers this digest.
        static S: Script = Script::new("return 1");
        assert_eq!(S.sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }

    #[test]
    fn value_accessors() {
        assert_eq!(Value::Data(Bytes::from_static(b"42")).as_int().unwrap(), 42);
        assert!(Value::Nil.as_int().is_err());
        assert_eq!(Value::Nil.into_bytes().unwrap(), None);
        assert!(Value::Int(1).into_array().is_err());
    }
}
