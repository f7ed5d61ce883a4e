//! With the `metrics` feature, every verify outcome is counted as
//! `keyward_verify_total{outcome}` through the `metrics` facade.
#![cfg(feature = "metrics")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a failed setup should stop it loudly"
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header::AUTHORIZATION};
use axum::routing::post;
use keyward_axum::{Auth, Verified};
use keyward_core::{Actor, IssueRequest, Keyward, Owner, PermissionSet, TokenKind, require};
use keyward_memory::MemoryStore;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower::Service;

/// Counters by name and labels.
#[derive(Default)]
struct Counts(Mutex<BTreeMap<String, Arc<Count>>>);

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let count = Arc::clone(self.0.lock().unwrap().entry(name).or_default());
        Counter::from_arc(count)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn verify_outcomes_are_counted() {
    let counts = Counts::default();
    let _guard = metrics::set_default_local_recorder(&counts);
    let keyward = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("mm_pat").unwrap())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("metrics"),
            IssueRequest::new("mm_pat", Owner::new("user:m").unwrap(), "ci")
                .scopes(PermissionSet::parse(["publish"]).unwrap()),
        )
        .await
        .unwrap();
    let auth = Auth::new(keyward);
    let mut app = Router::new().route(
        "/api/publish",
        post(|Verified(_): Verified| async { "ok" }).route_layer(auth.require(require!("publish"))),
    );
    let bearer = format!("Bearer {}", issued.token.expose_secret());
    for header in [
        Some(bearer.as_str()),
        Some(bearer.as_str()),
        None,
        Some("Bearer mm_pat_x"),
    ] {
        let mut request = Request::post("/api/publish").body(Body::empty()).unwrap();
        if let Some(header) = header {
            request
                .headers_mut()
                .insert(AUTHORIZATION, header.parse().unwrap());
        }
        app.call(request).await.unwrap();
    }
    let seen: BTreeMap<String, u64> = counts
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(name, count)| (name.clone(), count.0.load(Ordering::SeqCst)))
        .collect();
    assert_eq!(
        seen.get("keyward_verify_total{outcome=verified}"),
        Some(&2),
        "{seen:?}"
    );
    assert_eq!(
        seen.get("keyward_verify_total{outcome=bad_header}"),
        Some(&1),
        "{seen:?}"
    );
    assert_eq!(
        seen.get("keyward_verify_total{outcome=malformed}"),
        Some(&1),
        "{seen:?}"
    );
}
