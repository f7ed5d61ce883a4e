//! Leak receivers: the endpoints GitHub's secret scanning partner program
//! ([`GitHubReceiver`]) and GitLab's token revocation API
//! ([`GitLabReceiver`]) call when they find one of this service's tokens
//! in public. Both end in [`Keyward::report_leak`]: parse and checksum
//! first, the digest compared in constant time, the key revoked once as
//! the reporter with where it was found in the audit log. docs/leaks.md
//! says how to enrol and mount them.

mod github;
mod gitlab;

/// The guide (`docs/leaks.md`), whose examples compile as this crate's
/// doctests (with the `github-fetch` feature).
#[cfg(feature = "github-fetch")]
#[doc = include_str!("../../../../docs/leaks.md")]
pub mod guide {}

pub use github::{FetchError, GitHubReceiver, KeyListFetcher, MIN_REFETCH_INTERVAL};
#[cfg(feature = "github-fetch")]
pub use github::{GITHUB_KEYS_URL, HttpKeyList};
pub use gitlab::GitLabReceiver;

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use keyward_core::leak::{LeakReport, LeakVerdict};
use keyward_core::{Error, Keyward};

/// The largest report body accepted: 4 MiB.
pub const MAX_REPORT_BYTES: usize = 4 * 1024 * 1024;
/// The most tokens one report may carry.
pub const MAX_REPORT_TOKENS: usize = 10_000;
/// How many tokens of a report are looked up at once.
const CONCURRENT_LOOKUPS: usize = 16;

/// One reported token, whatever the reporter's own field names.
pub(crate) struct Reported {
    pub(crate) token: String,
    pub(crate) kind: String,
    pub(crate) url: Option<String>,
    pub(crate) source: String,
}

/// A report's tokens in the reporter-neutral shape, refused (413) past
/// [`MAX_REPORT_TOKENS`].
#[allow(
    clippy::result_large_err,
    reason = "the refusal is the response itself, answered at once"
)]
pub(crate) fn reported<T>(
    tokens: Vec<T>,
    shape: impl Fn(T) -> Reported,
) -> Result<Vec<Reported>, Response> {
    if tokens.len() > MAX_REPORT_TOKENS {
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_tokens",
            "a report holds at most 10000 tokens",
        ));
    }
    Ok(tokens.into_iter().map(shape).collect())
}

/// Every token of a report through [`Keyward::report_leak`] (a few at a
/// time, answers in the report's order); the first store failure fails
/// the whole report so the reporter sends it again (every step is
/// idempotent).
pub(crate) async fn judge(
    keyward: &Keyward,
    reporter: &str,
    reported: Vec<Reported>,
) -> Result<Vec<LeakVerdict>, Error> {
    let verdicts: Vec<Result<LeakVerdict, Error>> = futures_util::stream::iter(reported)
        .map(|item| async move {
            let mut report = LeakReport::new(&item.token, reporter).source(&item.source);
            if let Some(url) = &item.url {
                report = report.url(url);
            }
            let verdict = keyward.report_leak(&report).await;
            if let Ok(LeakVerdict::Confirmed(leak)) = &verdict {
                tracing::warn!(
                    target: "keyward",
                    key_id = %leak.key_id,
                    kind = leak.kind.as_str(),
                    reporter,
                    newly_revoked = leak.newly_revoked,
                    "leaked token reported"
                );
            }
            verdict
        })
        .buffered(CONCURRENT_LOOKUPS)
        .collect()
        .await;
    verdicts.into_iter().collect()
}

/// A refused report: the status and a JSON body naming what was wrong
/// (never any part of the report), `Cache-Control: no-store`.
pub(crate) fn refused(status: StatusCode, code: &'static str, message: &'static str) -> Response {
    tracing::info!(target: "keyward", status = status.as_u16(), code, "leak report refused");
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(RETRY_AFTER, axum::http::HeaderValue::from_static("30"));
    }
    response
}

/// A store failure while judging a report: 503, so the reporter retries.
pub(crate) fn unavailable(error: &Error) -> Response {
    tracing::warn!(target: "keyward", error = %error, "leak report not judged: store unavailable");
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the key store is unavailable; send the report again",
    )
}

/// Reads a body of at most [`MAX_REPORT_BYTES`]: 413 beyond, 400 when it
/// cannot be read.
pub(crate) async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, MAX_REPORT_BYTES)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large {
                refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "a report is at most 4 MiB",
                )
            } else {
                refused(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    "the report body could not be read",
                )
            }
        })
}
