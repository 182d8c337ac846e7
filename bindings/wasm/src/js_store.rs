//! [`JsStore`]: a [`rampart::Store`] over a JavaScript object.
//!
//! The object implements the store interface of `index.d.ts`
//! (`StoreAdapter`): six required async methods and a few optional ones
//! that turn on capabilities or do a provided operation in one step.
//! Every method returns a promise (or a plain value); every answer is
//! checked, so a misbehaving adapter gives a `RAMPART_BACKEND` error, never
//! a panic.

use std::cell::RefCell;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use js_sys::{Array, Function, Reflect, Uint8Array};
use rampart::{
    check_ttl, validate_prefix, Arg, Capabilities, Cursor, Error, Key, KeyTtl, Page, Result,
    Script, Store, StoreStats, Swap, Timestamp, Value,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::convert::{check_value_len, describe, MAX_SAFE_INTEGER};
use crate::error::from_js;
use crate::runtime::{adapter_reply, JsAwait, Reply};

/// How deep a script reply may nest (a cyclic array must not overflow the
/// stack).
const MAX_REPLY_DEPTH: usize = 32;

/// A [`Store`] whose operations call a JavaScript object.
///
/// Required methods: `get`, `set`, `delete`, `ttl`, `compareAndSwap`,
/// `scan`. Optional: `eval` (turns on scripting: the core's Lua twins run
/// in one call), `publish` and `subscribe` (together, pub/sub), `time` (the
/// server's clock), and `setIfAbsent`, `deleteIfEqual`, `expireIfEqual`,
/// `increment`, `getMany`, `deleteMany`, `stats` (one-step versions of the
/// provided operations; without them the core builds each from the
/// required methods).
pub struct JsStore {
    this: JsValue,
    get: Function,
    set: Function,
    delete: Function,
    ttl: Function,
    compare_and_swap: Function,
    scan: Function,
    eval: Option<Function>,
    publish: Option<Function>,
    subscribe: Option<Function>,
    time: Option<Function>,
    set_if_absent: Option<Function>,
    delete_if_equal: Option<Function>,
    expire_if_equal: Option<Function>,
    increment: Option<Function>,
    get_many: Option<Function>,
    delete_many: Option<Function>,
    stats: Option<Function>,
    /// `{ sha1, source }` objects handed to `eval`, made once per script
    /// (found by SHA1, so the source crosses the boundary once; a store
    /// sees a handful of scripts, so a list beats hashing).
    scripts: RefCell<Vec<(String, JsValue)>>,
    capabilities: Capabilities,
}

impl std::fmt::Debug for JsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsStore")
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

fn method(obj: &JsValue, name: &str, required: bool) -> Result<Option<Function>> {
    let v = Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|e| from_js(&e, "store").with_operation("store"))?;
    if v.is_undefined() || v.is_null() {
        if required {
            return Err(Error::config(format!(
                "a store adapter needs a `{name}` method"
            )));
        }
        return Ok(None);
    }
    v.dyn_into::<Function>().map(Some).map_err(|v| {
        Error::config(format!(
            "the store adapter's `{name}` must be a function, got {}",
            describe(&v)
        ))
    })
}

/// Milliseconds for a JavaScript store: rounded up, so a 1 µs TTL is not
/// "no TTL" (stores keep at best milliseconds).
fn ttl_ms(ttl: Option<Duration>) -> JsValue {
    match ttl {
        Some(d) => JsValue::from_f64(d.as_micros().div_ceil(1_000).max(1) as f64),
        None => JsValue::NULL,
    }
}

fn bad_reply(op: &'static str, what: &str, got: &JsValue) -> Error {
    Error::backend(format!(
        "the store adapter's {op} resolved to {}, expected {what}",
        describe(got)
    ))
    .with_operation(op)
}

/// Bytes from an adapter's answer (`Uint8Array`, `Buffer` or string).
fn reply_bytes(v: &JsValue, op: &'static str) -> Result<Bytes> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        check_value_len(a.length() as usize, "a stored value")?;
        return Ok(Bytes::from(a.to_vec()));
    }
    if let Some(s) = v.as_string() {
        return Ok(Bytes::from(s));
    }
    Err(bad_reply(op, "a Uint8Array, a Buffer or a string", v))
}

