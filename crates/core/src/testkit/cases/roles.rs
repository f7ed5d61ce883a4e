//! Invariants 12 and 13 of the [`KeyStore`] contract, **roles are namespaced
//! by owner** and **role edits are compare-and-set** (one section in
//! docs/adapters.md): `put_role`, `get_roles` and `delete_role`.

use super::support::{owner_audit, role_event};
use crate::audit::AuditAction;
use crate::key::{Owner, Role};
use crate::permission::PermissionSet;
use crate::store::KeyStore;
use crate::testkit::fixtures::{Fixture, expect_not_found, expect_role_changed};

/// `put_role` creates a role (`replaces = None`) or replaces its permissions (`replaces = Some(current)`); `get_roles` returns only the owner's existing roles, once each, in name order.
pub async fn roles_put_replace_and_get(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let viewer = Role::new(
        owner.clone(),
        fx.role("viewer"),
        perms(&["projects.view", "keys.view"]),
    );
    let admin = Role::new(owner.clone(), fx.role("admin"), perms(&["*"]));
    let empty = Role::new(owner.clone(), fx.role("empty"), PermissionSet::new());
    for role in [&viewer, &admin, &empty] {
        store
            .put_role(role, None, &role_event(AuditAction::PutRole, role, 0))
            .await
            .expect("put_role creating a role");
    }
    let unknown = fx.role("unknown");
    let got = store
        .get_roles(
            &owner,
            &[
                viewer.name.clone(),
                unknown.clone(),
                admin.name.clone(),
                empty.name.clone(),
                viewer.name.clone(),
            ],
        )
        .await
        .expect("get_roles");
    assert_eq!(
        got,
        [admin.clone(), empty.clone(), viewer.clone()],
        "existing roles, once each, in name order"
    );
    assert!(
        store
            .get_roles(&owner, &[unknown])
            .await
            .expect("get_roles")
            .is_empty(),
        "unknown names are ignored"
    );
    assert!(
        store
            .get_roles(&owner, &[])
            .await
            .expect("get_roles")
            .is_empty()
    );

    // Replacing swaps the permissions, it does not merge them.
    let viewer2 = Role::new(owner.clone(), viewer.name.clone(), perms(&["billing.read"]));
    store
        .put_role(
            &viewer2,
            Some(&viewer.permissions),
            &role_event(AuditAction::PutRole, &viewer2, 1),
        )
        .await
        .expect("put_role replacing a role");
    let got = store
        .get_roles(&owner, &[viewer.name.clone(), admin.name.clone()])
        .await
        .expect("get_roles");
    assert_eq!(
        got,
        [admin.clone(), viewer2.clone()],
        "put_role replaces the permissions"
    );
    // An empty set is a value like any other: it can be replaced and replace.
    let filled = Role::new(owner.clone(), empty.name.clone(), perms(&["a.b"]));
    store
        .put_role(
            &filled,
            Some(&PermissionSet::new()),
            &role_event(AuditAction::PutRole, &filled, 2),
        )
        .await
        .expect("put_role replacing an empty role");
    store
        .put_role(
            &empty,
            Some(&filled.permissions),
            &role_event(AuditAction::PutRole, &empty, 3),
        )
        .await
        .expect("put_role emptying a role");
    let got = store
        .get_roles(&owner, std::slice::from_ref(&empty.name))
        .await
        .expect("get_roles");
    assert_eq!(got, [empty], "a role emptied by a replace");
}

/// `delete_role` (given the role's current permissions) removes exactly that role and fails with `NotFound` when it does not exist.
pub async fn delete_role_removes_only_that_role(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let keep = Role::new(
        owner.clone(),
        fx.role("keep"),
        PermissionSet::parse(["a.b"]).expect("valid permission"),
    );
    let gone = Role::new(
        owner.clone(),
        fx.role("drop"),
        PermissionSet::parse(["c.d"]).expect("valid permission"),
    );
    for role in [&keep, &gone] {
        store
            .put_role(role, None, &role_event(AuditAction::PutRole, role, 0))
            .await
            .expect("put_role");
    }
    store
        .delete_role(
            &owner,
            &gone.name,
            &gone.permissions,
            &role_event(AuditAction::DeleteRole, &gone, 1),
        )
        .await
        .expect("delete_role of an existing role");
    let got = store
        .get_roles(&owner, &[keep.name.clone(), gone.name.clone()])
        .await
        .expect("get_roles");
    assert_eq!(got, [keep], "only the deleted role is gone");
    expect_not_found(
        store
            .delete_role(
                &owner,
                &gone.name,
                &gone.permissions,
                &role_event(AuditAction::DeleteRole, &gone, 2),
            )
            .await,
        "deleting a deleted role",
    );
    let never = Role::new(owner.clone(), fx.role("never"), PermissionSet::new());
    expect_not_found(
        store
            .delete_role(
                &owner,
                &never.name,
                &never.permissions,
                &role_event(AuditAction::DeleteRole, &never, 3),
            )
            .await,
        "deleting a role that never existed",
    );
    // A deleted role can be created again.
    store
        .put_role(&gone, None, &role_event(AuditAction::PutRole, &gone, 4))
        .await
        .expect("put_role after delete");
    let got = store
        .get_roles(&owner, std::slice::from_ref(&gone.name))
        .await
        .expect("get_roles");
    assert_eq!(got, [gone]);
}

