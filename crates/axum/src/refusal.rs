//! A refused request as an HTTP response.

use crate::Auth;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keyward_core::{PublicAnswer, Rejection};

/// The response to `rejection`: RFC 6750 status and challenge for the
/// realm, the JSON body (or the host's, [`Auth::refusal_body`]),
/// `Cache-Control: no-store`, `Retry-After` on 503.
pub(crate) fn refusal(rejection: &Rejection, auth: &Auth) -> Response {
    let realm = &*auth.realm;
    let answer = rejection.public_answer();
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match &auth.body {
        Some(custom) => custom(&answer),
        None => (PublicAnswer::CONTENT_TYPE, answer.body()),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or_else(|_| HeaderValue::from_static(PublicAnswer::CONTENT_TYPE)),
    );
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(PublicAnswer::CACHE_CONTROL),
    );
    // The realm is written as a quoted-string without control characters,
    // so the value is always a valid header; a refused one falls back to
    // the challenge without it rather than to no challenge at all.
    let challenge = HeaderValue::from_str(&answer.www_authenticate(realm))
        .or_else(|_| HeaderValue::from_str(&answer.www_authenticate("api")))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"api\""));
    headers.insert(WWW_AUTHENTICATE, challenge);
    if let Some(seconds) = answer.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
