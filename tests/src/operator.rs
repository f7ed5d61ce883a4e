//! What the operator's tool relies on: pruning, listing across owners,
//! revoking with a reason, each through the service on every store (and
//! through the verification cache, in the cached runs).
//!
//! Pruning is global, so the pruning tests live in the 1980s: far before
//! every other test's data, even on a shared store.

use crate::support::{Backend, clock_at, owner, perms};
use keyward_core::chrono::TimeDelta;
use keyward_core::store::{KeyStore, PruneKeys, StoreWrapper, VerifyRecord, Wrapped, async_trait};
use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, KeyId, Keyward, KeywardBuilder, Lifetime,
    ListRequest, Manages, Rejection, Requirement, Role, RoleName, Session, Status, TokenKind,
    audit::AuditAction, audit::AuditEvent, audit::AuditOutcome, audit::AuditQuery, hooks::Clock,
    limits::MAX_PRUNE_BATCH, limits::MAX_REVOKE_REASON_LEN, store::PruneReport,
    store::PruneRequest,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `mt` keys (never expiring, or after a month) and `mgmt` tokens that
/// manage them.
fn with_kinds(builder: KeywardBuilder) -> KeywardBuilder {
    builder
        .kind(
            TokenKind::new("mt").unwrap().with_expiry(
                ExpiryPolicy::from_choices([Lifetime::Months(1), Lifetime::Never], Lifetime::Never)
                    .unwrap(),
            ),
        )
        .kind(TokenKind::new("mgmt").unwrap().with_manages(Manages {
            kind: "mt".to_owned(),
            create: "keys.create".parse().unwrap(),
            view: "keys.view".parse().unwrap(),
            revoke: "keys.revoke".parse().unwrap(),
            enable: "keys.create".parse().unwrap(),
        }))
}

async fn events_of(keyward: &Keyward, action: AuditAction) -> Vec<AuditEvent> {
    keyward
        .audit_events(
            &Actor::operator("audit"),
            AuditQuery::newest(1000).action(action),
        )
        .await
        .unwrap()
}

async fn verify(keyward: &Keyward, token: &str) -> Result<(), Rejection> {
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .map(drop)
}

