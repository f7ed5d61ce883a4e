//! Finding 7, **enable is its own permission**: re-enabling a key needs the
//! enable permission and what the key carries.

use super::{
    as_token, assert_one_refusal_audited, assert_unchanged, audit_count, details, refused,
    workspace_kinds,
};
use crate::support::{Backend, clock_at, need, owner, perms};
use keyward_core::{Actor, IssueRequest, Rejection, Requirement, Status, audit::AuditAction};

/// A management token holding only the revoke permission can disable an
/// API key but not enable it again; one holding the enable permission and
/// what the key carries can, one holding the enable permission alone cannot.
pub async fn enabling_needs_the_enable_permission(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("console");
    let api_key = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", workspace.clone(), "ci").scopes(perms(&["projects.view"])),
        )
        .await
        .unwrap();
    let revoker = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "revoker")
                .scopes(perms(&["api_keys.delete"])),
        )
        .await
        .unwrap();
    let as_revoker = as_token(&keyward, &revoker).await;
    let disabled = keyward
        .disable(&as_revoker, &api_key.key.id)
        .await
        .expect("the revoke permission disables");
    assert_eq!(disabled.status, Status::Disabled);

    let before = details(&keyward, &api_key.key.id).await;
    let events = audit_count(&keyward).await;
    refused(
        keyward.enable(&as_revoker, &api_key.key.id).await,
        "enabling with only the revoke permission",
    );
    assert_unchanged(&keyward, &before).await;
    assert_eq!(before.status, Status::Disabled);
    assert_one_refusal_audited(&keyward, events, AuditAction::Enable, &as_revoker).await;
    let still = keyward
        .verify(api_key.token.expose_secret(), &Requirement::nothing())
        .await;
    assert!(matches!(still, Err(Rejection::Disabled)), "{still:?}");

    // Giving access back is granting it again: the enable permission alone
    // does not bring back a key carrying what the enabler does not hold.
    let narrow = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "narrow enabler")
                .scopes(perms(&["api_keys.enable"])),
        )
        .await
        .unwrap();
    let as_narrow = as_token(&keyward, &narrow).await;
    let before = details(&keyward, &api_key.key.id).await;
    let events = audit_count(&keyward).await;
    refused(
        keyward.enable(&as_narrow, &api_key.key.id).await,
        "enabling a key carrying what the enabler does not hold",
    );
    assert_unchanged(&keyward, &before).await;
    assert_one_refusal_audited(&keyward, events, AuditAction::Enable, &as_narrow).await;

    let enabler = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "enabler")
                .scopes(perms(&["api_keys.enable", "projects.view"])),
        )
        .await
        .unwrap();
    let as_enabler = as_token(&keyward, &enabler).await;
    let enabled = keyward
        .enable(&as_enabler, &api_key.key.id)
        .await
        .expect("the enable permission enables");
    assert_eq!(enabled.status, Status::Active);
    keyward
        .verify(api_key.token.expose_secret(), &need("projects.view"))
        .await
        .expect("the same token works again");
    // …and the enabler alone cannot take access away.
    let before = details(&keyward, &api_key.key.id).await;
    let events = audit_count(&keyward).await;
    refused(
        keyward.disable(&as_enabler, &api_key.key.id).await,
        "disabling with only the enable permission",
    );
    assert_unchanged(&keyward, &before).await;
    assert_one_refusal_audited(&keyward, events, AuditAction::Disable, &as_enabler).await;
}
