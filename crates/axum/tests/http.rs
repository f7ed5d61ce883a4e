//! Every answer of a protected route over real HTTP: a server on
//! `127.0.0.1:0`, a real client, each kind of bad credential, and a store
//! that goes down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::routing::{get, post};
use keyward_axum::{ApiError, Auth, Verified};
use keyward_core::store::{KeyStore, StoreWrapper, VerifyRecord, Wrapped, async_trait};
use keyward_core::{
    Actor, Error, IssueRequest, KeyId, Keyward, Owner, PermissionSet, TokenKind, require,
};
use keyward_memory::MemoryStore;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Fails every verify read while `down` is set.
#[derive(Debug, Default)]
struct Outage {
    down: AtomicBool,
}

#[async_trait]
impl StoreWrapper for Outage {
    async fn verify_key(
        &self,
        inner: &dyn KeyStore,
        id: &KeyId,
    ) -> Result<Option<VerifyRecord>, Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::backend("test", "the store is down"));
        }
        inner.verify_key(id).await
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
    keyward: Keyward,
    store: Arc<Wrapped<Outage>>,
}

async fn publish(Verified(key): Verified) -> String {
    format!("published by {}", key.key_id())
}

async fn whoami(key: Option<Verified>) -> String {
    key.map_or_else(|| "nobody".to_owned(), |Verified(k)| k.key_id().to_string())
}

async fn missing() -> Result<String, ApiError> {
    Err(ApiError(Error::NotFound))
}

async fn start() -> Server {
    let store = Arc::new(Wrapped::new(
        Arc::new(MemoryStore::new()),
        Outage::default(),
    ));
    let keyward = Keyward::builder_arc(Arc::clone(&store) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("mm_pat").unwrap())
        .build()
        .unwrap();
    let auth = Auth::new(keyward.clone()).realm("example");
    let app = Router::new()
        .route(
            "/api/publish",
            post(publish).route_layer(auth.require(require!("publish"))),
        )
        .route(
            "/api/invoice",
            get(publish).route_layer(auth.require(require!("billing.read"))),
        )
        .route("/open/whoami", get(whoami))
        .route("/open/missing", get(missing));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base,
        client: reqwest::Client::new(),
        keyward,
        store,
    }
}

impl Server {
    async fn issue(&self, scopes: &[&str]) -> (String, KeyId) {
        let request = IssueRequest::new("mm_pat", Owner::new("user:alice").unwrap(), "test")
            .scopes(PermissionSet::parse(scopes).unwrap());
        let issued = self
            .keyward
            .issue(&Actor::operator("http-test"), request)
            .await
            .unwrap();
        (issued.token.expose_secret().to_owned(), issued.key.id)
    }

    async fn publish_with(&self, headers: &[&[u8]]) -> Answer {
        let mut request = self.client.post(format!("{}/api/publish", self.base));
        for value in headers {
            request = request.header(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        }
        Answer::of(request.send().await.unwrap()).await
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    challenge: Option<String>,
    cache_control: Option<String>,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Self {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (challenge, cache_control, retry_after, content_type) = (
            header("www-authenticate"),
            header("cache-control"),
            header("retry-after"),
            header("content-type"),
        );
        Self {
            status: response.status().as_u16(),
            challenge,
            cache_control,
            retry_after,
            content_type,
            body: response.text().await.unwrap(),
        }
    }

    fn error(&self) -> String {
        let body: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        body["error"].as_str().unwrap().to_owned()
    }

    /// A refusal: JSON, never stored.
    fn assert_refusal(&self, status: u16, challenge: &str, error: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.challenge.as_deref(), Some(challenge), "{self:?}");
        assert_eq!(self.cache_control.as_deref(), Some("no-store"), "{self:?}");
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "{self:?}"
        );
        assert_eq!(self.error(), error, "{self:?}");
    }
}

const BARE: &str = r#"Bearer realm="example""#;
const INVALID_TOKEN: &str = r#"Bearer realm="example", error="invalid_token", error_description="The token is malformed, unknown, expired or revoked.""#;
const INVALID_REQUEST: &str = r#"Bearer realm="example", error="invalid_request", error_description="The Authorization header must be one header holding `Bearer <token>`.""#;

#[tokio::test]
async fn a_request_without_bearer_credentials_gets_a_bare_challenge() {
    let server = start().await;
    server
        .publish_with(&[])
        .await
        .assert_refusal(401, BARE, "missing_token");
    server
        .publish_with(&[b"Basic dXNlcjpwYXNz"])
        .await
        .assert_refusal(401, BARE, "missing_token");
}

