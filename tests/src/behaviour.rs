//! Service-level behaviour every deployment relies on, whatever its store.

use crate::counting::{Counting, StoreCall};
use crate::interleave::Interleaving;
use crate::support::{Backend, clock_at, owner, secret_part};
use keyward_core::chrono::TimeDelta;
use keyward_core::{
    Actor, Error, IssueRequest, PermissionSet, Rejection, Requirement, Session, Status, TokenKind,
    audit::AuditAction, audit::AuditOutcome, audit::AuditQuery, hooks::Clock, store::KeyState,
    store::KeyStore,
};
use std::sync::Arc;
use std::time::Duration;

/// A disabled key revoked and enabled at the same moment always ends
/// revoked, and its token never verifies again: revoke retries when it loses
/// the compare-and-set, and enable never resurrects a revoked key.
///
/// Twenty rounds on fresh keys. In two of every three the interleaving is
/// forced (both calls read the disabled key before either writes, then
/// revoke or enable writes first), so both ways of losing the race are
/// exercised on every store; in the rest the two calls run free on the two
/// worker threads.
pub async fn revoke_wins_a_race_with_enable(backend: Backend) {
    let interleaving = Interleaving::wrap(backend.store());
    let keyward = backend
        .builder_over(Arc::clone(&interleaving) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("race");
    for round in 0..20 {
        let issued = keyward
            .issue(&admin, IssueRequest::new("tak", workspace.clone(), "racer"))
            .await
            .unwrap();
        let id = issued.key.id.clone();
        keyward.disable(&admin, &id).await.unwrap();

        let first = match round % 3 {
            0 => Some(KeyState::Revoked),
            1 => Some(KeyState::Active),
            _ => None,
        };
        let (revoked, enabled) = match first {
            Some(first) => {
                interleaving.force(&id, first);
                let both = tokio::join!(keyward.revoke(&admin, &id), keyward.enable(&admin, &id));
                let conflicts = interleaving.release();
                // Revoke is one unconditional write, so it never loses a
                // compare-and-set; an enable that comes second does, once.
                let expected = usize::from(first == KeyState::Revoked);
                assert_eq!(
                    conflicts, expected,
                    "round {round}: only an enable that lost saw a conflict"
                );
                both
            }
            None => {
                let revoke = tokio::spawn({
                    let (keyward, admin, id) = (keyward.clone(), admin.clone(), id.clone());
                    async move { keyward.revoke(&admin, &id).await }
                });
                let enable = tokio::spawn({
                    let (keyward, admin, id) = (keyward.clone(), admin.clone(), id.clone());
                    async move { keyward.enable(&admin, &id).await }
                });
                let (revoked, enabled) = tokio::join!(revoke, enable);
                (revoked.unwrap(), enabled.unwrap())
            }
        };

        let details = revoked.unwrap_or_else(|e| panic!("round {round}: revoke failed: {e:?}"));
        assert_eq!(details.status, Status::Revoked, "round {round}");
        match (first, enabled) {
            // Enable wrote first; revoke lost, re-read Active and revoked.
            (Some(KeyState::Active) | None, Ok(details)) => {
                assert_eq!(details.status, Status::Active, "round {round}");
            }
            // Revoke wrote first; enable lost, re-read Revoked and gave up.
            (
                Some(KeyState::Revoked) | None,
                Err(Error::InvalidTransition {
                    from: Status::Revoked,
                    action: "enable",
                }),
            ) => {}
            (first, enabled) => {
                panic!("round {round}: {first:?} went first, enable returned {enabled:?}")
            }
        }
        let stored = keyward_core::dangerous::store(&keyward)
            .get_key(&id)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored.state, KeyState::Revoked, "round {round}");
        assert!(stored.revoked_at.is_some(), "round {round}");
        let verify = keyward
            .verify(issued.token.expose_secret(), &Requirement::nothing())
            .await;
        assert!(
            matches!(verify, Err(Rejection::Revoked)),
            "round {round}: {verify:?}"
        );
        let again = keyward.enable(&admin, &id).await;
        assert!(
            matches!(again, Err(Error::InvalidTransition { .. })),
            "round {round}: {again:?}"
        );
    }
}

