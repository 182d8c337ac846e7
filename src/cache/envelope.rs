//! The entry envelope: what the cache stores under a key.
//!
//! A compact, versioned binary header in front of the encoded value, so a
//! read learns everything it needs (freshness, tags, codec, compression)
//! from the one value it fetched:
//!
//! ```text
//! offset size  field
//! 0      1     magic 0xCA
//! 1      1     layout version (1)
//! 2      1     flags: bit 0 = payload is LZ4-compressed, bit 1 = negative
//!              entry ("the loader found nothing"; no payload); other bits 0
//! 3      1     codec format id (Codec::format_id: 1 JSON, 2 MessagePack)
//! 4      8     fresh-until, µs since the epoch, little-endian (u64::MAX = never)
//! 12     8     stale-until, µs since the epoch, little-endian (>= fresh-until)
//! 20     1     tag count n (at most MAX_TAGS)
//! 21     ...   n × { 1 byte name length (1..=255), name (UTF-8),
//!                    8 bytes tag version, little-endian }
//! ...    ...   payload: the codec's bytes; when compressed, a 4-byte
//!              little-endian uncompressed length then an LZ4 block
//! ```
//!
//! An untagged entry costs 21 bytes over its value. Decoding checks every
//! length and field; anything else is [`ErrorKind::CorruptData`], never a
//! panic, and a compressed payload may not claim more than
//! [`MAX_DECOMPRESSED`] bytes nor more than LZ4's largest ratio allows, so
//! corrupt bytes cannot make the cache allocate gigabytes.
//!
//! [`ErrorKind::CorruptData`]: crate::ErrorKind::CorruptData

use std::borrow::Cow;

use bytes::Bytes;

use crate::{Error, Result};

const MAGIC: u8 = 0xCA;
const LAYOUT: u8 = 1;
const FLAG_COMPRESSED: u8 = 0b01;
const FLAG_NEGATIVE: u8 = 0b10;
const KNOWN_FLAGS: u8 = FLAG_COMPRESSED | FLAG_NEGATIVE;
const HEADER: usize = 21;

/// The most tags one entry may carry.
pub const MAX_TAGS: usize = 32;
/// The longest tag name, in bytes.
pub const MAX_TAG_LEN: usize = 255;
/// The largest value a compressed payload may expand to (512 MiB, the
/// largest value Redis stores).
pub const MAX_DECOMPRESSED: usize = 512 * 1024 * 1024;
/// LZ4 never expands a byte of input into more than 255 bytes of output.
const LZ4_MAX_RATIO: usize = 255;

/// A decoded entry. The payload stays inside the stored bytes (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The stored bytes, whole (an L1 fill copies them as they are).
    pub raw: Bytes,
    pub compressed: bool,
    pub negative: bool,
    pub codec: u8,
    pub fresh_until: u64,
    pub stale_until: u64,
    /// (tag name, version recorded at write time).
    pub tags: Vec<(String, u64)>,
    /// Where the payload starts in `raw`.
    payload_at: usize,
}

/// What to write.
pub(crate) struct NewEntry<'a> {
    pub codec: u8,
    pub fresh_until: u64,
    pub stale_until: u64,
    pub tags: &'a [(String, u64)],
    /// `None` = a negative entry.
    pub payload: Option<&'a [u8]>,
    /// Compress payloads of at least this many bytes (when it helps).
    pub compress_above: Option<usize>,
}

fn corrupt(what: &'static str) -> Error {
    Error::corrupt(what).with_operation("cache.decode")
}

