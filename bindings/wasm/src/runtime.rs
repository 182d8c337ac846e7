//! The executor: futures polled only from calls that `lib/runtime.js`
//! makes inside a `try`, so a trap (a panic, on `wasm32`) is caught in
//! JavaScript instead of ending the process.
//!
//! wasm-bindgen-futures would poll from a promise callback of its own,
//! where a trap is an unhandled rejection that ends Node, and would leave
//! its queue stuck afterwards. Here instead:
//!
//! * an async export calls [`spawn`], which polls its future once,
//!   synchronously, inside the export call. A future that completes then
//!   (every [`rampart::MemoryStore`] operation does) returns its value
//!   straight away: no promise, no queue, no allocation beyond the task.
//! * A future that waits returns the `PENDING` sentinel; the JavaScript
//!   side then takes its task id ([`take_pending`]) and keeps the
//!   promise's `resolve`/`reject` under it.
//! * A waker pushes its task id onto a ready queue and asks JavaScript
//!   (once per batch) to call [`drain`] from a microtask; `drain` polls the
//!   ready tasks and reports each finished one through the `settle` hook.
//!
//! * A task awaits a JavaScript promise through [`JsAwait`], not
//!   wasm-bindgen-futures' `JsFuture`: JavaScript attaches the callbacks
//!   (`awaitPromise`) and hands the outcome back through [`resume`], which
//!   polls the woken task at once. So the callbacks run inside the same
//!   `try` as every other entry into the module, and no wasm-bindgen
//!   closure is allocated per await.
//!
//! The panic hook hands the panic message to JavaScript before the trap,
//! so the error that rejects the pending promises says what went wrong.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

type TaskFuture = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// Task and await ids are small integers this module hands out (no input
/// chooses them): a multiplicative hash spreads them at a fraction of
/// SipHash's cost, on every await of every store call.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by task or await id.
type IdMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A task waiting to be polled again, with the waker that names it.
struct Task {
    future: TaskFuture,
    waker: Waker,
}

/// Where a [`JsAwait`] stands.
enum AwaitSlot {
    /// The promise has not settled; wake this when it does.
    Waiting(Waker),
    /// It settled: `Ok(value)` or `Err(reason)`.
    Done(Result<JsValue, JsValue>),
}

/// The JavaScript functions the runtime calls, given once by [`install`].
struct Hooks {
    /// `settle(id, ok, value)`: a pending task finished.
    settle: Function,
    /// `schedule()`: call `drain` from a microtask soon.
    schedule: Function,
    /// `onPanic(message)`: called by the panic hook, just before the trap.
    on_panic: Function,
    /// `awaitPromise(value, id)`: call `resume(id, ok, outcome)` once
    /// `value` (a promise, a thenable or a plain value) settles.
    await_promise: Function,
    /// `makeError(code, message, temporary, operation, key)`: a
    /// `RampartError`.
    make_error: Function,
    /// `reply(value, ints)`: a store adapter's reply made plain (see
    /// [`adapter_reply`]).
    reply: Function,
    /// What an async export returns when its future is still waiting.
    pending: JsValue,
}