/// The hot path reads and never writes: a hundred verifies (accepted and
/// rejected) leave the store untouched, then one flush writes one batch with
/// the newest use of each key, and a flush with nothing pending writes nothing.
pub async fn verify_never_writes_to_the_store(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let clock = clock_at(2026, 1, 5, 9);
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("writes");
    let mut tokens = Vec::new();
    for name in ["one", "two", "three"] {
        let issued = keyward
            .issue(
                &admin,
                IssueRequest::new("tak", workspace.clone(), name)
                    .scopes(PermissionSet::parse(["read"]).unwrap()),
            )
            .await
            .unwrap();
        tokens.push(issued);
    }
    let disabled = keyward
        .issue(&admin, IssueRequest::new("tak", workspace.clone(), "off"))
        .await
        .unwrap();
    keyward.disable(&admin, &disabled.key.id).await.unwrap();
    counting.reset();

    let read = Requirement::permission("read".parse().unwrap());
    let write = Requirement::permission("write".parse().unwrap());
    for i in 0..100 {
        clock.advance(TimeDelta::seconds(1));
        let issued = &tokens[i % tokens.len()];
        keyward
            .verify(issued.token.expose_secret(), &read)
            .await
            .unwrap();
    }
    let forbidden = keyward
        .verify(tokens[0].token.expose_secret(), &write)
        .await;
    assert!(matches!(
        forbidden,
        Err(Rejection::InsufficientPermissions { .. })
    ));
    let off = keyward
        .verify(disabled.token.expose_secret(), &Requirement::nothing())
        .await;
    assert!(matches!(off, Err(Rejection::Disabled)), "{off:?}");
    assert_eq!(counting.writes(), 0, "verify wrote to the store");
    assert_eq!(keyward.pending_usage(), 3);

    let last = clock.now();
    assert_eq!(keyward.flush_usage().await.unwrap(), 3);
    assert_eq!(counting.calls(StoreCall::RecordUsage), 1);
    assert_eq!(counting.writes(), 1);
    let batches = counting.usage_batches();
    assert_eq!(batches.len(), 1);
    let mut batch = batches[0].clone();
    batch.sort_by_key(|u| u.used_at);
    let ids: Vec<_> = batch.iter().map(|u| u.key_id.clone()).collect();
    // Verifies 97, 98, 99 (one per key, in turn) are each key's newest use.
    assert_eq!(
        ids,
        [
            tokens[1].key.id.clone(),
            tokens[2].key.id.clone(),
            tokens[0].key.id.clone()
        ]
    );
    assert_eq!(batch[2].used_at, last);
    assert_eq!(batch[1].used_at, last - TimeDelta::seconds(1));
    assert_eq!(batch[0].used_at, last - TimeDelta::seconds(2));

    assert_eq!(keyward.flush_usage().await.unwrap(), 0);
    assert_eq!(
        counting.calls(StoreCall::RecordUsage),
        1,
        "nothing pending, no call"
    );
    assert_eq!(counting.writes(), 1);
}

/// Last used is the newest verify, written on flush, and never moves back.
pub async fn usage_is_flushed_newest_and_forward_only(backend: Backend) {
    let clock = clock_at(2026, 4, 1, 12);
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let admin = Actor::operator("usage");
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", owner("workspace"), "usage"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    let id = &issued.key.id;
    let store = keyward_core::dangerous::store(&keyward);
    let last_used = move || async move {
        store
            .get_key(id)
            .await
            .unwrap()
            .expect("stored")
            .last_used_at
    };

    let t1 = clock.now();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    clock.advance(TimeDelta::minutes(10));
    let t2 = clock.now();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    assert_eq!(last_used().await, None, "nothing is written before a flush");
    assert_eq!(keyward.flush_usage().await.unwrap(), 1);
    assert_eq!(last_used().await, Some(t2));
    assert_ne!(t1, t2);

    // A use reported later but dated earlier (a clock step back, a slow
    // instance) never moves last used back.
    clock.set(t1);
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    assert_eq!(keyward.flush_usage().await.unwrap(), 1);
    assert_eq!(last_used().await, Some(t2));

    clock.set(t2 + TimeDelta::hours(1));
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    keyward.flush_usage().await.unwrap();
    assert_eq!(last_used().await, Some(t2 + TimeDelta::hours(1)));
    let details = keyward.get(&admin, id).await.unwrap();
    assert_eq!(details.last_used(clock.now()), "just now");
}

