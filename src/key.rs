//! Keys: validated, namespaced, Cluster-aware.
//!
//! A [`Key`] is a non-empty UTF-8 string of at most [`MAX_KEY_LEN`] bytes.
//! Namespaces join with `:` (`app:ns:key`); keys that a multi-key script
//! touches together share a Redis Cluster hash tag (`{base}:suffix`), see
//! [`Key::tagged`]. User input that ends up in a scan pattern is escaped
//! with [`escape_glob`], so a `*` in a user id cannot widen a delete.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use crate::{Error, Result};

/// The longest key rampart accepts, in bytes (prefixes included).
pub const MAX_KEY_LEN: usize = 1024;

/// The separator between namespace parts.
pub const SEPARATOR: char = ':';

/// A validated store key.
///
/// Cloning is cheap (the text is shared).
///
/// ```
/// use rampart::Key;
/// let k = Key::from_parts(["app", "users", "42"]).unwrap();
/// assert_eq!(k.as_str(), "app:users:42");
/// assert!(Key::new("").is_err());
/// assert!(Key::new("x".repeat(2000)).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Arc<str>);

impl Key {
    /// A key from `text`, checked: not empty, at most [`MAX_KEY_LEN`] bytes.
    pub fn new(text: impl AsRef<str>) -> Result<Self> {
        let text = text.as_ref();
        validate(text)?;
        Ok(Key(Arc::from(text)))
    }

    /// Parts joined by `:`; each part must be non-empty.
    pub fn from_parts<I, P>(parts: I) -> Result<Self>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        let mut out = String::new();
        for (i, part) in parts.into_iter().enumerate() {
            let part = part.as_ref();
            if part.is_empty() {
                return Err(Error::invalid_key("a key part is empty"));
            }
            if i > 0 {
                out.push(SEPARATOR);
            }
            out.push_str(part);
            if out.len() > MAX_KEY_LEN {
                return Err(too_long(out.len()));
            }
        }
        Key::new(out)
    }

    /// `{base}:suffix`: a key in `base`'s Redis Cluster hash slot.
    ///
    /// Every key of one family (a session and its user index, a lock and its
    /// fencing counter) built with the same `base` lands in the same slot, so
    /// one script may touch them all on a Cluster.
    ///
    /// ```
    /// use rampart::Key;
    /// let k = Key::tagged("user:7", "sessions").unwrap();
    /// assert_eq!(k.as_str(), "{user:7}:sessions");
    /// assert_eq!(k.hash_tag(), Some("user:7"));
    /// ```
    pub fn tagged(base: &str, suffix: &str) -> Result<Self> {
        if base.is_empty() {
            return Err(Error::invalid_key("a hash-tag base is empty"));
        }
        if base.contains(['{', '}']) {
            return Err(Error::invalid_key(
                "a hash-tag base may not contain '{' or '}'",
            ));
        }
        if suffix.is_empty() {
            Key::new(format!("{{{base}}}"))
        } else {
            Key::new(format!("{{{base}}}{SEPARATOR}{suffix}"))
        }
    }

    /// `self:part`.
    pub fn child(&self, part: &str) -> Result<Self> {
        if part.is_empty() {
            return Err(Error::invalid_key("a key part is empty"));
        }
        // Built by hand, not with `format!`: this is on every decision of a
        // limiter with a prefix (the Node bindings build a key per call).
        let len = self.0.len() + SEPARATOR.len_utf8() + part.len();
        if len > MAX_KEY_LEN {
            return Err(too_long(len));
        }
        let mut text = String::with_capacity(len);
        text.push_str(&self.0);
        text.push(SEPARATOR);
        text.push_str(part);
        Ok(Key(Arc::from(text)))
    }

    /// The text of the key.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bytes of the key.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The part Redis Cluster hashes: the text between the first `{` and the
    /// next `}` when that is non-empty, as Redis defines it.
    pub fn hash_tag(&self) -> Option<&str> {
        let open = self.0.find('{')?;
        let rest = &self.0[open + 1..];
        let close = rest.find('}')?;
        (close > 0).then(|| &rest[..close])
    }
}

