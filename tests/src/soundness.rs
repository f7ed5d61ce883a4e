//! What the review found the service could get wrong, each pinned: revoke
//! always wins, nothing reports failure for a write that committed, a wrong
//! secret reveals nothing, refused reads leave a trace, extreme inputs get
//! typed errors, and a token hidden in a name never reaches a list.

use crate::counting::{Counting, Failure, StoreCall};
use crate::support::{
    Backend, Directory, checksummed, clock_at, owner, perms, role, with_wrong_secret,
};
use keyward_core::chrono::{DateTime, TimeDelta, Utc};
use keyward_core::testkit::ManualClock;
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, Keyward, Lifetime, ListRequest, Owner, PermissionSet,
    Rejection, Requirement, Role, RoleName, Session, Status, TokenKind, audit::AuditAction,
    audit::AuditOutcome, audit::AuditQuery, hooks::OwnerPermissions, limits::MAX_GRANTS,
    limits::MAX_ROLES_PER_KEY, store::KeyState, store::KeyStore, store::async_trait,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The audit events of `owner`, newest first, read as an operator.
async fn events_of(keyward: &Keyward, owner: &Owner) -> Vec<keyward_core::audit::AuditEvent> {
    keyward
        .audit_events(
            &Actor::operator("audit"),
            AuditQuery::newest(1000).owner(owner),
        )
        .await
        .unwrap()
}

