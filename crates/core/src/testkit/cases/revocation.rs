//! Invariant 11 of the [`KeyStore`] contract, **revocation always wins**:
//! `revoke_key` is unconditional and idempotent, and no concurrent disable or
//! enable makes it fail.

use crate::audit::{AuditAction, AuditQuery};
use crate::error::Error;
use crate::key::KeyId;
use crate::lifecycle::KeyState;
use crate::store::{KeyStore, MAX_PAGE_SIZE};
use crate::testkit::fixtures::{
    Fixture, assert_stored, at, expect_conflict, expect_not_found, get, insert, issue_event,
    plus_micros, state_event,
};
use futures_util::future::{join, join_all};

/// `revoke_key` revokes an active or a disabled key unconditionally (`Ok(true)`, one event, `revoked_at` stamped), is idempotent (`Ok(false)`, nothing written, no second event), is `NotFound` for unknown ids, and a revoked key stays revoked under `set_state`.
pub async fn revoke_key_is_unconditional_and_idempotent(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let key_audit = |id: &KeyId| {
        let query = AuditQuery::newest(10).key_id(id);
        async move { store.list_audit(&query).await.expect("list_audit") }
    };

    let mut active = fx.record(&owner, "mt", at(0));
    active.expires_at = Some(at(1000));
    insert(store, &active).await;
    let revoked_at = plus_micros(at(1), 42);
    let event = state_event(&active, KeyState::Revoked, revoked_at);
    let revoked = store
        .revoke_key(&active.id, revoked_at, &event)
        .await
        .expect("revoke_key of an active key");
    assert!(revoked, "revoke_key of an active key returns Ok(true)");
    active.state = KeyState::Revoked;
    active.revoked_at = Some(revoked_at);
    assert_stored(store, &active).await;
    assert_eq!(
        key_audit(&active.id).await,
        [event.clone(), issue_event(&active)],
        "the revoke appended its event"
    );

    let mut disabled = fx.record(&owner, "mt", at(0));
    disabled.state = KeyState::Disabled;
    insert(store, &disabled).await;
    let event = state_event(&disabled, KeyState::Revoked, at(2));
    assert!(
        store
            .revoke_key(&disabled.id, at(2), &event)
            .await
            .expect("revoke_key of a disabled key"),
        "revoke_key of a disabled key returns Ok(true)"
    );
    disabled.state = KeyState::Revoked;
    disabled.revoked_at = Some(at(2));
    assert_stored(store, &disabled).await;

    // Again: nothing written, revoked_at kept, no second event.
    for key in [&active, &disabled] {
        let again = store
            .revoke_key(&key.id, at(3), &state_event(key, KeyState::Revoked, at(3)))
            .await
            .expect("revoke_key of a revoked key");
        assert!(!again, "revoke_key of a revoked key returns Ok(false)");
        assert_stored(store, key).await;
        assert_eq!(
            key_audit(&key.id).await.len(),
            2,
            "an Ok(false) revoke appends no event"
        );
    }

    let unknown = fx.record(&owner, "mt", at(0));
    expect_not_found(
        store
            .revoke_key(
                &unknown.id,
                at(4),
                &state_event(&unknown, KeyState::Revoked, at(4)),
            )
            .await,
        "revoke_key of an unknown id",
    );
    assert!(
        store.get_key(&unknown.id).await.expect("get_key").is_none(),
        "revoke_key must not create a key"
    );
    assert!(
        key_audit(&unknown.id).await.is_empty(),
        "a NotFound revoke appends no event"
    );

    // A revoked key stays revoked, whatever set_state is asked.
    for from in [KeyState::Active, KeyState::Disabled, KeyState::Revoked] {
        for to in [KeyState::Active, KeyState::Disabled] {
            let result = store
                .set_state(
                    &active.id,
                    from,
                    to,
                    at(5),
                    &state_event(&active, to, at(5)),
                )
                .await;
            expect_conflict(
                result,
                from,
                KeyState::Revoked,
                &format!("set_state({from} -> {to}) after revoke_key"),
            );
        }
    }
    assert_stored(store, &active).await;
}

/// `revoke_key` never loses a race: in 40 of 40 rounds it returns `Ok(true)` while three tasks flip the key between active and disabled, and the key ends revoked with one revoke event.
pub async fn revoke_key_wins_against_flapping_state_changes(store: &dyn KeyStore) {
    const ROUNDS: i64 = 40;
    const FLAPPERS: usize = 3;
    /// Each flapper stops after this many attempts even if the revoke never
    /// lands, so a broken store fails the case instead of hanging it.
    const MAX_FLIPS: usize = 200;
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut wins = 0;
    for round in 0..ROUNDS {
        let mut key = fx.record(&owner, "mt", at(round));
        insert(store, &key).await;
        let revoked_at = plus_micros(at(1000 + round), 7);
        let done = std::sync::atomic::AtomicBool::new(false);
        let flips = std::sync::atomic::AtomicUsize::new(0);
        let flapper = |n: usize| {
            let (key, done, flips) = (&key, &done, &flips);
            async move {
                // Each flapper starts from a different belief, so some of
                // their compare-and-sets lose from the start.
                let mut state = if n.is_multiple_of(2) {
                    KeyState::Active
                } else {
                    KeyState::Disabled
                };
                for _ in 0..MAX_FLIPS {
                    if done.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    let to = if state == KeyState::Active {
                        KeyState::Disabled
                    } else {
                        KeyState::Active
                    };
                    let event = state_event(key, to, at(1000 + round));
                    match store
                        .set_state(&key.id, state, to, at(1000 + round), &event)
                        .await
                    {
                        Ok(()) => {
                            flips.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            state = to;
                        }
                        Err(Error::Conflict {
                            actual: KeyState::Revoked,
                            ..
                        }) => return,
                        Err(Error::Conflict { actual, .. }) => state = actual,
                        Err(e) => panic!("round {round}: set_state failed: {e:?}"),
                    }
                    tokio::task::yield_now().await;
                }
            }
        };
        let revoke = async {
            // Let the flappers get going first.
            for _ in 0..FLAPPERS {
                tokio::task::yield_now().await;
            }
            let event = state_event(&key, KeyState::Revoked, revoked_at);
            let result = store.revoke_key(&key.id, revoked_at, &event).await;
            done.store(true, std::sync::atomic::Ordering::Release);
            result
        };
        let (revoked, _) = join(revoke, join_all((0..FLAPPERS).map(flapper))).await;
        match revoked {
            Ok(true) => wins += 1,
            other => panic!(
                "round {round}: revoke_key against flapping set_state must return Ok(true), got {other:?}"
            ),
        }
        let stored = get(store, &key.id).await;
        assert_eq!(
            stored.state,
            KeyState::Revoked,
            "round {round}: ends revoked"
        );
        assert_eq!(
            stored.revoked_at,
            Some(revoked_at),
            "round {round}: revoked_at is the revoke's time"
        );
        key.state = KeyState::Revoked;
        key.revoked_at = Some(revoked_at);
        let events = store
            .list_audit(&AuditQuery::newest(MAX_PAGE_SIZE).key_id(&key.id))
            .await
            .expect("list_audit");
        let revokes = events
            .iter()
            .filter(|e| e.action == AuditAction::Revoke)
            .count();
        assert_eq!(revokes, 1, "round {round}: exactly one revoke event");
        assert_eq!(
            events.len(),
            2 + flips.load(std::sync::atomic::Ordering::Relaxed),
            "round {round}: the issue, every successful flip and the revoke are audited"
        );
    }
    assert_eq!(wins, ROUNDS, "revoke_key won {wins} of {ROUNDS} rounds");
}