fn too_long(len: usize) -> Error {
    Error::invalid_key(format!(
        "key is {len} bytes, longer than the limit of {MAX_KEY_LEN}"
    ))
}

fn validate(text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(Error::invalid_key("key is empty"));
    }
    if text.len() > MAX_KEY_LEN {
        return Err(too_long(text.len()));
    }
    Ok(())
}

/// Checks a scan prefix: it may be empty (everything), at most [`MAX_KEY_LEN`] bytes.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_KEY_LEN {
        return Err(too_long(prefix.len()));
    }
    Ok(())
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", &*self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Key::new(s)
    }
}

/// Escapes Redis glob characters (`*`, `?`, `[`, `]`, `\`) so that `text`
/// matches only itself in a `SCAN MATCH` pattern.
///
/// ```
/// assert_eq!(rampart::escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
/// ```
pub fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Matches `text` against a Redis-style glob `pattern` (`*`, `?`, `[abc]`,
/// `[^a]`, `[a-z]`, `\` escapes), as `SCAN MATCH` does. In-process stores use
/// it so patterns mean the same thing everywhere.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Backtracking point for the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches `c` against the class starting at `p[start] == '['`; returns
/// (matched, index after the class), or `None` if the class is unterminated.
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == '^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < p.len() && p[i] != ']' {
        if p[i] == '\\' && i + 1 < p.len() {
            matched |= p[i + 1] == c;
            i += 2;
        } else if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let (lo, hi) = if p[i] <= p[i + 2] {
                (p[i], p[i + 2])
            } else {
                (p[i + 2], p[i])
            };
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn validation() {
        assert_eq!(Key::new("").unwrap_err().kind(), ErrorKind::InvalidKey);
        assert!(Key::new("a".repeat(MAX_KEY_LEN)).is_ok());
        assert_eq!(
            Key::new("a".repeat(MAX_KEY_LEN + 1)).unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert!(Key::from_parts(["a", "", "b"]).is_err());
        assert!(Key::from_parts(["a".repeat(600), "b".repeat(600)]).is_err());
        assert!(Key::tagged("a{b", "x").is_err());
        assert!(validate_prefix("").is_ok());
    }

    #[test]
    fn children_join_with_the_separator_and_keep_the_bounds() {
        let base = Key::new("rl:auth").unwrap();
        assert_eq!(base.child("alice").unwrap().as_str(), "rl:auth:alice");
        assert_eq!(base.child("é:1").unwrap().as_str(), "rl:auth:é:1");
        assert_eq!(base.child("").unwrap_err().kind(), ErrorKind::InvalidKey);
        let long = Key::new("p".repeat(MAX_KEY_LEN - 2)).unwrap();
        assert_eq!(long.child("x").unwrap().as_str().len(), MAX_KEY_LEN);
        assert_eq!(long.child("xy").unwrap_err().kind(), ErrorKind::InvalidKey);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(Key::new("a{b}c").unwrap().hash_tag(), Some("b"));
        assert_eq!(Key::new("a{}c").unwrap().hash_tag(), None);
        assert_eq!(Key::new("plain").unwrap().hash_tag(), None);
        let k = Key::tagged("lock:db", "fence").unwrap();
        assert_eq!(k.child("x").unwrap().hash_tag(), Some("lock:db"));
    }

    #[test]
    fn escaped_text_matches_only_itself() {
        for s in ["user*", "a?b", "[x]", "back\\slash", "plain", "*", "\\*"] {
            let pat = escape_glob(s);
            assert!(glob_match(&pat, s), "{s}");
            assert!(!glob_match(&pat, &format!("{s}x")), "{s}");
            assert!(glob_match(&format!("{pat}*"), &format!("{s}tail")));
        }
        assert!(!glob_match(&escape_glob("user*"), "user1"));
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_match("h?llo", "hello"));
        assert!(glob_match("h*llo", "heeeello"));
        assert!(glob_match("h[ae]llo", "hallo"));
        assert!(!glob_match("h[^e]llo", "hello"));
        assert!(glob_match("h[a-b]llo", "hbllo"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }
}
