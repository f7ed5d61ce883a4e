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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": self.0.code(),
            "message": self.0.to_string(),
        })
        .to_string();
        let mut response = (status, body).into_response();
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
}
