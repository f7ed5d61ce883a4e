//! The leak receivers, in process: GitHub's signed reports (with a P-256
//! key of the test's own standing in for GitHub's) and GitLab's shared
//! secret; every refusal revokes nothing.
#![cfg(feature = "leaks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64ct::{Base64, Encoding};
use keyward_axum::Auth;
use keyward_axum::leaks::{FetchError, GitHubReceiver, GitLabReceiver, KeyListFetcher};
use keyward_core::audit::{AuditAction, AuditQuery};
use keyward_core::{Actor, IssueRequest, Keyward, Owner, Rejection, Requirement, TokenKind};
use keyward_memory::MemoryStore;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn pem(key: &SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

/// GitHub's key list as the test wants it, counting fetches, failing the
/// first `fail` of them.
#[derive(Clone, Default)]
struct Keys {
    list: Arc<Mutex<Vec<(String, String, bool)>>>,
    fetches: Arc<AtomicUsize>,
    fail: Arc<AtomicUsize>,
}

impl Keys {
    fn listing(keys: &[(&str, &SigningKey, bool)]) -> Self {
        let listed = Self::default();
        listed.set(keys);
        listed
    }

    fn set(&self, keys: &[(&str, &SigningKey, bool)]) {
        *self.list.lock().unwrap() = keys
            .iter()
            .map(|(id, key, current)| ((*id).to_owned(), pem(key), *current))
            .collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl KeyListFetcher for Keys {
    async fn fetch(&self) -> Result<String, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(FetchError("connection refused".to_owned()));
        }
        let keys: Vec<Value> = self
            .list
            .lock()
            .unwrap()
            .iter()
            .map(|(id, key, current)| json!({"key_identifier": id, "key": key, "is_current": current}))
            .collect();
        Ok(json!({ "public_keys": keys }).to_string())
    }
}

struct Service {
    keyward: Keyward,
    app: Router,
    live: String,
    live_id: keyward_core::KeyId,
    revoked: String,
}

async fn service(keys: Keys, interval: Duration) -> Service {
    let keyward = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("mm_pat").unwrap())
        .build()
        .unwrap();
    let admin = Actor::operator("test");
    let owner = Owner::new("user:alice").unwrap();
    let live = keyward
        .issue(&admin, IssueRequest::new("mm_pat", owner.clone(), "laptop"))
        .await
        .unwrap();
    let revoked = keyward
        .issue(&admin, IssueRequest::new("mm_pat", owner, "old"))
        .await
        .unwrap();
    keyward.revoke(&admin, &revoked.key.id).await.unwrap();
    let auth = Auth::new(keyward.clone());
    let app = Router::new()
        .nest(
            "/leaks/github",
            GitHubReceiver::new(&auth, keys)
                .min_refetch_interval(interval)
                .router(),
        )
        .nest(
            "/leaks/gitlab",
            GitLabReceiver::new(&auth, &"s".repeat(40))
                .unwrap()
                .router(),
        );
    Service {
        keyward,
        app,
        live: live.token.expose_secret().to_owned(),
        live_id: live.key.id.clone(),
        revoked: revoked.token.expose_secret().to_owned(),
    }
}

/// A well-formed `mm_pat` token no store has seen.
async fn foreign() -> String {
    let other = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("mm_pat").unwrap())
        .build()
        .unwrap();
    let issued = other
        .issue(
            &Actor::operator("other"),
            IssueRequest::new("mm_pat", Owner::new("user:bob").unwrap(), "x"),
        )
        .await
        .unwrap();
    issued.token.expose_secret().to_owned()
}

fn report(tokens: &[&str]) -> String {
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| json!({"token": t, "type": "mm_pat", "url": "https://github.com/o/r/blob/1/a.env", "source": "content"}))
        .collect();
    Value::Array(items).to_string()
}

fn signed(body: &str, id: &str, key: &SigningKey) -> Request<Body> {
    let signature: Signature = key.sign(body.as_bytes());
    Request::post("/leaks/github")
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", id)
        .header(
            "Github-Public-Key-Signature",
            Base64::encode_string(signature.to_der().as_bytes()),
        )
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, body)
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn revokes(keyward: &Keyward, id: &keyward_core::KeyId) -> Vec<String> {
    keyward
        .audit_events(
            &Actor::operator("audit"),
            AuditQuery::newest(100)
                .key_id(id)
                .action(AuditAction::Revoke),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.actor)
        .collect()
}

