//! `Locks`: the core's distributed locks ([`rampart::lock::Locks`]) for
//! JavaScript. Thin forwarding: tokens, fencing, expiry, retries and the
//! watchdog are the core's; this file checks arguments and converts.
//!
//! A held lock crosses the boundary as `[fence, token (hex), expiresAt
//! ms]`; `lib/locks.js` wraps it in a `Lock` whose `extend`/`release`
//! call back here with the token.

use std::sync::Arc;
use std::time::Duration;

use js_sys::{Array, Function, Reflect};
use rampart::lock::{Extend, LockConfig, LockGuard, LockHandle, LockToken, Locks, Release};
use rampart::{Error, ScriptTime, Store, Timestamp};
use wasm_bindgen::prelude::*;

use crate::clock::ManualClockHandle;
use crate::convert::{
    describe, duration_from_millis, duration_to_millis, integer_in, number, optional, ttl,
    well_formed_string,
};
use crate::error::js;
use crate::runtime::{spawn, JsAwait};
use crate::store::StoreHandle;

type DynLocks = Locks<Arc<dyn Store>>;

fn config_err(e: Error) -> JsValue {
    js(Error::config(e.message().to_owned()))
}

fn field(obj: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(JsValue::UNDEFINED);
    }
    if !obj.is_object() {
        return Err(js(Error::config(format!(
            "lock options must be an object, got {}",
            describe(obj)
        ))));
    }
    Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|_| js(Error::config(format!("reading options.{name} threw"))))
}

fn millis(v: &JsValue, what: &str) -> Result<Option<Duration>, JsValue> {
    optional(v, what, |x| duration_from_millis(x, what)).map_err(config_err)
}

/// A [`LockConfig`] from `{ prefix, ttl, retryCount, retryDelay,
/// retryJitter, fenceRetention, watchdogInterval }` (milliseconds;
/// `fenceRetention: null` keeps lock states forever).
fn config(options: &JsValue) -> Result<(LockConfig, ScriptTime), JsValue> {
    let mut c = LockConfig::default();
    let prefix = field(options, "prefix")?;
    if !prefix.is_undefined() {
        c.prefix = prefix
            .as_string()
            .ok_or_else(|| js(Error::config("options.prefix must be a string")))?;
    }
    if let Some(d) = millis(&field(options, "ttl")?, "ttl")? {
        c.ttl = d;
    }
    if let Some(n) = optional(&field(options, "retryCount")?, "retryCount", |x| {
        integer_in(x, 0, u64::from(u32::MAX), "retryCount")
    })
    .map_err(config_err)?
    {
        c.retry_count = n as u32;
    }
    if let Some(d) = millis(&field(options, "retryDelay")?, "retryDelay")? {
        c.retry_delay = d;
    }
    if let Some(d) = millis(&field(options, "retryJitter")?, "retryJitter")? {
        c.retry_jitter = d;
    }
    let retention = field(options, "fenceRetention")?;
    if retention.is_null() {
        c.fence_retention = None;
    } else if let Some(d) = millis(&retention, "fenceRetention")? {
        c.fence_retention = Some(d);
    }
    if let Some(d) = millis(&field(options, "watchdogInterval")?, "watchdogInterval")? {
        c.watchdog_interval = Some(d);
    }
    let script_time = match field(options, "scriptTime")?.as_string().as_deref() {
        None | Some("server") => ScriptTime::Server,
        Some("caller") => ScriptTime::Caller,
        Some(other) => {
            return Err(js(Error::config(format!(
                "scriptTime must be server or caller, got {other:?}"
            ))))
        }
    };
    Ok((c, script_time))
}

fn resource(v: &JsValue) -> Result<String, JsValue> {
    match well_formed_string(v) {
        Some(Ok(s)) => Ok(s),
        Some(Err(e)) => Err(js(Error::invalid_key(e.message().to_owned()))),
        None => Err(js(Error::invalid_key(format!(
            "a lock resource must be a string, got {}",
            describe(v)
        )))),
    }
}