/// Revocation always wins: 40 of 40 revokes take effect while three tasks
/// flap the key between disabled and enabled as fast as they can.
pub async fn revoke_wins_against_flapping_enable_and_disable(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("race");
    let mut won = 0;
    for round in 0..40 {
        let issued = keyward
            .issue(
                &admin,
                IssueRequest::new("tak", workspace.clone(), "flapping"),
            )
            .await
            .unwrap();
        let id = issued.key.id.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flips = Arc::new(AtomicUsize::new(0));
        let flappers: Vec<_> = (0..3)
            .map(|_| {
                let (keyward, admin, id) = (keyward.clone(), admin.clone(), id.clone());
                let (stop, flips) = (Arc::clone(&stop), Arc::clone(&flips));
                tokio::spawn(async move {
                    // Bounded, so a bug cannot hang the test.
                    for _ in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let flipped = match keyward.disable(&admin, &id).await {
                            Ok(_) => true,
                            Err(_) => keyward.enable(&admin, &id).await.is_ok(),
                        };
                        if flipped {
                            flips.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        // Let the flapping get under way before revoking.
        while flips.load(Ordering::Relaxed) < 3 && !flappers.iter().all(|f| f.is_finished()) {
            tokio::task::yield_now().await;
        }
        let revoked = keyward.revoke(&admin, &id).await;
        stop.store(true, Ordering::Relaxed);
        for flapper in flappers {
            flapper.await.unwrap();
        }
        match revoked {
            Ok(details) => {
                assert_eq!(details.status, Status::Revoked, "round {round}");
                won += 1;
            }
            Err(e) => panic!("round {round}: revoke lost: {e:?}"),
        }
        let stored = backend.store().get_key(&id).await.unwrap().unwrap();
        assert_eq!(stored.state, KeyState::Revoked, "round {round}");
        let verify = keyward
            .verify(issued.token.expose_secret(), &Requirement::nothing())
            .await;
        assert!(matches!(verify, Err(Rejection::Revoked)), "round {round}");
    }
    assert_eq!(won, 40);
}

/// A resolver for inheriting keys whose directory is down.
#[derive(Debug)]
struct DirectoryDown;

#[async_trait]
impl OwnerPermissions for DirectoryDown {
    async fn permissions_of(&self, _owner: &Owner) -> Result<PermissionSet, Error> {
        Err(Error::backend("directory", "the user directory is down"))
    }
}

/// Issue and rotate resolve what the new key carries before they write: when
/// the roles read or the host's directory fails, they fail with nothing
/// written — no key, no limit slot used, no success in the audit log.
pub async fn issue_and_rotate_fail_before_writing_when_permissions_cannot_be_resolved(
    backend: Backend,
) {
    let counting = Counting::wrap(backend.store());
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap().with_live_limit(1))
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("ops");
    let reader = role("reader");
    keyward
        .put_role(
            &admin,
            Role::new(workspace.clone(), reader.clone(), perms(&["docs.read"])),
        )
        .await
        .unwrap();
    let old = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "old").roles([reader.clone()]),
        )
        .await
        .unwrap();

    counting.fail(StoreCall::GetRoles, Some(Failure::Before));
    counting.reset();
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", owner("workspace"), "new").roles([reader.clone()]),
        )
        .await;
    assert!(matches!(issued, Err(Error::Backend { .. })), "{issued:?}");
    let rotated = keyward.rotate(&admin, &old.key.id, TimeDelta::zero()).await;
    assert!(matches!(rotated, Err(Error::Backend { .. })), "{rotated:?}");
    assert_eq!(counting.calls(StoreCall::InsertKey), 0);
    assert_eq!(counting.calls(StoreCall::RotateKey), 0);
    counting.fail(StoreCall::GetRoles, None);
    let kept = keyward.get(&admin, &old.key.id).await.unwrap();
    assert_eq!(kept.status, Status::Active);
    assert_eq!(kept.rotated_to, None);
    keyward
        .verify(old.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();

    // The host's directory down: an inheriting key is not issued either.
    let users = owner("user");
    let pats = backend
        .builder()
        .kind(TokenKind::new("pat").unwrap())
        .owner_permissions(DirectoryDown)
        .build()
        .unwrap();
    let issued = pats
        .issue(
            &admin,
            IssueRequest::new("pat", users.clone(), "cli").inherit_owner(None),
        )
        .await;
    assert!(matches!(issued, Err(Error::Backend { .. })), "{issued:?}");
    let listed = pats
        .list(&admin, ListRequest::new(users.clone()))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    let succeeded = events_of(&pats, &users)
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::Issue && e.outcome == AuditOutcome::Succeeded)
        .count();
    assert_eq!(succeeded, 0);
}

/// When a write commits but its answer is lost (the connection dropped after
/// the commit), the call reads the store back and reports the success: the
/// token works, and the audit log holds one success and no refusal.
pub async fn a_write_whose_answer_was_lost_after_commit_still_succeeds(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap().with_live_limit(2))
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("ops");

    counting.fail(StoreCall::InsertKey, Some(Failure::AfterCommit));
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "lost ack"),
        )
        .await
        .unwrap();
    counting.fail(StoreCall::InsertKey, None);
    keyward
        .verify(issued.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();

    counting.fail(StoreCall::RotateKey, Some(Failure::AfterCommit));
    let successor = keyward
        .rotate(&admin, &issued.key.id, TimeDelta::zero())
        .await
        .unwrap();
    counting.fail(StoreCall::RotateKey, None);
    keyward
        .verify(successor.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();

    counting.fail(StoreCall::SetState, Some(Failure::AfterCommit));
    let disabled = keyward.disable(&admin, &successor.key.id).await.unwrap();
    assert_eq!(disabled.status, Status::Disabled);
    counting.fail(StoreCall::SetState, None);

    counting.fail(StoreCall::RevokeKey, Some(Failure::AfterCommit));
    let revoked = keyward.revoke(&admin, &successor.key.id).await.unwrap();
    assert_eq!(revoked.status, Status::Revoked);
    counting.fail(StoreCall::RevokeKey, None);
    let verify = keyward
        .verify(successor.token.expose_secret(), &Requirement::nothing())
        .await;
    assert!(matches!(verify, Err(Rejection::Revoked)), "{verify:?}");

    let events = events_of(&keyward, &workspace).await;
    assert!(
        events.iter().all(|e| e.outcome == AuditOutcome::Succeeded),
        "no refusal for a write that committed: {events:?}"
    );
    let actions: Vec<AuditAction> = events.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Revoke,
            AuditAction::Disable,
            AuditAction::Rotate,
            AuditAction::Issue
        ]
    );

    // When the read-back fails too, the outcome is unknown: reported as the
    // backend error, never as a success it cannot prove.
    counting.fail(StoreCall::InsertKey, Some(Failure::AfterCommit));
    counting.fail(StoreCall::GetKey, Some(Failure::Before));
    let unknown = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", owner("workspace"), "unknown"),
        )
        .await;
    assert!(matches!(unknown, Err(Error::Backend { .. })), "{unknown:?}");
    counting.fail(StoreCall::InsertKey, None);
    counting.fail(StoreCall::GetKey, None);

    // A write that failed before committing is reported as failed.
    counting.fail(StoreCall::InsertKey, Some(Failure::Before));
    let failed = keyward
        .issue(&admin, IssueRequest::new("tak", workspace.clone(), "down"))
        .await;
    assert!(matches!(failed, Err(Error::Backend { .. })), "{failed:?}");
    counting.fail(StoreCall::InsertKey, None);
    let names: Vec<String> = keyward
        .list(&admin, ListRequest::new(workspace.clone()))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["lost ack", "lost ack"]);
}

