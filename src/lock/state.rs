//! The stored state of one lock, its encoding, and lock tokens.
//!
//! One value per resource holds everything: the last fencing token issued,
//! the holder's token and when the hold ends. Both faces (Rust and Lua)
//! read and write the same text:
//!
//! ```text
//! 1|<fence>|<expires_at_us>|<holder>
//! ```
//!
//! * `1` is the encoding version;
//! * `<fence>` the last fencing token issued (decimal, at most 2^53 - 1);
//! * `<expires_at_us>` when the hold ends, in microseconds since the epoch
//!   (decimal, at most 2^53 - 1; `0` when free);
//! * `<holder>` the holder's token as 32 lowercase hex digits, or empty
//!   when nobody holds the lock.
//!
//! A held lock whose `expires_at_us` has passed is free. Anything else is
//! [`ErrorKind::CorruptData`](crate::ErrorKind::CorruptData).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::{rt, Error, Result, MAX_TTL};

/// The largest integer both faces represent exactly (Lua numbers are doubles).
pub(crate) const MAX_SAFE: u64 = (1 << 53) - 1;

/// How many random bytes a [`LockToken`] holds (128 bits).
pub const TOKEN_BYTES: usize = 16;

/// Hex digits of a token as stored.
const TOKEN_HEX: usize = TOKEN_BYTES * 2;

pub use crate::rt::constant_time_eq;

/// The secret that proves who holds a lock: 128 random bits from the
/// operating system's CSPRNG.
///
/// Only the holder of the token can release or extend the lock. It is
/// compared in constant time and never shown by `Debug` or in errors; keep
/// it as secret as a session id. [`as_hex`](LockToken::as_hex) and
/// [`from_hex`](LockToken::from_hex) carry it to another process that must
/// release the lock.
///
/// ```
/// use rampart::lock::LockToken;
/// let token = LockToken::random()?;
/// assert_eq!(format!("{token:?}"), "LockToken(..)");
/// assert_eq!(LockToken::from_hex(token.as_hex())?, token);
/// # Ok::<(), rampart::Error>(())
/// ```
#[derive(Clone)]
pub struct LockToken {
    /// Lowercase hex, the form stored and sent to scripts.
    hex: [u8; TOKEN_HEX],
}

impl LockToken {
    /// A fresh random token.
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) if the
    /// system random number generator fails.
    pub fn random() -> Result<Self> {
        Ok(Self::from_bytes(rt::random_bytes::<TOKEN_BYTES>()?))
    }

    /// A token from its 16 bytes.
    pub fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; TOKEN_HEX];
        for (i, b) in bytes.iter().enumerate() {
            hex[2 * i] = DIGITS[usize::from(b >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        Self { hex }
    }

    /// A token from the text [`as_hex`](LockToken::as_hex) gave.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless
    /// `text` is 32 hex digits (either case). The message never repeats
    /// the text.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != TOKEN_HEX || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return Err(Error::invalid_input("a lock token is 32 hex digits"));
        }
        let mut hex = [0u8; TOKEN_HEX];
        for (out, b) in hex.iter_mut().zip(bytes) {
            *out = b.to_ascii_lowercase();
        }
        Ok(Self { hex })
    }

    /// The token as 32 lowercase hex digits. A secret: do not log it.
    pub fn as_hex(&self) -> &str {
        // Built only from ASCII hex digits.
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }

    pub(crate) fn hex_bytes(&self) -> &[u8] {
        &self.hex
    }
}

impl PartialEq for LockToken {
    /// Constant time (see [`constant_time_eq`]).
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.hex, &other.hex)
    }
}

impl Eq for LockToken {}

impl fmt::Debug for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockToken(..)")
    }
}

/// One decoded lock state (see the module docs for the encoding).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockState<'a> {
    /// The last fencing token issued (0 = none yet).
    pub fence: u64,
    /// When the hold ends, µs since the epoch (0 when free).
    pub expires_at: u64,
    /// The holder's token in hex; `None` when free.
    pub holder: Option<&'a [u8]>,
}

impl fmt::Debug for LockState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockState")
            .field("fence", &self.fence)
            .field("expires_at", &self.expires_at)
            .field("held", &self.holder.is_some())
            .finish()
    }
}

fn corrupt() -> Error {
    Error::corrupt("the value is not a rampart lock state (version 1)")
}

