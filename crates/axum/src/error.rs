//! A management error as an HTTP response.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keyward_core::{Error, PublicAnswer};

/// A keyward [`Error`] answered over HTTP: its status
/// ([`Error::http_status`]) and a JSON body `{"error": "<stable code>",
/// "message": "<for people>"}` ([`Error::code`]), `Cache-Control:
/// no-store`, `Retry-After` on 503. The message never holds secret
/// material or echoes input (see [`Error`]); a backend error says only
/// which backend failed.
///
/// ```
/// use axum::response::IntoResponse;
/// use keyward_axum::ApiError;
/// let response = ApiError(keyward_core::Error::NotFound).into_response();
/// assert_eq!(response.status(), 404);
/// ```
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl ApiError {
    /// The JSON body: the stable code, the message, and what a client can
    /// act on (`outside` for `outside_catalog`, `allowed` for
    /// `expiry_not_allowed`, `limit` for `limit_reached`).
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "error": self.0.code(),
            "message": self.0.to_string(),
        });
        let detail = match &self.0 {
            Error::OutsideCatalog { outside, .. } => Some((
                "outside",
                serde_json::json!(outside.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
            )),
            Error::ExpiryNotAllowed { allowed, .. } => {
                Some(("allowed", serde_json::json!(allowed)))
            }
            Error::LimitReached { limit } => Some(("limit", serde_json::json!(limit))),
            _ => None,
        };
        if let (Some((name, value)), Some(map)) = (detail, body.as_object_mut()) {
            map.insert(name.to_owned(), value);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self.body())
    }
}

/// A JSON answer with the headers every keyward answer carries:
/// `Content-Type`, `Cache-Control: no-store`, and `Retry-After` on 503.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(PublicAnswer::CONTENT_TYPE),
    );
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(PublicAnswer::CACHE_CONTROL),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(RETRY_AFTER, HeaderValue::from(PublicAnswer::RETRY_AFTER));
    }
    response
}