thread_local! {
    static HOOKS: OnceCell<Hooks> = const { OnceCell::new() };
    static TASKS: RefCell<IdMap<Task>> = RefCell::new(IdMap::default());
    static AWAITS: RefCell<IdMap<AwaitSlot>> = RefCell::new(IdMap::default());
    static NEXT_AWAIT: Cell<u32> = const { Cell::new(0) };
    static READY: RefCell<VecDeque<u32>> = const { RefCell::new(VecDeque::new()) };
    static SCHEDULED: Cell<bool> = const { Cell::new(false) };
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
    static LAST_PENDING: Cell<u32> = const { Cell::new(0) };
    static IN_CALLBACK: Cell<u32> = const { Cell::new(0) };
    /// Numbers handed to JavaScript without allocating: a result writes
    /// them here and JavaScript reads them at once through a
    /// `Float64Array` over the module's memory (see `out` in
    /// `lib/runtime.js`). Its address never changes.
    static OUT: RefCell<[f64; OUT_LEN]> = const { RefCell::new([0.0; OUT_LEN]) };
    /// Bytes handed to Rust without allocating: JavaScript writes a short
    /// ASCII key here (see `keyIn` in `lib/runtime.js`) and passes its
    /// length; the export reads it at once ([`read_key_in`]). Its address
    /// never changes.
    static KEY_IN: RefCell<[u8; KEY_IN_LEN]> = const { RefCell::new([0; KEY_IN_LEN]) };
    /// The error of the last synchronous export that answered with a
    /// [`status`] of 0, until [`take_failure`] takes it.
    static FAILURE: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// A synchronous export's outcome as one number (no multi-value return,
/// no exception thrown through wasm frames): 1 for success, 0 for a
/// failure whose error JavaScript then takes with [`take_failure`].
#[cfg_attr(not(feature = "limiter"), allow(dead_code))] // only decisions use it
pub(crate) fn status(result: Result<(), JsValue>) -> u32 {
    match result {
        Ok(()) => 1,
        Err(e) => {
            FAILURE.with(|f| *f.borrow_mut() = Some(e));
            0
        }
    }
}

/// The error of the last export that answered with status 0 (see
/// `status`), once.
#[wasm_bindgen(js_name = takeFailure)]
pub fn take_failure() -> JsValue {
    FAILURE
        .with(|f| f.borrow_mut().take())
        .unwrap_or(JsValue::UNDEFINED)
}

/// How many bytes the key scratch buffer holds (a key's longest form).
pub const KEY_IN_LEN: usize = rampart::MAX_KEY_LEN;

/// The address of the key scratch buffer in the module's memory.
#[wasm_bindgen(js_name = keyInPointer)]
pub fn key_in_pointer() -> u32 {
    KEY_IN.with(|k| k.as_ptr() as usize as u32)
}

/// Calls `f` with the first `len` bytes JavaScript wrote to the key
/// scratch buffer, as text: `None` if `len` is out of range or the bytes
/// are not UTF-8 (the caller then refuses the key; the core validates it).
#[cfg_attr(not(feature = "limiter"), allow(dead_code))] // only decisions use it
pub(crate) fn read_key_in<T>(len: u32, f: impl FnOnce(Option<&str>) -> T) -> T {
    KEY_IN.with(|k| {
        let k = k.borrow();
        let text = k
            .get(..len as usize)
            .and_then(|b| std::str::from_utf8(b).ok());
        f(text)
    })
}

/// How many numbers [`with_out`] holds.
pub const OUT_LEN: usize = 64;

/// Lets `f` write the numbers JavaScript reads for a result (in place: no
/// copy). The caller returns at once, so JavaScript reads them before
/// anything else writes.
#[cfg_attr(not(feature = "limiter"), allow(dead_code))] // only decisions use it
pub(crate) fn with_out(f: impl FnOnce(&mut [f64; OUT_LEN])) {
    OUT.with(|out| f(&mut out.borrow_mut()));
}

/// A store adapter's reply, as [`adapter_reply`] hands it over.
pub(crate) enum Reply {
    /// An array of fewer than [`OUT_LEN`] safe integers (a script's usual
    /// reply), read in one call rather than two or three per item.
    Ints(Vec<i64>),
    /// Anything else, as plain data: arrays and `Uint8Array`s copied by
    /// JavaScript, so no getter or proxy of the adapter's runs while Rust
    /// reads it.
    Plain(JsValue),
}

/// An adapter's reply made safe to read: reading a JavaScript value from
/// Rust calls into JavaScript, and an exception thrown there (an item
/// getter, a proxy trap) would unwind through the module's frames, skipping
/// their cleanup. `lib/runtime.js` copies the reply inside a `try` instead
/// (and, with `ints`, passes an array of safe integers through the shared
/// buffer). What the copy threw is the error.
pub(crate) fn adapter_reply(value: &JsValue, ints: bool) -> Result<Reply, JsValue> {
    let called = HOOKS.with(|h| {
        h.get().map(|h| {
            h.reply
                .call2(&JsValue::NULL, value, &JsValue::from_bool(ints))
        })
    });
    let plain = match called {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(e),
        None => return Err(JsValue::from_str("the rampart runtime is not installed")),
    };
    OUT.with(|out| {
        let out = out.borrow();
        let n = out[0];
        if n == -2.0 {
            return Err(plain); // what copying threw
        }
        if !(ints && (0.0..OUT_LEN as f64).contains(&n) && n.fract() == 0.0) {
            return Ok(Reply::Plain(plain));
        }
        // Checked again here: the module does not take JavaScript's word.
        let items: Option<Vec<i64>> = out[1..=n as usize]
            .iter()
            .map(|&x| {
                (x.fract() == 0.0 && x.abs() <= crate::convert::MAX_SAFE_INTEGER)
                    .then_some(x as i64)
            })
            .collect();
        Ok(items.map_or(Reply::Plain(plain), Reply::Ints))
    })
}

/// The address of the shared result numbers in the module's memory.
#[wasm_bindgen(js_name = outPointer)]
pub fn out_pointer() -> u32 {
    OUT.with(|out| out.as_ptr() as usize as u32)
}

/// The module's `WebAssembly.Memory`.
#[wasm_bindgen(js_name = wasmMemory)]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// Connects the runtime to `lib/runtime.js`; called once when the package
/// loads. Installs the panic hook.
///
/// # Errors
/// A `TypeError` if a hook is not a function, or if called twice.
#[wasm_bindgen]
pub fn install(
    settle: JsValue,
    schedule: JsValue,
    on_panic: JsValue,
    await_promise: JsValue,
    make_error: JsValue,
    reply: JsValue,
    pending: JsValue,
) -> Result<(), JsValue> {
    let function = |v: JsValue, name: &str| {
        v.dyn_into::<Function>().map_err(|_| {
            JsValue::from(js_sys::TypeError::new(&format!(
                "{name} must be a function"
            )))
        })
    };
    let hooks = Hooks {
        settle: function(settle, "settle")?,
        schedule: function(schedule, "schedule")?,
        on_panic: function(on_panic, "onPanic")?,
        await_promise: function(await_promise, "awaitPromise")?,
        make_error: function(make_error, "makeError")?,
        reply: function(reply, "reply")?,
        pending,
    };
    HOOKS.with(|h| h.set(hooks)).map_err(|_| {
        JsValue::from(js_sys::TypeError::new(
            "the rampart runtime is already installed",
        ))
    })?;
    // The core's background tasks (cache refresh, invalidation listener)
    // run here too, inside the guard, not on wasm-bindgen-futures' queue.
    rampart::rt::set_spawner(spawn_background);
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        HOOKS.with(|h| {
            if let Some(h) = h.get() {
                let _ = h
                    .on_panic
                    .call1(&JsValue::NULL, &JsValue::from_str(&message));
            }
        });
    }));
    Ok(())
}

