//! What keyward-axum logs: one line per verify outcome and per management
//! call, with the key id, kind and outcome; never the token or its secret.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header::AUTHORIZATION};
use axum::routing::post;
use keyward_axum::{Auth, TokensOnly, Verified};
use keyward_core::{Actor, IssueRequest, Keyward, Owner, PermissionSet, TokenKind, require};
use keyward_memory::MemoryStore;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tower::Service;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records every event's fields as `name=value` text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!("{} ", event.metadata().target()));
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

async fn send(app: &mut Router, path: &str, token: Option<&str>) -> u16 {
    let mut request = Request::post(path).body(Body::empty()).unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    }
    app.call(request).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn outcomes_are_logged_with_the_key_id_and_never_the_secret() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let keyward = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("mm_pat").unwrap())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("logs"),
            IssueRequest::new("mm_pat", Owner::new("user:l").unwrap(), "ci")
                .scopes(PermissionSet::parse(["publish"]).unwrap()),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let id = issued.key.id.to_string();
    let auth = Auth::new(keyward);
    let mut app = Router::new()
        .route(
            "/api/publish",
            post(|Verified(_): Verified| async { "ok" })
                .route_layer(auth.require(require!("publish"))),
        )
        .route(
            "/api/files",
            post(|Verified(_): Verified| async { "ok" })
                .route_layer(auth.require(require!("files"))),
        )
        .nest("/manage", auth.management(TokensOnly));

    assert_eq!(send(&mut app, "/api/publish", Some(&token)).await, 200);
    assert_eq!(send(&mut app, "/api/files", Some(&token)).await, 403);
    assert_eq!(send(&mut app, "/api/publish", None).await, 401);
    let revoke = format!("/manage/keys/{id}/revoke");
    assert_eq!(send(&mut app, &revoke, Some(&token)).await, 403);

    let lines = capture.0.lock().unwrap().clone();
    let keyward_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with("keyward ")).collect();
    let has = |needles: &[&str]| {
        keyward_lines
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    };
    assert!(
        has(&["outcome=\"verified\"", &id, "kind=\"mm_pat\""]),
        "{keyward_lines:#?}"
    );
    assert!(
        has(&["outcome=\"insufficient_permissions\"", &id, "status=403"]),
        "{keyward_lines:#?}"
    );
    assert!(
        has(&["outcome=\"bad_header\"", "status=401"]),
        "{keyward_lines:#?}"
    );
    assert!(
        has(&[
            "action=\"revoke\"",
            &id,
            "outcome=\"not_authorized\"",
            "actor=token:"
        ]),
        "{keyward_lines:#?}"
    );
    // The secret is the token after its prefix and key id.
    let secret = &token["mm_pat_".len() + id.len()..];
    for line in &lines {
        assert!(!line.contains(secret), "a secret in a log line: {line}");
        assert!(!line.contains(&token), "a token in a log line: {line}");
    }
}
