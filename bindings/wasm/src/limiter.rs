//! `RateLimiter`: the core's [`rampart::limit::Limiter`] for JavaScript.
//!
//! Thin forwarding: the rule, the algorithms, the block cache, the failure
//! policy, the presets and the headers are the core's. This file checks
//! what JavaScript hands it and packs decisions into one `Float64Array`
//! (one boundary crossing per decision; `lib/limiter.js` unpacks it).
//!
//! Decision layout (`DECISION_*` indexes, mirrored in `lib/limiter.js`):
//! `allowed (0/1), limit, remaining, resetAfter ms, retryAfter ms (-1:
//! none), window ms, at ms, blockedUntil ms (-1: none), source, tiers`,
//! then per tier `limit, remaining, resetAfter ms, retryAfter ms (-1),
//! window ms`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use js_sys::{Array, Reflect};
use rampart::limit::{
    consume_all, presets::Presets, Algorithm, Begin, Decision, DecisionSource, HeaderOptions,
    HeaderStyle, LimitOp, Limiter, OnStoreError, Operation, Quota, Rule,
};
use rampart::{Arg, AtomicOp, Error, ErrorKind, Key, ScriptTime, Store, Timestamp, SEPARATOR};
use wasm_bindgen::prelude::*;

use crate::clock::ManualClockHandle;
use crate::convert::{
    array, describe, duration_from_millis, duration_to_millis, integer_in, number, optional,
    well_formed_string, MAX_SAFE_INTEGER,
};
use crate::error::js;
use crate::js_store::eval_outcome;
use crate::runtime::{not_in_callback, read_key_in, spawn, status, with_out, OUT_LEN};
use crate::store::StoreHandle;

// A decision with every tier fits in the shared buffer.
const _: () = assert!(10 + 5 * rampart::limit::MAX_TIERS <= OUT_LEN);

type DynLimiter = Limiter<Arc<dyn Store>>;

thread_local! {
    /// Live limiters by id, for `consumeAll` (JavaScript hands ids, not
    /// objects, so no handle is moved out of its JavaScript wrapper).
    static LIMITERS: RefCell<HashMap<u32, Weak<DynLimiter>>> = RefCell::new(HashMap::new());
    static NEXT_LIMITER: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Any error from reading options, as a configuration error.
fn config(e: Error) -> JsValue {
    if e.kind() == ErrorKind::Config {
        js(e)
    } else {
        js(Error::config(e.message().to_owned()))
    }
}

fn algorithm(v: &JsValue) -> Result<Algorithm, JsValue> {
    Ok(match v.as_string().as_deref() {
        None => Algorithm::SlidingWindow,
        Some("token-bucket") => Algorithm::TokenBucket,
        Some("sliding-log") => Algorithm::SlidingLog,
        Some("sliding-window") => Algorithm::SlidingWindow,
        Some("fixed-window") => Algorithm::FixedWindow,
        Some(other) => {
            return Err(js(Error::config(format!(
                "algorithm must be token-bucket, sliding-log, sliding-window or fixed-window, got {other:?}"
            ))))
        }
    })
}

fn field(obj: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|_| js(Error::config(format!("reading quota.{name} threw"))))
}

fn quota(v: &JsValue) -> Result<Quota, JsValue> {
    if !v.is_object() {
        return Err(js(Error::config(format!(
            "a quota is {{ limit, window, burst? }}, got {}",
            describe(v)
        ))));
    }
    let limit = number(&field(v, "limit")?, "quota.limit")
        .and_then(|x| integer_in(x, 0, MAX_SAFE_INTEGER as u64, "quota.limit"))
        .map_err(config)?;
    let window = number(&field(v, "window")?, "quota.window")
        .and_then(|x| duration_from_millis(x, "quota.window"))
        .map_err(config)?;
    let burst = optional(&field(v, "burst")?, "quota.burst", |x| {
        integer_in(x, 0, MAX_SAFE_INTEGER as u64, "quota.burst")
    })
    .map_err(config)?;
    let q = Quota::new(limit, window);
    Ok(match burst {
        Some(b) => q.with_burst(b),
        None => q,
    })
}

fn style(v: &JsValue) -> Result<HeaderStyle, JsValue> {
    Ok(match v.as_string().as_deref() {
        Some("draft-8") => HeaderStyle::Draft8,
        Some("draft-7") => HeaderStyle::Draft7,
        Some("draft-6") => HeaderStyle::Draft6,
        Some("legacy") => HeaderStyle::Legacy,
        _ => {
            return Err(js(Error::invalid_input(format!(
                "headers must be draft-8, draft-7, draft-6 or legacy, got {}",
                describe(v)
            ))))
        }
    })
}