/// Counts how often the host's directory is asked.
#[derive(Debug, Clone, Default)]
struct CountingDirectory {
    inner: Directory,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl OwnerPermissions for CountingDirectory {
    async fn permissions_of(&self, owner: &Owner) -> Result<PermissionSet, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.permissions_of(owner).await
    }
}

/// A wrong secret for a live key costs what it costs for a dead one: no roles
/// read and no call to the host's directory, so anonymous traffic can neither
/// tell live keys from revoked ones by timing nor reach the directory.
pub async fn a_wrong_secret_costs_no_roles_read_or_directory_call(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let directory = CountingDirectory::default();
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .kind(TokenKind::new("pat").unwrap())
        .owner_permissions(directory.clone())
        .build()
        .unwrap();
    let admin = Actor::operator("ops");
    let workspace = owner("workspace");
    let user = owner("user");
    directory.inner.set(&user, &["repo.read"]);
    let reader = role("reader");
    keyward
        .put_role(
            &admin,
            Role::new(workspace.clone(), reader.clone(), perms(&["docs.read"])),
        )
        .await
        .unwrap();
    let with_roles = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "roles").roles([reader]),
        )
        .await
        .unwrap();
    let inheriting = keyward
        .issue(
            &admin,
            IssueRequest::new("pat", user.clone(), "pat").inherit_owner(None),
        )
        .await
        .unwrap();
    for token in [&with_roles.token, &inheriting.token] {
        let forged = with_wrong_secret(token.expose_secret());
        counting.reset();
        directory.calls.store(0, Ordering::SeqCst);
        for _ in 0..3 {
            let answer = keyward.verify(&forged, &Requirement::nothing()).await;
            assert!(matches!(answer, Err(Rejection::NotFound)), "{answer:?}");
        }
        assert_eq!(counting.calls(StoreCall::GetRoles), 0);
        assert_eq!(directory.calls.load(Ordering::SeqCst), 0);
        // The real token still verifies with its permissions resolved.
        let verified = keyward
            .verify(token.expose_secret(), &Requirement::nothing())
            .await
            .unwrap();
        assert!(!verified.permissions().is_empty());
    }
}

/// Refused reads are audited like refused writes: reading audit events
/// without naming a managed owner, listing expiring keys as a user, reading
/// another owner's roles, key details or keys.
pub async fn refused_reads_are_audited(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let mine = owner("workspace");
    let theirs = owner("workspace");
    let user = Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(mine.clone()));
    let label = match &user {
        Actor::Session(s) => format!("session:{}", s.subject()),
        _ => unreachable!(),
    };
    let their_key = keyward
        .issue(
            &Actor::operator("setup"),
            IssueRequest::new("tak", theirs.clone(), "theirs"),
        )
        .await
        .unwrap();

    let refused = [
        keyward.get(&user, &their_key.key.id).await.map(drop),
        keyward
            .audit_events(&user, AuditQuery::newest(10))
            .await
            .map(drop),
        keyward
            .expiring_keys(&user, TimeDelta::days(7), 10)
            .await
            .map(drop),
        keyward.roles(&user, &theirs, &[]).await.map(drop),
        keyward.list_roles(&user, &theirs, None, 10).await.map(drop),
        keyward
            .list(&user, ListRequest::new(theirs.clone()))
            .await
            .map(drop),
    ];
    for result in &refused {
        assert!(
            matches!(result, Err(Error::NotAuthorized { .. })),
            "{result:?}"
        );
    }
    let events = keyward
        .audit_events(&Actor::operator("audit"), AuditQuery::newest(1000))
        .await
        .unwrap();
    let refusals = events
        .iter()
        .filter(|e| e.actor == label)
        .filter(|e| e.action == AuditAction::View && matches!(e.outcome, AuditOutcome::Refused(_)))
        .count();
    assert_eq!(refusals, refused.len(), "{events:?}");
}

