//! Finding 1, **rotation is issuing**: rotating a key needs what issuing its
//! successor would (the keys grant of an admin session or a management
//! token, the ceiling of an inheriting PAT).

use super::{as_token, assert_rotates, assert_rotation_refused, workspace_kinds};
use crate::support::{Backend, Directory, clock_at, need, owner, perms};
use keyward_core::chrono::TimeDelta;
use keyward_core::{Actor, IssueRequest, PermissionSet, Session, TokenKind};

/// An admin of a workspace holding only `reports.read` cannot rotate the
/// workspace's `*` key: the successor would hand them everything.
pub async fn rotating_needs_the_keys_grant_for_an_admin_session(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let root = keyward
        .issue(
            &Actor::operator("setup"),
            IssueRequest::new("tak", workspace.clone(), "root").scopes(perms(&["*"])),
        )
        .await
        .unwrap();
    let reporter = Actor::from(
        Session::new(owner("user"), perms(&["reports.read"])).with_admin_of(workspace.clone()),
    );
    assert_rotation_refused(
        &keyward,
        &reporter,
        &root.key,
        "a reports.read admin rotating a * key",
    )
    .await;
    keyward
        .verify(root.token.expose_secret(), &need("anything.at.all"))
        .await
        .expect("the refused rotation left the key working");

    // An admin who holds everything the key carries rotates it.
    let owner_admin =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(workspace.clone()));
    assert_rotates(&keyward, &owner_admin, &root, &need("anything.at.all")).await;
}

/// A management token that may create and delete API keys cannot rotate
/// an API key carrying `billing.*`, which it does not hold; one holding the
/// key's grant can.
pub async fn rotating_needs_the_keys_grant_for_a_management_token(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("setup");
    let billing = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", workspace.clone(), "billing").scopes(perms(&["billing.*"])),
        )
        .await
        .unwrap();
    let janitor = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "janitor")
                .scopes(perms(&["api_keys.create", "api_keys.delete"])),
        )
        .await
        .unwrap();
    let as_janitor = as_token(&keyward, &janitor).await;
    assert_rotation_refused(
        &keyward,
        &as_janitor,
        &billing.key,
        "a management token rotating a key wider than itself",
    )
    .await;
    keyward
        .verify(billing.token.expose_secret(), &need("billing.refund"))
        .await
        .expect("the refused rotation left the key working");

    // A key within what the token holds: it rotates, and the successor works.
    let viewer = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", workspace.clone(), "viewer").scopes(perms(&["projects.view"])),
        )
        .await
        .unwrap();
    let creator_only = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "creator")
                .scopes(perms(&["api_keys.create", "projects.view"])),
        )
        .await
        .unwrap();
    // Rotation takes the predecessor away too: create alone is not enough.
    assert_rotation_refused(
        &keyward,
        &as_token(&keyward, &creator_only).await,
        &viewer.key,
        "rotating without the revoke permission",
    )
    .await;
    let rotator = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "rotator").scopes(perms(&[
                "api_keys.create",
                "api_keys.delete",
                "projects.view",
            ])),
        )
        .await
        .unwrap();
    let as_rotator = as_token(&keyward, &rotator).await;
    assert_rotates(&keyward, &as_rotator, &viewer, &need("projects.view")).await;
}

/// An admin of a user holding nothing cannot rotate that user's inheriting
/// PAT: its successor would act with everything the user holds.
pub async fn rotating_an_inheriting_pat_needs_its_ceiling(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let directory = Directory::default();
    let keyward = backend
        .builder()
        .kind(TokenKind::new("pat").unwrap())
        .owner_permissions(directory.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let alice = owner("user");
    directory.set(&alice, &["repo.read", "repo.write", "org.admin"]);
    let as_alice = Actor::from(Session::new(alice.clone(), directory.of(&alice)));
    let pat = keyward
        .issue(
            &as_alice,
            IssueRequest::new("pat", alice.clone(), "laptop").inherit_owner(None),
        )
        .await
        .unwrap();
    assert_eq!(pat.key.permissions, directory.of(&alice));

    let empty_admin =
        Actor::from(Session::new(owner("user"), PermissionSet::new()).with_admin_of(alice.clone()));
    assert_rotation_refused(&keyward, &empty_admin, &pat.key, "an admin holding nothing").await;
    keyward
        .verify(pat.token.expose_secret(), &need("org.admin"))
        .await
        .expect("the refused rotation left the PAT working");

    // Alice, holding what she holds, rotates her own PAT; the successor
    // inherits her permissions.
    let successor = assert_rotates(&keyward, &as_alice, &pat, &need("org.admin")).await;
    assert!(successor.key.inherits_owner);
    // An admin holding everything rotates the successor.
    let full_admin =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(alice.clone()));
    clock.advance(TimeDelta::hours(2));
    assert_rotates(&keyward, &full_admin, &successor, &need("repo.write")).await;
}
