//! The decision flow every algorithm shares, its Lua twin, and the
//! [`LimitOp`] that runs it as one [`AtomicOp`].

use std::time::Duration;

use super::state::{Form, MAX_NOW_US, MAX_SPAN_US};
use super::{
    fixed_window::FixedWindow, sliding_counter::SlidingCounter, sliding_log::SlidingLog,
    token_bucket::TokenBucket, Admitted, Algorithm, Decision, DecisionSource, Rule, MAX_TIERS,
};
use crate::{
    Arg, AtomicOp, Change, Error, LocalChange, LocalValue, Result, Script, Timestamp, Value,
};

/// What a [`LimitOp`] does to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Charge `amount` if every tier admits it; otherwise charge nothing
    /// (and start the rule's block, if it has one).
    Consume,
    /// Say whether `amount` would be admitted; never writes.
    Check,
    /// Give `amount` back (the newest units of a log first).
    Refund,
    /// Charge `amount` without checking (it may push the key over its limit).
    Penalty,
    /// Block the key for `amount` microseconds (extending, never shortening,
    /// a current block).
    Block,
}

impl Operation {
    /// The code the Lua twins read from `ARGV[1]`.
    pub fn code(self) -> i64 {
        match self {
            Operation::Consume => 1,
            Operation::Check => 2,
            Operation::Refund => 3,
            Operation::Penalty => 4,
            Operation::Block => 5,
        }
    }
}

/// One tier's figures after a decision, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TierRaw {
    pub(crate) remaining: u64,
    pub(crate) reset_after: u64,
    /// 0 when the tier admits the request.
    pub(crate) retry_after: u64,
}

/// A decision as both faces compute it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Raw {
    pub(crate) allowed: bool,
    pub(crate) now: u64,
    /// 0 when not blocked.
    pub(crate) blocked_until: u64,
    pub(crate) tiers: [TierRaw; MAX_TIERS],
}

/// One algorithm's state and steps. Its Lua twin defines functions of the
/// same names; `driver.lua` is [`decide`] line by line.
pub(crate) trait Engine: Sized {
    /// A state for a missing key.
    fn fresh(rule: &Rule) -> Self;
    /// `blocked_until` and the state from a stored value (fresh when the
    /// value was written for another number of tiers).
    fn load(rule: &Rule, raw: &[u8]) -> Result<(u64, Self)>;
    /// Brings the state to `now`: rolls windows, drops expired entries,
    /// lets buckets refill.
    fn normalize(&mut self, rule: &Rule, now: u64);
    /// 0 if tier `i` admits `cost` now, else how long until it would.
    fn fits(&self, rule: &Rule, i: usize, now: u64, cost: u64) -> u64;
    /// Charges `cost` on every tier.
    fn charge(&mut self, rule: &Rule, now: u64, cost: u64);
    /// Gives back `amount` on every tier (`undo_at`: the time of the charge
    /// being undone, or 0).
    fn uncharge(&mut self, rule: &Rule, now: u64, amount: u64, undo_at: u64);
    /// Charges `amount` on every tier without checking.
    fn penalize(&mut self, rule: &Rule, now: u64, amount: u64);
    /// Tier `i`'s remaining units and time until it is full again.
    fn report(&self, rule: &Rule, i: usize, now: u64) -> (u64, u64);
    /// How long the state matters (0 = it is the same as a missing key).
    fn ttl(&self, rule: &Rule, now: u64) -> u64;
    /// The stored form (the binary [`Form`] is for in-process stores only).
    fn encode(&self, rule: &Rule, blocked_until: u64, form: Form) -> LocalValue;
}

/// What a decision writes, in either face's terms.
enum Write {
    Keep,
    Set(LocalValue, Duration),
    Remove,
}

impl Write {
    fn into_change(self) -> Change {
        match self {
            Write::Keep => Change::Keep,
            Write::Remove => Change::Remove,
            Write::Set(value, ttl) => Change::Set {
                value: value.into_bytes(),
                ttl: Some(ttl),
            },
        }
    }

