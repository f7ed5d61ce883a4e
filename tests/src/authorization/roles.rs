//! Finding 2, **roles are granting**: replacing, editing or deleting a role
//! needs its old and new permissions, roles are per owner, and tokens never
//! edit roles.

use super::{
    MANAGEMENT, as_token, assert_one_refusal_audited, audit_count, refused, role_of,
    workspace_kinds,
};
use crate::support::{Backend, clock_at, need, owner, perms, role};
use keyward_core::{Actor, IssueRequest, PermissionSet, Role, Session, audit::AuditAction};

/// A session holding nothing can neither replace a `*` role with nothing
/// (stripping every key that holds it) nor delete it.
pub async fn replacing_or_deleting_a_role_needs_its_old_permissions(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let admin_role = role("admin");
    keyward
        .put_role(
            &Actor::operator("setup"),
            Role::new(workspace.clone(), admin_role.clone(), perms(&["*"])),
        )
        .await
        .unwrap();
    let key = keyward
        .issue(
            &Actor::operator("setup"),
            IssueRequest::new("tak", workspace.clone(), "ops").roles([admin_role.clone()]),
        )
        .await
        .unwrap();
    let nobody = Actor::from(
        Session::new(owner("user"), PermissionSet::new()).with_admin_of(workspace.clone()),
    );

    let events = audit_count(&keyward).await;
    refused(
        keyward
            .put_role(
                &nobody,
                Role::new(workspace.clone(), admin_role.clone(), PermissionSet::new()),
            )
            .await,
        "emptying a * role while holding nothing",
    );
    assert_one_refusal_audited(&keyward, events, AuditAction::PutRole, &nobody).await;
    let events = audit_count(&keyward).await;
    refused(
        keyward.delete_role(&nobody, &workspace, &admin_role).await,
        "deleting a * role while holding nothing",
    );
    assert_one_refusal_audited(&keyward, events, AuditAction::DeleteRole, &nobody).await;

    assert_eq!(
        role_of(&keyward, &workspace, &admin_role).await,
        Some(perms(&["*"]))
    );
    keyward
        .verify(key.token.expose_secret(), &need("deploy.production"))
        .await
        .expect("the key keeps the role's permissions");
}

/// A user of tenant A cannot read, replace or delete tenant B's role of
/// the same name, even holding every permission it grants; B's keys keep
/// their permissions, and A's edits of its own role stay in A.
pub async fn roles_are_namespaced_per_owner(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let tenant_a = owner("workspace");
    let tenant_b = owner("workspace");
    let shared_name = role("deployer");
    let operator = Actor::operator("setup");
    for (tenant, granted) in [
        (&tenant_a, &["reports.read"][..]),
        (&tenant_b, &["deploy.*"]),
    ] {
        keyward
            .put_role(
                &operator,
                Role::new(tenant.clone(), shared_name.clone(), perms(granted)),
            )
            .await
            .unwrap();
    }
    let b_key = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", tenant_b.clone(), "b deploys").roles([shared_name.clone()]),
        )
        .await
        .unwrap();
    let a_key = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", tenant_a.clone(), "a reports").roles([shared_name.clone()]),
        )
        .await
        .unwrap();
    // A's admin holds B's permissions too: only the namespace stops them.
    let a_admin = Actor::from(
        Session::new(owner("user"), perms(&["deploy.*", "reports.*"]))
            .with_admin_of(tenant_a.clone()),
    );

    let events = audit_count(&keyward).await;
    refused(
        keyward
            .put_role(
                &a_admin,
                Role::new(tenant_b.clone(), shared_name.clone(), PermissionSet::new()),
            )
            .await,
        "replacing another tenant's role",
    );
    assert_one_refusal_audited(&keyward, events, AuditAction::PutRole, &a_admin).await;
    let events = audit_count(&keyward).await;
    refused(
        keyward.delete_role(&a_admin, &tenant_b, &shared_name).await,
        "deleting another tenant's role",
    );
    assert_one_refusal_audited(&keyward, events, AuditAction::DeleteRole, &a_admin).await;
    let events = audit_count(&keyward).await;
    refused(
        keyward
            .roles(&a_admin, &tenant_b, std::slice::from_ref(&shared_name))
            .await,
        "reading another tenant's roles",
    );
    assert_one_refusal_audited(&keyward, events, AuditAction::View, &a_admin).await;

    // A edits its own role of that name: B's is untouched.
    keyward
        .put_role(
            &a_admin,
            Role::new(
                tenant_a.clone(),
                shared_name.clone(),
                perms(&["reports.read", "reports.export"]),
            ),
        )
        .await
        .expect("a tenant's admin edits its own role");
    assert_eq!(
        role_of(&keyward, &tenant_b, &shared_name).await,
        Some(perms(&["deploy.*"]))
    );
    let b_verified = keyward
        .verify(b_key.token.expose_secret(), &need("deploy.production"))
        .await
        .expect("B's key keeps B's role");
    assert_eq!(b_verified.permissions(), &perms(&["deploy.*"]));
    let a_verified = keyward
        .verify(a_key.token.expose_secret(), &need("reports.export"))
        .await
        .expect("A's key follows A's role");
    assert_eq!(
        a_verified.permissions(),
        &perms(&["reports.export", "reports.read"])
    );
    // A deleting its own role leaves B's.
    keyward
        .delete_role(&a_admin, &tenant_a, &shared_name)
        .await
        .unwrap();
    assert_eq!(role_of(&keyward, &tenant_a, &shared_name).await, None);
    assert_eq!(
        role_of(&keyward, &tenant_b, &shared_name).await,
        Some(perms(&["deploy.*"]))
    );
    keyward
        .verify(b_key.token.expose_secret(), &need("deploy.production"))
        .await
        .expect("B's key still holds B's role");
}