/// A coded JavaScript error (a `RampartError` once installed).
pub(crate) fn make_error(
    code: &str,
    message: &str,
    temporary: bool,
    operation: Option<&str>,
    key: Option<&str>,
) -> JsValue {
    let opt = |s: Option<&str>| s.map_or(JsValue::UNDEFINED, JsValue::from_str);
    let made = HOOKS.with(|h| {
        h.get().and_then(|h| {
            h.make_error
                .call5(
                    &JsValue::NULL,
                    &JsValue::from_str(code),
                    &JsValue::from_str(message),
                    &JsValue::from_bool(temporary),
                    &opt(operation),
                    &opt(key),
                )
                .ok()
        })
    });
    made.unwrap_or_else(|| {
        // Not installed (the module used without index.js): a plain Error
        // that still carries its code.
        let e = js_sys::Error::new(message);
        let _ = js_sys::Reflect::set(&e, &"code".into(), &JsValue::from_str(code));
        e.into()
    })
}

/// Refuses a call made from inside an update callback (a store may hold
/// its lock while the callback runs): every entry that reaches a store
/// checks this first, [`spawn`] and the synchronous decisions alike.
///
/// # Errors
/// `RAMPART_INVALID_INPUT` inside an update callback.
pub(crate) fn not_in_callback() -> Result<(), JsValue> {
    if IN_CALLBACK.get() > 0 {
        return Err(crate::error::to_js(&rampart::Error::invalid_input(
            "rampart cannot be called from inside an update callback: compute the change from the value it is given",
        )));
    }
    Ok(())
}

/// Runs `future` as a task: its value now if it completes on the first
/// poll, else the `PENDING` sentinel (the value comes later through
/// `settle`).
///
/// # Errors
/// The future's error if it fails on the first poll, or
/// `RAMPART_INVALID_INPUT` when called from inside an update callback.
pub(crate) fn spawn<F>(future: F) -> Result<JsValue, JsValue>
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    not_in_callback()?;
    let id = next_id();
    let mut future: TaskFuture = Box::pin(future);
    let waker = Waker::from(Arc::new(TaskWaker(id)));
    match future.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(result) => result,
        Poll::Pending => {
            TASKS.with(|t| t.borrow_mut().insert(id, Task { future, waker }));
            LAST_PENDING.set(id);
            Ok(HOOKS.with(|h| h.get().map_or(JsValue::UNDEFINED, |h| h.pending.clone())))
        }
    }
}

