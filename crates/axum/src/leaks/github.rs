//! GitHub's secret scanning partner program: a signed POST of the tokens
//! GitHub found, answered with a label for each.

use super::{Reported, judge, read_body, refused, reported, unavailable};
use crate::Auth;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64ct::{Base64, Encoding};
use keyward_core::leak::LeakVerdict;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Where GitHub publishes the keys it signs reports with.
#[cfg(feature = "github-fetch")]
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

/// The least time between two fetches of the key list caused by reports
/// (a key the list does not hold, or a list never fetched because GitHub
/// failed), unless configured otherwise: a stream of forged identifiers,
/// or of reports during GitHub's outage, costs GitHub one request a minute
/// at most (two, for a failed fetch tried once more).
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The header naming the key a report is signed with.
const KEY_IDENTIFIER: &str = "github-public-key-identifier";
/// The header holding the signature (base64 of an ASN.1 DER ECDSA P-256
/// signature over the raw body, SHA-256).
const KEY_SIGNATURE: &str = "github-public-key-signature";
/// The longest header value read.
const MAX_HEADER_LEN: usize = 1024;

/// Fetching the key list failed (its text says why, for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError(pub String);

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fetching GitHub's secret scanning keys failed: {}",
            self.0
        )
    }
}

impl std::error::Error for FetchError {}

/// Where the receiver gets GitHub's published key list: the JSON document
/// at [`GITHUB_KEYS_URL`] (`{"public_keys": [{"key_identifier", "key",
/// "is_current"}]}`). [`HttpKeyList`] (feature `github-fetch`) fetches it
/// over HTTPS; tests and hosts with their own HTTP client implement this.
pub trait KeyListFetcher: Send + Sync + 'static {
    /// The key list document.
    fn fetch(&self) -> impl Future<Output = Result<String, FetchError>> + Send;
}

/// Fetches GitHub's key list over HTTPS with reqwest (feature
/// `github-fetch`), with a 10-second timeout.
#[cfg(feature = "github-fetch")]
#[derive(Debug, Clone)]
pub struct HttpKeyList {
    client: reqwest::Client,
    url: String,
}

#[cfg(feature = "github-fetch")]
impl HttpKeyList {
    /// Fetches from [`GITHUB_KEYS_URL`].
    pub fn github() -> Result<Self, FetchError> {
        Self::from_url(GITHUB_KEYS_URL)
    }

    /// Fetches from `url` (GitHub Enterprise Server publishes its own).
    pub fn from_url(url: &str) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("keyward-axum/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError(e.to_string()))?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }
}

#[cfg(feature = "github-fetch")]
impl KeyListFetcher for HttpKeyList {
    async fn fetch(&self) -> Result<String, FetchError> {
        let response = self
            .client
            .get(&self.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| FetchError(e.to_string()))?
            .error_for_status()
            .map_err(|e| FetchError(e.to_string()))?;
        response.text().await.map_err(|e| FetchError(e.to_string()))
    }
}

/// The receiver for GitHub's secret scanning partner program: mount
/// [`GitHubReceiver::router`] where you told GitHub to send reports.
///
/// Each report's signature is checked over the raw body before anything
/// else is read, with the key its `Github-Public-Key-Identifier` names,
/// from GitHub's published list: every listed key is accepted (not only
/// the one marked current), so a key rotation never bounces a delivery.
/// The list is fetched on the first report and kept; a report naming a key
/// the list does not hold makes one refetch (at most one every
/// [`MIN_REFETCH_INTERVAL`]). The answer labels every reported token
/// `true_positive` or `false_positive`, naming it by the SHA-256 of the
/// token, never the token.
pub struct GitHubReceiver<F> {
    auth: Auth,
    fetcher: F,
    keys: RwLock<KeyList>,
    /// One fetch at a time; a report waiting on it then reads its result.
    fetching: tokio::sync::Mutex<()>,
    min_refetch_interval: Duration,
}

impl<F> fmt::Debug for GitHubReceiver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("GitHubReceiver")
            .field("keys", &keys.keys.len())
            .field("min_refetch_interval", &self.min_refetch_interval)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct KeyList {
    keys: HashMap<String, VerifyingKey>,
    /// When the list was last fetched (successfully).
    fetched_at: Option<Instant>,
    /// When a fetch was last tried, for the refetch interval.
    tried_at: Option<Instant>,
}

/// GitHub's published key list.
#[derive(Deserialize)]
struct PublishedKeys {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

/// One token of a report, as GitHub sends it.
#[derive(Deserialize)]
struct GitHubToken {
    token: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

/// One label of the answer.
#[derive(Serialize)]
struct Feedback {
    token_hash: String,
    token_type: String,
    label: &'static str,
}

/// Why a signature was not accepted.
enum SignatureProblem {
    Missing,
    Malformed,
    UnknownKey,
    KeysUnavailable(FetchError),
    Invalid,
}

impl<F: KeyListFetcher> GitHubReceiver<F> {
    /// A receiver revoking through `auth`'s service, with keys from
    /// `fetcher`.
    pub fn new(auth: &Auth, fetcher: F) -> Self {
        Self {
            auth: auth.clone(),
            fetcher,
            keys: RwLock::new(KeyList::default()),
            fetching: tokio::sync::Mutex::new(()),
            min_refetch_interval: MIN_REFETCH_INTERVAL,
        }
    }

    /// The least time between two refetches for unknown key identifiers
    /// (default [`MIN_REFETCH_INTERVAL`]).
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// The route: `POST /`, to `nest` where GitHub sends reports.
    pub fn router(self) -> axum::Router {
        axum::Router::new()
            .route("/", post(receive::<F>))
            .with_state(Arc::new(self))
    }