/// Durations at the edge of time are typed errors, never a panic: a huge
/// rotation overlap, rotating a key that expires near the end of time, a
/// window of `TimeDelta::MAX` for expiring keys, a negative window.
pub async fn extreme_durations_are_typed_errors_not_panics(backend: Backend) {
    let end_of_time = DateTime::<Utc>::MAX_UTC;
    let clock = ManualClock::new(end_of_time - TimeDelta::days(2));
    let keyward = backend
        .builder()
        .kind(
            TokenKind::new("tak")
                .unwrap()
                .with_expiry(ExpiryPolicy::never().with_max_until(TimeDelta::days(36_500))),
        )
        .clock(clock.clone())
        .max_rotation_overlap(TimeDelta::MAX)
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("ops");
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "forever"),
        )
        .await
        .unwrap();
    let rotated = keyward.rotate(&admin, &issued.key.id, TimeDelta::MAX).await;
    assert!(
        matches!(
            rotated,
            Err(Error::InvalidInput {
                field: "overlap",
                ..
            })
        ),
        "{rotated:?}"
    );
    // It lives until just before the end of time; a day later, a successor
    // living as long would outlive time itself.
    let near_end = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "near the end")
                .expires(Lifetime::Until(end_of_time - TimeDelta::seconds(1))),
        )
        .await
        .unwrap();
    clock.advance(TimeDelta::days(1));
    let rotated = keyward
        .rotate(&admin, &near_end.key.id, TimeDelta::zero())
        .await;
    assert!(
        matches!(rotated, Err(Error::InvalidInput { .. })),
        "{rotated:?}"
    );
    let years = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "years").expires(Lifetime::Years(u32::MAX)),
        )
        .await;
    assert!(years.is_err(), "{years:?}");

    let all = keyward
        .expiring_keys(&admin, TimeDelta::MAX, 10)
        .await
        .unwrap();
    assert!(all.iter().any(|k| k.id == near_end.key.id));
    let negative = keyward.expiring_keys(&admin, TimeDelta::MIN, 10).await;
    assert!(
        matches!(negative, Err(Error::InvalidInput { .. })),
        "{negative:?}"
    );
    let negative_overlap = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .max_rotation_overlap(TimeDelta::days(-1))
        .build();
    assert!(
        matches!(negative_overlap, Err(Error::InvalidInput { .. })),
        "{negative_overlap:?}"
    );
}

/// Sizes are capped before any work is done: at most [`MAX_GRANTS`] scopes
/// per key and permissions per role, [`MAX_ROLES_PER_KEY`] roles per key,
/// 1000 role names per read.
pub async fn grant_sizes_are_capped(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("ops");
    let many: Vec<String> = (0..=MAX_GRANTS).map(|i| format!("p{i}")).collect();
    let too_many = PermissionSet::parse(&many).unwrap();
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "wide").scopes(too_many.clone()),
        )
        .await;
    assert!(
        matches!(
            issued,
            Err(Error::InvalidInput {
                field: "scopes",
                ..
            })
        ),
        "{issued:?}"
    );
    let at_most = PermissionSet::parse(&many[..MAX_GRANTS]).unwrap();
    keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "widest").scopes(at_most),
        )
        .await
        .unwrap();
    let put = keyward
        .put_role(&admin, Role::new(workspace.clone(), role("wide"), too_many))
        .await;
    assert!(matches!(put, Err(Error::InvalidInput { .. })), "{put:?}");
    let names: Vec<RoleName> = (0..=1000).map(|_| role("r")).collect();
    let read = keyward.roles(&admin, &workspace, &names).await;
    assert!(matches!(read, Err(Error::InvalidInput { .. })), "{read:?}");
    keyward
        .roles(&admin, &workspace, &names[..1000])
        .await
        .unwrap();
    let roles: Vec<RoleName> = (0..=MAX_ROLES_PER_KEY).map(|_| role("r")).collect();
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "many roles").roles(roles),
        )
        .await;
    assert!(
        matches!(issued, Err(Error::InvalidInput { field: "roles", .. })),
        "{issued:?}"
    );
}

