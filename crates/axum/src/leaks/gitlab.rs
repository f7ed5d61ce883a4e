//! GitLab's token revocation API: GitLab's secret detection posts the
//! tokens it found, authenticated by a secret the host shares with it.

use super::{Reported, judge, read_body, refused, reported, unavailable};
use crate::Auth;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The shortest shared secret accepted, in bytes.
const MIN_SECRET_LEN: usize = 32;

/// The receiver for GitLab's token revocation API: mount
/// [`GitLabReceiver::router`] at the URL configured in GitLab. It answers
/// `GET /v1/revocable_token_types` (the configured kinds' prefixes) and
/// `POST /v1/revoke_tokens` (a JSON array of `{type, token, url}`, or one
/// such object; `location` is read as `url`), each only with the shared
/// secret in `Authorization` (compared in constant time; `Bearer <secret>`
/// is accepted too). A report answers 204 once judged.
pub struct GitLabReceiver {
    auth: Auth,
    secret: Zeroizing<String>,
}

impl fmt::Debug for GitLabReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabReceiver")
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// One token of a report, as GitLab sends it.
#[derive(Deserialize)]
struct GitLabToken {
    token: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default, alias = "location")]
    url: Option<String>,
}

/// A report: an array, or a single token.
#[derive(Deserialize)]
#[serde(untagged)]
enum GitLabReport {
    Many(Vec<GitLabToken>),
    One(GitLabToken),
}

impl GitLabReceiver {
    /// A receiver revoking through `auth`'s service, for requests carrying
    /// `secret` (at least 32 bytes: generate it, give the same to GitLab).
    pub fn new(auth: &Auth, secret: &str) -> Result<Self, keyward_core::Error> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(keyward_core::Error::invalid(
                "secret",
                "a shared secret of at least 32 bytes",
            ));
        }
        Ok(Self {
            auth: auth.clone(),
            secret: Zeroizing::new(secret.to_owned()),
        })
    }

    /// The routes, to `nest` where GitLab is told to call.
    pub fn router(self) -> axum::Router {
        axum::Router::new()
            .route("/v1/revocable_token_types", get(types))
            .route("/v1/revoke_tokens", post(receive))
            .with_state(Arc::new(self))
    }

    /// Whether the request carries the shared secret, in constant time.
    fn authenticated(&self, request: &Request) -> bool {
        let mut values = request.headers().get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let presented = value.as_bytes();
        let presented = presented.strip_prefix(b"Bearer ").unwrap_or(presented);
        bool::from(presented.ct_eq(self.secret.as_bytes()))
    }
}

fn unauthenticated() -> Response {
    refused(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "the request does not carry the shared secret",
    )
}

async fn types(State(receiver): State<Arc<GitLabReceiver>>, request: Request) -> Response {
    if !receiver.authenticated(&request) {
        return unauthenticated();
    }
    let types: Vec<&str> = receiver
        .auth
        .keyward()
        .format()
        .kinds()
        .iter()
        .map(|kind| kind.prefix())
        .collect();
    Json(serde_json::json!({ "types": types })).into_response()
}

async fn receive(State(receiver): State<Arc<GitLabReceiver>>, request: Request) -> Response {
    if !receiver.authenticated(&request) {
        return unauthenticated();
    }
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let tokens = match serde_json::from_slice(&body) {
        Ok(GitLabReport::Many(tokens)) => tokens,
        Ok(GitLabReport::One(token)) => vec![token],
        Err(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "malformed_report",
                "a report is a JSON array of {type, token, url}",
            );
        }
    };
    let reported = match reported(tokens, |t| Reported {
        token: t.token,
        kind: t.kind,
        url: t.url,
        source: "gitlab secret detection".to_owned(),
    }) {
        Ok(reported) => reported,
        Err(response) => return response,
    };
    match judge(receiver.auth.keyward(), "gitlab", reported).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable(&e),
    }
}
