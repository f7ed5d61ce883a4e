//! The [`KeyStore::keys_expiring`] clause of the contract: the non-revoked
//! keys whose expiry lies in a window, soonest first.

use crate::key::KeyId;
use crate::lifecycle::KeyState;
use crate::store::KeyStore;
use crate::testkit::fixtures::{
    Fixture, assert_same_key, at, change_state, ids, insert, plus_micros, random_u32,
};
use chrono::{DateTime, TimeDelta, Utc};

/// `keys_expiring` returns non-revoked keys with `expires_at` in `(after, before]`, soonest first, at most `limit`.
pub async fn keys_expiring_selects_the_window_soonest_first(store: &dyn KeyStore) {
    let fx = Fixture::new();
    // keys_expiring is global: use a window far from every other case's
    // timestamps, random so that repeated runs on one database do not meet.
    let after =
        DateTime::from_timestamp(4_102_444_800 + i64::from(random_u32() % 1_000_000_000), 0)
            .expect("valid time");
    let before = after + TimeDelta::seconds(10);
    let (owner, other) = (fx.owner("user"), fx.owner("other"));
    let make = |owner: &crate::Owner, expires_at: Option<DateTime<Utc>>, state: KeyState| {
        let mut key = fx.record(owner, "mt", at(0));
        key.expires_at = expires_at;
        key.state = state;
        key
    };
    let at_after = make(&owner, Some(after), KeyState::Active);
    let half = make(
        &owner,
        Some(after + TimeDelta::milliseconds(500)),
        KeyState::Active,
    );
    let first_micro = make(&other, Some(plus_micros(after, 1)), KeyState::Active);
    let one = make(
        &other,
        Some(after + TimeDelta::seconds(1)),
        KeyState::Active,
    );
    let revoked = make(
        &owner,
        Some(after + TimeDelta::seconds(2)),
        KeyState::Active,
    );
    let disabled = make(
        &owner,
        Some(after + TimeDelta::seconds(3)),
        KeyState::Disabled,
    );
    let at_before = make(&other, Some(before), KeyState::Active);
    let past_before = make(&owner, Some(plus_micros(before, 1)), KeyState::Active);
    let never = make(&owner, None, KeyState::Active);
    let all = [
        &at_after,
        &half,
        &first_micro,
        &one,
        &revoked,
        &disabled,
        &at_before,
        &past_before,
        &never,
    ];
    for key in all {
        insert(store, key).await;
    }
    change_state(store, &revoked, KeyState::Active, KeyState::Revoked, at(1)).await;

    let soonest: Vec<KeyId> = [&first_micro, &half, &one, &disabled, &at_before]
        .iter()
        .map(|k| k.id.clone())
        .collect();
    let got = store
        .keys_expiring(after, before, 100)
        .await
        .expect("keys_expiring");
    assert_eq!(
        ids(&got),
        soonest,
        "non-revoked keys expiring in (after, before], soonest first"
    );
    for key in &got {
        let inserted = all.iter().find(|k| k.id == key.id).expect("own key");
        assert_same_key(key, inserted);
    }
    let got = store
        .keys_expiring(after, before, 2)
        .await
        .expect("keys_expiring");
    assert_eq!(ids(&got), soonest[..2], "limit 2 keeps the 2 soonest");
    let got = store
        .keys_expiring(plus_micros(after, 1), before - TimeDelta::seconds(1), 100)
        .await
        .expect("keys_expiring");
    assert_eq!(ids(&got), soonest[1..4], "bounds move with the arguments");
}