/// Runs a background task of the core's ([`rampart::rt::spawn`]) on this
/// executor: queued, first polled by the next [`drain`] (inside
/// JavaScript's `try`), its end reported to nobody (`settle` ignores an id
/// no promise waits for).
fn spawn_background(task: rampart::rt::BackgroundTask) {
    let id = next_id();
    let waker = Waker::from(Arc::new(TaskWaker(id)));
    let future: TaskFuture = Box::pin(async move {
        task.await;
        Ok(JsValue::UNDEFINED)
    });
    TASKS.with(|t| {
        t.borrow_mut().insert(
            id,
            Task {
                future,
                waker: waker.clone(),
            },
        )
    });
    waker.wake();
}

fn next_id() -> u32 {
    TASKS.with(|tasks| {
        let tasks = tasks.borrow();
        loop {
            let id = NEXT_ID.get().wrapping_add(1);
            NEXT_ID.set(id);
            // Ids wrap after 2^32 tasks; skip one still running.
            if id != 0 && !tasks.contains_key(&id) {
                return id;
            }
        }
    })
}

/// The id of the task the last async export left pending.
#[wasm_bindgen(js_name = takePending)]
pub fn take_pending() -> u32 {
    LAST_PENDING.replace(0)
}

/// Polls every task that has been woken; reports finished ones through
/// `settle`. Called by `lib/runtime.js` from a microtask, inside a `try`.
#[wasm_bindgen]
pub fn drain() {
    while let Some(id) = READY.with(|r| r.borrow_mut().pop_front()) {
        // Taken out while polled: the future may call JavaScript, which
        // may call back into rampart and spawn tasks of its own.
        let Some(mut task) = TASKS.with(|t| t.borrow_mut().remove(&id)) else {
            continue; // finished already (a late or repeated wake)
        };
        match task
            .future
            .as_mut()
            .poll(&mut Context::from_waker(&task.waker))
        {
            Poll::Ready(result) => settle(id, result),
            Poll::Pending => {
                TASKS.with(|t| t.borrow_mut().insert(id, task));
            }
        }
    }
    SCHEDULED.set(false);
}

/// Hands a task the outcome of the promise it awaits (`ok`: fulfilled
/// with `value`; else rejected with it) and polls it at once. Called by
/// `lib/runtime.js` from the promise's callbacks, inside a `try`.
#[wasm_bindgen]
pub fn resume(id: u32, ok: bool, value: JsValue) {
    let outcome = if ok { Ok(value) } else { Err(value) };
    let waker = AWAITS.with(|a| {
        let mut awaits = a.borrow_mut();
        match awaits.get_mut(&id) {
            Some(slot @ AwaitSlot::Waiting(_)) => {
                match std::mem::replace(slot, AwaitSlot::Done(outcome)) {
                    AwaitSlot::Waiting(w) => Some(w),
                    AwaitSlot::Done(_) => None,
                }
            }
            // Settled twice, or the awaiting future is gone: nothing to do.
            _ => None,
        }
    });
    if let Some(waker) = waker {
        // Poll here rather than from another microtask: mark a drain as
        // scheduled so the wake does not ask JavaScript for one.
        let was_scheduled = SCHEDULED.replace(true);
        waker.wake();
        if !was_scheduled {
            drain();
        }
    }
}

/// Lets JavaScript settle `value` (a promise, perhaps) with nothing
/// waiting for it: a rejection is handled (dropped), never an unhandled
/// rejection that would end Node.
pub(crate) fn ignore_outcome(value: &JsValue) {
    HOOKS.with(|h| {
        if let Some(h) = h.get() {
            // Await slot 0 is never registered: `resume` ignores it.
            let _ = h
                .await_promise
                .call2(&JsValue::NULL, value, &JsValue::from(0u32));
        }
    });
}

/// A JavaScript promise (or thenable, or plain value) as a future,
/// resolved through [`resume`].
pub(crate) struct JsAwait {
    /// The value to await until it is handed to JavaScript.
    value: Option<JsValue>,
    /// Its slot in `AWAITS` once registered.
    id: Option<u32>,
}

impl JsAwait {
    /// Awaits `value`.
    pub(crate) fn new(value: JsValue) -> Self {
        Self {
            value: Some(value),
            id: None,
        }
    }
}

