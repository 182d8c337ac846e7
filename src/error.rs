//! The one error type of rampart.
//!
//! Every fallible operation returns [`Error`]: a [`ErrorKind`] that says what
//! went wrong, whether retrying may help ([`Error::is_temporary`]), the
//! operation and key it happened on, and the underlying cause kept as a
//! [`std::error::Error::source`] (never flattened into a string).

use std::borrow::Cow;
use std::fmt;

/// `Result` with rampart's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A key is empty, too long, or otherwise unusable.
    InvalidKey,
    /// An argument is out of range (a zero TTL, a cost above a limit's
    /// capacity, a negative amount, ...).
    InvalidInput,
    /// Configuration could not be parsed or is inconsistent.
    Config,
    /// The thing asked for does not exist.
    NotFound,
    /// A concurrent writer won; retrying may succeed.
    Conflict,
    /// A stored value could not be decoded: corrupt, truncated, or written
    /// by something else.
    CorruptData,
    /// The store cannot be reached (down, refusing connections, failing over).
    Unavailable,
    /// The store did not answer in time.
    Timeout,
    /// The store does not offer this operation (see [`crate::Capabilities`]).
    Unsupported,
    /// The store answered with an error or a reply rampart does not expect.
    Backend,
}

impl ErrorKind {
    /// Whether errors of this kind are temporary by default: retrying later,
    /// or going to a fallback store, may succeed.
    pub fn is_temporary_by_default(self) -> bool {
        matches!(self, Self::Unavailable | Self::Timeout | Self::Conflict)
    }

    /// The kind a stable code names (the inverse of [`ErrorKind::code`]):
    /// Lua twins report errors as replies starting with such a code.
    pub fn from_code(code: &str) -> Option<Self> {
        const ALL: [ErrorKind; 10] = [
            ErrorKind::InvalidKey,
            ErrorKind::InvalidInput,
            ErrorKind::Config,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::CorruptData,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Unsupported,
            ErrorKind::Backend,
        ];
        ALL.into_iter().find(|k| k.code() == code)
    }

    /// A stable, machine-friendly code, e.g. `RAMPART_INVALID_KEY`.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidKey => "RAMPART_INVALID_KEY",
            Self::InvalidInput => "RAMPART_INVALID_INPUT",
            Self::Config => "RAMPART_CONFIG",
            Self::NotFound => "RAMPART_NOT_FOUND",
            Self::Conflict => "RAMPART_CONFLICT",
            Self::CorruptData => "RAMPART_CORRUPT_DATA",
            Self::Unavailable => "RAMPART_UNAVAILABLE",
            Self::Timeout => "RAMPART_TIMEOUT",
            Self::Unsupported => "RAMPART_UNSUPPORTED",
            Self::Backend => "RAMPART_BACKEND",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidKey => "invalid key",
            Self::InvalidInput => "invalid input",
            Self::Config => "invalid configuration",
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::CorruptData => "corrupt data",
            Self::Unavailable => "store unavailable",
            Self::Timeout => "timed out",
            Self::Unsupported => "unsupported",
            Self::Backend => "backend error",
        })
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// rampart's error: a kind, a temporary/permanent flag, context and a source.
///
/// ```
/// use rampart::{Error, ErrorKind};
/// let err = Error::unavailable("connection refused").with_operation("get");
/// assert_eq!(err.kind(), ErrorKind::Unavailable);
/// assert!(err.is_temporary());
/// assert_eq!(err.to_string(), "store unavailable: connection refused (operation: get)");
/// ```
pub struct Error {
    kind: ErrorKind,
    temporary: bool,
    message: Cow<'static, str>,
    operation: Option<&'static str>,
    key: Option<String>,
    source: Option<Source>,
}

impl Error {
    /// A new error of `kind`; temporary if the kind is by default.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            temporary: kind.is_temporary_by_default(),
            message: message.into(),
            operation: None,
            key: None,
            source: None,
        }
    }

    /// [`ErrorKind::InvalidKey`].
    pub fn invalid_key(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidKey, message)
    }
    /// [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// [`ErrorKind::Config`].
    pub fn config(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// [`ErrorKind::CorruptData`].
    pub fn corrupt(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::CorruptData, message)
    }
    /// [`ErrorKind::Unavailable`] (temporary).
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// [`ErrorKind::Timeout`] (temporary).
    pub fn timeout(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }
    /// [`ErrorKind::Unsupported`] for `operation`.
    pub fn unsupported(operation: &'static str) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            "this store does not support the operation",
        )
        .with_operation(operation)
    }
    /// [`ErrorKind::Backend`].
    pub fn backend(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }

    /// Records the operation (`"get"`, `"limit.consume"`, ...) unless one is set.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.operation.get_or_insert(operation);
        self
    }
    /// Records the key the operation was on unless one is set.
    pub fn with_key(mut self, key: impl fmt::Display) -> Self {
        if self.key.is_none() {
            self.key = Some(key.to_string());
        }
        self
    }
    /// Keeps `source` as the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// Marks the error temporary: retrying (or a fallback store) may help.
    pub fn temporary(mut self) -> Self {
        self.temporary = true;
        self
    }
    /// Marks the error permanent: retrying will not help.
    pub fn permanent(mut self) -> Self {
        self.temporary = false;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// Whether retrying later, or a fallback store, may succeed.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }
    /// The human-readable message, without context.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The operation the error happened in, if known.
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }
    /// The key the error happened on, if known.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
    /// A stable code for the kind, e.g. `RAMPART_TIMEOUT`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        match (self.operation, &self.key) {
            (Some(op), Some(key)) => write!(f, " (operation: {op}, key: {key})"),
            (Some(op), None) => write!(f, " (operation: {op})"),
            (None, Some(key)) => write!(f, " (key: {key})"),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("temporary", &self.temporary)
            .field("message", &self.message)
            .field("operation", &self.operation)
            .field("key", &self.key)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::corrupt("value is not valid JSON for the expected type").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn context_and_source_are_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::unavailable("cannot connect")
            .with_operation("set")
            .with_key("app:k")
            .with_operation("ignored")
            .with_source(io);
        assert_eq!(e.operation(), Some("set"));
        assert_eq!(e.key(), Some("app:k"));
        assert!(e.is_temporary());
        assert_eq!(e.source().unwrap().to_string(), "refused");
        assert_eq!(
            e.to_string(),
            "store unavailable: cannot connect (operation: set, key: app:k)"
        );
        assert_eq!(e.code(), "RAMPART_UNAVAILABLE");
    }

    #[test]
    fn codes_round_trip() {
        for kind in [
            ErrorKind::CorruptData,
            ErrorKind::InvalidInput,
            ErrorKind::Backend,
        ] {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(ErrorKind::from_code("ERR"), None);
    }

    #[test]
    fn permanence_defaults_follow_kind() {
        assert!(!Error::corrupt("x").is_temporary());
        assert!(Error::timeout("x").is_temporary());
        assert!(Error::corrupt("x").temporary().is_temporary());
        assert!(!Error::timeout("x").permanent().is_temporary());
    }
}
