//! [`Limiter`]: a [`Rule`] applied to keys in a [`Store`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::engine::{admit_one_tier, LimitOp, Operation};
use super::policy::{is_store_failure, BlockCache, OnStoreError, DEFAULT_BLOCK_CACHE};
use super::{Admitted, Decision, DecisionSource, Rule, Tier};
use crate::AtomicOp;
use crate::{
    duration_micros, run, Arg, Error, Key, LocalChange, Result, Script, ScriptTime, SharedClock,
    Store, SystemClock, Timestamp, Value,
};

/// Applies a [`Rule`] to keys in a store: one atomic store call per
/// decision (none when the [`BlockCache`] knows the key is blocked).
///
/// On an in-process store a decision runs in place through
/// [`Store::update_local`] on the store's own clock, unless the limiter is
/// given a clock with [`LimiterBuilder::clock`], which then supplies `now`
/// (give the store and the limiter the same clock: tests inject a
/// [`crate::ManualClock`] into both). Other stores get `now` from the
/// limiter's clock (default: the system clock). On a store with scripting the Lua
/// twin reads the server's `TIME` instead (see [`LimiterBuilder::script_time`]).
///
/// ```
/// use rampart::limit::{Limiter, Quota, Rule};
/// use rampart::{ManualClock, MemoryStore, Timestamp};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::new(Timestamp::from_secs(1_000));
/// let store = MemoryStore::builder().clock(clock.shared()).build();
/// let limiter = Limiter::builder(store, Rule::fixed_window(Quota::per_minute(2))?)
///     .clock(clock.shared())
///     .prefix("rl:login")
///     .build()?;
/// let key = limiter.key("alice")?;
/// assert!(limiter.consume(&key, 1).await?.allowed);
/// assert!(limiter.consume(&key, 1).await?.allowed);
/// let denied = limiter.consume(&key, 1).await?;
/// assert!(!denied.allowed);
/// assert_eq!(denied.retry_after, Some(Duration::from_secs(20)));
/// clock.advance(Duration::from_secs(20));
/// assert!(limiter.consume(&key, 1).await?.allowed);
/// # Ok::<(), rampart::Error>(()) }).unwrap();
/// ```
pub struct Limiter<S> {
    store: S,
    rule: Rule,
    clock: SharedClock,
    /// Whether `clock` was chosen by the caller (otherwise an in-process
    /// store's own reading is used: one clock read per decision).
    own_clock: bool,
    script_time: ScriptTime,
    prefix: Option<Key>,
    blocks: BlockCache,
    on_error: OnStoreError,
}

/// Builds a [`Limiter`].
pub struct LimiterBuilder<S> {
    store: S,
    rule: Rule,
    clock: Option<SharedClock>,
    script_time: ScriptTime,
    prefix: Option<String>,
    block_cache: usize,
    on_error: OnStoreError,
}

impl<S: Store> LimiterBuilder<S> {
    /// The clock that supplies `now` (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Where the Lua twin gets `now` on a scripting store (default: the
    /// server's `TIME`; [`ScriptTime::Caller`] passes the limiter's clock).
    pub fn script_time(mut self, t: ScriptTime) -> Self {
        self.script_time = t;
        self
    }
    /// A namespace for [`Limiter::key`] (e.g. `rl:auth`), so limiters with
    /// different rules never share a key.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    /// How many blocked keys the local block cache remembers (default
    /// 10 000; 0 turns it off).
    pub fn block_cache(mut self, capacity: usize) -> Self {
        self.block_cache = capacity;
        self
    }
    /// What a decision does when the store is unavailable (default:
    /// [`OnStoreError::Fail`]).
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.on_error = policy;
        self
    }
    /// The limiter; [`crate::ErrorKind::InvalidKey`] for a bad prefix.
    pub fn build(self) -> Result<Limiter<S>> {
        let prefix = self.prefix.map(Key::new).transpose()?;
        Ok(Limiter {
            store: self.store,
            rule: self.rule,
            own_clock: self.clock.is_some(),
            clock: self.clock.unwrap_or_else(SystemClock::shared),
            script_time: self.script_time,
            prefix,
            blocks: BlockCache::new(self.block_cache),
            on_error: self.on_error,
        })
    }
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Consume => "limit.consume",
        Operation::Check => "limit.check",
        Operation::Refund => "limit.refund",
        Operation::Penalty => "limit.penalty",
        Operation::Block => "limit.block",
    }
}

