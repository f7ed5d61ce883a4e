//! The privilege escalations a security review found, each pinned by a
//! test named after what it protects, plus a property test over random
//! sequences of management calls by random actors.
//!
//! Every refusal test also checks that the refused call changed nothing
//! (the key is still active and not rotated, the role is as it was, no key
//! was added) and that exactly one refused audit event was appended.
//!
//! The scenario tests run on every store through [`crate::scenario_tests!`];
//! [`management_sequences_keep_the_invariants`] runs from
//! `tests/tests/authorization_properties.rs` on the memory store.
//!
//! One file per finding (`rotation.rs`, `roles.rs`, `kinds.rs`,
//! `plan_gate.rs`, `catalogs.rs`, `requirements.rs`, `enable.rs`) and one
//! for the property test (`properties.rs`); the helpers they share are here.

mod catalogs;
mod enable;
mod kinds;
mod plan_gate;
mod properties;
mod requirements;
mod roles;
mod rotation;

pub use catalogs::{
    a_catalog_bounds_every_token_of_its_kind, a_role_edited_past_the_catalog_never_widens_the_key,
};
pub use enable::enabling_needs_the_enable_permission;
pub use kinds::{
    a_narrowed_session_cannot_mint_a_pat_wider_than_itself,
    build_refuses_a_chain_of_managing_kinds, build_refuses_a_kind_that_manages_itself,
};
pub use plan_gate::{
    a_rotated_successor_never_outlives_the_current_expiry_policy,
    the_issue_hook_sees_the_whole_request, the_plan_gate_refuses_rotation_too,
};
pub use properties::{
    Call, Inherit, Pick, Sequence, Step, Who, management_sequences_keep_the_invariants,
};
pub use requirements::a_requirement_naming_kinds_refuses_other_kinds;
pub use roles::{
    editing_a_role_needs_both_old_and_new_permissions,
    replacing_or_deleting_a_role_needs_its_old_permissions, roles_are_namespaced_per_owner,
    tokens_never_edit_roles,
};
pub use rotation::{
    rotating_an_inheriting_pat_needs_its_ceiling,
    rotating_needs_the_keys_grant_for_a_management_token,
    rotating_needs_the_keys_grant_for_an_admin_session,
};

use crate::support::{Backend, perms};
use keyward_core::chrono::TimeDelta;
use keyward_core::testkit::ManualClock;
use keyward_core::{
    Actor, Error, IssuedKey, KeyDetails, KeyId, Keyward, ListRequest, Manages, Owner,
    PermissionSet, Requirement, RoleName, Status, TokenKind, audit::AuditAction,
    audit::AuditOutcome, audit::AuditQuery,
};

/// The management permissions of product C, and one to re-enable keys.
const MANAGEMENT: [&str; 6] = [
    "projects.view",
    "projects.manage",
    "api_keys.view",
    "api_keys.delete",
    "api_keys.create",
    "api_keys.enable",
];

/// `tak` API keys (no catalog), and `mgmt` management tokens managing them
/// (catalog: the management permissions).
fn workspace_kinds(backend: &Backend, clock: &ManualClock) -> Keyward {
    backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .kind(mgmt_kind())
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn mgmt_kind() -> TokenKind {
    TokenKind::new("mgmt")
        .unwrap()
        .with_catalog(perms(&MANAGEMENT))
        .unwrap()
        .with_manages(Manages {
            kind: "tak".to_owned(),
            create: "api_keys.create".parse().unwrap(),
            view: "api_keys.view".parse().unwrap(),
            revoke: "api_keys.delete".parse().unwrap(),
            enable: "api_keys.enable".parse().unwrap(),
        })
}

/// How many audit events the store holds (read as an operator).
async fn audit_count(keyward: &Keyward) -> usize {
    keyward
        .audit_events(&Actor::operator("audit-check"), AuditQuery::newest(1000))
        .await
        .unwrap()
        .len()
}

/// Exactly one event was appended since `before` events, and it records a
/// refused `action` by `actor`.
async fn assert_one_refusal_audited(
    keyward: &Keyward,
    before: usize,
    action: AuditAction,
    actor: &Actor,
) {
    let events = keyward
        .audit_events(&Actor::operator("audit-check"), AuditQuery::newest(1000))
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        before + 1,
        "exactly one event is appended for the refused {action}"
    );
    let newest = &events[0];
    assert_eq!(newest.action, action, "{newest:?}");
    assert_eq!(newest.actor, actor.label(), "{newest:?}");
    assert!(
        matches!(newest.outcome, AuditOutcome::Refused(_)),
        "{newest:?}"
    );
}