/// The background flusher writes on its interval, and `shutdown` writes
/// whatever is still pending, so a clean stop loses no usage.
pub async fn usage_flusher_persists_on_shutdown(backend: Backend) {
    let clock = clock_at(2026, 4, 2, 12);
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let admin = Actor::operator("flusher");
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", owner("workspace"), "flushed"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    let id = &issued.key.id;
    let store = keyward_core::dangerous::store(&keyward);
    let last_used = move || async move {
        store
            .get_key(id)
            .await
            .unwrap()
            .expect("stored")
            .last_used_at
    };

    // A short interval: the task flushes on its own.
    let flusher = keyward.spawn_usage_flusher(Duration::from_millis(20));
    let t1 = clock.now();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while last_used().await != Some(t1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flusher never wrote the use"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clock.advance(TimeDelta::minutes(1));
    let t2 = clock.now();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    flusher.shutdown().await.unwrap();
    assert_eq!(last_used().await, Some(t2));
    assert_eq!(keyward.pending_usage(), 0);

    // An interval that never elapses: only shutdown can have written it.
    let flusher = keyward.spawn_usage_flusher(Duration::from_secs(3600));
    clock.advance(TimeDelta::minutes(1));
    let t3 = clock.now();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    assert_eq!(keyward.pending_usage(), 1);
    flusher.shutdown().await.unwrap();
    assert_eq!(last_used().await, Some(t3));
    assert_eq!(keyward.pending_usage(), 0);

    // Dropped while the runtime keeps running: the task flushes once more.
    let flusher = keyward.spawn_usage_flusher(Duration::from_secs(3600));
    clock.advance(TimeDelta::minutes(1));
    let t4 = clock.now();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    drop(flusher);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while last_used().await != Some(t4) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a dropped flusher never wrote its last batch"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Garbage is refused by parsing alone: it never reaches the store.
pub async fn garbage_tokens_never_reach_the_store(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("garbage"),
            IssueRequest::new("tak", owner("workspace"), "real"),
        )
        .await
        .unwrap();
    let real = issued.token.expose_secret();
    let wrong_prefix = real.replacen("tak_", "tok_", 1);
    let bad_checksum = {
        let (head, last) = real.split_at(real.len() - 1);
        format!("{head}{}", if last == "A" { "B" } else { "A" })
    };
    let truncated = &real[..real.len() - 1];
    let huge = "tak_".to_owned() + &"A".repeat(10 * 1024);
    let sql = "' OR 1=1 --";
    let sql_in_body = format!("tak_{}", "' OR 1=1 --".repeat(4));
    counting.reset();

    for garbage in [
        "",
        huge.as_str(),
        wrong_prefix.as_str(),
        bad_checksum.as_str(),
        truncated,
        sql,
        sql_in_body.as_str(),
        "tak_",
        "Bearer tak_x",
    ] {
        let rejected = keyward
            .verify(garbage, &Requirement::nothing())
            .await
            .unwrap_err();
        assert!(
            matches!(rejected, Rejection::Malformed(_)),
            "{:.40}: {rejected:?}",
            garbage
        );
        assert_eq!(rejected.public_answer().status, 401);
        // The rejection never echoes the input.
        if !garbage.is_empty() {
            assert!(!rejected.to_string().contains(garbage));
        }
        let header = format!("Bearer {garbage}");
        let rejected = keyward
            .verify_bearer(Some(&header), &Requirement::nothing())
            .await
            .unwrap_err();
        assert!(
            matches!(rejected, Rejection::Malformed(_) | Rejection::BadHeader(_)),
            "{:.40}: {rejected:?}",
            garbage
        );
    }
    assert_eq!(counting.calls(StoreCall::GetKey), 0);
    assert_eq!(counting.reads() + counting.writes(), 0);

    // The real token still verifies.
    keyward.verify(real, &Requirement::nothing()).await.unwrap();
}

/// No audit event ever holds a token or its secret, across a whole
/// lifecycle including refused calls.
pub async fn audit_events_never_hold_the_token(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap().with_live_limit(2))
        .clock(clock.clone())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::from(
        Session::new(owner("user"), PermissionSet::parse(["read"]).unwrap())
            .with_admin_of(workspace.clone()),
    );
    let stranger = Actor::from(Session::new(owner("user"), PermissionSet::new()));
    let mut tokens = Vec::new();

    let first = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "first")
                .scopes(PermissionSet::parse(["read"]).unwrap()),
        )
        .await
        .unwrap();
    tokens.push(first.token.expose_secret().to_owned());
    let id = first.key.id.clone();
    keyward
        .verify(first.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
    keyward.flush_usage().await.unwrap();
    keyward.disable(&admin, &id).await.unwrap();
    keyward.enable(&admin, &id).await.unwrap();
    let rotated = keyward
        .rotate(&admin, &id, TimeDelta::hours(1))
        .await
        .unwrap();
    tokens.push(rotated.token.expose_secret().to_owned());
    // Refused calls: a stranger, a token actor, the limit, a grant beyond the actor.
    assert!(keyward.revoke(&stranger, &rotated.key.id).await.is_err());
    let as_token = Actor::Token(
        keyward
            .verify(rotated.token.expose_secret(), &Requirement::nothing())
            .await
            .unwrap(),
    );
    assert!(keyward.revoke(&as_token, &rotated.key.id).await.is_err());
    assert!(
        keyward
            .issue(
                &as_token,
                IssueRequest::new("tak", workspace.clone(), "by token")
            )
            .await
            .is_err()
    );
    let limit = keyward
        .issue(&admin, IssueRequest::new("tak", workspace.clone(), "third"))
        .await;
    assert!(
        matches!(limit, Err(Error::LimitReached { .. })),
        "{limit:?}"
    );
    assert!(
        keyward
            .issue(
                &admin,
                IssueRequest::new("tak", workspace.clone(), "wide").scopes(PermissionSet::all())
            )
            .await
            .is_err()
    );
    keyward.revoke(&admin, &rotated.key.id).await.unwrap();
    assert!(keyward.enable(&admin, &rotated.key.id).await.is_err());

    let events = keyward
        .audit_events(
            &Actor::operator("auditor"),
            AuditQuery::newest(1000).owner(&workspace),
        )
        .await
        .unwrap();
    let has = |action: AuditAction, refused: bool| {
        events
            .iter()
            .any(|e| e.action == action && matches!(e.outcome, AuditOutcome::Refused(_)) == refused)
    };
    for action in [
        AuditAction::Issue,
        AuditAction::Disable,
        AuditAction::Enable,
        AuditAction::Rotate,
        AuditAction::Revoke,
    ] {
        assert!(
            has(action, false),
            "no succeeded {action} event: {events:?}"
        );
    }
    assert!(has(AuditAction::Issue, true), "{events:?}");
    assert!(has(AuditAction::Revoke, true), "{events:?}");
    assert!(has(AuditAction::Enable, true), "{events:?}");

    let mut needles = Vec::new();
    for token in &tokens {
        needles.push(token.clone());
        needles.push(secret_part(&keyward, token).to_owned());
    }
    for event in &events {
        let fields = [
            format!("{:?}", event.at),
            format!("{:?}", event.actor),
            format!("{:?}", event.action),
            format!("{:?}", event.key_id),
            format!("{:?}", event.key_name),
            format!("{:?}", event.owner),
            format!("{:?}", event.role),
            format!("{:?}", event.detail),
            format!("{:?}", event.outcome),
            format!("{event:?}"),
        ];
        for field in &fields {
            for needle in &needles {
                assert!(
                    !field.contains(needle.as_str()),
                    "an audit event holds token material: {event:?}"
                );
            }
        }
    }
}

