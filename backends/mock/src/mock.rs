//! [`MockStore`]: a mockall mock of the whole [`Store`] trait.
//!
//! The methods whose arguments hold references inside other types
//! (`Option<&[u8]>`, `&mut UpdateFn<'_>`, `&[&Key]`) are declared below with
//! every lifetime named, in the order `async_trait` numbers the trait's
//! elided ones: mockall rejects elided lifetimes nested in a type, and
//! mixing named and elided ones puts the impl out of step with the trait.
//! Spelled out in full, the signatures are the trait's own, so every method
//! is mocked directly and callers see no difference.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rampart::{
    Arg, Atomic, Capabilities, Cursor, Key, KeyTtl, LocalUpdateFn, Page, Result, Script, Store,
    StoreStats, Subscription, Swap, Timestamp, UpdateFn, Updated, Value,
};

mockall::mock! {
    /// A [mockall] mock of [`rampart::Store`]: every method, the provided
    /// ones (`update`, `run_atomic`, `increment`, `eval`, ...) included, has
    /// an `expect_*` method, so a test states exactly which calls the code
    /// under test makes and what each returns.
    ///
    /// A call without a matching expectation panics (that is the test
    /// failing); so does a missing call once the mock is dropped, when the
    /// expectation was given `.times(n)`. `capabilities()` is mocked too:
    /// code that asks for it (`rampart::run` does) needs
    /// `expect_capabilities().return_const(...)`; so is `update_local`: a
    /// `Limiter` tries it first, so give it
    /// `expect_update_local().returning(|_, _| None)` (no local path).
    ///
    /// `returning` closures take the method's arguments and return its
    /// output (the `Result`, not a future). For `compare_and_swap`,
    /// `update`, `run_atomic` and `eval`, whose arguments borrow inside
    /// other types, match calls with `withf` (mockall cannot offer `with`
    /// predicates there).
    ///
    /// An `update` whose mock runs the caller's closure, the way a store
    /// does, and an `eval` matched on its keys and arguments:
    ///
    /// ```
    /// use rampart::{Arg, Bytes, Capabilities, Change, Key, Script, Store, Updated, Value};
    /// use rampart_mock::MockStore;
    ///
    /// static TOUCH: Script = Script::new("return redis.call('INCR', KEYS[1])");
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut store = MockStore::new();
    /// store.expect_capabilities().return_const(Capabilities::REDIS);
    /// store.expect_update().times(1).returning(|_key, f| {
    ///     // The stored value is "1": show it to the closure, keep its decision.
    ///     match f(Some(b"1")) {
    ///         Change::Set { value, .. } => Ok(Updated::new(Some(value), true, 1)),
    ///         _ => Ok(Updated::new(Some(Bytes::from_static(b"1")), false, 1)),
    ///     }
    /// });
    /// store
    ///     .expect_eval()
    ///     .withf(|script, keys, args| {
    ///         script.sha1() == TOUCH.sha1() && keys[0].as_str() == "hits" && args.is_empty()
    ///     })
    ///     .returning(|_, _, _| Ok(Value::Int(2)));
    ///
    /// let key = Key::new("hits")?;
    /// let updated = store
    ///     .update(&key, &mut |current| Change::Set {
    ///         value: Bytes::from(format!("{}0", String::from_utf8_lossy(current.unwrap()))),
    ///         ttl: None,
    ///     })
    ///     .await?;
    /// assert_eq!(updated.value.as_deref(), Some(&b"10"[..]));
    /// assert!(store.capabilities().scripting);
    /// assert_eq!(store.eval(&TOUCH, &[&key], &[]).await?, Value::Int(2));
    /// # Ok::<(), rampart::Error>(()) }).unwrap();
    /// ```
    ///
    /// [mockall]: https://docs.rs/mockall
    #[derive(Debug)]
    pub Store {}

    #[async_trait]
    impl Store for Store {
        fn capabilities(&self) -> Capabilities;
        async fn get(&self, key: &Key) -> Result<Option<Bytes>>;
        async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()>;
        async fn delete(&self, key: &Key) -> Result<bool>;
        async fn ttl(&self, key: &Key) -> Result<KeyTtl>;
        async fn compare_and_swap<'s, 'k, 'e>(
            &'s self,
            key: &'k Key,
            expected: Option<&'e [u8]>,
            new: Option<Bytes>,
            ttl: Option<Duration>,
        ) -> Result<Swap>;
        async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page>;
        async fn update<'s, 'k, 'r, 'f>(
            &'s self,
            key: &'k Key,
            f: &'r mut UpdateFn<'f>,
        ) -> Result<Updated>;
        fn update_local<'s, 'k, 'r, 'f>(
            &'s self,
            key: &'k Key,
            f: &'r mut LocalUpdateFn<'f>,
        ) -> Option<Result<()>>;
        async fn run_atomic<'s, 'k, 'c, 'a, 'r, 'f>(
            &'s self,
            key: &'k Key,
            script: &'c Script,
            args: &'a [Arg],
            apply: &'r mut UpdateFn<'f>,
        ) -> Result<Atomic>;
        async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool>;
        async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool>;
        async fn expire_if_equal(&self, key: &Key, expected: &[u8], ttl: Option<Duration>) -> Result<bool>;
        async fn increment(&self, key: &Key, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64>;
        async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>>;
        async fn delete_many(&self, keys: &[Key]) -> Result<u64>;
        async fn eval<'s, 'c, 'l, 'k, 'a>(
            &'s self,
            script: &'c Script,
            keys: &'l [&'k Key],
            args: &'a [Arg],
        ) -> Result<Value>;
        async fn publish(&self, channel: &Key, message: Bytes) -> Result<()>;
        async fn subscribe(&self, channel: &Key) -> Result<Subscription>;
        async fn server_time(&self) -> Result<Timestamp>;
        async fn stats(&self) -> Result<StoreStats>;
    }
}

