//! The read path: L1, then the store (the entry and, in the same round
//! trip, the versions of the tags the caller named), then freshness and
//! tag checks.

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::envelope::Envelope;
use super::stats::bump;
use super::tags::parse_version;
use super::tier::Tier;
use super::Inner;
use crate::{Codec, Key, Result, Store};

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Age {
    Fresh,
    Stale,
    Dead,
}

/// What a read found.
pub(super) enum Found {
    Fresh(Envelope),
    Stale(Envelope),
    Miss,
}

/// The outcome of a read, with what a write after a miss needs.
pub(super) struct Read {
    pub(super) found: Found,
    /// The current versions of the plan's tags, read with the entry; `None`
    /// when not read (an L1 hit, a failed read).
    pub(super) versions: Option<Vec<Option<u64>>>,
    /// The L1 epoch before the L2 read (two-tier).
    pub(super) epoch: u64,
}

impl<S: Store + 'static, C: Codec + 'static> Inner<S, C> {
    pub(super) fn now(&self) -> u64 {
        self.clock.now().as_micros()
    }

    pub(super) fn epoch(&self) -> u64 {
        self.tier.as_ref().map_or(0, |t| t.epoch())
    }

    /// Where `env` is in its life.
    ///
    /// The stores expire an entry when its stale period ends, so an entry
    /// the store returned is alive. When it has no stale period and the
    /// cache runs on the system clock, as the store does, the store's
    /// expiry already answers "fresh?" (to the store's precision, at worst
    /// a millisecond late), so the hot path skips reading the clock; with
    /// an injected clock or a grace period, the envelope is checked.
    pub(super) fn age(&self, env: &Envelope) -> Age {
        if env.fresh_until == u64::MAX || (self.system_clock && env.fresh_until == env.stale_until)
        {
            return Age::Fresh;
        }
        let now = self.now();
        if now >= env.stale_until {
            Age::Dead
        } else if now >= env.fresh_until {
            Age::Stale
        } else {
            Age::Fresh
        }
    }

    pub(super) fn live_tier(&self) -> Option<&Tier> {
        self.tier.as_deref().filter(|t| t.live())
    }

    /// Decodes an entry's value (`None` for a negative entry).
    pub(super) fn decode_value<T: DeserializeOwned>(&self, env: &Envelope) -> Result<Option<T>> {
        if env.negative {
            return Ok(None);
        }
        self.codec.decode(&env.payload()?).map(Some)
    }

    /// Reads `key` (L1 first when live), with the versions of `tag_keys`
    /// in the same round trip, and checks freshness and tags.
    pub(super) async fn read(&self, key: &Key, tag_keys: &[Key]) -> Result<Read> {
        if self.tier.is_none() && tag_keys.is_empty() {
            // The common case, kept to one small future: one store read.
            let raw = self.store.get(key).await?;
            // (Scoped so nothing big stays in the future across the await.)
            let tagged = match self.judge(raw, Vec::new(), 0) {
                Ok(read) => return Ok(read),
                Err((env, versions)) => Box::pin(self.check_tags(key, tag_keys, env, versions, 0)),
            };
            return tagged.await;
        }
        Box::pin(self.read_tiered(key, tag_keys)).await
    }

    /// [`Inner::read`] with an L1, or with tag versions to fetch.
    pub(super) async fn read_tiered(&self, key: &Key, tag_keys: &[Key]) -> Result<Read> {
        if let Some(tier) = self.live_tier() {
            if let Some(env) = self.read_l1(tier, key).await {
                bump(&self.counters.l1_hits);
                return Ok(Read {
                    found: Found::Fresh(env),
                    versions: None,
                    epoch: tier.epoch(),
                });
            }
        }
        let epoch = self.epoch();
        let (raw, versions) = if tag_keys.is_empty() {
            (self.store.get(key).await?, Vec::new())
        } else {
            let mut keys = Vec::with_capacity(1 + tag_keys.len());
            keys.push(key.clone());
            keys.extend(tag_keys.iter().cloned());
            let mut values = self.store.get_many(&keys).await?.into_iter();
            let raw = values.next().flatten();
            let versions = values.map(|v| self.version(v.as_deref())).collect();
            (raw, versions)
        };
        match self.judge(raw, versions, epoch) {
            Ok(read) => {
                if let Found::Fresh(env) = &read.found {
                    self.fill_l1(epoch, key, env, &[]).await;
                }
                Ok(read)
            }
            Err((env, versions)) => self.check_tags(key, tag_keys, env, versions, epoch).await,
        }
    }