/// What the store holds of a key is its digest (32 bytes with an algorithm
/// tag), its public id and a short preview: never the token nor its secret.
/// Every record and audit event the store gives back after a whole
/// lifecycle (issue, verify, flush, rotate, revoke) is searched for both.
pub async fn the_store_never_holds_the_token(backend: Backend) {
    let clock = clock_at(2026, 7, 2, 9);
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let workspace = owner("workspace");
    let admin = Actor::operator("at-rest");
    let first = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "at rest")
                .scopes(PermissionSet::parse(["read"]).unwrap())
                .metadata("team", "storage"),
        )
        .await
        .unwrap();
    keyward
        .verify(first.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
    keyward.flush_usage().await.unwrap();
    let second = keyward
        .rotate(&admin, &first.key.id, TimeDelta::hours(1))
        .await
        .unwrap();
    keyward.revoke(&admin, &first.key.id).await.unwrap();

    let store = keyward_core::dangerous::store(&keyward);
    let mut held = Vec::new();
    for issued in [&first, &second] {
        let token = issued.token.expose_secret();
        let secret = secret_part(&keyward, token);
        let record = store
            .get_key(&issued.key.id)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(record.digest.as_bytes().len(), 32);
        assert_eq!(
            record.digest.algorithm(),
            keyward_core::token::HashAlgorithm::Sha256
        );
        assert!(
            keyward_core::token::TokenHasher::sha256()
                .digest(secret)
                .matches(&record.digest),
            "the digest is the SHA-256 of the secret part"
        );
        assert_ne!(&record.digest.as_bytes()[..], secret.as_bytes());
        assert!(
            record.preview.len() < token.len() / 2,
            "the preview is short: {}",
            record.preview
        );
        held.push((token.to_owned(), secret.to_owned()));
    }
    let mut rows: Vec<String> = Vec::new();
    for id in [&first.key.id, &second.key.id] {
        let record = store.get_key(id).await.unwrap().expect("stored");
        rows.push(format!(
            "{record:?} {} {} {:?} {:?}",
            record.preview,
            record.name,
            record.metadata,
            record.digest.as_bytes()
        ));
    }
    let listed = store
        .list_keys(&keyward_core::store::ListQuery::new(
            workspace.clone(),
            clock.now(),
            100,
        ))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    rows.extend(listed.items.iter().map(|r| format!("{r:?}")));
    let events = store
        .list_audit(&AuditQuery::newest(1000).owner(&workspace))
        .await
        .unwrap();
    assert!(events.len() >= 3, "{events:?}");
    rows.extend(events.iter().map(|e| format!("{e:?}")));
    for row in &rows {
        for (token, secret) in &held {
            assert!(
                !row.contains(token.as_str()),
                "the store holds a token: {row}"
            );
            assert!(
                !row.contains(secret.as_str()),
                "the store holds a secret: {row}"
            );
        }
    }
}

