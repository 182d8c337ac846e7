//! Fuzz target bodies: one `fn(&[u8])` per target, shared by the
//! cargo-fuzz crate in `fuzz/` and the stable corpus replay test
//! (`tests/fuzz_corpus.rs`). Not a public API (feature `fuzzing`).
//!
//! Each body decodes its input the way rampart decodes stored values,
//! script replies and user input. When decoding succeeds it encodes the
//! result again and asserts the round trip; when it fails it asserts a
//! typed error ([`ErrorKind`]). A panic is a bug in rampart.
//!
//! Most bodies read a few fixed bytes first (which rule, operation or
//! clock to use: see [`Input`]) and treat the rest as the stored value.
//! [`seeds`] builds valid inputs with the real encoders, for the seed
//! corpora in `fuzz/corpus/`.

use std::time::Duration;

use bytes::Bytes;

use crate::cache::envelope::{Envelope, NewEntry};
use crate::cache::{tags, tier};
use crate::limit::{
    reencode_state, Algorithm, Decision, HeaderOptions, HeaderStyle, LimitOp, Operation, Quota,
    Rule, MAX_TIERS,
};
use crate::lock::{
    Acquire, AcquireOp, Extend, ExtendOp, InspectOp, LockState, LockToken, Release, ReleaseOp,
};
use crate::session::ops::{
    FamilyAction, FamilyOp, FamilyStatus, IndexAction, IndexEntry, IndexOp, TakeRecord,
    TouchRecord, Touched,
};
use crate::session::{
    decode_index, encode_index, Family, RecordBody as Body, RecordHeader as Header, RefreshToken,
    SessionHandle, SessionId,
};
use crate::LocalChange;
use crate::{
    escape_glob, glob_match, validate_prefix, AtomicOp, Change, Codec, ErrorKind, Json, Key,
    MsgPack, Result, Timestamp, Value, MAX_KEY_LEN, MAX_TTL,
};

/// A target body.
pub type Target = fn(&[u8]);

/// Every target of the core crate: (name, body). The name is the cargo-fuzz
/// target and the corpus folder (`fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("limit_state", limit_state),
    ("limit_headers", limit_headers),
    ("script_replies", script_replies),
    ("session_state", session_state),
    ("tokens", tokens),
    ("lock_state", lock_state),
    ("cache_envelope", cache_envelope),
    ("keys", keys),
    ("small_codecs", small_codecs),
];

/// Targets whose bodies live in other crates (replayed by their own
/// tests): `rampart-redis` has `redis_config_url`.
pub const EXTERNAL_TARGETS: &[&str] = &["redis_config_url"];

/// The largest clock reading the limiters accept (2^52 µs).
const MAX_LIMIT_NOW: u64 = 1 << 52;
/// The largest time the session and lock encodings hold (2^53 - 1 µs).
const MAX_SAFE: u64 = (1 << 53) - 1;

/// Reads fixed-size fields off the front of a fuzz input; past its end
/// every field reads as zero, so any input is usable.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
    /// `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }
    /// One byte.
    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }
    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let src = self.bytes(2);
        b[..src.len()].copy_from_slice(src);
        u16::from_le_bytes(b)
    }
    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let src = self.bytes(4);
        b[..src.len()].copy_from_slice(src);
        u32::from_le_bytes(b)
    }
    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let src = self.bytes(8);
        b[..src.len()].copy_from_slice(src);
        u64::from_le_bytes(b)
    }
    /// A string of at most `max` bytes (a length byte, then the bytes,
    /// invalid UTF-8 replaced).
    pub fn string(&mut self, max: usize) -> String {
        let n = usize::from(self.u8()) % (max + 1);
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }
    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Writes the fields [`Input`] reads, to build seeds.
#[derive(Default)]
pub struct Seed(Vec<u8>);

