//! Checking what JavaScript hands the bindings, and converting back.
//!
//! Every value that crosses the boundary is checked here and refused with a
//! coded [`rampart::Error`] (`RAMPART_INVALID_KEY`, `RAMPART_INVALID_INPUT`)
//! rather than unwrapped: `NaN`, `Infinity`, negative and fractional
//! counts, numbers past 2^53, wrong types, empty and over-long keys, and
//! values too large to copy into the module's memory.
//!
//! The number rules are plain functions of `f64`, so they are unit-tested
//! natively; the `JsValue` readers beside them exist on `wasm32` only.

use std::time::Duration;

use rampart::{Error, Result, MAX_TTL};

/// The largest value (in bytes) the bindings copy into WebAssembly memory.
///
/// The module's memory is at most 4 GiB and an allocation failure aborts
/// it, so one oversized value must be an error, not a trap.
pub const MAX_VALUE_LEN: usize = 64 * 1024 * 1024;

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A TTL given in milliseconds: finite, positive, at most [`MAX_TTL`].
///
/// Fractions of a millisecond are kept to the microsecond (rounded up, so a
/// tiny positive TTL never becomes zero).
///
/// ```
/// use rampart_wasm::convert::ttl_from_millis;
/// use std::time::Duration;
/// assert_eq!(ttl_from_millis(1500.0).unwrap(), Duration::from_millis(1500));
/// assert_eq!(ttl_from_millis(0.0001).unwrap(), Duration::from_micros(1));
/// assert!(ttl_from_millis(f64::NAN).is_err());
/// assert!(ttl_from_millis(-1.0).is_err());
/// ```
pub fn ttl_from_millis(ms: f64) -> Result<Duration> {
    duration_from_millis(ms, "ttl").and_then(|d| {
        if d.is_zero() {
            Err(Error::invalid_input(
                "ttl must be a positive number of milliseconds; leave it out for a value that does not expire",
            ))
        } else {
            Ok(d)
        }
    })
}

/// A duration given in milliseconds: finite, not negative, at most
/// [`MAX_TTL`] (100 years). `what` names the argument in the error.
///
/// ```
/// use rampart_wasm::convert::duration_from_millis;
/// use std::time::Duration;
/// assert_eq!(duration_from_millis(0.0, "wait").unwrap(), Duration::ZERO);
/// assert!(duration_from_millis(f64::INFINITY, "wait").is_err());
/// ```
pub fn duration_from_millis(ms: f64, what: &str) -> Result<Duration> {
    if !ms.is_finite() {
        return Err(Error::invalid_input(format!(
            "{what} must be a finite number of milliseconds, got {ms}"
        )));
    }
    if ms < 0.0 {
        return Err(Error::invalid_input(format!(
            "{what} must not be negative, got {ms} ms"
        )));
    }
    let max_ms = MAX_TTL.as_millis() as f64;
    if ms > max_ms {
        return Err(Error::invalid_input(format!(
            "{what} of {ms} ms is longer than the maximum of 100 years"
        )));
    }
    // Below 2^53 µs (100 years is ~3.2e15 µs): exact in an f64, safe as u64.
    let micros = (ms * 1_000.0).ceil();
    Ok(Duration::from_micros(micros as u64))
}

/// A duration as JavaScript milliseconds (fractional below a millisecond).
///
/// ```
/// use rampart_wasm::convert::duration_to_millis;
/// use std::time::Duration;
/// assert_eq!(duration_to_millis(Duration::from_micros(1_500)), 1.5);
/// assert_eq!(duration_to_millis(Duration::MAX), Duration::MAX.as_micros() as f64 / 1e3);
/// ```
#[inline(always)]
pub fn duration_to_millis(d: Duration) -> f64 {
    // Whole microseconds in a u64 where they surely fit (below 2^43 s,
    // ~280 000 years: every duration the core hands out): the value of
    // `as_micros()` without the u128 arithmetic (and without the checked
    // multiply) that wasm32 does in software, on the decision hot path.
    let secs = d.as_secs();
    if secs < 1 << 43 {
        (secs * 1_000_000 + u64::from(d.subsec_micros())) as f64 / 1_000.0
    } else {
        d.as_micros() as f64 / 1_000.0
    }
}