/// Header options read once per call: the style, draft-8 names, `pk`.
struct Headers {
    style: HeaderStyle,
    names: Vec<String>,
    partition_key: Option<String>,
}

impl Headers {
    fn read(style_v: &JsValue, names: &JsValue, pk: &JsValue) -> Result<Option<Self>, JsValue> {
        if style_v.is_undefined() || style_v.is_null() {
            return Ok(None);
        }
        let style = style(style_v)?;
        let names = if names.is_undefined() || names.is_null() {
            Vec::new()
        } else {
            let array = array(names)
                .ok_or_else(|| js(Error::invalid_input("names must be an array of strings")))?;
            array
                .iter()
                .take(rampart::limit::MAX_TIERS)
                .map(|n| {
                    n.as_string()
                        .filter(|s| s.len() <= 256)
                        .ok_or_else(|| js(Error::invalid_input("names must be short strings")))
                })
                .collect::<Result<_, _>>()?
        };
        let partition_key = if pk.is_undefined() || pk.is_null() {
            None
        } else {
            Some(
                pk.as_string()
                    .filter(|s| s.len() <= rampart::MAX_KEY_LEN)
                    .ok_or_else(|| {
                        js(Error::invalid_input(
                            "partitionKey must be a string of at most 1024 bytes",
                        ))
                    })?,
            )
        };
        Ok(Some(Self {
            style,
            names,
            partition_key,
        }))
    }

    /// The headers the core rendered for `d` as one string, `name\nvalue`
    /// pairs joined by `\n` (`pairs` in `lib/limiter.js` splits it): one
    /// string crosses the boundary rather than an array per header. The
    /// core's header names and values are printable ASCII (policy names
    /// are escaped, the partition key hashed), so `\n` is never inside one.
    fn render(&self, d: &Decision) -> String {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut options = HeaderOptions::new(self.style).names(&names);
        if let Some(pk) = &self.partition_key {
            options = options.partition_key(pk);
        }
        let mut joined = String::with_capacity(128);
        for (name, value) in d.headers_with(&options) {
            if !joined.is_empty() {
                joined.push('\n');
            }
            joined.push_str(name);
            joined.push('\n');
            joined.push_str(&value);
        }
        joined
    }
}

#[inline(always)]
fn source_index(s: DecisionSource) -> f64 {
    match s {
        DecisionSource::Store => 0.0,
        DecisionSource::BlockCache => 1.0,
        DecisionSource::FailOpen => 2.0,
        DecisionSource::FailClosed => 3.0,
        DecisionSource::Insurance => 4.0,
        _ => 0.0,
    }
}

#[inline(always)]
fn opt_ms(d: Option<Duration>) -> f64 {
    d.map_or(-1.0, duration_to_millis)
}

/// Writes a decision's figures where `lib/limiter.js` reads them
/// ([`crate::runtime::with_out`]).
fn figures(d: &Decision) {
    with_out(|out| {
        out[0] = f64::from(u8::from(d.allowed));
        out[1] = d.limit as f64;
        out[2] = d.remaining as f64;
        out[3] = duration_to_millis(d.reset_after);
        out[4] = opt_ms(d.retry_after);
        out[5] = duration_to_millis(d.window);
        out[6] = d.at.as_micros() as f64 / 1_000.0;
        out[7] = d
            .blocked_until
            .map_or(-1.0, |t| t.as_micros() as f64 / 1_000.0);
        out[8] = source_index(d.source);
        let mut n = 0;
        // At most MAX_TIERS (4) tiers: 10 + 5 * 4 numbers fit in OUT_LEN.
        for (t, slot) in d.tiers().zip(out[10..].chunks_exact_mut(5)) {
            slot[0] = t.limit as f64;
            slot[1] = t.remaining as f64;
            slot[2] = duration_to_millis(t.reset_after);
            slot[3] = opt_ms(t.retry_after);
            slot[4] = duration_to_millis(t.window);
            n += 1;
        }
        out[9] = f64::from(n);
    });
}

/// [`figures`], resolving a task to `undefined`, or to the headers the
/// core rendered ([`Headers::render`]).
fn reply(d: &Decision, headers: Option<&Headers>) -> JsValue {
    figures(d);
    match headers {
        None => JsValue::UNDEFINED,
        Some(h) => JsValue::from_str(&h.render(d)),
    }
}