impl Seed {
    /// One byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    /// Two bytes.
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Four bytes.
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Eight bytes.
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A length-prefixed string.
    pub fn string(mut self, s: &str) -> Self {
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    /// Raw bytes (the rest of the input).
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// The input.
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

#[track_caller]
fn expect_kind<T>(r: &Result<T>, kinds: &[ErrorKind]) {
    if let Err(e) = r {
        assert!(
            kinds.contains(&e.kind()),
            "unexpected error kind {:?} (allowed {kinds:?}): {e}",
            e.kind()
        );
    }
}

const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::TokenBucket,
    Algorithm::SlidingLog,
    Algorithm::SlidingWindow,
    Algorithm::FixedWindow,
];

/// A rule from the input: 1 byte (algorithm, tiers, block flag), then per
/// tier 2 bytes limit, 4 bytes window in ms, 1 byte burst; then 2 bytes
/// block in ms when flagged. `None` when the rule is invalid (asserted to
/// be a `Config` error).
fn rule(inp: &mut Input<'_>) -> Option<Rule> {
    let b = inp.u8();
    let algorithm = ALGORITHMS[usize::from(b % 4)];
    let tiers = 1 + usize::from(b >> 2) % MAX_TIERS;
    let mut builder = Rule::builder(algorithm);
    for _ in 0..tiers {
        let limit = u64::from(inp.u16());
        let window = Duration::from_millis(u64::from(inp.u32()));
        let burst = inp.u8();
        let mut quota = Quota::new(limit, window);
        if burst > 0 && algorithm == Algorithm::TokenBucket {
            quota = quota.with_burst(u64::from(burst));
        }
        builder = builder.quota(quota);
    }
    if b & 0x80 != 0 {
        builder = builder.block_for(Duration::from_millis(u64::from(inp.u16())));
    }
    let built = builder.build();
    expect_kind(&built, &[ErrorKind::Config]);
    built.ok()
}

fn seed_rule(algorithm: u8, tiers: &[(u16, u32)], block_ms: Option<u16>) -> Seed {
    let b =
        algorithm | (((tiers.len() as u8) - 1) << 2) | if block_ms.is_some() { 0x80 } else { 0 };
    let mut s = Seed::default().u8(b);
    for &(limit, window_ms) in tiers {
        s = s.u16(limit).u32(window_ms).u8(0);
    }
    if let Some(ms) = block_ms {
        s = s.u16(ms);
    }
    s
}

const OPERATIONS: [Operation; 5] = [
    Operation::Consume,
    Operation::Check,
    Operation::Refund,
    Operation::Penalty,
    Operation::Block,
];

/// Checks what every decision promises and that its headers render.
fn check_decision(d: &Decision, names: &[&str], partition_key: Option<&str>) {
    assert!(d.remaining <= d.limit, "remaining above the limit: {d:?}");
    assert_eq!(d.allowed, d.retry_after.is_none(), "{d:?}");
    for style in [
        HeaderStyle::Legacy,
        HeaderStyle::Draft6,
        HeaderStyle::Draft7,
        HeaderStyle::Draft8,
    ] {
        let mut options = HeaderOptions::new(style).names(names);
        if let Some(pk) = partition_key {
            options = options.partition_key(pk);
        }
        for (name, value) in d.headers_with(&options) {
            assert!(!name.is_empty());
            assert!(
                !value.is_empty() && value.bytes().all(|b| (b' '..=b'~').contains(&b)),
                "header {name} is not a visible-ASCII value: {value:?}"
            );
            if name == "Retry-After" {
                assert!(!d.allowed);
                value.parse::<u64>().expect("Retry-After is whole seconds");
            }
        }
    }
}

/// Rate-limit state decoding: a rule, an operation, an amount and a clock
/// from the input, the rest as the stored state. A state that decodes is
/// re-encoded identically after one round; a state a step writes decodes
/// again and encodes to the same bytes; anything else is `CorruptData`.
pub fn limit_state(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(rule) = rule(&mut inp) else { return };
    let sel = inp.u8();
    let operation = OPERATIONS[usize::from(sel % 5)];
    let amount = match (sel >> 3) % 4 {
        0 => u64::from(inp.u8()),
        1 => u64::from(inp.u16()),
        2 => u64::from(inp.u32()),
        _ => inp.u64(),
    };
    let now = inp.u64() % (MAX_LIMIT_NOW + 2);
    let state = if sel & 0x80 != 0 {
        None
    } else {
        Some(inp.rest())
    };
    let op = match LimitOp::new(&rule, operation, amount) {
        Ok(op) => op,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            return;
        }
    };
    let at = Timestamp::from_micros(now);
    let (change, decision) = match op.apply(state, at) {
        Ok(r) => r,
        Err(e) => {
            if now > MAX_LIMIT_NOW {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            } else {
                assert_eq!(e.kind(), ErrorKind::CorruptData, "{e}");
                assert!(state.is_some(), "a missing state cannot be corrupt");
                assert!(reencode_state(&rule, state.unwrap_or_default()).is_err());
            }
            return;
        }
    };
    // The in-process face (binary state, written in place) decides alike
    // and writes the same state in its own form.
    let mut local = Decision::EMPTY;
    let local_change = op
        .apply_local(state, at, &mut local)
        .expect("the in-process face accepts what the shared face accepts");
    assert_eq!(local, decision, "the two forms decide differently");
    match (&change, &local_change) {
        (Change::Set { value, ttl }, LocalChange::Set { value: v2, ttl: t2 }) => {
            assert_eq!(ttl, t2, "the two forms set different TTLs");
            let text = reencode_state(&rule, v2).expect("a binary state decodes");
            assert_eq!(&text, value, "the two forms store different states");
        }
        (Change::Keep, LocalChange::Keep) | (Change::Remove, LocalChange::Remove) => {}
        (a, b) => panic!("the two forms write differently: {a:?} vs {b:?}"),
    }
    if let Some(raw) = state {
        let once = reencode_state(&rule, raw).expect("a state a step accepted decodes");
        let twice = reencode_state(&rule, &once).expect("a re-encoded state decodes");
        assert_eq!(once, twice, "re-encoding is not stable");
    }
    match change {
        Change::Set { value, ttl } => {
            let ttl = ttl.expect("rate-limit states always expire");
            assert!(!ttl.is_zero() && ttl <= MAX_TTL, "ttl {ttl:?}");
            let again = reencode_state(&rule, &value).expect("a written state decodes");
            assert_eq!(again, value, "a written state does not round-trip");
            let check = LimitOp::new(&rule, Operation::Check, 1).expect("cost 1 is valid");
            let (keep, _) = check
                .apply(Some(&value), at)
                .expect("a written state reads back");
            assert_eq!(keep, Change::Keep, "a check never writes");
        }
        Change::Remove => assert!(state.is_some(), "removed a missing state"),
        Change::Keep => {}
        Change::SetKeepTtl(_) => panic!("rate-limit steps always set a TTL"),
    }
    check_decision(&decision, &[], None);
}

