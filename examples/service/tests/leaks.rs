//! The example service's leak receiver over real HTTP: a token created on
//! the dashboard, reported by "GitHub" (a P-256 key of the test's own in
//! the key list), is labelled a true positive and refused from then on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

use base64ct::{Base64, Encoding};
use keyward::stores::SqliteStore;
use keyward::{Actor, IssueRequest, Keyward, Owner, PermissionSet};
use keyward_axum::leaks::{FetchError, KeyListFetcher};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};

struct TestGitHub(String);

impl KeyListFetcher for TestGitHub {
    async fn fetch(&self) -> Result<String, FetchError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn a_token_github_reports_is_revoked_and_refused_from_then_on() {
    let github = SigningKey::from_slice(&[3; 32]).unwrap();
    let pem = github
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let list = json!({"public_keys": [{"key_identifier": "gh1", "key": pem, "is_current": true}]});
    let keyward = Keyward::builder(SqliteStore::open_in_memory().unwrap())
        .kind(service::kind().unwrap())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("test"),
            IssueRequest::new("mm_pat", Owner::new("user:alice").unwrap(), "ci")
                .scopes(PermissionSet::parse(["publish"]).unwrap()),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = service::app(keyward, TestGitHub(list.to_string()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let publish = || {
        client
            .post(format!("{base}/api/publish"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(publish().await.unwrap().status(), 200);

    let body = json!([{"token": token, "type": "mm_pat", "url": "https://github.com/a/b/blob/1/.env", "source": "content"}]).to_string();
    let signature: Signature = github.sign(body.as_bytes());
    let answer = client
        .post(format!("{base}/leaks/github"))
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", "gh1")
        .header(
            "Github-Public-Key-Signature",
            Base64::encode_string(signature.to_der().as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let feedback: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(feedback[0]["label"], "true_positive");
    assert_eq!(publish().await.unwrap().status(), 401, "revoked");

    let unsigned = client
        .post(format!("{base}/leaks/github"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
}