#[tokio::test]
async fn a_signed_report_revokes_our_live_tokens_and_labels_every_token() {
    let github = signing_key(7);
    let keys = Keys::listing(&[("k1", &github, true)]);
    let svc = service(keys.clone(), Duration::ZERO).await;
    let unknown = foreign().await;
    let mut bad_checksum = svc.live.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'a' { 'b' } else { 'a' });
    let other_prefix = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let tokens = [
        svc.live.as_str(),
        &svc.revoked,
        &unknown,
        &bad_checksum,
        other_prefix,
    ];
    let body = report(&tokens);

    let (status, feedback) = send(&svc.app, signed(&body, "k1", &github)).await;
    assert_eq!(status, StatusCode::OK, "{feedback}");
    let labels: Vec<&str> = feedback
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "true_positive",
            "true_positive",
            "false_positive",
            "false_positive",
            "false_positive"
        ]
    );
    for (item, token) in feedback.as_array().unwrap().iter().zip(tokens) {
        assert_eq!(item["token_hash"], sha256_hex(token));
        assert_eq!(item["token_type"], "mm_pat");
        assert!(
            !item.to_string().contains(token),
            "the raw token is never sent back"
        );
    }
    let refused = svc.keyward.verify(&svc.live, &Requirement::nothing()).await;
    assert!(matches!(refused, Err(Rejection::Revoked)), "{refused:?}");
    assert_eq!(
        revokes(&svc.keyward, &svc.live_id).await,
        ["operator:github"]
    );

    // A replay answers the same and revokes nothing more.
    let (status, again) = send(&svc.app, signed(&body, "k1", &github)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, feedback);
    assert_eq!(revokes(&svc.keyward, &svc.live_id).await.len(), 1);
    assert_eq!(keys.fetches(), 1, "the key list is fetched once and kept");
}

#[tokio::test]
async fn a_report_that_is_not_provably_githubs_revokes_nothing() {
    let github = signing_key(7);
    let stranger = signing_key(9);
    let keys = Keys::listing(&[("k1", &github, true)]);
    let svc = service(keys.clone(), Duration::ZERO).await;
    let body = report(&[&svc.live]);

    let mut tampered = signed(&body, "k1", &github);
    *tampered.body_mut() = Body::from(body.replace("content", "commit"));
    let (status, answer) = send(&svc.app, tampered).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature"))
    );

    let (status, answer) = send(&svc.app, signed(&body, "k1", &stranger)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature"))
    );

    let (status, answer) = send(&svc.app, signed(&body, "unlisted", &stranger)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unknown_key"))
    );

    let mut unsigned = signed(&body, "k1", &github);
    unsigned.headers_mut().remove("Github-Public-Key-Signature");
    let (status, answer) = send(&svc.app, unsigned).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_signature"))
    );

    let mut garbled = signed(&body, "k1", &github);
    garbled.headers_mut().insert(
        "Github-Public-Key-Signature",
        "not base64!".parse().unwrap(),
    );
    let (status, answer) = send(&svc.app, garbled).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_signature"))
    );

    let not_json = "[{\"token\": ";
    let (status, answer) = send(&svc.app, signed(not_json, "k1", &github)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_report"))
    );

    let mut doubled = signed(&body, "k1", &github);
    doubled
        .headers_mut()
        .append("Github-Public-Key-Identifier", "k1".parse().unwrap());
    let (status, answer) = send(&svc.app, doubled).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_signature")),
        "two identifiers are not one"
    );

    let many = report(&vec![svc.live.as_str(); 10_001]);
    let (status, answer) = send(&svc.app, signed(&many, "k1", &github)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_many_tokens"))
    );

    let huge = format!("[{}]", "\"x\",".repeat(1_200_000));
    let (status, answer) = send(&svc.app, signed(&huge, "k1", &github)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
    );

    svc.keyward
        .verify(&svc.live, &Requirement::nothing())
        .await
        .expect("nothing was revoked");
    assert!(revokes(&svc.keyward, &svc.live_id).await.is_empty());
}

#[tokio::test]
async fn a_rotated_key_is_found_with_exactly_one_refetch() {
    let old = signing_key(7);
    let new = signing_key(8);
    let keys = Keys::listing(&[("old", &old, true)]);
    let svc = service(keys.clone(), Duration::ZERO).await;
    let unknown = foreign().await;
    let body = report(&[&unknown]);
    let (status, _) = send(&svc.app, signed(&body, "old", &old)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys.fetches(), 1);

    // GitHub rotates: the new key is listed, not yet current; both work.
    keys.set(&[("old", &old, true), ("new", &new, false)]);
    let (status, _) = send(&svc.app, signed(&body, "new", &new)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys.fetches(),
        2,
        "one refetch for the identifier it did not know"
    );
    let (status, _) = send(&svc.app, signed(&body, "old", &old)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys.fetches(), 2, "a listed key needs no fetch");

    // An identifier the refetched list still does not know: one refetch, 401.
    let (status, answer) = send(&svc.app, signed(&body, "forged", &new)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unknown_key"))
    );
    assert_eq!(keys.fetches(), 3);
}

