//! [`Traced`]: a `tracing` event for every store call (feature `tracing`).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    Arg, Atomic, Capabilities, Clock, Cursor, Key, KeyTtl, LocalUpdateFn, Page, Result, Script,
    Store, StoreStats, Subscription, Swap, SystemClock, Timestamp, UpdateFn, Updated, Value,
};

/// The `tracing` target of every event [`Traced`] emits.
pub const TARGET: &str = "rampart::store";

/// Emits one `tracing` event per store call, with the operation, the key's
/// length (not the key: keys may carry user ids or emails), the duration
/// in microseconds and the outcome (`ok`, or the error's stable code such
/// as `RAMPART_UNAVAILABLE`).
///
/// Successful calls are `DEBUG` events; failed ones `WARN`. The key itself
/// is added as a `key` field only when `TRACE` is enabled for
/// [`TARGET`]. Everything is behind the `tracing` feature, so a build
/// without it pays nothing; with it, a disabled level costs one
/// filter check per call.
///
/// ```
/// use rampart::{layers::Traced, Key, MemoryStore, Store};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Traced::new(MemoryStore::new());
/// store.set(&Key::new("k")?, "v".into(), None).await?; // event: op="set" key_len=1 outcome="ok"
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    name: &'static str,
}

impl<S: Store> Traced<S> {
    /// Wraps `inner`; its events carry `store = "store"`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            name: "store",
        }
    }

    /// Names the store in its events (`store = name`), to tell apart the
    /// stores of one process (`"redis"`, `"l1"`, `"insurance"`).
    pub fn named(inner: S, name: &'static str) -> Self {
        Self { inner, name }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn call<T, F>(&self, op: &'static str, key: Option<&str>, f: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        if !tracing::enabled!(target: TARGET, tracing::Level::WARN) {
            return f.await;
        }
        let start = SystemClock.now();
        let out = f.await;
        record(self.name, op, key, start, out.as_ref().err());
        out
    }
}

fn elapsed_us(start: Timestamp) -> u64 {
    crate::duration_micros(SystemClock.now().saturating_duration_since(start))
}

fn record(
    store: &'static str,
    op: &'static str,
    key: Option<&str>,
    start: Timestamp,
    err: Option<&crate::Error>,
) {
    let duration_us = elapsed_us(start);
    let key_len = key.map_or(0, str::len);
    match err {
        None => {
            if tracing::enabled!(target: TARGET, tracing::Level::TRACE) {
                tracing::trace!(target: TARGET, store, op, key_len, key = key.unwrap_or(""), duration_us, outcome = "ok");
            } else {
                tracing::debug!(target: TARGET, store, op, key_len, duration_us, outcome = "ok");
            }
        }
        Some(e) => {
            tracing::warn!(
                target: TARGET,
                store,
                op,
                key_len,
                duration_us,
                outcome = e.code(),
                temporary = e.is_temporary(),
                error = e.message(),
            );
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for Traced<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.call("get", Some(key.as_str()), self.inner.get(key))
            .await
    }
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.call("set", Some(key.as_str()), self.inner.set(key, value, ttl))
            .await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.call("delete", Some(key.as_str()), self.inner.delete(key))
            .await
    }
    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        self.call("ttl", Some(key.as_str()), self.inner.ttl(key))
            .await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        self.call(
            "compare_and_swap",
            Some(key.as_str()),
            self.inner.compare_and_swap(key, expected, new, ttl),
        )
        .await
    }
    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        self.call("scan", Some(prefix), self.inner.scan(prefix, cursor, count))
            .await
    }
    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        self.call("update", Some(key.as_str()), self.inner.update(key, f))
            .await
    }
    fn update_local(&self, key: &Key, f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
        if !tracing::enabled!(target: TARGET, tracing::Level::WARN) {
            return self.inner.update_local(key, f);
        }
        let start = SystemClock.now();
        let out = self.inner.update_local(key, f)?;
        record(
            self.name,
            "update_local",
            Some(key.as_str()),
            start,
            out.as_ref().err(),
        );
        Some(out)
    }
    async fn run_atomic(
        &self,
        key: &Key,
        script: &Script,
        args: &[Arg],
        apply: &mut UpdateFn<'_>,
    ) -> Result<Atomic> {
        self.call(
            "run_atomic",
            Some(key.as_str()),
            self.inner.run_atomic(key, script, args, apply),
        )
        .await
    }
    async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.call(
            "set_if_absent",
            Some(key.as_str()),
            self.inner.set_if_absent(key, value, ttl),
        )
        .await
    }
    async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
        self.call(
            "delete_if_equal",
            Some(key.as_str()),
            self.inner.delete_if_equal(key, expected),
        )
        .await
    }
    async fn expire_if_equal(
        &self,
        key: &Key,
        expected: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        self.call(
            "expire_if_equal",
            Some(key.as_str()),
            self.inner.expire_if_equal(key, expected, ttl),
        )
        .await
    }
    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64> {
        self.call(
            "increment",
            Some(key.as_str()),
            self.inner.increment(key, delta, ttl_if_created),
        )
        .await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let first = keys.first().map(Key::as_str);
        self.call("get_many", first, self.inner.get_many(keys))
            .await
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        let first = keys.first().map(Key::as_str);
        self.call("delete_many", first, self.inner.delete_many(keys))
            .await
    }
    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        let first = keys.first().map(|k| k.as_str());
        self.call("eval", first, self.inner.eval(script, keys, args))
            .await
    }
    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        self.call(
            "publish",
            Some(channel.as_str()),
            self.inner.publish(channel, message),
        )
        .await
    }
    async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
        self.call(
            "subscribe",
            Some(channel.as_str()),
            self.inner.subscribe(channel),
        )
        .await
    }
    async fn server_time(&self) -> Result<Timestamp> {
        self.call("server_time", None, self.inner.server_time())
            .await
    }
    async fn stats(&self) -> Result<StoreStats> {
        self.call("stats", None, self.inner.stats()).await
    }
}