/// Header rendering: a rule, then the integers of a script reply (allowed,
/// now, blocked-until, three per tier: arbitrary numbers, as a hostile
/// reply would carry), then draft-8 names and a partition key. Every
/// header value is visible ASCII.
pub fn limit_headers(data: &[u8]) {
    let mut inp = Input::new(data);
    let Some(rule) = rule(&mut inp) else { return };
    let op = LimitOp::new(&rule, Operation::Check, 1).expect("cost 1 is valid");
    let n = rule.quotas().len();
    let mut items = Vec::with_capacity(3 + 3 * n);
    items.push(Value::Int(i64::from(inp.u8() & 1)));
    for _ in 0..2 + 3 * n {
        let v = inp.u64() >> (inp.u8() % 64);
        items.push(Value::Int(i64::try_from(v).unwrap_or(i64::MAX)));
    }
    let names: Vec<String> = (0..n).map(|_| inp.string(32)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pk = inp.string(64);
    let decision = op
        .decode_reply(Value::Array(items))
        .expect("a well-shaped reply of non-negative integers decodes");
    assert_eq!(decision.tiers().len(), n);
    check_decision(&decision, &names, (!pk.is_empty()).then_some(pk.as_str()));
}

/// A script reply from the input: any shape, any depth up to 4.
fn value(inp: &mut Input<'_>, depth: u32) -> Value {
    match inp.u8() % 8 {
        0 => Value::Nil,
        1 => Value::Int(inp.u64() as i64),
        2 => Value::Int(i64::from(inp.u8()) - 4),
        3 => Value::Data(Bytes::copy_from_slice(inp.string(80).as_bytes())),
        4 => Value::Data(Bytes::from((i64::from(inp.u16() as i16)).to_string())),
        5 => Value::Status(inp.string(16)),
        6 | 7 if depth < 4 => {
            let n = usize::from(inp.u8() % 16);
            Value::Array((0..n).map(|_| value(inp, depth + 1)).collect())
        }
        _ => Value::Nil,
    }
}

const REPLY_ERRORS: &[ErrorKind] = &[
    ErrorKind::Backend,
    ErrorKind::CorruptData,
    ErrorKind::InvalidInput,
];

/// Script replies: a hostile or corrupt reply to any of the Lua twins
/// decodes to a typed error (`Backend`, or the error the script signals),
/// never a panic. One byte picks the operation; the rest is the reply.
pub fn script_replies(data: &[u8]) {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    let token = LockToken::from_bytes([7; 16]);
    let ttl = Duration::from_secs(30);
    match sel % 10 {
        0 => {
            let Some(rule) = rule(&mut inp) else { return };
            let op = LimitOp::new(&rule, Operation::Consume, 1).expect("cost 1 is valid");
            let r = op.decode_reply(value(&mut inp, 0));
            expect_kind(&r, REPLY_ERRORS);
            if let Ok(d) = r {
                assert_eq!(d.tiers().len(), rule.quotas().len());
                check_decision(&d, &[], None);
            }
        }
        1 => {
            let op = AcquireOp::new(token, ttl, None).expect("valid");
            let r = op.decode_reply(value(&mut inp, 0));
            expect_kind(&r, REPLY_ERRORS);
        }
        2 => {
            let op = ExtendOp::new(token, ttl, None).expect("valid");
            expect_kind(&op.decode_reply(value(&mut inp, 0)), REPLY_ERRORS);
        }
        3 => {
            let op = ReleaseOp::new(token, None).expect("valid");
            expect_kind(&op.decode_reply(value(&mut inp, 0)), REPLY_ERRORS);
        }
        4 => expect_kind(&InspectOp.decode_reply(value(&mut inp, 0)), REPLY_ERRORS),
        5 => {
            let op = TouchRecord::new(ttl, Duration::from_secs(1));
            expect_kind(&op.decode_reply(value(&mut inp, 0)), REPLY_ERRORS);
        }
        6 => expect_kind(&TakeRecord.decode_reply(value(&mut inp, 0)), REPLY_ERRORS),
        7 => {
            let op = IndexOp::new(IndexAction::List, ttl).expect("valid");
            let r = op.decode_reply(value(&mut inp, 0));
            expect_kind(&r, REPLY_ERRORS);
        }
        8 => {
            let op = FamilyOp::new(FamilyAction::Revoke).expect("valid");
            expect_kind(&op.decode_reply(value(&mut inp, 0)), REPLY_ERRORS);
        }
        _ => {
            // The raw reply helpers every decoder builds on.
            let v = value(&mut inp, 0);
            expect_kind(&v.as_int(), REPLY_ERRORS);
            expect_kind(&v.clone().into_bytes(), REPLY_ERRORS);
            expect_kind(&v.into_array(), REPLY_ERRORS);
        }
    }
}

/// base64url text from the input (valid handles most of the time).
fn handle(inp: &mut Input<'_>) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = inp.u8();
    if b == 0xff {
        return inp.string(8);
    }
    let n = 1 + usize::from(b % 8);
    inp.bytes(n)
        .iter()
        .map(|&c| char::from(ALPHABET[usize::from(c % 64)]))
        .collect::<String>()
        + "h"
}

/// A hash as the refresh-token family stores it (64 lowercase hex).
fn hash_hex(c: u8) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    std::iter::repeat_n(char::from(HEX[usize::from(c % 16)]), 64).collect()
}