impl NewEntry<'_> {
    /// The stored bytes.
    pub fn encode(&self) -> Bytes {
        let mut flags = 0;
        let mut compressed = None;
        match self.payload {
            None => flags |= FLAG_NEGATIVE,
            Some(p) => {
                if self.compress_above.is_some_and(|n| p.len() >= n) && p.len() <= MAX_DECOMPRESSED
                {
                    let mut out = Vec::with_capacity(4 + p.len() / 2);
                    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
                    out.extend_from_slice(&lz4_flex::block::compress(p));
                    if out.len() < p.len() {
                        flags |= FLAG_COMPRESSED;
                        compressed = Some(out);
                    }
                }
            }
        }
        let body: &[u8] = match (&compressed, self.payload) {
            (Some(c), _) => c,
            (None, Some(p)) => p,
            (None, None) => &[],
        };
        let tags_len: usize = self.tags.iter().map(|(t, _)| 9 + t.len()).sum();
        let mut out = Vec::with_capacity(HEADER + tags_len + body.len());
        out.extend_from_slice(&[MAGIC, LAYOUT, flags, self.codec]);
        out.extend_from_slice(&self.fresh_until.to_le_bytes());
        out.extend_from_slice(&self.stale_until.max(self.fresh_until).to_le_bytes());
        // Callers validate tags (count and name length) before encoding.
        out.push(self.tags.len().min(MAX_TAGS) as u8);
        for (tag, version) in self.tags.iter().take(MAX_TAGS) {
            let name = &tag.as_bytes()[..tag.len().min(MAX_TAG_LEN)];
            out.push(name.len() as u8);
            out.extend_from_slice(name);
            out.extend_from_slice(&version.to_le_bytes());
        }
        out.extend_from_slice(body);
        Bytes::from(out)
    }
}

/// A little-endian reader that fails instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| corrupt("cache entry is truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }
}

