//! Handler tests without a store to set up (feature `testing`): a keyward
//! over an in-memory store, and real tokens to call routes with.
//!
//! Nothing is faked: the tokens are issued, and a request goes through the
//! same layer, verify and requirement as in production, so a test that
//! passes here exercises the route's real protection.

use crate::Auth;
use axum::http::HeaderValue;
use keyward_core::{
    Actor, Error, IssueRequest, Keyward, Owner, PermissionSet, TokenKind, cache::CacheConfig,
};
use keyward_memory::MemoryStore;

/// A keyward for tests: an in-memory store, a verification cache, and the
/// kinds your routes accept.
///
/// ```
/// use axum::{Router, routing::post, body::Body, http::Request};
/// use keyward_axum::{Verified, testing::TestAuth};
/// use keyward_core::{TokenKind, require};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let test = TestAuth::new([TokenKind::new("mm_pat")?])?;
/// let app = Router::new().route(
///     "/api/publish",
///     post(|Verified(key): Verified| async move { key.owner().to_string() })
///         .route_layer(test.auth().require(require!("publish"))),
/// );
/// let token = test.token("mm_pat", "user:alice", &["publish"]).await?;
/// let request = Request::post("/api/publish")
///     .header("authorization", TestAuth::bearer(&token))
///     .body(Body::empty())?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TestAuth {
    auth: Auth,
}

impl TestAuth {
    /// A keyward over a fresh in-memory store with `kinds`.
    pub fn new(kinds: impl IntoIterator<Item = TokenKind>) -> Result<Self, Error> {
        let mut builder = Keyward::builder(MemoryStore::new()).verify_cache(CacheConfig::new());
        for kind in kinds {
            builder = builder.kind(kind);
        }
        Ok(Self {
            auth: Auth::new(builder.build()?),
        })
    }

    /// The [`Auth`] to build the routes under test with.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The service, to revoke or disable a test key, or list them.
    pub fn keyward(&self) -> &Keyward {
        self.auth.keyward()
    }

    /// A real token of `kind` for `owner` holding `scopes`, issued by an
    /// operator (`test`).
    pub async fn token(&self, kind: &str, owner: &str, scopes: &[&str]) -> Result<String, Error> {
        let request = IssueRequest::new(kind, Owner::new(owner)?, "test key")
            .scopes(PermissionSet::parse(scopes)?);
        let issued = self
            .keyward()
            .issue(&Actor::operator("test"), request)
            .await?;
        Ok(issued.token.expose_secret().to_owned())
    }

    /// The `Authorization` value for `token`: `Bearer <token>`.
    pub fn bearer(token: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}
