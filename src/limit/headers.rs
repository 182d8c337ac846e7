//! HTTP headers from a [`Decision`], framework-neutral: a list of
//! `(name, value)` pairs in the formats express-rate-limit emits.
//!
//! * [`HeaderStyle::Legacy`]: `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
//!   `X-RateLimit-Reset` (Unix seconds when the window resets). Unlike
//!   express-rate-limit it does not add a `Date` header: servers do.
//! * [`HeaderStyle::Draft6`]: `RateLimit-Policy: 100;w=60`,
//!   `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds).
//! * [`HeaderStyle::Draft7`]: `RateLimit-Policy: 100;w=60` and
//!   `RateLimit: limit=100, remaining=99, reset=60`.
//! * [`HeaderStyle::Draft8`]: `RateLimit-Policy: "100-in-1min"; q=100; w=60`
//!   and `RateLimit: "100-in-1min"; r=99; t=60`, one list item per tier of
//!   the rule; with a partition key, `; pk=:…:` as express-rate-limit
//!   derives it (base64 of the first 12 hex digits of its SHA-256).
//!
//! Every style adds `Retry-After` (whole seconds, rounded up) to a denial.
//! Times are rounded up to whole seconds; the windows of draft-6/7 and the
//! figures of legacy headers are those of the binding tier.

use std::fmt::Write as _;
use std::time::Duration;

use super::Decision;
#[cfg(test)]
use super::TierStatus;

/// Which header format to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderStyle {
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
    Legacy,
    /// IETF draft 6: `RateLimit-Policy` and `RateLimit-Limit/Remaining/Reset`.
    Draft6,
    /// IETF draft 7: `RateLimit-Policy` and a combined `RateLimit`.
    Draft7,
    /// IETF draft 8: named quota policies in `RateLimit-Policy` and `RateLimit`.
    Draft8,
}

/// How to render headers: the style, draft-8 policy names and partition
/// key, and whether a denial gets `Retry-After`.
///
/// ```
/// use rampart::limit::{HeaderOptions, HeaderStyle};
/// let opts = HeaderOptions::new(HeaderStyle::Draft8)
///     .names(&["api"])
///     .partition_key("203.0.113.7");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HeaderOptions<'a> {
    style: HeaderStyle,
    names: &'a [&'a str],
    partition_key: Option<&'a str>,
    retry_after: bool,
}

impl<'a> HeaderOptions<'a> {
    /// Headers in `style`, with default names, no partition key, and
    /// `Retry-After` on denials.
    pub fn new(style: HeaderStyle) -> Self {
        Self {
            style,
            names: &[],
            partition_key: None,
            retry_after: true,
        }
    }
    /// Draft-8 policy names, one per tier; tiers without one get
    /// express-rate-limit's default (`100-in-1min`). Characters outside
    /// printable ASCII become `_`.
    pub fn names(mut self, names: &'a [&'a str]) -> Self {
        self.names = names;
        self
    }
    /// The client identifier draft-8 hashes into `pk` (omitted without one).
    pub fn partition_key(mut self, key: &'a str) -> Self {
        self.partition_key = Some(key);
        self
    }
    /// Whether a denial gets `Retry-After` (default: yes).
    pub fn retry_after(mut self, on: bool) -> Self {
        self.retry_after = on;
        self
    }
}

/// Whole seconds, rounded up (u64 arithmetic: u128 division is a library
/// call natively and software on wasm32).
#[inline]
pub(crate) fn secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// The policy a tier announces: `(quota, window)`, the window in whole
/// seconds as the drafts have it. A window under a second (a fast token
/// bucket's refill time, a sub-second quota) is scaled up, quota and
/// window alike, to the first multiple of at least a second: rounding
/// 1 per 100 ms up to "1 per second" would tell clients a tenth of the
/// real rate; "10 per second" is that rate. (express-rate-limit only
/// rounds the window up.)
fn announced(limit: u64, window: Duration) -> (u64, u64, Duration) {
    const SECOND_NS: u64 = 1_000_000_000;
    let ns = window.as_nanos();
    if window.is_zero() || ns >= u128::from(SECOND_NS) {
        return (limit, secs(window), window);
    }
    // ns < 1e9 here, so k <= 1e9 and ns * k < 2e9.
    let ns = ns as u64;
    let k = SECOND_NS.div_ceil(ns);
    let scaled = Duration::from_nanos(ns * k);
    (limit.saturating_mul(k), secs(scaled), scaled)
}