/// An operator's prune deletes exactly the keys revoked before its cutoff
/// and the active keys expired before its other cutoff, and the audit
/// events older than the third; it keeps live, disabled (even expired)
/// and later-revoked keys; it leaves one `prune` event with the counts; a
/// pruned key's token then verifies as unknown, never from a stale cache
/// entry; the loop ends with a batch size of 1 too.
pub async fn an_operator_prunes_only_dead_keys_and_audits_it_once(backend: Backend) {
    let clock = clock_at(1980, 1, 1, 0);
    let keyward = with_kinds(backend.builder())
        .clock(clock.clone())
        .build()
        .unwrap();
    let operator = Actor::operator("oncall");
    let account = owner("account");
    let issue = |name: &str, expires: Lifetime| {
        let request = IssueRequest::new("mt", account.clone(), name).expires(expires);
        let keyward = keyward.clone();
        let operator = operator.clone();
        async move { keyward.issue(&operator, request).await.unwrap() }
    };
    let revoked_early = issue("revoked early", Lifetime::Never).await;
    let revoked_late = issue("revoked late", Lifetime::Never).await;
    let expiring = issue("expiring", Lifetime::Months(1)).await;
    let disabled_expiring = issue("disabled, expiring", Lifetime::Months(1)).await;
    let live = issue("live", Lifetime::Never).await;
    let disabled = issue("disabled", Lifetime::Never).await;
    keyward.disable(&operator, &disabled.key.id).await.unwrap();
    keyward
        .disable(&operator, &disabled_expiring.key.id)
        .await
        .unwrap();
    let audit_cutoff = clock.now() + TimeDelta::seconds(1);

    clock.advance(TimeDelta::days(1));
    keyward
        .revoke(&operator, &revoked_early.key.id)
        .await
        .unwrap();
    clock.advance(TimeDelta::days(2));
    let revoked_cutoff = clock.now();
    keyward
        .revoke(&operator, &revoked_late.key.id)
        .await
        .unwrap();
    clock.advance(TimeDelta::days(60));
    let expired_cutoff = clock.now();

    // What the cache holds before the prune: the answers of a dead key.
    let token = |issued: &keyward_core::IssuedKey| issued.token.expose_secret().to_owned();
    assert!(matches!(
        verify(&keyward, &token(&revoked_early)).await,
        Err(Rejection::Revoked)
    ));
    assert!(matches!(
        verify(&keyward, &token(&expiring)).await,
        Err(Rejection::Expired)
    ));
    let old_events = keyward
        .audit_events(&operator, AuditQuery::newest(1000).until(audit_cutoff))
        .await
        .unwrap()
        .len();
    assert_eq!(
        old_events, 8,
        "the six issues and two disables are older than the audit cutoff"
    );

    let report = keyward
        .prune(
            &operator,
            PruneRequest::new()
                .revoked_before(revoked_cutoff)
                .expired_before(expired_cutoff)
                .audit_before(audit_cutoff)
                .batch_size(1),
        )
        .await
        .unwrap();
    let expected = {
        let mut r = PruneReport::default();
        r.revoked_keys = 1;
        r.expired_keys = 1;
        r.audit_events = 8;
        r
    };
    assert_eq!(report, expected);

    for gone in [&revoked_early, &expiring] {
        assert!(
            matches!(
                verify(&keyward, &token(gone)).await,
                Err(Rejection::NotFound)
            ),
            "a pruned key verifies as unknown"
        );
        assert!(matches!(
            keyward.get(&operator, &gone.key.id).await,
            Err(Error::NotFound)
        ));
    }
    let status = |id: KeyId| {
        let keyward = keyward.clone();
        let operator = operator.clone();
        async move { keyward.get(&operator, &id).await.unwrap().status }
    };
    assert_eq!(status(revoked_late.key.id.clone()).await, Status::Revoked);
    assert_eq!(status(live.key.id.clone()).await, Status::Active);
    assert_eq!(status(disabled.key.id.clone()).await, Status::Disabled);
    assert_eq!(
        status(disabled_expiring.key.id.clone()).await,
        Status::Expired,
        "a disabled key is kept, expired or not"
    );
    assert!(verify(&keyward, &token(&live)).await.is_ok());

    let prunes = events_of(&keyward, AuditAction::Prune).await;
    assert_eq!(prunes.len(), 1, "one event for the whole prune: {prunes:?}");
    let event = &prunes[0];
    assert_eq!(event.outcome, AuditOutcome::Succeeded);
    assert_eq!(event.actor, "operator:oncall");
    let detail = event.detail.as_deref().unwrap();
    assert!(
        detail.starts_with("revoked_keys=1 expired_keys=1 audit_events=8 "),
        "{detail}"
    );
    assert!(
        detail.contains("revoked_before=1980-01-04T00:00:00.000000Z"),
        "{detail}"
    );
    // The prune's own event is newer than its cutoff, so it stays.
    assert!(
        keyward
            .audit_events(&operator, AuditQuery::newest(1000).until(audit_cutoff))
            .await
            .unwrap()
            .is_empty(),
        "every event older than the cutoff is gone"
    );

    // Nothing is left to prune: the loop ends at once, counts are zero.
    let again = keyward
        .prune(
            &operator,
            PruneRequest::new()
                .revoked_before(revoked_cutoff)
                .expired_before(expired_cutoff),
        )
        .await
        .unwrap();
    assert_eq!(again, PruneReport::default());
}

