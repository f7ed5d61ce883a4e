//! The leak-report figure: one signed GitHub report of 1,000 live tokens
//! through `keyward-axum`'s receiver, in process (the router called
//! directly, no socket), signature checked, every token looked up,
//! compared and revoked, the feedback built. The keys are issued before
//! the clock starts; each report revokes keys of its own.

use axum::body::Body;
use axum::http::Request;
use base64ct::{Base64, Encoding};
use keyward_axum::Auth;
use keyward_axum::leaks::{FetchError, GitHubReceiver, KeyListFetcher};
use keyward_core::Keyward;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use tower::ServiceExt;

/// Tokens in the measured report.
pub const REPORT_TOKENS: usize = 1_000;

/// The key list the receiver trusts: one key of the bench's own.
#[derive(Debug, Clone)]
struct BenchKeys(String);

impl KeyListFetcher for BenchKeys {
    async fn fetch(&self) -> Result<String, FetchError> {
        Ok(self.0.clone())
    }
}

/// The receiver over a service, and the key that signs reports.
#[derive(Debug)]
pub struct LeakSetup {
    router: axum::Router,
    signing: SigningKey,
}

impl LeakSetup {
    /// A receiver revoking through `keyward`.
    pub fn new(keyward: &Keyward) -> Self {
        let signing = SigningKey::from_slice(&[7; 32]).expect("a P-256 key");
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a PEM key");
        let list = serde_json::json!({
            "public_keys": [{"key_identifier": "bench", "key": pem, "is_current": true}]
        });
        let router =
            GitHubReceiver::new(&Auth::new(keyward.clone()), BenchKeys(list.to_string())).router();
        Self { router, signing }
    }

    /// The signed request GitHub would send for `tokens`.
    pub fn request(&self, tokens: &[String]) -> Request<Body> {
        let items: Vec<serde_json::Value> = tokens
            .iter()
            .map(|token| {
                serde_json::json!({
                    "token": token,
                    "type": "bench",
                    "url": "https://github.com/bench/leaks/blob/0/config.env",
                    "source": "content"
                })
            })
            .collect();
        let body = serde_json::Value::Array(items).to_string();
        let signature: Signature = self.signing.sign(body.as_bytes());
        Request::post("/")
            .header("content-type", "application/json")
            .header("Github-Public-Key-Identifier", "bench")
            .header(
                "Github-Public-Key-Signature",
                Base64::encode_string(signature.to_der().as_bytes()),
            )
            .body(Body::from(body))
            .expect("a request")
    }

    /// Sends `request`; the number of tokens labelled `true_positive`.
    pub async fn send(&self, request: Request<Body>) -> usize {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200, "the report is accepted");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let labels: Vec<serde_json::Value> = serde_json::from_slice(&bytes).expect("feedback");
        labels
            .iter()
            .filter(|label| label["label"] == "true_positive")
            .count()
    }
}
