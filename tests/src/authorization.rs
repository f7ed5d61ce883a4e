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

use crate::support::{Backend, Directory, clock_at, need, owner, perms, role};
use keyward_core::chrono::{DateTime, TimeDelta, Utc};
use keyward_core::testkit::ManualClock;
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, IssuedKey, KeyDetails, KeyId, Keyward, Lifetime,
    ListRequest, Manages, Owner, PermissionSet, Rejection, Requirement, Role, RoleName, Session,
    Status, TokenKind, audit::AuditAction, audit::AuditOutcome, audit::AuditQuery, hooks::Clock,
    hooks::Decision, hooks::IssueContext, hooks::IssueHook, store::KeyStore, store::Metadata,
    store::async_trait,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

// ------------------------------------------------------------------ helpers

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
        .catalog(perms(&MANAGEMENT))
        .unwrap()
        .manages(Manages {
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

// --------------------------------------------------- 1. rotation is issuing

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
        Session::new(owner("user"), perms(&["reports.read"])).admin_of(workspace.clone()),
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
        Actor::from(Session::new(owner("user"), perms(&["*"])).admin_of(workspace.clone()));
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
        Actor::from(Session::new(owner("user"), PermissionSet::new()).admin_of(alice.clone()));
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
        Actor::from(Session::new(owner("user"), perms(&["*"])).admin_of(alice.clone()));
    clock.advance(TimeDelta::hours(2));
    assert_rotates(&keyward, &full_admin, &successor, &need("repo.write")).await;
}

// ---------------------------------------------------- 2. roles are granting

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
    let nobody =
        Actor::from(Session::new(owner("user"), PermissionSet::new()).admin_of(workspace.clone()));

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
        Session::new(owner("user"), perms(&["deploy.*", "reports.*"])).admin_of(tenant_a.clone()),
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
        Actor::from(Session::new(owner("user"), perms(held)).admin_of(workspace.clone()))
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
        assert_eq!(
            role_of(&keyward, &workspace, &name).await,
            Some(perms(&["projects.view"]))
        );
    }
}

// --------------------------------------------------------------- 3. kinds

/// `build()` refuses a kind whose tokens could mint their own kind.
pub async fn build_refuses_a_kind_that_manages_itself(backend: Backend) {
    let selfish = TokenKind::new("mgmt").unwrap().manages(Manages {
        kind: "mgmt".to_owned(),
        create: "tokens.create".parse().unwrap(),
        view: "tokens.view".parse().unwrap(),
        revoke: "tokens.revoke".parse().unwrap(),
        enable: "tokens.enable".parse().unwrap(),
    });
    let built = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .kind(selfish)
        .build();
    assert!(
        matches!(built, Err(Error::InvalidInput { field: "kinds", .. })),
        "{built:?}"
    );
    // The same kind managing API keys instead builds.
    backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .kind(mgmt_kind())
        .build()
        .expect("a kind managing another, non-managing kind is fine");
}

/// `build()` refuses a kind managing a kind that itself manages tokens (a
/// chain `root → mgmt → tak`, or a circle), which could reach its own kind.
pub async fn build_refuses_a_chain_of_managing_kinds(backend: Backend) {
    let manages = |kind: &str| Manages {
        kind: kind.to_owned(),
        create: "tokens.create".parse().unwrap(),
        view: "tokens.view".parse().unwrap(),
        revoke: "tokens.revoke".parse().unwrap(),
        enable: "tokens.enable".parse().unwrap(),
    };
    let chain = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .kind(TokenKind::new("mgmt").unwrap().manages(manages("tak")))
        .kind(TokenKind::new("root").unwrap().manages(manages("mgmt")))
        .build();
    assert!(
        matches!(chain, Err(Error::InvalidInput { field: "kinds", .. })),
        "{chain:?}"
    );
    let circle = backend
        .builder()
        .kind(TokenKind::new("left").unwrap().manages(manages("right")))
        .kind(TokenKind::new("right").unwrap().manages(manages("left")))
        .build();
    assert!(
        matches!(circle, Err(Error::InvalidInput { field: "kinds", .. })),
        "{circle:?}"
    );
    // Two managing kinds side by side, each managing a plain kind, build.
    backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .kind(TokenKind::new("mgmt").unwrap().manages(manages("tak")))
        .kind(TokenKind::new("root").unwrap().manages(manages("tak")))
        .build()
        .expect("no chain");
}

/// A session holding less than its user's directory permissions cannot
/// mint its own inheriting PAT that could do more than the session holds
/// now; a full session can.
pub async fn a_narrowed_session_cannot_mint_a_pat_wider_than_itself(backend: Backend) {
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
    // Signed in with a step-down session (say, a read-only device login).
    let narrowed = Actor::from(Session::new(alice.clone(), perms(&["repo.read"])));
    for (ceiling, what) in [
        (None, "no ceiling"),
        (Some(perms(&["*"])), "a * ceiling"),
        (Some(perms(&["repo.*"])), "a repo.* ceiling"),
        (
            Some(perms(&["repo.read", "org.admin"])),
            "a ceiling naming org.admin",
        ),
    ] {
        let events = audit_count(&keyward).await;
        refused(
            keyward
                .issue(
                    &narrowed,
                    IssueRequest::new("pat", alice.clone(), "wide").inherit_owner(ceiling),
                )
                .await,
            what,
        );
        assert_one_refusal_audited(&keyward, events, AuditAction::Issue, &narrowed).await;
        assert!(keys_of(&keyward, &alice).await.is_empty(), "{what}: no key");
    }
    // Within what the session holds: fine.
    let read = keyward
        .issue(
            &narrowed,
            IssueRequest::new("pat", alice.clone(), "read")
                .inherit_owner(Some(perms(&["repo.read"]))),
        )
        .await
        .expect("a ceiling within the session");
    assert_eq!(read.key.permissions, perms(&["repo.read"]));
    // A ceiling wider than the session but whose part the user holds is
    // within it: what it could do now is repo.read.
    let capped = keyward
        .issue(
            &narrowed,
            IssueRequest::new("pat", alice.clone(), "capped")
                .inherit_owner(Some(perms(&["repo.read", "billing.read"]))),
        )
        .await
        .expect("what the token could do now is within the session");
    assert_eq!(capped.key.permissions, perms(&["repo.read"]));

    // A full session (holding what the directory says) mints a full PAT.
    let full = Actor::from(Session::new(alice.clone(), directory.of(&alice)));
    let everything = keyward
        .issue(
            &full,
            IssueRequest::new("pat", alice.clone(), "everything").inherit_owner(None),
        )
        .await
        .expect("a full session mints its inheriting PAT");
    assert_eq!(everything.key.permissions, directory.of(&alice));
    // …which the narrowed session cannot rotate, since rotating is issuing.
    assert_rotation_refused(
        &keyward,
        &narrowed,
        &everything.key,
        "a narrowed session rotating",
    )
    .await;
}