    fn into_local(self) -> LocalChange {
        match self {
            Write::Keep => LocalChange::Keep,
            Write::Remove => LocalChange::Remove,
            Write::Set(value, ttl) => LocalChange::Set {
                value,
                ttl: Some(ttl),
            },
        }
    }
}

/// A stored state decoded by `rule`'s algorithm and encoded again (what
/// the fuzz targets check round trips with).
#[cfg(feature = "fuzzing")]
pub(crate) fn reencode_state(rule: &Rule, raw: &[u8]) -> Result<bytes::Bytes> {
    fn again<E: Engine>(rule: &Rule, raw: &[u8]) -> Result<bytes::Bytes> {
        let (blocked, s) = E::load(rule, raw)?;
        Ok(s.encode(rule, blocked, Form::Text).into_bytes())
    }
    match rule.algorithm() {
        Algorithm::TokenBucket => again::<TokenBucket>(rule, raw),
        Algorithm::SlidingLog => again::<SlidingLog>(rule, raw),
        Algorithm::SlidingWindow => again::<SlidingCounter>(rule, raw),
        Algorithm::FixedWindow => again::<FixedWindow>(rule, raw),
    }
}

/// The in-process hot path of the commonest decision: a `consume` that a
/// one-tier rule admits on a key that is not blocked. The same steps as
/// [`decide`], through the same [`Engine`], without the per-tier
/// bookkeeping: the new state in the binary form, its TTL in µs, and the
/// decision as three numbers. `None` for everything else (a denial, a
/// block, a corrupt state, more tiers, a clock past 2112), which `decide`
/// then answers. The property test
/// `in_place_admission_decides_as_the_generic_path` holds the two equal.
pub(crate) fn admit_one_tier(
    rule: &Rule,
    state: Option<&[u8]>,
    now: u64,
    cost: u64,
) -> Option<(LocalValue, u64, Admitted)> {
    if rule.tiers().len() != 1 || now > MAX_NOW_US {
        return None;
    }
    match rule.algorithm() {
        Algorithm::TokenBucket => super::token_bucket::consume_one_tier(rule, state, now, cost),
        Algorithm::SlidingLog => admit::<SlidingLog>(rule, state, now, cost),
        Algorithm::SlidingWindow => admit::<SlidingCounter>(rule, state, now, cost),
        Algorithm::FixedWindow => admit::<FixedWindow>(rule, state, now, cost),
    }
}

#[inline]
fn admit<E: Engine>(
    rule: &Rule,
    state: Option<&[u8]>,
    now: u64,
    cost: u64,
) -> Option<(LocalValue, u64, Admitted)> {
    let (blocked, mut s) = match state {
        None => (0, E::fresh(rule)),
        Some(raw) => E::load(rule, raw).ok()?,
    };
    if blocked > now {
        return None;
    }
    s.normalize(rule, now);
    if s.fits(rule, 0, now, cost) != 0 {
        return None;
    }
    s.charge(rule, now, cost);
    let (remaining, reset_us) = s.report(rule, 0, now);
    let ttl = s.ttl(rule, now).min(MAX_SPAN_US);
    if ttl == 0 {
        return None;
    }
    let admitted = Admitted {
        now,
        remaining,
        reset_us,
    };
    Some((s.encode(rule, 0, Form::Binary), ttl, admitted))
}

