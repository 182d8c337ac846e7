//! The per-user index: which sessions (or refresh-token families) a user
//! has, as one atomic operation with a Lua twin.
//!
//! One value per user, under `<namespace>:u:<user hash>`:
//!
//! ```text
//! 1|<generation>|<handle>,<created>,<expires>;<handle>,<created>,<expires>;...
//! ```
//!
//! * `1` is the encoding version; times are microseconds since the epoch
//!   (decimal, at most 2^53 - 1); handles are base64url.
//! * `<generation>` counts [`IndexAction::Clear`]s ("log out everywhere").
//!   A login that read it before checking a password can insist it has not
//!   moved ([`IndexAction::Add`] with `expect_generation`), which closes the
//!   race between a password change and a login still in flight.
//! * Entries are kept in insertion order. Every operation first drops the
//!   entries whose `expires` has passed (no sweeper process), and writes
//!   back only when something changed.
//! * The index expires with its last entry, but never sooner than
//!   `retention` after its last write, so a bumped generation outlives the
//!   logins it must refuse.
//!
//! **The index is authoritative**: a session whose handle is not in its
//! user's index is dead, whatever record is left in the store. So clearing
//! the index is one atomic step that kills every session of the user at
//! once, and no interleaving of a concurrent create, rotate or renewal can
//! bring one back.

use std::time::Duration;

use crate::session::record::{now_arg, parse_num, split_fields, ttl_until, MAX_SAFE};
use crate::{Arg, AtomicOp, Change, Error, Result, Script, Timestamp, Value};

static SCRIPT: Script = Script::new(lua!("session/index.lua"));

/// The most entries an index holds, whatever the configured maximum: it
/// bounds the work of one index operation (the oldest is evicted first).
pub const INDEX_CAPACITY: usize = 1_000;

/// One session (or token family) in a user's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The session's handle.
    pub handle: String,
    /// When it was created.
    pub created: Timestamp,
    /// When it dies unless renewed (no later than the record's own expiry).
    pub expires: Timestamp,
}

/// What an [`IndexOp`] does, after dropping expired entries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexAction {
    /// Adds an entry (replacing one with the same handle), then evicts the
    /// oldest other entries (by `created`) beyond `max`. With
    /// `expect_generation`, does nothing unless the generation is that.
    Add {
        /// The new entry.
        entry: IndexEntry,
        /// The most entries to keep (clamped to 1..=[`INDEX_CAPACITY`]).
        max: usize,
        /// Add only if the generation is still this.
        expect_generation: Option<u64>,
    },
    /// Checks that `handle` is present; raises its expiry to `expires`.
    Touch {
        /// The entry to find.
        handle: String,
        /// A later expiry to record (never lowers it).
        expires: Option<Timestamp>,
    },
    /// Renames `old` to `new` (a rotation), raising its expiry to `expires`.
    Replace {
        /// The current handle.
        old: String,
        /// The handle it becomes.
        new: String,
        /// A later expiry to record (never lowers it).
        expires: Timestamp,
    },
    /// Removes `handle`.
    Remove {
        /// The entry to remove.
        handle: String,
    },
    /// Removes every entry but `keep`, and bumps the generation.
    Clear {
        /// The entry to keep, if any.
        keep: Option<String>,
    },
    /// Lists the entries.
    List,
}

/// What an [`IndexOp`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexReply {
    /// `Add`: the entry was added (false: the generation had moved).
    /// `Touch`, `Replace`, `Remove`: the entry was there. `Clear`: the kept
    /// entry was there. `List`: false.
    pub found: bool,
    /// The generation after the operation.
    pub generation: u64,
    /// Handles evicted (`Add`) or cleared (`Clear`), in index order.
    pub removed: Vec<String>,
    /// The live entries, in index order (`List` only).
    pub entries: Vec<IndexEntry>,
}

/// One atomic change to a user's index. Twin: `index.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOp {
    action: IndexAction,
    retention_us: u64,
}

fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_handle(h: &str) -> Result<()> {
    if valid_handle(h) {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "an index handle is base64url text (A-Z, a-z, 0-9, '-', '_')",
        ))
    }
}

fn check_time(t: Timestamp) -> Result<()> {
    if t.as_micros() > MAX_SAFE {
        return Err(Error::invalid_input(
            "an index time is beyond 2^53 microseconds",
        ));
    }
    Ok(())
}