fn parse_number(field: &[u8]) -> Result<u64> {
    // Digits only (no sign, no spaces), as the Lua pattern `%d+` accepts.
    if field.is_empty() || field.len() > 16 || !field.iter().all(u8::is_ascii_digit) {
        return Err(corrupt());
    }
    let n = field.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if n > MAX_SAFE {
        return Err(corrupt());
    }
    Ok(n)
}

impl<'a> LockState<'a> {
    /// The state of a resource never locked (or whose state was dropped).
    pub const NEW: LockState<'static> = LockState {
        fence: 0,
        expires_at: 0,
        holder: None,
    };

    /// Decodes a stored state; anything else is `CorruptData`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        let mut fields = bytes.split(|&b| b == b'|');
        let (Some(version), Some(fence), Some(expires), Some(holder), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(corrupt());
        };
        if version != b"1" {
            return Err(corrupt());
        }
        let fence = parse_number(fence)?;
        let expires_at = parse_number(expires)?;
        let holder = match holder.len() {
            0 => None,
            TOKEN_HEX
                if holder
                    .iter()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                Some(holder)
            }
            _ => return Err(corrupt()),
        };
        Ok(Self {
            fence,
            expires_at,
            holder,
        })
    }

    /// Decodes `None` (missing) as [`LockState::NEW`].
    pub fn decode_opt(bytes: Option<&'a [u8]>) -> Result<Self> {
        bytes.map_or(Ok(LockState::NEW), LockState::decode)
    }

    /// The encoded state.
    pub fn encode(&self) -> Bytes {
        let holder = self.holder.unwrap_or_default();
        let mut out = Vec::with_capacity(40 + holder.len());
        out.extend_from_slice(format!("1|{}|{}|", self.fence, self.expires_at).as_bytes());
        out.extend_from_slice(holder);
        Bytes::from(out)
    }

    /// Whether someone holds the lock at `now`.
    pub fn is_held(&self, now: u64) -> bool {
        self.holder.is_some() && self.expires_at > now
    }

    /// Whether `token` holds the lock at `now` (constant-time comparison).
    pub fn is_held_by(&self, token: &LockToken, now: u64) -> bool {
        match self.holder {
            Some(holder) => constant_time_eq(holder, token.hex_bytes()) && self.expires_at > now,
            None => false,
        }
    }

    /// The fencing token for the next acquisition at `now`:
    /// `max(last + 1, now_µs)`.
    ///
    /// Within the state's life this is the last one plus at least one;
    /// seeded from the clock, it also stays above every token issued
    /// before the state was dropped (its retention ran out, or the store
    /// lost it) as long as the clock moved past the last token issued.
    pub fn next_fence(&self, now: u64) -> Result<u64> {
        let fence = (self.fence + 1).max(now);
        if fence > MAX_SAFE {
            return Err(out_of_range());
        }
        Ok(fence)
    }
}

fn out_of_range() -> Error {
    Error::invalid_input("the clock or fencing token is beyond 2^53 microseconds")
}

/// `now + ttl` in µs, within the range both faces represent exactly.
pub(crate) fn deadline(now: u64, ttl_us: u64) -> Result<u64> {
    match now.checked_add(ttl_us) {
        Some(t) if t <= MAX_SAFE => Ok(t),
        _ => Err(out_of_range()),
    }
}

/// A TTL in whole microseconds (a TTL checked by `check_ttl` is far below
/// 2^53 µs).
pub(crate) fn micros(d: Duration) -> u64 {
    crate::duration_micros(d)
}

/// The TTL of the stored state key: the hold (`hold`, zero when released)
/// plus the fence retention, rounded up to whole milliseconds (Redis `PX`)
/// and capped at [`MAX_TTL`]. `None` = keep the state forever. In
/// milliseconds, as the Lua twins receive it (`0` = forever).
pub(crate) fn state_ttl_ms(hold: Duration, retention: Option<Duration>) -> u64 {
    match retention {
        None => 0,
        Some(r) => {
            let total = hold.saturating_add(r).min(MAX_TTL);
            let rounded = total.as_nanos().div_ceil(1_000_000);
            u64::try_from(rounded.max(1)).unwrap_or(u64::MAX)
        }
    }
}

/// What acquire and extend both carry: whose hold, for how long, and how
/// long the state key lives (the hold plus the fence retention).
#[derive(Debug, Clone)]
pub(crate) struct Hold {
    pub(crate) token: LockToken,
    pub(crate) ttl_us: u64,
    pub(crate) state_ttl_ms: u64,
}