/// The shared decision flow (the Rust face; `driver.lua` is its twin).
fn decide<E: Engine>(
    rule: &Rule,
    state: Option<&[u8]>,
    now: u64,
    op: Operation,
    amount: u64,
    undo_at: u64,
    form: Form,
) -> Result<(Write, Raw)> {
    let (blocked, mut s) = match state {
        None => (0, E::fresh(rule)),
        Some(raw) => E::load(rule, raw)?,
    };
    let mut blocked = if blocked > now { blocked } else { 0 };
    s.normalize(rule, now);
    let n = rule.tiers().len();
    let mut raw = Raw {
        now,
        ..Raw::default()
    };
    let mut write = false;
    match op {
        Operation::Consume | Operation::Check => {
            let mut all = true;
            for i in 0..n {
                let r = s.fits(rule, i, now, amount);
                raw.tiers[i].retry_after = r;
                all &= r == 0;
            }
            if blocked == 0 && all {
                raw.allowed = true;
                if op == Operation::Consume {
                    s.charge(rule, now, amount);
                    write = true;
                }
            } else if blocked == 0 && op == Operation::Consume && rule.block_us() > 0 {
                blocked = now + rule.block_us();
                write = true;
            }
        }
        Operation::Refund | Operation::Penalty | Operation::Block => {
            match op {
                Operation::Refund => s.uncharge(rule, now, amount, undo_at),
                Operation::Penalty => s.penalize(rule, now, amount),
                _ => blocked = blocked.max(now + amount),
            }
            write = true;
            let mut all = true;
            for i in 0..n {
                let r = s.fits(rule, i, now, 1);
                raw.tiers[i].retry_after = r;
                all &= r == 0;
            }
            raw.allowed = blocked == 0 && all;
        }
    }
    for i in 0..n {
        let (remaining, reset_after) = s.report(rule, i, now);
        raw.tiers[i].remaining = remaining;
        raw.tiers[i].reset_after = reset_after;
    }
    raw.blocked_until = blocked;
    let change = if write {
        let ttl = s
            .ttl(rule, now)
            .max(blocked.saturating_sub(now))
            .min(MAX_SPAN_US);
        if ttl > 0 {
            Write::Set(s.encode(rule, blocked, form), Duration::from_micros(ttl))
        } else if state.is_some() {
            Write::Remove
        } else {
            Write::Keep
        }
    } else {
        Write::Keep
    };
    Ok((change, raw))
}

/// The Lua twins, one per algorithm, assembled from five parts (see
/// `prelude.lua`): the shared prelude (arguments, clock, the stored value),
/// the algorithm's one-tier lane (`<algorithm>_lane.lua`: consume and check
/// on plain locals, the commonest calls), then the general path: the
/// per-tier arguments and helpers (`tiers.lua`), the algorithm's steps
/// (`<algorithm>.lua`) and the shared decision flow (`driver.lua`).
///
/// `KEYS[1]` is the key. `ARGV`: operation code ([`Operation::code`]),
/// amount, `now` in µs (empty: read `TIME`), block duration in µs, the
/// time of the charge being undone (0: none), the number of tiers, then
/// three integers per tier. The reply is an array of integers: allowed
/// (0/1), `now`, blocked-until (0: not blocked), then remaining,
/// reset-after and retry-after (µs, 0: admits) per tier.
pub mod scripts {
    use crate::Script;

    macro_rules! twin {
        ($lane:literal, $steps:literal) => {
            Script::new(concat!(
                lua!("limit/prelude.lua"),
                lua!($lane),
                lua!("limit/tiers.lua"),
                lua!($steps),
                lua!("limit/driver.lua")
            ))
        };
    }

    /// The token bucket's Lua twin.
    pub static TOKEN_BUCKET: Script =
        twin!("limit/token_bucket_lane.lua", "limit/token_bucket.lua");
    /// The sliding window log's Lua twin.
    pub static SLIDING_LOG: Script = twin!("limit/sliding_log_lane.lua", "limit/sliding_log.lua");
    /// The sliding window counter's Lua twin.
    pub static SLIDING_WINDOW: Script = twin!(
        "limit/sliding_counter_lane.lua",
        "limit/sliding_counter.lua"
    );
    /// The fixed window's Lua twin.
    pub static FIXED_WINDOW: Script =
        twin!("limit/fixed_window_lane.lua", "limit/fixed_window.lua");
}

