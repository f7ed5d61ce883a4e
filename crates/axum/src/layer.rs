//! The per-route layer: verify the Bearer token against the route's
//! requirement, then let the request through with the verified key, or
//! answer the refusal.

use crate::Auth;
use crate::refusal::refusal;
use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use axum::response::Response;
use futures_util::future::Either;
use keyward_core::token::bearer_from_headers;
use keyward_core::{Rejection, Requirement, VerifiedKey};
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// What [`Auth::require`] returns: put it on a route with `route_layer`.
#[derive(Debug, Clone)]
pub struct RequireLayer {
    /// The service and the route's requirement, shared: one reference
    /// count per request, not one per part.
    shared: Arc<(Auth, Requirement)>,
}

impl RequireLayer {
    pub(crate) fn new(auth: Auth, requirement: Requirement) -> Self {
        Self {
            shared: Arc::new((auth, requirement)),
        }
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Require<S> {
        Require {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`RequireLayer`] wraps a route in.
#[derive(Debug, Clone)]
pub struct Require<S> {
    inner: S,
    shared: Arc<(Auth, Requirement)>,
}

/// The future a [`Require`] answers with: a refusal, the route's own
/// future (the token was answered from memory: a cache hit costs no
/// allocation here), or a boxed store read followed by the route.
type RequireFuture<F> = Either<
    Either<Ready<Result<Response, Infallible>>, F>,
    Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>,
>;

impl<S> Service<Request> for Require<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequireFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let (auth, requirement) = &*self.shared;
        // `None`: the store must be read. Nothing was read yet, so the
        // verification starts over in the async block that owns the request.
        let answer = match presented(&request) {
            Ok(token) => match auth.keyward.verify(token, requirement).ready() {
                Ok(answer) => {
                    Some(answer.map_err(|rejection| (rejection, presented_id(auth, token))))
                }
                Err(_store_read) => None,
            },
            Err(rejection) => Some(Err((rejection, None))),
        };
        let Some(answer) = answer else {
            return Either::Right(after_store_read(&mut self.inner, &self.shared, request));
        };
        match answer {
            Ok(key) => {
                verified(&key);
                request.extensions_mut().insert(key);
                // `inner` was polled ready for this very call.
                Either::Left(Either::Right(self.inner.call(request)))
            }
            Err((rejection, id)) => Either::Left(Either::Left(ready(Ok(refused(
                &rejection,
                id.as_deref(),
                auth,
            ))))),
        }
    }
}

/// The path of a token memory could not answer: read the store, then
/// serve or refuse.
fn after_store_read<S>(
    ready_inner: &mut S,
    shared: &Arc<(Auth, Requirement)>,
    mut request: Request,
) -> Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // The clone that was polled ready serves this request; a fresh clone
    // stays for the next one.
    let clone = ready_inner.clone();
    let mut inner = std::mem::replace(ready_inner, clone);
    let shared = Arc::clone(shared);
    Box::pin(async move {
        let (auth, requirement) = &*shared;
        let answer = match presented(&request) {
            Ok(token) => auth
                .keyward
                .verify(token, requirement)
                .await
                .map_err(|rejection| (rejection, presented_id(auth, token))),
            Err(rejection) => Err((rejection, None)),
        };
        match answer {
            Ok(key) => {
                verified(&key);
                request.extensions_mut().insert(key);
                inner.call(request).await
            }
            Err((rejection, id)) => Ok(refused(&rejection, id.as_deref(), auth)),
        }
    })
}

/// The Bearer token of the request's one `Authorization` header.
fn presented(request: &Request) -> Result<&str, Rejection> {
    let values = request.headers().get_all(AUTHORIZATION);
    bearer_from_headers(values.iter().map(|v| v.as_bytes())).map_err(Rejection::BadHeader)
}

/// The public key id of a refused token that parses, for the log line;
/// never any part of the secret.
fn presented_id(auth: &Auth, token: &str) -> Option<String> {
    auth.keyward
        .format()
        .parse(token)
        .ok()
        .map(|parsed| parsed.key_id().to_owned())
}

/// The log line and the counter of a verified token.
fn verified(key: &VerifiedKey) {
    tracing::debug!(
        target: "keyward",
        key_id = %key.key_id(),
        kind = key.kind(),
        outcome = "verified",
        "token verified"
    );
    count("verified");
}

/// The refusal's response, its log line and its counter.
fn refused(rejection: &Rejection, presented_id: Option<&str>, auth: &Auth) -> Response {
    let response = refusal(rejection, auth);
    tracing::info!(
        target: "keyward",
        key_id = presented_id,
        outcome = rejection.reason(),
        status = response.status().as_u16(),
        "token refused"
    );
    count(rejection.reason());
    response
}

/// Counts a verify outcome (`keyward_verify_total{outcome}`) when the
/// `metrics` feature is on.
fn count(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("keyward_verify_total", "outcome" => outcome).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}