fn token(v: &JsValue) -> Result<LockToken, JsValue> {
    let text = v.as_string().ok_or_else(|| {
        js(Error::invalid_input(format!(
            "a lock token must be the hex string of a Lock, got {}",
            describe(v)
        )))
    })?;
    LockToken::from_hex(&text).map_err(js)
}

fn required_ttl(v: &JsValue) -> Result<Duration, JsValue> {
    ttl(v)
        .map_err(js)?
        .ok_or_else(|| js(Error::invalid_input("ttl is required (milliseconds)")))
}

fn ms_since_epoch(t: Timestamp) -> f64 {
    t.as_micros() as f64 / 1_000.0
}

/// A held lock as `[fence, token, expiresAt]`, or `null`.
fn held(guard: Option<LockGuard<Arc<dyn Store>>>) -> JsValue {
    match guard {
        None => JsValue::NULL,
        Some(g) => Array::of3(
            &JsValue::from_f64(g.fence() as f64),
            &JsValue::from_str(g.token().as_hex()),
            &JsValue::from_f64(ms_since_epoch(g.expires_at())),
        )
        .into(),
    }
}

/// What a `withLock` task is given: the fencing token and whether the
/// watchdog found the lock lost.
#[wasm_bindgen(js_name = LockHandle)]
pub struct LockHandleJs {
    handle: LockHandle,
}

#[wasm_bindgen(js_class = LockHandle)]
impl LockHandleJs {
    /// The fencing token of the hold.
    #[wasm_bindgen(getter)]
    pub fn fence(&self) -> f64 {
        self.handle.fence() as f64
    }
    /// The resource locked.
    #[wasm_bindgen(getter)]
    pub fn resource(&self) -> String {
        self.handle.resource().to_owned()
    }
    /// Whether the lock was lost (stop writing to the protected resource).
    #[wasm_bindgen(js_name = isLost)]
    pub fn is_lost(&self) -> bool {
        self.handle.is_lost()
    }
}

/// A `withLock` failure: the core's, or the task's own JavaScript error.
enum TaskError {
    Rampart(Error),
    Js(JsValue),
}

impl From<Error> for TaskError {
    fn from(e: Error) -> Self {
        TaskError::Rampart(e)
    }
}

/// The core's locks over a `Store`.
#[wasm_bindgen(js_name = Locks)]
pub struct LocksHandle {
    locks: DynLocks,
}

#[wasm_bindgen(js_class = Locks)]
impl LocksHandle {
    /// Locks on `store` on the system clock; `options` as [`config`].
    pub fn create(store: &StoreHandle, options: JsValue) -> Result<LocksHandle, JsValue> {
        let (config, script_time) = config(&options)?;
        let locks = Locks::builder(store.store())
            .config(config)
            .script_time(script_time)
            .build()
            .map_err(js)?;
        Ok(Self { locks })
    }

    /// Locks on `store` following `clock` (tests).
    #[wasm_bindgen(js_name = createWithClock)]
    pub fn create_with_clock(
        store: &StoreHandle,
        clock: &ManualClockHandle,
        options: JsValue,
    ) -> Result<LocksHandle, JsValue> {
        let (config, script_time) = config(&options)?;
        let locks = Locks::builder(store.store())
            .clock(clock.shared())
            .config(config)
            .script_time(script_time)
            .build()
            .map_err(js)?;
        Ok(Self { locks })
    }

    /// Takes the lock once: `[fence, token, expiresAt]`, or `null` if held.
    #[wasm_bindgen(js_name = tryAcquire)]
    pub fn try_acquire(&self, resource_v: JsValue, ttl_ms: JsValue) -> Result<JsValue, JsValue> {
        let resource = resource(&resource_v)?;
        let ttl = required_ttl(&ttl_ms)?;
        let locks = self.locks.clone();
        spawn(async move { Ok(held(locks.try_acquire(&resource, ttl).await.map_err(js)?)) })
    }

