//! Invariant 3 of the [`KeyStore`] contract, **state changes are
//! compare-and-set**: `set_state` changes the state only from the expected
//! one, and a revoked key never changes state again.

use crate::audit::AuditQuery;
use crate::lifecycle::KeyState;
use crate::store::KeyStore;
use crate::testkit::fixtures::{
    Fixture, assert_stored, at, change_state, expect_conflict, expect_not_found, insert,
    plus_micros, state_event,
};
use futures_util::future::join;

/// `set_state` changes the state only from the expected one (else `Conflict` with the actual state), `NotFound` for unknown ids, and stamps `revoked_at` on revocation.
pub async fn set_state_is_compare_and_set(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut key = fx.record(&owner, "mt", at(0));
    key.expires_at = Some(at(1000));
    insert(store, &key).await;

    change_state(store, &key, KeyState::Active, KeyState::Disabled, at(1)).await;
    key.state = KeyState::Disabled;
    assert_stored(store, &key).await;

    let stale = store
        .set_state(
            &key.id,
            KeyState::Active,
            KeyState::Disabled,
            at(2),
            &state_event(&key, KeyState::Disabled, at(2)),
        )
        .await;
    expect_conflict(
        stale,
        KeyState::Active,
        KeyState::Disabled,
        "set_state with a stale `from`",
    );
    let stale = store
        .set_state(
            &key.id,
            KeyState::Active,
            KeyState::Revoked,
            at(2),
            &state_event(&key, KeyState::Revoked, at(2)),
        )
        .await;
    expect_conflict(
        stale,
        KeyState::Active,
        KeyState::Disabled,
        "revoke with a stale `from`",
    );
    assert_stored(store, &key).await;

    change_state(store, &key, KeyState::Disabled, KeyState::Active, at(3)).await;
    key.state = KeyState::Active;
    assert_stored(store, &key).await;

    let unknown = fx.record(&owner, "mt", at(0));
    expect_not_found(
        store
            .set_state(
                &unknown.id,
                KeyState::Active,
                KeyState::Disabled,
                at(4),
                &state_event(&unknown, KeyState::Disabled, at(4)),
            )
            .await,
        "set_state of an unknown id",
    );
    assert!(
        store.get_key(&unknown.id).await.expect("get_key").is_none(),
        "set_state must not create a key"
    );

    let revoked_at = plus_micros(at(5), 42);
    change_state(store, &key, KeyState::Active, KeyState::Revoked, revoked_at).await;
    key.state = KeyState::Revoked;
    key.revoked_at = Some(revoked_at);
    assert_stored(store, &key).await;

    // Revoking from disabled stamps the time too.
    let mut disabled = fx.record(&owner, "mt", at(0));
    disabled.state = KeyState::Disabled;
    insert(store, &disabled).await;
    change_state(
        store,
        &disabled,
        KeyState::Disabled,
        KeyState::Revoked,
        at(6),
    )
    .await;
    disabled.state = KeyState::Revoked;
    disabled.revoked_at = Some(at(6));
    assert_stored(store, &disabled).await;
}

/// A revoked key never changes state again: every `set_state` from `Revoked` (or a stale `from`) is a `Conflict` and `revoked_at` stays put.
pub async fn revoked_keys_never_change_state(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut key = fx.record(&owner, "mt", at(0));
    insert(store, &key).await;
    change_state(store, &key, KeyState::Active, KeyState::Revoked, at(1)).await;
    key.state = KeyState::Revoked;
    key.revoked_at = Some(at(1));

    for to in [KeyState::Active, KeyState::Disabled, KeyState::Revoked] {
        let result = store
            .set_state(
                &key.id,
                KeyState::Revoked,
                to,
                at(2),
                &state_event(&key, to, at(2)),
            )
            .await;
        expect_conflict(
            result,
            KeyState::Revoked,
            KeyState::Revoked,
            &format!("set_state(Revoked -> {to})"),
        );
        assert_stored(store, &key).await;
    }
    for from in [KeyState::Active, KeyState::Disabled] {
        for to in [KeyState::Active, KeyState::Disabled, KeyState::Revoked] {
            let result = store
                .set_state(&key.id, from, to, at(3), &state_event(&key, to, at(3)))
                .await;
            expect_conflict(
                result,
                from,
                KeyState::Revoked,
                &format!("set_state({from} -> {to}) of a revoked key"),
            );
        }
    }
    assert_stored(store, &key).await;
}

/// Racing a revoke against an enable of the same disabled key: exactly one wins, and a revoke that won is final.
pub async fn revoke_and_enable_race_has_one_winner(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let (mut revokes_won, mut enables_won) = (0, 0);
    for round in 0..20 {
        let mut key = fx.record(&owner, "mt", at(round));
        key.state = KeyState::Disabled;
        insert(store, &key).await;

        let revoked_at = at(1000 + round);
        let revoke_event = state_event(&key, KeyState::Revoked, revoked_at);
        let enable_event = state_event(&key, KeyState::Active, revoked_at);
        let revoke = store.set_state(
            &key.id,
            KeyState::Disabled,
            KeyState::Revoked,
            revoked_at,
            &revoke_event,
        );
        let enable = store.set_state(
            &key.id,
            KeyState::Disabled,
            KeyState::Active,
            revoked_at,
            &enable_event,
        );
        // Alternate which call is polled first.
        let (revoked, enabled) = if round % 2 == 0 {
            join(revoke, enable).await
        } else {
            let (enabled, revoked) = join(enable, revoke).await;
            (revoked, enabled)
        };

        match (revoked.is_ok(), enabled.is_ok()) {
            (true, false) => {
                revokes_won += 1;
                expect_conflict(
                    enabled,
                    KeyState::Disabled,
                    KeyState::Revoked,
                    &format!("round {round}: the enable that lost to a revoke"),
                );
                key.state = KeyState::Revoked;
                key.revoked_at = Some(revoked_at);
                let again = store
                    .set_state(
                        &key.id,
                        KeyState::Revoked,
                        KeyState::Active,
                        at(2000),
                        &state_event(&key, KeyState::Active, at(2000)),
                    )
                    .await;
                expect_conflict(
                    again,
                    KeyState::Revoked,
                    KeyState::Revoked,
                    &format!("round {round}: enabling after the revoke won"),
                );
            }
            (false, true) => {
                enables_won += 1;
                expect_conflict(
                    revoked,
                    KeyState::Disabled,
                    KeyState::Active,
                    &format!("round {round}: the revoke that lost to an enable"),
                );
                key.state = KeyState::Active;
            }
            _ => panic!(
                "round {round}: exactly one of a racing revoke and enable must succeed, got revoke {revoked:?} and enable {enabled:?}"
            ),
        }
        assert_stored(store, &key).await;
        let events = store
            .list_audit(&AuditQuery::newest(10).key_id(&key.id))
            .await
            .expect("list_audit");
        assert_eq!(
            events.len(),
            2,
            "round {round}: the issue and the winning transition are audited, the losing one is not"
        );
    }
    assert_eq!(revokes_won + enables_won, 20);
}