/// Session and refresh-token records and the per-user index. One byte
/// picks the encoding and carries flags, then a clock and the operation's
/// figures; the rest is the stored value. A value that decodes encodes
/// back to an equal value; a value an operation writes decodes; anything
/// else is `CorruptData` (or `InvalidInput` for a bad operation).
pub fn session_state(data: &[u8]) {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    let now = inp.u64() % (MAX_SAFE + 1);
    let at = Timestamp::from_micros(now);
    match sel % 3 {
        0 => {
            let idle = Duration::from_micros(inp.u64() >> (sel % 64));
            let touch = Duration::from_micros(u64::from(inp.u32()));
            let raw = inp.rest();
            let parsed = Header::parse(raw);
            expect_kind(&parsed, &[ErrorKind::CorruptData]);
            if let Ok((header, body)) = &parsed {
                let encoded = header.encode(body);
                let (h2, b2) = Header::parse(&encoded).expect("an encoded record parses");
                assert_eq!((&h2, b2), (header, *body));
                let decoded = Body::<serde_json::Value>::decode(body);
                expect_kind(&decoded, &[ErrorKind::CorruptData]);
            }
            let op = TouchRecord::new(idle, touch);
            let r = op.apply(Some(raw), at);
            expect_kind(&r, &[ErrorKind::CorruptData]);
            assert_eq!(r.is_ok(), parsed.is_ok());
            if let (Ok((change, touched)), Ok((old, body))) = (r, parsed) {
                match (change, touched) {
                    (Change::Set { value, ttl }, Touched::Renewed(v)) => {
                        assert_eq!(value, v);
                        assert!(ttl.is_some_and(|t| !t.is_zero()));
                        let (new, b) = Header::parse(&value).expect("a renewed record parses");
                        assert_eq!(b, body);
                        assert_eq!(new.created, old.created);
                        assert_eq!(new.absolute, old.absolute);
                        assert!(new.expires >= old.expires && new.last_seen >= old.last_seen);
                        assert!(new.expires > now, "renewed into the past");
                    }
                    (Change::Keep, Touched::Live(v)) => assert_eq!(&v[..], raw),
                    (Change::Keep, Touched::Missing) => assert!(old.expires <= now),
                    other => panic!("unexpected touch outcome {other:?}"),
                }
            }
        }
        1 => {
            let action = match inp.u8() % 6 {
                0 => IndexAction::Add {
                    entry: IndexEntry {
                        handle: handle(&mut inp),
                        created: Timestamp::from_micros(inp.u64() >> 10),
                        expires: Timestamp::from_micros(inp.u64() >> 10),
                    },
                    max: usize::from(inp.u16()),
                    expect_generation: (sel & 0x80 != 0).then(|| u64::from(inp.u8())),
                },
                1 => IndexAction::Touch {
                    handle: handle(&mut inp),
                    expires: (sel & 0x80 != 0).then(|| Timestamp::from_micros(inp.u64() >> 10)),
                },
                2 => IndexAction::Replace {
                    old: handle(&mut inp),
                    new: handle(&mut inp),
                    expires: Timestamp::from_micros(inp.u64() >> 10),
                },
                3 => IndexAction::Remove {
                    handle: handle(&mut inp),
                },
                4 => IndexAction::Clear {
                    keep: (sel & 0x80 != 0).then(|| handle(&mut inp)),
                },
                _ => IndexAction::List,
            };
            let retention = Duration::from_micros(u64::from(inp.u32()));
            let raw = inp.rest();
            let decoded = decode_index(raw);
            expect_kind(&decoded, &[ErrorKind::CorruptData]);
            if let Ok((generation, entries)) = &decoded {
                let again = decode_index(&encode_index(*generation, entries))
                    .expect("an encoded index decodes");
                assert_eq!(&again, &(*generation, entries.clone()));
            }
            let op = match IndexOp::new(action, retention) {
                Ok(op) => op,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                    return;
                }
            };
            let r = op.apply(Some(raw), at);
            expect_kind(&r, &[ErrorKind::CorruptData]);
            assert_eq!(r.is_ok(), decoded.is_ok());
            if let (Ok((change, reply)), Ok((generation, _))) = (r, decoded) {
                assert!(reply.generation >= generation, "the generation went back");
                match change {
                    Change::Set { value, ttl } => {
                        assert!(ttl.is_some_and(|t| !t.is_zero()));
                        let (g, _) = decode_index(&value).expect("a written index decodes");
                        assert_eq!(g, reply.generation);
                    }
                    Change::SetKeepTtl(value) => {
                        decode_index(&value).expect("a written index decodes");
                    }
                    Change::Keep | Change::Remove => {}
                }
            }
        }
        _ => {
            let action = if sel & 0x80 != 0 {
                FamilyAction::Revoke
            } else {
                let presented = if sel & 0x40 != 0 {
                    inp.string(64)
                } else {
                    hash_hex(inp.u8())
                };
                FamilyAction::Rotate {
                    presented,
                    next: hash_hex(inp.u8()),
                    idle: Duration::from_micros(inp.u64() >> 8),
                }
            };
            let raw = inp.rest();
            let parsed = Family::parse(raw);
            expect_kind(&parsed, &[ErrorKind::CorruptData]);
            if let Ok(f) = &parsed {
                let encoded = f.encode(f.hash);
                assert_eq!(&Family::parse(&encoded).expect("parses"), f);
            }
            let op = match FamilyOp::new(action) {
                Ok(op) => op,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                    return;
                }
            };
            let r = op.apply(Some(raw), at);
            expect_kind(&r, &[ErrorKind::CorruptData]);
            assert_eq!(r.is_ok(), parsed.is_ok());
            if let Ok((change, reply)) = r {
                let written = match change {
                    Change::Set { value, ttl } => {
                        assert!(ttl.is_some_and(|t| !t.is_zero()));
                        assert_eq!(reply.status, FamilyStatus::Rotated);
                        Some(value)
                    }
                    Change::SetKeepTtl(value) => Some(value),
                    Change::Keep | Change::Remove => None,
                };
                if let Some(value) = written {
                    Family::parse(&value).expect("a written family parses");
                }
            }
        }
    }
}