/// A token hidden anywhere in a name or in metadata (keys too) is refused, so
/// it never reaches a list or an audit event: glued to other words, with an
/// invisible character inside, with its prefix uppercased.
pub async fn a_token_hidden_anywhere_in_a_name_or_metadata_is_refused(backend: Backend) {
    let clock = clock_at(2026, 2, 1, 9);
    let keyward = backend
        .builder()
        .kind(TokenKind::new("mt").unwrap())
        .clock(clock)
        .build()
        .unwrap();
    let account = owner("account");
    let admin = Actor::operator("ops");
    let issued = keyward
        .issue(&admin, IssueRequest::new("mt", account.clone(), "real"))
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let (head, tail) = token.split_at(10);
    let hidden = [
        format!("prod_{token}"),
        format!("{token}_old"),
        format!("{token}s"),
        format!("2{token}"),
        format!("{head}\u{200B}{tail}"),
        format!("{head}\u{FEFF}{tail}"),
        format!("MT{}", &token[2..]),
        format!("key: {token}."),
    ];
    for name in &hidden {
        let refused = keyward
            .issue(&admin, IssueRequest::new("mt", account.clone(), name))
            .await;
        assert!(
            matches!(refused, Err(Error::InvalidInput { field: "name", .. })),
            "name {name:?}: {refused:?}"
        );
        let refused = keyward
            .issue(
                &admin,
                IssueRequest::new("mt", account.clone(), "meta").metadata("note", name),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(Error::InvalidInput {
                    field: "metadata",
                    ..
                })
            ),
            "metadata value {name:?}: {refused:?}"
        );
        let refused = keyward
            .issue(
                &admin,
                IssueRequest::new("mt", account.clone(), "meta").metadata(name, "note"),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(Error::InvalidInput {
                    field: "metadata",
                    ..
                })
            ),
            "metadata key {name:?}: {refused:?}"
        );
    }
    // Nothing of it was stored or logged.
    let listed = keyward
        .list(&admin, ListRequest::new(account.clone()))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let secret = &token[token.len() - 20..];
    for event in events_of(&keyward, &account).await {
        let text = format!("{event:?}");
        assert!(!text.contains(secret), "{text}");
    }
    // Text that only looks like one (a wrong checksum) is a fine name.
    let mut lookalike = token.clone();
    let last = lookalike.pop().unwrap();
    lookalike.push(if last == '0' { '1' } else { '0' });
    keyward
        .issue(&admin, IssueRequest::new("mt", account.clone(), &lookalike))
        .await
        .unwrap();
}

/// Kinds whose prefixes nest (`sk`, `sk_live`) and whose tokens have the same
/// length both issue, verify and are found by the scanner.
pub async fn nested_prefixes_of_equal_length_both_work(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("sk").unwrap().with_lengths(10, 32).unwrap())
        .kind(
            TokenKind::new("sk_live")
                .unwrap()
                .with_lengths(10, 27)
                .unwrap(),
        )
        .build()
        .unwrap();
    let admin = Actor::operator("ops");
    let account = owner("account");
    for kind in ["sk", "sk_live"] {
        let issued = keyward
            .issue(&admin, IssueRequest::new(kind, account.clone(), kind))
            .await
            .unwrap();
        let token = issued.token.expose_secret();
        assert_eq!(token.len(), 51);
        let verified = keyward
            .verify(token, &Requirement::nothing())
            .await
            .unwrap();
        assert_eq!(verified.kind(), kind);
        let found = keyward.format().scan(&format!("leaked: {token} !"));
        assert_eq!(found.len(), 1, "{kind}");
        assert_eq!(found[0].kind, kind);
    }
    // A forged sk_live token of the right shape is still unknown, not malformed.
    let forged = checksummed(&format!("sk_live_{}", "A".repeat(37)));
    let answer = keyward.verify(&forged, &Requirement::nothing()).await;
    assert!(matches!(answer, Err(Rejection::NotFound)), "{answer:?}");
}

/// A directory that can go down, counting how often it is asked.
#[derive(Debug, Clone, Default)]
struct FlakyDirectory {
    inner: Directory,
    down: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl OwnerPermissions for FlakyDirectory {
    async fn permissions_of(&self, owner: &Owner) -> Result<PermissionSet, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::backend("directory", "the user directory is down"));
        }
        self.inner.permissions_of(owner).await
    }
}

