//! `serve` writes the last uses on shutdown: a token used just before the
//! server stops has its last-used time in the store once `serve` returns,
//! with no flush called by the host.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::routing::post;
use keyward_axum::{Auth, Verified};
use keyward_core::{
    Actor, IssueRequest, Keyward, Owner, PermissionSet, TokenKind, cache::CacheConfig, require,
};
use keyward_memory::MemoryStore;

#[tokio::test]
async fn the_last_uses_are_written_when_the_server_stops() {
    for cached in [false, true] {
        let builder = Keyward::builder(MemoryStore::new()).kind(TokenKind::new("mm_pat").unwrap());
        let builder = if cached {
            builder.verify_cache(CacheConfig::new())
        } else {
            builder
        };
        let keyward = builder.build().unwrap();
        let operator = Actor::operator("serve-test");
        let issued = keyward
            .issue(
                &operator,
                IssueRequest::new("mm_pat", Owner::new("user:a").unwrap(), "ci")
                    .scopes(PermissionSet::parse(["publish"]).unwrap()),
            )
            .await
            .unwrap();
        let auth = Auth::new(keyward.clone());
        let app = Router::new().route(
            "/api/publish",
            post(|Verified(_): Verified| async { "ok" })
                .route_layer(auth.require(require!("publish"))),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = {
            let keyward = keyward.clone();
            tokio::spawn(async move {
                keyward_axum::serve(listener, app, &keyward, async {
                    let _ = stopped.await;
                })
                .await
            })
        };
        let status = reqwest::Client::new()
            .post(format!("{base}/api/publish"))
            .bearer_auth(issued.token.expose_secret())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        assert_eq!(keyward.pending_usage(), 1, "recorded in memory only");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        let details = keyward.get(&operator, &issued.key.id).await.unwrap();
        assert!(details.last_used_at.is_some(), "cached: {cached}");
        assert_eq!(keyward.pending_usage(), 0);
    }
}
