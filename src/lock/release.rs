//! Release: free the lock, only for its holder, keeping the fence counter.

use std::time::Duration;

use crate::lock::state::{state_ttl, state_ttl_ms, LockState, LockToken};
use crate::lock::{reply_code, script_now};
use crate::{check_ttl, Arg, AtomicOp, Change, Error, Result, Script, Timestamp, Value};

static SCRIPT: Script = Script::new(lua!("lock/release.lua"));

/// Frees the lock if `token` holds it; otherwise touches nothing.
///
/// The state stays behind, without a holder, for the fence retention, so
/// the next holder's fencing token continues the sequence.
#[derive(Debug, Clone)]
pub struct ReleaseOp {
    token: LockToken,
    state_ttl_ms: u64,
}

/// What a release did.
#[must_use = "`NotHeld` means the lock expired or passed to someone else while you held it"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The lock was ours and is now free.
    Released,
    /// The token does not hold the lock (it expired, was taken over after
    /// expiring, or was never this token's); nothing was changed.
    NotHeld,
}

impl Release {
    /// Whether the lock was ours until this release.
    pub fn is_released(self) -> bool {
        self == Release::Released
    }
}

impl ReleaseOp {
    /// Release for `token`; the free state is kept for `fence_retention`
    /// (`None` = forever).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// zero or over-long retention.
    pub fn new(token: LockToken, fence_retention: Option<Duration>) -> Result<Self> {
        check_ttl(fence_retention)?;
        Ok(Self {
            token,
            state_ttl_ms: state_ttl_ms(Duration::ZERO, fence_retention),
        })
    }
}

impl AtomicOp for ReleaseOp {
    type Output = Release;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn apply(&self, state: Option<&[u8]>, now: Timestamp) -> Result<(Change, Release)> {
        let Some(bytes) = state else {
            return Ok((Change::Keep, Release::NotHeld));
        };
        let current = LockState::decode(bytes)?;
        if !current.is_held_by(&self.token, now.as_micros()) {
            return Ok((Change::Keep, Release::NotHeld));
        }
        let value = LockState {
            fence: current.fence,
            ..LockState::NEW
        }
        .encode();
        let change = Change::Set {
            value,
            ttl: state_ttl(self.state_ttl_ms),
        };
        Ok((change, Release::Released))
    }

    fn script_args(&self, now: Option<Timestamp>) -> Vec<Arg> {
        let mut args = vec![Arg::from(self.token.as_hex()), Arg::from(self.state_ttl_ms)];
        args.extend(script_now(now));
        args
    }

    fn decode_reply(&self, reply: Value) -> Result<Release> {
        match reply_code(std::slice::from_ref(&reply))? {
            1 => Ok(Release::Released),
            0 => Ok(Release::NotHeld),
            _ => Err(Error::backend(
                "unexpected reply from the lock release script",
            )),
        }
    }
}