    /// Takes the lock, retrying until `wait_ms` has passed.
    pub fn acquire(
        &self,
        resource_v: JsValue,
        ttl_ms: JsValue,
        wait_ms: JsValue,
    ) -> Result<JsValue, JsValue> {
        let resource = resource(&resource_v)?;
        let ttl = required_ttl(&ttl_ms)?;
        let wait =
            duration_from_millis(number(&wait_ms, "wait").map_err(js)?, "wait").map_err(js)?;
        let locks = self.locks.clone();
        spawn(async move { Ok(held(locks.acquire(&resource, ttl, wait).await.map_err(js)?)) })
    }

    /// Takes the lock for the configured TTL with the configured retries.
    pub fn lock(&self, resource_v: JsValue) -> Result<JsValue, JsValue> {
        let resource = resource(&resource_v)?;
        let locks = self.locks.clone();
        spawn(async move { Ok(held(locks.lock(&resource).await.map_err(js)?)) })
    }

    /// Releases the lock if `token` holds it; `true` if it did.
    pub fn release(&self, resource_v: JsValue, token_v: JsValue) -> Result<JsValue, JsValue> {
        let resource = resource(&resource_v)?;
        let token = token(&token_v)?;
        let locks = self.locks.clone();
        spawn(async move {
            let r = locks.release(&resource, &token).await.map_err(js)?;
            Ok(JsValue::from_bool(r == Release::Released))
        })
    }

    /// Makes `token`'s hold end `ttl_ms` from now: the new end (ms since
    /// the epoch), or `null` if the token no longer holds the lock.
    pub fn extend(
        &self,
        resource_v: JsValue,
        token_v: JsValue,
        ttl_ms: JsValue,
    ) -> Result<JsValue, JsValue> {
        let resource = resource(&resource_v)?;
        let token = token(&token_v)?;
        let ttl = required_ttl(&ttl_ms)?;
        let locks = self.locks.clone();
        spawn(async move {
            Ok(
                match locks.extend(&resource, &token, ttl).await.map_err(js)? {
                    Extend::Extended { expires_at } => {
                        JsValue::from_f64(ms_since_epoch(expires_at))
                    }
                    Extend::NotHeld => JsValue::NULL,
                },
            )
        })
    }

    /// `[fence, remaining ms | null]`: the last fencing token issued and
    /// the hold's time left (`null` when free).
    pub fn info(&self, resource_v: JsValue) -> Result<JsValue, JsValue> {
        let resource = resource(&resource_v)?;
        let locks = self.locks.clone();
        spawn(async move {
            let info = locks.info(&resource).await.map_err(js)?;
            let remaining = info
                .remaining
                .map_or(JsValue::NULL, |d| JsValue::from_f64(duration_to_millis(d)));
            Ok(Array::of2(&JsValue::from_f64(info.fence as f64), &remaining).into())
        })
    }

    /// Runs `task(handle)` (a function returning a value or a promise)
    /// under the lock, which the core's watchdog extends while it runs;
    /// releases it after. Resolves to the task's value; rejects with the
    /// task's own error, or `RAMPART_CONFLICT` if the lock stayed held.
    #[wasm_bindgen(js_name = withLock)]
    pub fn with_lock(
        &self,
        resource_v: JsValue,
        ttl_ms: JsValue,
        task: JsValue,
    ) -> Result<JsValue, JsValue> {
        let resource = resource(&resource_v)?;
        let ttl = required_ttl(&ttl_ms)?;
        let task: Function = task.dyn_into().map_err(|t| {
            js(Error::invalid_input(format!(
                "withLock needs a task function, got {}",
                describe(&t)
            )))
        })?;
        let locks = self.locks.clone();
        spawn(async move {
            let outcome = locks
                .with_lock(&resource, ttl, |handle| async move {
                    let handle = JsValue::from(LockHandleJs { handle });
                    let returned = task.call1(&JsValue::NULL, &handle).map_err(TaskError::Js)?;
                    JsAwait::new(returned).await.map_err(TaskError::Js)
                })
                .await;
            match outcome {
                Ok(v) => Ok(v),
                Err(TaskError::Js(e)) => Err(e),
                Err(TaskError::Rampart(e)) => Err(js(e)),
            }
        })
    }
}
