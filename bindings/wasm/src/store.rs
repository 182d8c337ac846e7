//! The `Store` class: any [`rampart::Store`] as a JavaScript object.
//!
//! Arguments are checked before anything runs (a bad one is a thrown
//! `RampartError`, which `index.js` turns into a rejected promise); the
//! operation then runs on the [`crate::runtime`] executor.

use std::sync::Arc;

use bytes::Bytes;
use js_sys::{Array, Function, Reflect};
use rampart::{Change, Cursor, Error, Key, KeyTtl, MemoryStore, Store, Swap};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::clock::ManualClockHandle;
use crate::convert::{
    array, bytes, describe, duration_to_millis, exact_number, integer_in, key, key_named, optional,
    optional_bytes, prefix, safe_integer, to_js_bytes, to_js_opt_bytes, ttl,
};
use crate::error::js;
use crate::js_store::JsStore;
use crate::runtime::{spawn, CallbackGuard};

/// The most keys one `getMany`/`deleteMany` call takes.
const MAX_BATCH: u32 = 100_000;
/// The largest page a scan asks for.
const MAX_SCAN_COUNT: u64 = 100_000;
/// The most entries a memory store may be configured to hold.
const MAX_ENTRIES: u64 = 100_000_000;

/// A store: the core's portable `MemoryStore`, or a JavaScript object
/// implementing the store interface (an ioredis or node-redis adapter).
#[wasm_bindgen(js_name = Store)]
pub struct StoreHandle {
    store: Arc<dyn Store>,
    /// The same store when it is a JavaScript adapter.
    adapter: Option<Arc<JsStore>>,
    /// The core's `MemoryStore`: every operation completes without
    /// awaiting anything (no JavaScript is called).
    in_process: bool,
}

fn max_entries(v: &JsValue) -> Result<usize, JsValue> {
    let n = optional(v, "maxEntries", |x| {
        integer_in(x, 1, MAX_ENTRIES, "maxEntries")
    })
    .map_err(js)?;
    Ok(n.map_or(rampart_default_entries(), |n| n as usize))
}

fn rampart_default_entries() -> usize {
    // MemoryStore::new()'s capacity.
    100_000
}

fn keys(v: &JsValue) -> Result<Vec<Key>, JsValue> {
    let array = array(v).ok_or_else(|| {
        js(Error::invalid_input(format!(
            "keys must be an array of strings, got {}",
            describe(v)
        )))
    })?;
    if array.length() > MAX_BATCH {
        return Err(js(Error::invalid_input(format!(
            "at most {MAX_BATCH} keys per call, got {}",
            array.length()
        ))));
    }
    array.iter().map(|k| key(&k).map_err(js)).collect()
}

/// The change an update callback returned.
fn change(v: &JsValue) -> rampart::Result<Change> {
    let invalid = || {
        Error::invalid_input(format!(
            "an update callback must return {{ set, ttl? }}, {{ setKeepTtl }}, {{ remove: true }} or {{ keep: true }}, got {}",
            describe(v)
        ))
    };
    if !v.is_object() {
        return Err(invalid());
    }
    if v.is_instance_of::<js_sys::Promise>() {
        return Err(Error::invalid_input(
            "an update callback must return its change synchronously, not a Promise",
        ));
    }
    let get = |name: &str| Reflect::get(v, &JsValue::from_str(name)).map_err(|_| invalid());
    let set = get("set")?;
    if !set.is_undefined() {
        let ttl = ttl(&get("ttl")?)?;
        return Ok(Change::Set {
            value: bytes(&set, "the value to set")?,
            ttl,
        });
    }
    let keep_ttl = get("setKeepTtl")?;
    if !keep_ttl.is_undefined() {
        return Ok(Change::SetKeepTtl(bytes(&keep_ttl, "the value to set")?));
    }
    if get("remove")?.as_bool() == Some(true) {
        return Ok(Change::Remove);
    }
    if get("keep")?.as_bool() == Some(true) {
        return Ok(Change::Keep);
    }
    Err(invalid())
}

#[wasm_bindgen(js_class = Store)]
impl StoreHandle {
    /// The core's bounded in-process store on the system clock
    /// (`maxEntries`: default 100 000).
    pub fn memory(max_entries_opt: JsValue) -> Result<StoreHandle, JsValue> {
        let store = MemoryStore::builder()
            .max_entries(max_entries(&max_entries_opt)?)
            .build();
        Ok(Self::wrap(store, true))
    }