impl<S: Store> Limiter<S> {
    /// A limiter on the system clock, without a prefix, with a block cache,
    /// failing when the store fails.
    pub fn new(store: S, rule: Rule) -> Self {
        Limiter {
            store,
            rule,
            clock: SystemClock::shared(),
            own_clock: false,
            script_time: ScriptTime::Server,
            prefix: None,
            blocks: BlockCache::new(DEFAULT_BLOCK_CACHE),
            on_error: OnStoreError::Fail,
        }
    }

    /// A builder to set the clock, prefix, block cache and failure policy.
    pub fn builder(store: S, rule: Rule) -> LimiterBuilder<S> {
        LimiterBuilder {
            store,
            rule,
            clock: None,
            script_time: ScriptTime::Server,
            prefix: None,
            block_cache: DEFAULT_BLOCK_CACHE,
            on_error: OnStoreError::Fail,
        }
    }

    /// The key for `id` under this limiter's prefix (`prefix:id`), or `id`
    /// itself without one. Build keys once and reuse them on hot paths.
    pub fn key(&self, id: &str) -> Result<Key> {
        match &self.prefix {
            Some(p) => p.child(id),
            None => Key::new(id),
        }
    }

    /// Admits and counts a request of `cost` units if every tier has room;
    /// otherwise counts nothing (and starts the rule's block, if any).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a cost of 0 or above
    /// [`Rule::capacity`]; [`crate::ErrorKind::CorruptData`] if the key
    /// holds something else; store errors, unless [`OnStoreError`] says
    /// otherwise.
    pub fn consume<'a>(&'a self, key: &'a Key, cost: u64) -> DecisionFuture<'a> {
        match self.consume_in_place(key, cost) {
            Ok(decided) => decided,
            Err(asked) => self.decide_from(key, Operation::Consume, cost, None, !asked),
        }
    }

    /// [`consume`](Self::consume), waiting up to `max_wait` for room
    /// instead of denying at once (governor's `until_key_ready`,
    /// upstash's `blockUntilReady`, a rate-limiter-flexible queue).
    ///
    /// While the request is denied and its [`Decision::retry_after`]
    /// (rounded up to whole milliseconds, the timers' grain) fits in what
    /// is left of `max_wait`, it sleeps that long ([`crate::rt::sleep`])
    /// and asks again; each attempt is a full [`consume`](Self::consume),
    /// so waiters on one key are admitted exactly as callers of
    /// `consume` would be. A denial that no wait within `max_wait` could
    /// turn into an admission (a longer retry, a block that outlasts it)
    /// is answered at once, not after a pointless sleep; so is a
    /// fail-closed denial (the store is down). Waiters are not served in
    /// arrival order: each wakes at its own retry time and asks, and a
    /// newcomer may take the room first. With a rule that blocks, the
    /// denial that starts the block makes a wait worth it only if it
    /// covers the whole block. Time waited is
    /// the limiter's clock or the time slept, whichever is more, so a
    /// stopped test clock still ends the wait. A zero `max_wait` is
    /// exactly `consume`.
    ///
    /// Natively the sleeps need a tokio runtime with its timer enabled (as
    /// [`crate::lock::Locks::acquire`]); on wasm they are `setTimeout`.
    ///
    /// # Errors
    /// As [`consume`](Self::consume), for any attempt;
    /// [`crate::ErrorKind::Unsupported`] when a wait is needed natively
    /// outside a tokio runtime (the denied attempts counted nothing).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use rampart::limit::{Limiter, Quota, Rule};
    /// use rampart::{Key, MemoryStore};
    ///
    /// // 20 a second, no burst: the second request waits ~50 ms for room.
    /// let rule = Rule::token_bucket(Quota::per_second(20).with_burst(1))?;
    /// let limiter = Limiter::new(MemoryStore::new(), rule);
    /// let key = Key::new("user:7")?;
    /// assert!(limiter.consume(&key, 1).await?.allowed);
    /// assert!(limiter.consume_within(&key, 1, Duration::from_secs(1)).await?.allowed);
    /// // A wait longer than allowed is not attempted: denied at once.
    /// assert!(!limiter.consume_within(&key, 1, Duration::from_millis(1)).await?.allowed);
    /// # Ok::<(), rampart::Error>(()) }).unwrap();
    /// ```
    pub async fn consume_within(
        &self,
        key: &Key,
        cost: u64,
        max_wait: Duration,
    ) -> Result<Decision> {
        let started = self.clock.now();
        let mut slept = Duration::ZERO;
        loop {
            let decision = self.consume(key, cost).await?;
            // A fail-closed denial's retry is a guess about a store that
            // is down: waiting on it would hold the caller for nothing.
            if decision.allowed || decision.source == DecisionSource::FailClosed {
                return Ok(decision);
            }
            let waited = self
                .clock
                .now()
                .saturating_duration_since(started)
                .max(slept);
            let left = max_wait.saturating_sub(waited);
            let pause = match decision.retry_after.map(whole_millis) {
                Some(pause) if pause <= left => pause,
                _ => return Ok(decision),
            };
            crate::rt::sleep_available()
                .map_err(|e| e.with_operation("limit.consume_within").with_key(key))?;
            crate::rt::sleep(pause).await;
            slept += pause;
        }
    }