impl Envelope {
    /// Decodes stored bytes; anything but a valid envelope is
    /// [`crate::ErrorKind::CorruptData`].
    pub fn decode(raw: Bytes) -> Result<Envelope> {
        let mut r = Reader { bytes: &raw, at: 0 };
        if r.u8()? != MAGIC {
            return Err(corrupt("value is not a rampart cache entry"));
        }
        let layout = r.u8()?;
        if layout != LAYOUT {
            return Err(corrupt("cache entry has an unknown layout version"));
        }
        let flags = r.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(corrupt("cache entry has unknown flags"));
        }
        let codec = r.u8()?;
        let fresh_until = r.u64()?;
        let stale_until = r.u64()?;
        if stale_until < fresh_until {
            return Err(corrupt(
                "cache entry goes stale before it stops being fresh",
            ));
        }
        let count = r.u8()? as usize;
        if count > MAX_TAGS {
            return Err(corrupt("cache entry has too many tags"));
        }
        let mut tags = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.u8()? as usize;
            if len == 0 {
                return Err(corrupt("cache entry has an empty tag"));
            }
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|_| corrupt("cache entry has a tag that is not UTF-8"))?;
            tags.push((name.to_owned(), r.u64()?));
        }
        let negative = flags & FLAG_NEGATIVE != 0;
        let compressed = flags & FLAG_COMPRESSED != 0;
        let at = r.at;
        if negative && (compressed || at != raw.len()) {
            return Err(corrupt("negative cache entry carries a value"));
        }
        Ok(Envelope {
            raw,
            compressed,
            negative,
            codec,
            fresh_until,
            stale_until,
            tags,
            payload_at: at,
        })
    }

    /// The codec's bytes, decompressed if needed.
    pub fn payload(&self) -> Result<Cow<'_, [u8]>> {
        let payload = self.raw.get(self.payload_at..).unwrap_or_default();
        if !self.compressed {
            return Ok(Cow::Borrowed(payload));
        }
        let mut r = Reader {
            bytes: payload,
            at: 0,
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(r.take(4)?);
        let len = u32::from_le_bytes(len) as usize;
        let block = payload.get(4..).unwrap_or_default();
        if len > MAX_DECOMPRESSED || len > block.len().saturating_mul(LZ4_MAX_RATIO) {
            return Err(corrupt("compressed cache entry claims an impossible size"));
        }
        let out = lz4_flex::block::decompress(block, len)
            .map_err(|e| corrupt("compressed cache entry does not decompress").with_source(e))?;
        if out.len() != len {
            return Err(corrupt("compressed cache entry has the wrong length"));
        }
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn entry<'a>(tags: &'a [(String, u64)], payload: Option<&'a [u8]>) -> NewEntry<'a> {
        NewEntry {
            codec: 1,
            fresh_until: 1_000,
            stale_until: 2_000,
            tags,
            payload,
            compress_above: Some(64),
        }
    }

    #[test]
    fn round_trips_plain_tagged_negative_and_compressed() {
        let tags = [("user:1".to_string(), 7), ("team".to_string(), u64::MAX)];
        let big = vec![b'a'; 10_000];
        for (tags, payload) in [
            (&[][..], Some(&b"{\"x\":1}"[..])),
            (&tags[..], Some(&b"[]"[..])),
            (&tags[..], None),
            (&[][..], Some(&big[..])),
            (&[][..], Some(&b""[..])),
        ] {
            let raw = entry(tags, payload).encode();
            let env = Envelope::decode(raw.clone()).unwrap();
            assert_eq!(env.raw, raw);
            assert_eq!(env.tags, tags);
            assert_eq!(
                (env.fresh_until, env.stale_until, env.codec),
                (1_000, 2_000, 1)
            );
            assert_eq!(env.negative, payload.is_none());
            assert_eq!(env.payload().unwrap().as_ref(), payload.unwrap_or_default());
        }
        let raw = entry(&[], Some(&big)).encode();
        assert!(
            raw.len() < 200,
            "10 kB of one byte compresses: {}",
            raw.len()
        );
        assert_eq!(entry(&[], Some(b"v")).encode().len(), HEADER + 1);
    }

    #[test]
    fn incompressible_payloads_are_stored_as_they_are() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..1_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let env = Envelope::decode(entry(&[], Some(&noise)).encode()).unwrap();
        assert!(!env.compressed);
        assert_eq!(env.payload().unwrap().as_ref(), &noise[..]);
    }

    #[test]
    fn corrupt_bytes_are_typed_errors_never_panics() {
        let tags = [("t".to_string(), 1)];
        let good = entry(&tags, Some(&[b'z'; 500])).encode();
        // Every truncation, and every single-byte change, of a valid entry.
        for cut in 0..good.len() {
            if let Err(e) = Envelope::decode(good.slice(..cut)).and_then(|e| {
                e.payload()?;
                Ok(())
            }) {
                assert_eq!(e.kind(), ErrorKind::CorruptData);
            }
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.to_vec();
                bad[i] ^= flip;
                if let Err(e) = Envelope::decode(Bytes::from(bad)).and_then(|e| {
                    e.payload()?;
                    Ok(())
                }) {
                    assert_eq!(e.kind(), ErrorKind::CorruptData);
                }
            }
        }
        for junk in [&b""[..], b"{\"json\":true}", b"\xca", b"\xca\x02"] {
            let e = Envelope::decode(Bytes::copy_from_slice(junk)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::CorruptData);
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes, half of them behind a valid magic and layout
        /// byte so the decoder goes deep: a typed error or an entry,
        /// never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            framed in proptest::prelude::any::<bool>(),
        ) {
            let bytes = if framed { [&[MAGIC, LAYOUT][..], &body].concat() } else { body };
            match Envelope::decode(Bytes::from(bytes)) {
                Ok(env) => {
                    if let Err(e) = env.payload() {
                        proptest::prop_assert_eq!(e.kind(), ErrorKind::CorruptData);
                    }
                }
                Err(e) => proptest::prop_assert_eq!(e.kind(), ErrorKind::CorruptData),
            }
        }
    }

    #[test]
    fn a_lying_length_cannot_force_a_huge_allocation() {
        let mut raw = entry(&[], Some(&[b'q'; 1_000])).encode().to_vec();
        assert_eq!(raw[2] & FLAG_COMPRESSED, FLAG_COMPRESSED);
        raw[HEADER..HEADER + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let env = Envelope::decode(Bytes::from(raw)).unwrap();
        assert_eq!(env.payload().unwrap_err().kind(), ErrorKind::CorruptData);
    }
}