/// A store outage while verifying is `Rejection::Unavailable`, answered
/// `503`, never a `401` that would make a client drop a good token; the
/// same token verifies once the store is back.
pub async fn a_store_outage_is_503_never_401(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("outage"),
            IssueRequest::new("tak", owner("workspace"), "outage"),
        )
        .await
        .unwrap();
    counting.fail(StoreCall::GetKey, Some(crate::counting::Failure::Before));
    let down = keyward
        .verify(issued.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap_err();
    assert!(matches!(down, Rejection::Unavailable(_)), "{down:?}");
    assert_eq!(down.public_answer().status, 503);
    let header = format!("Bearer {}", issued.token.expose_secret());
    let down = keyward
        .verify_bearer(Some(&header), &Requirement::nothing())
        .await
        .unwrap_err();
    assert_eq!(down.public_answer().status, 503, "{down:?}");
    counting.fail(StoreCall::GetKey, None);
    keyward
        .verify(issued.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
}

/// A usage flush that fails keeps its batch: nothing is lost, and the next
/// flush writes it.
pub async fn a_failed_usage_flush_keeps_its_batch(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let clock = clock_at(2026, 7, 3, 9);
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("flush"),
            IssueRequest::new("tak", owner("workspace"), "flushed later"),
        )
        .await
        .unwrap();
    keyward
        .verify(issued.token.expose_secret(), &Requirement::nothing())
        .await
        .unwrap();
    let used = clock.now();
    counting.fail(
        StoreCall::RecordUsage,
        Some(crate::counting::Failure::Before),
    );
    assert!(keyward.flush_usage().await.is_err());
    assert_eq!(keyward.pending_usage(), 1, "the failed batch is kept");
    counting.fail(StoreCall::RecordUsage, None);
    assert_eq!(keyward.flush_usage().await.unwrap(), 1);
    assert_eq!(keyward.pending_usage(), 0);
    let stored = keyward_core::dangerous::store(&keyward)
        .get_key(&issued.key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, Some(used));
}