// ------------------------------------------------------- 4. the plan gate

/// What the issue hook saw, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    actor: String,
    kind: String,
    owner: Owner,
    name: String,
    scopes: PermissionSet,
    roles: BTreeSet<RoleName>,
    inherits_owner: bool,
    grant: PermissionSet,
    expires_at: Option<DateTime<Utc>>,
    metadata: Metadata,
    replaces: Option<KeyId>,
}

/// A plan gate: refuses owners on the free plan, and records every request.
#[derive(Debug, Clone, Default)]
struct PlanGate {
    free: Arc<Mutex<BTreeSet<Owner>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl PlanGate {
    fn downgrade(&self, owner: &Owner) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(owner.clone());
    }
    fn upgrade(&self, owner: &Owner) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(owner);
    }
    fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
            .expect("the hook was asked")
    }
    fn asked(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

const FREE_PLAN: &str = "API keys are a Pro feature";

#[async_trait]
impl IssueHook for PlanGate {
    async fn check(&self, request: &IssueContext<'_>) -> Result<Decision, Error> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen {
                actor: request.actor.label(),
                kind: request.kind.prefix().to_owned(),
                owner: request.owner.clone(),
                name: request.name.to_owned(),
                scopes: request.scopes.clone(),
                roles: request.roles.clone(),
                inherits_owner: request.inherits_owner,
                grant: request.grant.clone(),
                expires_at: request.expires_at,
                metadata: request.metadata.clone(),
                replaces: request.replaces.cloned(),
            });
        let free = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(request.owner);
        Ok(if free {
            Decision::Refuse(FREE_PLAN.to_owned())
        } else {
            Decision::Allow
        })
    }
}

fn mt_kind(policy: ExpiryPolicy) -> TokenKind {
    TokenKind::new("mt").unwrap().expiry(policy)
}

fn months(choices: &[u32], default: u32) -> ExpiryPolicy {
    ExpiryPolicy::choices(
        choices.iter().map(|&m| Lifetime::Months(m)),
        Lifetime::Months(default),
    )
    .unwrap()
}