/// Replacing a role needs both what it grants now and what it will grant;
/// deleting it needs what it grants now.
pub async fn editing_a_role_needs_both_old_and_new_permissions(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let name = role("editor");
    let session = |held: &[&str]| {
        Actor::from(Session::new(owner("user"), perms(held)).with_admin_of(workspace.clone()))
    };
    let old_only = session(&["a.read"]);
    let new_only = session(&["b.write"]);
    let both = session(&["a.read", "b.write"]);
    keyward
        .put_role(
            &old_only,
            Role::new(workspace.clone(), name.clone(), perms(&["a.read"])),
        )
        .await
        .expect("creating a role within what one holds");

    for (actor, granted, what) in [
        (
            &old_only,
            &["a.read", "b.write"][..],
            "widening past what one holds",
        ),
        (
            &new_only,
            &["b.write"],
            "replacing permissions one does not hold",
        ),
    ] {
        let events = audit_count(&keyward).await;
        refused(
            keyward
                .put_role(
                    actor,
                    Role::new(workspace.clone(), name.clone(), perms(granted)),
                )
                .await,
            what,
        );
        assert_one_refusal_audited(&keyward, events, AuditAction::PutRole, actor).await;
        assert_eq!(
            role_of(&keyward, &workspace, &name).await,
            Some(perms(&["a.read"])),
            "{what}: the role is unchanged"
        );
    }
    let events = audit_count(&keyward).await;
    refused(
        keyward.delete_role(&new_only, &workspace, &name).await,
        "deleting a role granting what one does not hold",
    );
    assert_one_refusal_audited(&keyward, events, AuditAction::DeleteRole, &new_only).await;
    assert_eq!(
        role_of(&keyward, &workspace, &name).await,
        Some(perms(&["a.read"]))
    );

    keyward
        .put_role(
            &both,
            Role::new(workspace.clone(), name.clone(), perms(&["b.write"])),
        )
        .await
        .expect("holding the old and the new permissions");
    assert_eq!(
        role_of(&keyward, &workspace, &name).await,
        Some(perms(&["b.write"]))
    );
    keyward
        .delete_role(&new_only, &workspace, &name)
        .await
        .expect("holding what the role grants now");
    assert_eq!(role_of(&keyward, &workspace, &name).await, None);
}

/// No token edits or reads roles, not even a management token holding
/// every management permission, nor an API key holding `*`.
pub async fn tokens_never_edit_roles(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("setup");
    let name = role("ops");
    keyward
        .put_role(
            &operator,
            Role::new(workspace.clone(), name.clone(), perms(&["projects.view"])),
        )
        .await
        .unwrap();
    let mgmt = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "everything").scopes(perms(&MANAGEMENT)),
        )
        .await
        .unwrap();
    let api_key = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", workspace.clone(), "root").scopes(perms(&["*"])),
        )
        .await
        .unwrap();
    for token in [&mgmt, &api_key] {
        let actor = as_token(&keyward, token).await;
        let events = audit_count(&keyward).await;
        refused(
            keyward
                .put_role(
                    &actor,
                    Role::new(workspace.clone(), name.clone(), perms(&["projects.view"])),
                )
                .await,
            "a token putting a role",
        );
        assert_one_refusal_audited(&keyward, events, AuditAction::PutRole, &actor).await;
        let events = audit_count(&keyward).await;
        refused(
            keyward.delete_role(&actor, &workspace, &name).await,
            "a token deleting a role",
        );
        assert_one_refusal_audited(&keyward, events, AuditAction::DeleteRole, &actor).await;
        let events = audit_count(&keyward).await;
        refused(
            keyward
                .put_role(
                    &actor,
                    Role::new(workspace.clone(), role("new"), PermissionSet::new()),
                )
                .await,
            "a token creating an empty role",
        );
        assert_one_refusal_audited(&keyward, events, AuditAction::PutRole, &actor).await;
        let events = audit_count(&keyward).await;
        refused(
            keyward
                .roles(&actor, &workspace, std::slice::from_ref(&name))
                .await,
            "a token reading roles",
        );
        assert_one_refusal_audited(&keyward, events, AuditAction::View, &actor).await;
        let events = audit_count(&keyward).await;
        refused(
            keyward.list_roles(&actor, &workspace, None, 100).await,
            "a token listing every role",
        );
        assert_one_refusal_audited(&keyward, events, AuditAction::View, &actor).await;
        assert_eq!(
            role_of(&keyward, &workspace, &name).await,
            Some(perms(&["projects.view"]))
        );
    }
}