    /// The key named `id`: from the list held, or after one (re)fetch.
    async fn key(&self, id: &str) -> Result<VerifyingKey, SignatureProblem> {
        if let Some(key) = self.held(id) {
            return Ok(key);
        }
        let _one_fetch = self.fetching.lock().await;
        // Fetched by another report while this one waited?
        if let Some(key) = self.held(id) {
            return Ok(key);
        }
        let (fetched_before, may_refetch) = {
            let list = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            let may = list
                .tried_at
                .is_none_or(|at| at.elapsed() >= self.min_refetch_interval);
            (list.fetched_at.is_some(), may)
        };
        if !may_refetch {
            // Fetched (or tried) within the interval: a forged identifier,
            // or a flood during GitHub's outage, fetches nothing more.
            return Err(if fetched_before {
                SignatureProblem::UnknownKey
            } else {
                SignatureProblem::KeysUnavailable(FetchError(
                    "the last fetch failed moments ago; not tried again yet".to_owned(),
                ))
            });
        }
        // A failed first fetch is tried once more straight away.
        let mut fetched = self.fetch_list().await;
        if fetched.is_err() && !fetched_before {
            fetched = self.fetch_list().await;
        }
        if let Err(e) = fetched {
            return Err(SignatureProblem::KeysUnavailable(e));
        }
        self.held(id).ok_or(SignatureProblem::UnknownKey)
    }

    fn held(&self, id: &str) -> Option<VerifyingKey> {
        let list = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        list.keys.get(id).copied()
    }

    /// Fetches and parses the list; keys that do not parse are left out
    /// (and logged), the rest replace the list held.
    async fn fetch_list(&self) -> Result<(), FetchError> {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .tried_at = Some(Instant::now());
        let text = self.fetcher.fetch().await?;
        let published: PublishedKeys = serde_json::from_str(&text)
            .map_err(|e| FetchError(format!("the key list is not the documented JSON: {e}")))?;
        let mut keys = HashMap::new();
        for entry in published.public_keys {
            match p256::PublicKey::from_public_key_pem(&entry.key) {
                Ok(key) => {
                    keys.insert(entry.key_identifier, VerifyingKey::from(key));
                }
                Err(_) => tracing::warn!(
                    target: "keyward",
                    key_identifier = entry.key_identifier.as_str(),
                    "a key in GitHub's list is not a P-256 public key; left out"
                ),
            }
        }
        let mut list = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        list.keys = keys;
        list.fetched_at = Some(Instant::now());
        Ok(())
    }

    /// Checks the signature headers against `body`.
    async fn check_signature(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureProblem> {
        let header = |name: &str| -> Result<&str, SignatureProblem> {
            let mut values = headers.get_all(name).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                return Err(SignatureProblem::Missing);
            };
            let text = value.to_str().map_err(|_| SignatureProblem::Malformed)?;
            if text.is_empty() || text.len() > MAX_HEADER_LEN {
                return Err(SignatureProblem::Malformed);
            }
            Ok(text.trim())
        };
        let id = header(KEY_IDENTIFIER)?;
        let signature = header(KEY_SIGNATURE)?;
        let der = Base64::decode_vec(signature).map_err(|_| SignatureProblem::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| SignatureProblem::Malformed)?;
        let key = self.key(id).await?;
        key.verify(body, &signature)
            .map_err(|_| SignatureProblem::Invalid)
    }
}

async fn receive<F: KeyListFetcher>(
    State(receiver): State<Arc<GitHubReceiver<F>>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(problem) = receiver.check_signature(&parts.headers, &body).await {
        return match problem {
            SignatureProblem::Missing => refused(
                StatusCode::BAD_REQUEST,
                "missing_signature",
                "a report needs one Github-Public-Key-Identifier and one Github-Public-Key-Signature header",
            ),
            SignatureProblem::Malformed => refused(
                StatusCode::BAD_REQUEST,
                "malformed_signature",
                "the signature headers are not a key identifier and a base64 DER ECDSA signature",
            ),
            SignatureProblem::UnknownKey => refused(
                StatusCode::UNAUTHORIZED,
                "unknown_key",
                "the report is signed with a key GitHub does not list",
            ),
            SignatureProblem::Invalid => refused(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "the signature does not match the report",
            ),
            SignatureProblem::KeysUnavailable(e) => {
                tracing::warn!(target: "keyward", error = %e, "GitHub's key list is unavailable");
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "keys_unavailable",
                    "GitHub's key list could not be fetched; send the report again",
                )
            }
        };
    }
    let tokens: Vec<GitHubToken> = match serde_json::from_slice(&body) {
        Ok(tokens) => tokens,
        Err(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "malformed_report",
                "a report is a JSON array of {token, type, url, source}",
            );
        }
    };
    let reported = match reported(tokens, |t| Reported {
        token: t.token,
        kind: t.kind,
        url: t.url,
        source: t.source.unwrap_or_default(),
    }) {
        Ok(reported) => reported,
        Err(response) => return response,
    };
    let named: Vec<(String, String)> = reported
        .iter()
        .map(|item| (hex_sha256(&item.token), item.kind.clone()))
        .collect();
    let verdicts = match judge(receiver.auth.keyward(), "github", reported).await {
        Ok(verdicts) => verdicts,
        Err(e) => return unavailable(&e),
    };
    let feedback: Vec<Feedback> = named
        .into_iter()
        .zip(&verdicts)
        .map(|((token_hash, token_type), verdict)| Feedback {
            token_hash,
            token_type,
            label: match verdict {
                LeakVerdict::Confirmed(_) => "true_positive",
                LeakVerdict::FalsePositive => "false_positive",
            },
        })
        .collect();
    Json(feedback).into_response()
}

/// The SHA-256 of `token`, in lowercase hex: how the answer names a token.
fn hex_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