/// A whole number between `min` and `max` (both at most 2^53 - 1).
///
/// ```
/// use rampart_wasm::convert::integer_in;
/// assert_eq!(integer_in(10.0, 1, 100, "count").unwrap(), 10);
/// assert!(integer_in(1.5, 1, 100, "count").is_err());
/// assert!(integer_in(0.0, 1, 100, "count").is_err());
/// assert!(integer_in(1e300, 1, 100, "count").is_err());
/// ```
pub fn integer_in(x: f64, min: u64, max: u64, what: &str) -> Result<u64> {
    if !x.is_finite() || x.fract() != 0.0 {
        return Err(Error::invalid_input(format!(
            "{what} must be a whole number, got {x}"
        )));
    }
    if x < min as f64 || x > max as f64 {
        return Err(Error::invalid_input(format!(
            "{what} must be between {min} and {max}, got {x}"
        )));
    }
    Ok(x as u64)
}

/// A signed whole number a JavaScript number holds exactly
/// (|x| ≤ 2^53 - 1).
///
/// ```
/// use rampart_wasm::convert::safe_integer;
/// assert_eq!(safe_integer(-7.0, "delta").unwrap(), -7);
/// assert!(safe_integer(2f64.powi(60), "delta").is_err());
/// ```
pub fn safe_integer(x: f64, what: &str) -> Result<i64> {
    if !x.is_finite() || x.fract() != 0.0 || x.abs() > MAX_SAFE_INTEGER {
        return Err(Error::invalid_input(format!(
            "{what} must be a whole number between -(2^53 - 1) and 2^53 - 1, got {x}"
        )));
    }
    Ok(x as i64)
}

/// An `i64` as a JavaScript number, or an error when it is not exact.
///
/// ```
/// use rampart_wasm::convert::exact_number;
/// assert_eq!(exact_number(42, "counter").unwrap(), 42.0);
/// assert!(exact_number(i64::MAX, "counter").is_err());
/// ```
pub fn exact_number(n: i64, what: &str) -> Result<f64> {
    if n.unsigned_abs() > MAX_SAFE_INTEGER as u64 {
        return Err(Error::invalid_input(format!(
            "{what} is {n}, beyond what a JavaScript number holds exactly (2^53 - 1)"
        )));
    }
    Ok(n as f64)
}

