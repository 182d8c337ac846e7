//! The stored state of every rate-limit algorithm: one encoding that both
//! faces (the pure Rust function and its Lua twin) read and write.
//!
//! A state value is ASCII: a tag naming the algorithm and the format
//! version, a colon, then decimal integers separated by commas:
//!
//! ```text
//! tb1:<blocked_until>,<tat_1>,...,<tat_n>                    token bucket (GCRA)
//! fw1:<blocked_until>,<start_1>,<count_1>,...                fixed window
//! sc1:<blocked_until>,<start_1>,<prev_1>,<cur_1>,...         sliding window counter
//! ```
//!
//! The sliding log has a fixed-width layout of its own (`sl1:` then
//! 16-digit fields), described in the `sliding_log` module.
//!
//! Times are microseconds since the Unix epoch; `blocked_until` is 0 when
//! the key is not blocked.
//!
//! Every field is 1 to 16 digits and below 2^53, so Lua's doubles hold it
//! exactly. Anything else (another tag, an empty field, a sign, a
//! 17-digit number) is [`crate::ErrorKind::CorruptData`]. A well-formed
//! value whose number of fields does not match the rule (the rule gained or
//! lost a tier since the value was written) is treated as a fresh state
//! with its `blocked_until` kept: changing a rule restarts its counts
//! rather than failing every request until the old value expires.

use bytes::Bytes;

use crate::{Error, LocalValue, Result};

/// Every stored or computed figure stays below this (2^53), so Lua's
/// doubles represent it exactly.
pub(crate) const SAFE_LIMIT: u64 = 1 << 53;

/// The largest count a window keeps (a penalty cannot push it higher).
pub(crate) const MAX_COUNT: u64 = 1 << 52;

/// The longest time a state is kept, and the most debt a penalty can pile
/// onto a token bucket: [`crate::MAX_TTL`] in microseconds.
pub(crate) const MAX_SPAN_US: u64 = 100 * 365 * 24 * 60 * 60 * 1_000_000;

/// The latest `now` the algorithms accept (2^52 µs, around the year 2112),
/// so `now` plus any span stays below [`SAFE_LIMIT`].
pub(crate) const MAX_NOW_US: u64 = 1 << 52;

/// The fields of a state value, checked one by one.
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
    done: bool,
}

/// The fields of `raw` after its `tag:` prefix.
pub(crate) fn fields<'a>(raw: &'a [u8], tag: &[u8]) -> Result<Fields<'a>> {
    match raw.strip_prefix(tag).and_then(|r| r.strip_prefix(b":")) {
        Some(rest) => Ok(Fields { rest, done: false }),
        None => Err(corrupt()),
    }
}

pub(crate) fn corrupt() -> Error {
    Error::corrupt("stored rate-limit state is not in the expected format").with_operation("limit")
}

impl Iterator for Fields<'_> {
    type Item = Result<u64>;

    /// One pass over the field's bytes: 1 to 16 digits, below 2^53.
    #[inline]
    fn next(&mut self) -> Option<Result<u64>> {
        if self.done {
            return None;
        }
        let mut v: u64 = 0;
        let mut len = 0usize;
        loop {
            match self.rest.get(len) {
                Some(&b) if b.is_ascii_digit() => {
                    v = v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
                    len += 1;
                }
                Some(b',') => {
                    self.rest = &self.rest[len + 1..];
                    break;
                }
                None => {
                    self.done = true;
                    break;
                }
                Some(_) => {
                    self.done = true;
                    return Some(Err(corrupt()));
                }
            }
        }
        if len == 0 || len > 16 || v >= SAFE_LIMIT {
            self.done = true;
            return Some(Err(corrupt()));
        }
        Some(Ok(v))
    }
}

/// The most fields a fixed-size state holds (blocked + 3 per tier).
pub(crate) const MAX_FIXED_FIELDS: usize = 1 + 3 * super::MAX_TIERS;

/// Parses a fixed-size state into `out` (`out[0]` = `blocked_until`) and
/// says whether it has `per_tier * tiers` per-tier fields; when it does
/// not (a value written under another rule: see the module docs), only
/// `out[0]` is meaningful.
pub(crate) fn parse_fixed(
    raw: &[u8],
    tag: &[u8],
    per_tier: usize,
    tiers: usize,
    out: &mut [u64; MAX_FIXED_FIELDS],
) -> Result<bool> {
    if raw.first() == Some(&0) {
        return parse_binary(raw, tag, per_tier, tiers, out);
    }
    let mut n = 0usize;
    for f in fields(raw, tag)? {
        let v = f?;
        if let Some(slot) = out.get_mut(n) {
            *slot = v;
        }
        n += 1;
    }
    Ok(n == 1 + per_tier * tiers)
}

/// The stored form a state is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// The ASCII form both faces share (every store that may meet Lua).
    Text,
    /// The in-process form ([`crate::Store::update_local`]): a zero byte,
    /// the tag, the field count, then each field as 8 little-endian bytes.
    /// Decoded and encoded without parsing or allocating; never seen by
    /// Lua (stores with scripting have no local path), and read by
    /// [`parse_fixed`] like the text form.
    Binary,
}

/// Bytes before the fields of the binary form: `0`, a 3-byte tag, a count.
pub(crate) const BINARY_HEADER: usize = 5;