    /// Whether a request of `cost` would be admitted now, without counting
    /// it or starting a block.
    pub fn check<'a>(&'a self, key: &'a Key, cost: u64) -> DecisionFuture<'a> {
        self.decide(key, Operation::Check, cost, None)
    }

    /// Gives `amount` units back (a request that turned out not to count).
    /// The decision says whether a request of 1 would now be admitted.
    pub fn refund<'a>(&'a self, key: &'a Key, amount: u64) -> DecisionFuture<'a> {
        self.decide(key, Operation::Refund, amount, None)
    }

    /// [`refund`](Self::refund) under rate-limiter-flexible's name.
    pub fn reward<'a>(&'a self, key: &'a Key, amount: u64) -> DecisionFuture<'a> {
        self.refund(key, amount)
    }

    /// Charges `amount` units without checking the limit (a failed login
    /// that should cost more); it may push the key over its limit.
    pub fn penalty<'a>(&'a self, key: &'a Key, amount: u64) -> DecisionFuture<'a> {
        self.decide(key, Operation::Penalty, amount, None)
    }

    /// Blocks `key` for `duration` (extending, never shortening, a current
    /// block).
    pub fn block<'a>(&'a self, key: &'a Key, duration: Duration) -> DecisionFuture<'a> {
        self.decide(key, Operation::Block, duration_micros(duration), None)
    }

