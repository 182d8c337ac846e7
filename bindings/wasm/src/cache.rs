//! `Cache`: the core's cache ([`rampart::cache::Cache`]) for JavaScript.
//! Thin forwarding: envelopes, TTLs, tags, stale-while-revalidate and the
//! coalescing of concurrent misses into one loader call are the core's;
//! this file checks arguments and converts.
//!
//! Values cross the boundary as JSON text (`lib/cache.js` stringifies and
//! parses) and are kept raw in the core, as Sessions does with its data.

use std::sync::Arc;
use std::time::Duration;

use js_sys::{Array, Function, JsString, Reflect};
use rampart::cache::{Cache, EntryOptions};
use rampart::{Error, ErrorKind, Store, MAX_KEY_LEN};
use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;

use crate::clock::ManualClockHandle;
use crate::convert::{
    array, describe, duration_from_millis, optional, ttl_from_millis, well_formed_string,
    MAX_VALUE_LEN,
};
use crate::error::{from_js, js};
use crate::runtime::{spawn, JsAwait};
use crate::store::StoreHandle;

type Json = Box<RawValue>;
type DynCache = Cache<Arc<dyn Store>>;

/// The most tags one entry may name through the bindings (the core has its
/// own, lower, limit; this one only bounds what is copied in).
const MAX_TAG_ARGS: u32 = 4096;

fn config_err(e: Error) -> JsValue {
    js(Error::config(e.message().to_owned()))
}

fn field(obj: &JsValue, name: &str, what: &str) -> Result<JsValue, JsValue> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(JsValue::UNDEFINED);
    }
    if !obj.is_object() {
        return Err(js(Error::invalid_input(format!(
            "{what} must be an object, got {}",
            describe(obj)
        ))));
    }
    Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|_| js(Error::invalid_input(format!("reading {what}.{name} threw"))))
}

/// A key, tag or prefix: a well-formed string no longer than a key may be
/// (the core checks the rest once the namespace is added).
fn text(v: &JsValue, what: &str) -> Result<String, JsValue> {
    if let Some(s) = v.dyn_ref::<JsString>() {
        if s.length() as usize > MAX_KEY_LEN {
            return Err(js(Error::invalid_key(format!(
                "{what} is longer than the limit of {MAX_KEY_LEN} bytes"
            ))));
        }
    }
    match well_formed_string(v) {
        Some(Ok(s)) => Ok(s),
        Some(Err(e)) => Err(js(Error::invalid_key(format!("{what}: {}", e.message())))),
        None => Err(js(Error::invalid_key(format!(
            "{what} must be a string, got {}",
            describe(v)
        )))),
    }
}

/// A value's JSON text (made by `JSON.stringify` in `lib/cache.js`).
fn value(v: &JsValue) -> Result<Json, JsValue> {
    let s = v.as_string().ok_or_else(|| {
        js(Error::invalid_input(
            "a cached value must be JSON-serializable",
        ))
    })?;
    if s.len() > MAX_VALUE_LEN {
        return Err(js(Error::invalid_input(format!(
            "a cached value is larger than {MAX_VALUE_LEN} bytes"
        ))));
    }
    serde_json::from_str(&s)
        .map_err(|_| js(Error::invalid_input("a cached value is not valid JSON")))
}

/// A loader's JavaScript error as the core's: its code if it carried one,
/// otherwise `RAMPART_BACKEND` naming the loader (not a store) as failing.
fn loader_error(v: &JsValue) -> Error {
    let e = from_js(v, "cache.get_or_set");
    if e.kind() != ErrorKind::Backend {
        return e;
    }
    let message = e
        .message()
        .strip_prefix("the JavaScript store failed: ")
        .unwrap_or(e.message());
    Error::new(ErrorKind::Backend, format!("the loader failed: {message}"))
        .with_operation("cache.get_or_set")
        .with_source(e)
}

/// Per-entry options from `ttl` (ms; `undefined` = the cache's default)
/// and `tags` (an array of strings).
fn entry_options(ttl_v: &JsValue, tags_v: &JsValue) -> Result<EntryOptions, JsValue> {
    let mut o = EntryOptions::new();
    if let Some(ttl) = optional(ttl_v, "ttl", ttl_from_millis).map_err(js)? {
        o = o.ttl(ttl);
    }
    if tags_v.is_undefined() || tags_v.is_null() {
        return Ok(o);
    }
    let tags: &Array = array(tags_v).ok_or_else(|| {
        js(Error::invalid_input(format!(
            "tags must be an array of strings, got {}",
            describe(tags_v)
        )))
    })?;
    if tags.length() > MAX_TAG_ARGS {
        return Err(js(Error::invalid_input(format!(
            "an entry may name at most {MAX_TAG_ARGS} tags"
        ))));
    }
    let mut names = Vec::with_capacity(tags.length() as usize);
    for t in tags.iter() {
        names.push(text(&t, "a tag")?);
    }
    Ok(o.tags(names))
}