/// Tokens and ids a client presents: session ids and handles, refresh
/// tokens, lock tokens. The whole input is the text. What parses prints
/// back as the same text (lock tokens in lowercase); the rest is
/// `InvalidInput`.
pub fn tokens(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let id = SessionId::parse(text);
    expect_kind(&id, &[ErrorKind::InvalidInput]);
    if let Ok(id) = id {
        assert_eq!(id.as_str(), text);
        assert_eq!(SessionId::parse(id.as_str()).expect("reparses"), id);
        let h = id.handle();
        assert_eq!(
            SessionHandle::parse(h.as_str()).expect("a handle parses"),
            h
        );
    }
    let h = SessionHandle::parse(text);
    expect_kind(&h, &[ErrorKind::InvalidInput]);
    if let Ok(h) = h {
        assert_eq!(h.as_str(), text);
    }
    let t = RefreshToken::parse(text);
    expect_kind(&t, &[ErrorKind::InvalidInput]);
    if let Ok(t) = t {
        assert_eq!(t.as_str(), text);
        assert_eq!(RefreshToken::parse(t.as_str()).expect("reparses"), t);
        SessionHandle::parse(&t.family()).expect("a family handle is a handle");
    }
    let l = LockToken::from_hex(text);
    expect_kind(&l, &[ErrorKind::InvalidInput]);
    if let Ok(l) = l {
        assert_eq!(l.as_hex(), text.to_ascii_lowercase());
        assert_eq!(LockToken::from_hex(l.as_hex()).expect("reparses"), l);
    }
}

/// Lock states: one byte picks the operation, then a clock, a hold in ms
/// and a token; the rest is the stored state. A state that decodes
/// encodes back to an equal state; what an operation writes decodes, and
/// a fencing token never goes back.
pub fn lock_state(data: &[u8]) {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    let now = inp.u64() % (MAX_SAFE + 2);
    let ttl = Duration::from_millis(u64::from(inp.u32()));
    let mut token_bytes = [0u8; 16];
    let tb = inp.bytes(16);
    token_bytes[..tb.len()].copy_from_slice(tb);
    let raw = inp.rest();
    let decoded = LockState::decode(raw);
    expect_kind(&decoded, &[ErrorKind::CorruptData]);
    if let Ok(s) = &decoded {
        let encoded = s.encode();
        assert_eq!(&LockState::decode(&encoded).expect("decodes"), s);
    }
    // Half the time, the holder's own token (to reach extend and release).
    let token = match decoded.as_ref().ok().and_then(|s| s.holder) {
        Some(h) if sel & 0x80 != 0 => {
            LockToken::from_hex(std::str::from_utf8(h).expect("hex")).expect("a stored holder")
        }
        _ => LockToken::from_bytes(token_bytes),
    };
    let retention = (sel & 0x40 != 0).then(|| Duration::from_secs(60));
    let at = Timestamp::from_micros(now);
    let old_fence = decoded.as_ref().map(|s| s.fence).unwrap_or(0);
    let allowed = &[ErrorKind::CorruptData, ErrorKind::InvalidInput];
    let written = match sel % 4 {
        0 => {
            let op = AcquireOp::new(token, ttl, retention);
            expect_kind(&op, &[ErrorKind::InvalidInput]);
            let Ok(op) = op else { return };
            let r = op.apply(Some(raw), at);
            expect_kind(&r, allowed);
            let Ok((change, out)) = r else { return };
            if let Acquire::Acquired { fence, .. } = out {
                assert!(fence > old_fence, "the fencing token did not grow");
            }
            change
        }
        1 => {
            let op = ExtendOp::new(token, ttl, retention);
            expect_kind(&op, &[ErrorKind::InvalidInput]);
            let Ok(op) = op else { return };
            let r = op.apply(Some(raw), at);
            expect_kind(&r, allowed);
            let Ok((change, out)) = r else { return };
            if out == Extend::NotHeld {
                assert_eq!(change, Change::Keep);
            }
            change
        }
        2 => {
            let op = ReleaseOp::new(token, retention);
            expect_kind(&op, &[ErrorKind::InvalidInput]);
            let Ok(op) = op else { return };
            let r = op.apply(Some(raw), at);
            expect_kind(&r, allowed);
            let Ok((change, out)) = r else { return };
            if out == Release::NotHeld {
                assert_eq!(change, Change::Keep);
            }
            change
        }
        _ => {
            let r = InspectOp.apply(Some(raw), at);
            expect_kind(&r, allowed);
            let Ok((change, info)) = r else { return };
            assert_eq!(info.fence, old_fence);
            assert_eq!(change, Change::Keep, "inspect never writes");
            change
        }
    };
    if let Change::Set { value, .. } | Change::SetKeepTtl(value) = written {
        let s = LockState::decode(&value).expect("a written lock state decodes");
        assert!(s.fence >= old_fence, "the fencing token went back");
    }
}

/// Cache envelopes, with compression. The first byte picks a direction:
/// decode the rest as stored bytes (then its payload with the entry's
/// codec, JSON or MessagePack; and encode the entry again and compare), or build an entry from the input, encode it and decode
/// it back. Corrupt bytes are `CorruptData`.
pub fn cache_envelope(data: &[u8]) {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    if sel & 1 == 0 {
        let raw = Bytes::copy_from_slice(inp.rest());
        let env = Envelope::decode(raw);
        expect_kind(&env, &[ErrorKind::CorruptData]);
        let Ok(env) = env else { return };
        let payload = env.payload();
        expect_kind(&payload, &[ErrorKind::CorruptData]);
        let Ok(payload) = payload else { return };
        // What a cache read does next: the codec named by the entry.
        if !env.negative {
            let decoded: Result<serde_json::Value> = match env.codec {
                2 => MsgPack.decode(&payload),
                _ => Json.decode(&payload),
            };
            expect_kind(&decoded, &[ErrorKind::CorruptData]);
        }
        let compress_above = (sel & 2 != 0).then_some(usize::from(sel >> 2));
        round_trip(
            env.codec,
            env.fresh_until,
            env.stale_until,
            &env.tags,
            (!env.negative).then_some(&payload[..]),
            compress_above,
        );
    } else {
        let codec = inp.u8();
        let fresh = inp.u64();
        let stale = inp.u64();
        let tags: Vec<(String, u64)> = (0..usize::from(sel >> 1) % 5)
            .map(|_| (inp.string(24), inp.u64()))
            .filter(|(t, _)| !t.is_empty())
            .collect();
        let compress_above = (sel & 2 != 0).then_some(usize::from(inp.u8()));
        let payload = inp.rest();
        round_trip(
            codec,
            fresh,
            stale,
            &tags,
            (sel & 4 == 0).then_some(payload),
            compress_above,
        );
    }
}

