//! [`ApiError`]: a [`crate::Error`] as an HTTP response.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

use crate::{Error, ErrorKind};

/// A [`crate::Error`] answered as JSON (`{"error": code, "message": ...}`)
/// with a status that fits its kind: `503` (with `Retry-After: 1`) for a
/// store that is unavailable or timed out, `400` for bad input, `409` for
/// a conflict, `404` for not found, `500` otherwise.
///
/// Handlers return `Result<T, ApiError>` and use `?` on rampart calls.
/// The message is the error's own (it never contains a key's value or a
/// secret); the key is not included.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        status_of(&self.0)
    }
}

/// The HTTP status for an error of this kind.
pub(crate) fn status_of(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::Unavailable | ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::InvalidInput | ErrorKind::InvalidKey => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        _ if e.is_temporary() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON response `{"error": code, "message": message}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut res = json_error(status, self.0.code(), self.0.message());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}
