//! The JSON shapes a host answers with, as a dashboard or an API client
//! reads them: an issued key (its token shown once), key details, an audit
//! event. Field names and value forms are part of the API.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::string_slice,
    reason = "a test: a failed setup should stop it loudly"
)]

use keyward_core::audit::AuditQuery;
use keyward_core::{
    Actor, ExpiryPolicy, IssueRequest, Keyward, Lifetime, Owner, PermissionSet, TokenKind,
};
use keyward_memory::MemoryStore;
use serde_json::Value;

fn service() -> Keyward {
    Keyward::builder(MemoryStore::new())
        .kind(
            TokenKind::new("tak").unwrap().with_expiry(
                ExpiryPolicy::from_choices([Lifetime::Days(30), Lifetime::Never], Lifetime::Never)
                    .unwrap(),
            ),
        )
        .build()
        .unwrap()
}

fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|t| keyward_core::chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

#[tokio::test]
async fn an_issued_key_shows_its_token_once_and_its_details_without_the_digest() {
    let keyward = service();
    let operator = Actor::operator("serde-test");
    let owner = Owner::new("user:alice").unwrap();
    let request = IssueRequest::new("tak", owner.clone(), "CI \"deploy\"")
        .scopes(PermissionSet::parse(["deploy", "billing.*"]).unwrap())
        .metadata("team", "infra");
    let issued = keyward.issue(&operator, request).await.unwrap();
    let token = issued.token.expose_secret().to_owned();
    let id = issued.key.id.clone();

    let shown: Value = serde_json::to_value(issued.show_once()).unwrap();
    assert_eq!(shown["token"], token.as_str());
    let key = &shown["key"];
    assert_eq!(key["id"], id.as_str());
    assert_eq!(key["kind"], "tak");
    assert_eq!(key["owner"], "user:alice");
    assert_eq!(key["name"], "CI \"deploy\"");
    assert_eq!(key["status"], "active");
    assert_eq!(key["scopes"], serde_json::json!(["billing.*", "deploy"]));
    assert_eq!(key["metadata"], serde_json::json!({"team": "infra"}));
    assert_eq!(key["inherits_owner"], false);
    assert!(is_rfc3339(&key["created_at"]));
    for absent in [
        "expires_at",
        "last_used_at",
        "revoked_at",
        "rotated_from",
        "rotated_to",
    ] {
        assert!(key[absent].is_null(), "{absent}");
    }
    assert!(key.get("digest").is_none(), "no digest in a view");
    assert_eq!(key["preview"], format!("tak_{}…", &id.as_str()[..4]));

    // Details read later carry no token at all.
    let details = keyward.get(&operator, &id).await.unwrap();
    let text = serde_json::to_string(&details).unwrap();
    assert!(!text.contains(&token[4..]), "details never hold the secret");
    assert!(text.contains("\"status\":\"active\""));
}

#[tokio::test]
async fn an_audit_event_serializes_every_field() {
    let keyward = service();
    let operator = Actor::operator("serde-test");
    let owner = Owner::new("user:bob").unwrap();
    let issued = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", owner.clone(), "x").expires(Lifetime::Days(30)),
        )
        .await
        .unwrap();
    let events = keyward
        .audit_events(&operator, AuditQuery::newest(50).owner(&owner))
        .await
        .unwrap();
    let issue = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .find(|e| e["action"] == "issue")
        .expect("the issue event");
    assert_eq!(issue["actor"], "operator:serde-test");
    assert_eq!(issue["key_id"], issued.key.id.as_str());
    assert_eq!(issue["owner"], "user:bob");
    assert_eq!(issue["outcome"], "succeeded");
    assert!(is_rfc3339(&issue["at"]));
    assert!(issue["role"].is_null());
    let expires = serde_json::to_value(&issued.key).unwrap()["expires_at"].clone();
    assert!(is_rfc3339(&expires));
}