fn reply_opt_bytes(v: &JsValue, op: &'static str) -> Result<Option<Bytes>> {
    if v.is_null() || v.is_undefined() {
        Ok(None)
    } else {
        reply_bytes(v, op).map(Some)
    }
}

fn reply_bool(v: &JsValue, op: &'static str) -> Result<bool> {
    if let Some(b) = v.as_bool() {
        return Ok(b);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(n > 0.0),
        _ => Err(bad_reply(op, "a boolean", v)),
    }
}

/// An integer from a number or a decimal string (exact either way).
fn reply_int(v: &JsValue, op: &'static str) -> Result<i64> {
    if let Some(n) = v.as_f64() {
        if n.is_finite() && n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
            return Ok(n as i64);
        }
    } else if let Some(s) = v.as_string() {
        if let Ok(n) = s.parse::<i64>() {
            return Ok(n);
        }
    } else if v.is_bigint() {
        if let Ok(n) = i64::try_from(v.clone()) {
            return Ok(n);
        }
    }
    Err(bad_reply(op, "an exact integer", v))
}

/// A field of an adapter's reply object. Replies reach Rust as plain
/// copies made by `lib/runtime.js` (`plain`), which copies objects through
/// its `REPLY_FIELDS`: a field read here must be listed there.
fn prop(obj: &JsValue, name: &str, op: &'static str) -> Result<JsValue> {
    if !obj.is_object() {
        return Err(bad_reply(op, "an object", obj));
    }
    Reflect::get(obj, &JsValue::from_str(name)).map_err(|e| from_js(&e, op))
}

/// A script reply as a [`Value`], the way redis-rs maps RESP.
fn to_value(v: &JsValue, depth: usize) -> Result<Value> {
    if depth > MAX_REPLY_DEPTH {
        return Err(Error::backend("a script reply nests too deep").with_operation("eval"));
    }
    // Most replies are integers, or arrays of them: test for a number first
    // (each test is a call into JavaScript).
    if let Some(n) = v.as_f64() {
        if n.is_finite() && n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
            return Ok(Value::Int(n as i64));
        }
        // A RESP3 double: its text, as redis-rs gives it.
        return Ok(Value::Data(Bytes::from(n.to_string())));
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        check_value_len(a.length() as usize, "a script reply")?;
        return Ok(Value::Data(Bytes::from(a.to_vec())));
    }
    if let Some(items) = v.dyn_ref::<Array>() {
        let mut out = Vec::with_capacity(items.length().min(1_024) as usize);
        for item in items.iter() {
            out.push(to_value(&item, depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Nil);
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Data(Bytes::from(s)));
    }
    if let Some(b) = v.as_bool() {
        return Ok(if b { Value::Int(1) } else { Value::Nil });
    }
    if v.is_bigint() {
        return i64::try_from(v.clone())
            .map(Value::Int)
            .map_err(|_| Error::backend("a script reply integer exceeds 64 bits"));
    }
    if v.is_instance_of::<js_sys::Error>() {
        return Err(from_js(v, "eval"));
    }
    Err(bad_reply(
        "eval",
        "null, a number, a string, a Buffer or an array",
        v,
    ))
}

/// A script's reply as [`Store::eval`] answers it.
fn script_value(r: Reply) -> Result<Value> {
    match r {
        Reply::Ints(ints) => Ok(Value::Array(ints.into_iter().map(Value::Int).collect())),
        Reply::Plain(v) => to_value(&v, 0),
    }
}

/// What [`Store::eval`] makes of the outcome of an adapter's `eval` call
/// that a host made itself ([`JsStore::eval_path`]): its value (`ok`), or
/// what it threw or rejected with. The key is the caller's to add.
pub(crate) fn eval_outcome(ok: bool, outcome: &JsValue) -> Result<Value> {
    if !ok {
        return Err(from_js(outcome, "eval"));
    }
    adapter_reply(outcome, true)
        .map_err(|e| from_js(&e, "eval"))
        .and_then(script_value)
}