/// A key as an operator reads it.
async fn details(keyward: &Keyward, id: &KeyId) -> KeyDetails {
    keyward
        .get(&Actor::operator("check"), id)
        .await
        .expect("the key exists")
}

/// Every key of `owner`, as an operator lists them.
async fn keys_of(keyward: &Keyward, owner: &Owner) -> Vec<KeyDetails> {
    keyward
        .list(
            &Actor::operator("check"),
            ListRequest::new(owner.clone()).limit(1000),
        )
        .await
        .unwrap()
        .items
}

/// The key is exactly as it was: same state, expiry, grants, not rotated.
async fn assert_unchanged(keyward: &Keyward, before: &KeyDetails) {
    let now = details(keyward, &before.id).await;
    assert_eq!(now.status, before.status, "status of {}", before.name);
    assert_eq!(
        now.expires_at, before.expires_at,
        "expiry of {}",
        before.name
    );
    assert_eq!(
        now.rotated_to, before.rotated_to,
        "rotation of {}",
        before.name
    );
    assert_eq!(now.scopes, before.scopes);
    assert_eq!(now.roles, before.roles);
    assert_eq!(now.permissions, before.permissions);
    assert_eq!(now.revoked_at, before.revoked_at);
}

/// Asserts `result` is [`Error::NotAuthorized`].
fn refused<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::NotAuthorized { .. }) => {}
        other => panic!("{what}: expected NotAuthorized, got {other:?}"),
    }
}

async fn as_token(keyward: &Keyward, issued: &IssuedKey) -> Actor {
    Actor::Token(
        keyward
            .verify(issued.token.expose_secret(), &Requirement::nothing())
            .await
            .expect("the token verifies"),
    )
}

/// The role `name` of `owner` as an operator reads it.
async fn role_of(keyward: &Keyward, owner: &Owner, name: &RoleName) -> Option<PermissionSet> {
    keyward
        .roles(&Actor::operator("check"), owner, std::slice::from_ref(name))
        .await
        .unwrap()
        .pop()
        .map(|r| r.permissions)
}

/// A rotation by `actor` is refused with `NotAuthorized`, leaves the key
/// and its owner's keys as they were, and is audited once.
async fn assert_rotation_refused(keyward: &Keyward, actor: &Actor, key: &KeyDetails, what: &str) {
    let before = details(keyward, &key.id).await;
    let keys_before = keys_of(keyward, &key.owner).await.len();
    let events = audit_count(keyward).await;
    refused(
        keyward.rotate(actor, &key.id, TimeDelta::hours(1)).await,
        what,
    );
    assert_unchanged(keyward, &before).await;
    assert_eq!(before.status, Status::Active);
    assert_eq!(
        keys_of(keyward, &key.owner).await.len(),
        keys_before,
        "{what}: no successor was written"
    );
    assert_one_refusal_audited(keyward, events, AuditAction::Rotate, actor).await;
}

/// `actor` rotates `key`: the successor verifies with the key's
/// permissions, and the predecessor works during the overlap.
async fn assert_rotates(
    keyward: &Keyward,
    actor: &Actor,
    key: &IssuedKey,
    requirement: &Requirement,
) -> IssuedKey {
    let successor = keyward
        .rotate(actor, &key.key.id, TimeDelta::hours(1))
        .await
        .expect("an actor holding the grant rotates");
    assert_eq!(successor.key.rotated_from.as_ref(), Some(&key.key.id));
    assert_eq!(successor.key.scopes, key.key.scopes);
    assert_eq!(successor.key.inherits_owner, key.key.inherits_owner);
    let verified = keyward
        .verify(successor.token.expose_secret(), requirement)
        .await
        .expect("the successor works");
    assert_eq!(verified.permissions(), &key.key.permissions);
    keyward
        .verify(key.token.expose_secret(), requirement)
        .await
        .expect("the predecessor works during the overlap");
    assert_eq!(
        details(keyward, &key.key.id).await.rotated_to.as_ref(),
        Some(&successor.key.id)
    );
    successor
}