    /// Forgets everything about `key`: counts and block, here and in the
    /// store. (Other processes' block caches keep a block until it ends.)
    pub async fn reset(&self, key: &Key) -> Result<()> {
        self.blocks.forget(key);
        match self.store.delete(key).await {
            Ok(_) => Ok(()),
            Err(e) if is_store_failure(&e) => match &self.on_error {
                OnStoreError::Insurance(insurance) => insurance.delete(key).await.map(|_| ()),
                _ => Err(e.with_operation("limit.reset").with_key(key)),
            },
            Err(e) => Err(e.with_operation("limit.reset").with_key(key)),
        }
    }

    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }
    /// The prefix of [`key`](Self::key), if any.
    pub fn prefix(&self) -> Option<&Key> {
        self.prefix.as_ref()
    }
    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
    /// The local block cache.
    pub fn block_cache(&self) -> &BlockCache {
        &self.blocks
    }
    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Checks a cost without calling the store.
    pub(crate) fn validate_cost(&self, cost: u64) -> Result<()> {
        LimitOp::new(&self.rule, Operation::Consume, cost).map(|_| ())
    }

    /// Gives back `amount` units of the charge made at `at` (the
    /// [`Decision::at`] of the `consume` that made it): a request that
    /// turned out not to count, such as a successful login on a limiter
    /// of failed ones. Unlike [`refund`](Self::refund), which gives back
    /// the newest units, a sliding log removes that charge's own entry,
    /// and a fixed or sliding window gives back only what it still counts
    /// of it (nothing once the charge's window is over), so a refund made
    /// after a window boundary frees no room that was never taken; a log
    /// gives nothing back for a charge older than its window. (A charge at
    /// the epoch itself, time 0, cannot be named: it is refunded as the
    /// newest units.)
    ///
    /// # Errors
    /// As [`refund`](Self::refund).
    pub fn undo<'a>(&'a self, key: &'a Key, amount: u64, at: Timestamp) -> DecisionFuture<'a> {
        self.decide(key, Operation::Refund, amount, Some(at))
    }

    /// The commonest decision in the fewest steps: a valid `consume` on a
    /// one-tier rule, decided in place by an in-process store
    /// ([`Store::update_local`]) with no tracing on. An admission stays
    /// three numbers until the caller takes it; a denial is decided the
    /// generic way within the same lookup. `Err` for anything else, which
    /// [`decide_from`](Self::decide_from) then answers: a bad cost, a
    /// cached block, more tiers (`Err(false)`: the store was not asked), a
    /// store without the in-place path or one that failed there
    /// (`Err(true)`: straight to the store-call path and its failure
    /// policy, without asking again).
    #[inline]
    fn consume_in_place<'a>(
        &'a self,
        key: &'a Key,
        cost: u64,
    ) -> std::result::Result<DecisionFuture<'a>, bool> {
        let rule = &self.rule;
        if rule.tiers().len() != 1 || cost == 0 || cost > rule.capacity() || trace_enabled() {
            return Err(false);
        }
        if !self.blocks.is_empty() && self.blocks.blocked_until(key, self.clock.now()).is_some() {
            return Err(false);
        }
        let own = self.own_clock.then_some(&*self.clock);
        // Written field by field and read back the same way: a whole
        // `Option<Admitted>` written inside the closure and read as one
        // after it stalls the CPU's store forwarding (measurably, here).
        let (mut admitted, mut now, mut remaining, mut reset_us) = (false, 0, 0, 0);
        let mut other: Option<Result<Decision>> = None;
        let ran = self.store.update_local(key, &mut |state, store_now| {
            let at = own.map_or(store_now, |c| c.now());
            if let Some((value, ttl, a)) = admit_one_tier(rule, state, at.as_micros(), cost) {
                (admitted, now, remaining, reset_us) = (true, a.now, a.remaining, a.reset_us);
                return LocalChange::Set {
                    value,
                    ttl: Some(Duration::from_micros(ttl)),
                };
            }
            decide_generic(rule, cost, state, at, &mut other)
        });
        if !matches!(ran, Some(Ok(()))) {
            return Err(true);
        }
        if admitted {
            self.blocks.forget(key);
            let admitted = Admitted {
                now,
                remaining,
                reset_us,
            };
            return Ok(DecisionFuture(Inner::Admitted(&rule.tiers()[0], admitted)));
        }
        let result = match other.ok_or(true)? {
            Ok(d) => {
                self.blocks.observe(key, &d);
                Ok(d)
            }
            Err(e) => Err(e.with_operation("limit.consume").with_key(key)),
        };
        Ok(DecisionFuture::ready(result))
    }

    /// One decision: answered before the first poll when the block cache
    /// knows the key is blocked or the store decides in place
    /// ([`Store::update_local`]); otherwise the returned future makes the
    /// store call (boxed: one allocation beside a round trip).
    fn decide<'a>(
        &'a self,
        key: &'a Key,
        op: Operation,
        amount: u64,
        undo_at: Option<Timestamp>,
    ) -> DecisionFuture<'a> {
        self.decide_from(key, op, amount, undo_at, true)
    }

    /// [`decide`](Self::decide), trying the store's in-place path only if
    /// `local` (false: it was just asked and declined or failed).
    fn decide_from<'a>(
        &'a self,
        key: &'a Key,
        op: Operation,
        amount: u64,
        undo_at: Option<Timestamp>,
        local: bool,
    ) -> DecisionFuture<'a> {
        match self.before_store(key, op, amount, undo_at, local) {
            Err(answer) => DecisionFuture::ready(answer),
            Ok(lop) => DecisionFuture(Inner::Pending(Box::pin(async move {
                trace(op, key, self.decide_remote(key, lop, amount).await)
            }))),
        }
    }

    /// The operation for `amount` (or the undo of the charge made at
    /// `undo_at`), or the traced error of a bad amount.
    fn limit_op(
        &self,
        key: &Key,
        op: Operation,
        amount: u64,
        undo_at: Option<Timestamp>,
    ) -> std::result::Result<LimitOp<'_>, Result<Decision>> {
        let lop = match undo_at {
            Some(at) => LimitOp::undo(&self.rule, amount, at),
            None => LimitOp::new(&self.rule, op, amount),
        };
        lop.map_err(|e| {
            let e = e.with_operation(op_name(op)).with_key(key);
            trace(op, key, Err(e))
        })
    }

    /// Everything a decision does before its store call: the operation,
    /// the block cache (for reads), and the store's in-place path when
    /// `local`. `Err` holds the (traced) answer when one of them gave it;
    /// `Ok` the operation the store call must make.
    fn before_store(
        &self,
        key: &Key,
        op: Operation,
        amount: u64,
        undo_at: Option<Timestamp>,
        local: bool,
    ) -> std::result::Result<LimitOp<'_>, Result<Decision>> {
        let lop = self.limit_op(key, op, amount, undo_at)?;
        let reads = matches!(op, Operation::Consume | Operation::Check);
        if reads && !self.blocks.is_empty() {
            let now = self.clock.now();
            if let Some(until) = self.blocks.blocked_until(key, now) {
                let d = Decision::cached_block(&self.rule, now, until);
                return Err(trace(op, key, Ok(d)));
            }
        }
        let mut decision = Decision::EMPTY;
        match local
            .then(|| self.decide_local(key, &lop, &mut decision))
            .flatten()
        {
            Some(Ok(())) => Err(trace(op, key, Ok(decision))),
            Some(Err(e)) => Err(trace(op, key, Err(e))),
            None => Ok(lop),
        }
    }

    /// The in-process fast path: `None` when the store has none, or when it
    /// failed in a way the failure policy handles (the remote path then
    /// applies the policy).
    fn decide_local(&self, key: &Key, lop: &LimitOp<'_>, out: &mut Decision) -> Option<Result<()>> {
        match self.run_local(&self.store, key, lop, out)? {
            Ok(()) => {
                self.blocks.observe(key, out);
                Some(Ok(()))
            }
            Err(e) if is_store_failure(&e) => None,
            Err(e) => Some(Err(e.with_operation(op_name(lop.operation())))),
        }
    }

    /// Runs `lop` in place through [`Store::update_local`] (on the store's
    /// clock reading unless the limiter was given a clock), writing the
    /// decision to `out`; `None` when `store` has no local path.
    fn run_local<T: Store + ?Sized>(
        &self,
        store: &T,
        key: &Key,
        lop: &LimitOp<'_>,
        out: &mut Decision,
    ) -> Option<Result<()>> {
        let mut outcome = None;
        let own = self.own_clock.then_some(&*self.clock);
        let ran = store.update_local(key, &mut |state, store_now| {
            let now = own.map_or(store_now, |c| c.now());
            match lop.apply_local(state, now, out) {
                Ok(change) => {
                    outcome = Some(Ok(()));
                    change
                }
                Err(e) => {
                    outcome = Some(Err(e));
                    LocalChange::Keep
                }
            }
        })?;
        let result = ran.and_then(|()| {
            outcome.unwrap_or_else(|| Err(Error::backend("the store did not run the update")))
        });
        Some(result.map_err(|e| e.with_key(key)))
    }

    /// The store-call path, with the failure policy.
    async fn decide_remote(&self, key: &Key, lop: LimitOp<'_>, amount: u64) -> Result<Decision> {
        // The in-place path was tried (or skipped) already: the store call.
        let primary = run(&self.store, key, &lop, &*self.clock, self.script_time).await;
        match self.conclude(key, lop.operation(), amount, primary) {
            Concluded::Done(result) => result,
            Concluded::Insure => self.insure(key, &lop).await,
        }
    }

    /// The failure policy applied to the outcome of the store call
    /// (`primary`), and the block cache told of the decision; `Insure` when
    /// the insurance store must decide instead.
    fn conclude(
        &self,
        key: &Key,
        op: Operation,
        amount: u64,
        primary: Result<Decision>,
    ) -> Concluded {
        let reads = matches!(op, Operation::Consume | Operation::Check);
        let decision = match primary {
            Ok(d) => d,
            Err(e) if is_store_failure(&e) => match &self.on_error {
                OnStoreError::Fail => return Concluded::Done(Err(e.with_operation(op_name(op)))),
                OnStoreError::Allow | OnStoreError::Deny if !reads => {
                    return Concluded::Done(Err(e.with_operation(op_name(op))))
                }
                OnStoreError::Allow | OnStoreError::Deny => {
                    let allow = matches!(self.on_error, OnStoreError::Allow);
                    let now = self.clock.now();
                    let d = Decision::degraded(&self.rule, now, amount, allow);
                    return Concluded::Done(Ok(d));
                }
                OnStoreError::Insurance(_) => return Concluded::Insure,
            },
            Err(e) => return Concluded::Done(Err(e.with_operation(op_name(op)))),
        };
        self.blocks.observe(key, &decision);
        Concluded::Done(Ok(decision))
    }

    /// `lop` decided by the insurance store, while the main one fails.
    async fn insure(&self, key: &Key, lop: &LimitOp<'_>) -> Result<Decision> {
        let op = op_name(lop.operation());
        let OnStoreError::Insurance(insurance) = &self.on_error else {
            return Err(Error::backend("no insurance store to decide").with_operation(op));
        };
        let mut d = self
            .run_on(&**insurance, key, lop)
            .await
            .map_err(|e| e.with_operation(op))?;
        d.source = DecisionSource::Insurance;
        self.blocks.observe(key, &d);
        Ok(d)
    }

    /// [`consume`](Self::consume) up to its one store call, for a host that
    /// makes the call itself and then hands the reply to
    /// [`finish_consume`](Self::finish_consume) (the Node bindings send it
    /// through the user's Redis client, with no future bridged across the
    /// boundary per call). Everything that needs no store call is decided
    /// here as `consume` decides it: a bad cost, a key the block cache
    /// knows is blocked, a store that decides in place.
    ///
    /// Otherwise the store must have scripting
    /// ([`crate::Capabilities::scripting`]): the answer is the Lua twin to
    /// run on `key` (its `KEYS[1]`) with its arguments. A store without it
    /// gets [`crate::ErrorKind::Unsupported`]: use `consume` there.
    ///
    /// ```
    /// use rampart::limit::{Begin, Limiter, Quota, Rule};
    /// use rampart::{MemoryStore, Store};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let limiter = Limiter::new(MemoryStore::new(), Rule::fixed_window(Quota::per_minute(5))?);
    /// let key = limiter.key("alice")?;
    /// let decision = match limiter.begin_consume(&key, 1) {
    ///     // An in-process store decides at once.
    ///     Begin::Decided(d) => d?,
    ///     Begin::Call(call) => {
    ///         let reply = limiter.store().eval(call.script, &[&key], &call.args).await;
    ///         limiter.finish_consume(&key, 1, reply).await?
    ///     }
    /// };
    /// assert_eq!(decision.remaining, 4);
    /// # Ok::<(), rampart::Error>(()) }).unwrap();
    /// ```
    pub fn begin_consume(&self, key: &Key, cost: u64) -> Begin {
        let op = Operation::Consume;
        let lop = match self.before_store(key, op, cost, None, true) {
            Ok(lop) => lop,
            Err(answer) => return Begin::Decided(answer),
        };
        if !self.store.capabilities().scripting {
            let e = Error::unsupported("begin_consume: the store has no scripting; use consume")
                .with_operation(op_name(op))
                .with_key(key);
            return Begin::Decided(Err(e));
        }
        Begin::Call(ScriptCall {
            script: lop.script(),
            args: lop.script_args(self.script_time.now(&*self.clock)),
        })
    }

    /// The decision of a [`begin_consume`](Self::begin_consume) whose
    /// script call answered `reply` (or failed with it), for the same `key`
    /// and `cost`: decoded as `consume` decodes it, and with the failure
    /// policy applied to a failed call (fail open or closed, or the
    /// insurance store). The future is ready at once unless the insurance
    /// store must decide and has no in-place path.
    pub fn finish_consume<'a>(
        &'a self,
        key: &'a Key,
        cost: u64,
        reply: Result<Value>,
    ) -> DecisionFuture<'a> {
        let op = Operation::Consume;
        let lop = match self.limit_op(key, op, cost, None) {
            Ok(lop) => lop,
            Err(answer) => return DecisionFuture::ready(answer),
        };
        // As `run` reads a script's outcome.
        let primary = reply
            .map_err(|e| e.with_key(key))
            .and_then(|v| lop.decode_reply(v));
        match self.conclude(key, op, cost, primary) {
            Concluded::Done(result) => DecisionFuture::ready(trace(op, key, result)),
            Concluded::Insure => DecisionFuture(Inner::Pending(Box::pin(async move {
                trace(op, key, self.insure(key, &lop).await)
            }))),
        }
    }

    /// Runs `lop` on `store`: in place where the store offers it (an
    /// in-process insurance store), else through [`run`].
    async fn run_on<T: Store + ?Sized>(
        &self,
        store: &T,
        key: &Key,
        lop: &LimitOp<'_>,
    ) -> Result<Decision> {
        let mut decision = Decision::EMPTY;
        match self.run_local(store, key, lop, &mut decision) {
            Some(result) => result.map(|()| decision),
            None => run(store, key, lop, &*self.clock, self.script_time).await,
        }
    }
}