fn round_trip(
    codec: u8,
    fresh_until: u64,
    stale_until: u64,
    tags: &[(String, u64)],
    payload: Option<&[u8]>,
    compress_above: Option<usize>,
) {
    let encoded = NewEntry {
        codec,
        fresh_until,
        stale_until,
        tags,
        payload,
        compress_above,
    }
    .encode();
    let env = Envelope::decode(encoded).expect("an encoded entry decodes");
    assert_eq!(env.codec, codec);
    assert_eq!(env.fresh_until, fresh_until);
    assert_eq!(env.stale_until, stale_until.max(fresh_until));
    assert_eq!(env.tags, tags);
    assert_eq!(env.negative, payload.is_none());
    let back = env.payload().expect("an encoded payload decodes");
    assert_eq!(&back[..], payload.unwrap_or_default());
}

/// Keys: validation, `from_parts`, `tagged`, `child`, hash tags, glob
/// escaping and matching, and the literal prefix of a glob. The input is
/// text; `\0` separates parts.
pub fn keys(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let key = Key::new(text);
    expect_kind(&key, &[ErrorKind::InvalidKey]);
    assert_eq!(key.is_ok(), !text.is_empty() && text.len() <= MAX_KEY_LEN);
    if let Ok(k) = &key {
        assert_eq!(k.as_str(), text);
        if let Some(tag) = k.hash_tag() {
            assert!(!tag.is_empty() && text.contains(&format!("{{{tag}}}")));
        }
    }
    let parts: Vec<&str> = text.split('\0').collect();
    let joined = Key::from_parts(&parts);
    expect_kind(&joined, &[ErrorKind::InvalidKey]);
    if let Ok(k) = &joined {
        assert_eq!(k.as_str(), parts.join(":"));
    }
    if let Some((base, suffix)) = text.split_once('\0') {
        let t = Key::tagged(base, suffix);
        expect_kind(&t, &[ErrorKind::InvalidKey]);
        if let Ok(t) = t {
            assert_eq!(t.hash_tag(), Some(base), "a tagged key hashes by its base");
        }
        if let Ok(k) = Key::new(base) {
            let c = k.child(suffix);
            expect_kind(&c, &[ErrorKind::InvalidKey]);
            if let Ok(c) = c {
                assert_eq!(c.as_str(), format!("{base}:{suffix}"));
            }
        }
        // A glob matches only keys that start with its literal prefix; an
        // escaped text matches itself and nothing else.
        if glob_match(base, suffix) {
            assert!(suffix.starts_with(&tier::literal_prefix(base)));
        }
        let escaped = escape_glob(base);
        assert_eq!(glob_match(&escaped, suffix), base == suffix);
    }
    assert!(glob_match(&escape_glob(text), text));
    assert_eq!(validate_prefix(text).is_ok(), text.len() <= MAX_KEY_LEN);
}

/// Small text and binary codecs: counters (`increment`), tag versions and
/// the two-tier cache's invalidation messages. The first byte picks one;
/// the rest is the stored value or message.
pub fn small_codecs(data: &[u8]) {
    let mut inp = Input::new(data);
    let sel = inp.u8();
    let raw = inp.rest();
    match sel % 3 {
        0 => {
            let n = crate::store::parse_counter(raw);
            expect_kind(&n, &[ErrorKind::CorruptData]);
            if let Ok(n) = n {
                let again = crate::store::parse_counter(n.to_string().as_bytes());
                assert_eq!(again.expect("a printed counter parses"), n);
            }
        }
        1 => {
            if let Some(v) = tags::parse_version(raw) {
                assert_eq!(tags::parse_version(&tags::encode_version(v)), Some(v));
            }
        }
        _ => {
            if let Some((sender, inv)) = tier::Invalidation::decode(raw) {
                assert_eq!(&inv.encode(sender)[..], raw, "a message re-encodes as sent");
            }
        }
    }
}