impl IndexOp {
    /// `action`, keeping the index at least `retention` after this write.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// handle that is not base64url or a time beyond 2^53 µs.
    pub fn new(action: IndexAction, retention: Duration) -> Result<Self> {
        let action = match action {
            IndexAction::Add {
                entry,
                max,
                expect_generation,
            } => {
                check_handle(&entry.handle)?;
                check_time(entry.created)?;
                check_time(entry.expires)?;
                IndexAction::Add {
                    entry,
                    max: max.clamp(1, INDEX_CAPACITY),
                    expect_generation,
                }
            }
            IndexAction::Touch { handle, expires } => {
                check_handle(&handle)?;
                if let Some(t) = expires {
                    check_time(t)?;
                }
                IndexAction::Touch { handle, expires }
            }
            IndexAction::Replace { old, new, expires } => {
                check_handle(&old)?;
                check_handle(&new)?;
                check_time(expires)?;
                IndexAction::Replace { old, new, expires }
            }
            IndexAction::Remove { handle } => {
                check_handle(&handle)?;
                IndexAction::Remove { handle }
            }
            IndexAction::Clear { keep } => {
                if let Some(h) = &keep {
                    check_handle(h)?;
                }
                IndexAction::Clear { keep }
            }
            IndexAction::List => IndexAction::List,
        };
        Ok(Self {
            action,
            retention_us: crate::duration_micros(retention).clamp(1, MAX_SAFE),
        })
    }
}

/// Decodes an index: its generation and every entry (expired ones too).
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, Vec<IndexEntry>)> {
    let corrupt = || Error::corrupt("stored user index is not in rampart's format");
    let ([version, generation], mut rest) = split_fields::<2>(bytes).ok_or_else(corrupt)?;
    if version != b"1" {
        return Err(corrupt());
    }
    let generation = parse_num(generation).ok_or_else(corrupt)?;
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b';').ok_or_else(corrupt)?;
        let mut parts = rest[..end].split(|&b| b == b',');
        let (Some(h), Some(c), Some(e), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt());
        };
        let handle = std::str::from_utf8(h).map_err(|_| corrupt())?;
        if !valid_handle(handle) {
            return Err(corrupt());
        }
        entries.push(IndexEntry {
            handle: handle.to_owned(),
            created: Timestamp::from_micros(parse_num(c).ok_or_else(corrupt)?),
            expires: Timestamp::from_micros(parse_num(e).ok_or_else(corrupt)?),
        });
        rest = &rest[end + 1..];
    }
    Ok((generation, entries))
}

pub(crate) fn encode(generation: u64, entries: &[IndexEntry]) -> bytes::Bytes {
    use std::fmt::Write;
    let mut out = format!("1|{generation}|");
    for e in entries {
        let _ = write!(
            out,
            "{},{},{};",
            e.handle,
            e.created.as_micros(),
            e.expires.as_micros()
        );
    }
    bytes::Bytes::from(out)
}