fn arg_to_js(a: &Arg) -> JsValue {
    match a {
        // A number when exact (no text to decode on the JavaScript side);
        // decimal text beyond 2^53.
        Arg::Int(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => JsValue::from_f64(*i as f64),
        Arg::Int(i) => JsValue::from_str(&i.to_string()),
        // The limiter passes "" for "the server's time" on every call:
        // one string made once, not decoded from memory each time.
        Arg::Str(s) if s.is_empty() => EMPTY.with(Clone::clone),
        Arg::Str(s) => JsValue::from_str(s),
        Arg::Bytes(b) => Uint8Array::from(&b[..]).into(),
    }
}

thread_local! {
    static EMPTY: JsValue = JsValue::from_str("");
}

fn keys_to_js<'a>(keys: impl Iterator<Item = &'a Key>) -> Array {
    keys.map(|k| JsValue::from_str(k.as_str())).collect()
}

impl JsStore {
    /// A store over `adapter`, checking that it has the required methods
    /// (and that optional ones, where present, are functions).
    pub fn new(adapter: JsValue) -> Result<Self> {
        if !adapter.is_object() {
            return Err(Error::config(format!(
                "a store adapter must be an object with get, set, delete, ttl, compareAndSwap and scan methods, got {}",
                describe(&adapter)
            )));
        }
        let req = |name| {
            method(&adapter, name, true)?
                .ok_or_else(|| Error::config(format!("a store adapter needs `{name}`")))
        };
        let opt = |name| method(&adapter, name, false);
        let mut store = JsStore {
            get: req("get")?,
            set: req("set")?,
            delete: req("delete")?,
            ttl: req("ttl")?,
            compare_and_swap: req("compareAndSwap")?,
            scan: req("scan")?,
            eval: opt("eval")?,
            publish: opt("publish")?,
            subscribe: opt("subscribe")?,
            time: opt("time")?,
            set_if_absent: opt("setIfAbsent")?,
            delete_if_equal: opt("deleteIfEqual")?,
            expire_if_equal: opt("expireIfEqual")?,
            increment: opt("increment")?,
            get_many: opt("getMany")?,
            delete_many: opt("deleteMany")?,
            stats: opt("stats")?,
            scripts: RefCell::new(Vec::new()),
            capabilities: Capabilities::NONE,
            this: adapter,
        };
        let mut caps = Capabilities::NONE;
        caps.scripting = store.eval.is_some();
        caps.pubsub = store.publish.is_some() && store.subscribe.is_some();
        caps.server_clock = store.time.is_some();
        store.capabilities = caps;
        Ok(store)
    }

    /// Calls `f` with `args` and waits for its promise (or value).
    async fn call(&self, f: &Function, op: &'static str, args: &[JsValue]) -> Result<JsValue> {
        match self.call_reply(f, op, args, false).await? {
            Reply::Plain(v) => Ok(v),
            // Not asked for: never made.
            Reply::Ints(_) => Err(Error::backend("an unexpected reply form").with_operation(op)),
        }
    }

    /// [`call`](Self::call), the reply made plain ([`adapter_reply`]); with
    /// `ints`, an array of safe integers comes back as [`Reply::Ints`].
    async fn call_reply(
        &self,
        f: &Function,
        op: &'static str,
        args: &[JsValue],
        ints: bool,
    ) -> Result<Reply> {
        let returned = match args {
            [] => f.call0(&self.this),
            [a] => f.call1(&self.this, a),
            [a, b] => f.call2(&self.this, a, b),
            [a, b, c] => f.call3(&self.this, a, b, c),
            [a, b, c, d] => f.call4(&self.this, a, b, c, d),
            more => f.apply(&self.this, &more.iter().collect::<Array>()),
        }
        .map_err(|e| from_js(&e, op))?;
        // A promise, any thenable, or a plain value: JavaScript adopts it
        // the way `await` does.
        let v = JsAwait::new(returned).await.map_err(|e| from_js(&e, op))?;
        adapter_reply(&v, ints).map_err(|e| from_js(&e, op))
    }