impl Future for JsAwait {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(id) = self.id else {
            let value = self.value.take().unwrap_or(JsValue::UNDEFINED);
            let id = NEXT_AWAIT.with(|n| {
                // 0 is reserved for `ignore_outcome`.
                let id = n.get().wrapping_add(1).max(1);
                n.set(id);
                id
            });
            AWAITS.with(|a| {
                a.borrow_mut()
                    .insert(id, AwaitSlot::Waiting(cx.waker().clone()))
            });
            self.id = Some(id);
            let handed = HOOKS.with(|h| {
                h.get().map(|h| {
                    h.await_promise
                        .call2(&JsValue::NULL, &value, &JsValue::from(id))
                })
            });
            return match handed {
                Some(Ok(_)) => Poll::Pending,
                Some(Err(e)) => {
                    AWAITS.with(|a| a.borrow_mut().remove(&id));
                    Poll::Ready(Err(e))
                }
                None => {
                    AWAITS.with(|a| a.borrow_mut().remove(&id));
                    Poll::Ready(Err(JsValue::from_str(
                        "the rampart runtime is not installed",
                    )))
                }
            };
        };
        AWAITS.with(|a| {
            let mut awaits = a.borrow_mut();
            match awaits.remove(&id) {
                Some(AwaitSlot::Done(outcome)) => Poll::Ready(outcome),
                Some(AwaitSlot::Waiting(_)) | None => {
                    awaits.insert(id, AwaitSlot::Waiting(cx.waker().clone()));
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for JsAwait {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            AWAITS.with(|a| a.borrow_mut().remove(&id));
        }
    }
}

/// How many tasks are waiting (for tests and leak checks).
#[wasm_bindgen(js_name = pendingTasks)]
pub fn pending_tasks() -> u32 {
    TASKS.with(|t| t.borrow().len() as u32)
}

fn settle(id: u32, result: Result<JsValue, JsValue>) {
    HOOKS.with(|h| {
        if let Some(h) = h.get() {
            let (ok, value) = match result {
                Ok(v) => (true, v),
                Err(e) => (false, e),
            };
            let _ = h.settle.call3(
                &JsValue::NULL,
                &JsValue::from(id),
                &JsValue::from_bool(ok),
                &value,
            );
        }
    });
}

struct TaskWaker(u32);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        READY.with(|r| r.borrow_mut().push_back(self.0));
        if !SCHEDULED.replace(true) {
            HOOKS.with(|h| {
                if let Some(h) = h.get() {
                    let _ = h.schedule.call0(&JsValue::NULL);
                }
            });
        }
    }
}

/// Marks a call into user JavaScript that must not call back into rampart
/// (an update callback runs while a store may hold its lock). Dropped when
/// the callback returns.
pub(crate) struct CallbackGuard(());

impl CallbackGuard {
    /// Enters a callback.
    pub(crate) fn enter() -> Self {
        IN_CALLBACK.set(IN_CALLBACK.get() + 1);
        CallbackGuard(())
    }
}

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        IN_CALLBACK.set(IN_CALLBACK.get().saturating_sub(1));
    }
}

/// Panics on purpose: lets the tests check that a panic becomes a rejected
/// promise with `RAMPART_PANIC` and a poisoned instance, not a dead process.
/// `lib/runtime.js` exposes it only as `__testing.panic`.
#[wasm_bindgen(js_name = panicForTesting)]
pub fn panic_for_testing(asynchronously: bool) -> Result<JsValue, JsValue> {
    if asynchronously {
        spawn(async {
            rampart::rt::sleep(std::time::Duration::from_millis(1)).await;
            panic!("deliberate panic after an await (test)");
        })
    } else {
        panic!("deliberate panic (test)");
    }
}

/// Panics on purpose in a background task of the core's
/// ([`rampart::rt::spawn`], as the cache's refresh is started): lets the
/// tests check that such a panic poisons the instance instead of ending
/// the process. `lib/runtime.js` exposes it only to tests.
#[wasm_bindgen(js_name = panicInBackgroundForTesting)]
pub fn panic_in_background_for_testing() -> Result<(), JsValue> {
    rampart::rt::spawn(async {
        rampart::rt::sleep(std::time::Duration::from_millis(1)).await;
        panic!("deliberate panic in a background task (test)");
    })
    .map_err(|e| crate::error::to_js(&e))
}
