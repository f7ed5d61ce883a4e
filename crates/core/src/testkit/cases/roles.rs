//! Invariants 12, 13 and 17 of the [`KeyStore`] contract, **roles are
//! namespaced by owner**, **role edits are compare-and-set** and **an
//! owner's roles list in name order, paged by name** (one section in
//! docs/adapters.md): `put_role`, `get_roles`, `list_roles` and
//! `delete_role`.

use super::support::{owner_audit, role_event};
use crate::audit::AuditAction;
use crate::error::Error;
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

/// The names of `roles`, in order.
fn names(roles: &[Role]) -> Vec<&str> {
    roles.iter().map(|r| r.name.as_str()).collect()
}

/// Every page of `owner`'s roles of `limit`, following the last name of
/// each, checking each page's size (at most 1000 pages).
async fn list_all_roles(store: &dyn KeyStore, owner: &Owner, limit: usize) -> Vec<Role> {
    let mut all: Vec<Role> = Vec::new();
    for _ in 0..1000 {
        let after = all.last().map(|r| r.name.clone());
        let page = store
            .list_roles(owner, after.as_ref(), limit)
            .await
            .expect("list_roles");
        assert!(
            page.len() <= limit,
            "list_roles returned {} roles for a page size of {limit}",
            page.len()
        );
        let last = page.len() < limit;
        all.extend(page);
        if last {
            return all;
        }
    }
    panic!("list_roles kept returning full pages")
}

/// `list_roles` returns one owner's roles only (owners compared byte for byte), in name order by bytes, each with its permissions, and continues strictly after `after`, whether or not a role of that name exists.
pub async fn list_roles_is_per_owner_in_name_order(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let (a, b) = (fx.owner("workspace:a"), fx.owner("workspace:b"));
    let upper = Owner::new(&a.as_str().to_uppercase()).expect("valid owner");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    // Labels whose byte order differs from a case-insensitive or locale
    // order: `B` < `_` < `a`, `-` < `.` < `0` < `:`.
    let labels = ["b", "B", "_x", "a:z", "a.b", "a-b", "a0", "A", "ab"];
    let mut of_a: Vec<Role> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            Role::new(
                a.clone(),
                fx.role(label),
                perms(&[&format!("p{i}.read"), "shared.*"]),
            )
        })
        .collect();
    // Owner b has a role of one of the same names, and one of its own.
    let of_b = [
        Role::new(b.clone(), fx.role("a0"), perms(&["other"])),
        Role::new(b.clone(), fx.role("only-b"), PermissionSet::new()),
    ];
    for (i, role) in of_a.iter().chain(&of_b).enumerate() {
        let secs = i64::try_from(i).expect("few roles");
        store
            .put_role(role, None, &role_event(AuditAction::PutRole, role, secs))
            .await
            .expect("put_role");
    }
    of_a.sort_by(|x, y| x.name.as_str().as_bytes().cmp(y.name.as_str().as_bytes()));

    let listed = store.list_roles(&a, None, 1000).await.expect("list_roles");
    assert_eq!(
        names(&listed),
        names(&of_a),
        "owner a's roles, in byte order"
    );
    assert_eq!(listed, of_a, "each with its owner and permissions");
    let listed_b = store.list_roles(&b, None, 1000).await.expect("list_roles");
    let mut expected_b = of_b.to_vec();
    expected_b.sort_by(|x, y| x.name.as_str().cmp(y.name.as_str()));
    assert_eq!(listed_b, expected_b, "owner b's roles only");
    for nobody in [&upper, &fx.owner("workspace:c")] {
        assert!(
            store
                .list_roles(nobody, None, 1000)
                .await
                .expect("list_roles")
                .is_empty(),
            "{nobody} has no roles"
        );
    }

    // `after` is exclusive, and need not name an existing role.
    let third = &of_a[2].name;
    let after_third = store
        .list_roles(&a, Some(third), 1000)
        .await
        .expect("list_roles after a name");
    assert_eq!(after_third, of_a[3..], "strictly after {third}");
    let between = crate::key::RoleName::new(&format!("{third}-")).expect("valid role name");
    let after_between = store
        .list_roles(&a, Some(&between), 1000)
        .await
        .expect("list_roles after a name that does not exist");
    assert_eq!(
        after_between,
        of_a[3..],
        "after {between}, which sorts between two roles"
    );
    let last = &of_a[of_a.len() - 1].name;
    assert!(
        store
            .list_roles(&a, Some(last), 1000)
            .await
            .expect("list_roles after the last")
            .is_empty(),
        "nothing after the last role"
    );
    assert_eq!(
        store.list_roles(&a, None, 4).await.expect("list_roles"),
        of_a[..4],
        "a limit keeps the first roles in name order"
    );
}

