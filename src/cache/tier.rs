//! Two-tier caching: an in-process L1 store in front of the shared L2.
//!
//! * The L1 holds the same envelope bytes as the L2, for at most the L1 TTL
//!   (and never past the entry's own stale-until), so its staleness is
//!   bounded even if an invalidation message is lost.
//! * Every change a cache makes (set, delete, tag/prefix/pattern
//!   invalidation, clear) is applied to its own L1 and published on the L2
//!   store's pub/sub channel `<namespace>:invalidations`; every other cache
//!   instance on that namespace drops the same keys from its L1.
//! * Tags stay O(1) in the L1 too: the L1 keeps copies of the tag versions
//!   it has seen, and a tag invalidation deletes only that copy, which makes
//!   every L1 entry of the tag miss (and be re-read from the L2).
//! * The L1 is used only while the subscription is live. Until the first
//!   subscription succeeds, and after it drops (Redis restarted), reads and
//!   fills skip the L1; on (re)subscribing, the cache first clears its
//!   namespace in the L1, since messages may have been missed.
//! * An *epoch* counter, bumped before every invalidation is applied, keeps
//!   a fill from resurrecting a value read from the L2 just before an
//!   invalidation: a fill happens only if no invalidation arrived since the
//!   L2 read, and is undone if one arrived during the fill.
//!
//! Message format (version 1): `[1][sender id: u64 LE][kind][text]`, kind
//! `k` key, `t` tag-version key, `p` entry prefix, `g` user glob pattern,
//! `c` clear. A cache ignores its own messages (it has applied them) and
//! any message it cannot parse.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::StreamExt;

use super::stats::{bump, Counters};
use crate::{glob_match, rt, Cursor, ErrorKind, Key, Result, Store, Subscription};

const MESSAGE_VERSION: u8 = 1;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Keys asked for per scan page when deleting by prefix or pattern.
pub(crate) const SCAN_PAGE: usize = 500;

/// One invalidation, as applied locally and broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invalidation {
    /// One entry (its full key).
    Key(Key),
    /// A tag's version key.
    Tag(Key),
    /// Every entry whose full key starts with this.
    Prefix(String),
    /// Every entry whose user key matches this glob.
    Matching(String),
    /// Every key of the namespace.
    Clear,
}

impl Invalidation {
    pub fn encode(&self, sender: u64) -> Bytes {
        let (kind, text): (u8, &str) = match self {
            Invalidation::Key(k) => (b'k', k.as_str()),
            Invalidation::Tag(k) => (b't', k.as_str()),
            Invalidation::Prefix(p) => (b'p', p),
            Invalidation::Matching(g) => (b'g', g),
            Invalidation::Clear => (b'c', ""),
        };
        let mut out = Vec::with_capacity(10 + text.len());
        out.push(MESSAGE_VERSION);
        out.extend_from_slice(&sender.to_le_bytes());
        out.push(kind);
        out.extend_from_slice(text.as_bytes());
        Bytes::from(out)
    }

    /// The sender and the invalidation, or `None` for a foreign message.
    pub fn decode(msg: &[u8]) -> Option<(u64, Invalidation)> {
        if msg.len() < 10 || msg[0] != MESSAGE_VERSION {
            return None;
        }
        let sender = u64::from_le_bytes(msg[1..9].try_into().ok()?);
        let text = std::str::from_utf8(&msg[10..]).ok()?;
        let inv = match msg[9] {
            b'k' => Invalidation::Key(Key::new(text).ok()?),
            b't' => Invalidation::Tag(Key::new(text).ok()?),
            b'p' => Invalidation::Prefix(text.to_owned()),
            b'g' => Invalidation::Matching(text.to_owned()),
            b'c' if text.is_empty() => Invalidation::Clear,
            _ => return None,
        };
        Some((sender, inv))
    }
}

/// The L1 of a two-tier cache.
pub(crate) struct Tier {
    pub store: Arc<dyn Store>,
    pub ttl: Duration,
    /// This cache instance's id in messages.
    pub sender: u64,
    /// `<namespace>:`, everything the cache owns in the L1.
    namespace_prefix: String,
    /// `<namespace>:k:`, where entries live.
    entry_prefix: String,
    live: AtomicBool,
    epoch: AtomicU64,
    counters: Arc<Counters>,
}