/// One rate-limit step on one key, as an [`AtomicOp`]: the pure face runs
/// through [`crate::Store::update`], the Lua twin in one script call.
///
/// [`crate::limit::Limiter`] builds these; they are public so backends and
/// differential tests can run both faces.
///
/// ```
/// use rampart::limit::{LimitOp, Operation, Quota, Rule};
/// use rampart::{AtomicOp, Change, Timestamp};
/// let rule = Rule::token_bucket(Quota::per_second(10))?;
/// let op = LimitOp::new(&rule, Operation::Consume, 1)?;
/// let (change, decision) = op.apply(None, Timestamp::from_secs(1_000))?;
/// assert!(decision.allowed);
/// assert_eq!(decision.remaining, 9);
/// assert!(matches!(change, Change::Set { .. }));
/// # Ok::<(), rampart::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LimitOp<'a> {
    rule: &'a Rule,
    op: Operation,
    amount: u64,
    undo_at: u64,
}

impl<'a> LimitOp<'a> {
    /// `op` with `amount` (a cost, units to refund or charge, or for
    /// [`Operation::Block`] microseconds), checked against the rule:
    /// [`crate::ErrorKind::InvalidInput`] for 0, for a cost above
    /// [`Rule::capacity`], or for an amount too large to count.
    pub fn new(rule: &'a Rule, op: Operation, amount: u64) -> Result<Self> {
        let max = match op {
            Operation::Consume | Operation::Check => rule.capacity(),
            Operation::Refund | Operation::Penalty => rule.max_amount(),
            Operation::Block => MAX_SPAN_US,
        };
        if amount == 0 {
            return Err(Error::invalid_input(match op {
                Operation::Consume | Operation::Check => {
                    "a request costs at least 1 (use check to look without consuming)"
                }
                Operation::Block => "a block lasts at least 1 µs",
                _ => "an amount is at least 1",
            }));
        }
        if amount > max {
            return Err(Error::invalid_input(match op {
                Operation::Consume | Operation::Check => format!(
                    "a cost of {amount} is more than this rule's capacity of {max}: the request could never pass"
                ),
                Operation::Block => "a block lasts at most 100 years".to_owned(),
                _ => format!("an amount of {amount} is more than the maximum of {max}"),
            }));
        }
        Ok(Self {
            rule,
            op,
            amount,
            undo_at: 0,
        })
    }

    /// A refund of the charge made at `at` (a consume's
    /// [`Decision::at`](super::Decision::at); what [`super::consume_all`]
    /// rolls back): a log removes that charge's own entry first; a window
    /// gives back only what is still counted of it (nothing once its
    /// window is over).
    ///
    /// # Errors
    /// As [`LimitOp::new`] for a refund of `amount`.
    pub fn undo(rule: &'a Rule, amount: u64, at: Timestamp) -> Result<Self> {
        let mut op = Self::new(rule, Operation::Refund, amount)?;
        op.undo_at = at.as_micros();
        Ok(op)
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        self.op
    }

    /// The pure face in the in-process store's terms: the binary state
    /// form, written in place by [`crate::Store::update_local`].
    /// The decision is written to `out` (no copies of it on the hot path).
    pub(crate) fn apply_local(
        &self,
        state: Option<&[u8]>,
        now: Timestamp,
        out: &mut Decision,
    ) -> Result<LocalChange> {
        if self.op == Operation::Consume {
            if let Some((value, ttl, admitted)) =
                admit_one_tier(self.rule, state, now.as_micros(), self.amount)
            {
                *out = Decision::one_tier_admitted(&self.rule.tiers()[0], admitted);
                return Ok(LocalChange::Set {
                    value,
                    ttl: Some(Duration::from_micros(ttl)),
                });
            }
        }
        self.apply_local_generic(state, now, out)
    }