/// Parses the binary form (see [`Form::Binary`]); the same checks and the
/// same answer as the text form.
fn parse_binary(
    raw: &[u8],
    tag: &[u8],
    per_tier: usize,
    tiers: usize,
    out: &mut [u64; MAX_FIXED_FIELDS],
) -> Result<bool> {
    let n = match raw {
        [0, t0, t1, t2, n, ..] if [*t0, *t1, *t2] == tag => usize::from(*n),
        _ => return Err(corrupt()),
    };
    if n == 0 || raw.len() != BINARY_HEADER + 8 * n {
        return Err(corrupt());
    }
    for (i, chunk) in raw[BINARY_HEADER..].chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let v = u64::from_le_bytes(b);
        if v >= SAFE_LIMIT {
            return Err(corrupt());
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = v;
        }
    }
    Ok(n == 1 + per_tier * tiers)
}

/// Encodes `fields` under `tag` in `form`: the text form in one
/// allocation of `N` bytes (see [`encode_fixed`]), the binary form inline
/// when it fits [`crate::INLINE_CAPACITY`].
pub(crate) fn encode_fixed_as<const N: usize>(
    form: Form,
    tag: &[u8],
    fields: &[u64],
) -> LocalValue {
    match form {
        Form::Text => LocalValue::Shared(encode_fixed::<N>(tag, fields)),
        Form::Binary => {
            let mut buf = [0u8; BINARY_HEADER + 8 * MAX_FIXED_FIELDS];
            buf[1..4].copy_from_slice(tag);
            buf[4] = fields.len() as u8;
            for (chunk, v) in buf[BINARY_HEADER..].chunks_exact_mut(8).zip(fields) {
                chunk.copy_from_slice(&v.to_le_bytes());
            }
            LocalValue::copy_from_slice(&buf[..BINARY_HEADER + 8 * fields.len()])
        }
    }
}

/// A small encoded value stored inline, so the [`Bytes`] made from it is
/// one allocation whose clones (stores clone the value they keep) only
/// bump a reference count.
struct Inline<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Encodes `tag:f1,f2,...` in one allocation of `N` bytes (at least
/// `4 + 17 * fields.len()`).
pub(crate) fn encode_fixed<const N: usize>(tag: &[u8], fields: &[u64]) -> Bytes {
    let mut out = Inline {
        len: 0,
        buf: [0u8; N],
    };
    let buf = &mut out.buf;
    let mut len = tag.len();
    buf[..len].copy_from_slice(tag);
    buf[len] = b':';
    len += 1;
    for (i, &v) in fields.iter().enumerate() {
        if i > 0 {
            buf[len] = b',';
            len += 1;
        }
        len += write_digits(&mut buf[len..], v);
    }
    out.len = len;
    Bytes::from_owner(out)
}

/// "00" to "99", for writing two digits at a time.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the decimal digits of `v` at the start of `buf`; returns how many.
#[inline]
fn write_digits(buf: &mut [u8], mut v: u64) -> usize {
    let n = v.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut i = n;
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    }
    if v >= 10 {
        let r = v as usize * 2;
        buf[..2].copy_from_slice(&PAIRS[r..r + 2]);
    } else {
        buf[0] = b'0' + v as u8;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn all(raw: &[u8]) -> Result<Vec<u64>> {
        fields(raw, b"tb1")?.collect()
    }

    #[test]
    fn round_trip() {
        let v = encode_fixed::<72>(b"tb1", &[0, 1_712_345_678_901_234, 10, 9]);
        assert_eq!(&v[..], b"tb1:0,1712345678901234,10,9");
        assert_eq!(all(&v).unwrap(), vec![0, 1_712_345_678_901_234, 10, 9]);
        let max = encode_fixed::<{ 4 + 17 * MAX_FIXED_FIELDS }>(
            b"sc1",
            &[SAFE_LIMIT - 1; MAX_FIXED_FIELDS],
        );
        assert_eq!(max.len(), 4 + 17 * MAX_FIXED_FIELDS - 1);
        for v in [
            0u64,
            7,
            10,
            99,
            100,
            101,
            12_345,
            1 << 40,
            (1 << 53) - 1,
            u64::MAX,
        ] {
            let mut buf = [0u8; 20];
            let n = write_digits(&mut buf, v);
            assert_eq!(&buf[..n], v.to_string().as_bytes());
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            &b""[..],
            b"tb1",
            b"tb1:",
            b"tb2:1",
            b"fw1:1",
            b"tb1:1,",
            b"tb1:,1",
            b"tb1:1,,2",
            b"tb1:-1",
            b"tb1:+1",
            b"tb1: 1",
            b"tb1:1.5",
            b"tb1:12345678901234567",
            b"tb1:9007199254740992",
            b"tb1:\xff",
        ] {
            let err = all(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::CorruptData, "{bad:?}");
        }
        assert_eq!(all(b"tb1:9007199254740991").unwrap(), vec![(1 << 53) - 1]);
        assert_eq!(all(b"tb1:007").unwrap(), vec![7]);
    }

    #[test]
    fn fixed_states_of_another_shape_are_fresh() {
        let mut out = [0; MAX_FIXED_FIELDS];
        assert!(parse_fixed(b"fw1:5,1,2", b"fw1", 2, 1, &mut out).unwrap());
        assert_eq!(&out[..3], &[5, 1, 2]);
        assert!(!parse_fixed(b"fw1:6,1,2,3,4", b"fw1", 2, 1, &mut out).unwrap());
        assert_eq!(out[0], 6);
        let long = format!("fw1:7,{}", vec!["1"; 40].join(","));
        assert!(!parse_fixed(long.as_bytes(), b"fw1", 2, 1, &mut out).unwrap());
        assert_eq!(out[0], 7);
        let bad = format!("fw1:7,{},x", vec!["1"; 40].join(","));
        assert!(parse_fixed(bad.as_bytes(), b"fw1", 2, 1, &mut out).is_err());
    }
}