    async fn call_key(
        &self,
        f: &Function,
        op: &'static str,
        key: &Key,
        rest: &[JsValue],
    ) -> Result<JsValue> {
        let mut args = Vec::with_capacity(rest.len() + 1);
        args.push(JsValue::from_str(key.as_str()));
        args.extend_from_slice(rest);
        self.call(f, op, &args).await.map_err(|e| e.with_key(key))
    }

    /// `[adapter, eval, script]` for a host that calls the adapter's
    /// `eval` itself (`lib/limiter.js`, the limiter's scripted path): the
    /// same function, `this` and script object [`Store::eval`] uses.
    /// `None` without `eval`.
    pub(crate) fn eval_path(&self, script: &Script) -> Option<Array> {
        let f = self.eval.as_ref()?;
        Some(
            [
                self.this.clone(),
                f.clone().into(),
                self.script_object(script),
            ]
            .into_iter()
            .collect(),
        )
    }

    fn script_object(&self, script: &Script) -> JsValue {
        let sha1 = script.sha1();
        if let Some((_, obj)) = self.scripts.borrow().iter().find(|(s, _)| s == sha1) {
            return obj.clone();
        }
        let obj = js_sys::Object::new();
        let _ = Reflect::set(&obj, &"sha1".into(), &JsValue::from_str(sha1));
        let _ = Reflect::set(&obj, &"source".into(), &JsValue::from_str(script.source()));
        let obj = JsValue::from(obj);
        self.scripts
            .borrow_mut()
            .push((sha1.to_owned(), obj.clone()));
        obj
    }
}

/// The messages of a JavaScript store's subscription; dropping it calls
/// the adapter's unsubscribe function.
struct JsSubscription {
    rx: futures_channel::mpsc::UnboundedReceiver<Bytes>,
    unsubscribe: Option<Function>,
}

impl futures_util::Stream for JsSubscription {
    type Item = Bytes;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Bytes>> {
        futures_util::StreamExt::poll_next_unpin(&mut self.rx, cx)
    }
}

impl Drop for JsSubscription {
    fn drop(&mut self) {
        if let Some(f) = self.unsubscribe.take() {
            if let Ok(returned) = f.call0(&JsValue::NULL) {
                crate::runtime::ignore_outcome(&returned);
            }
        }
    }
}

/// The store with only the required methods: the provided operations the
/// adapter does not offer come from the trait's defaults, through this.
struct Plain<'a>(&'a JsStore);

#[async_trait(?Send)]
impl Store for Plain<'_> {
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
}

