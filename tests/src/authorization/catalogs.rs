//! Finding 5, **catalogs**: a kind's catalog bounds every token of that kind,
//! even through a role edited past it.

use super::{
    MANAGEMENT, assert_one_refusal_audited, audit_count, details, keys_of, workspace_kinds,
};
use crate::support::{Backend, clock_at, need, owner, perms, role};
use keyward_core::{Actor, Error, IssueRequest, Rejection, Role, Session, audit::AuditAction};

/// No one, not an operator nor a `*` session, mints a token of a kind with
/// a catalog holding anything outside it, directly or through a role.
pub async fn a_catalog_bounds_every_token_of_its_kind(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("console");
    let everything =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(workspace.clone()));
    let billing = role("billing");
    keyward
        .put_role(
            &operator,
            Role::new(
                workspace.clone(),
                billing.clone(),
                perms(&["projects.view", "billing.manage"]),
            ),
        )
        .await
        .unwrap();
    for asker in [&operator, &everything] {
        for (request, what) in [
            (
                IssueRequest::new("mgmt", workspace.clone(), "direct")
                    .scopes(perms(&["projects.view", "billing.manage"])),
                "a scope outside the catalog",
            ),
            (
                IssueRequest::new("mgmt", workspace.clone(), "star").scopes(perms(&["*"])),
                "a * scope",
            ),
            (
                IssueRequest::new("mgmt", workspace.clone(), "via role").roles([billing.clone()]),
                "a role granting outside the catalog",
            ),
        ] {
            let events = audit_count(&keyward).await;
            let result = keyward.issue(asker, request).await;
            match &result {
                Err(Error::OutsideCatalog { kind, outside }) => {
                    assert_eq!(kind, "mgmt");
                    assert!(!outside.is_empty(), "{what}");
                    assert!(
                        outside.iter().all(|p| !perms(&MANAGEMENT).covers(p)),
                        "{what}: {outside:?}"
                    );
                }
                other => panic!("{what}: expected OutsideCatalog, got {other:?}"),
            }
            assert_one_refusal_audited(&keyward, events, AuditAction::Issue, asker).await;
            assert!(keys_of(&keyward, &workspace).await.is_empty(), "{what}");
        }
    }
}

/// A role edited after issue to hold more than the kind's catalog never
/// gives the key more than the catalog.
pub async fn a_role_edited_past_the_catalog_never_widens_the_key(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("console");
    let ops = role("ops");
    keyward
        .put_role(
            &operator,
            Role::new(workspace.clone(), ops.clone(), perms(&["projects.view"])),
        )
        .await
        .unwrap();
    let key = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "terraform").roles([ops.clone()]),
        )
        .await
        .unwrap();
    let outside = need("billing.manage");
    for widened in [
        &["projects.view", "billing.manage"][..],
        &["*"],
        &["billing.*"],
    ] {
        keyward
            .put_role(
                &operator,
                Role::new(workspace.clone(), ops.clone(), perms(widened)),
            )
            .await
            .unwrap();
        let answer = keyward.verify(key.token.expose_secret(), &outside).await;
        match &answer {
            Err(Rejection::InsufficientPermissions { missing }) => {
                assert_eq!(missing, &need("billing.manage"), "{widened:?}");
            }
            other => panic!("{widened:?}: expected InsufficientPermissions, got {other:?}"),
        }
        let listed = details(&keyward, &key.key.id).await;
        assert!(
            perms(&MANAGEMENT).covers_all(&listed.permissions),
            "{widened:?}: details show {}",
            listed.permissions
        );
    }
    // Within the catalog the role still works (`*` ∩ catalog = the catalog).
    keyward
        .put_role(
            &operator,
            Role::new(workspace.clone(), ops.clone(), perms(&["*"])),
        )
        .await
        .unwrap();
    let verified = keyward
        .verify(key.token.expose_secret(), &need("api_keys.create"))
        .await
        .unwrap();
    assert_eq!(verified.permissions(), &perms(&MANAGEMENT));
}