#[cfg(test)]
mod tests {
    //! Keeps the mock complete: `Forward` must implement every `Store`
    //! method (clippy's `missing_trait_methods`), and its test calls each
    //! through an expectation, so a method added to the trait but not to
    //! `mock!` above fails here instead of silently running its default.

    use super::*;
    use rampart::{Change, Error, ErrorKind};

    struct Forward(MockStore);

    #[async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl Store for Forward {
        fn capabilities(&self) -> Capabilities {
            self.0.capabilities()
        }
        async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
            self.0.get(key).await
        }
        async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
            self.0.set(key, value, ttl).await
        }
        async fn delete(&self, key: &Key) -> Result<bool> {
            self.0.delete(key).await
        }
        async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
            self.0.ttl(key).await
        }
        async fn compare_and_swap(
            &self,
            key: &Key,
            expected: Option<&[u8]>,
            new: Option<Bytes>,
            ttl: Option<Duration>,
        ) -> Result<Swap> {
            self.0.compare_and_swap(key, expected, new, ttl).await
        }
        async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
            self.0.scan(prefix, cursor, count).await
        }
        async fn update(&self, key: &Key, f: &mut UpdateFn<'_>) -> Result<Updated> {
            self.0.update(key, f).await
        }
        fn update_local(&self, key: &Key, f: &mut LocalUpdateFn<'_>) -> Option<Result<()>> {
            self.0.update_local(key, f)
        }
        async fn run_atomic(
            &self,
            key: &Key,
            script: &Script,
            args: &[Arg],
            apply: &mut UpdateFn<'_>,
        ) -> Result<Atomic> {
            self.0.run_atomic(key, script, args, apply).await
        }
        async fn set_if_absent(
            &self,
            key: &Key,
            value: Bytes,
            ttl: Option<Duration>,
        ) -> Result<bool> {
            self.0.set_if_absent(key, value, ttl).await
        }
        async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
            self.0.delete_if_equal(key, expected).await
        }
        async fn expire_if_equal(
            &self,
            key: &Key,
            expected: &[u8],
            ttl: Option<Duration>,
        ) -> Result<bool> {
            self.0.expire_if_equal(key, expected, ttl).await
        }
        async fn increment(
            &self,
            key: &Key,
            delta: i64,
            ttl_if_created: Option<Duration>,
        ) -> Result<i64> {
            self.0.increment(key, delta, ttl_if_created).await
        }
        async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
            self.0.get_many(keys).await
        }
        async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
            self.0.delete_many(keys).await
        }
        async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
            self.0.eval(script, keys, args).await
        }
        async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
            self.0.publish(channel, message).await
        }
        async fn subscribe(&self, channel: &Key) -> Result<Subscription> {
            self.0.subscribe(channel).await
        }
        async fn server_time(&self) -> Result<Timestamp> {
            self.0.server_time().await
        }
        async fn stats(&self) -> Result<StoreStats> {
            self.0.stats().await
        }
    }

    /// An error that names the method, so each answer is traceable.
    fn mocked(op: &'static str) -> Error {
        Error::backend("mocked").with_operation(op)
    }

    #[tokio::test]
    async fn every_method_is_mocked() {
        static SCRIPT: Script = Script::new("return 1");
        let mut m = MockStore::new();
        m.expect_capabilities()
            .times(1)
            .return_const(Capabilities::REDIS);
        m.expect_get().times(1).returning(|_| Err(mocked("get")));
        m.expect_set()
            .times(1)
            .returning(|_, _, _| Err(mocked("set")));
        m.expect_delete()
            .times(1)
            .returning(|_| Err(mocked("delete")));
        m.expect_ttl().times(1).returning(|_| Err(mocked("ttl")));
        m.expect_compare_and_swap()
            .times(1)
            .returning(|_, _, _, _| Err(mocked("compare_and_swap")));
        m.expect_scan()
            .times(1)
            .returning(|_, _, _| Err(mocked("scan")));
        m.expect_update()
            .times(1)
            .returning(|_, _| Err(mocked("update")));
        m.expect_update_local()
            .times(1)
            .returning(|_, _| Some(Err(mocked("update_local"))));
        m.expect_run_atomic()
            .times(1)
            .returning(|_, _, _, _| Err(mocked("run_atomic")));
        m.expect_set_if_absent()
            .times(1)
            .returning(|_, _, _| Err(mocked("set_if_absent")));
        m.expect_delete_if_equal()
            .times(1)
            .returning(|_, _| Err(mocked("delete_if_equal")));
        m.expect_expire_if_equal()
            .times(1)
            .returning(|_, _, _| Err(mocked("expire_if_equal")));
        m.expect_increment()
            .times(1)
            .returning(|_, _, _| Err(mocked("increment")));
        m.expect_get_many()
            .times(1)
            .returning(|_| Err(mocked("get_many")));
        m.expect_delete_many()
            .times(1)
            .returning(|_| Err(mocked("delete_many")));
        m.expect_eval()
            .times(1)
            .returning(|_, _, _| Err(mocked("eval")));
        m.expect_publish()
            .times(1)
            .returning(|_, _| Err(mocked("publish")));
        m.expect_subscribe()
            .times(1)
            .returning(|_| Err(mocked("subscribe")));
        m.expect_server_time()
            .times(1)
            .returning(|| Err(mocked("server_time")));
        m.expect_stats().times(1).returning(|| Err(mocked("stats")));

        let s = Forward(m);
        let k = Key::new("k").unwrap();
        let keys = [k.clone()];
        let op = |r: Error| {
            assert_eq!(r.kind(), ErrorKind::Backend);
            r.operation().unwrap()
        };
        assert_eq!(s.capabilities(), Capabilities::REDIS);
        assert_eq!(op(s.get(&k).await.unwrap_err()), "get");
        assert_eq!(op(s.set(&k, Bytes::new(), None).await.unwrap_err()), "set");
        assert_eq!(op(s.delete(&k).await.unwrap_err()), "delete");
        assert_eq!(op(s.ttl(&k).await.unwrap_err()), "ttl");
        let cas = s.compare_and_swap(&k, None, None, None).await;
        assert_eq!(op(cas.unwrap_err()), "compare_and_swap");
        let scan = s.scan("", &Cursor::start(), 10).await;
        assert_eq!(op(scan.unwrap_err()), "scan");
        let update = s.update(&k, &mut |_| Change::Keep).await;
        assert_eq!(op(update.unwrap_err()), "update");
        let local = s.update_local(&k, &mut |_, _| rampart::LocalChange::Keep);
        assert_eq!(op(local.unwrap().unwrap_err()), "update_local");
        let atomic = s.run_atomic(&k, &SCRIPT, &[], &mut |_| Change::Keep).await;
        assert_eq!(op(atomic.unwrap_err()), "run_atomic");
        let sia = s.set_if_absent(&k, Bytes::new(), None).await;
        assert_eq!(op(sia.unwrap_err()), "set_if_absent");
        let die = s.delete_if_equal(&k, b"v").await;
        assert_eq!(op(die.unwrap_err()), "delete_if_equal");
        let eie = s.expire_if_equal(&k, b"v", None).await;
        assert_eq!(op(eie.unwrap_err()), "expire_if_equal");
        let inc = s.increment(&k, 1, None).await;
        assert_eq!(op(inc.unwrap_err()), "increment");
        assert_eq!(op(s.get_many(&keys).await.unwrap_err()), "get_many");
        assert_eq!(op(s.delete_many(&keys).await.unwrap_err()), "delete_many");
        let eval = s.eval(&SCRIPT, &[&k], &[]).await;
        assert_eq!(op(eval.unwrap_err()), "eval");
        assert_eq!(
            op(s.publish(&k, Bytes::new()).await.unwrap_err()),
            "publish"
        );
        assert_eq!(op(s.subscribe(&k).await.err().unwrap()), "subscribe");
        assert_eq!(op(s.server_time().await.unwrap_err()), "server_time");
        assert_eq!(op(s.stats().await.unwrap_err()), "stats");
    }
}
