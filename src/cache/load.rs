//! Cache-aside: a hit, or one coalesced load per key (with
//! stale-while-revalidate's background refresh).

use std::future::Future;
use std::sync::Arc;

use futures_util::future::{ready, Either};
use serde::{de::DeserializeOwned, Serialize};

use super::flight::{share_error, Flight, FlightOutput};
use super::options::{EntryOptions, Plan};
use super::read::{Found, Read};
use super::stats::bump;
use super::{Cache, Inner};
use crate::{rt, Codec, Error, ErrorKind, Key, MaybeSend, Result, Store};

impl<S: Store + 'static, C: Codec + 'static> Cache<S, C> {
    /// Checks the key and options at once; the returned future holds only
    /// what it needs (a hit's future stays small).
    pub(super) fn load<T, F, Fut>(
        &self,
        key: &str,
        options: EntryOptions,
        optional: bool,
        loader: F,
    ) -> impl Future<Output = Result<Option<T>>> + '_
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let prepared = self
            .inner
            .names
            .entry(key)
            .and_then(|key| Ok((key, self.inner.plan(options)?)));
        match prepared {
            Ok((key, plan)) => Either::Left(self.load_prepared(key, plan, optional, loader)),
            Err(e) => Either::Right(ready(Err(e))),
        }
    }

    pub(super) async fn load_prepared<T, F, Fut>(
        &self,
        key: Key,
        plan: Plan,
        optional: bool,
        loader: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let inner = &self.inner;
        let read = match inner.read(&key, &plan.tag_keys).await {
            Ok(read) => read,
            Err(_) => {
                bump(&inner.counters.errors);
                Read {
                    found: Found::Miss,
                    versions: None,
                    epoch: inner.epoch(),
                }
            }
        };
        if let Found::Fresh(env) = &read.found {
            if env.negative && optional {
                bump(&inner.counters.hits);
                return Ok(None);
            }
            if !env.negative {
                match inner.decode_value::<T>(env) {
                    Ok(value) => {
                        bump(&inner.counters.hits);
                        return Ok(value);
                    }
                    Err(_) => bump(&inner.counters.corrupt),
                }
            }
        }
        // Stale or missing: the rest lives in its own (boxed) future, so
        // a hit's future stays small.
        Box::pin(self.load_slow(key, plan, read, optional, loader)).await
    }

    /// `load` past a fresh hit: serve stale and refresh, or load.
    pub(super) async fn load_slow<T, F, Fut>(
        &self,
        key: Key,
        plan: Plan,
        read: Read,
        optional: bool,
        loader: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let inner = &self.inner;
        if let Found::Stale(env) = &read.found {
            if !env.negative {
                match inner.decode_value::<T>(env) {
                    Ok(stale) => {
                        bump(&inner.counters.hits);
                        bump(&inner.counters.stale_served);
                        let (flight, new) =
                            inner.start_flight(key, plan, read.versions, read.epoch, true, loader);
                        if !new {
                            return Ok(stale);
                        }
                        let driver = flight.clone();
                        if rt::spawn(async move {
                            let _ = driver.await;
                        })
                        .is_ok()
                        {
                            return Ok(stale);
                        }
                        // No runtime to refresh in the background: refresh
                        // now, and keep serving the stale value if that fails.
                        return match flight.await {
                            Ok(Some(bytes)) => Ok(inner.codec.decode(&bytes).ok().or(stale)),
                            _ => Ok(stale),
                        };
                    }
                    Err(_) => bump(&inner.counters.corrupt),
                }
            }
        }
        bump(&inner.counters.misses);
        let (flight, new) =
            inner.start_flight(key.clone(), plan, read.versions, read.epoch, false, loader);
        if !new {
            bump(&inner.counters.coalesced);
        }
        match flight.await {
            Ok(Some(bytes)) => inner
                .codec
                .decode(&bytes)
                .map(Some)
                .map_err(|e| e.with_key(&key)),
            Ok(None) if optional => Ok(None),
            Ok(None) => Err(Error::new(
                ErrorKind::NotFound,
                "the loader of a concurrent caller found nothing for this key",
            )
            .with_operation("cache.get_or_set")
            .with_key(&key)),
            Err(e) => Err(share_error(&e)),
        }
    }
}

impl<S: Store + 'static, C: Codec + 'static> Inner<S, C> {
    /// Joins the loader flight in the air for `key`, or starts one.
    pub(super) fn start_flight<T, F, Fut>(
        self: &Arc<Self>,
        key: Key,
        plan: Plan,
        versions: Option<Vec<Option<u64>>>,
        epoch: u64,
        refresh: bool,
        loader: F,
    ) -> (Flight, bool)
    where
        T: Serialize + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        let inner = self.clone();
        let flight_key = key.clone();
        self.flights.join_or_start(&flight_key, move |guard| {
            Box::pin(async move {
                let _guard = guard;
                inner
                    .run_loader(key, plan, versions, epoch, refresh, loader)
                    .await
            })
        })
    }

    /// The body of a flight: load, encode, store (failures to store are
    /// counted, not returned), deliver the encoded value.
    pub(super) async fn run_loader<T, F, Fut>(
        &self,
        key: Key,
        plan: Plan,
        versions: Option<Vec<Option<u64>>>,
        epoch: u64,
        refresh: bool,
        loader: F,
    ) -> FlightOutput
    where
        T: Serialize + MaybeSend + 'static,
        F: FnOnce() -> Fut + MaybeSend + 'static,
        Fut: Future<Output = Result<Option<T>>> + MaybeSend + 'static,
    {
        bump(&self.counters.loader_calls);
        // Versions are settled before loading: an invalidation while the
        // loader runs then makes the new entry miss, as it should.
        let tags = match self.current_tags(&plan, versions).await {
            Ok(tags) => Some(tags),
            Err(_) => {
                bump(&self.counters.errors);
                None
            }
        };
        let value = match loader().await {
            Ok(value) => value,
            Err(e) => {
                bump(&self.counters.loader_errors);
                return Err(Arc::new(e.with_key(&key)));
            }
        };
        let payload = match &value {
            Some(v) => Some(
                self.codec
                    .encode(v)
                    .map_err(|e| Arc::new(e.with_key(&key)))?,
            ),
            None => None,
        };
        let cacheable = payload.is_some() || self.config.negative_ttl.is_some();
        if let (Some(tags), true) = (tags, cacheable) {
            let (raw, ttl) = self.entry_bytes(&plan, &tags, payload.as_deref());
            match self.store.set(&key, raw.clone(), ttl).await {
                Ok(()) => {
                    bump(&self.counters.sets);
                    if refresh {
                        bump(&self.counters.refreshes);
                    }
                    if let Some(tier) = self.live_tier() {
                        let copies: Vec<(Key, u64)> = plan
                            .tag_keys
                            .iter()
                            .cloned()
                            .zip(tags.iter().map(|(_, v)| *v))
                            .collect();
                        tier.fill(epoch, &key, raw, ttl.map(|t| t.min(tier.ttl)), &copies)
                            .await;
                    }
                }
                Err(_) => bump(&self.counters.errors),
            }
        }
        Ok(payload)
    }
}
