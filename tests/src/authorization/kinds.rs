//! Finding 3, **kinds**: `build()` refuses kinds that manage themselves or
//! chain, and a narrowed session cannot mint a PAT wider than itself.

use super::{
    assert_one_refusal_audited, assert_rotation_refused, audit_count, keys_of, mgmt_kind, refused,
};
use crate::support::{Backend, Directory, clock_at, owner, perms};
use keyward_core::{Actor, Error, IssueRequest, Manages, Session, TokenKind, audit::AuditAction};

/// `build()` refuses a kind whose tokens could mint their own kind.
pub async fn build_refuses_a_kind_that_manages_itself(backend: Backend) {
    let selfish = TokenKind::new("mgmt").unwrap().with_manages(Manages {
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
        .kind(TokenKind::new("mgmt").unwrap().with_manages(manages("tak")))
        .kind(
            TokenKind::new("root")
                .unwrap()
                .with_manages(manages("mgmt")),
        )
        .build();
    assert!(
        matches!(chain, Err(Error::InvalidInput { field: "kinds", .. })),
        "{chain:?}"
    );
    let circle = backend
        .builder()
        .kind(
            TokenKind::new("left")
                .unwrap()
                .with_manages(manages("right")),
        )
        .kind(
            TokenKind::new("right")
                .unwrap()
                .with_manages(manages("left")),
        )
        .build();
    assert!(
        matches!(circle, Err(Error::InvalidInput { field: "kinds", .. })),
        "{circle:?}"
    );
    // Two managing kinds side by side, each managing a plain kind, build.
    backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .kind(TokenKind::new("mgmt").unwrap().with_manages(manages("tak")))
        .kind(TokenKind::new("root").unwrap().with_manages(manages("tak")))
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
