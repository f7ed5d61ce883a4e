//! The management router over real HTTP: a signed-in user creates, lists,
//! reads, disables, enables, rotates and revokes keys as JSON; a token
//! calling it is refused and audited by keyward; bad bodies are typed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::http::request::Parts;
use axum::routing::post;
use keyward_axum::{Auth, Sessions, Verified};
use keyward_core::audit::{AuditOutcome, AuditQuery};
use keyward_core::{Actor, Error, Keyward, Owner, PermissionSet, Session, TokenKind, require};
use keyward_memory::MemoryStore;
use serde_json::{Value, json};

const CATALOG: [&str; 5] = ["publish", "messages", "files", "domain", "billing.read"];

/// The host's sessions, for the test: `x-test-user: <name>` is signed in
/// and holds the whole catalog.
#[derive(Debug, Clone)]
struct TestSessions;

impl Sessions for TestSessions {
    async fn session(&self, parts: &Parts) -> Result<Option<Session>, Error> {
        Ok(parts
            .headers
            .get("x-test-user")
            .and_then(|v| v.to_str().ok())
            .map(|user| {
                Session::new(
                    Owner::new(&format!("user:{user}")).unwrap(),
                    PermissionSet::parse(CATALOG).unwrap(),
                )
            }))
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
    keyward: Keyward,
}

async fn start() -> Server {
    let kind = TokenKind::new("mm_pat")
        .unwrap()
        .with_catalog(PermissionSet::parse(CATALOG).unwrap())
        .unwrap();
    let keyward = Keyward::builder(MemoryStore::new())
        .kind(kind)
        .build()
        .unwrap();
    let auth = Auth::new(keyward.clone());
    let app = Router::new()
        .route(
            "/api/publish",
            post(|Verified(_): Verified| async { "ok" })
                .route_layer(auth.require(require!("publish"))),
        )
        .nest("/manage", auth.management(TestSessions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base,
        client: reqwest::Client::new(),
        keyward,
    }
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/manage{path}", self.base));
        if let Some(user) = user {
            request = request.header("x-test-user", user);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create(&self, user: &str, name: &str, scopes: &[&str]) -> (String, String) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/keys",
                Some(user),
                Some(json!({"kind": "mm_pat", "name": name, "scopes": scopes, "expires": "never"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["token"].as_str().unwrap().to_owned(),
            body["key"]["id"].as_str().unwrap().to_owned(),
        )
    }

    async fn publish(&self, token: &str) -> u16 {
        self.client
            .post(format!("{}/api/publish", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn a_signed_in_user_manages_keys_over_json() {
    let server = start().await;
    let (token, id) = server.create("alice", "CI deploy", &["publish"]).await;
    assert!(token.starts_with("mm_pat_"));
    assert_eq!(server.publish(&token).await, 200);

    let (status, key) = server
        .call(
            reqwest::Method::GET,
            &format!("/keys/{id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(key["name"], "CI deploy");
    assert_eq!(key["owner"], "user:alice");
    assert_eq!(key["scopes"], json!(["publish"]));
    assert_eq!(key["status"], "active");
    assert!(key.get("token").is_none() && key.get("digest").is_none());

    let (status, disabled) = server
        .call(
            reqwest::Method::POST,
            &format!("/keys/{id}/disable"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!((status, &disabled["status"]), (200, &json!("disabled")));
    assert_eq!(server.publish(&token).await, 401);
    let (status, enabled) = server
        .call(
            reqwest::Method::POST,
            &format!("/keys/{id}/enable"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!((status, &enabled["status"]), (200, &json!("active")));
    assert_eq!(server.publish(&token).await, 200);

    let (status, rotated) = server
        .call(
            reqwest::Method::POST,
            &format!("/keys/{id}/rotate"),
            Some("alice"),
            Some(json!({"overlap_seconds": 0})),
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let successor = rotated["token"].as_str().unwrap();
    assert_eq!(rotated["key"]["rotated_from"], id.as_str());
    assert_eq!(server.publish(successor).await, 200);

    let successor_id = rotated["key"]["id"].as_str().unwrap();
    let (status, revoked) = server
        .call(
            reqwest::Method::POST,
            &format!("/keys/{successor_id}/revoke"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!((status, &revoked["status"]), (200, &json!("revoked")));
    assert_eq!(server.publish(successor).await, 401);
}

#[tokio::test]
async fn listing_filters_by_name_and_pages_with_a_cursor() {
    let server = start().await;
    server.create("carol", "deploy one", &["publish"]).await;
    server.create("carol", "deploy two", &["files"]).await;
    server.create("carol", "backup", &["files"]).await;
    server.create("dave", "deploy", &["files"]).await;

    let (status, page) = server
        .call(
            reqwest::Method::GET,
            "/keys?name=DEPLOY",
            Some("carol"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["deploy two", "deploy one"],
        "newest first, carol's only"
    );
    assert!(page["next"].is_null());

    let (_, first) = server
        .call(reqwest::Method::GET, "/keys?limit=2", Some("carol"), None)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next"].as_str().expect("a next page");
    let (_, second) = server
        .call(
            reqwest::Method::GET,
            &format!("/keys?limit=2&cursor={cursor}"),
            Some("carol"),
            None,
        )
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null());
}

#[tokio::test]
async fn refusals_are_keywards_typed_and_audited() {
    let server = start().await;
    let (token, id) = server.create("erin", "mine", &["publish"]).await;

    // An unknown scope: 422 naming the catalog's refusal, not "not held".
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/keys",
            Some("erin"),
            Some(json!({"kind": "mm_pat", "name": "x", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &json!("outside_catalog")),
        "{body}"
    );

    // Someone else's key.
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            &format!("/keys/{id}/revoke"),
            Some("mallory"),
            None,
        )
        .await;
    assert!(status == 403 || status == 404, "{status}");
    assert_eq!(server.publish(&token).await, 200, "still live");

    // A token calling a management route: refused by keyward, and audited.
    let (status, body) = server
        .client
        .post(format!("{}/manage/keys/{id}/revoke", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map(|s| (s, ()))
        .unwrap();
    assert_eq!(status, 403, "{body:?}");
    assert_eq!(server.publish(&token).await, 200, "still live");
    let events = server
        .keyward
        .audit_events(
            &Actor::operator("test"),
            AuditQuery::newest(50).owner(&Owner::new("user:erin").unwrap()),
        )
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.actor.starts_with("token:")
            && matches!(e.outcome, AuditOutcome::Refused(_))),
        "the token's attempt is in the audit log: {events:#?}"
    );

    // Nobody at all.
    let (status, body) = server.call(reqwest::Method::GET, "/keys", None, None).await;
    assert_eq!((status, &body["error"]), (401, &json!("missing_token")));

    // Bodies that are not what the route reads.
    for bad in [
        json!({"kind": "mm_pat"}),
        json!({"kind": "mm_pat", "name": "x", "color": "red"}),
        json!({"kind": "mm_pat", "name": "x", "expires": "6 weeks"}),
        json!({"kind": "mm_pat", "name": "x", "scopes": ["a b"]}),
        json!([1, 2, 3]),
    ] {
        let (status, body) = server
            .call(
                reqwest::Method::POST,
                "/keys",
                Some("erin"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(
            (status, &body["error"]),
            (422, &json!("invalid_body")),
            "{bad}"
        );
    }
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/keys/not%20an%20id",
            Some("erin"),
            None,
        )
        .await;
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
    let (status, body) = server
        .call(reqwest::Method::GET, "/keys?limit=many", Some("erin"), None)
        .await;
    assert_eq!((status, &body["error"]), (422, &json!("invalid_body")));
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            &format!("/keys/{id}/rotate"),
            Some("erin"),
            Some(json!({"overlap_seconds": 99_999_999_u64})),
        )
        .await;
    assert_eq!((status, &body["error"]), (422, &json!("invalid_input")));
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            &format!("/keys/{id}/rotate"),
            Some("erin"),
            Some(json!({"overlap": "1 day"})),
        )
        .await;
    assert_eq!((status, &body["error"]), (422, &json!("invalid_body")));
}