#[tokio::test]
async fn a_malformed_header_is_a_bad_request() {
    let server = start().await;
    let (token, _) = server.issue(&["publish"]).await;
    let two_tokens = format!("Bearer {token} {token}");
    let bearer = format!("Bearer {token}");
    for headers in [
        vec![b"Bearer".as_slice()],
        vec![b"Bearer   ".as_slice()],
        vec![two_tokens.as_bytes()],
        vec![bearer.as_bytes(), bearer.as_bytes()],
        vec![b"Bearer \xff\xfe".as_slice()],
    ] {
        server
            .publish_with(&headers)
            .await
            .assert_refusal(400, INVALID_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn every_bad_token_gets_one_answer() {
    let server = start().await;
    let (token, id) = server.issue(&["publish"]).await;
    let (revoked, revoked_id) = server.issue(&["publish"]).await;
    let (disabled, disabled_id) = server.issue(&["publish"]).await;
    let operator = Actor::operator("http-test");
    server.keyward.revoke(&operator, &revoked_id).await.unwrap();
    server
        .keyward
        .disable(&operator, &disabled_id)
        .await
        .unwrap();

    let mut bad_checksum = token.clone().into_bytes();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let bad_checksum = String::from_utf8(bad_checksum).unwrap();
    // Another key's secret under this key's id (so its checksum no longer
    // matches: a forged token; a well-formed wrong secret gets the same
    // answer, as keyward-core's tests show).
    let forged = {
        let format =
            keyward_core::token::TokenFormat::new([TokenKind::new("mm_pat").unwrap()]).unwrap();
        let other = format.parse(&revoked).unwrap();
        let mine = format.parse(&token).unwrap();
        assert_ne!(other.key_id(), mine.key_id());
        revoked.replacen(other.key_id(), mine.key_id(), 1)
    };
    let huge = format!("Bearer {}", "a".repeat(1 << 20));
    let tokens = [
        "not-a-token".to_owned(),
        bad_checksum,
        forged,
        revoked,
        disabled,
        "x".repeat(128),
    ];
    for bad in &tokens {
        let header = format!("Bearer {bad}");
        server
            .publish_with(&[header.as_bytes()])
            .await
            .assert_refusal(401, INVALID_TOKEN, "invalid_token");
    }
    // A header of a megabyte is refused whole (by the server's header
    // limit, or as a token too long), never served.
    let answer = server.publish_with(&[huge.as_bytes()]).await;
    assert!(matches!(answer.status, 401 | 431), "{answer:?}");

    // And the good token still works, naming its key.
    let header = format!("Bearer {token}");
    let ok = server.publish_with(&[header.as_bytes()]).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body, format!("published by {id}"));
}

#[tokio::test]
async fn a_token_lacking_the_scope_is_forbidden_and_told_what_is_missing() {
    let server = start().await;
    let (token, _) = server.issue(&["publish"]).await;
    let answer = Answer::of(
        server
            .client
            .get(format!("{}/api/invoice", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_refusal(
        403,
        r#"Bearer realm="example", error="insufficient_scope", error_description="The token lacks a permission this request needs.", scope="billing.read""#,
        "insufficient_scope",
    );
}

#[tokio::test]
async fn a_store_outage_is_503_with_retry_after_never_401() {
    let server = start().await;
    let (token, _) = server.issue(&["publish"]).await;
    server.store.down.store(true, Ordering::SeqCst);
    let header = format!("Bearer {token}");
    let answer = server.publish_with(&[header.as_bytes()]).await;
    answer.assert_refusal(503, BARE, "temporarily_unavailable");
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    server.store.down.store(false, Ordering::SeqCst);
    assert_eq!(server.publish_with(&[header.as_bytes()]).await.status, 200);
}

#[tokio::test]
async fn unknown_paths_stay_404_and_open_routes_see_no_key() {
    let server = start().await;
    let (token, _) = server.issue(&["publish"]).await;
    let unknown = server
        .client
        .get(format!("{}/api/nothing-here", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let open = server
        .client
        .get(format!("{}/open/whoami", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(open.text().await.unwrap(), "nobody");
}

#[tokio::test]
async fn a_management_error_answers_its_status_and_stable_code() {
    let server = start().await;
    let answer = Answer::of(
        server
            .client
            .get(format!("{}/open/missing", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.error(), "not_found");
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
}

#[tokio::test]
async fn a_host_can_answer_refusals_in_its_own_body_keeping_keywards_headers() {
    let keyward = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("mm_pat").unwrap())
        .build()
        .unwrap();
    let auth = Auth::new(keyward).refusal_body(|answer| {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": answer.error,
            "status": answer.status,
        });
        ("application/problem+json", body.to_string())
    });
    let app = Router::new().route(
        "/api/publish",
        post(publish).route_layer(auth.require(require!("publish"))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let response = reqwest::Client::new()
        .post(format!("{base}/api/publish"))
        .bearer_auth("mm_pat_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["title"], "invalid_token");
    assert_eq!(body["status"], 401);
}
