//! Acquire: take a free (or expired) lock and issue the next fencing token.

use std::time::Duration;

use crate::lock::state::{deadline, state_ttl, Hold, LockState, LockToken};
use crate::lock::{reply_code, reply_u64};
use crate::{Arg, AtomicOp, Change, Error, Result, Script, Timestamp, Value};

static SCRIPT: Script = Script::new(lua!("lock/acquire.lua"));

/// Takes the lock for `token` if nobody holds it, issuing a fencing token
/// strictly greater than every one issued before for the resource.
///
/// An expired hold counts as free. The pure face and `acquire.lua` make
/// the same decision and write the same state.
#[derive(Debug, Clone)]
pub struct AcquireOp(Hold);

/// What [`AcquireOp`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is ours.
    Acquired {
        /// The fencing token of this hold.
        fence: u64,
        /// When the hold ends unless extended (the store's clock).
        expires_at: Timestamp,
    },
    /// Someone else holds the lock.
    Held {
        /// How long their hold has left unless they extend it.
        remaining: Duration,
    },
}

impl AcquireOp {
    /// Acquire for `token`, holding for `ttl`; the state outlives the hold
    /// by `fence_retention` (`None` = kept forever).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// zero or over-long `ttl` or retention.
    pub fn new(token: LockToken, ttl: Duration, fence_retention: Option<Duration>) -> Result<Self> {
        Hold::new(token, ttl, fence_retention).map(Self)
    }
}

impl AtomicOp for AcquireOp {
    type Output = Acquire;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, Acquire)> {
        let now = now.as_micros();
        let current = LockState::decode_opt(state)?;
        if current.is_held(now) {
            let remaining = Duration::from_micros(current.expires_at - now);
            return Ok((Change::Keep, Acquire::Held { remaining }));
        }
        let fence = current.next_fence(now)?;
        let expires_at = deadline(now, self.0.ttl_us)?;
        let value = LockState {
            fence,
            expires_at,
            holder: Some(self.0.token.hex_bytes()),
        }
        .encode();
        let change = Change::Set {
            value,
            ttl: state_ttl(self.0.state_ttl_ms),
        };
        let expires_at = Timestamp::from_micros(expires_at);
        Ok((change, Acquire::Acquired { fence, expires_at }))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        self.0.script_args(now)
    }

    fn decode_reply(&self, reply: Value) -> Result<Acquire> {
        let items = reply.into_array()?;
        match (reply_code(&items)?, items.len()) {
            (1, 3) => Ok(Acquire::Acquired {
                fence: reply_u64(&items[1])?,
                expires_at: Timestamp::from_micros(reply_u64(&items[2])?),
            }),
            (0, 2) => Ok(Acquire::Held {
                remaining: Duration::from_micros(reply_u64(&items[1])?),
            }),
            _ => Err(Error::backend(
                "unexpected reply from the lock acquire script",
            )),
        }
    }
}