/// Two owners may each have a role of the same name: reading, replacing and deleting one never touches the other, and owners compare byte for byte.
pub async fn roles_are_namespaced_by_owner(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let (a, b) = (fx.owner("workspace:a"), fx.owner("workspace:b"));
    let upper = Owner::new(&a.as_str().to_uppercase()).expect("valid owner");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let name = fx.role("admin");
    let of_a = Role::new(a.clone(), name.clone(), perms(&["*"]));
    let of_b = Role::new(b.clone(), name.clone(), perms(&["keys.view"]));
    store
        .put_role(&of_a, None, &role_event(AuditAction::PutRole, &of_a, 0))
        .await
        .expect("put_role for owner a");
    store
        .put_role(&of_b, None, &role_event(AuditAction::PutRole, &of_b, 1))
        .await
        .expect("put_role of the same name for owner b");
    let roles_of = |owner: &Owner| {
        let owner = owner.clone();
        let names = [name.clone()];
        async move { store.get_roles(&owner, &names).await.expect("get_roles") }
    };
    assert_eq!(
        roles_of(&a).await,
        std::slice::from_ref(&of_a),
        "owner a's role"
    );
    assert_eq!(
        roles_of(&b).await,
        std::slice::from_ref(&of_b),
        "owner b's role"
    );
    assert!(
        roles_of(&upper).await.is_empty(),
        "owners are case-sensitive: {upper} has no role of {a}"
    );
    assert!(
        roles_of(&fx.owner("workspace:c")).await.is_empty(),
        "an owner without the role gets nothing"
    );

    // Replacing b's role leaves a's alone.
    let narrowed = Role::new(b.clone(), name.clone(), perms(&["keys.list"]));
    store
        .put_role(
            &narrowed,
            Some(&of_b.permissions),
            &role_event(AuditAction::PutRole, &narrowed, 2),
        )
        .await
        .expect("put_role replacing owner b's role");
    assert_eq!(
        roles_of(&a).await,
        std::slice::from_ref(&of_a),
        "a's role after b's edit"
    );
    assert_eq!(
        roles_of(&b).await,
        std::slice::from_ref(&narrowed),
        "b's edited role"
    );

    // Owner a's permissions are not a valid `replaces` for b's role.
    expect_role_changed(
        store
            .put_role(
                &narrowed,
                Some(&of_a.permissions),
                &role_event(AuditAction::PutRole, &narrowed, 3),
            )
            .await,
        "replacing b's role with a's permissions as `replaces`",
    );

    // Deleting a's role leaves b's alone; deleting it again is NotFound,
    // although b still has a role of that name.
    store
        .delete_role(
            &a,
            &name,
            &of_a.permissions,
            &role_event(AuditAction::DeleteRole, &of_a, 4),
        )
        .await
        .expect("delete_role of owner a's role");
    assert!(roles_of(&a).await.is_empty(), "a's role is gone");
    assert_eq!(
        roles_of(&b).await,
        std::slice::from_ref(&narrowed),
        "b's role stays"
    );
    expect_not_found(
        store
            .delete_role(
                &a,
                &name,
                &narrowed.permissions,
                &role_event(AuditAction::DeleteRole, &of_a, 5),
            )
            .await,
        "deleting a's deleted role while b has one of that name",
    );
    assert_eq!(roles_of(&b).await, [narrowed], "b's role survives");
}

