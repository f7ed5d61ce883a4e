//! The extractors for the verified key.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use keyward_core::VerifiedKey;
use std::convert::Infallible;

/// The key that verified for this request, put there by
/// [`Auth::require`](crate::Auth::require). `Option<Verified>` is `None` on
/// a route without the layer.
#[derive(Debug, Clone)]
pub struct Verified(pub VerifiedKey);

impl<S: Send + Sync> FromRequestParts<S> for Verified {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MissingLayer> {
        parts
            .extensions
            .get::<VerifiedKey>()
            .cloned()
            .map(Verified)
            .ok_or(MissingLayer)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Verified {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<VerifiedKey>().cloned().map(Verified))
    }
}

/// A handler asked for [`Verified`] on a route without
/// [`Auth::require`](crate::Auth::require): a wiring mistake in the service,
/// answered 500 (never a 401 that would blame the client's token).
#[derive(Debug, Clone, Copy)]
pub struct MissingLayer;

impl IntoResponse for MissingLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "this route reads a verified key but has no keyward layer",
        )
            .into_response()
    }
}