/// Pruning is for operators: a session (even an admin's) and a token are
/// refused with `NotAuthorized`, each refusal is audited as a refused
/// `prune`, and nothing is deleted. A request that names no cutoff, a
/// cutoff in the future or a batch size outside 1..=10000 is an
/// `InvalidInput`, audited too.
pub async fn only_operators_prune_and_bad_requests_are_typed_errors(backend: Backend) {
    let clock = clock_at(1981, 1, 1, 0);
    let keyward = with_kinds(backend.builder())
        .clock(clock.clone())
        .build()
        .unwrap();
    let operator = Actor::operator("oncall");
    let account = owner("account");
    let revoked = keyward
        .issue(&operator, IssueRequest::new("mt", account.clone(), "old"))
        .await
        .unwrap();
    keyward.revoke(&operator, &revoked.key.id).await.unwrap();
    let manager = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", account.clone(), "manager"),
        )
        .await
        .unwrap();
    clock.advance(TimeDelta::days(1));
    let request = || PruneRequest::new().revoked_before(clock.now());

    let admin =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(account.clone()));
    let verified = keyward
        .verify(manager.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
    let token = Actor::Token(verified);
    for actor in [&admin, &token] {
        let result = keyward.prune(actor, request()).await;
        assert!(
            matches!(result, Err(Error::NotAuthorized { .. })),
            "{actor:?}: {result:?}"
        );
    }
    let future = clock.now() + TimeDelta::seconds(1);
    for bad in [
        PruneRequest::new(),
        PruneRequest::new().revoked_before(future),
        PruneRequest::new().audit_before(future),
        PruneRequest::new().expired_before(future),
        request().batch_size(0),
        request().batch_size(MAX_PRUNE_BATCH + 1),
    ] {
        let result = keyward.prune(&operator, bad.clone()).await;
        assert!(
            matches!(result, Err(Error::InvalidInput { .. })),
            "{bad:?}: {result:?}"
        );
    }
    assert_eq!(
        keyward
            .get(&operator, &revoked.key.id)
            .await
            .unwrap()
            .status,
        Status::Revoked,
        "a refused prune deletes nothing"
    );
    let prunes = events_of(&keyward, AuditAction::Prune).await;
    assert_eq!(prunes.len(), 8, "every refusal is audited: {prunes:?}");
    assert!(
        prunes
            .iter()
            .all(|e| matches!(e.outcome, AuditOutcome::Refused(_))),
        "{prunes:?}"
    );
    // The largest batch size is allowed.
    let report = keyward
        .prune(&operator, request().batch_size(MAX_PRUNE_BATCH))
        .await
        .unwrap();
    assert_eq!(report.revoked_keys, 1);
}

