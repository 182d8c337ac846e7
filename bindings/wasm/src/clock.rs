//! `ManualClock` for JavaScript: time that moves only when told to.

use rampart::{Clock, ManualClock, SharedClock, Timestamp};
use wasm_bindgen::prelude::*;

use crate::convert::{duration_from_millis, integer_in, number, MAX_SAFE_INTEGER};
use crate::error::js;

/// A clock for tests: a `MemoryStore` (and later a limiter) built with it
/// expires keys only when the test advances it.
#[wasm_bindgen(js_name = ManualClock)]
pub struct ManualClockHandle {
    clock: ManualClock,
}

fn millis(v: &JsValue, what: &str) -> Result<u64, JsValue> {
    let ms = number(v, what).map_err(js)?;
    integer_in(ms, 0, MAX_SAFE_INTEGER as u64, what).map_err(js)
}

#[wasm_bindgen(js_class = ManualClock)]
impl ManualClockHandle {
    /// A clock stopped at `start_ms` milliseconds since the Unix epoch.
    #[wasm_bindgen(constructor)]
    pub fn new(start_ms: JsValue) -> Result<ManualClockHandle, JsValue> {
        let start = millis(&start_ms, "start")?;
        Ok(Self {
            clock: ManualClock::new(Timestamp::from_millis(start)),
        })
    }

    /// Moves the clock forward by `ms` milliseconds (fractions kept to the
    /// microsecond).
    pub fn advance(&self, ms: JsValue) -> Result<(), JsValue> {
        let d = duration_from_millis(number(&ms, "ms").map_err(js)?, "ms").map_err(js)?;
        self.clock.advance(d);
        Ok(())
    }

    /// Sets the clock to `ms` milliseconds since the epoch (it may go back).
    pub fn set(&self, ms: JsValue) -> Result<(), JsValue> {
        self.clock.set(Timestamp::from_millis(millis(&ms, "ms")?));
        Ok(())
    }

    /// The time, in milliseconds since the epoch (fractional below a ms).
    pub fn now(&self) -> f64 {
        self.clock.now().as_micros() as f64 / 1_000.0
    }
}

impl ManualClockHandle {
    /// The clock, shared with whatever follows it.
    pub(crate) fn shared(&self) -> SharedClock {
        self.clock.shared()
    }
}