/// An account downgraded to the free plan cannot rotate its key into a
/// fresh one: the plan gate is asked on rotation too (it sees `replaces`).
pub async fn the_plan_gate_refuses_rotation_too(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let gate = PlanGate::default();
    let keyward = backend
        .builder()
        .kind(mt_kind(months(&[1, 3, 6], 3)))
        .issue_hook(gate.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let account = owner("account");
    let user = Actor::from(Session::new(owner("user"), perms(&["*"])).admin_of(account.clone()));
    let key = keyward
        .issue(
            &user,
            IssueRequest::new("mt", account.clone(), "zapier").scopes(perms(&["orders.read"])),
        )
        .await
        .expect("a paying account issues");
    assert_eq!(gate.last().replaces, None);

    gate.downgrade(&account);
    let before = details(&keyward, &key.key.id).await;
    let events = audit_count(&keyward).await;
    let asked = gate.asked();
    let rotated = keyward
        .rotate(&user, &key.key.id, TimeDelta::hours(1))
        .await;
    assert!(
        matches!(&rotated, Err(Error::RefusedByPolicy { reason }) if reason == FREE_PLAN),
        "{rotated:?}"
    );
    assert_eq!(gate.asked(), asked + 1, "the gate was asked once");
    assert_eq!(gate.last().replaces.as_ref(), Some(&key.key.id));
    assert_unchanged(&keyward, &before).await;
    assert_eq!(keys_of(&keyward, &account).await.len(), 1, "no successor");
    assert_one_refusal_audited(&keyward, events, AuditAction::Rotate, &user).await;
    keyward
        .verify(key.token.expose_secret(), &need("orders.read"))
        .await
        .expect("the key keeps working, unrotated");
    // Issuing is refused the same way.
    let issued = keyward
        .issue(&user, IssueRequest::new("mt", account.clone(), "another"))
        .await;
    assert!(
        matches!(&issued, Err(Error::RefusedByPolicy { .. })),
        "{issued:?}"
    );
    assert_eq!(keys_of(&keyward, &account).await.len(), 1, "no key issued");

    gate.upgrade(&account);
    assert_rotates(&keyward, &user, &key, &need("orders.read")).await;
}

/// The hook sees the whole request, on issue and on rotation: kind, owner,
/// name, scopes, roles, the grant with the roles' permissions, the expiry,
/// the metadata, the actor and, on rotation, the key replaced.
pub async fn the_issue_hook_sees_the_whole_request(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let gate = PlanGate::default();
    let keyward = backend
        .builder()
        .kind(mt_kind(months(&[1, 3, 6], 3)))
        .issue_hook(gate.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let account = owner("account");
    let user = Actor::from(Session::new(owner("user"), perms(&["*"])).admin_of(account.clone()));
    let reader = role("reader");
    keyward
        .put_role(
            &user,
            Role::new(account.clone(), reader.clone(), perms(&["invoices.read"])),
        )
        .await
        .unwrap();
    let issued = keyward
        .issue(
            &user,
            IssueRequest::new("mt", account.clone(), "Zapier")
                .scopes(perms(&["orders.read", "orders.write"]))
                .roles([reader.clone()])
                .expires(Lifetime::Months(1))
                .metadata("plan", "pro")
                .metadata("integration", "zapier"),
        )
        .await
        .unwrap();
    let metadata: Metadata = [("plan", "pro"), ("integration", "zapier")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let on_issue = Seen {
        actor: user.label(),
        kind: "mt".to_owned(),
        owner: account.clone(),
        name: "Zapier".to_owned(),
        scopes: perms(&["orders.read", "orders.write"]),
        roles: BTreeSet::from([reader.clone()]),
        inherits_owner: false,
        grant: perms(&["invoices.read", "orders.read", "orders.write"]),
        expires_at: issued.key.expires_at,
        metadata,
        replaces: None,
    };
    assert!(issued.key.expires_at.is_some());
    assert_eq!(gate.last(), on_issue);

    clock.advance(TimeDelta::days(3));
    let operator = Actor::operator("rotation-job");
    let successor = keyward
        .rotate(&operator, &issued.key.id, TimeDelta::hours(1))
        .await
        .unwrap();
    let on_rotation = Seen {
        actor: operator.label(),
        expires_at: successor.key.expires_at,
        replaces: Some(issued.key.id.clone()),
        ..on_issue
    };
    assert_eq!(gate.last(), on_rotation);
    let lifetime = issued.key.expires_at.unwrap() - issued.key.created_at;
    assert_eq!(
        successor.key.expires_at,
        Some(clock.now() + lifetime),
        "the successor lives as long as the original did"
    );
}

/// A rotated successor never lives past what the kind's policy allows
/// now: a service restarted with a shorter policy caps it, even for a key
/// that never expired.
pub async fn a_rotated_successor_never_outlives_the_current_expiry_policy(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let lenient = backend
        .builder()
        .kind(mt_kind(
            ExpiryPolicy::choices([Lifetime::Years(1), Lifetime::Never], Lifetime::Years(1))
                .unwrap(),
        ))
        .clock(clock.clone())
        .build()
        .unwrap();
    let account = owner("account");
    let operator = Actor::operator("setup");
    let yearly = lenient
        .issue(
            &operator,
            IssueRequest::new("mt", account.clone(), "yearly"),
        )
        .await
        .unwrap();
    let forever = lenient
        .issue(
            &operator,
            IssueRequest::new("mt", account.clone(), "forever").expires(Lifetime::Never),
        )
        .await
        .unwrap();
    assert_eq!(forever.key.expires_at, None);

    // The deployment tightens the policy to one month and restarts.
    let gate = PlanGate::default();
    let strict = backend
        .builder()
        .kind(mt_kind(months(&[1], 1)))
        .issue_hook(gate.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    clock.advance(TimeDelta::days(1));
    let admin = Actor::from(Session::new(owner("user"), perms(&["*"])).admin_of(account.clone()));
    let month_from_now = clock
        .now()
        .checked_add_months(keyward_core::chrono::Months::new(1));
    for old in [&yearly, &forever] {
        let successor = strict
            .rotate(&admin, &old.key.id, TimeDelta::zero())
            .await
            .unwrap();
        assert_eq!(
            successor.key.expires_at, month_from_now,
            "{}: capped by the policy in force",
            old.key.name
        );
        assert_eq!(
            gate.last().expires_at,
            month_from_now,
            "the hook sees the capped expiry"
        );
        assert_eq!(
            details(&strict, &successor.key.id).await.expires_at,
            month_from_now,
            "stored as returned"
        );
    }
    clock.advance(TimeDelta::days(32));
    for key in keys_of(&strict, &account).await {
        assert_ne!(
            key.status,
            Status::Active,
            "{} outlived the policy",
            key.name
        );
    }
}

// ------------------------------------------------------------ 5. catalogs

/// No one, not an operator nor a `*` session, mints a token of a kind with
/// a catalog holding anything outside it, directly or through a role.
pub async fn a_catalog_bounds_every_token_of_its_kind(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("console");
    let everything =
        Actor::from(Session::new(owner("user"), perms(&["*"])).admin_of(workspace.clone()));
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

// ------------------------------------------- 6. requirements naming kinds

/// An API key holding `projects.manage` does not pass a management
/// route's requirement accepting only management tokens (403); the
/// management token does.
pub async fn a_requirement_naming_kinds_refuses_other_kinds(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("console");
    let api_key = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", workspace.clone(), "api").scopes(perms(&["projects.manage"])),
        )
        .await
        .unwrap();
    let mgmt = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "mgmt")
                .scopes(perms(&["projects.manage"])),
        )
        .await
        .unwrap();
    let management_route = Requirement::all_of(["projects.manage"])
        .unwrap()
        .for_kinds(["mgmt"])
        .unwrap();
    let answer = keyward
        .verify(api_key.token.expose_secret(), &management_route)
        .await;
    match &answer {
        Err(rejection @ Rejection::KindNotAccepted) => {
            assert_eq!(rejection.public_answer().status, 403);
        }
        other => panic!("expected KindNotAccepted, got {other:?}"),
    }
    // A second presentation (a cache hit, with a cache) answers the same.
    let again = keyward
        .verify(api_key.token.expose_secret(), &management_route)
        .await;
    assert!(
        matches!(again, Err(Rejection::KindNotAccepted)),
        "{again:?}"
    );
    // The same permission without the kind restriction passes the API key.
    keyward
        .verify(
            api_key.token.expose_secret(),
            &Requirement::all_of(["projects.manage"]).unwrap(),
        )
        .await
        .expect("the API key holds the permission");
    let verified = keyward
        .verify(mgmt.token.expose_secret(), &management_route)
        .await
        .expect("the management token passes");
    assert_eq!(verified.kind(), "mgmt");
}

// ------------------------------------------------------ 7. enable is its own

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

// ------------------------------------------------------- the property test

/// Grants sessions, directories and keys draw from.
const GRANTS: [&str; 7] = ["a", "a.x", "a.y", "b", "b.x", "*", "a.*"];
/// What a management token needs to manage keys.
const MANAGE_GRANTS: [&str; 4] = ["k.create", "k.view", "k.revoke", "k.enable"];
/// Scopes an issue asks for.
const SCOPES: [&str; 11] = [
    "a", "a.x", "a.y", "b", "b.x", "*", "a.*", "k.create", "k.view", "k.revoke", "k.enable",
];
/// How many owners a sequence plays with.
const OWNERS: usize = 3;
/// Role names, in each owner's namespace.
const ROLE_NAMES: [&str; 2] = ["r0", "r1"];
/// API keys, PATs (catalog `a`, `a.*`, `b`), management tokens managing both
/// (catalog `k.*`, `a`, `a.*`, `b`, `b.x`).
const KINDS: [&str; 3] = ["tak", "pat", "mgmt"];
const PAT_CATALOG: [&str; 3] = ["a", "a.*", "b"];
const MGMT_CATALOG: [&str; 5] = ["k.*", "a", "a.*", "b", "b.x"];

/// Who makes a call.
#[derive(Debug, Clone)]
pub enum Who {
    /// An operator.
    Operator,
    /// A user `subject` holding `holds`, administering `admin_of`.
    Session {
        /// The user (an owner index).
        subject: usize,
        /// What the session holds.
        holds: Vec<&'static str>,
        /// Owners the user administers.
        admin_of: Vec<usize>,
    },
    /// A user holding exactly their directory permissions now.
    FullSession {
        /// The user.
        subject: usize,
        /// Owners the user administers.
        admin_of: Vec<usize>,
    },
    /// The n-th token issued so far (modulo), verified just before the call;
    /// the step is skipped if it no longer verifies.
    Token(usize),
}

/// How an issued key gets its permissions.
#[derive(Debug, Clone)]
pub enum Inherit {
    /// Its scopes, directly.
    No,
    /// Its owner's, uncapped (`inherit_owner(None)`).
    Owner,
    /// Its owner's, capped.
    Ceiling(Vec<&'static str>),
}

/// Which key a call names: the n-th issued so far (modulo), among all or
/// among the API keys and PATs of the actor's own owner.
#[derive(Debug, Clone, Copy)]
pub struct Pick {
    /// Only API keys and PATs of the actor's owner (a session's user, a
    /// token's owner): what a management token may manage.
    own: bool,
    /// Which one.
    n: usize,
}

/// One management call. Owner numbers are owners, or (`OWNERS`) the
/// actor's own owner.
#[derive(Debug, Clone)]
pub enum Call {
    /// Issue a key of `KINDS[kind]` for `owner`.
    Issue {
        /// Index into `KINDS`.
        kind: usize,
        /// The owner.
        owner: usize,
        /// Direct scopes.
        scopes: Vec<&'static str>,
        /// Roles (indexes into `ROLE_NAMES`).
        roles: Vec<usize>,
        /// Inheritance.
        inherit: Inherit,
        /// The lifetime asked for.
        expires: Option<Lifetime>,
    },
    /// Rotate a key.
    Rotate {
        /// Which key.
        key: Pick,
        /// The overlap in minutes.
        overlap: i64,
    },
    /// Revoke a key.
    Revoke(Pick),
    /// Disable a key.
    Disable(Pick),
    /// Enable a key.
    Enable(Pick),
    /// Put a role.
    PutRole {
        /// The owner.
        owner: usize,
        /// Index into `ROLE_NAMES`.
        role: usize,
        /// What it grants.
        grants: Vec<&'static str>,
    },
    /// Delete a role.
    DeleteRole {
        /// The owner.
        owner: usize,
        /// Index into `ROLE_NAMES`.
        role: usize,
    },
    /// Read an owner's roles.
    Roles(usize),
    /// Read a key.
    Get(Pick),
    /// List an owner's keys, of one kind or all.
    List {
        /// The owner.
        owner: usize,
        /// Index into `KINDS`.
        kind: Option<usize>,
    },
    /// Read audit events, of one owner or all.
    Audit(Option<usize>),
    /// Keys of every owner expiring within 30 days.
    Expiring,
}

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Step {
    /// A management call by someone.
    Call(Who, Call),
    /// The host's directory changes what an owner holds.
    Directory(usize, Vec<&'static str>),
    /// Time passes (minutes).
    Advance(i64),
}

/// A random sequence: each owner's directory permissions, the roles an
/// operator puts first (per owner, per role name), then the steps.
#[derive(Debug, Clone)]
pub struct Sequence {
    directory: Vec<Vec<&'static str>>,
    roles: Vec<Vec<Option<Vec<&'static str>>>>,
    steps: Vec<Step>,
}

mod strategies {
    use super::{
        Call, GRANTS, Inherit, KINDS, Lifetime, MANAGE_GRANTS, OWNERS, Pick, ROLE_NAMES, SCOPES,
        Sequence, Step, Who,
    };
    use proptest::prelude::*;
    use proptest::sample::subsequence;

    fn grants() -> impl Strategy<Value = Vec<&'static str>> {
        subsequence(GRANTS.to_vec(), 0..=3)
    }

    fn scopes() -> impl Strategy<Value = Vec<&'static str>> {
        subsequence(SCOPES.to_vec(), 0..=3)
    }

    fn owner() -> impl Strategy<Value = usize> {
        0..OWNERS
    }

    fn owners() -> impl Strategy<Value = Vec<usize>> {
        subsequence((0..OWNERS).collect::<Vec<_>>(), 0..=2)
    }

    /// An owner a call names: one of the owners, or (half the time) the
    /// actor's own.
    fn target() -> impl Strategy<Value = usize> {
        prop_oneof![0..OWNERS, Just(OWNERS)]
    }

    fn key() -> impl Strategy<Value = usize> {
        0usize..16
    }

    fn pick() -> impl Strategy<Value = Pick> {
        (any::<bool>(), key()).prop_map(|(own, n)| Pick { own, n })
    }

    fn who() -> impl Strategy<Value = Who> {
        prop_oneof![
            2 => Just(Who::Operator),
            3 => (owner(), grants(), owners())
                .prop_map(|(subject, holds, admin_of)| Who::Session { subject, holds, admin_of }),
            2 => (owner(), owners()).prop_map(|(subject, admin_of)| Who::FullSession { subject, admin_of }),
            4 => key().prop_map(Who::Token),
        ]
    }

    fn inherit() -> impl Strategy<Value = Inherit> {
        prop_oneof![
            3 => Just(Inherit::No),
            1 => Just(Inherit::Owner),
            1 => grants().prop_map(Inherit::Ceiling),
        ]
    }

    fn expires() -> impl Strategy<Value = Option<Lifetime>> {
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(Lifetime::Days(1))),
            1 => Just(Some(Lifetime::Never)),
            1 => Just(Some(Lifetime::Days(7))),
        ]
    }

    fn issue() -> impl Strategy<Value = Call> {
        let roles = prop_oneof![
            2 => Just(Vec::new()),
            1 => subsequence((0..ROLE_NAMES.len()).collect::<Vec<_>>(), 1..=2),
        ];
        (
            0..KINDS.len(),
            target(),
            scopes(),
            roles,
            inherit(),
            expires(),
        )
            .prop_map(
                |(kind, owner, scopes, roles, inherit, expires)| Call::Issue {
                    kind,
                    owner,
                    scopes,
                    roles,
                    inherit,
                    expires,
                },
            )
    }

    /// An operator mints a management token holding some of the management
    /// permissions and some grants.
    fn mint_management_token() -> impl Strategy<Value = Step> {
        (
            owner(),
            subsequence(MANAGE_GRANTS.to_vec(), 2..=4),
            subsequence(vec!["a", "a.x", "b"], 1..=3),
        )
            .prop_map(|(owner, mut scopes, grants)| {
                scopes.extend(grants);
                Step::Call(
                    Who::Operator,
                    Call::Issue {
                        kind: 2,
                        owner,
                        scopes,
                        roles: Vec::new(),
                        inherit: Inherit::No,
                        expires: None,
                    },
                )
            })
    }

    fn call() -> impl Strategy<Value = Call> {
        let role = 0..ROLE_NAMES.len();
        prop_oneof![
            5 => issue(),
            3 => (pick(), 0i64..120).prop_map(|(key, overlap)| Call::Rotate { key, overlap }),
            1 => pick().prop_map(Call::Revoke),
            2 => pick().prop_map(Call::Disable),
            3 => pick().prop_map(Call::Enable),
            3 => (target(), role.clone(), grants())
                .prop_map(|(owner, role, grants)| Call::PutRole { owner, role, grants }),
            2 => (target(), role).prop_map(|(owner, role)| Call::DeleteRole { owner, role }),
            1 => target().prop_map(Call::Roles),
            1 => pick().prop_map(Call::Get),
            1 => (target(), proptest::option::of(0..KINDS.len()))
                .prop_map(|(owner, kind)| Call::List { owner, kind }),
            1 => proptest::option::of(target()).prop_map(Call::Audit),
            1 => Just(Call::Expiring),
        ]
    }

    /// A call a management token may well be allowed: on keys of its own
    /// owner, of a kind it manages, within the grants it is minted with.
    fn token_call() -> impl Strategy<Value = Call> {
        fn own() -> impl Strategy<Value = Pick> {
            key().prop_map(|n| Pick { own: true, n })
        }
        let inherit = prop_oneof![3 => Just(Inherit::No), 1 => Just(Inherit::Owner)];
        prop_oneof![
            3 => (0..2usize, subsequence(vec!["a", "a.x", "b"], 0..=1), inherit)
                .prop_map(|(kind, scopes, inherit)| Call::Issue {
                    kind,
                    owner: OWNERS,
                    scopes,
                    roles: Vec::new(),
                    inherit,
                    expires: None,
                }),
            2 => (own(), 0i64..120).prop_map(|(key, overlap)| Call::Rotate { key, overlap }),
            1 => own().prop_map(Call::Revoke),
            2 => own().prop_map(Call::Disable),
            2 => own().prop_map(Call::Enable),
            1 => own().prop_map(Call::Get),
            1 => (0..2usize).prop_map(|kind| Call::List { owner: OWNERS, kind: Some(kind) }),
        ]
    }

    /// An operator widens a role past a catalog (`*`, or `b.x`, outside the
    /// PATs' catalog).
    fn widen_role() -> impl Strategy<Value = Step> {
        (
            owner(),
            0..ROLE_NAMES.len(),
            grants(),
            prop_oneof![Just("*"), Just("b.x")],
        )
            .prop_map(|(owner, role, mut grants, outside)| {
                grants.push(outside);
                Step::Call(
                    Who::Operator,
                    Call::PutRole {
                        owner,
                        role,
                        grants,
                    },
                )
            })
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            1 => widen_role(),
            12 => (who(), call()).prop_map(|(who, call)| Step::Call(who, call)),
            4 => (key(), token_call()).prop_map(|(n, call)| Step::Call(Who::Token(n), call)),
            3 => mint_management_token(),
            1 => (owner(), grants()).prop_map(|(owner, grants)| Step::Directory(owner, grants)),
            1 => (1i64..3000).prop_map(Step::Advance),
        ]
    }

    /// Sequences of 1..40 steps over three owners.
    pub(super) fn sequences() -> impl Strategy<Value = Sequence> {
        // Roles start within every catalog; edits may widen them later.
        let start = subsequence(vec!["a", "a.x", "a.y", "b", "a.*"], 0..=2);
        let role = prop_oneof![1 => Just(None), 3 => start.prop_map(Some)];
        (
            proptest::collection::vec(grants(), OWNERS),
            proptest::collection::vec(proptest::collection::vec(role, ROLE_NAMES.len()), OWNERS),
            proptest::collection::vec(step(), 1..40),
        )
            .prop_map(|(directory, roles, steps)| Sequence {
                directory,
                roles,
                steps,
            })
    }
}