    /// The core's in-process store following `clock` (tests).
    #[wasm_bindgen(js_name = memoryWithClock)]
    pub fn memory_with_clock(
        max_entries_opt: JsValue,
        clock: &ManualClockHandle,
    ) -> Result<StoreHandle, JsValue> {
        let store = MemoryStore::builder()
            .max_entries(max_entries(&max_entries_opt)?)
            .clock(clock.shared())
            .build();
        Ok(Self::wrap(store, true))
    }

    /// A store over a JavaScript object implementing the store interface.
    #[wasm_bindgen(js_name = fromAdapter)]
    pub fn from_adapter(adapter: JsValue) -> Result<StoreHandle, JsValue> {
        // The core shares stores as `Arc<dyn Store>`; wasm32 has one thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let store = Arc::new(JsStore::new(adapter).map_err(js)?);
        Ok(StoreHandle {
            store: store.clone(),
            adapter: Some(store),
            in_process: false,
        })
    }

    /// `[scripting, pubsub, serverClock, atomicUpdate]`.
    pub fn capabilities(&self) -> Array {
        let c = self.store.capabilities();
        [c.scripting, c.pubsub, c.server_clock, c.atomic_update]
            .into_iter()
            .map(JsValue::from_bool)
            .collect()
    }

    /// The value under `key` (`Uint8Array`) or `null`.
    pub fn get(&self, key_v: JsValue) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            let v = store.get(&key).await.map_err(js)?;
            Ok(to_js_opt_bytes(v.as_deref()))
        })
    }

    /// Stores `value` (`Uint8Array` or string) with an optional TTL in ms.
    pub fn set(&self, key_v: JsValue, value: JsValue, ttl_ms: JsValue) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let value = bytes(&value, "value").map_err(js)?;
        let ttl = ttl(&ttl_ms).map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            store.set(&key, value, ttl).await.map_err(js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes `key`; `true` if a live value was deleted.
    pub fn delete(&self, key_v: JsValue) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let store = self.store.clone();
        spawn(async move { Ok(store.delete(&key).await.map_err(js)?.into()) })
    }

    /// Milliseconds left: `null` (missing), `Infinity` (no expiry), or a
    /// positive number.
    pub fn ttl(&self, key_v: JsValue) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            Ok(match store.ttl(&key).await.map_err(js)? {
                KeyTtl::Missing => JsValue::NULL,
                KeyTtl::Persistent => JsValue::from_f64(f64::INFINITY),
                KeyTtl::Expires(d) => JsValue::from_f64(duration_to_millis(d)),
            })
        })
    }

    /// Compare-and-swap: `[true]` when swapped, `[false, current]` on a
    /// conflict.
    #[wasm_bindgen(js_name = compareAndSwap)]
    pub fn compare_and_swap(
        &self,
        key_v: JsValue,
        expected: JsValue,
        new: JsValue,
        ttl_ms: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let expected = optional_bytes(&expected, "expected").map_err(js)?;
        let new = optional_bytes(&new, "value").map_err(js)?;
        let ttl = ttl(&ttl_ms).map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            let swap = store
                .compare_and_swap(&key, expected.as_deref(), new, ttl)
                .await
                .map_err(js)?;
            Ok(match swap {
                Swap::Swapped => Array::of1(&JsValue::TRUE).into(),
                Swap::Conflict(current) => {
                    Array::of2(&JsValue::FALSE, &to_js_opt_bytes(current.as_deref())).into()
                }
            })
        })
    }

    /// One page of keys under `prefix`: `[keys, nextCursor | null]`.
    pub fn scan(
        &self,
        prefix_v: JsValue,
        cursor: JsValue,
        count: JsValue,
    ) -> Result<JsValue, JsValue> {
        let prefix = prefix(&prefix_v).map_err(js)?;
        let cursor = if cursor.is_undefined() || cursor.is_null() {
            Cursor::start()
        } else {
            match cursor.as_string() {
                Some(c) if c.len() <= 4_096 => Cursor::from_raw(c),
                _ => {
                    return Err(js(Error::invalid_input(format!(
                        "cursor must be a string from a previous scan, got {}",
                        describe(&cursor)
                    ))))
                }
            }
        };
        let count = optional(&count, "count", |x| {
            integer_in(x, 1, MAX_SCAN_COUNT, "count")
        })
        .map_err(js)?
        .unwrap_or(100) as usize;
        let store = self.store.clone();
        spawn(async move {
            let page = store.scan(&prefix, &cursor, count).await.map_err(js)?;
            let keys: Array = page
                .keys
                .iter()
                .map(|k| JsValue::from_str(k.as_str()))
                .collect();
            let next = page
                .next
                .map_or(JsValue::NULL, |c| JsValue::from_str(c.as_raw()));
            Ok(Array::of2(&keys, &next).into())
        })
    }

    /// Atomic read-modify-write: `f(current)` returns the change.
    /// Resolves to `[value | null, changed, attempts]`.
    pub fn update(&self, key_v: JsValue, f: JsValue) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let f: Function = f.dyn_into().map_err(|f| {
            js(Error::invalid_input(format!(
                "update needs a callback function, got {}",
                describe(&f)
            )))
        })?;
        let store = self.store.clone();
        spawn(async move {
            let mut failure: Option<JsValue> = None;
            let outcome = store
                .update(&key, &mut |current| {
                    let arg = to_js_opt_bytes(current);
                    let returned = {
                        let _guard = CallbackGuard::enter();
                        f.call1(&JsValue::NULL, &arg)
                    };
                    match returned.map(|v| change(&v).map_err(js)) {
                        Ok(Ok(change)) => {
                            failure = None;
                            change
                        }
                        Ok(Err(e)) | Err(e) => {
                            failure = Some(e);
                            Change::Keep
                        }
                    }
                })
                .await
                .map_err(js)?;
            if let Some(e) = failure {
                return Err(e);
            }
            Ok(Array::of3(
                &to_js_opt_bytes(outcome.value.as_deref()),
                &JsValue::from_bool(outcome.changed),
                &JsValue::from(outcome.attempts),
            )
            .into())
        })
    }

    /// Stores `value` only if `key` is missing; `true` if it did.
    #[wasm_bindgen(js_name = setIfAbsent)]
    pub fn set_if_absent(
        &self,
        key_v: JsValue,
        value: JsValue,
        ttl_ms: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let value = bytes(&value, "value").map_err(js)?;
        let ttl = ttl(&ttl_ms).map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            Ok(store
                .set_if_absent(&key, value, ttl)
                .await
                .map_err(js)?
                .into())
        })
    }

    /// Deletes `key` only if it holds `expected`; `true` if it did.
    #[wasm_bindgen(js_name = deleteIfEqual)]
    pub fn delete_if_equal(&self, key_v: JsValue, expected: JsValue) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let expected: Bytes = bytes(&expected, "expected").map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            Ok(store
                .delete_if_equal(&key, &expected)
                .await
                .map_err(js)?
                .into())
        })
    }

    /// Sets a new TTL (none: persistent) only if `key` holds `expected`.
    #[wasm_bindgen(js_name = expireIfEqual)]
    pub fn expire_if_equal(
        &self,
        key_v: JsValue,
        expected: JsValue,
        ttl_ms: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let expected: Bytes = bytes(&expected, "expected").map_err(js)?;
        let ttl = ttl(&ttl_ms).map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            Ok(store
                .expire_if_equal(&key, &expected, ttl)
                .await
                .map_err(js)?
                .into())
        })
    }

    /// Adds `delta` (default 1) to the counter under `key`.
    pub fn increment(
        &self,
        key_v: JsValue,
        delta: JsValue,
        ttl_ms: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = key(&key_v).map_err(js)?;
        let delta = optional(&delta, "delta", |x| safe_integer(x, "delta"))
            .map_err(js)?
            .unwrap_or(1);
        let ttl = ttl(&ttl_ms).map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            let n = store.increment(&key, delta, ttl).await.map_err(js)?;
            let n = exact_number(n, "the counter")
                .map_err(|e| js(e.with_operation("increment").with_key(&key)))?;
            Ok(JsValue::from_f64(n))
        })
    }

    /// The values of several keys, in order (`null` for missing ones).
    #[wasm_bindgen(js_name = getMany)]
    pub fn get_many(&self, keys_v: JsValue) -> Result<JsValue, JsValue> {
        let keys = keys(&keys_v)?;
        let store = self.store.clone();
        spawn(async move {
            let values = store.get_many(&keys).await.map_err(js)?;
            let out: Array = values
                .iter()
                .map(|v| to_js_opt_bytes(v.as_deref()))
                .collect();
            Ok(out.into())
        })
    }

    /// Deletes several keys; resolves to how many live values went.
    #[wasm_bindgen(js_name = deleteMany)]
    pub fn delete_many(&self, keys_v: JsValue) -> Result<JsValue, JsValue> {
        let keys = keys(&keys_v)?;
        let store = self.store.clone();
        spawn(async move {
            let n = store.delete_many(&keys).await.map_err(js)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// Sends `message` to the subscribers of `channel`.
    pub fn publish(&self, channel: JsValue, message: JsValue) -> Result<JsValue, JsValue> {
        let channel = key_named(&channel, "channel").map_err(js)?;
        let message = bytes(&message, "message").map_err(js)?;
        let store = self.store.clone();
        spawn(async move {
            store.publish(&channel, message).await.map_err(js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Calls `callback(message)` (a `Uint8Array`) for every message
    /// published on `channel` from now on, until the subscription's
    /// `close()`. Resolves once subscribed. Delivery is at most once, in
    /// order; an exception in the callback is dropped.
    pub fn subscribe(&self, channel: JsValue, callback: JsValue) -> Result<JsValue, JsValue> {
        use futures_util::StreamExt;
        let channel = key_named(&channel, "channel").map_err(js)?;
        let callback: Function = callback.dyn_into().map_err(|c| {
            js(Error::invalid_input(format!(
                "subscribe needs a callback function, got {}",
                describe(&c)
            )))
        })?;
        let store = self.store.clone();
        spawn(async move {
            let stream = store.subscribe(&channel).await.map_err(js)?;
            let (close, closed) = futures_channel::oneshot::channel::<()>();
            // The pump runs as a task of its own, for as long as the
            // subscription lives; nothing waits for its end.
            let _ = spawn(async move {
                let mut messages = stream.take_until(closed);
                while let Some(message) = messages.next().await {
                    let _ = callback.call1(&JsValue::NULL, &to_js_bytes(&message));
                }
                Ok(JsValue::UNDEFINED)
            });
            Ok(SubscriptionHandle {
                close: std::cell::RefCell::new(Some(close)),
            }
            .into())
        })
    }

    /// `[keys | null, memoryBytes | null, server | null]`.
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        let store = self.store.clone();
        spawn(async move {
            let s = store.stats().await.map_err(js)?;
            let n = |v: Option<u64>| v.map_or(JsValue::NULL, |n| JsValue::from_f64(n as f64));
            let server = s.server.map_or(JsValue::NULL, |s| JsValue::from_str(&s));
            Ok(Array::of3(&n(s.keys), &n(s.memory_bytes), &server).into())
        })
    }

    /// The store's clock in milliseconds since the epoch (stores with a
    /// server clock only).
    #[wasm_bindgen(js_name = serverTime)]
    pub fn server_time(&self) -> Result<JsValue, JsValue> {
        let store = self.store.clone();
        spawn(async move {
            let t = store.server_time().await.map_err(js)?;
            Ok(JsValue::from_f64(t.as_micros() as f64 / 1_000.0))
        })
    }
}

/// A live subscription of `Store.subscribe`.
#[wasm_bindgen(js_name = Subscription)]
pub struct SubscriptionHandle {
    close: std::cell::RefCell<Option<futures_channel::oneshot::Sender<()>>>,
}

#[wasm_bindgen(js_class = Subscription)]
impl SubscriptionHandle {
    /// Stops the messages (and unsubscribes from the store).
    pub fn close(&self) {
        if let Some(close) = self.close.borrow_mut().take() {
            let _ = close.send(());
        }
    }
}

impl StoreHandle {
    fn wrap(store: impl Store + 'static, in_process: bool) -> Self {
        Self {
            store: Arc::new(store),
            adapter: None,
            in_process,
        }
    }

    /// Whether this is the core's `MemoryStore`, whose operations never
    /// wait (a limiter on it decides synchronously).
    pub fn in_process(&self) -> bool {
        self.in_process
    }

    /// The store, for the classes built on it (limiter, cache, ...).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The store when it is a JavaScript adapter.
    pub(crate) fn adapter(&self) -> Option<&JsStore> {
        self.adapter.as_deref()
    }
}