impl Tier {
    pub fn new(
        store: Arc<dyn Store>,
        ttl: Duration,
        sender: u64,
        namespace_prefix: String,
        entry_prefix: String,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            store,
            ttl,
            sender,
            namespace_prefix,
            entry_prefix,
            live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            counters,
        }
    }

    /// Whether invalidations are flowing, so the L1 may be used.
    pub fn live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// The count of invalidations applied so far.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn failed(&self) {
        bump(&self.counters.errors);
    }

    /// Copies an entry read from (or just written to) the L2 into the L1,
    /// unless an invalidation arrived since `epoch` was read.
    pub async fn fill(
        &self,
        epoch: u64,
        key: &Key,
        raw: Bytes,
        left: Option<Duration>,
        tags: &[(Key, u64)],
    ) {
        if !self.live() || self.epoch() != epoch {
            return;
        }
        let ttl = left.map_or(self.ttl, |left| left.min(self.ttl));
        for (tag_key, version) in tags {
            let version = Bytes::from(version.to_string());
            if self
                .store
                .set(tag_key, version, Some(self.ttl))
                .await
                .is_err()
            {
                return self.failed();
            }
        }
        if self.store.set(key, raw, Some(ttl)).await.is_err() {
            return self.failed();
        }
        if self.epoch() != epoch && self.store.delete(key).await.is_err() {
            self.failed();
        }
    }

    /// Applies an invalidation to this process's L1.
    pub async fn apply(&self, inv: &Invalidation) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let store = &*self.store;
        let outcome = match inv {
            Invalidation::Key(k) | Invalidation::Tag(k) => store.delete(k).await.map(drop),
            Invalidation::Prefix(p) if p.starts_with(&self.entry_prefix) => {
                delete_scan(store, p, |_| true).await.map(drop)
            }
            Invalidation::Prefix(_) => Ok(()),
            Invalidation::Matching(pattern) => {
                let at = self.entry_prefix.len();
                let scan = format!("{}{}", self.entry_prefix, literal_prefix(pattern));
                delete_scan(store, &scan, |k| {
                    k.as_str()
                        .get(at..)
                        .is_some_and(|rest| glob_match(pattern, rest))
                })
                .await
                .map(drop)
            }
            Invalidation::Clear => delete_scan(store, &self.namespace_prefix, |_| true)
                .await
                .map(drop),
        };
        if outcome.is_err() {
            self.failed();
        }
    }

    /// Applies a message received from the channel.
    async fn receive(&self, msg: &[u8]) {
        match Invalidation::decode(msg) {
            Some((sender, _)) if sender == self.sender => {}
            Some((_, inv)) => {
                self.apply(&inv).await;
                bump(&self.counters.l1_invalidations);
            }
            None => self.failed(),
        }
    }
}

/// The text of a glob before its first wildcard, unescaped: every key the
/// glob matches starts with it, so a scan of that literal prefix finds them.
pub(crate) fn literal_prefix(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' => break,
            '\\' => match chars.next() {
                Some(escaped) => out.push(escaped),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// Deletes every key under the literal `prefix` that `keep` selects, page
/// by page (one scan and one batch delete per page); returns how many.
pub(crate) async fn delete_scan<S: Store + ?Sized>(
    store: &S,
    prefix: &str,
    keep: impl Fn(&Key) -> bool,
) -> Result<u64> {
    let mut cursor = Cursor::start();
    let mut deleted = 0;
    loop {
        let page = store.scan(prefix, &cursor, SCAN_PAGE).await?;
        let keys: Vec<Key> = page.keys.into_iter().filter(|k| keep(k)).collect();
        if !keys.is_empty() {
            deleted += store.delete_many(&keys).await?;
        }
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(deleted),
        }
    }
}

/// Keeps the L1 in step with the channel until the cache is dropped
/// (`shutdown` resolves). `subscribe` returns `None` once the cache is gone.
pub(crate) async fn listen<F, Fut>(
    tier: Arc<Tier>,
    subscribe: F,
    mut shutdown: oneshot::Receiver<()>,
    ready: oneshot::Sender<bool>,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<Result<Subscription>>>,
{
    let mut ready = Some(ready);
    let mut backoff = MIN_BACKOFF;
    loop {
        let attempt = match select(Box::pin(subscribe()), &mut shutdown).await {
            Either::Left((Some(attempt), _)) => attempt,
            _ => return,
        };
        match attempt {
            Ok(stream) => {
                backoff = MIN_BACKOFF;
                // Messages may have been missed while unsubscribed.
                tier.apply(&Invalidation::Clear).await;
                tier.live.store(true, Ordering::SeqCst);
                if let Some(tx) = ready.take() {
                    let _ = tx.send(true);
                }
                let finished = follow(&tier, stream, &mut shutdown).await;
                tier.live.store(false, Ordering::SeqCst);
                tier.epoch.fetch_add(1, Ordering::SeqCst);
                if finished {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                tier.failed();
                if let Some(tx) = ready.take() {
                    let _ = tx.send(false);
                }
                return;
            }
            Err(_) => tier.failed(),
        }
        if let Either::Right(_) = select(Box::pin(rt::sleep(backoff)), &mut shutdown).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Applies messages until the stream ends (`false`) or shutdown (`true`).
async fn follow(
    tier: &Tier,
    mut stream: Subscription,
    shutdown: &mut oneshot::Receiver<()>,
) -> bool {
    loop {
        match select(stream.next(), &mut *shutdown).await {
            Either::Left((Some(msg), _)) => tier.receive(&msg).await,
            Either::Left((None, _)) => return false,
            Either::Right(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_junk_is_ignored() {
        let all = [
            Invalidation::Key(Key::new("cache:k:user:*").unwrap()),
            Invalidation::Tag(Key::new("cache:t:team").unwrap()),
            Invalidation::Prefix("cache:k:user:".into()),
            Invalidation::Matching("user:\\*:*".into()),
            Invalidation::Clear,
        ];
        for inv in all {
            let msg = inv.encode(42);
            assert_eq!(Invalidation::decode(&msg), Some((42, inv)));
        }
        for junk in [
            &b""[..],
            b"\x01short",
            b"\x02123456789k",
            b"\x0112345678\x00z",
        ] {
            assert_eq!(Invalidation::decode(junk), None);
        }
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("user:42:*"), "user:42:");
        assert_eq!(literal_prefix("user:\\*:*"), "user:*:");
        assert_eq!(literal_prefix("a?b"), "a");
        assert_eq!(literal_prefix("[ab]"), "");
        assert_eq!(literal_prefix("tail\\"), "tail\\");
        for (pattern, key) in [("user:\\*:*", "user:*:x"), ("a\\[b*", "a[bc")] {
            assert!(key.starts_with(&literal_prefix(pattern)));
            assert!(glob_match(pattern, key));
        }
    }
}