/// What [`Limiter::begin_consume`] found.
#[derive(Debug)]
pub enum Begin {
    /// Decided without a store call (or the call cannot be made this way).
    Decided(Result<Decision>),
    /// Run this script, then hand its reply to [`Limiter::finish_consume`].
    Call(ScriptCall),
}

/// The one script call a decision needs, made by the host
/// ([`Limiter::begin_consume`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScriptCall {
    /// The algorithm's Lua twin (EVALSHA its `sha1`; EVAL its source after
    /// `NOSCRIPT`).
    pub script: &'static Script,
    /// Its `ARGV`; `KEYS[1]` is the decision's key.
    pub args: Vec<Arg>,
}

/// What the failure policy made of a store call ([`Limiter::conclude`]).
enum Concluded {
    /// The answer.
    Done(Result<Decision>),
    /// The insurance store decides.
    Insure,
}

/// `d` rounded up to whole milliseconds, at least one: what a timer can
/// wait, and never zero (a wait loop must make progress).
fn whole_millis(d: Duration) -> Duration {
    let ms = d.as_micros().div_ceil(1_000).max(1);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The generic in-place decision, out of line: it keeps the admission
/// lane of [`Limiter::consume_in_place`] small.
#[cold]
#[inline(never)]
fn decide_generic(
    rule: &Rule,
    cost: u64,
    state: Option<&[u8]>,
    now: Timestamp,
    out: &mut Option<Result<Decision>>,
) -> LocalChange {
    let mut d = Decision::EMPTY;
    let decided = LimitOp::new(rule, Operation::Consume, cost)
        .and_then(|lop| lop.apply_local_generic(state, now, &mut d));
    match decided {
        Ok(change) => {
            *out = Some(Ok(d));
            change
        }
        Err(e) => {
            *out = Some(Err(e));
            LocalChange::Keep
        }
    }
}

/// The `tracing` target of decision events.
#[cfg(feature = "tracing")]
pub const TRACE_TARGET: &str = "rampart::limit";

/// Emits a decision event (feature `tracing`): `DEBUG` with the operation,
/// the key's length (the key itself only at `TRACE`: it may hold a user
/// id), allowed, remaining, retry-after and source; `WARN` with the code
/// for an error. Without the feature, nothing.
#[inline]
fn trace(op: Operation, key: &Key, result: Result<Decision>) -> Result<Decision> {
    #[cfg(feature = "tracing")]
    if tracing::enabled!(target: TRACE_TARGET, tracing::Level::WARN) {
        let op = op_name(op);
        let key_len = key.as_str().len();
        match &result {
            Ok(d) => {
                let retry_after_ms = d.retry_after.map_or(0, |r| r.as_millis() as u64);
                let source = format_args!("{:?}", d.source);
                if tracing::enabled!(target: TRACE_TARGET, tracing::Level::TRACE) {
                    tracing::trace!(target: TRACE_TARGET, op, key = key.as_str(), allowed = d.allowed, remaining = d.remaining, retry_after_ms, blocked = d.blocked_until.is_some(), source);
                } else {
                    tracing::debug!(target: TRACE_TARGET, op, key_len, allowed = d.allowed, remaining = d.remaining, retry_after_ms, blocked = d.blocked_until.is_some(), source);
                }
            }
            Err(e) => {
                tracing::warn!(target: TRACE_TARGET, op, key_len, outcome = e.code(), temporary = e.is_temporary(), error = e.message());
            }
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (op, key);
    result
}

/// Whether [`trace`] would emit anything (the in-place admission skips
/// building a [`Decision`] until the caller takes it, so it leaves traced
/// decisions to the generic path).
#[inline]
fn trace_enabled() -> bool {
    #[cfg(feature = "tracing")]
    return tracing::enabled!(target: TRACE_TARGET, tracing::Level::WARN);
    #[cfg(not(feature = "tracing"))]
    false
}

/// The boxed store-call future of a decision.
#[cfg(not(target_arch = "wasm32"))]
type Remote<'a> = Pin<Box<dyn Future<Output = Result<Decision>> + Send + 'a>>;
/// The boxed store-call future of a decision (wasm: no `Send`).
#[cfg(target_arch = "wasm32")]
type Remote<'a> = Pin<Box<dyn Future<Output = Result<Decision>> + 'a>>;

/// The future of a [`Limiter`] decision. It is complete before its first
/// poll when the block cache or an in-process store
/// ([`Store::update_local`]) answered; otherwise it makes the store call.
#[must_use = "a decision does nothing until awaited"]
pub struct DecisionFuture<'a>(Inner<'a>);

// The ready variant is the in-process hot path: boxing it would cost the
// allocation that path exists to avoid.
#[allow(clippy::large_enum_variant)]
enum Inner<'a> {
    Ready(Option<Result<Decision>>),
    /// A one-tier admission, expanded into its [`Decision`] when taken.
    Admitted(&'a Tier, Admitted),
    Pending(Remote<'a>),
}

impl DecisionFuture<'_> {
    fn ready(result: Result<Decision>) -> Self {
        DecisionFuture(Inner::Ready(Some(result)))
    }
}

impl Future for DecisionFuture<'_> {
    type Output = Result<Decision>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Decision>> {
        match &mut self.0 {
            Inner::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(Error::invalid_input(
                    "a decision future was polled after it completed",
                ))
            })),
            &mut Inner::Admitted(tier, admitted) => {
                self.0 = Inner::Ready(None);
                Poll::Ready(Ok(Decision::one_tier_admitted(tier, admitted)))
            }
            Inner::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for DecisionFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.0 {
            Inner::Ready(Some(_)) | Inner::Admitted(..) => "ready",
            Inner::Ready(None) => "done",
            Inner::Pending(_) => "pending",
        };
        f.debug_tuple("DecisionFuture").field(&state).finish()
    }
}

impl<S> fmt::Debug for Limiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("rule", &self.rule)
            .field("prefix", &self.prefix)
            .field("script_time", &self.script_time)
            .field("blocks", &self.blocks)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for LimiterBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimiterBuilder")
            .field("rule", &self.rule)
            .field("prefix", &self.prefix)
            .field("block_cache", &self.block_cache)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}