    /// [`apply_local`](Self::apply_local) without the one-tier admission
    /// lane (for a caller that has already tried it).
    pub(crate) fn apply_local_generic(
        &self,
        state: Option<&[u8]>,
        now: Timestamp,
        out: &mut Decision,
    ) -> Result<LocalChange> {
        let (write, raw) = self.step(state, now, Form::Binary)?;
        *out = Decision::from_raw(self.rule, &raw, DecisionSource::Store);
        Ok(write.into_local())
    }

    fn step(&self, state: Option<&[u8]>, now: Timestamp, form: Form) -> Result<(Write, Raw)> {
        let now = now.as_micros();
        if now > MAX_NOW_US {
            return Err(Error::invalid_input(
                "the clock reads after the year 2112, beyond what rate limits count",
            ));
        }
        let (r, op, amount, undo) = (self.rule, self.op, self.amount, self.undo_at);
        let (write, raw) = match r.algorithm() {
            Algorithm::TokenBucket => decide::<TokenBucket>(r, state, now, op, amount, undo, form),
            Algorithm::SlidingLog => decide::<SlidingLog>(r, state, now, op, amount, undo, form),
            Algorithm::SlidingWindow => {
                decide::<SlidingCounter>(r, state, now, op, amount, undo, form)
            }
            Algorithm::FixedWindow => decide::<FixedWindow>(r, state, now, op, amount, undo, form),
        }?;
        Ok((write, raw))
    }
}

