//! Per-entry options and the settings they are resolved against.

use std::time::Duration;

use crate::Key;

/// How long an entry stays fresh, per write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Lifetime {
    #[default]
    CacheDefault,
    For(Duration),
    Forever,
}

/// Per-entry options: TTL, stale-while-revalidate grace and tags. The
/// default uses the cache's settings and no tags; a [`Duration`] converts
/// into options with that TTL.
///
/// ```
/// use rampart::cache::EntryOptions;
/// use std::time::Duration;
/// let opts = EntryOptions::new()
///     .ttl(Duration::from_secs(30))
///     .grace(Duration::from_secs(10))
///     .tags(["user:42", "team:7"]);
/// assert_eq!(opts.tag_names(), ["team:7", "user:42"]);
/// let short: EntryOptions = Duration::from_secs(5).into();
/// assert_eq!(short, EntryOptions::new().ttl(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryOptions {
    pub(super) ttl: Lifetime,
    pub(super) grace: Option<Option<Duration>>,
    pub(super) tags: Vec<String>,
}

impl EntryOptions {
    /// The cache's defaults, no tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fresh for `ttl` (before jitter).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Lifetime::For(ttl);
        self
    }

    /// Never expires (only deletes and invalidations remove it).
    pub fn no_expiry(mut self) -> Self {
        self.ttl = Lifetime::Forever;
        self
    }

    /// Served stale for `grace` after it stops being fresh, while a
    /// refresh runs (overrides the cache's setting).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(Some(grace));
        self
    }

    /// No stale-while-revalidate for this entry.
    pub fn no_grace(mut self) -> Self {
        self.grace = Some(None);
        self
    }

    /// Adds a tag (see [`super::Cache::invalidate_tag`]).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self.tags.sort();
        self.tags.dedup();
        self
    }

    /// Adds tags.
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self.tags.sort();
        self.tags.dedup();
        self
    }

    /// The tags, sorted, without duplicates.
    pub fn tag_names(&self) -> &[String] {
        &self.tags
    }
}

impl From<Duration> for EntryOptions {
    fn from(ttl: Duration) -> Self {
        EntryOptions::new().ttl(ttl)
    }
}

/// Cache-wide settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub(super) default_ttl: Option<Duration>,
    pub(super) grace: Option<Duration>,
    pub(super) jitter: f64,
    pub(super) negative_ttl: Option<Duration>,
    pub(super) compress_above: Option<usize>,
    pub(super) tag_ttl: Option<Duration>,
}

/// An options value resolved against the cache's settings and checked.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) fresh: Option<Duration>,
    pub(super) grace: Option<Duration>,
    pub(super) tags: Vec<String>,
    pub(super) tag_keys: Vec<Key>,
}