/// Checks a value's length against [`MAX_VALUE_LEN`].
pub fn check_value_len(len: usize, what: &str) -> Result<()> {
    if len > MAX_VALUE_LEN {
        return Err(Error::invalid_input(format!(
            "{what} is {len} bytes, larger than the limit of {MAX_VALUE_LEN}"
        )));
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
pub(crate) use js::*;

#[cfg(target_arch = "wasm32")]
mod js {
    use std::time::Duration;

    use bytes::Bytes;
    use js_sys::{Array, JsString, Uint8Array};
    use rampart::{Error, Key, Result, MAX_KEY_LEN};
    use wasm_bindgen::{JsCast, JsValue};

    use super::{check_value_len, ttl_from_millis, MAX_VALUE_LEN};

    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        /// `Array.isArray(v)`, which throws on a revoked Proxy: declared
        /// with `catch` (js-sys's `Array::is_array` is not), so that throw
        /// is an `Err` here rather than an exception unwinding through the
        /// module's frames (leaking the call's borrows and shadow stack).
        #[wasm_bindgen(js_namespace = Array, js_name = isArray, catch)]
        fn is_array_or_throw(v: &JsValue) -> Result<bool, JsValue>;
    }

    /// `v` as an `Array` if it is one; a revoked Proxy is not.
    ///
    /// Only whether it is an array is safe to ask here: the bindings' JS
    /// wrappers copy caller arrays into fresh ones (`lib/args.js`) before
    /// the module reads their length and items, which on a Proxy or through
    /// an accessor would run the caller's code.
    pub(crate) fn array(v: &JsValue) -> Option<&Array> {
        match is_array_or_throw(v) {
            Ok(true) => Some(v.unchecked_ref()),
            _ => None,
        }
    }

    /// `typeof v`, with `null` and `NaN` told apart, for error messages.
    /// Runs no code of the caller's (no getter, no Proxy trap).
    pub(crate) fn describe(v: &JsValue) -> String {
        if v.is_null() {
            return "null".into();
        }
        if let Some(n) = v.as_f64() {
            return format!("the number {n}");
        }
        if v.is_string() {
            return "a string".into();
        }
        if array(v).is_some() {
            return "an array".into();
        }
        v.js_typeof()
            .as_string()
            .unwrap_or_else(|| "a value".into())
    }

    /// A JavaScript string, refused (rather than silently altered) when it
    /// holds a lone UTF-16 surrogate, which UTF-8 cannot represent.
    pub(crate) fn well_formed_string(v: &JsValue) -> Option<Result<String>> {
        let s = v.as_string()?;
        if s.contains('\u{FFFD}') {
            // The copy replaced something with U+FFFD: either it was there,
            // or the string is not well-formed UTF-16.
            if let Some(js) = v.dyn_ref::<JsString>() {
                if !js.is_valid_utf16() {
                    return Some(Err(Error::invalid_input(
                        "string holds a lone UTF-16 surrogate, which has no UTF-8 form",
                    )));
                }
            }
        }
        Some(Ok(s))
    }

    /// A store key: a non-empty string of at most [`MAX_KEY_LEN`] bytes.
    pub(crate) fn key(v: &JsValue) -> Result<Key> {
        key_named(v, "key")
    }

    /// A key-like string argument named `what` (a key, a channel).
    pub(crate) fn key_named(v: &JsValue, what: &str) -> Result<Key> {
        match well_formed_string(v) {
            Some(Ok(s)) => Key::new(s),
            Some(Err(e)) => Err(Error::invalid_key(format!("{what}: {}", e.message()))),
            None => Err(Error::invalid_key(format!(
                "{what} must be a string, got {}",
                describe(v)
            ))),
        }
    }

    /// A scan prefix: a string (possibly empty) of at most [`MAX_KEY_LEN`] bytes.
    pub(crate) fn prefix(v: &JsValue) -> Result<String> {
        if let Some(js) = v.dyn_ref::<JsString>() {
            if js.length() as usize > MAX_KEY_LEN {
                return Err(Error::invalid_key(format!(
                    "prefix is longer than the limit of {MAX_KEY_LEN} bytes"
                )));
            }
        }
        match well_formed_string(v) {
            Some(Ok(s)) => {
                rampart::validate_prefix(&s)?;
                Ok(s)
            }
            Some(Err(e)) => Err(Error::invalid_key(format!("prefix: {}", e.message()))),
            None => Err(Error::invalid_key(format!(
                "prefix must be a string, got {}",
                describe(v)
            ))),
        }
    }

    /// A number argument, or `InvalidInput` naming it.
    pub(crate) fn number(v: &JsValue, what: &str) -> Result<f64> {
        v.as_f64().ok_or_else(|| {
            Error::invalid_input(format!("{what} must be a number, got {}", describe(v)))
        })
    }

    /// `undefined`/`null`: `None`; otherwise a number, checked by `check`.
    pub(crate) fn optional<T>(
        v: &JsValue,
        what: &str,
        check: impl FnOnce(f64) -> Result<T>,
    ) -> Result<Option<T>> {
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        check(number(v, what)?).map(Some)
    }

    /// An optional TTL in milliseconds (`undefined`/`null` = no expiry).
    pub(crate) fn ttl(v: &JsValue) -> Result<Option<Duration>> {
        optional(v, "ttl", ttl_from_millis)
    }

    /// Bytes from a `Uint8Array` (a Node `Buffer` is one) or a string (UTF-8).
    pub(crate) fn bytes(v: &JsValue, what: &str) -> Result<Bytes> {
        if let Some(array) = v.dyn_ref::<Uint8Array>() {
            check_value_len(array.length() as usize, what)?;
            return Ok(Bytes::from(array.to_vec()));
        }
        if let Some(js) = v.dyn_ref::<JsString>() {
            // Each UTF-16 unit is at most 3 UTF-8 bytes: refuse before copying.
            if js.length() as usize > MAX_VALUE_LEN {
                return Err(Error::invalid_input(format!(
                    "{what} is longer than the limit of {MAX_VALUE_LEN} bytes"
                )));
            }
            let s = match well_formed_string(v) {
                Some(r) => {
                    r.map_err(|e| Error::invalid_input(format!("{what}: {}", e.message())))?
                }
                None => String::new(),
            };
            check_value_len(s.len(), what)?;
            return Ok(Bytes::from(s));
        }
        Err(Error::invalid_input(format!(
            "{what} must be a Uint8Array, a Buffer or a string, got {}",
            describe(v)
        )))
    }

    /// `null`/`undefined` or bytes.
    pub(crate) fn optional_bytes(v: &JsValue, what: &str) -> Result<Option<Bytes>> {
        if v.is_undefined() || v.is_null() {
            Ok(None)
        } else {
            bytes(v, what).map(Some)
        }
    }

    /// Bytes as a fresh `Uint8Array`.
    pub(crate) fn to_js_bytes(b: &[u8]) -> JsValue {
        Uint8Array::from(b).into()
    }

    /// Optional bytes as a `Uint8Array` or `null`.
    pub(crate) fn to_js_opt_bytes(b: Option<&[u8]>) -> JsValue {
        match b {
            Some(b) => to_js_bytes(b),
            None => JsValue::NULL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_are_errors_with_the_input_code() {
        for ms in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -0.0001,
            1e300,
            MAX_TTL.as_millis() as f64 + 1.0,
        ] {
            let e = ttl_from_millis(ms).unwrap_err();
            assert_eq!(e.code(), "RAMPART_INVALID_INPUT", "{ms}: {e}");
        }
        assert_eq!(
            ttl_from_millis(0.0).unwrap_err().code(),
            "RAMPART_INVALID_INPUT"
        );
        // -0 is zero: a zero TTL, refused.
        assert!(ttl_from_millis(-0.0).is_err());
        assert_eq!(
            ttl_from_millis(MAX_TTL.as_millis() as f64).unwrap(),
            MAX_TTL
        );
    }

    #[test]
    fn integers_must_be_whole_and_in_range() {
        assert_eq!(integer_in(100_000.0, 1, 100_000, "count").unwrap(), 100_000);
        for x in [f64::NAN, f64::INFINITY, -1.0, 0.5, 100_001.0, 2f64.powi(64)] {
            assert!(integer_in(x, 1, 100_000, "count").is_err(), "{x}");
        }
        assert_eq!(safe_integer(MAX_SAFE_INTEGER, "d").unwrap(), (1 << 53) - 1);
        assert!(safe_integer(MAX_SAFE_INTEGER + 1.0, "d").is_err());
        assert!(safe_integer(f64::NAN, "d").is_err());
        assert_eq!(
            exact_number(-(1 << 53) + 1, "n").unwrap(),
            -9007199254740991.0
        );
        assert!(exact_number(1 << 53, "n").is_err());
        assert!(exact_number(i64::MIN, "n").is_err());
    }

    #[test]
    fn durations_round_up_to_the_microsecond() {
        assert_eq!(
            duration_from_millis(1.0005, "d").unwrap(),
            Duration::from_micros(1_001)
        );
        assert_eq!(duration_to_millis(Duration::from_secs(2)), 2_000.0);
        // The u64 shortcut agrees with u128 arithmetic on both sides of
        // its bound, and truncates to the microsecond alike.
        for secs in [0, 1, (1 << 43) - 1, 1 << 43, u64::MAX] {
            for nanos in [0, 999, 1_000, 999_999_999] {
                let d = Duration::new(secs, nanos);
                assert_eq!(
                    duration_to_millis(d),
                    d.as_micros() as f64 / 1_000.0,
                    "{d:?}"
                );
            }
        }
        assert!(check_value_len(MAX_VALUE_LEN, "v").is_ok());
        assert!(check_value_len(MAX_VALUE_LEN + 1, "v").is_err());
    }
}
