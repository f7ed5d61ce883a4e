//! `TestAuth` runs a route's real protection: the right scope passes, a
//! missing one is 403, a revoked test key is 401.
#![cfg(feature = "testing")]
#![allow(
    clippy::unwrap_used,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header::AUTHORIZATION};
use axum::routing::post;
use keyward_axum::Verified;
use keyward_axum::testing::TestAuth;
use keyward_core::{Actor, KeyId, TokenKind, require};
use tower::Service;

#[tokio::test]
async fn test_keys_go_through_the_real_layer() {
    let test = TestAuth::new([TokenKind::new("mm_pat").unwrap()]).unwrap();
    let mut app = Router::new().route(
        "/api/publish",
        post(|Verified(key): Verified| async move { key.owner().to_string() })
            .route_layer(test.auth().require(require!("publish"))),
    );
    let mut status = async |token: &str| {
        let request = Request::post("/api/publish")
            .header(AUTHORIZATION, TestAuth::bearer(token))
            .body(Body::empty())
            .unwrap();
        app.call(request).await.unwrap().status().as_u16()
    };
    let publisher = test.token("mm_pat", "user:a", &["publish"]).await.unwrap();
    let reader = test.token("mm_pat", "user:a", &["files"]).await.unwrap();
    assert_eq!(status(&publisher).await, 200);
    assert_eq!(status(&reader).await, 403);
    let id = test
        .keyward()
        .format()
        .parse(&publisher)
        .map(|p| KeyId::parse(p.key_id()).unwrap())
        .unwrap();
    test.keyward()
        .revoke(&Actor::operator("test"), &id)
        .await
        .unwrap();
    assert_eq!(status(&publisher).await, 401);
    assert!(test.token("nope", "user:a", &[]).await.is_err());
}