/// An operator lists every owner's keys (`ListRequest::all_owners`), paged
/// across owners; a user's session is refused that (and the refusal
/// audited) but still lists its own keys; `last_used_before` finds keys
/// not used since a time, never-used ones included.
pub async fn operators_list_across_owners_and_users_only_their_own(backend: Backend) {
    let clock = clock_at(2026, 3, 1, 0);
    let keyward = with_kinds(backend.builder())
        .clock(clock.clone())
        .build()
        .unwrap();
    let operator = Actor::operator("oncall");
    let (alice, bob) = (owner("user"), owner("user"));
    // One name marks this test's keys, since a shared store holds others.
    let mark = format!("mark-{}", crate::support::suffix());
    let mut issued = Vec::new();
    for (i, who) in [&alice, &bob, &alice, &bob, &alice].into_iter().enumerate() {
        clock.advance(TimeDelta::seconds(1));
        let name = format!("{mark} {i}");
        issued.push(
            keyward
                .issue(&operator, IssueRequest::new("mt", who.clone(), &name))
                .await
                .unwrap(),
        );
    }
    // Key 1 is used now; the others never.
    let used_at = clock.now();
    keyward
        .verify(issued[1].token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
    keyward.flush_usage().await.unwrap();
    clock.advance(TimeDelta::days(1));

    let mut seen = Vec::new();
    let mut request = ListRequest::all_owners().name_contains(&mark).limit(2);
    loop {
        let page = keyward.list(&operator, request.clone()).await.unwrap();
        seen.extend(page.items.iter().map(|k| k.id.clone()));
        match page.next {
            Some(next) => request = request.after(next),
            None => break,
        }
    }
    let newest_first: Vec<KeyId> = issued.iter().rev().map(|i| i.key.id.clone()).collect();
    assert_eq!(
        seen, newest_first,
        "every owner's keys, newest first, paged"
    );

    let stale = keyward
        .list(
            &operator,
            ListRequest::all_owners()
                .name_contains(&mark)
                .last_used_before(used_at),
        )
        .await
        .unwrap();
    let expected: Vec<KeyId> = [4, 3, 2, 0]
        .iter()
        .map(|&i| issued[i].key.id.clone())
        .collect();
    let stale: Vec<KeyId> = stale.items.iter().map(|k| k.id.clone()).collect();
    assert_eq!(stale, expected, "never used counts as not used since");

    let user = Actor::from(Session::new(alice.clone(), perms(&["*"])));
    let refused = keyward.list(&user, ListRequest::all_owners()).await;
    assert!(
        matches!(refused, Err(Error::NotAuthorized { .. })),
        "{refused:?}"
    );
    let views = events_of(&keyward, AuditAction::View).await;
    assert!(
        views
            .iter()
            .any(|e| e.actor.starts_with("session:")
                && matches!(e.outcome, AuditOutcome::Refused(_))),
        "the refusal is audited: {views:?}"
    );
    let own = keyward
        .list(&user, ListRequest::new(alice.clone()).name_contains(&mark))
        .await
        .unwrap();
    assert!(own.items.iter().all(|k| k.owner == alice));
    assert_eq!(own.items.len(), 3);
    assert!(matches!(
        keyward.list(&user, ListRequest::new(bob.clone())).await,
        Err(Error::NotAuthorized { .. })
    ));
}

/// `revoke_with_reason` records the reason in the revoke's event; a reason
/// holding a token of any configured kind, one too long, one with control
/// characters or an empty one is an `InvalidInput` on `reason`, the key
/// stays as it was, and the refusal's event leaves the reason out.
pub async fn a_revoke_reason_is_recorded_and_never_holds_a_token(backend: Backend) {
    let keyward = with_kinds(backend.builder()).build().unwrap();
    let operator = Actor::operator("scanner");
    let account = owner("account");
    let leaked = keyward
        .issue(
            &operator,
            IssueRequest::new("mt", account.clone(), "leaked"),
        )
        .await
        .unwrap();
    let other = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", account.clone(), "other"),
        )
        .await
        .unwrap();
    let id = leaked.key.id.clone();
    let long = "x".repeat(MAX_REVOKE_REASON_LEN + 1);
    let quoting = format!("found in src/main.rs: {}", leaked.token.expose_secret());
    let quoting_other = format!("see {}!", other.token.expose_secret());
    for bad in [
        quoting.as_str(),
        quoting_other.as_str(),
        long.as_str(),
        "line one\nline two",
        "bell\u{7}",
        "",
        "   ",
    ] {
        match keyward.revoke_with_reason(&operator, &id, bad).await {
            Err(Error::InvalidInput {
                field: "reason", ..
            }) => {}
            other => panic!("{bad:?}: expected InvalidInput on reason, got {other:?}"),
        }
    }
    assert_eq!(
        keyward.get(&operator, &id).await.unwrap().status,
        Status::Active,
        "a refused reason revokes nothing"
    );
    let revokes = events_of(&keyward, AuditAction::Revoke).await;
    assert_eq!(revokes.len(), 7);
    for event in &revokes {
        assert!(matches!(event.outcome, AuditOutcome::Refused(_)));
        assert_eq!(event.detail, None, "a refused reason is never recorded");
    }

    let fine = "x".repeat(MAX_REVOKE_REASON_LEN - 40);
    let reason = format!("found by GitHub in https://github.com/o/r/blob/main/.env {fine}");
    let reason = &reason[..MAX_REVOKE_REASON_LEN];
    let details = keyward
        .revoke_with_reason(&operator, &id, reason)
        .await
        .unwrap();
    assert_eq!(details.status, Status::Revoked);
    let revokes = events_of(&keyward, AuditAction::Revoke).await;
    let newest = &revokes[0];
    assert_eq!(newest.outcome, AuditOutcome::Succeeded);
    assert_eq!(newest.key_id.as_ref(), Some(&id));
    assert_eq!(
        newest.detail.as_deref(),
        Some(format!("reason: {reason}").as_str())
    );
    assert!(matches!(
        verify(&keyward, leaked.token.expose_secret()).await,
        Err(Rejection::Revoked)
    ));
}

