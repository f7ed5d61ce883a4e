//! The per-route layer: verify the Bearer token against the route's
//! requirement, then let the request through with the verified key, or
//! answer the refusal.

use crate::Auth;
use crate::refusal::refusal;
use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use axum::response::Response;
use keyward_core::token::bearer_from_headers;
use keyward_core::{Rejection, Requirement};
use std::convert::Infallible;
use std::future::Future;
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

impl<S> Service<Request> for Require<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was polled ready serves this request; a fresh
        // clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let (auth, requirement) = &*shared;
            let (verified, presented_id) = {
                let values = request.headers().get_all(AUTHORIZATION);
                match bearer_from_headers(values.iter().map(|v| v.as_bytes())) {
                    Ok(token) => {
                        let verified = auth.keyward.verify(token, requirement).await;
                        // The public key id of a refused token that parses,
                        // for the log line; never any part of the secret.
                        let id = verified.as_ref().err().and_then(|_| {
                            auth.keyward
                                .format()
                                .parse(token)
                                .ok()
                                .map(|parsed| parsed.key_id().to_owned())
                        });
                        (verified, id)
                    }
                    Err(header) => (Err(Rejection::BadHeader(header)), None),
                }
            };
            match verified {
                Ok(key) => {
                    tracing::debug!(
                        target: "keyward",
                        key_id = %key.key_id(),
                        kind = key.kind(),
                        outcome = "verified",
                        "token verified"
                    );
                    count("verified");
                    request.extensions_mut().insert(key);
                    inner.call(request).await
                }
                Err(rejection) => {
                    let response = refusal(&rejection, auth);
                    tracing::info!(
                        target: "keyward",
                        key_id = presented_id.as_deref(),
                        outcome = rejection.reason(),
                        status = response.status().as_u16(),
                        "token refused"
                    );
                    count(rejection.reason());
                    Ok(response)
                }
            }
        })
    }
}

/// Counts a verify outcome (`keyward_verify_total{outcome}`) when the
/// `metrics` feature is on.
fn count(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("keyward_verify_total", "outcome" => outcome).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}