impl AtomicOp for IndexOp {
    type Output = IndexReply;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, IndexReply)> {
        let (mut generation, mut entries) = match state {
            Some(bytes) => decode(bytes)?,
            None => (0, Vec::new()),
        };
        let before = entries.len();
        entries.retain(|e| e.expires > now);
        let mut changed = entries.len() != before;
        let find = |entries: &[IndexEntry], h: &str| entries.iter().position(|e| e.handle == h);
        let mut reply = IndexReply::default();
        match &self.action {
            IndexAction::Add {
                entry,
                max,
                expect_generation,
            } => {
                if expect_generation.is_none_or(|g| g == generation) {
                    if let Some(i) = find(&entries, &entry.handle) {
                        entries.remove(i);
                    }
                    entries.push(entry.clone());
                    changed = true;
                    reply.found = true;
                    while entries.len() > *max {
                        // The oldest other entry; the first of equals.
                        let oldest = (0..entries.len() - 1)
                            .min_by_key(|&i| entries[i].created)
                            .unwrap_or(0);
                        reply.removed.push(entries.remove(oldest).handle);
                    }
                }
            }
            IndexAction::Touch { handle, expires } => {
                if let Some(i) = find(&entries, handle) {
                    reply.found = true;
                    if let Some(t) = *expires {
                        if t > entries[i].expires {
                            entries[i].expires = t;
                            changed = true;
                        }
                    }
                }
            }
            IndexAction::Replace { old, new, expires } => {
                if let Some(i) = find(&entries, old) {
                    reply.found = true;
                    entries[i].handle.clone_from(new);
                    entries[i].expires = entries[i].expires.max(*expires);
                    changed = true;
                }
            }
            IndexAction::Remove { handle } => {
                if let Some(i) = find(&entries, handle) {
                    reply.found = true;
                    entries.remove(i);
                    changed = true;
                }
            }
            IndexAction::Clear { keep } => {
                let mut kept = Vec::new();
                for e in entries.drain(..) {
                    if kept.is_empty() && keep.as_deref() == Some(e.handle.as_str()) {
                        kept.push(e);
                    } else {
                        reply.removed.push(e.handle);
                    }
                }
                reply.found = !kept.is_empty();
                entries = kept;
                if generation < MAX_SAFE {
                    generation += 1;
                }
                changed = true;
            }
            IndexAction::List => {}
        }
        reply.generation = generation;
        let change = if !changed {
            Change::Keep
        } else if entries.is_empty() && generation == 0 {
            Change::Remove
        } else {
            let now_us = now.as_micros();
            let last = entries
                .iter()
                .map(|e| e.expires.as_micros())
                .fold(now_us.saturating_add(self.retention_us), u64::max);
            Change::Set {
                value: encode(generation, &entries),
                ttl: Some(ttl_until(last, now_us)),
            }
        };
        if self.action == IndexAction::List {
            reply.entries = entries;
        }
        Ok((change, reply))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        let h = |s: &str| Arg::Str(s.to_owned());
        let t = |t: Timestamp| Arg::from(t.as_micros());
        let mut args = Vec::with_capacity(8);
        let (name, rest): (&str, Vec<Arg>) = match &self.action {
            IndexAction::Add {
                entry,
                max,
                expect_generation,
            } => (
                "add",
                vec![
                    h(&entry.handle),
                    t(entry.created),
                    t(entry.expires),
                    Arg::from(*max as u64),
                    expect_generation.map_or(Arg::Str(String::new()), Arg::from),
                ],
            ),
            IndexAction::Touch { handle, expires } => (
                "touch",
                vec![h(handle), expires.map_or(Arg::Str(String::new()), t)],
            ),
            IndexAction::Replace { old, new, expires } => {
                ("replace", vec![h(old), h(new), t(*expires)])
            }
            IndexAction::Remove { handle } => ("remove", vec![h(handle)]),
            IndexAction::Clear { keep } => (
                "clear",
                vec![keep.as_deref().map_or(Arg::Str(String::new()), h)],
            ),
            IndexAction::List => ("list", Vec::new()),
        };
        args.push(Arg::from(name));
        args.push(Arg::from(self.retention_us));
        args.push(now_arg(now));
        args.extend(rest);
        args
    }

    fn decode_reply(&self, reply: Value) -> Result<IndexReply> {
        let bad = || Error::backend("unexpected reply from the user index script");
        let items = reply.into_array()?;
        let code = items.first().ok_or_else(bad)?.as_int()?;
        match (code, items.len()) {
            (-1, 1) => {
                return Err(Error::corrupt(
                    "stored user index is not in rampart's format",
                ))
            }
            (0 | 1, 4) => {}
            _ => return Err(bad()),
        }
        let mut items = items.into_iter().skip(1);
        let generation = items.next().ok_or_else(bad)?.as_int()?;
        let text = |v: Value| -> Result<String> {
            let b = v.into_bytes()?.ok_or_else(bad)?;
            String::from_utf8(b.to_vec()).map_err(|_| bad())
        };
        let removed = items
            .next()
            .ok_or_else(bad)?
            .into_array()?
            .into_iter()
            .map(text)
            .collect::<Result<Vec<_>>>()?;
        let flat = items.next().ok_or_else(bad)?.into_array()?;
        if flat.len() % 3 != 0 {
            return Err(bad());
        }
        let mut entries = Vec::with_capacity(flat.len() / 3);
        let mut flat = flat.into_iter();
        while let (Some(h), Some(c), Some(e)) = (flat.next(), flat.next(), flat.next()) {
            entries.push(IndexEntry {
                handle: text(h)?,
                created: Timestamp::from_micros(c.as_int()?.max(0) as u64),
                expires: Timestamp::from_micros(e.as_int()?.max(0) as u64),
            });
        }
        Ok(IndexReply {
            found: code == 1,
            generation: generation.max(0) as u64,
            removed,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn entry(h: &str, created: u64, expires: u64) -> IndexEntry {
        IndexEntry {
            handle: h.into(),
            created: Timestamp::from_micros(created),
            expires: Timestamp::from_micros(expires),
        }
    }

    fn run(state: &mut Option<bytes::Bytes>, action: IndexAction, now: u64) -> IndexReply {
        let op = IndexOp::new(action, DAY).unwrap();
        let (change, reply) = op
            .apply(state.as_deref(), Timestamp::from_micros(now))
            .unwrap();
        match change {
            Change::Keep => {}
            Change::Remove => *state = None,
            Change::Set { value, .. } => *state = Some(value),
            Change::SetKeepTtl(_) => unreachable!("the index never keeps a TTL"),
        }
        reply
    }

    fn add(h: &str, created: u64, max: usize) -> IndexAction {
        IndexAction::Add {
            entry: entry(h, created, created + 100),
            max,
            expect_generation: None,
        }
    }

    #[test]
    fn add_evicts_oldest_and_prunes_expired() {
        let mut s = None;
        assert!(run(&mut s, add("a", 10, 2), 10).found);
        assert!(run(&mut s, add("b", 20, 2), 20).found);
        let r = run(&mut s, add("c", 30, 2), 30);
        assert_eq!(r.removed, ["a"]);
        assert_eq!(s.as_deref(), Some(&b"1|0|b,20,120;c,30,130;"[..]));
        // At 125, b (expires 120) drops out by itself.
        let r = run(&mut s, IndexAction::List, 125);
        assert_eq!(r.entries, [entry("c", 30, 130)]);
        assert_eq!(s.as_deref(), Some(&b"1|0|c,30,130;"[..]));
        // Everything expired and generation 0: the index goes away.
        run(&mut s, IndexAction::List, 200);
        assert_eq!(s, None);
    }

    #[test]
    fn clear_bumps_generation_and_refuses_stale_adds() {
        let mut s = None;
        run(&mut s, add("a", 10, 5), 10);
        run(&mut s, add("b", 11, 5), 11);
        let r = run(
            &mut s,
            IndexAction::Clear {
                keep: Some("b".into()),
            },
            12,
        );
        assert_eq!(
            (r.found, r.generation, r.removed.clone()),
            (true, 1, vec!["a".to_string()])
        );
        let stale = IndexAction::Add {
            entry: entry("c", 13, 113),
            max: 5,
            expect_generation: Some(0),
        };
        let r = run(&mut s, stale, 13);
        assert!(!r.found);
        assert_eq!(r.generation, 1);
        let r = run(&mut s, IndexAction::Clear { keep: None }, 14);
        assert_eq!((r.generation, r.removed), (2, vec!["b".to_string()]));
        // Empty, but the generation is kept.
        assert_eq!(s.as_deref(), Some(&b"1|2|"[..]));
    }

    #[test]
    fn touch_replace_remove() {
        let mut s = None;
        run(&mut s, add("a", 10, 5), 10);
        let touch = |h: &str, e: Option<u64>| IndexAction::Touch {
            handle: h.into(),
            expires: e.map(Timestamp::from_micros),
        };
        assert!(run(&mut s, touch("a", Some(500)), 20).found);
        assert!(run(&mut s, touch("a", Some(300)), 20).found, "never lowers");
        assert_eq!(s.as_deref(), Some(&b"1|0|a,10,500;"[..]));
        assert!(!run(&mut s, touch("zz", None), 20).found);
        let r = run(
            &mut s,
            IndexAction::Replace {
                old: "a".into(),
                new: "b".into(),
                expires: Timestamp::from_micros(600),
            },
            30,
        );
        assert!(r.found);
        assert_eq!(s.as_deref(), Some(&b"1|0|b,10,600;"[..]));
        assert!(!run(&mut s, IndexAction::Remove { handle: "a".into() }, 30).found);
        assert!(run(&mut s, IndexAction::Remove { handle: "b".into() }, 30).found);
        assert_eq!(s, None);
    }

    #[test]
    fn corrupt_and_invalid_input_are_typed() {
        for bad in [
            &b"2|0|"[..],
            b"1|x|",
            b"1|0|a,1,2",
            b"1|0|a,1;",
            b"1|0|a b,1,2;",
            b"1|0|a,1,2,3;",
            b"1|0|,1,2;",
        ] {
            let op = IndexOp::new(IndexAction::List, DAY).unwrap();
            let err = op.apply(Some(bad), Timestamp::EPOCH).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::CorruptData, "{bad:?}");
        }
        let err = IndexOp::new(
            IndexAction::Remove {
                handle: "a,b;".into(),
            },
            DAY,
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    }
}
