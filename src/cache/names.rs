//! Where a cache's keys live, and its small random number generator.

use std::sync::atomic::{AtomicU64, Ordering};

use super::envelope::MAX_TAG_LEN;
use crate::{rt, validate_prefix, Clock, Error, Key, Result};

/// Keys up to this long are joined on the stack.
const STACK_KEY: usize = 192;
/// Where the cache's keys live.
#[derive(Debug)]
pub(super) struct Names {
    pub(super) namespace: String,
    /// `<namespace>:k:`
    pub(super) entries: String,
    /// `<namespace>:t:`
    pub(super) tags: String,
    pub(super) channel: Key,
}

impl Names {
    pub(super) fn new(namespace: String) -> Result<Self> {
        if namespace.is_empty() {
            return Err(Error::invalid_key("a cache namespace is empty"));
        }
        if namespace.contains(['*', '?', '[', ']', '\\', '{', '}']) {
            return Err(Error::invalid_key(
                "a cache namespace may not contain glob characters or braces",
            ));
        }
        let channel = Key::new(format!("{namespace}:invalidations"))?;
        let names = Self {
            entries: format!("{namespace}:k:"),
            tags: format!("{namespace}:t:"),
            namespace,
            channel,
        };
        validate_prefix(&names.entries)?;
        Ok(names)
    }

    pub(super) fn entry(&self, key: &str) -> Result<Key> {
        if key.is_empty() {
            return Err(Error::invalid_key("a cache key is empty"));
        }
        // The hot path: join on the stack, so the key's own copy is the
        // only allocation.
        let (prefix, len) = (self.entries.as_bytes(), self.entries.len() + key.len());
        if len <= STACK_KEY {
            let mut buf = [0u8; STACK_KEY];
            buf[..prefix.len()].copy_from_slice(prefix);
            buf[prefix.len()..len].copy_from_slice(key.as_bytes());
            if let Ok(full) = std::str::from_utf8(&buf[..len]) {
                return Key::new(full);
            }
        }
        Key::new(format!("{}{key}", self.entries))
    }

    pub(super) fn tag(&self, tag: &str) -> Result<Key> {
        if tag.is_empty() {
            return Err(Error::invalid_input("a cache tag is empty"));
        }
        if tag.len() > MAX_TAG_LEN {
            return Err(Error::invalid_input(format!(
                "a cache tag is {} bytes, longer than the limit of {MAX_TAG_LEN}",
                tag.len()
            )));
        }
        Key::new(format!("{}{tag}", self.tags))
    }
}

/// A small lock-free generator (SplitMix64) for jitter, tag versions and
/// instance ids, seeded from the OS.
#[derive(Debug)]
pub(super) struct Rng(AtomicU64);
impl Rng {
    pub(super) fn seeded(clock: &dyn Clock) -> Self {
        let seed = rt::random_u64().unwrap_or_else(|_| clock.now().as_micros());
        Rng(AtomicU64::new(seed))
    }

    pub(super) fn next(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, MAX_KEY_LEN};

    #[test]
    fn rng_is_uniform_enough_and_unit_is_in_range() {
        let rng = Rng(AtomicU64::new(7));
        let mut below_half = 0;
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            below_half += usize::from(u < 0.5);
        }
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }

    #[test]
    fn names_refuse_bad_namespaces_keys_and_tags() {
        assert_eq!(
            Names::new(String::new()).unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert!(Names::new("a*".into()).is_err());
        assert!(Names::new("{a}".into()).is_err());
        let names = Names::new("app".into()).unwrap();
        assert_eq!(names.entry("u:1").unwrap().as_str(), "app:k:u:1");
        assert_eq!(names.tag("t").unwrap().as_str(), "app:t:t");
        assert_eq!(names.entry("").unwrap_err().kind(), ErrorKind::InvalidKey);
        assert_eq!(names.tag("").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(
            names.tag(&"x".repeat(MAX_TAG_LEN + 1)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            names.entry(&"x".repeat(MAX_KEY_LEN)).unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
    }
}