fn owner_at(n: usize) -> Owner {
    Owner::new(&format!("owner:{n}")).unwrap()
}

fn role_name(n: usize) -> RoleName {
    RoleName::new(ROLE_NAMES[n % ROLE_NAMES.len()]).unwrap()
}

fn kind_grant(name: &str) -> keyward_core::Permission {
    name.parse().unwrap()
}

/// The service the property test drives: API keys with a live-key limit of
/// 4 and a one-day or no expiry, PATs and management tokens with catalogs,
/// management tokens managing both.
fn property_service(
    store: Arc<dyn KeyStore>,
    clock: &ManualClock,
    directory: &Directory,
) -> Keyward {
    let manages = |kind: &str| Manages {
        kind: kind.to_owned(),
        create: kind_grant("k.create"),
        view: kind_grant("k.view"),
        revoke: kind_grant("k.revoke"),
        enable: kind_grant("k.enable"),
    };
    Keyward::builder_arc(store)
        .kind(TokenKind::new("tak").unwrap().live_limit(4).expiry(
            ExpiryPolicy::choices([Lifetime::Days(1), Lifetime::Never], Lifetime::Never).unwrap(),
        ))
        .kind(
            TokenKind::new("pat")
                .unwrap()
                .catalog(perms(&PAT_CATALOG))
                .unwrap(),
        )
        .kind(
            TokenKind::new("mgmt")
                .unwrap()
                .catalog(perms(&MGMT_CATALOG))
                .unwrap()
                .manages(manages("tak"))
                .manages(manages("pat")),
        )
        .owner_permissions(directory.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// The actor of a step, and what the model says it holds.
struct Acting {
    actor: Actor,
    /// What it holds; `None` for an operator.
    held: Option<PermissionSet>,
    /// For a session: whom it manages.
    manages: Option<BTreeSet<usize>>,
    /// Its own owner: a session's user, a token's owner (0 for an operator).
    home: usize,
}

impl Acting {
    fn label(&self) -> String {
        self.actor.label()
    }

    fn session_manages(&self, owner: &Owner) -> bool {
        self.manages
            .as_ref()
            .is_some_and(|m| m.iter().any(|n| &owner_at(*n) == owner))
    }

    fn token(&self) -> Option<&keyward_core::VerifiedKey> {
        match &self.actor {
            Actor::Token(v) => Some(v),
            _ => None,
        }
    }
}

/// Everything a refused call must leave alone: every key of every owner
/// (as an operator lists them, permissions resolved), every role, and how
/// many audit events there are.
#[derive(Debug, PartialEq)]
struct Snapshot {
    keys: Vec<String>,
    roles: BTreeMap<(usize, usize), PermissionSet>,
    audit: Vec<keyward_core::audit::AuditEvent>,
}

async fn snapshot(keyward: &Keyward) -> Snapshot {
    let operator = Actor::operator("snapshot");
    let mut keys = Vec::new();
    let mut roles = BTreeMap::new();
    let names: Vec<RoleName> = (0..ROLE_NAMES.len()).map(role_name).collect();
    for n in 0..OWNERS {
        for key in keys_of(keyward, &owner_at(n)).await {
            keys.push(format!("{key:?}"));
        }
        for role in keyward
            .roles(&operator, &owner_at(n), &names)
            .await
            .unwrap()
        {
            let at = ROLE_NAMES
                .iter()
                .position(|r| *r == role.name.as_str())
                .unwrap();
            roles.insert((n, at), role.permissions);
        }
    }
    let audit = keyward
        .audit_events(&operator, AuditQuery::newest(1000))
        .await
        .unwrap();
    Snapshot { keys, roles, audit }
}

/// What a call that went through did.
enum Done {
    /// Issued or rotated: a new token.
    Minted { issued: IssuedKey, rotation: bool },
    /// Revoked, disabled or enabled.
    State {
        key: KeyDetails,
        action: AuditAction,
    },
    /// A role was put (`Some`) or deleted (`None`).
    Role {
        owner: usize,
        role: usize,
        now: Option<PermissionSet>,
    },
    /// A read of `owner`'s data (`None`: across owners), of one kind or all.
    Read {
        owner: Option<Owner>,
        kind: Option<String>,
    },
}

struct World {
    /// Every key issued so far, its owner and its kind.
    keys: Vec<(KeyId, Owner, String)>,
    tokens: Vec<String>,
}

impl World {
    fn key(&self, pick: Pick, home: usize) -> KeyId {
        let home = owner_at(home);
        let candidates: Vec<&KeyId> = self
            .keys
            .iter()
            .filter(|(_, owner, kind)| !pick.own || (*owner == home && kind != "mgmt"))
            .map(|(id, _, _)| id)
            .collect();
        match candidates.get(pick.n % candidates.len().max(1)) {
            Some(id) => (*id).clone(),
            None => KeyId::parse("NoSuchKey0").unwrap(),
        }
    }
}

async fn acting(
    keyward: &Keyward,
    directory: &Directory,
    world: &World,
    who: &Who,
) -> Option<Acting> {
    let session = |subject: usize, holds: PermissionSet, admin_of: &[usize]| {
        let mut session = Session::new(owner_at(subject), holds.clone());
        let mut manages = BTreeSet::from([subject]);
        for n in admin_of {
            session = session.admin_of(owner_at(*n));
            manages.insert(*n);
        }
        Acting {
            actor: Actor::Session(session),
            held: Some(holds),
            manages: Some(manages),
            home: subject,
        }
    };
    Some(match who {
        Who::Operator => Acting {
            actor: Actor::operator("property"),
            held: None,
            manages: None,
            home: 0,
        },
        Who::Session {
            subject,
            holds,
            admin_of,
        } => session(*subject, perms(holds), admin_of),
        Who::FullSession { subject, admin_of } => {
            session(*subject, directory.of(&owner_at(*subject)), admin_of)
        }
        Who::Token(n) => {
            let token = world.tokens.get(n % world.tokens.len().max(1))?;
            let verified = keyward.verify(token, &Requirement::nothing()).await.ok()?;
            let home = (0..OWNERS)
                .find(|n| &owner_at(*n) == verified.owner())
                .unwrap_or(0);
            Acting {
                held: Some(verified.permissions().clone()),
                actor: Actor::Token(verified),
                manages: None,
                home,
            }
        }
    })
}

async fn perform(
    keyward: &Keyward,
    acting: &Acting,
    call: &Call,
    world: &World,
) -> Result<Done, Error> {
    let actor = &acting.actor;
    let home = acting.home;
    // An owner number past the owners means the actor's own.
    let owner_of = |n: usize| if n >= OWNERS { home } else { n };
    match call {
        Call::Issue {
            kind,
            owner,
            scopes,
            roles,
            inherit,
            expires,
        } => {
            let mut request = IssueRequest::new(KINDS[*kind], owner_at(owner_of(*owner)), "key")
                .roles(roles.iter().map(|r| role_name(*r)));
            request = match inherit {
                Inherit::No => request.scopes(perms(scopes)),
                Inherit::Owner => request.inherit_owner(None),
                Inherit::Ceiling(ceiling) => request.inherit_owner(Some(perms(ceiling))),
            };
            if let Some(lifetime) = expires {
                request = request.expires(*lifetime);
            }
            let issued = keyward.issue(actor, request).await?;
            Ok(Done::Minted {
                issued,
                rotation: false,
            })
        }
        Call::Rotate { key, overlap } => {
            let issued = keyward
                .rotate(actor, &world.key(*key, home), TimeDelta::minutes(*overlap))
                .await?;
            Ok(Done::Minted {
                issued,
                rotation: true,
            })
        }
        Call::Revoke(n) => Ok(Done::State {
            key: keyward.revoke(actor, &world.key(*n, home)).await?,
            action: AuditAction::Revoke,
        }),
        Call::Disable(n) => Ok(Done::State {
            key: keyward.disable(actor, &world.key(*n, home)).await?,
            action: AuditAction::Disable,
        }),
        Call::Enable(n) => Ok(Done::State {
            key: keyward.enable(actor, &world.key(*n, home)).await?,
            action: AuditAction::Enable,
        }),
        Call::PutRole {
            owner,
            role,
            grants,
        } => {
            keyward
                .put_role(
                    actor,
                    Role::new(owner_at(owner_of(*owner)), role_name(*role), perms(grants)),
                )
                .await?;
            Ok(Done::Role {
                owner: owner_of(*owner),
                role: *role,
                now: Some(perms(grants)),
            })
        }
        Call::DeleteRole { owner, role } => {
            keyward
                .delete_role(actor, &owner_at(owner_of(*owner)), &role_name(*role))
                .await?;
            Ok(Done::Role {
                owner: owner_of(*owner),
                role: *role,
                now: None,
            })
        }
        Call::Roles(owner) => {
            let names: Vec<RoleName> = (0..ROLE_NAMES.len()).map(role_name).collect();
            keyward
                .roles(actor, &owner_at(owner_of(*owner)), &names)
                .await?;
            Ok(Done::Read {
                owner: Some(owner_at(owner_of(*owner))),
                kind: None,
            })
        }
        Call::Get(n) => {
            let key = keyward.get(actor, &world.key(*n, home)).await?;
            Ok(Done::Read {
                owner: Some(key.owner),
                kind: Some(key.kind),
            })
        }
        Call::List { owner, kind } => {
            let mut request = ListRequest::new(owner_at(owner_of(*owner)));
            if let Some(kind) = kind {
                request = request.kind(KINDS[*kind]);
            }
            keyward.list(actor, request).await?;
            Ok(Done::Read {
                owner: Some(owner_at(owner_of(*owner))),
                kind: kind.map(|k| KINDS[k].to_owned()),
            })
        }
        Call::Audit(owner) => {
            let mut query = AuditQuery::newest(50);
            if let Some(owner) = owner {
                query = query.owner(&owner_at(owner_of(*owner)));
            }
            keyward.audit_events(actor, query).await?;
            Ok(Done::Read {
                owner: owner.map(|n| owner_at(owner_of(n))),
                kind: None,
            })
        }
        Call::Expiring => {
            keyward
                .expiring_keys(actor, TimeDelta::days(30), 100)
                .await?;
            Ok(Done::Read {
                owner: None,
                kind: None,
            })
        }
    }
}

use proptest::test_runner::TestCaseError;

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($message)+)));
        }
    };
}