#[async_trait(?Send)]
impl Store for JsStore {
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let v = self.call_key(&self.get, "get", key, &[]).await?;
        reply_opt_bytes(&v, "get").map_err(|e| e.with_key(key))
    }

    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        check_ttl(ttl)?;
        let value = Uint8Array::from(&value[..]).into();
        self.call_key(&self.set, "set", key, &[value, ttl_ms(ttl)])
            .await
            .map(drop)
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let v = self.call_key(&self.delete, "delete", key, &[]).await?;
        reply_bool(&v, "delete").map_err(|e| e.with_key(key))
    }

    async fn ttl(&self, key: &Key) -> Result<KeyTtl> {
        let v = self.call_key(&self.ttl, "ttl", key, &[]).await?;
        if v.is_null() || v.is_undefined() {
            return Ok(KeyTtl::Missing);
        }
        match v.as_f64() {
            Some(ms) if ms == f64::INFINITY => Ok(KeyTtl::Persistent),
            Some(0.0) => Ok(KeyTtl::Missing),
            Some(ms) if ms > 0.0 && ms.is_finite() => Ok(KeyTtl::Expires(
                crate::convert::duration_from_millis(ms, "ttl")
                    .unwrap_or(rampart::MAX_TTL)
                    .max(Duration::from_micros(1)),
            )),
            _ => Err(bad_reply(
                "ttl",
                "null (missing), Infinity (persistent) or milliseconds left",
                &v,
            )
            .with_key(key)),
        }
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Swap> {
        if new.is_some() {
            check_ttl(ttl)?;
        }
        let expected = expected.map_or(JsValue::NULL, |b| Uint8Array::from(b).into());
        let ttl = if new.is_some() {
            ttl_ms(ttl)
        } else {
            JsValue::NULL
        };
        let new = new.map_or(JsValue::NULL, |b| Uint8Array::from(&b[..]).into());
        let op = "compare_and_swap";
        let v = self
            .call_key(&self.compare_and_swap, op, key, &[expected, new, ttl])
            .await?;
        let swapped = prop(&v, "swapped", op)?;
        match swapped.as_bool() {
            Some(true) => Ok(Swap::Swapped),
            Some(false) => Ok(Swap::Conflict(reply_opt_bytes(
                &prop(&v, "current", op)?,
                op,
            )?)),
            None => Err(bad_reply(op, "{ swapped: boolean, current? }", &v).with_key(key)),
        }
    }

    async fn scan(&self, prefix: &str, cursor: &Cursor, count: usize) -> Result<Page> {
        validate_prefix(prefix)?;
        let args = [
            JsValue::from_str(prefix),
            JsValue::from_str(cursor.as_raw()),
            JsValue::from_f64(count.max(1) as f64),
        ];
        let v = self.call(&self.scan, "scan", &args).await?;
        let keys = prop(&v, "keys", "scan")?;
        let keys = keys
            .dyn_ref::<Array>()
            .ok_or_else(|| bad_reply("scan", "{ keys: string[], cursor }", &v))?;
        let mut out = Vec::with_capacity(keys.length().min(100_000) as usize);
        for k in keys.iter() {
            let text = k
                .as_string()
                .ok_or_else(|| bad_reply("scan", "keys that are strings", &k))?;
            // A key rampart could not have written is not one of its keys.
            if let Ok(key) = Key::new(text) {
                out.push(key);
            }
        }
        let next = prop(&v, "cursor", "scan")?;
        let next = match next.as_string() {
            Some(c) if !c.is_empty() => Some(Cursor::from_raw(c)),
            Some(_) => None,
            None if next.is_null() || next.is_undefined() => None,
            None => return Err(bad_reply("scan", "a string or null cursor", &next)),
        };
        Ok(Page { keys: out, next })
    }

    async fn set_if_absent(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        check_ttl(ttl)?;
        let Some(f) = &self.set_if_absent else {
            return Plain(self).set_if_absent(key, value, ttl).await;
        };
        let value = Uint8Array::from(&value[..]).into();
        let v = self
            .call_key(f, "set_if_absent", key, &[value, ttl_ms(ttl)])
            .await?;
        reply_bool(&v, "set_if_absent").map_err(|e| e.with_key(key))
    }

    async fn delete_if_equal(&self, key: &Key, expected: &[u8]) -> Result<bool> {
        let Some(f) = &self.delete_if_equal else {
            return Plain(self).delete_if_equal(key, expected).await;
        };
        let v = self
            .call_key(
                f,
                "delete_if_equal",
                key,
                &[Uint8Array::from(expected).into()],
            )
            .await?;
        reply_bool(&v, "delete_if_equal").map_err(|e| e.with_key(key))
    }

    async fn expire_if_equal(
        &self,
        key: &Key,
        expected: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        check_ttl(ttl)?;
        let Some(f) = &self.expire_if_equal else {
            return Plain(self).expire_if_equal(key, expected, ttl).await;
        };
        let args = [Uint8Array::from(expected).into(), ttl_ms(ttl)];
        let v = self.call_key(f, "expire_if_equal", key, &args).await?;
        reply_bool(&v, "expire_if_equal").map_err(|e| e.with_key(key))
    }

    async fn increment(
        &self,
        key: &Key,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64> {
        check_ttl(ttl_if_created)?;
        let Some(f) = &self.increment else {
            return Plain(self).increment(key, delta, ttl_if_created).await;
        };
        // Decimal text: an i64 does not fit a JavaScript number.
        let args = [
            JsValue::from_str(&delta.to_string()),
            ttl_ms(ttl_if_created),
        ];
        let v = self.call_key(f, "increment", key, &args).await?;
        reply_int(&v, "increment").map_err(|e| e.with_key(key))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let Some(f) = &self.get_many else {
            return Plain(self).get_many(keys).await;
        };
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let v = self
            .call(f, "get_many", &[keys_to_js(keys.iter()).into()])
            .await?;
        let values = v
            .dyn_ref::<Array>()
            .filter(|a| a.length() as usize == keys.len())
            .ok_or_else(|| bad_reply("get_many", "one value or null per key", &v))?;
        values
            .iter()
            .map(|item| reply_opt_bytes(&item, "get_many"))
            .collect()
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<u64> {
        let Some(f) = &self.delete_many else {
            return Plain(self).delete_many(keys).await;
        };
        if keys.is_empty() {
            return Ok(0);
        }
        let v = self
            .call(f, "delete_many", &[keys_to_js(keys.iter()).into()])
            .await?;
        let n = reply_int(&v, "delete_many")?;
        u64::try_from(n).map_err(|_| bad_reply("delete_many", "a count", &v))
    }

    async fn eval(&self, script: &Script, keys: &[&Key], args: &[Arg]) -> Result<Value> {
        let Some(f) = &self.eval else {
            return Err(Error::unsupported("eval"));
        };
        let script_obj = self.script_object(script);
        let js_keys = keys_to_js(keys.iter().copied());
        let js_args: Array = args.iter().map(arg_to_js).collect();
        let reply = self
            .call_reply(
                f,
                "eval",
                &[script_obj, js_keys.into(), js_args.into()],
                true,
            )
            .await;
        let reply = reply.and_then(script_value);
        match keys.first() {
            Some(k) => reply.map_err(|e| e.with_key(k)),
            None => reply,
        }
    }

    async fn publish(&self, channel: &Key, message: Bytes) -> Result<()> {
        let Some(f) = &self.publish else {
            return Err(Error::unsupported("publish"));
        };
        let message = Uint8Array::from(&message[..]).into();
        self.call_key(f, "publish", channel, &[message])
            .await
            .map(drop)
    }

    async fn subscribe(&self, channel: &Key) -> Result<rampart::Subscription> {
        let Some(f) = &self.subscribe else {
            return Err(Error::unsupported("subscribe"));
        };
        let (tx, rx) = futures_channel::mpsc::unbounded::<Bytes>();
        // Owned by JavaScript (freed by its GC): the adapter may call it
        // after the subscription is dropped; the send then just fails.
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |message: JsValue| {
            // Made plain first, like every reply: a message that only passes
            // for a Uint8Array would throw through this closure's frames.
            let Ok(Reply::Plain(message)) = adapter_reply(&message, false) else {
                return;
            };
            if let Ok(bytes) = reply_bytes(&message, "subscribe") {
                let _ = tx.unbounded_send(bytes);
            }
        })
        .into_js_value();
        let unsubscribe = self
            .call_key(f, "subscribe", channel, &[on_message])
            .await?
            .dyn_into::<Function>()
            .ok();
        Ok(Box::pin(JsSubscription { rx, unsubscribe }))
    }

    async fn server_time(&self) -> Result<Timestamp> {
        let Some(f) = &self.time else {
            return Err(Error::unsupported("server_time"));
        };
        let v = self.call(f, "server_time", &[]).await?;
        let micros = reply_int(&v, "server_time")?;
        u64::try_from(micros)
            .map(Timestamp::from_micros)
            .map_err(|_| bad_reply("server_time", "microseconds since the epoch", &v))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let Some(f) = &self.stats else {
            return Ok(StoreStats::default());
        };
        let v = self.call(f, "stats", &[]).await?;
        let count = |name| -> Result<Option<u64>> {
            let p = prop(&v, name, "stats")?;
            if p.is_null() || p.is_undefined() {
                return Ok(None);
            }
            let n = reply_int(&p, "stats")?;
            Ok(u64::try_from(n).ok())
        };
        let mut stats = StoreStats::default();
        stats.keys = count("keys")?;
        stats.memory_bytes = count("memoryBytes")?;
        stats.server = prop(&v, "server", "stats")?.as_string();
        Ok(stats)
    }
}