/// Seed inputs for every target, built with the real encoders: (target,
/// file name, bytes).
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push((target, name.to_owned(), bytes));
    };

    // limit_state: a real state written by each algorithm, then a step on it.
    let t0: u64 = 1_700_000_000_000_000;
    for (alg, name) in [
        (0u8, "token_bucket"),
        (1, "sliding_log"),
        (2, "sliding_window"),
        (3, "fixed_window"),
    ] {
        for (tiers, block, label) in [
            (&[(5u16, 1_000u32)][..], None, "one_tier"),
            (
                &[(3, 1_000), (10, 60_000)][..],
                Some(500u16),
                "two_tiers_block",
            ),
        ] {
            let head = seed_rule(alg, tiers, block).done();
            let rule = rule(&mut Input::new(&head)).expect("seed rule is valid");
            let mut state: Option<Bytes> = None;
            for i in 0..4u64 {
                let op = LimitOp::new(&rule, Operation::Consume, 1).expect("valid");
                let (change, _) = op
                    .apply(state.as_deref(), Timestamp::from_micros(t0 + i * 100_000))
                    .expect("a fresh rule decides");
                if let Change::Set { value, .. } = change {
                    state = Some(value);
                }
            }
            let state = state.expect("consuming writes a state");
            for (op, label2) in [(0u8, "consume"), (3, "penalty"), (2 | 0x80, "refund_fresh")] {
                let seed = Seed::default()
                    .raw(&head)
                    .u8(op)
                    .u8(2)
                    .u64(t0 + 500_000)
                    .raw(&state)
                    .done();
                add("limit_state", &format!("{name}_{label}_{label2}"), seed);
            }
        }
    }
    add("limit_state", "corrupt_tb", {
        let head = seed_rule(0, &[(5, 1_000)], None).done();
        Seed::default()
            .raw(&head)
            .u8(0)
            .u8(1)
            .u64(t0)
            .raw(b"tb1:12345678901234567")
            .done()
    });

    // limit_headers: one and four tiers, named and unnamed.
    let head = seed_rule(3, &[(100, 60_000)], None).done();
    add(
        "limit_headers",
        "one_tier_named",
        Seed::default()
            .raw(&head)
            .u8(1)
            .u64(t0)
            .u8(0)
            .u64(0)
            .u8(0)
            .u64(99)
            .u8(0)
            .u64(60_000_000)
            .u8(0)
            .u64(0)
            .u8(0)
            .string("api")
            .string("203.0.113.7")
            .done(),
    );
    let head = seed_rule(
        0,
        &[
            (10, 1_000),
            (100, 60_000),
            (1000, 3_600_000),
            (5, 86_400_000),
        ],
        None,
    )
    .done();
    let mut s = Seed::default().raw(&head).u8(0);
    for v in [t0, 0] {
        s = s.u64(v).u8(0);
    }
    for i in 0..12u64 {
        s = s.u64(i * 1_234_567).u8(0);
    }
    add(
        "limit_headers",
        "four_tiers_denied",
        s.string("a\"b\\c").done(),
    );

    // script_replies: a well-formed reply for each operation.
    fn enc(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Nil => out.push(0),
            Value::Int(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Data(d) => {
                out.push(3);
                out.push(d.len() as u8);
                out.extend_from_slice(d);
            }
            Value::Status(s) => {
                out.push(5);
                out.push(s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Array(items) => {
                out.push(6);
                out.push(items.len() as u8);
                for i in items {
                    enc(i, out);
                }
            }
        }
    }
    let ints = |v: &[i64]| Value::Array(v.iter().map(|&i| Value::Int(i)).collect());
    let data = |s: &str| Value::Data(Bytes::copy_from_slice(s.as_bytes()));
    let replies: Vec<(u8, &str, Vec<u8>, Value)> = vec![
        (
            0,
            "limit",
            seed_rule(0, &[(5, 1_000)], None).done(),
            ints(&[1, t0 as i64, 0, 4, 200_000, 0]),
        ),
        (1, "acquire", vec![], ints(&[1, 42, t0 as i64])),
        (1, "acquire_held", vec![], ints(&[0, 5_000])),
        (2, "extend", vec![], ints(&[1, t0 as i64])),
        (3, "release", vec![], ints(&[1])),
        (4, "inspect", vec![], ints(&[1, 42, 5_000])),
        (4, "corrupt_code", vec![], ints(&[-1])),
        (
            5,
            "touch",
            vec![],
            Value::Array(vec![Value::Int(2), data("1|1|2|3|4|{}")]),
        ),
        (6, "take", vec![], data("value")),
        (
            7,
            "index",
            vec![],
            Value::Array(vec![
                Value::Int(1),
                Value::Int(3),
                Value::Array(vec![data("old")]),
                Value::Array(vec![data("h1"), Value::Int(1), Value::Int(2)]),
            ]),
        ),
        (
            8,
            "family",
            vec![],
            Value::Array(vec![
                Value::Int(4),
                Value::Int(2),
                Value::Int(t0 as i64),
                data("{\"u\":\"7\"}"),
            ]),
        ),
        (9, "helpers", vec![], data("-17")),
    ];
    for (sel, name, head, reply) in replies {
        let mut bytes = vec![sel];
        bytes.extend_from_slice(&head);
        enc(&reply, &mut bytes);
        add("script_replies", name, bytes);
    }

    // session_state: a record, an index and a family as written.
    let header = Header {
        created: t0,
        last_seen: t0,
        expires: t0 + 3_600_000_000,
        absolute: t0 + 86_400_000_000,
    };
    let record = header.encode(br#"{"u":"7","ip":"203.0.113.7","d":{"cart":[1,2]}}"#);
    add(
        "session_state",
        "record_touch",
        Seed::default()
            .u8(0)
            .u64(t0 + 60_000_000)
            .u64(1_800_000_000)
            .u32(0)
            .raw(&record)
            .done(),
    );
    add(
        "session_state",
        "record_expired",
        Seed::default()
            .u8(3)
            .u64(t0 + 90_000_000_000)
            .u64(1)
            .u32(1)
            .raw(&record)
            .done(),
    );
    let entries = vec![
        IndexEntry {
            handle: "abcDEF-_1".into(),
            created: Timestamp::from_micros(t0),
            expires: Timestamp::from_micros(t0 + 1_000_000),
        },
        IndexEntry {
            handle: "zz9".into(),
            created: Timestamp::from_micros(t0 + 5),
            expires: Timestamp::from_micros(t0 + 9_000_000),
        },
    ];
    let index = encode_index(4, &entries);
    let h = |s: Seed| s.u8(2).raw(b"abc");
    let actions: Vec<(&str, Seed)> = vec![
        (
            "add",
            h(Seed::default().u8(0))
                .u64(t0 + 1)
                .u64(t0 + 2_000_000)
                .u16(3),
        ),
        ("touch", h(Seed::default().u8(1))),
        ("replace", h(h(Seed::default().u8(2))).u64(t0 + 2_000_000)),
        ("remove", h(Seed::default().u8(3))),
        ("clear", Seed::default().u8(4)),
        ("list", Seed::default().u8(5)),
    ];
    for (name, action) in actions {
        let seed = Seed::default()
            .u8(1)
            .u64(t0 + 500_000)
            .raw(&action.done())
            .u32(1_000_000)
            .raw(&index)
            .done();
        add("session_state", &format!("index_{name}"), seed);
    }
    let family = Family::parse(
        format!(
            "1|3|{t0}|{}|{}|a|{}|{{\"u\":\"7\"}}",
            t0 + 1_000_000_000,
            t0 + 9_000_000_000,
            hash_hex(10)
        )
        .as_bytes(),
    )
    .expect("a family parses")
    .encode(hash_hex(10).as_bytes());
    add(
        "session_state",
        "family_rotate",
        Seed::default()
            .u8(2)
            .u64(t0 + 1_000)
            .u8(10)
            .u8(11)
            .u64(60_000_000)
            .raw(&family)
            .done(),
    );
    add(
        "session_state",
        "family_reuse",
        Seed::default()
            .u8(2)
            .u64(t0 + 1_000)
            .u8(12)
            .u8(11)
            .u64(60_000_000)
            .raw(&family)
            .done(),
    );
    add(
        "session_state",
        "family_revoke",
        Seed::default()
            .u8(2 | 0x80)
            .u64(t0 + 1_000)
            .raw(&family)
            .done(),
    );

    // tokens: each kind, canonical.
    let id = SessionId::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").expect("an id");
    add("tokens", "session_id", id.as_str().as_bytes().to_vec());
    add(
        "tokens",
        "session_handle",
        id.handle().as_str().as_bytes().to_vec(),
    );
    add(
        "tokens",
        "refresh_token",
        b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v".to_vec(),
    );
    add(
        "tokens",
        "lock_token",
        b"00112233445566778899AABBCCDDEEFF".to_vec(),
    );

    // lock_state: free, held, expired.
    let holder = LockToken::from_bytes([0xab; 16]);
    let held = LockState {
        fence: 41,
        expires_at: t0 + 30_000_000,
        holder: Some(holder.as_hex().as_bytes()),
    }
    .encode();
    let free = LockState {
        fence: 41,
        expires_at: 0,
        holder: None,
    }
    .encode();
    for (op, name) in [
        (0u8, "acquire"),
        (1, "extend"),
        (2, "release"),
        (3, "inspect"),
    ] {
        for (state, sname) in [(&held, "held"), (&free, "free")] {
            let seed = Seed::default()
                .u8(op | 0x80)
                .u64(t0 + 1_000_000)
                .u32(30_000)
                .raw(&[0xab; 16])
                .raw(state)
                .done();
            add("lock_state", &format!("{name}_{sname}"), seed);
        }
    }

    // cache_envelope: plain, tagged, negative, compressed.
    let tags_v = [("users".to_owned(), 3u64), ("team:7".to_owned(), 1)];
    let long = br#"{"items":[1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,3]}"#;
    for (name, tags, payload, compress) in [
        ("plain", &[][..], Some(&b"{\"a\":1}"[..]), None),
        ("tagged", &tags_v[..], Some(&b"\x82\xa1a\x01"[..]), None),
        ("negative", &tags_v[..1], None, None),
        ("compressed", &[][..], Some(&long[..]), Some(16usize)),
    ] {
        let encoded = NewEntry {
            codec: 1,
            fresh_until: t0,
            stale_until: t0 + 60_000_000,
            tags,
            payload,
            compress_above: compress,
        }
        .encode();
        add(
            "cache_envelope",
            &format!("decode_{name}"),
            Seed::default().u8(2).raw(&encoded).done(),
        );
    }
    add(
        "cache_envelope",
        "encode_compressed",
        Seed::default()
            .u8(1 | 2 | (1 << 1))
            .u8(2)
            .u64(t0)
            .u64(t0 + 1)
            .string("tag")
            .u64(9)
            .u8(8)
            .raw(long)
            .done(),
    );

    // keys
    for (name, text) in [
        ("plain", "app:users:42"),
        ("tagged", "user:7\0sessions"),
        ("glob", "a*b?[c-d]\\\0axb?c"),
        ("parts", "app\0ns\0key"),
        ("braces", "{x}:y\0{}"),
    ] {
        add("keys", name, text.as_bytes().to_vec());
    }

    // small_codecs
    add(
        "small_codecs",
        "counter",
        b"\x00-9223372036854775808".to_vec(),
    );
    add(
        "small_codecs",
        "tag_version",
        b"\x0118446744073709551615".to_vec(),
    );
    for (name, inv) in [
        (
            "inv_key",
            tier::Invalidation::Key(Key::new("app:c:1").expect("key")),
        ),
        ("inv_prefix", tier::Invalidation::Prefix("app:c:".into())),
        ("inv_glob", tier::Invalidation::Matching("user:*".into())),
        ("inv_clear", tier::Invalidation::Clear),
    ] {
        let mut bytes = vec![2u8];
        bytes.extend_from_slice(&inv.encode(0x0102_0304_0506_0708));
        add("small_codecs", name, bytes);
    }
    out
}