/// A token acting on keys of `kind` for `owner` must be a management token
/// of that owner, of a kind managing `kind`, holding every one of `needs`.
fn token_may(
    keyward: &Keyward,
    token: &keyward_core::VerifiedKey,
    kind: Option<&str>,
    owner: Option<&Owner>,
    needs: &[&str],
) -> bool {
    let Some(token_kind) = keyward.format().kind(token.kind()) else {
        return false;
    };
    let manages = kind.is_some_and(|k| token_kind.managed_kinds().iter().any(|m| m.kind == k));
    manages
        && owner == Some(token.owner())
        && needs
            .iter()
            .all(|n| token.permissions().covers(&kind_grant(n)))
}

/// Checks the invariants after one call.
async fn check_call(
    keyward: &Keyward,
    acting: &Acting,
    outcome: Result<Done, Error>,
    before: &Snapshot,
    after: &Snapshot,
    world: &mut World,
) -> Result<(), TestCaseError> {
    let done = match outcome {
        Err(error) => {
            // I3: a refused call changes nothing but appends one refused event.
            ensure!(
                before.keys == after.keys,
                "I3: a refused call ({error}) changed keys:\nbefore {:#?}\nafter {:#?}",
                before.keys,
                after.keys
            );
            ensure!(
                before.roles == after.roles,
                "I3: a refused call ({error}) changed roles: {:?} → {:?}",
                before.roles,
                after.roles
            );
            ensure!(
                after.audit.len() == before.audit.len() + 1,
                "I3: a refused call ({error}) appended {} audit events",
                after.audit.len() as isize - before.audit.len() as isize
            );
            ensure!(
                after.audit.get(1..) == Some(&before.audit[..]),
                "I3: a refused call ({error}) rewrote the audit log"
            );
            let newest = &after.audit[0];
            ensure!(
                matches!(newest.outcome, AuditOutcome::Refused(_))
                    && newest.actor == acting.label(),
                "I3: the event appended for a refused call ({error}) is {newest:?}"
            );
            return Ok(());
        }
        Ok(done) => done,
    };
    if let Some(token) = acting.token() {
        ensure!(
            !keyward
                .format()
                .kind(token.kind())
                .is_some_and(|k| k.managed_kinds().is_empty()),
            "an API key or PAT ({}) performed a management call",
            token.kind()
        );
    }
    match done {
        Done::Minted { issued, rotation } => {
            let key = &issued.key;
            // I1: what the new token can do right now.
            let verified = keyward
                .verify(issued.token.expose_secret(), &Requirement::nothing())
                .await;
            let verified = match verified {
                Ok(v) => v,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "a new token does not verify: {e:?}"
                    )));
                }
            };
            let can_do = verified.permissions();
            if let Some(held) = &acting.held {
                ensure!(
                    held.covers_all(can_do),
                    "I1: {} holding [{held}] handed out a {} token that can do [{can_do}] ({})",
                    acting.label(),
                    key.kind,
                    if rotation { "rotation" } else { "issue" }
                );
            }
            if let Some(catalog) = keyward
                .format()
                .kind(&key.kind)
                .and_then(TokenKind::permission_catalog)
            {
                ensure!(
                    catalog.covers_all(can_do),
                    "I1: a {} token can do [{can_do}], outside its catalog [{catalog}]",
                    key.kind
                );
                // What it carries (scopes, or the ceiling, ∪ its roles now)
                // lies within the catalog too, not only what verify resolves.
                let mut carried = key.scopes.clone();
                let home = (0..OWNERS).find(|n| owner_at(*n) == key.owner);
                for (n, name) in ROLE_NAMES.iter().enumerate() {
                    let holds_role = key.roles.iter().any(|r| r.as_str() == *name);
                    if let (true, Some(home)) = (holds_role, home)
                        && let Some(granted) = after.roles.get(&(home, n))
                    {
                        carried.extend(granted);
                    }
                }
                ensure!(
                    catalog.covers_all(&carried),
                    "I1: a {} token carries [{carried}], outside its catalog [{catalog}]",
                    key.kind
                );
            }
            if acting.manages.is_some() {
                ensure!(
                    acting.session_manages(&key.owner),
                    "a session handed out a token for {}, which it does not manage",
                    key.owner
                );
            }
            if let Some(token) = acting.token() {
                let needs: &[&str] = if rotation {
                    &["k.create", "k.revoke"]
                } else {
                    &["k.create"]
                };
                ensure!(
                    token_may(keyward, token, Some(&key.kind), Some(&key.owner), needs),
                    "a {} token of {} handed out a {} token of {}",
                    token.kind(),
                    token.owner(),
                    key.kind,
                    key.owner
                );
            }
            let action = if rotation {
                AuditAction::Rotate
            } else {
                AuditAction::Issue
            };
            ensure_one_success(before, after, action)?;
            world
                .keys
                .push((key.id.clone(), key.owner.clone(), key.kind.clone()));
            world.tokens.push(issued.token.expose_secret().to_owned());
        }
        Done::State { key, action } => {
            // I1 for enable: giving access back is granting it again, so
            // what the key can do again is within what the actor held.
            if let (AuditAction::Enable, Some(held)) = (action, &acting.held) {
                ensure!(
                    held.covers_all(&key.permissions),
                    "I1: {} holding [{held}] enabled a key that can do [{}]",
                    acting.label(),
                    key.permissions
                );
            }
            if acting.manages.is_some() {
                ensure!(
                    acting.session_manages(&key.owner),
                    "a session changed a key of {}, which it does not manage",
                    key.owner
                );
            }
            if let Some(token) = acting.token() {
                let needs: &[&str] = if action == AuditAction::Enable {
                    &["k.enable"]
                } else {
                    &["k.revoke"]
                };
                ensure!(
                    token_may(keyward, token, Some(&key.kind), Some(&key.owner), needs),
                    "a {} token of {} did {action} on a {} key of {}",
                    token.kind(),
                    token.owner(),
                    key.kind,
                    key.owner
                );
            }
            ensure_one_success(before, after, action)?;
        }
        Done::Role { owner, role, now } => {
            // I2: the actor held the old and the new permissions and
            // manages the role's owner.
            let old = before.roles.get(&(owner, role));
            ensure!(acting.token().is_none(), "I2: a token edited a role");
            if let Some(held) = &acting.held {
                ensure!(
                    acting.session_manages(&owner_at(owner)),
                    "I2: a session edited a role of {}, which it does not manage",
                    owner_at(owner)
                );
                if let Some(old) = old {
                    ensure!(
                        held.covers_all(old),
                        "I2: {} holding [{held}] replaced or deleted a role granting [{old}]",
                        acting.label()
                    );
                }
                if let Some(new) = &now {
                    ensure!(
                        held.covers_all(new),
                        "I2: {} holding [{held}] put a role granting [{new}]",
                        acting.label()
                    );
                }
            }
            let mut expected = before.roles.clone();
            match &now {
                Some(granted) => expected.insert((owner, role), granted.clone()),
                None => expected.remove(&(owner, role)),
            };
            ensure!(
                after.roles == expected,
                "the roles after the edit are {:?}, expected {expected:?}",
                after.roles
            );
            let action = if now.is_some() {
                AuditAction::PutRole
            } else {
                AuditAction::DeleteRole
            };
            ensure_one_success(before, after, action)?;
        }
        Done::Read { owner, kind } => {
            match (&acting.held, acting.token()) {
                (None, _) => {}
                (Some(_), Some(token)) => ensure!(
                    token_may(keyward, token, kind.as_deref(), owner.as_ref(), &["k.view"]),
                    "a {} token of {} read {kind:?} keys of {owner:?}",
                    token.kind(),
                    token.owner()
                ),
                (Some(_), None) => ensure!(
                    owner.as_ref().is_some_and(|o| acting.session_manages(o)),
                    "a session read data of {owner:?}, which it does not manage"
                ),
            }
            ensure!(before == after, "a read changed the store");
        }
    }
    Ok(())
}