/// A cache configuration from `{ namespace, defaultTtl, staleWhileRevalidate }`.
fn build(
    store: &StoreHandle,
    clock: Option<&ManualClockHandle>,
    options: &JsValue,
) -> Result<DynCache, JsValue> {
    let what = "Cache options";
    let mut b = Cache::builder(store.store());
    let namespace = field(options, "namespace", what)?;
    if !namespace.is_undefined() && !namespace.is_null() {
        b = b.namespace(text(&namespace, "namespace").map_err(|_| {
            js(Error::config(format!(
                "options.namespace must be a short string, got {}",
                describe(&namespace)
            )))
        })?);
    }
    let millis = |v: &JsValue, name: &str| -> Result<Option<Duration>, JsValue> {
        optional(v, name, |x| duration_from_millis(x, name)).map_err(config_err)
    };
    if let Some(d) = millis(&field(options, "defaultTtl", what)?, "defaultTtl")? {
        if d.is_zero() {
            return Err(js(Error::config("defaultTtl must be positive")));
        }
        b = b.default_ttl(d);
    }
    if let Some(d) = millis(
        &field(options, "staleWhileRevalidate", what)?,
        "staleWhileRevalidate",
    )? {
        b = b.stale_while_revalidate(d);
    }
    if let Some(clock) = clock {
        b = b.clock(clock.shared());
    }
    b.build().map_err(js)
}

/// The core's cache over a `Store`.
#[wasm_bindgen(js_name = Cache)]
pub struct CacheHandle {
    cache: DynCache,
}

#[wasm_bindgen(js_class = Cache)]
impl CacheHandle {
    /// A cache on `store` on the system clock; `options` as [`build`].
    pub fn create(store: &StoreHandle, options: JsValue) -> Result<CacheHandle, JsValue> {
        Ok(Self {
            cache: build(store, None, &options)?,
        })
    }

    /// A cache on `store` following `clock` (tests).
    #[wasm_bindgen(js_name = createWithClock)]
    pub fn create_with_clock(
        store: &StoreHandle,
        clock: &ManualClockHandle,
        options: JsValue,
    ) -> Result<CacheHandle, JsValue> {
        Ok(Self {
            cache: build(store, Some(clock), &options)?,
        })
    }

    /// The fresh value's JSON text, or `null`.
    pub fn get(&self, key_v: JsValue) -> Result<JsValue, JsValue> {
        let key = text(&key_v, "a cache key")?;
        let cache = self.cache.clone();
        spawn(async move {
            let v: Option<Json> = cache.get(&key).await.map_err(js)?;
            Ok(v.map_or(JsValue::NULL, |v| JsValue::from_str(v.get())))
        })
    }

    /// Stores `json` (JSON text) under `key` for `ttl_ms` with `tags`.
    pub fn set(
        &self,
        key_v: JsValue,
        json: JsValue,
        ttl_ms: JsValue,
        tags: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = text(&key_v, "a cache key")?;
        let value = value(&json)?;
        let options = entry_options(&ttl_ms, &tags)?;
        let cache = self.cache.clone();
        spawn(async move {
            cache.set(&key, &value, options).await.map_err(js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The value under `key`, or on a miss the JSON text `loader()`'s
    /// promise resolves to, stored; concurrent misses share one call.
    #[wasm_bindgen(js_name = getOrSet)]
    pub fn get_or_set(
        &self,
        key_v: JsValue,
        loader: JsValue,
        ttl_ms: JsValue,
        tags: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = text(&key_v, "a cache key")?;
        let loader: Function = loader.dyn_into().map_err(|l| {
            js(Error::invalid_input(format!(
                "getOrSet needs a loader function, got {}",
                describe(&l)
            )))
        })?;
        let options = entry_options(&ttl_ms, &tags)?;
        let cache = self.cache.clone();
        spawn(async move {
            let v: Json = cache
                .get_or_set(&key, options, move || async move {
                    let returned = loader.call0(&JsValue::NULL).map_err(|e| loader_error(&e))?;
                    let text = JsAwait::new(returned).await.map_err(|e| loader_error(&e))?;
                    value(&text).map_err(|e| from_js(&e, "cache.get_or_set"))
                })
                .await
                .map_err(js)?;
            Ok(JsValue::from_str(v.get()))
        })
    }

    /// Deletes `key`; `true` if an entry was there.
    pub fn delete(&self, key_v: JsValue) -> Result<JsValue, JsValue> {
        let key = text(&key_v, "a cache key")?;
        let cache = self.cache.clone();
        spawn(async move { Ok(JsValue::from_bool(cache.delete(&key).await.map_err(js)?)) })
    }

    /// Makes every entry tagged `tag` miss.
    #[wasm_bindgen(js_name = invalidateTag)]
    pub fn invalidate_tag(&self, tag_v: JsValue) -> Result<JsValue, JsValue> {
        let tag = text(&tag_v, "a tag")?;
        let cache = self.cache.clone();
        spawn(async move {
            cache.invalidate_tag(&tag).await.map_err(js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes every entry whose key starts with `prefix`; how many.
    #[wasm_bindgen(js_name = invalidatePrefix)]
    pub fn invalidate_prefix(&self, prefix_v: JsValue) -> Result<JsValue, JsValue> {
        let prefix = text(&prefix_v, "a prefix")?;
        let cache = self.cache.clone();
        spawn(async move {
            let n = cache.invalidate_prefix(&prefix).await.map_err(js)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// The counters: `[hits, misses, sets, deletes, errors, loaderCalls,
    /// loaderErrors, coalesced, staleServed, refreshes, tagInvalidations,
    /// corrupt]`.
    pub fn stats(&self) -> Vec<f64> {
        let s = self.cache.counters();
        [
            s.hits,
            s.misses,
            s.sets,
            s.deletes,
            s.errors,
            s.loader_calls,
            s.loader_errors,
            s.coalesced,
            s.stale_served,
            s.refreshes,
            s.tag_invalidations,
            s.corrupt,
        ]
        .into_iter()
        .map(|n| n as f64)
        .collect()
    }
}
