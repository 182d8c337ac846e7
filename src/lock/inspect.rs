//! Inspect: read a lock's state without changing it.

use std::time::Duration;

use crate::lock::state::LockState;
use crate::lock::{reply_code, reply_u64, script_now};
use crate::{Arg, AtomicOp, Change, Error, Result, Script, Timestamp, Value};

static SCRIPT: Script = Script::new(lua!("lock/inspect.lua"));

/// Reads whether a lock is held, for how long, and its last fencing token.
///
/// An atomic operation rather than a plain read so that on Redis it judges
/// expiry by the server's clock, as acquire and release do.
#[derive(Debug, Clone, Copy, Default)]
pub struct InspectOp;

/// A lock's state as [`InspectOp`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockInfo {
    /// The last fencing token issued for the resource (0 = none, or the
    /// state was dropped after its retention).
    pub fence: u64,
    /// How long the current hold has left; `None` when the lock is free.
    pub remaining: Option<Duration>,
}

impl LockInfo {
    /// Whether someone holds the lock.
    pub fn is_locked(&self) -> bool {
        self.remaining.is_some()
    }
}

impl AtomicOp for InspectOp {
    type Output = LockInfo;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, LockInfo)> {
        let now = now.as_micros();
        let current = LockState::decode_opt(state)?;
        let remaining = current
            .is_held(now)
            .then(|| Duration::from_micros(current.expires_at - now));
        let info = LockInfo {
            fence: current.fence,
            remaining,
        };
        Ok((Change::Keep, info))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        script_now(now).into_iter().collect()
    }

    fn decode_reply(&self, reply: Value) -> Result<LockInfo> {
        let items = reply.into_array()?;
        match (reply_code(&items)?, items.len()) {
            (1, 3) => Ok(LockInfo {
                fence: reply_u64(&items[1])?,
                remaining: Some(Duration::from_micros(reply_u64(&items[2])?)),
            }),
            (0, 2) => Ok(LockInfo {
                fence: reply_u64(&items[1])?,
                remaining: None,
            }),
            _ => Err(Error::backend(
                "unexpected reply from the lock inspect script",
            )),
        }
    }
}
