//! rampart errors as JavaScript `RampartError`s, and JavaScript failures
//! as rampart errors.

use rampart::{Error, ErrorKind};
use wasm_bindgen::{JsCast, JsValue};

/// `e` as a `RampartError`: `code`, `message`, `temporary`, `operation`,
/// `key`.
pub(crate) fn to_js(e: &Error) -> JsValue {
    crate::runtime::make_error(
        e.code(),
        &e.to_string(),
        e.is_temporary(),
        e.operation(),
        e.key(),
    )
}

/// `Err(to_js(e))`, for `map_err`.
pub(crate) fn js(e: Error) -> JsValue {
    to_js(&e)
}

/// The `ErrorKind` behind a stable code, if it is one of rampart's.
pub(crate) fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "RAMPART_INVALID_KEY" => ErrorKind::InvalidKey,
        "RAMPART_INVALID_INPUT" => ErrorKind::InvalidInput,
        "RAMPART_CONFIG" => ErrorKind::Config,
        "RAMPART_NOT_FOUND" => ErrorKind::NotFound,
        "RAMPART_CONFLICT" => ErrorKind::Conflict,
        "RAMPART_CORRUPT_DATA" => ErrorKind::CorruptData,
        "RAMPART_UNAVAILABLE" => ErrorKind::Unavailable,
        "RAMPART_TIMEOUT" => ErrorKind::Timeout,
        "RAMPART_UNSUPPORTED" => ErrorKind::Unsupported,
        "RAMPART_BACKEND" => ErrorKind::Backend,
        _ => return None,
    })
}

/// The cause of a rampart error raised by a JavaScript store: the
/// JavaScript error's name, code and message (a `JsValue` cannot be kept:
/// rampart's sources are `Send + Sync`).
#[derive(Debug)]
pub(crate) struct JsCause(pub(crate) String);

impl std::fmt::Display for JsCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsCause {}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `String(v)`, declared with `catch` (js-sys's `Object::to_string` is
    /// not): a `toString` or a Proxy trap that throws is an `Err` here, not
    /// an exception unwinding through the module (from a promise callback,
    /// where it poisoned the instance).
    #[wasm_bindgen(js_name = String, catch)]
    fn string_of(v: &JsValue) -> Result<js_sys::JsString, JsValue>;
}

fn string_prop(v: &JsValue, name: &str) -> Option<String> {
    if !v.is_object() {
        return None;
    }
    js_sys::Reflect::get(v, &JsValue::from_str(name))
        .ok()
        .and_then(|p| p.as_string())
}

/// A rejection from a JavaScript store method as a rampart error.
///
/// * a `code` of rampart's (`RAMPART_TIMEOUT`, ...) keeps its kind (the
///   package's adapters classify their client's errors this way);
/// * a message starting with such a code (a Lua `error_reply` from a
///   script) keeps it too;
/// * Node's network error codes (`ECONNREFUSED`, `ETIMEDOUT`, ...) are
///   `Unavailable` or `Timeout`;
/// * anything else is `Backend`.
pub(crate) fn from_js(v: &JsValue, operation: &'static str) -> Error {
    let code = string_prop(v, "code");
    let message = string_prop(v, "message")
        .or_else(|| v.as_string())
        .or_else(|| {
            v.dyn_ref::<js_sys::Object>()
                .and_then(|o| string_of(o).ok())
                .map(String::from)
        })
        .unwrap_or_else(|| "a store method failed".into());
    let from_message = message
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .next()
        .and_then(kind_of_code);
    let otherwise = match code.as_deref() {
        Some("ETIMEDOUT") => ErrorKind::Timeout,
        Some(
            "ECONNREFUSED" | "ECONNRESET" | "EPIPE" | "ENOTFOUND" | "EHOSTUNREACH" | "ENETUNREACH"
            | "EAI_AGAIN" | "ECONNABORTED",
        ) => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    let kind = code
        .as_deref()
        .and_then(kind_of_code)
        .or(from_message)
        .unwrap_or(otherwise);
    let name = string_prop(v, "name").unwrap_or_else(|| "Error".into());
    let cause = match &code {
        Some(c) => format!("{name} [{c}]: {message}"),
        None => format!("{name}: {message}"),
    };
    let text = if kind == ErrorKind::Backend {
        format!("the JavaScript store failed: {message}")
    } else {
        message
    };
    Error::new(kind, text)
        .with_operation(operation)
        .with_source(JsCause(cause))
}