impl Decision {
    /// The headers for this decision in `style` (see [`HeaderOptions`] for
    /// names, a partition key, or no `Retry-After`).
    ///
    /// ```
    /// use rampart::limit::{HeaderStyle, LimitOp, Operation, Quota, Rule};
    /// use rampart::{AtomicOp, Timestamp};
    /// let rule = Rule::fixed_window(Quota::per_minute(5))?;
    /// let op = LimitOp::new(&rule, Operation::Consume, 1)?;
    /// let (_, d) = op.apply(None, Timestamp::from_secs(1_200))?;
    /// assert_eq!(
    ///     d.headers(HeaderStyle::Draft7),
    ///     vec![
    ///         ("RateLimit-Policy", "5;w=60".to_owned()),
    ///         ("RateLimit", "limit=5, remaining=4, reset=60".to_owned()),
    ///     ]
    /// );
    /// # Ok::<(), rampart::Error>(())
    /// ```
    pub fn headers(&self, style: HeaderStyle) -> Vec<(&'static str, String)> {
        self.headers_with(&HeaderOptions::new(style))
    }

    /// The headers for this decision, rendered as `options` say.
    pub fn headers_with(&self, options: &HeaderOptions<'_>) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(5);
        let (remaining, reset) = (self.remaining, secs(self.reset_after));
        let (quota, window, _) = announced(self.limit, self.window);
        match options.style {
            HeaderStyle::Legacy => {
                let reset_at = self
                    .at
                    .as_micros()
                    .saturating_add(crate::duration_micros(self.reset_after))
                    .div_ceil(1_000_000);
                out.push(("X-RateLimit-Limit", self.limit.to_string()));
                out.push(("X-RateLimit-Remaining", remaining.to_string()));
                out.push(("X-RateLimit-Reset", reset_at.to_string()));
            }
            HeaderStyle::Draft6 => {
                out.push(("RateLimit-Policy", format!("{quota};w={window}")));
                out.push(("RateLimit-Limit", quota.to_string()));
                out.push(("RateLimit-Remaining", remaining.to_string()));
                out.push(("RateLimit-Reset", reset.to_string()));
            }
            HeaderStyle::Draft7 => {
                out.push(("RateLimit-Policy", format!("{quota};w={window}")));
                out.push((
                    "RateLimit",
                    format!("limit={quota}, remaining={remaining}, reset={reset}"),
                ));
            }
            HeaderStyle::Draft8 => {
                let pk = options.partition_key.map(partition_key);
                let mut policy = String::with_capacity(48);
                let mut state = String::with_capacity(40);
                for (i, tier) in self.tiers().enumerate() {
                    if i > 0 {
                        policy.push_str(", ");
                        state.push_str(", ");
                    }
                    let (q, w, scaled) = announced(tier.limit, tier.window);
                    // The name is written once, into the policy, and copied.
                    policy.push('"');
                    let start = policy.len();
                    match options.names.get(i) {
                        Some(n) => push_sf_string(&mut policy, n),
                        None => push_default_name(&mut policy, q, scaled),
                    }
                    state.push('"');
                    state.push_str(&policy[start..]);
                    let _ = write!(policy, "\"; q={q}; w={w}");
                    if let Some(pk) = &pk {
                        let _ = write!(policy, "; pk=:{pk}:");
                    }
                    let _ = write!(
                        state,
                        "\"; r={}; t={}",
                        tier.remaining,
                        secs(tier.reset_after)
                    );
                }
                out.push(("RateLimit-Policy", policy));
                out.push(("RateLimit", state));
            }
        }
        if options.retry_after {
            if let Some(retry) = self.retry_after.filter(|_| !self.allowed) {
                out.push(("Retry-After", secs(retry).to_string()));
            }
        }
        out
    }
}