    /// Decodes and ages what the store returned: the read, or (`Err`) an
    /// entry whose tags still have to be checked.
    #[allow(clippy::type_complexity)]
    pub(super) fn judge(
        &self,
        raw: Option<Bytes>,
        versions: Vec<Option<u64>>,
        epoch: u64,
    ) -> std::result::Result<Read, (Envelope, Vec<Option<u64>>)> {
        let found = match raw.map(Envelope::decode) {
            None => Found::Miss,
            Some(Ok(env)) if env.codec == self.codec.format_id() => match self.age(&env) {
                Age::Dead => Found::Miss,
                _ if !env.tags.is_empty() => return Err((env, versions)),
                Age::Stale => Found::Stale(env),
                Age::Fresh => Found::Fresh(env),
            },
            Some(_) => {
                bump(&self.counters.corrupt);
                Found::Miss
            }
        };
        Ok(Read {
            found,
            versions: Some(versions),
            epoch,
        })
    }

    /// Finishes a read of a tagged entry: its tags' current versions
    /// (from those read with it, the rest fetched) must match.
    pub(super) async fn check_tags(
        &self,
        key: &Key,
        tag_keys: &[Key],
        env: Envelope,
        versions: Vec<Option<u64>>,
        epoch: u64,
    ) -> Result<Read> {
        let current = self.versions_of(&env.tags, tag_keys, &versions).await?;
        let valid = env
            .tags
            .iter()
            .zip(&current)
            .all(|((_, recorded), (_, now))| Some(*recorded) == *now);
        let read = |found| Read {
            found,
            versions: Some(versions),
            epoch,
        };
        if !valid {
            return Ok(read(Found::Miss));
        }
        Ok(match self.age(&env) {
            Age::Dead => read(Found::Miss),
            Age::Stale => read(Found::Stale(env)),
            Age::Fresh => {
                let copies: Vec<(Key, u64)> = current
                    .into_iter()
                    .filter_map(|(k, v)| Some((k?, v?)))
                    .collect();
                self.fill_l1(epoch, key, &env, &copies).await;
                read(Found::Fresh(env))
            }
        })
    }

    /// Copies a fresh entry read from the L2 into a live L1.
    pub(super) async fn fill_l1(&self, epoch: u64, key: &Key, env: &Envelope, tags: &[(Key, u64)]) {
        if let Some(tier) = self.live_tier() {
            let now = self.now();
            let left = (env.stale_until != u64::MAX)
                .then(|| Duration::from_micros(env.stale_until.saturating_sub(now).max(1)));
            tier.fill(epoch, key, env.raw.clone(), left, tags).await;
        }
    }

    /// A fresh entry from the L1 whose tags match the L1's copies of the
    /// tag versions; `None` sends the read to the L2.
    pub(super) async fn read_l1(&self, tier: &Tier, key: &Key) -> Option<Envelope> {
        let raw = match tier.store.get(key).await {
            Ok(raw) => raw?,
            Err(_) => {
                bump(&self.counters.errors);
                return None;
            }
        };
        let env = match Envelope::decode(raw) {
            Ok(env) if env.codec == self.codec.format_id() => env,
            _ => {
                bump(&self.counters.corrupt);
                let _ = tier.store.delete(key).await;
                return None;
            }
        };
        if self.age(&env) != Age::Fresh {
            return None;
        }
        if !env.tags.is_empty() {
            let keys = env
                .tags
                .iter()
                .map(|(t, _)| self.names.tag(t))
                .collect::<Result<Vec<_>>>()
                .ok()?;
            let copies = tier.store.get_many(&keys).await.ok()?;
            let valid = env.tags.iter().zip(&copies).all(|((_, recorded), copy)| {
                copy.as_deref().and_then(parse_version) == Some(*recorded)
            });
            if !valid {
                return None;
            }
        }
        Some(env)
    }

    /// A tag version read from the store.
    pub(super) fn version(&self, stored: Option<&[u8]>) -> Option<u64> {
        let stored = stored?;
        let version = parse_version(stored);
        if version.is_none() {
            bump(&self.counters.corrupt);
        }
        version
    }

    /// The current versions of an entry's tags (with their keys): from the
    /// ones read with the entry where it named the same tags, the rest in
    /// one more batch read.
    pub(super) async fn versions_of(
        &self,
        tags: &[(String, u64)],
        read_keys: &[Key],
        read_versions: &[Option<u64>],
    ) -> Result<Vec<(Option<Key>, Option<u64>)>> {
        let mut out = Vec::with_capacity(tags.len());
        let mut missing = Vec::new();
        for (i, (tag, _)) in tags.iter().enumerate() {
            let Ok(key) = self.names.tag(tag) else {
                // A tag this cache could not have written: never valid.
                out.push((None, None));
                continue;
            };
            match read_keys.iter().position(|k| *k == key) {
                Some(at) => out.push((Some(key), read_versions.get(at).copied().flatten())),
                None => {
                    missing.push((i, key.clone()));
                    out.push((Some(key), None));
                }
            }
        }
        if !missing.is_empty() {
            let keys: Vec<Key> = missing.iter().map(|(_, k)| k.clone()).collect();
            let values = self.store.get_many(&keys).await?;
            for ((i, _), value) in missing.iter().zip(values) {
                out[*i].1 = self.version(value.as_deref());
            }
        }
        Ok(out)
    }
}
