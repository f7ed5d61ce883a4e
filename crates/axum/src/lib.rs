//! keyward in an [axum](https://docs.rs/axum) 0.8 service.
//!
//! One [`Auth`] holds the service and how refusals are worded (the realm).
//! Each protected route gets its requirement with [`Auth::require`] on
//! `route_layer`, so paths the router does not know stay 404 and no
//! request reaches a handler without its token checked. The verified key
//! is in the request's extensions, read by the [`Verified`] extractor.
//! Refusals are answered as RFC 6750 words them ([`keyward_core::PublicAnswer`]):
//! a bare challenge without credentials, 400 for a malformed header
//! (duplicate `Authorization` headers and bytes that are not text
//! included), 401 for any bad token, 403 with the missing `scope`, 503 with
//! `Retry-After` when the store is down; JSON bodies, `Cache-Control:
//! no-store`. Management errors answer through [`ApiError`].
//!
//! ```
//! use axum::{Router, routing::post};
//! use keyward_axum::{Auth, Verified};
//! use keyward_core::{Keyward, require};
//!
//! async fn publish(Verified(key): Verified) -> String {
//!     format!("published by {}", key.key_id())
//! }
//!
//! fn app(keyward: Keyward) -> Router {
//!     let auth = Auth::new(keyward).realm("example");
//!     Router::new().route(
//!         "/api/publish",
//!         post(publish).route_layer(auth.require(require!("publish"))),
//!     )
//! }
//! ```

mod error;
mod layer;
#[cfg(feature = "leaks")]
pub mod leaks;
mod manage;
mod refusal;
mod serve;
#[cfg(feature = "testing")]
pub mod testing;
mod verified;

pub use error::ApiError;
pub use layer::{Require, RequireLayer};
pub use manage::{MAX_OVERLAP_SECONDS, Management, ManagementActor, Sessions, TokensOnly};
pub use serve::{USAGE_FLUSH_EVERY, serve};
pub use verified::{MissingLayer, Verified};

use keyward_core::{Keyward, PublicAnswer, Requirement};
use std::fmt;
use std::sync::Arc;

/// A host's own body for refusals: the content type and the body.
type RefusalBody = dyn Fn(&PublicAnswer) -> (&'static str, String) + Send + Sync;

/// keyward for an axum router: the service, and how refusals are worded.
/// Cheap to clone (the service is shared).
#[derive(Clone)]
pub struct Auth {
    keyward: Keyward,
    realm: Arc<str>,
    body: Option<Arc<RefusalBody>>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("keyward", &self.keyward)
            .field("realm", &self.realm)
            .field("custom_body", &self.body.is_some())
            .finish()
    }
}

impl Auth {
    /// Refusals name the realm `api` until [`Auth::realm`] says otherwise.
    pub fn new(keyward: Keyward) -> Self {
        Self {
            keyward,
            realm: Arc::from("api"),
            body: None,
        }
    }

    /// Refusals with the host's own body (`application/problem+json`, say):
    /// `body` gets the answer and returns the content type and the body.
    /// The status, the challenge, `Cache-Control` and `Retry-After` stay
    /// keyward's.
    ///
    /// ```
    /// # fn demo(keyward: keyward_core::Keyward) {
    /// let auth = keyward_axum::Auth::new(keyward).refusal_body(|answer| {
    ///     let body = format!(
    ///         r#"{{"type":"about:blank","title":"{}","status":{}}}"#,
    ///         answer.error, answer.status
    ///     );
    ///     ("application/problem+json", body)
    /// });
    /// # let _ = auth; }
    /// ```
    pub fn refusal_body(
        mut self,
        body: impl Fn(&PublicAnswer) -> (&'static str, String) + Send + Sync + 'static,
    ) -> Self {
        self.body = Some(Arc::new(body));
        self
    }

    /// The `realm` of every challenge (written as a safe quoted-string).
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Arc::from(realm);
        self
    }

    /// The service.
    pub fn keyward(&self) -> &Keyward {
        &self.keyward
    }

    /// A layer for `route_layer` that lets a request through only with a
    /// token meeting `requirement`, the verified key in its extensions.
    pub fn require(&self, requirement: Requirement) -> RequireLayer {
        RequireLayer::new(self.clone(), requirement)
    }
}

/// The guide (`docs/http.md`), whose examples compile as this crate's
/// doctests.
#[doc = include_str!("../../../docs/http.md")]
pub mod guide {}