/// Fails every `prune_keys` call after the first with a backend error, and
/// counts the verify reads that reach the store.
#[derive(Debug, Default)]
struct FailSecondPrune {
    prunes: AtomicUsize,
    verify_reads: AtomicUsize,
}

#[async_trait]
impl StoreWrapper for FailSecondPrune {
    async fn prune_keys(
        &self,
        inner: &dyn KeyStore,
        selection: PruneKeys,
        now: keyward_core::chrono::DateTime<keyward_core::chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<KeyId>, Error> {
        if self.prunes.fetch_add(1, Ordering::SeqCst) > 0 {
            return Err(Error::backend("test", "the store went away"));
        }
        inner.prune_keys(selection, now, limit).await
    }

    async fn verify_key(
        &self,
        inner: &dyn KeyStore,
        id: &KeyId,
    ) -> Result<Option<VerifyRecord>, Error> {
        self.verify_reads.fetch_add(1, Ordering::SeqCst);
        inner.verify_key(id).await
    }
}

/// A prune that a store error stops midway returns the error, keeps what
/// it deleted deleted, and still leaves one `prune` event, refused, with
/// the counts so far; the verification cache, not knowing what the failed
/// batch deleted, drops every entry (a cached key is read from the store
/// again).
pub async fn a_prune_stopped_by_a_store_error_is_audited_with_its_counts(backend: Backend) {
    let clock = clock_at(1982, 1, 1, 0);
    let failing = Arc::new(Wrapped::new(backend.store(), FailSecondPrune::default()));
    let keyward = with_kinds(backend.builder_over(Arc::clone(&failing) as Arc<dyn KeyStore>))
        .clock(clock.clone())
        .build()
        .unwrap();
    let operator = Actor::operator("oncall");
    let account = owner("account");
    let mut revoked = Vec::new();
    for name in ["one", "two", "three"] {
        let issued = keyward
            .issue(&operator, IssueRequest::new("mt", account.clone(), name))
            .await
            .unwrap();
        keyward.revoke(&operator, &issued.key.id).await.unwrap();
        revoked.push(issued);
    }
    let live = keyward
        .issue(&operator, IssueRequest::new("mt", account.clone(), "live"))
        .await
        .unwrap();
    clock.advance(TimeDelta::days(1));
    // Cached (in the cached runs) before the prune.
    assert!(verify(&keyward, live.token.expose_secret()).await.is_ok());
    assert!(verify(&keyward, live.token.expose_secret()).await.is_ok());
    let reads_before = failing.verify_reads.load(Ordering::SeqCst);

    let result = keyward
        .prune(
            &operator,
            PruneRequest::new()
                .revoked_before(clock.now())
                .batch_size(2),
        )
        .await;
    assert!(matches!(result, Err(Error::Backend { .. })), "{result:?}");
    let mut gone = 0;
    for issued in &revoked {
        if matches!(
            keyward.get(&operator, &issued.key.id).await,
            Err(Error::NotFound)
        ) {
            gone += 1;
        }
    }
    assert_eq!(gone, 2, "the first batch stays deleted");
    let prunes = events_of(&keyward, AuditAction::Prune).await;
    assert_eq!(prunes.len(), 1, "{prunes:?}");
    assert!(matches!(prunes[0].outcome, AuditOutcome::Refused(_)));
    assert!(
        prunes[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("revoked_keys=2 expired_keys=0 audit_events=0 "),
        "{prunes:?}"
    );

    assert!(verify(&keyward, live.token.expose_secret()).await.is_ok());
    let reads_after = failing.verify_reads.load(Ordering::SeqCst);
    if backend.is_cached() {
        assert_eq!(
            reads_after,
            reads_before + 1,
            "after a failed batch the cached key is read from the store again"
        );
    }
}

/// `list_roles` lists every role of one owner, in name order, page by page:
/// an operator reads any owner's, a user those of an owner they manage (a
/// role of the same name elsewhere never shows), anyone else is refused and
/// audited, and a page size outside 1..=1000 is a typed error, audited as
/// a refusal as `roles` audits its own.
pub async fn every_role_of_an_owner_lists_in_pages_for_those_who_may_read_them(backend: Backend) {
    let keyward = with_kinds(backend.builder()).build().unwrap();
    let operator = Actor::operator("oncall");
    let (workspace, other) = (owner("workspace"), owner("workspace"));
    let mut names: Vec<RoleName> = ["viewer", "admin", "deployer", "billing", "auditor"]
        .iter()
        .map(|n| RoleName::new(n).unwrap())
        .collect();
    for (i, name) in names.iter().enumerate() {
        let grants = perms(&[&format!("area{i}.read")]);
        keyward
            .put_role(
                &operator,
                Role::new(workspace.clone(), name.clone(), grants),
            )
            .await
            .unwrap();
    }
    // The other owner has a role of one of the same names, and one more.
    for name in ["admin", "zz-other"] {
        let role = Role::new(other.clone(), RoleName::new(name).unwrap(), perms(&["*"]));
        keyward.put_role(&operator, role).await.unwrap();
    }
    names.sort();

    let all = keyward
        .list_roles(&operator, &workspace, None, 1000)
        .await
        .unwrap();
    let listed: Vec<&RoleName> = all.iter().map(|r| &r.name).collect();
    assert_eq!(
        listed,
        names.iter().collect::<Vec<_>>(),
        "name order, one owner"
    );
    assert!(all.iter().all(|r| r.owner == workspace));
    let admin = all.iter().find(|r| r.name.as_str() == "admin").unwrap();
    assert_eq!(
        admin.permissions,
        perms(&["area1.read"]),
        "this owner's admin"
    );

    // Page by page, after the last name of each.
    let mut paged: Vec<RoleName> = Vec::new();
    loop {
        let page = keyward
            .list_roles(&operator, &workspace, paged.last(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let last = page.len() < 2;
        paged.extend(page.into_iter().map(|r| r.name));
        if last {
            break;
        }
    }
    assert_eq!(paged, names, "pages of 2: every role once");

    // A user managing the workspace reads its roles, not the other owner's.
    let admin_user =
        Actor::from(Session::new(owner("user"), perms(&["*"])).with_admin_of(workspace.clone()));
    let seen = keyward
        .list_roles(&admin_user, &workspace, None, 1000)
        .await
        .unwrap();
    assert_eq!(seen, all, "the workspace admin sees what the operator sees");
    let refused = keyward.list_roles(&admin_user, &other, None, 1000).await;
    assert!(
        matches!(refused, Err(Error::NotAuthorized { .. })),
        "{refused:?}"
    );
    for size in [0, 1001] {
        let bad = keyward.list_roles(&operator, &workspace, None, size).await;
        assert!(
            matches!(bad, Err(Error::InvalidInput { field: "limit", .. })),
            "page size {size}: {bad:?}"
        );
    }
    for size in [1, 1000] {
        assert!(
            keyward
                .list_roles(&operator, &workspace, None, size)
                .await
                .is_ok(),
            "page size {size}"
        );
    }
    // Both owners are this test's own, so their refusals are these calls'.
    let of_other = refusals(&keyward, &other).await;
    assert_eq!(of_other.len(), 1, "the user's refusal: {of_other:?}");
    assert!(of_other[0].actor.starts_with("session:"), "{of_other:?}");
    let of_workspace = refusals(&keyward, &workspace).await;
    assert_eq!(of_workspace.len(), 2, "both bad sizes: {of_workspace:?}");
    assert!(of_workspace.iter().all(|e| e.actor == operator.label()));
}

/// The refused `view` events of `owner`, newest first.
async fn refusals(keyward: &Keyward, owner: &keyward_core::Owner) -> Vec<AuditEvent> {
    keyward
        .audit_events(
            &Actor::operator("audit"),
            AuditQuery::newest(1000)
                .owner(owner)
                .action(AuditAction::View),
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.outcome, AuditOutcome::Refused(_)))
        .collect()
}