/// The time of a charge, as JavaScript has it (`Decision.at`: ms since
/// the epoch, to the µs), back to the core's microsecond: rounded, not
/// ceiled, so the µs the core reported comes back exactly.
fn charge_time(ms: f64) -> rampart::Result<Timestamp> {
    if !(ms.is_finite() && ms >= 0.0 && ms * 1_000.0 < MAX_SAFE_INTEGER) {
        return Err(Error::invalid_input(format!(
            "at must be a time in milliseconds since the epoch (a Decision's at), got {ms}"
        )));
    }
    Ok(Timestamp::from_micros((ms * 1_000.0).round() as u64))
}

fn cost(x: f64) -> Result<u64, JsValue> {
    integer_in(x, 1, MAX_SAFE_INTEGER as u64, "cost").map_err(js)
}

fn amount(v: &JsValue, what: &str) -> Result<u64, JsValue> {
    Ok(
        optional(v, what, |x| integer_in(x, 1, MAX_SAFE_INTEGER as u64, what))
            .map_err(js)?
            .unwrap_or(1),
    )
}

/// The options of a limiter that are objects (a clock, an insurance
/// store): set on this, then passed by reference to `RateLimiter.create`
/// (wasm-bindgen takes `&T` arguments but not `Option<&T>`).
#[wasm_bindgen(js_name = LimiterExtras)]
pub struct LimiterExtras {
    clock: Option<rampart::SharedClock>,
    insurance: Option<Arc<dyn Store>>,
    /// Whether `insurance` is absent or in process.
    insurance_in_process: bool,
}

impl Default for LimiterExtras {
    fn default() -> Self {
        LimiterExtras {
            clock: None,
            insurance: None,
            insurance_in_process: true,
        }
    }
}

#[wasm_bindgen(js_class = LimiterExtras)]
impl LimiterExtras {
    /// No clock (the system's) and no insurance store.
    #[wasm_bindgen(constructor)]
    pub fn new() -> LimiterExtras {
        LimiterExtras::default()
    }
    /// Decisions follow `clock` (tests).
    #[wasm_bindgen(js_name = setClock)]
    pub fn set_clock(&mut self, clock: &ManualClockHandle) {
        self.clock = Some(clock.shared());
    }
    /// The store that decides while the main one fails.
    #[wasm_bindgen(js_name = setInsurance)]
    pub fn set_insurance(&mut self, store: &StoreHandle) {
        self.insurance = Some(store.store());
        self.insurance_in_process = store.in_process();
    }
}

/// The core's rate limiter over a `Store`.
#[wasm_bindgen(js_name = RateLimiter)]
pub struct RateLimiterHandle {
    id: u32,
    limiter: Rc<DynLimiter>,
    /// Every store it may call is in process: decisions never wait.
    in_process: bool,
    /// `[adapter, eval, script, keyPrefix]` when `consume` may take the
    /// scripted path (see [`script_begin`](Self::script_begin)).
    scripted: Option<Array>,
}

/// How [`RateLimiterHandle::script_begin`] answered (besides 0, a
/// failure: [`status`]).
const BEGIN_DECIDED: u32 = 1;
const BEGIN_CALL: u32 = 2;
const BEGIN_TASK: u32 = 3;

/// Where the scripted path's first step left a decision.
enum Begun {
    /// Decided without a store call.
    Decided(Decision),
    /// The script's arguments are in the shared buffer.
    Call,
    /// Take the task path (`consume`): arguments the buffer cannot carry.
    Task,
}

