//! The write path: resolving options, tag versions, envelopes, and
//! telling the other instances of a two-tier cache.

use std::time::Duration;

use bytes::Bytes;

use super::envelope::{NewEntry, MAX_TAGS};
use super::options::{EntryOptions, Lifetime, Plan};
use super::stats::bump;
use super::tags::{encode_version, parse_version};
use super::tier::Invalidation;
use super::Inner;
use crate::{check_ttl, Codec, Error, ErrorKind, Key, Result, Store, Swap, MAX_TTL};

impl<S: Store + 'static, C: Codec + 'static> Inner<S, C> {
    /// Counts a store failure and names the operation.
    pub(super) fn failed(&self, e: Error, operation: &'static str) -> Error {
        bump(&self.counters.errors);
        e.with_operation(operation)
    }

    pub(super) fn plan(&self, options: EntryOptions) -> Result<Plan> {
        let fresh = match options.ttl {
            Lifetime::CacheDefault => self.config.default_ttl,
            Lifetime::For(ttl) => Some(ttl),
            Lifetime::Forever => None,
        };
        let grace = options.grace.unwrap_or(self.config.grace);
        check_ttl(fresh)?;
        check_ttl(grace)?;
        if options.tags.len() > MAX_TAGS {
            return Err(Error::invalid_input(format!(
                "an entry may carry at most {MAX_TAGS} tags"
            )));
        }
        let mut tag_keys = Vec::new();
        if !options.tags.is_empty() {
            tag_keys.reserve_exact(options.tags.len());
            for tag in &options.tags {
                tag_keys.push(self.names.tag(tag)?);
            }
        }
        Ok(Plan {
            fresh,
            grace,
            tags: options.tags,
            tag_keys,
        })
    }

    /// Fresh-until, stale-until and the store TTL of an entry written now.
    pub(super) fn lifetimes(
        &self,
        fresh: Option<Duration>,
        grace: Option<Duration>,
    ) -> (u64, u64, Option<Duration>) {
        let Some(fresh) = fresh else {
            return (u64::MAX, u64::MAX, None);
        };
        let fresh = if self.config.jitter > 0.0 {
            fresh
                .mul_f64(1.0 - self.config.jitter * self.rng.unit())
                .max(Duration::from_micros(1))
        } else {
            fresh
        };
        let total = fresh.saturating_add(grace.unwrap_or_default()).min(MAX_TTL);
        let now = self.now();
        let fresh_until = now.saturating_add(crate::duration_micros(fresh));
        let stale_until = now.saturating_add(crate::duration_micros(total));
        (fresh_until, stale_until.max(fresh_until), Some(total))
    }

    /// The envelope of a new entry (`payload: None` = negative) and its
    /// store TTL.
    pub(super) fn entry_bytes(
        &self,
        plan: &Plan,
        tags: &[(String, u64)],
        payload: Option<&[u8]>,
    ) -> (Bytes, Option<Duration>) {
        let (fresh_until, stale_until, ttl) = match payload {
            Some(_) => self.lifetimes(plan.fresh, plan.grace),
            None => self.lifetimes(self.config.negative_ttl, None),
        };
        let raw = NewEntry {
            codec: self.codec.format_id(),
            fresh_until,
            stale_until,
            tags,
            payload,
            compress_above: self.config.compress_above,
        }
        .encode();
        (raw, ttl)
    }

    /// The versions of the plan's tags to record in a new entry: those read
    /// before the value was loaded (`known`), reading them if unknown, and
    /// creating a version for each tag that has none.
    pub(super) async fn current_tags(
        &self,
        plan: &Plan,
        known: Option<Vec<Option<u64>>>,
    ) -> Result<Vec<(String, u64)>> {
        if plan.tags.is_empty() {
            return Ok(Vec::new());
        }
        let versions = match known {
            Some(v) if v.len() == plan.tags.len() => v,
            _ => {
                let values = self.store.get_many(&plan.tag_keys).await?;
                values.iter().map(|v| self.version(v.as_deref())).collect()
            }
        };
        let mut out = Vec::with_capacity(plan.tags.len());
        for ((tag, key), version) in plan.tags.iter().zip(&plan.tag_keys).zip(versions) {
            let version = match version {
                Some(v) => v,
                None => self.create_version(key).await?,
            };
            out.push((tag.clone(), version));
        }
        Ok(out)
    }

    /// Gives a tag without a (valid) version one; concurrent writers agree
    /// through compare-and-swap.
    pub(super) async fn create_version(&self, key: &Key) -> Result<u64> {
        for _ in 0..8 {
            let version = self.rng.next();
            let swap = self
                .store
                .compare_and_swap(
                    key,
                    None,
                    Some(encode_version(version)),
                    self.config.tag_ttl,
                )
                .await?;
            match swap {
                Swap::Swapped => return Ok(version),
                Swap::Conflict(Some(current)) => match parse_version(&current) {
                    Some(v) => return Ok(v),
                    None => {
                        // A corrupt version: replace it (its entries miss).
                        self.store
                            .set(key, encode_version(version), self.config.tag_ttl)
                            .await?;
                        return Ok(version);
                    }
                },
                Swap::Conflict(None) => continue,
            }
        }
        Err(
            Error::new(ErrorKind::Conflict, "could not create a tag version")
                .with_operation("cache.tag")
                .with_key(key),
        )
    }

    /// Applies an invalidation to this process's L1 and tells the others.
    pub(super) async fn broadcast(&self, inv: Invalidation) {
        let Some(tier) = &self.tier else {
            return;
        };
        tier.apply(&inv).await;
        let msg = inv.encode(tier.sender);
        if self.store.publish(&self.names.channel, msg).await.is_err() {
            bump(&self.counters.errors);
        }
    }
}