/// A write that went through appended exactly one succeeded `action` event.
fn ensure_one_success(
    before: &Snapshot,
    after: &Snapshot,
    action: AuditAction,
) -> Result<(), TestCaseError> {
    ensure!(
        after.audit.len() == before.audit.len() + 1,
        "a {action} appended {} audit events",
        after.audit.len() as isize - before.audit.len() as isize
    );
    let newest = &after.audit[0];
    ensure!(
        newest.action == action && newest.outcome == AuditOutcome::Succeeded,
        "the event of a {action} is {newest:?}"
    );
    Ok(())
}

/// Plays one sequence on a fresh service over `store`, checking the
/// invariants after every call.
async fn play(store: Arc<dyn KeyStore>, sequence: &Sequence) -> Result<(), TestCaseError> {
    let clock = clock_at(2026, 8, 3, 12);
    let directory = Directory::default();
    for (n, grants) in sequence.directory.iter().enumerate() {
        directory.set(&owner_at(n), grants);
    }
    let keyward = property_service(store, &clock, &directory);
    for (n, roles) in sequence.roles.iter().enumerate() {
        for (at, granted) in roles.iter().enumerate() {
            if let Some(granted) = granted {
                let role = Role::new(owner_at(n), role_name(at), perms(granted));
                keyward
                    .put_role(&Actor::operator("setup"), role)
                    .await
                    .unwrap();
            }
        }
    }
    let mut world = World {
        keys: Vec::new(),
        tokens: Vec::new(),
    };
    for (at, step) in sequence.steps.iter().enumerate() {
        match step {
            Step::Directory(n, grants) => directory.set(&owner_at(*n), grants),
            Step::Advance(minutes) => clock.advance(TimeDelta::minutes(*minutes)),
            Step::Call(who, call) => {
                let Some(acting) = acting(&keyward, &directory, &world, who).await else {
                    continue;
                };
                let before = snapshot(&keyward).await;
                let outcome = perform(&keyward, &acting, call, &world).await;
                let after = snapshot(&keyward).await;
                check_call(&keyward, &acting, outcome, &before, &after, &mut world)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("step {at} ({step:?}): {e}")))?;
            }
        }
        within_catalogs(&keyward, &world)
            .await
            .map_err(|e| TestCaseError::fail(format!("after step {at} ({step:?}): {e}")))?;
    }
    Ok(())
}