/// Writes a script's arguments to the shared buffer for `lib/limiter.js`
/// (their count, then each: a number, or NaN for the empty string);
/// `false`, writing nothing, for any other argument (none today).
fn script_args(args: &[Arg]) -> bool {
    let n = args.len();
    if n >= OUT_LEN {
        return false;
    }
    let mut numbers = [0.0; OUT_LEN];
    for (slot, arg) in numbers[1..].iter_mut().zip(args) {
        *slot = match arg {
            Arg::Int(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => *i as f64,
            Arg::Str(s) if s.is_empty() => f64::NAN,
            _ => return false,
        };
    }
    numbers[0] = n as f64;
    with_out(|out| out[..=n].copy_from_slice(&numbers[..=n]));
    true
}

#[wasm_bindgen(js_class = RateLimiter)]
impl RateLimiterHandle {
    /// A limiter on `store`. `quotas`: `[{ limit, window (ms), burst? }]`
    /// (one to four tiers); `algorithm`: `token-bucket`, `sliding-log`,
    /// `sliding-window` (default), `fixed-window`; `block_ms`: block a key
    /// that long after a denial; `on_error`: `fail` (default), `allow`,
    /// `deny`, or `insurance` with `insurance` set.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        store: &StoreHandle,
        algorithm_v: JsValue,
        quotas: JsValue,
        block_ms: JsValue,
        prefix: JsValue,
        extras: &LimiterExtras,
        script_time: JsValue,
        block_cache: JsValue,
        on_error: JsValue,
    ) -> Result<RateLimiterHandle, JsValue> {
        let quotas = array(&quotas).ok_or_else(|| {
            js(Error::config(
                "quotas must be an array of { limit, window, burst? }",
            ))
        })?;
        if quotas.length() as usize > rampart::limit::MAX_TIERS {
            return Err(js(Error::config(format!(
                "a rule has at most {} quotas",
                rampart::limit::MAX_TIERS
            ))));
        }
        let mut rule = Rule::builder(algorithm(&algorithm_v)?);
        for q in quotas.iter() {
            rule = rule.quota(quota(&q)?);
        }
        if let Some(block) = optional(&block_ms, "blockFor", |x| {
            duration_from_millis(x, "blockFor")
        })
        .map_err(config)?
        {
            rule = rule.block_for(block);
        }
        let rule = rule.build().map_err(js)?;
        Self::build(
            store,
            rule,
            prefix,
            extras,
            script_time,
            block_cache,
            on_error,
        )
    }

    /// A limiter with a preset rule (`auth`, `general`, `api`), overridden
    /// by `env` (an object such as `process.env`: `RATE_LIMIT_*`).
    #[allow(clippy::too_many_arguments)]
    pub fn preset(
        store: &StoreHandle,
        name: JsValue,
        env: JsValue,
        prefix: JsValue,
        extras: &LimiterExtras,
        script_time: JsValue,
        block_cache: JsValue,
        on_error: JsValue,
    ) -> Result<RateLimiterHandle, JsValue> {
        let lookup = |var: &str| -> Option<String> {
            if !env.is_object() {
                return None;
            }
            Reflect::get(&env, &JsValue::from_str(var))
                .ok()
                .and_then(|v| v.as_string())
        };
        let presets = Presets::from_lookup(lookup).map_err(js)?;
        let rule = match name.as_string().as_deref() {
            Some("auth") => presets.auth,
            Some("general") => presets.general,
            Some("api") => presets.api,
            _ => {
                return Err(js(Error::config(format!(
                    "preset must be auth, general or api, got {}",
                    describe(&name)
                ))))
            }
        };
        Self::build(
            store,
            rule,
            prefix,
            extras,
            script_time,
            block_cache,
            on_error,
        )
    }

    /// This limiter's id, for `consumeAll`.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The largest cost one request may have.
    #[wasm_bindgen(getter)]
    pub fn capacity(&self) -> f64 {
        self.limiter.rule().capacity() as f64
    }

    /// Admits and counts a request of `cost` units, or denies it counting
    /// nothing. `lib/limiter.js` checks that `id` is a well-formed string
    /// and `cost` a number before calling.
    pub fn consume(&self, id: &str, cost_units: f64) -> Result<JsValue, JsValue> {
        let key = self.limiter.key(id).map_err(js)?;
        let cost = cost(cost_units)?;
        let limiter = self.limiter.clone();
        spawn(async move {
            let d = limiter.consume(&key, cost).await.map_err(js)?;
            Ok(reply(&d, None))
        })
    }

    /// `[adapter, eval, script, keyPrefix]` when `consume` may take the
    /// scripted path: a store adapter with `eval` and no insurance store,
    /// or an in-process one. `lib/limiter.js` then calls
    /// `eval.call(adapter, script, [keyPrefix + id], args)` itself between
    /// [`script_begin`](Self::script_begin) and
    /// [`script_finish`](Self::script_finish): the same call the core's
    /// `Store::eval` makes, without a task and a bridged promise.
    #[wasm_bindgen(getter, js_name = scriptPath)]
    pub fn script_path(&self) -> JsValue {
        self.scripted
            .as_ref()
            .map_or(JsValue::UNDEFINED, |a| a.clone().into())
    }

    /// The core's [`Limiter::begin_consume`] for `consume` on the scripted
    /// path. The key is `id`, or, when `id` is `undefined`, the `len`
    /// bytes JavaScript wrote to the key scratch buffer. Answers 1 with the
    /// decision's figures in the shared buffer (no call needed), 0 with the
    /// error left for `takeFailure`, 2 with the script's arguments in the
    /// shared buffer (their count, then each: a number, or NaN for the
    /// empty string), or 3 when this call must take the task path
    /// (`consume`; nothing was counted).
    #[wasm_bindgen(js_name = scriptBegin)]
    pub fn script_begin(&self, len: u32, id: Option<String>, cost_units: f64) -> u32 {
        match self.begin(len, id, cost_units, None) {
            Err(e) => status(Err(e)),
            Ok((Begun::Decided(d), _)) => {
                figures(&d);
                BEGIN_DECIDED
            }
            Ok((Begun::Call, _)) => BEGIN_CALL,
            Ok((Begun::Task, _)) => BEGIN_TASK,
        }
    }

    /// [`script_begin`](Self::script_begin) with header options (as
    /// `consumeWithHeaders` takes them, checked after the key and the
    /// cost): a decision made at once answers the headers the core
    /// rendered (a string) instead of 1.
    #[wasm_bindgen(js_name = scriptBeginHeaders)]
    pub fn script_begin_headers(
        &self,
        len: u32,
        id: Option<String>,
        cost_units: f64,
        style: JsValue,
        names: JsValue,
        pk: JsValue,
    ) -> JsValue {
        let code = match self.begin(len, id, cost_units, Some([&style, &names, &pk])) {
            Err(e) => status(Err(e)),
            Ok((Begun::Decided(d), headers)) => {
                figures(&d);
                return JsValue::from_str(&headers.map(|h| h.render(&d)).unwrap_or_default());
            }
            Ok((Begun::Call, _)) => BEGIN_CALL,
            Ok((Begun::Task, _)) => BEGIN_TASK,
        };
        JsValue::from(code)
    }

    /// The core's [`Limiter::finish_consume`] for the same key and cost as
    /// [`script_begin`](Self::script_begin), given what the adapter's
    /// `eval` did: `ok` and its value, or not `ok` and what it threw or
    /// rejected with. 1 with the decision's figures in the shared buffer,
    /// or 0 with the error left for `takeFailure`.
    #[wasm_bindgen(js_name = scriptFinish)]
    pub fn script_finish(
        &self,
        len: u32,
        id: Option<String>,
        cost_units: f64,
        ok: bool,
        outcome: JsValue,
    ) -> u32 {
        status(
            self.finish(len, id, cost_units, ok, &outcome)
                .map(|d| figures(&d)),
        )
    }

    /// [`script_finish`](Self::script_finish) answering the headers the
    /// core rendered for the decision, or `undefined` with the error left
    /// for `takeFailure`.
    #[wasm_bindgen(js_name = scriptFinishHeaders)]
    #[allow(clippy::too_many_arguments)]
    pub fn script_finish_headers(
        &self,
        len: u32,
        id: Option<String>,
        cost_units: f64,
        ok: bool,
        outcome: JsValue,
        style: JsValue,
        names: JsValue,
        pk: JsValue,
    ) -> Option<String> {
        let rendered = self
            .finish(len, id, cost_units, ok, &outcome)
            .and_then(|d| {
                let headers = Headers::read(&style, &names, &pk)?;
                figures(&d);
                Ok(headers.map(|h| h.render(&d)).unwrap_or_default())
            });
        rendered.map_err(|e| status(Err(e))).ok()
    }

    /// The scripted path's first step ([`script_begin`](Self::script_begin)),
    /// with the header options read after the key and the cost.
    fn begin(
        &self,
        len: u32,
        id: Option<String>,
        cost_units: f64,
        header_options: Option<[&JsValue; 3]>,
    ) -> Result<(Begun, Option<Headers>), JsValue> {
        if self.scripted.is_none() {
            return Ok((Begun::Task, None));
        }
        let key = self.key_of(len, id)?;
        let cost = cost(cost_units)?;
        let headers = match header_options {
            Some([style, names, pk]) => Headers::read(style, names, pk)?,
            None => None,
        };
        not_in_callback()?;
        let begun = match self.limiter.begin_consume(&key, cost) {
            Begin::Decided(d) => Begun::Decided(d.map_err(js)?),
            Begin::Call(call) if script_args(&call.args) => Begun::Call,
            Begin::Call(_) => Begun::Task,
        };
        Ok((begun, headers))
    }

    /// The scripted path's last step ([`script_finish`](Self::script_finish)),
    /// polled once: it is ready at once with no insurance store or an
    /// in-process one (the only limiters given the path).
    fn finish(
        &self,
        len: u32,
        id: Option<String>,
        cost_units: f64,
        ok: bool,
        outcome: &JsValue,
    ) -> Result<Decision, JsValue> {
        let key = self.key_of(len, id)?;
        let cost = cost(cost_units)?;
        not_in_callback()?;
        let reply = eval_outcome(ok, outcome);
        let mut decision = self.limiter.finish_consume(&key, cost, reply);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut decision).poll(&mut cx) {
            Poll::Ready(d) => d.map_err(js),
            Poll::Pending => Err(js(Error::backend(
                "a scripted decision did not finish synchronously",
            ))),
        }
    }

    /// The key `id`, or the one JavaScript wrote to the key scratch buffer
    /// when `id` is `None`.
    fn key_of(&self, len: u32, id: Option<String>) -> Result<Key, JsValue> {
        match id {
            Some(id) => self.limiter.key(&id).map_err(js),
            None => self.key_in(len),
        }
    }

    /// Whether every store this limiter may call is in process (the
    /// core's `MemoryStore`), so [`consume_now`](Self::consume_now) and
    /// [`consume_key_in`](Self::consume_key_in) may be used.
    #[wasm_bindgen(getter, js_name = inProcess)]
    pub fn in_process(&self) -> bool {
        self.in_process
    }

    /// [`consume`](Self::consume) decided synchronously, for a limiter
    /// whose stores are in process: 1 with the figures in the shared
    /// buffer (`lib/limiter.js` wraps them in a resolved promise), or 0
    /// with the error left for `takeFailure`. No task, no promise, no
    /// allocation beyond the key.
    #[wasm_bindgen(js_name = consumeNow)]
    pub fn consume_now(&self, id: &str, cost_units: f64) -> u32 {
        status(
            self.limiter
                .key(id)
                .map_err(js)
                .and_then(|key| self.figures_now(&key, cost_units)),
        )
    }

    /// [`consume_now`](Self::consume_now) for a key JavaScript wrote to
    /// the key scratch buffer (`len` bytes; short ASCII keys), sparing the
    /// allocation and the call that passing a string costs.
    #[wasm_bindgen(js_name = consumeKeyIn)]
    pub fn consume_key_in(&self, len: u32, cost_units: f64) -> u32 {
        status(
            self.key_in(len)
                .and_then(|key| self.figures_now(&key, cost_units)),
        )
    }

    /// [`consume_now`](Self::consume_now) answering with the headers the
    /// core rendered for the decision (what `consumeWithHeaders` resolves
    /// to), or `undefined` with the error left for `takeFailure`. The key
    /// is `id`, or, when `id` is `undefined`, the `len` bytes JavaScript
    /// wrote to the key scratch buffer, as in
    /// [`consume_key_in`](Self::consume_key_in). Checked in the order of
    /// `consumeWithHeaders`: key, cost, header options.
    #[wasm_bindgen(js_name = consumeHeadersNow)]
    pub fn consume_headers_now(
        &self,
        len: u32,
        id: Option<String>,
        cost_units: f64,
        style: JsValue,
        names: JsValue,
        pk: JsValue,
    ) -> Option<String> {
        let rendered = self.key_of(len, id).and_then(|key| {
            let cost = cost(cost_units)?;
            let headers = Headers::read(&style, &names, &pk)?;
            let d = self.decide_now(&key, cost)?;
            figures(&d);
            Ok(headers.map(|h| h.render(&d)).unwrap_or_default())
        });
        rendered.map_err(|e| status(Err(e))).ok()
    }

    /// [`consume`](Self::consume), resolving to the headers the core
    /// rendered for the decision in `style` (with draft-8 `names` and
    /// partition key `pk`).
    #[wasm_bindgen(js_name = consumeWithHeaders)]
    pub fn consume_with_headers(
        &self,
        id: &str,
        cost_units: f64,
        style: JsValue,
        names: JsValue,
        pk: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = self.limiter.key(id).map_err(js)?;
        let cost = cost(cost_units)?;
        let headers = Headers::read(&style, &names, &pk)?;
        let limiter = self.limiter.clone();
        spawn(async move {
            let d = limiter.consume(&key, cost).await.map_err(js)?;
            Ok(reply(&d, headers.as_ref()))
        })
    }

    /// Waits up to `ms` milliseconds for room, then admits and counts a
    /// request of `cost` (default 1) units, or denies it counting nothing
    /// (the core's [`Limiter::consume_within`]: sleeps are `setTimeout`).
    #[wasm_bindgen(js_name = consumeWithin)]
    pub fn consume_within(
        &self,
        id: JsValue,
        ms: JsValue,
        cost: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = self.key(&id)?;
        let max_wait =
            duration_from_millis(number(&ms, "maxWait").map_err(js)?, "maxWait").map_err(js)?;
        let cost = amount(&cost, "cost")?;
        let limiter = self.limiter.clone();
        spawn(async move {
            let d = limiter
                .consume_within(&key, cost, max_wait)
                .await
                .map_err(js)?;
            Ok(reply(&d, None))
        })
    }

    /// Whether a request of `cost` would be admitted now (counts nothing).
    pub fn check(&self, id: JsValue, cost: JsValue) -> Result<JsValue, JsValue> {
        let key = self.key(&id)?;
        let cost = amount(&cost, "cost")?;
        let limiter = self.limiter.clone();
        spawn(async move { Ok(reply(&limiter.check(&key, cost).await.map_err(js)?, None)) })
    }

    /// Gives `amount` (default 1) units back: the newest, or, given `at`
    /// (a consume's `Decision.at`, ms), that charge's own
    /// ([`Limiter::undo`]).
    pub fn refund(&self, id: JsValue, amount_v: JsValue, at: JsValue) -> Result<JsValue, JsValue> {
        let key = self.key(&id)?;
        let amount = amount(&amount_v, "amount")?;
        let at = optional(&at, "at", charge_time).map_err(js)?;
        let limiter = self.limiter.clone();
        spawn(async move {
            let d = match at {
                None => limiter.refund(&key, amount).await,
                Some(at) => limiter.undo(&key, amount, at).await,
            };
            Ok(reply(&d.map_err(js)?, None))
        })
    }

    /// Charges `amount` (default 1) units without checking the limit.
    pub fn penalty(&self, id: JsValue, amount_v: JsValue) -> Result<JsValue, JsValue> {
        let key = self.key(&id)?;
        let amount = amount(&amount_v, "amount")?;
        let limiter = self.limiter.clone();
        spawn(async move {
            Ok(reply(
                &limiter.penalty(&key, amount).await.map_err(js)?,
                None,
            ))
        })
    }

    /// Blocks the key for `ms` milliseconds (never shortening a block).
    pub fn block(&self, id: JsValue, ms: JsValue) -> Result<JsValue, JsValue> {
        let key = self.key(&id)?;
        let d =
            duration_from_millis(number(&ms, "duration").map_err(js)?, "duration").map_err(js)?;
        if d.is_zero() {
            return Err(js(Error::invalid_input("a block lasts at least 1 µs")));
        }
        let limiter = self.limiter.clone();
        spawn(async move { Ok(reply(&limiter.block(&key, d).await.map_err(js)?, None)) })
    }

    /// Forgets everything about the key.
    pub fn reset(&self, id: JsValue) -> Result<JsValue, JsValue> {
        let key = self.key(&id)?;
        let limiter = self.limiter.clone();
        spawn(async move {
            limiter.reset(&key).await.map_err(js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// All or nothing across limiters: `ids[i]` charges `keys[i]` `costs[i]`.
    #[wasm_bindgen(js_name = consumeAll)]
    pub fn consume_all_js(ids: JsValue, keys: JsValue, costs: JsValue) -> Result<JsValue, JsValue> {
        let arrays = [&ids, &keys, &costs].map(|v| array(v).cloned());
        let [Some(ids), Some(keys), Some(costs)] = arrays else {
            return Err(js(Error::invalid_input(
                "consumeAll needs [limiter, key, cost?] entries",
            )));
        };
        let n = ids.length();
        if n == 0 || n > 64 || keys.length() != n || costs.length() != n {
            return Err(js(Error::invalid_input(
                "consumeAll needs between 1 and 64 [limiter, key, cost?] entries",
            )));
        }
        let mut entries: Vec<(Rc<DynLimiter>, Key, u64)> = Vec::with_capacity(n as usize);
        for i in 0..n {
            let id = ids.get(i).as_f64().unwrap_or(-1.0);
            let limiter = LIMITERS
                .with(|m| m.borrow().get(&(id as u32)).and_then(Weak::upgrade))
                .filter(|_| id >= 0.0)
                .ok_or_else(|| js(Error::invalid_input("consumeAll: not a live RateLimiter")))?;
            let key = key_for(&limiter, &keys.get(i))?;
            let cost = amount(&costs.get(i), "cost")?;
            entries.push((limiter, key, cost));
        }
        spawn(async move {
            let refs: Vec<(&DynLimiter, &Key, u64)> =
                entries.iter().map(|(l, k, c)| (&**l, k, *c)).collect();
            Ok(reply(&consume_all(&refs).await.map_err(js)?, None))
        })
    }
}

fn key_for(limiter: &DynLimiter, id: &JsValue) -> Result<Key, JsValue> {
    match well_formed_string(id) {
        Some(Ok(s)) => limiter.key(&s).map_err(js),
        Some(Err(e)) => Err(js(Error::invalid_key(e.message().to_owned()))),
        None => Err(js(Error::invalid_key(format!(
            "a rate-limit key must be a string, got {}",
            describe(id)
        )))),
    }
}

impl RateLimiterHandle {
    fn key(&self, id: &JsValue) -> Result<Key, JsValue> {
        key_for(&self.limiter, id)
    }

    /// [`decide_now`](Self::decide_now), the figures written.
    fn figures_now(&self, key: &Key, cost_units: f64) -> Result<(), JsValue> {
        figures(&self.decide_now(key, cost(cost_units)?)?);
        Ok(())
    }

    /// The key JavaScript wrote to the key scratch buffer (`len` bytes).
    fn key_in(&self, len: u32) -> Result<Key, JsValue> {
        read_key_in(len, |text| match text {
            Some(text) => self.limiter.key(text).map_err(js),
            None => Err(js(Error::invalid_key(
                "a rate-limit key must be UTF-8 text",
            ))),
        })
    }

    /// One consume, polled once: on in-process stores the core answers
    /// before the first poll ([`rampart::Store::update_local`]), or, on
    /// its fallback path, within it (nothing awaits JavaScript).
    fn decide_now(&self, key: &Key, cost: u64) -> Result<Decision, JsValue> {
        if !self.in_process {
            return Err(js(Error::invalid_input(
                "consumeNow needs a limiter whose stores are in process",
            )));
        }
        not_in_callback()?;
        let mut decision = self.limiter.consume(key, cost);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut decision).poll(&mut cx) {
            Poll::Ready(Ok(d)) => Ok(d),
            Poll::Ready(Err(e)) => Err(js(e)),
            // Unreachable while every store is in process. Not retried on
            // the async path: the first poll may have counted already.
            Poll::Pending => Err(js(Error::backend(
                "an in-process decision did not complete synchronously",
            ))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        store: &StoreHandle,
        rule: Rule,
        prefix: JsValue,
        extras: &LimiterExtras,
        script_time: JsValue,
        block_cache: JsValue,
        on_error: JsValue,
    ) -> Result<RateLimiterHandle, JsValue> {
        let mut b = Limiter::builder(store.store(), rule);
        if let Some(c) = &extras.clock {
            b = b.clock(c.clone());
        }
        match script_time.as_string().as_deref() {
            None | Some("server") => {}
            Some("caller") => b = b.script_time(ScriptTime::Caller),
            Some(other) => {
                return Err(js(Error::config(format!(
                    "scriptTime must be server or caller, got {other:?}"
                ))))
            }
        }
        if !(prefix.is_undefined() || prefix.is_null()) {
            let p = prefix
                .as_string()
                .ok_or_else(|| js(Error::config("prefix must be a string")))?;
            b = b.prefix(p);
        }
        if let Some(n) = optional(&block_cache, "blockCache", |x| {
            integer_in(x, 0, 10_000_000, "blockCache")
        })
        .map_err(config)?
        {
            b = b.block_cache(n as usize);
        }
        let policy = match (on_error.as_string().as_deref(), extras.insurance.clone()) {
            (None | Some("fail"), None) => OnStoreError::Fail,
            (Some("allow"), None) => OnStoreError::Allow,
            (Some("deny"), None) => OnStoreError::Deny,
            (Some("insurance"), Some(s)) => OnStoreError::Insurance(s),
            _ => {
                return Err(js(Error::config(
                    "onStoreError must be fail, allow, deny, or { insurance: Store }",
                )))
            }
        };
        let limiter = Rc::new(b.on_store_error(policy).build().map_err(config)?);
        let id = NEXT_LIMITER.with(|n| {
            let id = n.get().wrapping_add(1);
            n.set(id);
            id
        });
        LIMITERS.with(|m| m.borrow_mut().insert(id, Rc::downgrade(&limiter)));
        // The scripted path finishes synchronously: only with no insurance
        // store or an in-process one.
        let scripted = store
            .adapter()
            .filter(|_| extras.insurance_in_process)
            .and_then(|adapter| {
                let lop = LimitOp::new(limiter.rule(), Operation::Consume, 1).ok()?;
                let path = adapter.eval_path(lop.script())?;
                let prefix = limiter
                    .prefix()
                    .map_or(String::new(), |p| format!("{p}{SEPARATOR}"));
                path.push(&JsValue::from_str(&prefix));
                Some(path)
            });
        Ok(RateLimiterHandle {
            id,
            limiter,
            in_process: store.in_process() && extras.insurance_in_process,
            scripted,
        })
    }
}

impl Drop for RateLimiterHandle {
    fn drop(&mut self) {
        LIMITERS.with(|m| {
            m.borrow_mut().remove(&self.id);
        });
    }
}
