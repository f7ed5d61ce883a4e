//! An HTTP fuzz pass: 100,000 requests with random `Authorization` bytes
//! and lengths (none, one or two headers; fragments of real tokens) through
//! the router in process. Every answer is a 200, 400, 401 or 403 with a
//! challenge; never a 500, never a panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header::AUTHORIZATION};
use axum::routing::post;
use keyward_axum::{Auth, Verified};
use keyward_core::{
    Actor, IssueRequest, Keyward, Owner, PermissionSet, TokenKind, cache::CacheConfig, require,
};
use keyward_memory::MemoryStore;
use tower::Service;

const REQUESTS: usize = 100_000;

/// SplitMix64: a fixed seed, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A header value: random bytes a header may hold (visible ASCII, space,
/// tab, and bytes ≥ 0x80), sometimes around a real or mangled token.
fn value(rng: &mut Rng, tokens: &[String]) -> HeaderValue {
    let mut bytes = Vec::new();
    match rng.below(6) {
        0 => bytes.extend_from_slice(b"Bearer "),
        1 => bytes.extend_from_slice(b"bearer\t"),
        2 => bytes.extend_from_slice(b"Basic "),
        _ => {}
    }
    if rng.below(3) == 0 {
        let token = tokens[rng.below(tokens.len())].as_bytes();
        let cut = rng.below(token.len() + 1);
        bytes.extend_from_slice(&token[..cut]);
        if rng.below(2) == 0 && !bytes.is_empty() {
            let at = rng.below(bytes.len());
            bytes[at] = b'!' + (rng.below(94) as u8);
        }
    }
    let len = [0, 1, 8, 47, 128, 129, 1000, 8000][rng.below(8)];
    for _ in 0..rng.below(len + 1) {
        let b = match rng.below(10) {
            0 => b' ',
            1 => b'\t',
            2 => 0x80 + rng.below(128) as u8,
            _ => b'!' + rng.below(94) as u8,
        };
        bytes.push(b);
    }
    HeaderValue::from_bytes(&bytes).unwrap()
}

#[tokio::test]
async fn random_authorization_headers_never_make_a_500_or_a_panic() {
    let keyward = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("mm_pat").unwrap())
        .verify_cache(CacheConfig::new())
        .build()
        .unwrap();
    let operator = Actor::operator("fuzz");
    let mut tokens = Vec::new();
    for scopes in [&["publish"][..], &["files"][..]] {
        let issued = keyward
            .issue(
                &operator,
                IssueRequest::new("mm_pat", Owner::new("user:f").unwrap(), "fuzz")
                    .scopes(PermissionSet::parse(scopes).unwrap()),
            )
            .await
            .unwrap();
        tokens.push(issued.token.expose_secret().to_owned());
    }
    let auth = Auth::new(keyward);
    let mut app = Router::new().route(
        "/api/publish",
        post(|Verified(_): Verified| async { "ok" }).route_layer(auth.require(require!("publish"))),
    );
    let mut rng = Rng(0x6b65_7977_6172_6421);
    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..REQUESTS {
        let mut request = Request::post("/api/publish").body(Body::empty()).unwrap();
        for _ in 0..[0, 1, 1, 1, 2][rng.below(5)] {
            let v = value(&mut rng, &tokens);
            request.headers_mut().append(AUTHORIZATION, v);
        }
        let response = app.call(request).await.unwrap();
        let status = response.status().as_u16();
        assert!(matches!(status, 200 | 400 | 401 | 403), "status {status}");
        if status != 200 {
            assert!(response.headers().contains_key("www-authenticate"));
        }
        *seen.entry(status).or_default() += 1;
    }
    // The pass reached every answer, so it exercised every path.
    for status in [200, 400, 401] {
        assert!(seen.get(&status).is_some_and(|n| *n > 0), "{seen:?}");
    }
}
