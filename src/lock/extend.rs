//! Extend: push the end of a hold, only for its holder.

use std::time::Duration;

use crate::lock::state::{deadline, state_ttl, Hold, LockState, LockToken};
use crate::lock::{reply_code, reply_u64};
use crate::{Arg, AtomicOp, Change, Error, Result, Script, Timestamp, Value};

static SCRIPT: Script = Script::new(lua!("lock/extend.lua"));

/// Makes the hold of `token` end `ttl` from now (longer or shorter than
/// it was) if `token` still holds the lock; otherwise touches nothing.
///
/// An expired hold cannot be extended: someone else may have taken the
/// lock meanwhile, or may be about to.
#[derive(Debug, Clone)]
pub struct ExtendOp(Hold);

/// What an extension did.
#[must_use = "`NotHeld` means the lock is no longer yours"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// The hold now ends at `expires_at`.
    Extended {
        /// The new end of the hold (the store's clock).
        expires_at: Timestamp,
    },
    /// The token does not hold the lock; nothing was changed.
    NotHeld,
}

impl Extend {
    /// Whether the lock is still ours.
    pub fn is_extended(self) -> bool {
        matches!(self, Extend::Extended { .. })
    }
}

impl ExtendOp {
    /// Extend `token`'s hold to `ttl` from now; the state outlives the hold
    /// by `fence_retention` (`None` = forever).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// zero or over-long `ttl` or retention.
    pub fn new(token: LockToken, ttl: Duration, fence_retention: Option<Duration>) -> Result<Self> {
        Hold::new(token, ttl, fence_retention).map(Self)
    }
}

impl AtomicOp for ExtendOp {
    type Output = Extend;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, Extend)> {
        let Some(bytes) = state else {
            return Ok((Change::Keep, Extend::NotHeld));
        };
        let now = now.as_micros();
        let current = LockState::decode(bytes)?;
        if !current.is_held_by(&self.0.token, now) {
            return Ok((Change::Keep, Extend::NotHeld));
        }
        let expires_at = deadline(now, self.0.ttl_us)?;
        let value = LockState {
            expires_at,
            ..current
        }
        .encode();
        let change = Change::Set {
            value,
            ttl: state_ttl(self.0.state_ttl_ms),
        };
        let expires_at = Timestamp::from_micros(expires_at);
        Ok((change, Extend::Extended { expires_at }))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        self.0.script_args(now)
    }

    fn decode_reply(&self, reply: Value) -> Result<Extend> {
        let items = reply.into_array()?;
        match (reply_code(&items)?, items.len()) {
            (1, 2) => Ok(Extend::Extended {
                expires_at: Timestamp::from_micros(reply_u64(&items[1])?),
            }),
            (0, 1) => Ok(Extend::NotHeld),
            _ => Err(Error::backend(
                "unexpected reply from the lock extend script",
            )),
        }
    }
}
