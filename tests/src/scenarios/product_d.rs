//! Product D: personal access tokens that act with their user's permissions
//! as they are now.

use crate::support::{Backend, Directory, assert_not_authorized, clock_at, need, owner, perms};
use keyward_core::chrono::TimeDelta;
use keyward_core::{
    Actor, IssueRequest, ListRequest, PermissionSet, Rejection, Requirement, Session, Status,
    TokenKind, hooks::Clock,
};

fn assert_missing(result: Result<impl std::fmt::Debug, Rejection>, permission: &str) {
    match result {
        Err(Rejection::InsufficientPermissions { missing }) => {
            assert_eq!(missing, need(permission));
        }
        other => panic!("expected {permission} to be missing, got {other:?}"),
    }
}

/// Personal access tokens: tied to a user, carrying that user's permissions
/// as they are now; listed newest first with a name filter, masked token,
/// created and last used ("5 days ago" / "never"); a user manages only their
/// own tokens.
pub async fn product_d(backend: Backend) {
    let clock = clock_at(2026, 6, 1, 12);
    let directory = Directory::default();
    let keyward = backend
        .builder()
        .kind(TokenKind::new("pat").unwrap())
        .owner_permissions(directory.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let alice = owner("user");
    let bob = owner("user");
    directory.set(&alice, &["repo.read", "repo.write", "issues.read"]);
    directory.set(&bob, &["repo.read"]);
    let as_alice = Actor::from(Session::new(alice.clone(), directory.of(&alice)));
    let as_bob = Actor::from(Session::new(bob.clone(), directory.of(&bob)));

    // --- A PAT acts with its user's permissions as they are now.
    let deploy = keyward
        .issue(
            &as_alice,
            IssueRequest::new("pat", alice.clone(), "deploy script").inherit_owner(None),
        )
        .await
        .unwrap();
    let deploy_token = deploy.token.expose_secret().to_owned();
    assert!(deploy.key.inherits_owner);
    assert_eq!(deploy.key.permissions, directory.of(&alice));
    keyward
        .verify(&deploy_token, &need("repo.write"))
        .await
        .unwrap();

    // Alice loses repo.write: so does her token, at the next verify. (The
    // host reports the change, which a service with a cache needs.)
    directory.set(&alice, &["repo.read", "issues.read"]);
    keyward.owner_permissions_changed(&alice).await.unwrap();
    assert_missing(
        keyward.verify(&deploy_token, &need("repo.write")).await,
        "repo.write",
    );
    keyward
        .verify(&deploy_token, &need("repo.read"))
        .await
        .unwrap();
    // She gains packages.publish: so does her token.
    assert_missing(
        keyward
            .verify(&deploy_token, &need("packages.publish"))
            .await,
        "packages.publish",
    );
    directory.set(&alice, &["repo.read", "issues.read", "packages.publish"]);
    keyward.owner_permissions_changed(&alice).await.unwrap();
    let verified = keyward
        .verify(&deploy_token, &need("packages.publish"))
        .await
        .unwrap();
    assert_eq!(verified.permissions(), &directory.of(&alice));
    assert_eq!(verified.owner(), &alice);

    // A PAT capped to repo.read follows her too, but never past its cap.
    clock.advance(TimeDelta::days(1));
    let laptop = keyward
        .issue(
            &as_alice,
            IssueRequest::new("pat", alice.clone(), "laptop")
                .inherit_owner(Some(perms(&["repo.read"]))),
        )
        .await
        .unwrap();
    let laptop_token = laptop.token.expose_secret().to_owned();
    assert_eq!(laptop.key.permissions, perms(&["repo.read"]));
    assert_missing(
        keyward
            .verify(&laptop_token, &need("packages.publish"))
            .await,
        "packages.publish",
    );
    keyward
        .verify(&laptop_token, &need("repo.read"))
        .await
        .unwrap();

    // --- The list: newest first, name filter, masked token, created, last used.
    clock.advance(TimeDelta::days(1));
    // A host builds the session per request, from what the user holds now: a
    // session that predates her new permission could not hand it to a token.
    let as_alice = Actor::from(Session::new(alice.clone(), directory.of(&alice)));
    let backup = keyward
        .issue(
            &as_alice,
            IssueRequest::new("pat", alice.clone(), "Deploy backup").inherit_owner(None),
        )
        .await
        .unwrap();
    let page = keyward
        .list(&as_alice, ListRequest::new(alice.clone()))
        .await
        .unwrap();
    let names: Vec<&str> = page.items.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["Deploy backup", "laptop", "deploy script"]);
    let created: Vec<_> = page.items.iter().map(|k| k.created_at).collect();
    assert_eq!(
        created,
        [
            backup.key.created_at,
            laptop.key.created_at,
            deploy.key.created_at
        ]
    );
    for (item, token) in page.items.iter().zip([
        backup.token.expose_secret(),
        laptop_token.as_str(),
        deploy_token.as_str(),
    ]) {
        let shown = item
            .preview
            .strip_prefix("pat_")
            .and_then(|rest| rest.strip_suffix('…'))
            .unwrap_or_else(|| panic!("{} is not masked", item.preview));
        assert_eq!(shown.len(), 4);
        assert!(token.starts_with(&format!("pat_{shown}")));
        assert!(!item.preview.contains(token));
        // Usage is recorded in memory and not flushed yet.
        assert_eq!(item.last_used(clock.now()), "never");
    }
    let filtered = keyward
        .list(
            &as_alice,
            ListRequest::new(alice.clone()).name_contains("DEPLOY"),
        )
        .await
        .unwrap();
    let names: Vec<&str> = filtered.items.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["Deploy backup", "deploy script"]);

    // Laptop used now; five days later the list says so.
    keyward
        .verify(&laptop_token, &need("repo.read"))
        .await
        .unwrap();
    keyward.flush_usage().await.unwrap();
    clock.advance(TimeDelta::days(5));
    let page = keyward
        .list(&as_alice, ListRequest::new(alice.clone()))
        .await
        .unwrap();
    let last_used: Vec<String> = page
        .items
        .iter()
        .map(|k| k.last_used(clock.now()))
        .collect();
    assert_eq!(last_used, ["never", "5 days ago", "7 days ago"]);

    // --- A user manages only their own tokens.
    assert_not_authorized(
        keyward.revoke(&as_bob, &deploy.key.id).await,
        "bob revoking alice's token",
    );
    assert_not_authorized(
        keyward.disable(&as_bob, &deploy.key.id).await,
        "bob disabling alice's token",
    );
    assert_not_authorized(
        keyward.get(&as_bob, &deploy.key.id).await,
        "bob reading alice's token",
    );
    assert_not_authorized(
        keyward.list(&as_bob, ListRequest::new(alice.clone())).await,
        "bob listing alice's tokens",
    );
    assert_not_authorized(
        keyward
            .issue(
                &as_bob,
                IssueRequest::new("pat", alice.clone(), "sneaky").inherit_owner(None),
            )
            .await,
        "bob issuing a token for alice",
    );
    keyward
        .verify(&deploy_token, &Requirement::nothing())
        .await
        .expect("bob's attempts changed nothing");
    let bobs = keyward
        .issue(
            &as_bob,
            IssueRequest::new("pat", bob.clone(), "bob cli").inherit_owner(None),
        )
        .await
        .unwrap();
    let page = keyward
        .list(&as_bob, ListRequest::new(bob.clone()))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, bobs.key.id);

    // Alice revokes her own; an admin of her account may revoke hers too.
    keyward.revoke(&as_alice, &laptop.key.id).await.unwrap();
    let admin =
        Actor::from(Session::new(owner("user"), PermissionSet::new()).with_admin_of(alice.clone()));
    let page = keyward
        .list(&admin, ListRequest::new(alice.clone()))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let revoked = keyward.revoke(&admin, &deploy.key.id).await.unwrap();
    assert_eq!(revoked.status, Status::Revoked);
    for token in [&deploy_token, &laptop_token] {
        let rejected = keyward
            .verify(token, &Requirement::nothing())
            .await
            .unwrap_err();
        assert!(matches!(rejected, Rejection::Revoked), "{rejected:?}");
    }
    keyward
        .verify(backup.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
}
