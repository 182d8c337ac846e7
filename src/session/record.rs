//! The stored form of a session, and the atomic operations on one record.
//!
//! One value per session, under `<namespace>:s:<handle>`:
//!
//! ```text
//! 1|<created>|<last_seen>|<expires>|<absolute>|<body>
//! ```
//!
//! * `1` is the encoding version;
//! * the four times are microseconds since the epoch (decimal, at most
//!   2^53 - 1, so the Lua twin computes them exactly): when the session was
//!   created, when it was last renewed, when it dies unless renewed again
//!   (`expires`), and the absolute cap no renewal passes (`absolute`);
//! * `<body>` is JSON, opaque to the scripts:
//!   `{"u": user id, "ip": ..., "ua": ..., "d": the application's data}`.
//!
//! The header is all the scripts read, so they never parse JSON. Anything
//! that does not match is [`ErrorKind::CorruptData`](crate::ErrorKind::CorruptData).

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Arg, AtomicOp, Change, Error, Result, Script, Timestamp, Value};

/// The largest integer both faces represent exactly (Lua numbers are doubles).
pub(crate) const MAX_SAFE: u64 = (1 << 53) - 1;

static TOUCH: Script = Script::new(lua!("session/record.lua"));
static TAKE: Script = Script::new(lua!("session/take.lua"));

/// A decimal field as both faces accept it: 1 to 16 digits, at most 2^53 - 1.
pub(crate) fn parse_num(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(text).ok()?.parse::<u64>().ok()?;
    (n <= MAX_SAFE).then_some(n)
}

/// Splits `bytes` into `N` fields ended by `|` and the rest.
pub(crate) fn split_fields<const N: usize>(bytes: &[u8]) -> Option<([&[u8]; N], &[u8])> {
    let mut fields = [&bytes[..0]; N];
    let mut rest = bytes;
    for field in &mut fields {
        let end = rest.iter().position(|&b| b == b'|')?;
        *field = &rest[..end];
        rest = &rest[end + 1..];
    }
    Some((fields, rest))
}

/// `now` for a script: the caller's time, or `''` for the server's `TIME`.
pub(crate) fn now_arg(now: Option<Timestamp>) -> Arg {
    match now {
        Some(t) => Arg::from(t.as_micros()),
        None => Arg::Str(String::new()),
    }
}

/// A TTL that ends at `deadline` (at least 1 µs).
pub(crate) fn ttl_until(deadline: u64, now: u64) -> Duration {
    Duration::from_micros(deadline.saturating_sub(now).max(1))
}

/// The times of a session record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub created: u64,
    pub last_seen: u64,
    pub expires: u64,
    pub absolute: u64,
}

impl Header {
    /// Parses a record into its header and JSON body.
    pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8])> {
        let corrupt = || Error::corrupt("stored session record is not in rampart's format");
        let (fields, body) = split_fields::<5>(bytes).ok_or_else(corrupt)?;
        if fields[0] != b"1" {
            return Err(corrupt());
        }
        let num = |i: usize| parse_num(fields[i]).ok_or_else(corrupt);
        Ok((
            Header {
                created: num(1)?,
                last_seen: num(2)?,
                expires: num(3)?,
                absolute: num(4)?,
            },
            body,
        ))
    }

    /// The record with this header and `body`.
    pub fn encode(&self, body: &[u8]) -> Bytes {
        let mut out = format!(
            "1|{}|{}|{}|{}|",
            self.created, self.last_seen, self.expires, self.absolute
        )
        .into_bytes();
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    /// Renewed at `now`: seen now, alive for `idle_us` more, within the cap
    /// and never shorter than before.
    pub fn renewed(&self, now: u64, idle_us: u64) -> Header {
        let expires = now
            .saturating_add(idle_us)
            .min(self.absolute)
            .max(self.expires);
        Header {
            created: self.created,
            last_seen: self.last_seen.max(now),
            expires,
            absolute: self.absolute,
        }
    }
}

/// The JSON body of a record, as written.
#[derive(Serialize)]
pub(crate) struct BodyRef<'a, T: ?Sized> {
    pub u: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ua: Option<&'a str>,
    pub d: &'a T,
}

/// The JSON body of a record, as read.
#[derive(Deserialize)]
pub(crate) struct Body<T> {
    pub u: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub ua: Option<String>,
    pub d: T,
}

impl<T: serde::de::DeserializeOwned> Body<T> {
    /// Decodes a body; anything else is `CorruptData`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::corrupt("stored session data does not decode as the expected type")
                .with_source(e)
        })
    }
}

/// What [`TouchRecord`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// No record, or it has expired.
    Missing,
    /// A live record, left as it was (renewed less than the touch interval ago).
    Live(Bytes),
    /// A live record, renewed: the record as now stored.
    Renewed(Bytes),
}

/// Reads a session record and, with rolling expiry, renews it: one atomic
/// step. Twin: `record.lua`.
///
/// A live record last renewed at least `touch` ago gets `last_seen = now`
/// and `expires = min(now + idle, absolute)` (never earlier than before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TouchRecord {
    idle_us: u64,
    touch_us: u64,
}

impl TouchRecord {
    /// Renew by `idle`, at most once per `touch`.
    pub fn new(idle: Duration, touch: Duration) -> Self {
        Self {
            idle_us: crate::duration_micros(idle).min(MAX_SAFE),
            touch_us: crate::duration_micros(touch).min(MAX_SAFE),
        }
    }
}

impl AtomicOp for TouchRecord {
    type Output = Touched;