#[tokio::test]
async fn unknown_identifiers_refetch_at_most_once_an_interval() {
    let github = signing_key(7);
    let keys = Keys::listing(&[("k1", &github, true)]);
    let svc = service(keys.clone(), Duration::from_secs(3600)).await;
    let body = report(&[&foreign().await]);
    assert_eq!(
        send(&svc.app, signed(&body, "k1", &github)).await.0,
        StatusCode::OK
    );
    for n in 0..5 {
        let (status, _) = send(&svc.app, signed(&body, &format!("forged{n}"), &github)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        keys.fetches(),
        1,
        "forged identifiers cannot make the receiver hammer GitHub"
    );
}

#[tokio::test]
async fn a_failed_key_list_fetch_is_tried_once_more_then_answered_503() {
    let github = signing_key(7);
    let keys = Keys::listing(&[("k1", &github, true)]);
    keys.fail.store(1, Ordering::SeqCst);
    let svc = service(keys.clone(), Duration::ZERO).await;
    let body = report(&[&svc.live]);
    let (status, _) = send(&svc.app, signed(&body, "k1", &github)).await;
    assert_eq!(status, StatusCode::OK, "the second try fetched the list");
    assert_eq!(keys.fetches(), 2);

    let keys = Keys::listing(&[("k1", &github, true)]);
    keys.fail.store(usize::MAX, Ordering::SeqCst);
    let svc = service(keys.clone(), Duration::ZERO).await;
    let (status, answer) = send(&svc.app, signed(&report(&[&svc.live]), "k1", &github)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("keys_unavailable"))
    );
    assert_eq!(keys.fetches(), 2, "one fetch and exactly one refetch");
    svc.keyward
        .verify(&svc.live, &Requirement::nothing())
        .await
        .expect("nothing was revoked");
}

#[tokio::test]
async fn reports_during_a_key_list_outage_fetch_at_most_once_an_interval() {
    let github = signing_key(7);
    let keys = Keys::listing(&[("k1", &github, true)]);
    keys.fail.store(usize::MAX, Ordering::SeqCst);
    let svc = service(keys.clone(), Duration::from_secs(3600)).await;
    let body = report(&[&svc.live]);
    for _ in 0..5 {
        let (status, answer) = send(&svc.app, signed(&body, "k1", &github)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("keys_unavailable"))
        );
    }
    assert_eq!(
        keys.fetches(),
        2,
        "one fetch and one retry, then nothing until the interval ends"
    );
}

#[tokio::test]
async fn gitlab_reports_need_the_shared_secret() {
    let svc = service(Keys::default(), Duration::ZERO).await;
    let body = json!([{"type": "mm_pat", "token": svc.live, "location": "https://gitlab.example/a/-/blob/1/x.rb#L1"}]).to_string();
    let post = |secret: &str| {
        Request::post("/leaks/gitlab/v1/revoke_tokens")
            .header("authorization", secret)
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let (status, _) = send(&svc.app, post(&"x".repeat(40))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    svc.keyward
        .verify(&svc.live, &Requirement::nothing())
        .await
        .expect("a wrong secret revokes nothing");

    let (status, _) = send(&svc.app, post(&"s".repeat(40))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        revokes(&svc.keyward, &svc.live_id).await,
        ["operator:gitlab"]
    );
    let (status, _) = send(&svc.app, post(&format!("Bearer {}", "s".repeat(40)))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "idempotent");
    assert_eq!(revokes(&svc.keyward, &svc.live_id).await.len(), 1);

    // One object instead of an array, `url` instead of `location`.
    let other = svc
        .keyward
        .issue(
            &Actor::operator("test"),
            IssueRequest::new("mm_pat", Owner::new("user:alice").unwrap(), "single"),
        )
        .await
        .unwrap();
    let single = json!({"type": "mm_pat", "token": other.token.expose_secret(), "url": "https://gitlab.example/x"}).to_string();
    let request = Request::post("/leaks/gitlab/v1/revoke_tokens")
        .header("authorization", "s".repeat(40))
        .body(Body::from(single))
        .unwrap();
    assert_eq!(send(&svc.app, request).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        revokes(&svc.keyward, &other.key.id).await,
        ["operator:gitlab"]
    );

    let types = Request::get("/leaks/gitlab/v1/revocable_token_types")
        .header("authorization", "s".repeat(40))
        .body(Body::empty())
        .unwrap();
    let (status, answer) = send(&svc.app, types).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"types": ["mm_pat"]}))
    );

    assert!(GitLabReceiver::new(&Auth::new(svc.keyward.clone()), "short").is_err());
}