/// Whatever happened since (roles edited, owners' permissions changed),
/// every token that verifies can do only what its kind's catalog offers.
async fn within_catalogs(keyward: &Keyward, world: &World) -> Result<(), TestCaseError> {
    for token in &world.tokens {
        let Ok(verified) = keyward.verify(token, &Requirement::nothing()).await else {
            continue;
        };
        if let Some(catalog) = keyward
            .format()
            .kind(verified.kind())
            .and_then(TokenKind::permission_catalog)
        {
            ensure!(
                catalog.covers_all(verified.permissions()),
                "I1: a {} token can do [{}], outside its catalog [{catalog}]",
                verified.kind(),
                verified.permissions()
            );
        }
    }
    Ok(())
}

/// Random sequences of management calls by random actors keep the
/// invariants: what a new token can do is covered by what its issuer held
/// and by its kind's catalog (I1); a role edit's actor held the role's old
/// and new permissions and manages its owner (I2); a refused call changes
/// nothing and appends exactly one refused audit event (I3); API keys and
/// PATs never manage anything; a write appends one succeeded event and a
/// read none.
///
/// `PROPTEST_CASES` sets the number of sequences (default 1024, a few
/// seconds in a debug build); each runs
/// on a fresh store from `store`. A failure shrinks to a short sequence.
pub fn management_sequences_keep_the_invariants(
    rt: &tokio::runtime::Runtime,
    store: impl Fn() -> Arc<dyn KeyStore>,
) {
    use proptest::test_runner::{Config, TestRunner};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategies::sequences(), |sequence| {
        rt.block_on(play(store(), &sequence))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