    fn script(&self) -> &'static Script {
        &TOUCH
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, Touched)> {
        let Some(bytes) = state else {
            return Ok((Change::Keep, Touched::Missing));
        };
        let now = now.as_micros();
        let (header, body) = Header::parse(bytes)?;
        if header.expires <= now {
            return Ok((Change::Keep, Touched::Missing));
        }
        if now < header.last_seen.saturating_add(self.touch_us) {
            return Ok((Change::Keep, Touched::Live(Bytes::copy_from_slice(bytes))));
        }
        let renewed = header.renewed(now, self.idle_us);
        let value = renewed.encode(body);
        let change = Change::Set {
            value: value.clone(),
            ttl: Some(ttl_until(renewed.expires, now)),
        };
        Ok((change, Touched::Renewed(value)))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        vec![
            Arg::from(self.idle_us),
            Arg::from(self.touch_us),
            now_arg(now),
        ]
    }

    fn decode_reply(&self, reply: Value) -> Result<Touched> {
        let mut items = reply.into_array()?.into_iter();
        let code = items
            .next()
            .ok_or_else(|| Error::backend("empty reply from the session touch script"))?
            .as_int()?;
        let mut record = || {
            items
                .next()
                .map(Value::into_bytes)
                .transpose()
                .map(Option::flatten)
                .and_then(|b| {
                    b.ok_or_else(|| Error::backend("the session touch script returned no record"))
                })
        };
        match code {
            0 => Ok(Touched::Missing),
            1 => Ok(Touched::Live(record()?)),
            2 => Ok(Touched::Renewed(record()?)),
            -1 => Err(Error::corrupt(
                "stored session record is not in rampart's format",
            )),
            _ => Err(Error::backend(
                "unexpected reply from the session touch script",
            )),
        }
    }
}

/// Reads and deletes a value in one atomic step (`GETDEL`, also on Redis
/// 6.0). Twin: `take.lua`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TakeRecord;

impl AtomicOp for TakeRecord {
    type Output = Option<Bytes>;

    fn script(&self) -> &'static Script {
        &TAKE
    }

    fn apply(&self, state: Option<&[u8]>, _now: Timestamp) -> Result<(Change, Option<Bytes>)> {
        Ok(match state {
            Some(bytes) => (Change::Remove, Some(Bytes::copy_from_slice(bytes))),
            None => (Change::Keep, None),
        })
    }

    fn script_args(&self, _now: Option<Timestamp>) -> Vec<Arg> {
        Vec::new()
    }

    fn decode_reply(&self, reply: Value) -> Result<Option<Bytes>> {
        reply.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(h: Header) -> Bytes {
        h.encode(br#"{"u":"alice","d":1}"#)
    }

    #[test]
    fn header_round_trip_and_corruption() {
        let h = Header {
            created: 1,
            last_seen: 2,
            expires: 3,
            absolute: 4,
        };
        let bytes = record(h);
        let (back, body) = Header::parse(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(body, br#"{"u":"alice","d":1}"#);
        for bad in [
            &b""[..],
            b"2|1|2|3|4|{}",
            b"1|1|2|3|{}",
            b"1|1|2|x|4|{}",
            b"1|1|2|99999999999999999|4|{}",
            b"1|1|2|9007199254740992|4|{}",
            b"1||2|3|4|{}",
        ] {
            let err = Header::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::CorruptData);
        }
    }

    #[test]
    fn touch_renews_within_the_cap() {
        let op = TouchRecord::new(Duration::from_micros(100), Duration::ZERO);
        let h = Header {
            created: 0,
            last_seen: 0,
            expires: 100,
            absolute: 250,
        };
        let (change, out) = op
            .apply(Some(&record(h)), Timestamp::from_micros(50))
            .unwrap();
        let Touched::Renewed(v) = out else {
            panic!("not renewed")
        };
        assert_eq!(Header::parse(&v).unwrap().0.expires, 150);
        assert!(
            matches!(change, Change::Set { ttl: Some(d), .. } if d == Duration::from_micros(100))
        );
        let (_, out) = op.apply(Some(&v), Timestamp::from_micros(140)).unwrap();
        let Touched::Renewed(v) = out else {
            panic!("not renewed")
        };
        assert_eq!(Header::parse(&v).unwrap().0.expires, 240);
        // The absolute cap wins over the rolling expiry.
        let (_, out) = op.apply(Some(&v), Timestamp::from_micros(200)).unwrap();
        let Touched::Renewed(v) = out else {
            panic!("not renewed")
        };
        let h = Header::parse(&v).unwrap().0;
        assert_eq!((h.expires, h.last_seen, h.created), (250, 200, 0));
        let (change, out) = op.apply(Some(&v), Timestamp::from_micros(250)).unwrap();
        assert_eq!((change, out), (Change::Keep, Touched::Missing));
        assert_eq!(
            op.apply(None, Timestamp::EPOCH).unwrap(),
            (Change::Keep, Touched::Missing)
        );
    }

    #[test]
    fn touch_interval_skips_writes() {
        let op = TouchRecord::new(Duration::from_micros(100), Duration::from_micros(10));
        let h = Header {
            created: 0,
            last_seen: 0,
            expires: 100,
            absolute: 1_000,
        };
        let (change, out) = op
            .apply(Some(&record(h)), Timestamp::from_micros(9))
            .unwrap();
        assert_eq!(change, Change::Keep);
        assert!(matches!(out, Touched::Live(_)));
        let (_, out) = op
            .apply(Some(&record(h)), Timestamp::from_micros(10))
            .unwrap();
        assert!(matches!(out, Touched::Renewed(_)));
    }

    #[test]
    fn take_removes() {
        let (change, out) = TakeRecord.apply(Some(b"v"), Timestamp::EPOCH).unwrap();
        assert_eq!(change, Change::Remove);
        assert_eq!(out.as_deref(), Some(&b"v"[..]));
        assert_eq!(
            TakeRecord.apply(None, Timestamp::EPOCH).unwrap(),
            (Change::Keep, None)
        );
    }
}
