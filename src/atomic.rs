//! One algorithm, two faces.
//!
//! Every multi-step operation (a rate-limit decision, a lock release) is an
//! [`AtomicOp`]: a pure function of the stored state and `now`, and a Lua
//! twin that computes the same thing inside Redis. [`run`] picks the face
//! the store supports: one script call where there is scripting, one
//! [`Store::update`] otherwise.

use crate::{Arg, Atomic, Change, Clock, Error, Key, Result, Script, Store, Timestamp, Value};

/// An atomic operation on one key, defined once as a pure function
/// ([`apply`](AtomicOp::apply)) and once as Lua ([`script`](AtomicOp::script)).
pub trait AtomicOp {
    /// What the operation tells its caller.
    type Output;

    /// The Lua twin. `KEYS[1]` is the key; `ARGV` is
    /// [`script_args`](AtomicOp::script_args).
    fn script(&self) -> &'static Script;

    /// The pure face: from the current state (`None` = missing) and `now`,
    /// the change to store and the output. No I/O, no clock reads.
    ///
    /// A state it cannot decode is an [`crate::ErrorKind::CorruptData`]
    /// error (nothing is written).
    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, Self::Output)>;

    /// The script's `ARGV`. With `now = None` the script reads the server's
    /// `TIME`; tests pass `Some` so both faces see the same instant.
    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg>;

    /// Turns the script's reply into the output.
    fn decode_reply(&self, reply: Value) -> Result<Self::Output>;
}

/// Where the Lua face of an operation gets `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScriptTime {
    /// The server's `TIME`: app servers with skewed clocks agree.
    #[default]
    Server,
    /// The caller's clock, passed as an argument (tests, differential checks).
    Caller,
}

impl ScriptTime {
    /// The `now` a script is given: `None` to read the server's `TIME`.
    pub(crate) fn now(self, clock: &dyn Clock) -> Option<Timestamp> {
        match self {
            ScriptTime::Server => None,
            ScriptTime::Caller => Some(clock.now()),
        }
    }
}

/// Runs `op` on `key` in `store`: the Lua twin where the store has
/// scripting, the pure function through [`Store::update`] otherwise.
pub async fn run<S, O>(
    store: &S,
    key: &Key,
    op: &O,
    clock: &dyn Clock,
    script_time: ScriptTime,
) -> Result<O::Output>
where
    S: Store + ?Sized,
    O: AtomicOp + crate::MaybeSync,
    O::Output: crate::MaybeSend,
{
    let mut output: Option<Result<O::Output>> = None;
    let mut apply = |state: Option<&[u8]>| match op.apply(state, clock.now()) {
        Ok((change, out)) => {
            output = Some(Ok(out));
            change
        }
        Err(e) => {
            output = Some(Err(e));
            Change::Keep
        }
    };
    let outcome = if store.capabilities().scripting {
        let args = op.script_args(script_time.now(clock));
        store.run_atomic(key, op.script(), &args, &mut apply).await
    } else {
        store.update(key, &mut apply).await.map(Atomic::Applied)
    };
    match outcome.map_err(|e| e.with_key(key))? {
        Atomic::Scripted(reply) => op.decode_reply(reply),
        Atomic::Applied(_) => output
            .unwrap_or_else(|| Err(Error::backend("the store did not run the update")))
            .map_err(|e| e.with_key(key)),
    }
}