/// Paging `list_roles` by the last name of each page visits every role once, with no duplicates or skips, at every page size and while roles are created and deleted between pages.
pub async fn list_roles_pages_without_duplicates_or_skips(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let mut roles: Vec<Role> = (0..11)
        .map(|i| {
            Role::new(
                owner.clone(),
                fx.role(&format!("r{i:02}")),
                PermissionSet::new(),
            )
        })
        .collect();
    for (i, role) in roles.iter().enumerate() {
        let secs = i64::try_from(i).expect("few roles");
        store
            .put_role(role, None, &role_event(AuditAction::PutRole, role, secs))
            .await
            .expect("put_role");
    }
    roles.sort_by(|x, y| x.name.cmp(&y.name));
    for limit in [1, 2, 3, 10, 11, 12] {
        let all = list_all_roles(store, &owner, limit).await;
        assert_eq!(names(&all), names(&roles), "pages of {limit}");
    }

    // Edits between pages: a role created before the cursor is not seen, one
    // created after it is, one deleted after it is not; every role that
    // exists throughout is seen exactly once.
    let first = store.list_roles(&owner, None, 4).await.expect("list_roles");
    assert_eq!(first, roles[..4]);
    let cursor = first[3].name.clone();
    let early = Role::new(owner.clone(), fx.role("r00a"), PermissionSet::new());
    let late = Role::new(owner.clone(), fx.role("r05a"), PermissionSet::new());
    for role in [&early, &late] {
        store
            .put_role(role, None, &role_event(AuditAction::PutRole, role, 20))
            .await
            .expect("put_role between pages");
    }
    let gone = roles[6].clone();
    store
        .delete_role(
            &owner,
            &gone.name,
            &gone.permissions,
            &role_event(AuditAction::DeleteRole, &gone, 21),
        )
        .await
        .expect("delete_role between pages");
    let mut seen: Vec<Role> = first;
    let mut after = cursor;
    loop {
        let page = store
            .list_roles(&owner, Some(&after), 4)
            .await
            .expect("list_roles");
        let done = page.len() < 4;
        if let Some(last) = page.last() {
            after = last.name.clone();
        }
        seen.extend(page);
        if done {
            break;
        }
    }
    let mut expected: Vec<Role> = roles
        .iter()
        .filter(|r| r.name != gone.name)
        .cloned()
        .collect();
    expected.push(late);
    expected.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        names(&seen),
        names(&expected),
        "every role once: the late one seen, the early and the deleted ones not"
    );
}

/// `list_roles` takes a page size of 1..=1000: 0 and 1001 are `InvalidInput`, the bounds themselves work.
pub async fn list_roles_page_size_is_1_to_1000(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let role = Role::new(owner.clone(), fx.role("only"), PermissionSet::new());
    store
        .put_role(&role, None, &role_event(AuditAction::PutRole, &role, 0))
        .await
        .expect("put_role");
    for bad in [0, crate::store::MAX_PAGE_SIZE + 1, usize::MAX] {
        for after in [None, Some(&role.name)] {
            match store.list_roles(&owner, after, bad).await {
                Err(Error::InvalidInput { field: "limit", .. }) => {}
                other => panic!(
                    "list_roles with limit {bad} (after {after:?}): expected InvalidInput, got {other:?}"
                ),
            }
        }
    }
    for good in [1, crate::store::MAX_PAGE_SIZE] {
        assert_eq!(
            store
                .list_roles(&owner, None, good)
                .await
                .expect("list_roles at a bound"),
            std::slice::from_ref(&role),
            "limit {good}"
        );
    }
}
