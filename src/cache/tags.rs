//! Tags: invalidating every entry of a tag in O(1).
//!
//! Each tag has a *version* stored under `<namespace>:t:<tag>`: a random
//! 64-bit number, as decimal text. An entry records the versions of its
//! tags when it is written (read before its loader ran); a read compares
//! them with the current ones and treats any difference as a miss.
//! Invalidating a tag writes a new random version — one `SET`, whatever the
//! number of entries — and the stale entries simply expire later.
//!
//! Versions are random rather than counters so that a tag key that is
//! evicted or expires can never come back with a version an old entry
//! recorded: a missing version makes every entry of the tag miss, and the
//! next write creates a fresh one (compare-and-swap from "absent", so
//! concurrent writers agree on it). Tag keys live for the cache's tag TTL
//! (default [`super::DEFAULT_TAG_TTL`]); an entry that outlives its tag's
//! key misses once and is written again under a new version.
//!
//! Cost on Redis: an entry with no tags is read with one `GET`. A
//! `get_or_set` that names its tags reads the entry and the tag versions
//! with **one `MGET`** (on a Cluster, redis-rs splits it by slot and sends
//! the parts concurrently). A plain `get` of a tagged entry costs one `GET`
//! and one `MGET` of its tags. Writing a tagged entry adds one `MGET` of the
//! versions (plus one compare-and-swap per tag that has no version yet).

use bytes::Bytes;

/// The stored form of a version.
pub(crate) fn encode_version(version: u64) -> Bytes {
    Bytes::from(version.to_string())
}

/// A stored version; `None` if it is not one (a foreign or corrupt value,
/// which makes the tag's entries miss until it is overwritten).
pub(crate) fn parse_version(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip() {
        for v in [0, 1, u64::MAX] {
            assert_eq!(parse_version(&encode_version(v)), Some(v));
        }
        assert_eq!(parse_version(b"-1"), None);
        assert_eq!(parse_version(b"\xff"), None);
        assert_eq!(parse_version(b""), None);
    }
}