/// The SQL adapters keep times to the microsecond and truncate anything
/// finer (docs/adapters.md, "Timestamps"): a key expiring at
/// …:00.123456789 reads back as …:00.123456. Not for the memory store,
/// which keeps the value as given.
pub async fn times_are_truncated_to_the_microsecond(store: Arc<dyn KeyStore>) {
    let mint = keyward_core::Keyward::builder(keyward_memory::MemoryStore::new())
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let issued = mint
        .issue(
            &Actor::operator("mint"),
            IssueRequest::new("tak", owner("workspace"), "precise"),
        )
        .await
        .unwrap();
    let mut record = keyward_core::dangerous::store(&mint)
        .get_key(&issued.key.id)
        .await
        .unwrap()
        .unwrap();
    let whole = keyward_core::chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    record.expires_at = Some(whole + TimeDelta::nanoseconds(123_456_789));
    let event = keyward_core::audit::AuditEvent::new(whole, "operator:precise", AuditAction::Issue);
    store
        .insert_key(&record, None, record.created_at, &event)
        .await
        .unwrap();
    let stored = store.get_key(&record.id).await.unwrap().unwrap();
    assert_eq!(
        stored.expires_at,
        Some(whole + TimeDelta::microseconds(123_456)),
        "truncated to the microsecond"
    );
}

/// A service that moves to a server-side pepper keeps verifying the keys
/// issued before with plain SHA-256 (each digest carries its algorithm
/// tag), and stores new keys as HMAC-SHA-256 under the pepper.
pub async fn a_peppered_service_verifies_older_sha256_keys(backend: Backend) {
    let workspace = owner("workspace");
    let admin = Actor::operator("pepper");
    let plain = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let old = plain
        .issue(
            &admin,
            IssueRequest::new("tak", workspace.clone(), "before"),
        )
        .await
        .unwrap();
    let peppered = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .hasher(keyward_core::token::TokenHasher::hmac_sha256(&[42u8; 32]).unwrap())
        .build()
        .unwrap();
    let new = peppered
        .issue(&admin, IssueRequest::new("tak", workspace.clone(), "after"))
        .await
        .unwrap();
    let stored = keyward_core::dangerous::store(&peppered)
        .get_key(&new.key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.digest.algorithm(),
        keyward_core::token::HashAlgorithm::HmacSha256
    );
    let secret = secret_part(&peppered, new.token.expose_secret());
    assert!(
        !keyward_core::token::TokenHasher::sha256()
            .digest(secret)
            .matches(&stored.digest),
        "not a plain SHA-256: the database alone cannot confirm a guess"
    );
    for token in [&old.token, &new.token] {
        peppered
            .verify(token.expose_secret(), &Requirement::nothing())
            .await
            .unwrap();
    }
}