/// `put_role` is a compare-and-set on (owner, name): creating an existing role, or replacing with stale or absent `replaces`, is `RoleChanged`, writes nothing and appends no event.
pub async fn put_role_is_compare_and_set(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let audit = || owner_audit(store, &owner);
    let name = fx.role("deployer");
    let v1 = Role::new(owner.clone(), name.clone(), perms(&["deploy.staging"]));
    let v2 = Role::new(owner.clone(), name.clone(), perms(&["deploy.*"]));
    let v3 = Role::new(owner.clone(), name.clone(), perms(&["*"]));
    let stored = || async {
        store
            .get_roles(&owner, std::slice::from_ref(&name))
            .await
            .expect("get_roles")
    };

    // Replacing a role that does not exist.
    expect_role_changed(
        store
            .put_role(
                &v2,
                Some(&v1.permissions),
                &role_event(AuditAction::PutRole, &v2, 0),
            )
            .await,
        "replacing a role that does not exist",
    );
    assert!(
        stored().await.is_empty(),
        "a failed replace creates nothing"
    );
    assert!(audit().await.is_empty(), "a failed replace appends nothing");

    let created = role_event(AuditAction::PutRole, &v1, 1);
    store
        .put_role(&v1, None, &created)
        .await
        .expect("creating the role");
    // Creating it again, even with the same permissions.
    for (what, role) in [("a different role", &v2), ("the same role", &v1)] {
        expect_role_changed(
            store
                .put_role(role, None, &role_event(AuditAction::PutRole, role, 2))
                .await,
            &format!("creating {what} that already exists"),
        );
    }
    assert_eq!(
        stored().await,
        std::slice::from_ref(&v1),
        "a failed create changes nothing"
    );

    let replaced = role_event(AuditAction::PutRole, &v2, 3);
    store
        .put_role(&v2, Some(&v1.permissions), &replaced)
        .await
        .expect("replacing with the current permissions");
    // A stale `replaces` (v1, read before the replace), a superset and a
    // subset of the current permissions all lose.
    for (what, replaces) in [
        ("stale", v1.permissions.clone()),
        (
            "a superset of the current",
            perms(&["deploy.*", "deploy.prod"]),
        ),
        ("the empty set", PermissionSet::new()),
        ("what it would become", v3.permissions.clone()),
    ] {
        expect_role_changed(
            store
                .put_role(
                    &v3,
                    Some(&replaces),
                    &role_event(AuditAction::PutRole, &v3, 4),
                )
                .await,
            &format!("replacing with {what} `replaces`"),
        );
    }
    assert_eq!(
        stored().await,
        std::slice::from_ref(&v2),
        "a lost replace changes nothing"
    );
    assert_eq!(
        audit().await,
        [replaced, created],
        "only the successful create and replace appended events"
    );
}

/// `delete_role` is a compare-and-set: stale `expected` permissions are `RoleChanged`, delete nothing and append no event.
pub async fn delete_role_is_compare_and_set(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let audit = || owner_audit(store, &owner);
    let v1 = Role::new(owner.clone(), fx.role("ops"), perms(&["deploy"]));
    let v2 = Role::new(owner.clone(), v1.name.clone(), perms(&["deploy", "admin"]));
    let created = role_event(AuditAction::PutRole, &v1, 0);
    store
        .put_role(&v1, None, &created)
        .await
        .expect("creating the role");
    let replaced = role_event(AuditAction::PutRole, &v2, 1);
    store
        .put_role(&v2, Some(&v1.permissions), &replaced)
        .await
        .expect("widening the role");

    for (what, expected) in [
        ("stale", v1.permissions.clone()),
        ("empty", PermissionSet::new()),
        (
            "a superset of the current",
            perms(&["deploy", "admin", "x"]),
        ),
    ] {
        expect_role_changed(
            store
                .delete_role(
                    &owner,
                    &v1.name,
                    &expected,
                    &role_event(AuditAction::DeleteRole, &v1, 2),
                )
                .await,
            &format!("deleting with {what} `expected` permissions"),
        );
    }
    assert_eq!(
        store
            .get_roles(&owner, std::slice::from_ref(&v1.name))
            .await
            .expect("get_roles"),
        std::slice::from_ref(&v2),
        "a lost delete deletes nothing"
    );
    assert_eq!(
        audit().await,
        [replaced.clone(), created.clone()],
        "a lost delete appends nothing"
    );

    let deleted = role_event(AuditAction::DeleteRole, &v2, 3);
    store
        .delete_role(&owner, &v2.name, &v2.permissions, &deleted)
        .await
        .expect("deleting with the current permissions");
    assert!(
        store
            .get_roles(&owner, std::slice::from_ref(&v1.name))
            .await
            .expect("get_roles")
            .is_empty(),
        "deleted"
    );
    assert_eq!(audit().await, [deleted, replaced, created]);
}