impl Hold {
    /// Checks `ttl` and `fence_retention` (`None` = keep the state forever).
    pub(crate) fn new(
        token: LockToken,
        ttl: Duration,
        fence_retention: Option<Duration>,
    ) -> crate::Result<Self> {
        crate::check_ttl(Some(ttl))?;
        crate::check_ttl(fence_retention)?;
        Ok(Self {
            token,
            ttl_us: micros(ttl),
            state_ttl_ms: state_ttl_ms(ttl, fence_retention),
        })
    }

    /// The Lua twins' `ARGV`: token, hold (µs), state TTL (ms), then `now`.
    pub(crate) fn script_args(&self, now: Option<crate::Timestamp>) -> Vec<crate::Arg> {
        let mut args = vec![
            crate::Arg::from(self.token.as_hex()),
            crate::Arg::from(self.ttl_us),
            crate::Arg::from(self.state_ttl_ms),
        ];
        args.extend(super::script_now(now));
        args
    }
}

/// The state key TTL in the form [`crate::Change::Set`] wants.
pub(crate) fn state_ttl(ttl_ms: u64) -> Option<Duration> {
    (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn token_round_trips_and_hides() {
        let t = LockToken::from_bytes([0xab; TOKEN_BYTES]);
        assert_eq!(t.as_hex(), "ab".repeat(16));
        assert_eq!(LockToken::from_hex(&"AB".repeat(16)).unwrap(), t);
        assert_eq!(format!("{t:?}"), "LockToken(..)");
        let err = LockToken::from_hex("zz").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.to_string().contains("zz"));
        assert_ne!(LockToken::random().unwrap(), LockToken::random().unwrap());
    }

    #[test]
    fn state_round_trips() {
        let token = LockToken::from_bytes([7; TOKEN_BYTES]);
        let held = LockState {
            fence: 42,
            expires_at: 1_700_000_000_000_000,
            holder: Some(token.hex_bytes()),
        };
        let bytes = held.encode();
        assert_eq!(
            &bytes[..],
            format!("1|42|1700000000000000|{}", "07".repeat(16)).as_bytes()
        );
        assert_eq!(LockState::decode(&bytes).unwrap(), held);
        assert!(held.is_held_by(&token, 1));
        assert!(!held.is_held_by(&token, 1_700_000_000_000_000));
        let free = LockState {
            fence: 43,
            expires_at: 0,
            holder: None,
        };
        assert_eq!(&free.encode()[..], b"1|43|0|");
        assert_eq!(LockState::decode(b"1|43|0|").unwrap(), free);
        assert!(!free.is_held(0));
    }

    #[test]
    fn corrupt_states_are_typed_errors() {
        let hex = "a".repeat(32);
        for bad in [
            String::new(),
            "garbage".into(),
            "2|1|0|".into(),
            "1|1|0".into(),
            "1|1|0||".into(),
            "1|-1|0|".into(),
            "1| 1|0|".into(),
            "1||0|".into(),
            "1|1|0|abc".into(),
            format!("1|1|0|{}", "A".repeat(32)),
            format!("1|1|0|{}", "g".repeat(32)),
            format!("1|9007199254740992|0|{hex}"),
            format!("1|1|99999999999999999|{hex}"),
        ] {
            let err = LockState::decode(bad.as_bytes()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::CorruptData, "{bad:?}");
        }
        assert!(LockState::decode(b"\xff\x00|").is_err());
    }

    #[test]
    fn fences_follow_the_clock_and_never_repeat() {
        let s = LockState {
            fence: 10,
            ..LockState::NEW
        };
        assert_eq!(s.next_fence(5).unwrap(), 11);
        assert_eq!(s.next_fence(500).unwrap(), 500);
        let top = LockState {
            fence: MAX_SAFE,
            ..LockState::NEW
        };
        assert_eq!(
            top.next_fence(0).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn state_ttls_round_up_to_milliseconds() {
        let s = Duration::from_secs(1);
        assert_eq!(state_ttl_ms(s, None), 0);
        assert_eq!(state_ttl_ms(s, Some(s)), 2_000);
        assert_eq!(state_ttl_ms(Duration::from_micros(1), Some(s)), 1_001);
        assert_eq!(
            state_ttl_ms(Duration::ZERO, Some(Duration::from_micros(1))),
            1
        );
        assert_eq!(
            state_ttl_ms(MAX_TTL, Some(MAX_TTL)),
            MAX_TTL.as_millis() as u64
        );
        assert_eq!(state_ttl(0), None);
        assert_eq!(state_ttl(5), Some(Duration::from_millis(5)));
    }
}