/// express-rate-limit's default draft-8 name: `{limit}-in-{duration}`,
/// the duration in the largest unit under which it stays below the next
/// (`5sec`, `1.5min`, `1hr`, `2hrs`, `1day`, `2days`), written to `out`.
fn push_default_name(out: &mut String, limit: u64, window: Duration) {
    let ms = window.as_nanos() as f64 / 1e6;
    let (seconds, minutes, hours, days) = (
        ms / 1_000.0,
        ms / 60_000.0,
        ms / 3_600_000.0,
        ms / 86_400_000.0,
    );
    let (amount, unit, plural) = if seconds < 60.0 {
        (seconds, "sec", false)
    } else if minutes < 60.0 {
        (minutes, "min", false)
    } else if hours < 24.0 {
        (hours, "hr", hours > 1.0)
    } else {
        (days, "day", days > 1.0)
    };
    let _ = write!(out, "{limit}-in-");
    // A whole amount as an integer: what `f64`'s `Display` prints for it,
    // without the float formatter (the common windows are whole).
    if amount.fract() == 0.0 && amount < 9_007_199_254_740_992.0 {
        let _ = write!(out, "{}", amount as u64);
    } else {
        let _ = write!(out, "{amount}");
    }
    out.push_str(unit);
    if plural {
        out.push('s');
    }
}

/// The default name alone (tests).
#[cfg(test)]
fn default_name(tier: &TierStatus) -> String {
    let mut out = String::new();
    push_default_name(&mut out, tier.limit, tier.window);
    out
}

/// `text` as the inside of a structured-field string (tests).
#[cfg(test)]
fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_sf_string(&mut out, text);
    out
}

/// Writes `text` to `out` as the inside of a structured-field string.
fn push_sf_string(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
}

/// express-rate-limit's partition key: base64 of the first 12 hex digits
/// of SHA-256(key).
fn partition_key(key: &str) -> String {
    let digest = sha256(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    base64(&hex.as_bytes()[..12])
}

/// Standard base64 with padding.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// SHA-256 (FIPS 180-4), for the draft-8 partition key.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 32]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn seconds_round_up_like_the_exact_division() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(1),
            Duration::new(1, 1),
            Duration::new(59, 999_999_999),
            Duration::MAX,
        ] {
            let exact = u64::try_from(d.as_nanos().div_ceil(1_000_000_000)).unwrap_or(u64::MAX);
            assert_eq!(secs(d), exact, "{d:?}");
        }
    }

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(hex(sha256(&[b'a'; 1000])).len(), 64);
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn names_and_keys_match_express() {
        // From express-rate-limit's header tests (key "foo").
        assert_eq!(partition_key("foo"), "MmMyNmI0NmI2OGZm");
        let tier = |limit, secs| TierStatus {
            limit,
            window: Duration::from_secs(secs),
            ..TierStatus::default()
        };
        assert_eq!(default_name(&tier(1, 5)), "1-in-5sec");
        assert_eq!(default_name(&tier(5, 60)), "5-in-1min");
        assert_eq!(default_name(&tier(5, 90)), "5-in-1.5min");
        assert_eq!(default_name(&tier(6, 3_600)), "6-in-1hr");
        assert_eq!(default_name(&tier(5, 7_200)), "5-in-2hrs");
        assert_eq!(default_name(&tier(7, 86_400)), "7-in-1day");
        assert_eq!(default_name(&tier(8, 172_800)), "8-in-2days");
        assert_eq!(sf_string("a\"b\\c\u{e9}"), "a\\\"b\\\\c_");
    }
}
