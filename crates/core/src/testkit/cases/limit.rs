//! Invariant 2 of the [`KeyStore`] contract, **the live-key limit is
//! atomic**: it counts one owner's live keys of one kind, and holds under
//! concurrent inserts.

use crate::audit::{AuditEvent, AuditQuery};
use crate::key::KeyRecord;
use crate::lifecycle::KeyState;
use crate::store::{KeyStore, ListQuery};
use crate::testkit::fixtures::{
    Fixture, at, change_state, expect_limit_reached, ids, issue_event, list_all, newest_first,
    plus_micros,
};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;

/// The live-key limit counts active and disabled keys of one owner and kind, never revoked or expired ones.
pub async fn limit_counts_live_keys_per_owner_and_kind(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("account");
    let now = at(0);
    let try_insert = |key: KeyRecord, now: DateTime<Utc>| async move {
        let result = store
            .insert_key(&key, Some(3), now, &issue_event(&key))
            .await;
        (key, result)
    };

    let mut live = Vec::new();
    for i in 0..3 {
        let mut key = fx.record(&owner, "mt", at(i - 10));
        if i == 2 {
            key.expires_at = Some(at(100));
        }
        let (key, result) = try_insert(key, now).await;
        result.unwrap_or_else(|e| panic!("insert {} of 3 under limit 3 failed: {e:?}", i + 1));
        live.push(key);
    }
    let (fourth, result) = try_insert(fx.record(&owner, "mt", now), now).await;
    expect_limit_reached(result, 3, "the 4th live key under limit 3");
    assert!(
        store.get_key(&fourth.id).await.expect("get_key").is_none(),
        "a refused insert must not store the key"
    );

    // Per owner and per kind.
    let (_, result) = try_insert(fx.record(&owner, "tak", now), now).await;
    result.expect("the limit is per kind: another kind of the same owner is not limited");
    let (_, result) = try_insert(fx.record(&fx.owner("other"), "mt", now), now).await;
    result.expect("the limit is per owner: another owner is not limited");
    let (_, result) = try_insert(fx.record(&owner, "mt", now), now).await;
    expect_limit_reached(
        result,
        3,
        "other owners' and kinds' keys must not free a slot",
    );

    // No limit, and a limit of zero.
    let extra = fx.record(&owner, "mt", now);
    store
        .insert_key(&extra, None, now, &issue_event(&extra))
        .await
        .expect("limit None inserts regardless of live keys");
    change_state(store, &extra, KeyState::Active, KeyState::Revoked, now).await;
    let zero = fx.record(&fx.owner("zero"), "mt", now);
    expect_limit_reached(
        store
            .insert_key(&zero, Some(0), now, &issue_event(&zero))
            .await,
        0,
        "limit 0",
    );

    // Disabled keys are live: they can be enabled again.
    change_state(store, &live[0], KeyState::Active, KeyState::Disabled, at(1)).await;
    let (_, result) = try_insert(fx.record(&owner, "mt", at(1)), at(1)).await;
    expect_limit_reached(result, 3, "a disabled key still counts against the limit");

    // Revoked keys are not.
    change_state(store, &live[1], KeyState::Active, KeyState::Revoked, at(2)).await;
    let (_, result) = try_insert(fx.record(&owner, "mt", at(2)), at(2)).await;
    result.expect("revoking a key frees its slot");
    let (_, result) = try_insert(fx.record(&owner, "mt", at(3)), at(3)).await;
    expect_limit_reached(result, 3, "the freed slot is taken again");

    // Expired keys are not: live means `expires_at` after `now`.
    let just_before = plus_micros(at(100), -1);
    let (_, result) = try_insert(fx.record(&owner, "mt", just_before), just_before).await;
    expect_limit_reached(result, 3, "a key expiring 1 µs after `now` is still live");
    let (_, result) = try_insert(fx.record(&owner, "mt", at(100)), at(100)).await;
    result.expect("a key whose expires_at equals `now` is expired and frees its slot");
    let (_, result) = try_insert(fx.record(&owner, "mt", at(101)), at(101)).await;
    expect_limit_reached(result, 3, "the slot freed by expiry is taken again");
}

/// Twenty concurrent inserts against a limit of 3 leave exactly 3 keys; the other 17 fail with `LimitReached` and write nothing.
pub async fn limit_holds_under_concurrent_inserts(store: &dyn KeyStore) {
    let fx = Fixture::new();
    for round in 0..5 {
        let owner = fx.owner(&format!("account{round}"));
        let now = at(100);
        let keys: Vec<KeyRecord> = (0..20).map(|i| fx.record(&owner, "mt", at(i))).collect();
        let events: Vec<AuditEvent> = keys.iter().map(issue_event).collect();
        let results = join_all(
            keys.iter()
                .zip(&events)
                .map(|(key, event)| store.insert_key(key, Some(3), now, event)),
        )
        .await;

        let mut inserted = Vec::new();
        for (key, result) in keys.iter().zip(results) {
            match result {
                Ok(()) => inserted.push(key),
                Err(crate::Error::LimitReached { limit: 3 }) => {}
                Err(e) => panic!(
                    "round {round}: concurrent insert failed with {e:?}, expected Ok or LimitReached {{ limit: 3 }}"
                ),
            }
        }
        assert_eq!(
            inserted.len(),
            3,
            "round {round}: 20 concurrent inserts under limit 3 must leave exactly 3 keys"
        );
        let listed = list_all(store, ListQuery::new(owner.clone(), now, 100)).await;
        assert_eq!(
            ids(&listed),
            newest_first(&inserted),
            "round {round}: the listed keys are exactly the inserted ones"
        );
        let audit = store
            .list_audit(&AuditQuery::newest(100).owner(&owner))
            .await
            .expect("list_audit");
        assert_eq!(
            audit.len(),
            3,
            "round {round}: only the 3 successful inserts may append an audit event"
        );
    }
}
