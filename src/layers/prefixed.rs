//! [`Prefixed`]: a namespace inside a shared store.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    Arg, Atomic, Capabilities, Cursor, Error, Key, KeyTtl, LocalUpdateFn, Page, Result, Script,
    Store, StoreStats, Subscription, Swap, Timestamp, UpdateFn, Updated, Value, SEPARATOR,
};

/// Puts every key under `prefix:` so several apps or components share one
/// store without colliding; scans only see (and return) keys of the
/// namespace, without the prefix.
///
/// ```
/// use rampart::{layers::Prefixed, Key, MemoryStore, Store};
/// use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let shared = Arc::new(MemoryStore::new());
/// let app = Prefixed::new(shared.clone(), "app:cache")?;
/// app.set(&Key::new("k")?, "v".into(), None).await?;
/// assert!(shared.get(&Key::new("app:cache:k")?).await?.is_some());
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Prefixed<S> {
    inner: S,
    /// The prefix with its trailing separator.
    prefix: String,
}

impl<S: Store> Prefixed<S> {
    /// Wraps `inner`, putting keys under `prefix` (a trailing `:` is added
    /// if missing). An empty prefix is [`crate::ErrorKind::InvalidKey`].
    pub fn new(inner: S, prefix: impl Into<String>) -> Result<Self> {
        let mut prefix = prefix.into();
        if prefix.is_empty() || prefix == ":" {
            return Err(Error::invalid_key("a namespace prefix is empty"));
        }
        if !prefix.ends_with(SEPARATOR) {
            prefix.push(SEPARATOR);
        }
        crate::validate_prefix(&prefix)?;
        Ok(Self { inner, prefix })
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The prefix, with its trailing separator.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `key` inside the namespace; too long a result is
    /// [`crate::ErrorKind::InvalidKey`].
    pub fn outer_key(&self, key: &Key) -> Result<Key> {
        Key::new(format!("{}{}", self.prefix, key.as_str()))
    }

    fn inner_key(&self, outer: &Key) -> Option<Key> {
        outer
            .as_str()
            .strip_prefix(&self.prefix)
            .and_then(|k| Key::new(k).ok())
    }

    fn outer_keys(&self, keys: &[Key]) -> Result<Vec<Key>> {
        keys.iter().map(|k| self.outer_key(k)).collect()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for Prefixed<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.inner.get(&self.outer_key(key)?).await
    }
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.inner.set(&self.outer_key(key)?, value, ttl).await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.inner.delete(&self.outer_key(key)?).await
    }
    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        self.inner.ttl(&self.outer_key(key)?).await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        let key = self.outer_key(key)?;
        self.inner.compare_and_swap(&key, expected, new, ttl).await
    }
    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        let full = format!("{}{prefix}", self.prefix);
        let page = self.inner.scan(&full, cursor, count).await?;
        Ok(Page {
            keys: page.keys.iter().filter_map(|k| self.inner_key(k)).collect(),
            next: page.next,
        })
    }
    async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
        self.inner.update(&self.outer_key(key)?, f).await
    }
    fn update_local(&self, key: &Key, f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
        match self.outer_key(key) {
            Ok(outer) => self.inner.update_local(&outer, f),
            Err(e) => Some(Err(e)),
        }
    }
    async fn run_atomic(
        &self,
        key: &Key,
        script: &Script,
        args: &[Arg],
        apply: &mut UpdateFn<'_>,
    ) -> Result<Atomic> {
        let key = self.outer_key(key)?;
        self.inner.run_atomic(&key, script, args, apply).await
    }
    async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.inner
            .set_if_absent(&self.outer_key(key)?, value, ttl)
            .await
    }
    async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
        self.inner
            .delete_if_equal(&self.outer_key(key)?, expected)
            .await
    }
    async fn expire_if_equal(
        &self,
        key: &Key,
        expected: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let key = self.outer_key(key)?;
        self.inner.expire_if_equal(&key, expected, ttl).await
    }
    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64> {
        let key = self.outer_key(key)?;
        self.inner.increment(&key, delta, ttl_if_created).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.inner.get_many(&self.outer_keys(keys)?).await
    }
    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        self.inner.delete_many(&self.outer_keys(keys)?).await
    }
    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        let outer = keys
            .iter()
            .map(|k| self.outer_key(k))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Key> = outer.iter().collect();
        self.inner.eval(script, &refs, args).await
    }
    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        self.inner.publish(&self.outer_key(channel)?, message).await
    }
    async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
        self.inner.subscribe(&self.outer_key(channel)?).await
    }
    async fn server_time(&self) -> Result<Timestamp> {
        self.inner.server_time().await
    }
    async fn stats(&self) -> Result<StoreStats> {
        self.inner.stats().await
    }
}