/// Taking access away depends on nothing that can fail: revoke and disable
/// read no roles and ask no directory, so with the roles read failing and
/// the host's directory down, they still take effect, for keys holding
/// roles and for inheriting keys, by an operator and by an admin session.
pub async fn revoke_and_disable_read_no_roles_and_ask_no_directory(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let directory = FlakyDirectory::default();
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .kind(TokenKind::new("pat").unwrap())
        .owner_permissions(directory.clone())
        .build()
        .unwrap();
    let admin = Actor::operator("ops");
    let workspace = owner("workspace");
    let user = owner("user");
    directory.inner.set(&user, &["repo.read"]);
    let reader = role("reader");
    keyward
        .put_role(
            &admin,
            Role::new(workspace.clone(), reader.clone(), perms(&["docs.read"])),
        )
        .await
        .unwrap();
    let session = Actor::from(
        Session::new(owner("user"), perms(&["*"]))
            .with_admin_of(workspace.clone())
            .with_admin_of(user.clone()),
    );
    let mut keys = Vec::new();
    for _ in 0..2 {
        let roled = keyward
            .issue(
                &admin,
                IssueRequest::new("tak", workspace.clone(), "roles").roles([reader.clone()]),
            )
            .await
            .unwrap();
        let inheriting = keyward
            .issue(
                &admin,
                IssueRequest::new("pat", user.clone(), "pat").inherit_owner(None),
            )
            .await
            .unwrap();
        keys.push((roled.key.id, roled.token));
        keys.push((inheriting.key.id, inheriting.token));
    }

    counting.fail(StoreCall::GetRoles, Some(Failure::Before));
    directory.down.store(true, Ordering::SeqCst);
    counting.reset();
    directory.calls.store(0, Ordering::SeqCst);
    for (n, (id, _)) in keys.iter().enumerate() {
        let actor = if n < 2 { &admin } else { &session };
        let disabled = keyward.disable(actor, id).await;
        assert!(
            matches!(&disabled, Ok(d) if d.status == Status::Disabled),
            "{disabled:?}"
        );
        let revoked = keyward.revoke(actor, id).await;
        assert!(
            matches!(&revoked, Ok(d) if d.status == Status::Revoked),
            "{revoked:?}"
        );
    }
    assert_eq!(counting.calls(StoreCall::GetRoles), 0, "no roles read");
    assert_eq!(
        directory.calls.load(Ordering::SeqCst),
        0,
        "no directory call"
    );
    counting.fail(StoreCall::GetRoles, None);
    directory.down.store(false, Ordering::SeqCst);
    for (_, token) in &keys {
        let answer = keyward
            .verify(token.expose_secret(), &Requirement::nothing())
            .await;
        assert!(matches!(answer, Err(Rejection::Revoked)), "{answer:?}");
    }
}

/// A call that fails because the store (or the host's directory) failed is
/// reported as a backend error and recorded as nothing: not as a refusal,
/// not as a success. Refusals are decisions; an outage is not one.
pub async fn store_failures_are_not_audited_as_refusals(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("ops");
    let reader = role("reader");
    keyward
        .put_role(
            &admin,
            Role::new(workspace.clone(), reader.clone(), perms(&["docs.read"])),
        )
        .await
        .unwrap();
    let key = keyward
        .issue(&admin, IssueRequest::new("tak", workspace.clone(), "kept"))
        .await
        .unwrap();
    let before = events_of(&keyward, &workspace).await;

    counting.fail(StoreCall::GetRoles, Some(Failure::Before));
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "roles down").roles([reader.clone()]),
        )
        .await;
    assert!(matches!(issued, Err(Error::Backend { .. })), "{issued:?}");
    counting.fail(StoreCall::GetRoles, None);
    for (call, attempt) in [
        (StoreCall::InsertKey, "issue"),
        (StoreCall::RotateKey, "rotate"),
        (StoreCall::SetState, "disable"),
        (StoreCall::RevokeKey, "revoke"),
    ] {
        counting.fail(call, Some(Failure::Before));
        let result = match attempt {
            "issue" => keyward
                .issue(&admin, IssueRequest::new("tak", workspace.clone(), "down"))
                .await
                .map(drop),
            "rotate" => keyward
                .rotate(&admin, &key.key.id, TimeDelta::zero())
                .await
                .map(drop),
            "disable" => keyward.disable(&admin, &key.key.id).await.map(drop),
            _ => keyward.revoke(&admin, &key.key.id).await.map(drop),
        };
        assert!(
            matches!(result, Err(Error::Backend { .. })),
            "{attempt}: {result:?}"
        );
        counting.fail(call, None);
    }
    let after = events_of(&keyward, &workspace).await;
    assert_eq!(
        after.len(),
        before.len(),
        "store failures appended audit events: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|e| !matches!(e.outcome, AuditOutcome::Refused(_)))
    );
    let kept = keyward.get(&admin, &key.key.id).await.unwrap();
    assert_eq!(kept.status, Status::Active);
}