impl AtomicOp for LimitOp<'_> {
    type Output = Decision;

    fn script(&self) -> &'static Script {
        match self.rule.algorithm() {
            Algorithm::TokenBucket => &scripts::TOKEN_BUCKET,
            Algorithm::SlidingLog => &scripts::SLIDING_LOG,
            Algorithm::SlidingWindow => &scripts::SLIDING_WINDOW,
            Algorithm::FixedWindow => &scripts::FIXED_WINDOW,
        }
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, Decision)> {
        let (write, raw) = self.step(state, now, Form::Text)?;
        let d = Decision::from_raw(self.rule, &raw, DecisionSource::Store);
        Ok((write.into_change(), d))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        let tiers = self.rule.tiers();
        let mut args = Vec::with_capacity(6 + 3 * tiers.len());
        args.push(Arg::Int(self.op.code()));
        args.push(Arg::from(self.amount));
        args.push(match now {
            Some(t) => Arg::from(t.as_micros()),
            None => Arg::Str(String::new()),
        });
        args.push(Arg::from(self.rule.block_us()));
        args.push(Arg::from(self.undo_at));
        args.push(Arg::from(tiers.len() as u64));
        for t in tiers {
            args.push(Arg::from(t.a));
            args.push(Arg::from(t.b));
            args.push(Arg::from(t.c));
        }
        args
    }

    fn decode_reply(&self, reply: Value) -> Result<Decision> {
        let items = reply.into_array()?;
        let n = self.rule.tiers().len();
        if items.len() != 3 + 3 * n {
            return Err(Error::backend(format!(
                "rate-limit script replied {} values, expected {}",
                items.len(),
                3 + 3 * n
            )));
        }
        let mut ints = [0u64; 3 + 3 * MAX_TIERS];
        for (slot, item) in ints.iter_mut().zip(&items) {
            *slot = u64::try_from(item.as_int()?)
                .map_err(|_| Error::backend("rate-limit script replied a negative value"))?;
        }
        let mut raw = Raw {
            allowed: ints[0] == 1,
            now: ints[1],
            blocked_until: ints[2],
            ..Raw::default()
        };
        for i in 0..n {
            raw.tiers[i] = super::engine::TierRaw {
                remaining: ints[3 + 3 * i],
                reset_after: ints[4 + 3 * i],
                retry_after: ints[5 + 3 * i],
            };
        }
        Ok(Decision::from_raw(self.rule, &raw, DecisionSource::Store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::Quota;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn local(
        op: &LimitOp<'_>,
        state: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<(LocalChange, Decision)> {
        let mut d = Decision::EMPTY;
        let change = op.apply_local(state, now, &mut d)?;
        Ok((change, d))
    }

    fn ops() -> impl Strategy<Value = Vec<(u64, u8, u64)>> {
        prop::collection::vec((0u64..3_000_000, 0u8..5, 1u64..8), 1..80)
    }

    proptest! {
        /// The in-process face (binary state, written in place) and the
        /// shared face (text state) make the same decisions, write at the
        /// same moments with the same TTLs, and read each other's states.
        #[test]
        fn binary_and_text_forms_decide_alike(alg in 0usize..4, two in any::<bool>(), block in any::<bool>(), steps in ops()) {
            let alg = [Algorithm::TokenBucket, Algorithm::SlidingLog, Algorithm::SlidingWindow, Algorithm::FixedWindow][alg];
            let mut b = Rule::builder(alg).quota(Quota::per_second(5));
            if two {
                b = b.quota(Quota::new(12, Duration::from_secs(10)));
            }
            if block {
                b = b.block_for(Duration::from_secs(2));
            }
            let rule = b.build().unwrap();
            let (mut text, mut bin): (Option<Bytes>, Option<LocalValue>) = (None, None);
            let mut now = 1_700_000_000_000_000u64;
            for (dt, code, amount) in steps {
                now += dt;
                let op = [Operation::Consume, Operation::Check, Operation::Refund, Operation::Penalty, Operation::Block][usize::from(code)];
                let amount = if op == Operation::Block { amount * 100_000 } else { amount.min(rule.capacity()) };
                let lop = LimitOp::new(&rule, op, amount).unwrap();
                let t = Timestamp::from_micros(now);
                let (c1, d1) = lop.apply(text.as_deref(), t).unwrap();
                let (c2, d2) = local(&lop, bin.as_deref(), t).unwrap();
                prop_assert_eq!(d1, d2);
                match (c1, c2) {
                    (Change::Keep, LocalChange::Keep) => {}
                    (Change::Remove, LocalChange::Remove) => { text = None; bin = None; }
                    (Change::Set { value: v1, ttl: t1 }, LocalChange::Set { value: v2, ttl: t2 }) => {
                        prop_assert_eq!(t1, t2);
                        // Each face reads the other's state the same way.
                        let probe = LimitOp::new(&rule, Operation::Check, 1).unwrap();
                        prop_assert_eq!(probe.apply(Some(&v2), t).unwrap().1, probe.apply(Some(&v1), t).unwrap().1);
                        text = Some(v1);
                        bin = Some(v2);
                    }
                    (c1, c2) => prop_assert!(false, "{:?} vs {:?}", c1, c2),
                }
            }
        }
    }

    #[test]
    fn binary_states_are_checked_like_text_ones() {
        let rule = Rule::token_bucket(Quota::per_second(5)).unwrap();
        let op = LimitOp::new(&rule, Operation::Consume, 1).unwrap();
        let t = Timestamp::from_secs(1_000);
        let (change, _) = local(&op, None, t).unwrap();
        let LocalChange::Set { value, .. } = change else {
            panic!("a consume writes")
        };
        assert!(matches!(value, LocalValue::Inline { len: 21, .. }));
        assert!(op.apply(Some(&value), t).is_ok());
        let mut cases: Vec<Vec<u8>> = vec![
            vec![0],
            vec![0, b'f', b'w', b'1', 2],
            value[..20].to_vec(),
            [&value[..], &[0]].concat(),
        ];
        let mut wrong_tag = value.to_vec();
        wrong_tag[1] = b'x';
        cases.push(wrong_tag);
        let mut zero_fields = value[..5].to_vec();
        zero_fields[4] = 0;
        cases.push(zero_fields);
        let mut huge = value.to_vec();
        huge[5..13].copy_from_slice(&u64::MAX.to_le_bytes());
        cases.push(huge);
        for bad in cases {
            let e = local(&op, Some(&bad), t).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::CorruptData, "{bad:?}");
        }
    }

    #[test]
    fn script_args_and_reply() {
        let rule = Rule::builder(Algorithm::FixedWindow)
            .quota(Quota::per_second(5))
            .block_for(Duration::from_secs(2))
            .build()
            .unwrap();
        let op = LimitOp::new(&rule, Operation::Consume, 2).unwrap();
        assert_eq!(
            op.script_args(Some(Timestamp::from_micros(7))),
            vec![
                Arg::Int(1),
                Arg::Int(2),
                Arg::Int(7),
                Arg::Int(2_000_000),
                Arg::Int(0),
                Arg::Int(1),
                Arg::Int(5),
                Arg::Int(1_000_000),
                Arg::Int(0)
            ]
        );
        assert_eq!(op.script_args(None)[2], Arg::Str(String::new()));
        let reply = Value::Array([1, 10, 0, 3, 900, 0].into_iter().map(Value::Int).collect());
        let d = op.decode_reply(reply).unwrap();
        assert!(d.allowed);
        assert_eq!(
            (d.remaining, d.reset_after),
            (3, Duration::from_micros(900))
        );
        assert!(op.decode_reply(Value::Array(vec![Value::Int(1)])).is_err());
        assert!(op
            .decode_reply(Value::Array(
                [1, -1, 0, 3, 900, 0].into_iter().map(Value::Int).collect()
            ))
            .is_err());
    }

    #[test]
    fn amounts_are_checked() {
        let rule = Rule::token_bucket(Quota::per_second(5)).unwrap();
        for (op, amount) in [
            (Operation::Consume, 0),
            (Operation::Consume, 6),
            (Operation::Check, 6),
            (Operation::Refund, 0),
            (Operation::Penalty, u64::MAX),
            (Operation::Block, 0),
            (Operation::Block, u64::MAX),
        ] {
            let e = LimitOp::new(&rule, op, amount).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{op:?} {amount}");
        }
        let op = LimitOp::new(&rule, Operation::Consume, 5).unwrap();
        let e = op
            .apply(None, Timestamp::from_micros(u64::MAX))
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }

    /// Applies `op` to `state` at `now` (µs), keeping the new state.
    fn step(
        rule: &Rule,
        state: &mut Option<Bytes>,
        op: Operation,
        amount: u64,
        now: u64,
    ) -> Decision {
        let lop = LimitOp::new(rule, op, amount).unwrap();
        let (change, d) = lop
            .apply(state.as_deref(), Timestamp::from_micros(now))
            .unwrap();
        match change {
            Change::Set { value, ttl } => {
                assert!(ttl.is_some_and(|t| t > Duration::ZERO));
                *state = Some(value);
            }
            Change::Remove => *state = None,
            Change::Keep => {}
            Change::SetKeepTtl(_) => panic!("limits always set a TTL"),
        }
        d
    }

    const ALL: [Algorithm; 4] = [
        Algorithm::TokenBucket,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
    ];

    #[test]
    fn a_clock_going_back_never_admits_more() {
        for alg in ALL {
            let rule = Rule::builder(alg)
                .quota(Quota::per_second(3))
                .build()
                .unwrap();
            let t = 1_000_000_000_000;
            let mut s = None;
            for _ in 0..3 {
                assert!(step(&rule, &mut s, Operation::Consume, 1, t).allowed);
            }
            assert!(!step(&rule, &mut s, Operation::Consume, 1, t).allowed);
            // An earlier clock (a step back, another server) is still denied.
            for back in [1, 500_000, 1_000_000, 5_000_000, 3_600_000_000] {
                let d = step(&rule, &mut s, Operation::Consume, 1, t - back);
                assert!(!d.allowed, "{alg:?} admitted {back} µs in the past");
                assert!(d.retry_after.is_some());
            }
        }
    }

    #[test]
    fn a_rollback_removes_its_own_log_entry() {
        let z = |v: u64| format!("{v:016}");
        let rule = Rule::sliding_log(Quota::per_second(5)).unwrap();
        let mut s = None;
        step(&rule, &mut s, Operation::Consume, 2, 1_000_000);
        step(&rule, &mut s, Operation::Consume, 1, 1_500_000);
        let log = |recs: &[(u64, u64)]| {
            let mut v = format!("sl1:{}{}", z(0), z(0));
            for &(ts, cum) in recs {
                v += &(z(ts) + &z(cum));
            }
            v
        };
        assert_eq!(
            s.as_deref(),
            Some(log(&[(1_000_000, 2), (1_500_000, 3)]).as_bytes())
        );
        let undo = LimitOp::undo(&rule, 1, Timestamp::from_micros(1_000_000)).unwrap();
        let (change, d) = undo
            .apply(s.as_deref(), Timestamp::from_micros(1_600_000))
            .unwrap();
        assert_eq!(d.remaining, 3);
        let Change::Set { value, .. } = change else {
            panic!("a refund writes")
        };
        // The charge at 1.0 s lost a unit; the one at 1.5 s is untouched.
        assert_eq!(
            &value[..],
            log(&[(1_000_000, 1), (1_500_000, 2)]).as_bytes()
        );
        // A plain refund takes the newest units.
        let mut s = Some(value);
        step(&rule, &mut s, Operation::Refund, 1, 1_600_000);
        assert_eq!(s.as_deref(), Some(log(&[(1_000_000, 1)]).as_bytes()));
        // Pruning moves the total of dropped records into the base.
        step(&rule, &mut s, Operation::Consume, 1, 2_100_000);
        assert_eq!(
            s.as_deref(),
            Some(format!("sl1:{}{}{}{}", z(0), z(1), z(2_100_000), z(2)).as_bytes())
        );
    }

    #[test]
    fn states_of_another_shape_restart_the_count() {
        for alg in ALL {
            let one = Rule::builder(alg)
                .quota(Quota::per_second(2))
                .build()
                .unwrap();
            let two = Rule::builder(alg)
                .quota(Quota::per_second(2))
                .quota(Quota::per_minute(10))
                .build()
                .unwrap();
            let mut s = None;
            step(&one, &mut s, Operation::Consume, 2, 7_000_000);
            step(&one, &mut s, Operation::Block, 1_000, 7_000_000);
            // The block (the first field of every state) survives.
            let d = step(&two, &mut s, Operation::Check, 1, 7_000_500);
            assert!(d.is_blocked(), "{alg:?}");
            let d = step(&two, &mut s, Operation::Consume, 1, 7_001_000);
            if alg == Algorithm::SlidingLog {
                // The log is shared by tiers: it keeps counting.
                assert!(!d.allowed);
            } else {
                assert!(d.allowed, "{alg:?}");
                assert_eq!(d.tier(1).unwrap().remaining, 9);
            }
        }
    }

    #[test]
    fn corrupt_state_is_a_typed_error_and_writes_nothing() {
        for alg in [
            Algorithm::TokenBucket,
            Algorithm::SlidingLog,
            Algorithm::SlidingWindow,
            Algorithm::FixedWindow,
        ] {
            let rule = Rule::builder(alg)
                .quota(Quota::per_second(5))
                .build()
                .unwrap();
            let op = LimitOp::new(&rule, Operation::Consume, 1).unwrap();
            for bad in [&b"garbage"[..], b"", b"tb1:x", b"sl1:0,5", b"sl1:0,5,1,0,1"] {
                let e = op.apply(Some(bad), Timestamp::from_secs(10)).unwrap_err();
                assert_eq!(e.kind(), crate::ErrorKind::CorruptData, "{alg:?} {bad:?}");
            }
        }
    }
}