/// Pages are 1..=1000 items: a list or an audit read asking for none or
/// for more is refused with `InvalidInput` on `limit`.
pub async fn page_sizes_are_1_to_1000(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("ops");
    for (size, allowed) in [(0, false), (1, true), (1000, true), (1001, false)] {
        let listed = keyward
            .list(&admin, ListRequest::new(workspace.clone()).limit(size))
            .await
            .map(drop);
        let audit = keyward
            .audit_events(&admin, AuditQuery::newest(size).owner(&workspace))
            .await
            .map(drop);
        let roles = keyward
            .list_roles(&admin, &workspace, None, size)
            .await
            .map(drop);
        for (what, result) in [
            ("list", listed),
            ("audit read", audit),
            ("roles list", roles),
        ] {
            match (allowed, result) {
                (true, Ok(())) | (false, Err(Error::InvalidInput { field: "limit", .. })) => {}
                (_, other) => panic!("{what} of {size}: {other:?}"),
            }
        }
    }
}

/// A rotation's overlap is at most `max_rotation_overlap`, 30 days unless
/// the service sets another: the predecessor of a rotation never works
/// longer than that after it.
pub async fn the_rotation_overlap_is_at_most_30_days_by_default(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("ops");
    let issue = || async {
        keyward
            .issue(
                &admin,
                IssueRequest::new("tak", workspace.clone(), "rotated"),
            )
            .await
            .unwrap()
    };
    let key = issue().await;
    let too_long = keyward
        .rotate(
            &admin,
            &key.key.id,
            TimeDelta::days(30) + TimeDelta::seconds(1),
        )
        .await;
    assert!(
        matches!(
            too_long,
            Err(Error::InvalidInput {
                field: "overlap",
                ..
            })
        ),
        "{too_long:?}"
    );
    let successor = keyward
        .rotate(&admin, &key.key.id, TimeDelta::days(30))
        .await
        .unwrap();
    assert_eq!(
        successor.key.rotated_from.as_ref(),
        Some(&key.key.id),
        "30 days is allowed"
    );
}

/// `dangerous::store` hands out the store the service itself uses, behind
/// its cache's invalidating wrapper: a write through it (which skips
/// authorization and audit) is seen by the very next verify, even with a
/// cache whose entries live an hour.
pub async fn the_dangerous_store_is_the_service_store(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let admin = Actor::operator("ops");
    let workspace = owner("workspace");
    let issued = keyward
        .issue(&admin, IssueRequest::new("tak", workspace.clone(), "raw"))
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    let raw = keyward_core::dangerous::store(&keyward);
    let event =
        keyward_core::audit::AuditEvent::new(Utc::now(), "operator:repair", AuditAction::Revoke);
    assert!(
        raw.revoke_key(&issued.key.id, Utc::now(), &event)
            .await
            .unwrap()
    );
    let answer = keyward.verify(token, &Requirement::nothing()).await;
    assert!(matches!(answer, Err(Rejection::Revoked)), "{answer:?}");
    assert_eq!(
        backend
            .store()
            .get_key(&issued.key.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        KeyState::Revoked
    );
}

/// An operator's name is cleaned when the actor is made, and the actor
/// cannot be made any other way: no control character reaches an audit line.
pub async fn an_operator_name_cannot_forge_audit_lines(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let forger = Actor::operator("night-job\noperator:root\u{7}");
    let Actor::Operator(name) = &forger else {
        panic!("an operator");
    };
    assert_eq!(name.as_str(), "night-joboperator:root");
    let long = Actor::operator(&"x".repeat(1000));
    assert_eq!(long.label().len(), "operator:".len() + 128);
    let workspace = owner("workspace");
    keyward
        .issue(&forger, IssueRequest::new("tak", workspace.clone(), "job"))
        .await
        .unwrap();
    for event in events_of(&keyward, &workspace).await {
        assert!(
            !event.actor.chars().any(char::is_control),
            "{:?}",
            event.actor
        );
        assert_eq!(event.actor, "operator:night-joboperator:root");
    }
}
